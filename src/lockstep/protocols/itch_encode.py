"""ITCH 5.0 encoder (include/lockstep/codecs/itch_encode.hpp): the messages a venue publishes
about its book, in the bytes lockstep's ITCH decoder (lockstep.data.importers.itch) reads.

    block = encode(AddOrder(stock_locate=1, tracking_number=0, timestamp=ns_since_midnight,
                            order_reference=7, side="B", shares=100, stock="AAPL",
                            price=1_234_500))

Every message starts with stock_locate, tracking_number and timestamp (ns since midnight, 48
bits). Prices are Price(4): 4 implied decimals. There is no decoder here on purpose: decoding
ITCH is the one decoder's job.
"""
from __future__ import annotations

import dataclasses

from lockstep._bindings import protocols as _codec
from lockstep.protocols.fields import Code, FixedMessage, by_type

_frozen = dataclasses.dataclass(frozen=True)


@_frozen
class _ItchMessage(FixedMessage):
    stock_locate: int
    tracking_number: int
    timestamp: int


@_frozen
class SystemEvent(_ItchMessage):
    TYPE = "S"
    event_code: Code  # O start of messages, S start of system hours, Q start of market, ...


@_frozen
class StockDirectory(_ItchMessage):
    TYPE = "R"
    stock: str
    market_category: Code
    financial_status: Code
    round_lot_size: int
    round_lots_only: Code
    issue_classification: Code
    issue_subtype: str
    authenticity: Code
    short_sale_threshold: Code
    ipo_flag: Code
    luld_tier: Code
    etp_flag: Code
    etp_leverage_factor: int
    inverse: Code


@_frozen
class TradingAction(_ItchMessage):
    TYPE = "H"
    stock: str
    trading_state: Code  # H halted, P paused, Q quotation only, T trading
    reserved: Code
    reason: str


@_frozen
class _Order(_ItchMessage):
    order_reference: int


@_frozen
class AddOrder(_Order):
    TYPE = "A"
    side: Code  # B buy, S sell
    shares: int
    stock: str
    price: int


@_frozen
class AddOrderMpid(AddOrder):
    TYPE = "F"
    attribution: str


@_frozen
class OrderExecuted(_Order):
    TYPE = "E"
    executed_shares: int
    match_number: int


@_frozen
class OrderExecutedWithPrice(OrderExecuted):
    TYPE = "C"
    printable: Code  # Y or N
    execution_price: int


@_frozen
class OrderCancel(_Order):
    TYPE = "X"
    canceled_shares: int


@_frozen
class OrderDelete(_Order):
    TYPE = "D"


@_frozen
class OrderReplace(_ItchMessage):
    TYPE = "U"
    original_reference: int
    new_reference: int
    shares: int
    price: int


@_frozen
class Trade(AddOrder):
    """Non-cross trade: an execution against a non-displayed order."""

    TYPE = "P"
    match_number: int


MESSAGES = by_type(SystemEvent, StockDirectory, TradingAction, AddOrder, AddOrderMpid,
                   OrderExecuted, OrderExecutedWithPrice, OrderCancel, OrderDelete, OrderReplace,
                   Trade)


def encode(message: _ItchMessage) -> bytes:
    """The message's bytes (type byte first), as a MoldUDP64 block carries them."""
    if MESSAGES.get(message.TYPE) is not type(message):
        raise TypeError(f"not an ITCH 5.0 message of this encoder: {type(message).__name__}")
    return _codec.encode_fields(_codec.ITCH, ord(message.TYPE), message.wire_values())


__all__ = [
    "MESSAGES", "AddOrder", "AddOrderMpid", "OrderCancel", "OrderDelete", "OrderExecuted",
    "OrderExecutedWithPrice", "OrderReplace", "StockDirectory", "SystemEvent", "Trade",
    "TradingAction", "encode",
]
