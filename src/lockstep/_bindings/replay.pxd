from libcpp.memory cimport unique_ptr
from libcpp.vector cimport vector

from lockstep.includes.core.replay cimport CBookType, CReplayer


cdef class Replayer:
    cdef unique_ptr[CReplayer] core
    cdef CReplayer* ptr
    cdef object owner


cdef Replayer replayer_view(const CReplayer* replayer, object owner)


# 'l2'/'l3' names to the core's book types (ValueError naming a bad one).
cdef vector[CBookType] book_types_of(object book_types) except *
