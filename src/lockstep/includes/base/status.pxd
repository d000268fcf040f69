# Mirrors include/lockstep/base/status.hpp.
from libc.stdint cimport int32_t


cdef extern from "lockstep/base/status.hpp" namespace "lockstep" nogil:
    cdef enum class CStatus "lockstep::Status"(int32_t):
        Ok, OutputFull, NeedMoreInput, WouldBlock, InvalidArgument, UnknownInstrument, DecodeError,
        NotMultiple, Overflow, SystemError, PeerClosed, BadAddress

    const char* status_name(CStatus s)
