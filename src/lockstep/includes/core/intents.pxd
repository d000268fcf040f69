# Mirrors include/lockstep/core/intents.hpp.
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t

from lockstep.includes.core.events cimport CSide


cdef extern from "lockstep/core/intents.hpp" namespace "lockstep" nogil:
    cdef enum class CIntentKind "lockstep::IntentKind"(uint8_t):
        SubmitLimit, SubmitMarket, Cancel, Replace

    cdef enum class CTimeInForce "lockstep::TimeInForce"(uint8_t):
        GTC, IOC, PostOnly

    cdef cppclass CIntent "lockstep::Intent":
        uint32_t instrument
        CIntentKind kind
        CSide side
        CTimeInForce tif
        int64_t price
        int64_t qty
        uint64_t client_order_id
        uint64_t target_order_id
