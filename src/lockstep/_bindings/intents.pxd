# The one bridge from a Python lockstep.core.risk.Intent to the core's CIntent.
from cpython.number cimport PyNumber_Index
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t

from lockstep.includes.core.events cimport CSide
from lockstep.includes.core.intents cimport CIntent, CIntentKind, CTimeInForce


cdef inline void fill_intent(CIntent* out, object intent) except *:
    # PyNumber_Index: a float price must fail loudly, not truncate.
    out.instrument = <uint32_t>PyNumber_Index(intent.instrument)
    out.kind = <CIntentKind><uint8_t>PyNumber_Index(intent.kind)
    out.side = <CSide><uint8_t>PyNumber_Index(intent.side)
    out.tif = <CTimeInForce><uint8_t>PyNumber_Index(intent.tif)
    out.price = <int64_t>PyNumber_Index(intent.price)
    out.qty = <int64_t>PyNumber_Index(intent.qty)
    out.client_order_id = <uint64_t>PyNumber_Index(intent.client_order_id)
    out.target_order_id = <uint64_t>PyNumber_Index(intent.target_order_id)
