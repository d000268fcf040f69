# Mirrors include/lockstep/codecs/binance/output.hpp.
from libc.stdint cimport int32_t, int64_t, uint8_t

from lockstep.includes.core.events cimport CEventColumns


cdef extern from "lockstep/codecs/binance/output.hpp" namespace "lockstep::binance" nogil:
    cdef cppclass CRecordColumns "lockstep::binance::RecordColumns":
        int32_t* file
        int64_t* line
        int64_t* offset
        int64_t* length
        uint8_t* problem
        size_t size
        size_t capacity

    cdef cppclass COutput "lockstep::binance::Output":
        CEventColumns ev
        int64_t* ev_record
        CRecordColumns rec
