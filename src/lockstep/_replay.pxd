from libcpp.memory cimport unique_ptr

from lockstep.includes.replay cimport CReplayer


cdef class Replayer:
    cdef unique_ptr[CReplayer] core
    cdef CReplayer* ptr
    cdef object owner


cdef Replayer replayer_view(const CReplayer* replayer, object owner)
