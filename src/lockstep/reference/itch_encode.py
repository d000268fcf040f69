"""Reference ITCH 5.0 encoder: lockstep.protocols.itch_encode's API and results, with struct.

Every message: type, stock locate (2), tracking number (2), a 6-byte timestamp, then its fields
by the struct format below, written from the specification's tables.
"""
from __future__ import annotations

from lockstep.protocols import itch_encode as api
from lockstep.reference.ouch42 import pack_fields

LAYOUTS: dict[type, str] = {
    api.SystemEvent: "B",
    api.StockDirectory: "8sBBIBB2sBBBBBIB",
    api.TradingAction: "8sBB4s",
    api.AddOrder: "QBI8sI",
    api.AddOrderMpid: "QBI8sI4s",
    api.OrderExecuted: "QIQ",
    api.OrderExecutedWithPrice: "QIQBI",
    api.OrderCancel: "QI",
    api.OrderDelete: "Q",
    api.OrderReplace: "QQII",
    api.Trade: "QBI8sIQ",
}


def encode(message: api._ItchMessage) -> bytes:
    layout = LAYOUTS.get(type(message))
    if layout is None:
        raise TypeError(f"not an ITCH 5.0 message of this encoder: {type(message).__name__}")
    what = type(message).__name__
    locate, tracking, timestamp, *rest = message.wire_values()
    if not 0 <= timestamp < 1 << 48:
        raise ValueError(f"{what}: timestamp {timestamp} does not fit 6 bytes")
    head = message.TYPE.encode("latin-1") + pack_fields("HH", (locate, tracking), what)
    return head + timestamp.to_bytes(6, "big") + pack_fields(layout, tuple(rest), what)
