"""Reference OUCH 4.2 codec: lockstep.protocols.ouch42's API and results, with struct.

One struct format per message (after the type byte), written from the specification's tables:
's' an alpha field of that width, 'B' a one-byte code, 'I' and 'Q' 4- and 8-byte integers.
"""
from __future__ import annotations

import re
import struct

from lockstep.enums import WireProblem
from lockstep.errors import ProtocolError
from lockstep.protocols import ouch42 as api

LAYOUTS: dict[type, str] = {
    api.EnterOrder: "14sBI8sII4sBBBIBB",
    api.ReplaceOrder: "14s14sIIIBBI",
    api.CancelOrder: "14sI",
    api.SystemEvent: "QB",
    api.Accepted: "Q14sBI8sII4sBQBBIBBB",
    api.Replaced: "Q14sBI8sII4sBQBBIBB14sB",
    api.Canceled: "Q14sIB",
    api.AiqCanceled: "Q14sIBIIB",
    api.Executed: "Q14sIIBQ",
    api.BrokenTrade: "Q14sQB",
    api.PriceCorrection: "Q14sQIB",
    api.Rejected: "Q14sB",
    api.CancelPending: "Q14s",
    api.CancelReject: "Q14s",
}


def pack_fields(layout: str, values: tuple, what: str) -> bytes:
    """`values` packed big-endian by `layout`, bytes values space-padded to their 's' width."""
    widths = iter(int(w) for w in re.findall(r"(\d+)s", layout))
    padded = []
    for i, value in enumerate(values):
        if isinstance(value, bytes):
            width = next(widths)
            if len(value) > width:
                raise ValueError(f"{what} field {i}: {len(value)} bytes do not fit {width}")
            value = value.ljust(width, b" ")
        padded.append(value)
    try:
        return struct.pack(">" + layout, *padded)
    except struct.error as e:
        raise ValueError(f"{what}: {e}") from None


def unpack(classes: dict[str, type], data: bytes, what: str):
    if not data:
        raise ProtocolError(WireProblem.TRUNCATED, 0, what)
    cls = classes.get(chr(data[0]))
    if cls is None:
        raise ProtocolError(WireProblem.UNKNOWN_TYPE, 0, what)
    layout = struct.Struct(">" + LAYOUTS[cls])
    length = 1 + layout.size
    if len(data) < length:
        raise ProtocolError(WireProblem.TRUNCATED, len(data), what)
    if len(data) > length:
        raise ProtocolError(WireProblem.TRAILING_BYTES, length, what)
    return cls.from_wire_values(layout.unpack(data[1:]))


def encode(message: api.Inbound | api.Outbound) -> bytes:
    layout = LAYOUTS.get(type(message))
    if layout is None:
        raise TypeError(f"not an OUCH 4.2 message: {type(message).__name__}")
    what = type(message).__name__
    return message.TYPE.encode("latin-1") + pack_fields(layout, message.wire_values(), what)


def decode_inbound(data: bytes) -> api.Inbound:
    return unpack(api.INBOUND, bytes(data), "OUCH message")


def decode_outbound(data: bytes) -> api.Outbound:
    return unpack(api.OUTBOUND, bytes(data), "OUCH message")
