# Mirrors include/lockstep/base/status.hpp.
from libc.stdint cimport int32_t


cdef extern from "lockstep/base/status.hpp" namespace "lockstep" nogil:
    cdef enum class CStatus "lockstep::Status"(int32_t):
        Ok, OutputFull, NeedMoreInput, InvalidArgument, UnknownInstrument, DecodeError, NotMultiple,
        Overflow

    const char* status_name(CStatus s)
