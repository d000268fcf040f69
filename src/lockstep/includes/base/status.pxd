# Mirrors include/lockstep/base/status.hpp.
from libc.stdint cimport int32_t


cdef extern from "lockstep/base/status.hpp" namespace "lockstep" nogil:
    cdef enum class CStatus "lockstep::Status"(int32_t):
        Ok "lockstep::Status::Ok"
        OutputFull "lockstep::Status::OutputFull"
        NeedMoreInput "lockstep::Status::NeedMoreInput"
        InvalidArgument "lockstep::Status::InvalidArgument"
        UnknownInstrument "lockstep::Status::UnknownInstrument"
        DecodeError "lockstep::Status::DecodeError"
        NotMultiple "lockstep::Status::NotMultiple"
        Overflow "lockstep::Status::Overflow"

    const char* status_name(CStatus s)
