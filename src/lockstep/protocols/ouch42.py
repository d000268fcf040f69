"""OUCH 4.2 order entry messages (include/lockstep/codecs/ouch42.hpp).

    data = encode(EnterOrder(token="ORD1", side="B", shares=100, stock="AAPL", price=1_234_500,
                             time_in_force=0, firm="", display="Y", capacity="A",
                             intermarket_sweep="N", minimum_quantity=0, cross_type="N",
                             customer_type="R"))
    decode_inbound(data) == EnterOrder(...)

Inbound (client to venue): EnterOrder 'O', ReplaceOrder 'U', CancelOrder 'X'. Outbound (venue to
client): SystemEvent 'S', Accepted 'A', Replaced 'U', Canceled 'C', AiqCanceled 'D', Executed 'E',
BrokenTrade 'B', PriceCorrection 'K', Rejected 'J', CancelPending 'P', CancelReject 'I'. Prices
are Price(4): 4 implied decimals (1_234_500 is 123.45); timestamps are ns since midnight. The
codec checks the framing (type byte, exact length); whether a code is one the venue accepts is
the venue's to judge.
"""
from __future__ import annotations

import dataclasses

from lockstep._bindings import protocols as _codec
from lockstep.protocols.fields import Code, FixedMessage, by_type

_frozen = dataclasses.dataclass(frozen=True)


# Inbound


@_frozen
class EnterOrder(FixedMessage):
    TYPE = "O"
    token: str
    side: Code  # B buy, S sell, T sell short, E sell short exempt
    shares: int
    stock: str
    price: int
    time_in_force: int  # seconds; 0 immediate or cancel, 99998 market hours, 99999 system hours
    firm: str
    display: Code
    capacity: Code
    intermarket_sweep: Code
    minimum_quantity: int
    cross_type: Code
    customer_type: Code


@_frozen
class ReplaceOrder(FixedMessage):
    TYPE = "U"
    existing_token: str
    replacement_token: str
    shares: int
    price: int
    time_in_force: int
    display: Code
    intermarket_sweep: Code
    minimum_quantity: int


@_frozen
class CancelOrder(FixedMessage):
    TYPE = "X"
    token: str
    shares: int  # the shares to leave on the order: 0 cancels it


# Outbound


@_frozen
class SystemEvent(FixedMessage):
    TYPE = "S"
    timestamp: int
    event_code: Code  # S start of day, E end of day


@_frozen
class _OrderNotice(FixedMessage):
    timestamp: int
    token: str


@_frozen
class _OrderView(_OrderNotice):
    """The fields Accepted and Replaced share, up to the order state."""

    side: Code
    shares: int
    stock: str
    price: int
    time_in_force: int
    firm: str
    display: Code
    order_reference: int
    capacity: Code
    intermarket_sweep: Code
    minimum_quantity: int
    cross_type: Code
    order_state: Code  # L live, D dead


@_frozen
class Accepted(_OrderView):
    TYPE = "A"
    bbo_weight: Code


@_frozen
class Replaced(_OrderView):
    """`token` is the replacement token."""

    TYPE = "U"
    previous_token: str
    bbo_weight: Code


@_frozen
class Canceled(_OrderNotice):
    TYPE = "C"
    decrement_shares: int
    reason: Code


@_frozen
class AiqCanceled(_OrderNotice):
    TYPE = "D"
    decrement_shares: int
    reason: Code
    quantity_prevented: int
    execution_price: int
    liquidity_flag: Code


@_frozen
class Executed(_OrderNotice):
    TYPE = "E"
    executed_shares: int
    execution_price: int
    liquidity_flag: Code
    match_number: int


@_frozen
class BrokenTrade(_OrderNotice):
    TYPE = "B"
    match_number: int
    reason: Code


@_frozen
class PriceCorrection(_OrderNotice):
    TYPE = "K"
    match_number: int
    new_execution_price: int
    reason: Code


@_frozen
class Rejected(_OrderNotice):
    TYPE = "J"
    reason: Code


@_frozen
class CancelPending(_OrderNotice):
    TYPE = "P"


@_frozen
class CancelReject(_OrderNotice):
    TYPE = "I"


INBOUND = by_type(EnterOrder, ReplaceOrder, CancelOrder)
OUTBOUND = by_type(SystemEvent, Accepted, Replaced, Canceled, AiqCanceled, Executed, BrokenTrade,
                   PriceCorrection, Rejected, CancelPending, CancelReject)
Inbound = EnterOrder | ReplaceOrder | CancelOrder
Outbound = (SystemEvent | Accepted | Replaced | Canceled | AiqCanceled | Executed | BrokenTrade
            | PriceCorrection | Rejected | CancelPending | CancelReject)


def _family(message: FixedMessage) -> int:
    cls = type(message)
    if INBOUND.get(cls.TYPE) is cls:
        return _codec.OUCH_INBOUND
    if OUTBOUND.get(cls.TYPE) is cls:
        return _codec.OUCH_OUTBOUND
    raise TypeError(f"not an OUCH 4.2 message: {cls.__name__}")


def encode(message: Inbound | Outbound) -> bytes:
    """The message's bytes (type byte first), as a SoupBinTCP data packet carries them."""
    return _codec.encode_fields(_family(message), ord(message.TYPE), message.wire_values())


def decode_inbound(data: bytes) -> Inbound:
    """One client-to-venue message; ProtocolError if the bytes are not one."""
    type_byte, values = _codec.decode_fields(_codec.OUCH_INBOUND, data)
    return INBOUND[chr(type_byte)].from_wire_values(values)


def decode_outbound(data: bytes) -> Outbound:
    """One venue-to-client message; ProtocolError if the bytes are not one."""
    type_byte, values = _codec.decode_fields(_codec.OUCH_OUTBOUND, data)
    return OUTBOUND[chr(type_byte)].from_wire_values(values)


__all__ = [
    "INBOUND", "OUTBOUND", "Accepted", "AiqCanceled", "BrokenTrade", "CancelOrder",
    "CancelPending", "CancelReject", "Canceled", "EnterOrder", "Executed", "PriceCorrection",
    "Rejected", "ReplaceOrder", "Replaced", "SystemEvent", "decode_inbound", "decode_outbound",
    "encode",
]
