"""The loopback venue's order entry: OUCH 4.2 over SoupBinTCP 4.1, matched by the simulated
venue's matchers (lockstep.venue.matching: the C++ the backtests use).

    handler = MatchingOrderHandler([Market(instrument, book, L2Matcher())], clock_ns=replay_clock)
    server = OrderEntryServer("tcp://127.0.0.1:0", [Account("ALICE", "secret")], handler)
    while running:
        ...                      # the feed moves `book` and calls the matcher's on_trade/on_level
        server.poll(0.001)       # serves clients, and sends the fills the feed caused
    server.end_session()         # System Event E, End of Session, close
    server.summary()             # {"sessions": ..., "logins": ..., "orders": ..., "fills": ...}

An `OrderHandler` turns one inbound OUCH message of one account into the outbound OUCH messages
that answer it (`submit`, `replace`, `cancel`), and hands out the messages nobody asked for
(`drain`: fills of resting orders caused by the market). `MatchingOrderHandler` is the one the
venue uses. docs/protocols.md ("OUCH 4.2 at the loopback venue") lists how each OUCH field maps
onto the matcher's order and each matcher outcome onto an OUCH message.
"""
from __future__ import annotations

import collections
import dataclasses
import logging
import time
from collections.abc import Callable, Iterable
from typing import Protocol

from lockstep.core.books import L2Book, L3Book
from lockstep.data.dataset import Instrument
from lockstep.enums import MatchEventKind, MatchReject, SubmitOutcome, TimeInForce
from lockstep.events import Side
from lockstep.protocols import ouch42 as ouch
from lockstep.venue.loopback.feed import price_multiplier
from lockstep.venue.loopback.sessions import Account, SoupServer
from lockstep.venue.matching import (
    L2Matcher,
    L3Matcher,
    MatchEvent,
    MatchResult,
    order_rules_reject,
)

log = logging.getLogger("lockstep.venue.loopback")

#: OUCH 4.2 Rejected reasons we send, with the specification's meaning (docs/protocols.md says
#: which refusal gets which). Its "Z" (shares exceeds configured safety threshold) is not one of
#: them: the venue configures no threshold.
REJECT_INVALID_STOCK = "S"  # invalid stock
REJECT_INVALID_PRICE = "X"  # invalid price
REJECT_ODD_LOT = "e"  # odd lot order restriction: the size breaks the instrument's lot rules
REJECT_INVALID_DISPLAY = "D"  # invalid display type
REJECT_INVALID_MINIMUM_QUANTITY = "N"  # invalid minimum quantity
REJECT_HALTED = "H"  # halted: no orders accepted in this stock now
REJECT_OTHER = "O"  # other
#: OUCH 4.2 Canceled reasons we send.
CANCEL_USER_REQUESTED = "U"
CANCEL_IMMEDIATE_OR_CANCEL = "I"
CANCEL_TIMEOUT = "T"  # the order's time in force ended: a day order still live when the session ends
#: Liquidity flags of Executed.
LIQUIDITY_ADDED = "A"
LIQUIDITY_REMOVED = "R"

#: Side codes: B buy; S sell, T sell short, E sell short exempt all sell (no locate is modelled).
SIDES = {"B": Side.BID, "S": Side.ASK, "T": Side.ASK, "E": Side.ASK}
#: Time in force: 0 immediate or cancel; 99998 (market hours) and 99999 (system hours) live
#: until the session ends. Timed orders (1 to 99997 s) are not modelled and are rejected.
TIF_IOC = 0
TIF_MARKET_HOURS = 99998
TIF_SYSTEM_HOURS = 99999
#: Display codes taken: Y visible, A attributable (both displayed orders to the matcher), P post
#: only. Hidden and pegged kinds are not modelled and are rejected.
DISPLAYS = {"Y": None, "A": None, "P": TimeInForce.POST_ONLY}

_NS_PER_DAY = 86_400 * 1_000_000_000
_MATCH_REJECTS = {
    MatchReject.BAD_PRICE: REJECT_INVALID_PRICE, MatchReject.OFF_TICK: REJECT_INVALID_PRICE,
    MatchReject.BAD_QTY: REJECT_OTHER, MatchReject.OFF_LOT: REJECT_ODD_LOT,
    MatchReject.BELOW_MIN_QTY: REJECT_ODD_LOT, MatchReject.NOT_TRADING: REJECT_HALTED,
}


def wall_clock_ns() -> int:
    """Nanoseconds since midnight UTC: the default timestamp of a venue not told the replay's."""
    return time.time_ns() % _NS_PER_DAY


class TradedMarket(Protocol):
    """One instrument the venue trades, as the order handler uses it: its table row (OUCH
    `stock` is its symbol; prices and shares become its data increments) and the matcher of our
    orders, which knows the instrument's book."""

    @property
    def instrument(self) -> Instrument: ...

    def submit(self, client_order_id: int, side: Side, tif: TimeInForce, price: int,
               qty: int) -> MatchResult: ...

    def replace(self, client_order_id: int, price: int, qty: int) -> MatchResult: ...

    def cancel(self, client_order_id: int) -> bool: ...

    def drain(self) -> list[MatchEvent]: ...


@dataclasses.dataclass(frozen=True)
class Market:
    """A TradedMarket from a book the caller moves and a matcher the caller tells the market
    (lockstep.venue.loopback.trading has the venue's own, moved by its replay in C++)."""

    instrument: Instrument
    book: L2Book | L3Book
    matcher: L2Matcher | L3Matcher

    def submit(self, client_order_id: int, side: Side, tif: TimeInForce, price: int,
               qty: int) -> MatchResult:
        return self.matcher.submit(client_order_id, side, tif, price, qty, self.book)

    def replace(self, client_order_id: int, price: int, qty: int) -> MatchResult:
        return self.matcher.replace(client_order_id, price, qty, self.book)

    def cancel(self, client_order_id: int) -> bool:
        return self.matcher.cancel(client_order_id)

    def drain(self) -> list[MatchEvent]:
        return self.matcher.drain()


class OrderHandler(Protocol):
    """What the order-entry server asks of the venue behind it."""

    def timestamp(self) -> int:
        """Nanoseconds since the session day's midnight, for outbound messages."""

    def submit(self, username: str, order: ouch.EnterOrder) -> list[ouch.Outbound]: ...

    def replace(self, username: str, order: ouch.ReplaceOrder) -> list[ouch.Outbound]: ...

    def cancel(self, username: str, order: ouch.CancelOrder) -> list[ouch.Outbound]: ...

    def drain(self) -> list[tuple[str, ouch.Outbound]]:
        """Messages nobody asked for since the last call (fills of resting orders), with the
        account each goes to, oldest first."""

    def end_of_day(self) -> list[tuple[str, ouch.Outbound]]:
        """The session is ending: what every order still live gets, with its account."""

    def counts(self) -> dict[str, int]:
        """orders, rejects, fills, ignored (messages a venue drops without an answer; of them
        duplicate_tokens: an Enter or a Replace to a token used before, unknown_tokens: a Cancel
        or Replace of a token unknown or no longer live), expired (orders still live when the
        session ended)."""


@dataclasses.dataclass
class _Order:
    """One token's order as the venue acknowledged it (OUCH units)."""

    username: str
    token: str
    market: TradedMarket | None
    client_order_id: int
    message: ouch.EnterOrder  # its fields as entered, shares/price/tif updated by replaces
    open_shares: int
    live: bool = True


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


class MatchingOrderHandler:
    """OUCH 4.2 orders matched by the simulated venue's matchers, one Market per symbol.

    Tokens are day-unique per account: (account, token) names one order, and the venue gives
    each a client order id of its own for the matcher (unique over all accounts, so one matcher
    serves everyone). A token used before, a cancel or replace of a token that is unknown or no
    longer live, and a replace to a used token are ignored, as OUCH 4.2 says: no answer, counted
    as `ignored` and logged.
    """

    def __init__(self, markets: Iterable[TradedMarket], *,
                 clock_ns: Callable[[], int] = wall_clock_ns) -> None:
        self._markets = {m.instrument.symbol: m for m in markets}
        # The instruments' order-entry rules, which the venue enforces whatever the client checked.
        self._rules = {k: m.instrument.order_rules()[0] for k, m in self._markets.items()}
        # OUCH prices are the feed's: ticks x its multiplier (computed once, used per message).
        self._multipliers = {k: price_multiplier(m.instrument) for k, m in self._markets.items()}
        self._clock_ns = clock_ns
        self._orders: dict[tuple[str, str], _Order] = {}
        self._live: dict[int, _Order] = {}  # client order id -> live order
        self._next_id = 1
        self._next_reference = 1
        self._next_match = 1
        self._unsolicited: list[tuple[str, ouch.Outbound]] = []
        self._counts = collections.Counter({"orders": 0, "rejects": 0, "fills": 0, "ignored": 0,
                                            "duplicate_tokens": 0, "unknown_tokens": 0,
                                            "expired": 0})

    def timestamp(self) -> int:
        return self._clock_ns()

    def _priced(self, market: TradedMarket, price: int, shares: int) -> tuple[int, int]:
        """An order's OUCH price and shares in data units, _Refused with the OUCH reason when
        they are not valid or break the instrument's order-entry rules."""
        ticks, lots = _ticks_and_lots(self._multipliers[market.instrument.symbol], price, shares)
        breach = order_rules_reject(self._rules[market.instrument.symbol], ticks, lots)
        if breach is not MatchReject.NONE:
            raise _Refused(_MATCH_REJECTS.get(breach, REJECT_OTHER))
        return ticks, lots

    def counts(self) -> dict[str, int]:
        return dict(self._counts)

    def drain(self) -> list[tuple[str, ouch.Outbound]]:
        for market in self._markets.values():
            self._collect(market)
        out, self._unsolicited = self._unsolicited, []
        return out

    def end_of_day(self) -> list[tuple[str, ouch.Outbound]]:
        """Every live order's time in force (market or system hours, all this venue keeps) ends
        with the session: each is canceled, Canceled with reason T (timeout), oldest first."""
        out = self.drain()
        for client_order_id in sorted(self._live):
            entry = self._live[client_order_id]
            entry.market.cancel(client_order_id)
            entry.market.drain()
            shares = entry.open_shares
            self._reduce(entry, shares)
            self._counts["expired"] += 1
            out.append((entry.username, ouch.Canceled(self.timestamp(), entry.token, shares,
                                                      CANCEL_TIMEOUT)))
        return out

    # ---------------------------------------------------------------- inbound

    def submit(self, username: str, order: ouch.EnterOrder) -> list[ouch.Outbound]:
        self._counts["orders"] += 1
        key = (username, order.token)
        if key in self._orders:
            return self._ignore(username, f"Enter Order reuses token {order.token!r}",
                                "duplicate_tokens")
        market = self._markets.get(order.stock)
        if market is None:
            self._orders[key] = _Order(username, order.token, None, 0, order, 0, live=False)
            return [self._rejected(order.token, REJECT_INVALID_STOCK)]
        entry = _Order(username, order.token, market, self._next_id, order, order.shares)
        self._next_id += 1
        self._orders[key] = entry
        try:
            side = SIDES.get(order.side)
            if side is None:
                raise _Refused(REJECT_OTHER)
            if order.minimum_quantity != 0:
                raise _Refused(REJECT_INVALID_MINIMUM_QUANTITY)
            tif = _time_in_force(order.time_in_force, order.display)
            price, qty = self._priced(market, order.price, order.shares)
        except _Refused as refused:
            entry.live = False
            return [self._rejected(order.token, refused.reason)]
        self._collect(market)
        result = market.submit(entry.client_order_id, side, tif, price, qty)
        events = market.drain()
        if result.outcome is SubmitOutcome.REJECTED:
            entry.live = False
            return [self._rejected(order.token, _MATCH_REJECTS.get(result.reason, REJECT_OTHER))]
        self._live[entry.client_order_id] = entry
        out: list[ouch.Outbound] = [self._view(ouch.Accepted, entry, result)]
        return out + self._answer(entry, events)

    def replace(self, username: str, order: ouch.ReplaceOrder) -> list[ouch.Outbound]:
        entry = self._orders.get((username, order.existing_token))
        if entry is None or not entry.live:
            return self._ignore(username, f"Replace Order of token {order.existing_token!r}, "
                                          "which is not live", "unknown_tokens")
        if (username, order.replacement_token) in self._orders:
            return self._ignore(username, f"Replace Order to token {order.replacement_token!r}, "
                                          "used before", "duplicate_tokens")
        market = entry.market
        try:
            if order.minimum_quantity != 0:
                raise _Refused(REJECT_INVALID_MINIMUM_QUANTITY)
            old = _time_in_force(entry.message.time_in_force, entry.message.display)
            if _time_in_force(order.time_in_force, order.display) is not old:
                raise _Refused(REJECT_OTHER)  # the matcher re-enters an order with its own
            price, qty = self._priced(market, order.price, order.shares)
        except _Refused as refused:
            return [self._rejected(order.replacement_token, refused.reason)]
        self._collect(market)
        result = market.replace(entry.client_order_id, price, qty)
        events = market.drain()
        if result.outcome is SubmitOutcome.REJECTED:
            return [self._rejected(order.replacement_token,
                                   _MATCH_REJECTS.get(result.reason, REJECT_OTHER))]
        previous = entry.token
        entry.live = False  # the existing token is spent; the order lives on under the new one
        entry = dataclasses.replace(
            entry, token=order.replacement_token, open_shares=order.shares, live=True,
            message=dataclasses.replace(entry.message, token=order.replacement_token,
                                        shares=order.shares, price=order.price,
                                        time_in_force=order.time_in_force,
                                        display=order.display,
                                        intermarket_sweep=order.intermarket_sweep))
        self._orders[(username, order.replacement_token)] = entry
        self._live[entry.client_order_id] = entry
        out: list[ouch.Outbound] = [self._view(ouch.Replaced, entry, result, previous)]
        return out + self._answer(entry, [e for e in events
                                          if e.kind is not MatchEventKind.REPLACED])

    def cancel(self, username: str, order: ouch.CancelOrder) -> list[ouch.Outbound]:
        entry = self._orders.get((username, order.token))
        if entry is None or not entry.live:
            return self._ignore(username, f"Cancel Order of token {order.token!r}, "
                                          "which is not live", "unknown_tokens")
        if order.shares >= entry.open_shares:
            return self._ignore(username, f"Cancel Order of token {order.token!r} to "
                                          f"{order.shares} shares, not below its open "
                                          f"{entry.open_shares}")
        market = entry.market
        self._collect(market)
        if order.shares == 0:
            market.cancel(entry.client_order_id)
        else:
            try:
                price, qty = _ticks_and_lots(self._multipliers[market.instrument.symbol],
                                             entry.message.price, order.shares)
            except _Refused:
                return self._ignore(username, f"Cancel Order of token {order.token!r} to "
                                              f"{order.shares} shares, refused")
            # Same price, fewer shares: the matcher keeps the order's place in its queue.
            market.replace(entry.client_order_id, price, qty)
        market.drain()
        decrement = entry.open_shares - order.shares
        self._reduce(entry, decrement)
        return [ouch.Canceled(self.timestamp(), entry.token, decrement, CANCEL_USER_REQUESTED)]

    # ---------------------------------------------------------------- outbound

    def _ignore(self, username: str, what: str, kind: str | None = None) -> list[ouch.Outbound]:
        """No answer, as OUCH 4.2 says; counted as ignored (and as `kind`) and logged."""
        self._counts["ignored"] += 1
        if kind is not None:
            self._counts[kind] += 1
        log.warning("OUCH from %s ignored: %s", username, what)
        return []

    def _rejected(self, token: str, reason: str) -> ouch.Rejected:
        self._counts["rejects"] += 1
        return ouch.Rejected(self.timestamp(), token, reason)

    def _view(self, cls: type, entry: _Order, result: MatchResult, *previous: str):
        """Accepted or Replaced (with the previous token) echoing the order's fields."""
        m = entry.message
        reference = self._next_reference
        self._next_reference += 1
        state = "L" if result.outcome is SubmitOutcome.RESTED else "D"
        return cls(self.timestamp(), entry.token, m.side, m.shares, m.stock, m.price,
                   m.time_in_force, m.firm, m.display, reference, m.capacity,
                   m.intermarket_sweep, m.minimum_quantity, m.cross_type, state, *previous, " ")

    def _answer(self, entry: _Order, events: list[MatchEvent]) -> list[ouch.Outbound]:
        """Executed / Canceled for the matcher's events about `entry` (its own submit or
        replace: fills there took liquidity, a cancel is an IOC's remainder)."""
        out: list[ouch.Outbound] = []
        for event in events:
            message = self._event_message(entry, event, taker_cancel=True)
            if message is not None:
                out.append(message)
        return out

    def _collect(self, market: TradedMarket) -> None:
        """Routes what the matcher reported since its last drain (the market filling resting
        orders) to the accounts that own them."""
        for event in market.drain():
            entry = self._live.get(event.client_order_id)
            if entry is None:
                continue
            message = self._event_message(entry, event, taker_cancel=False)
            if message is not None:
                self._unsolicited.append((entry.username, message))

    def _event_message(self, entry: _Order, event: MatchEvent,
                       taker_cancel: bool) -> ouch.Outbound | None:
        if event.kind is MatchEventKind.FILL:
            shares = event.qty
            self._reduce(entry, shares)
            self._counts["fills"] += 1
            match = self._next_match
            self._next_match += 1
            return ouch.Executed(self.timestamp(), entry.token, shares,
                                 event.price * self._multipliers[entry.market.instrument.symbol],
                                 LIQUIDITY_ADDED if event.maker else LIQUIDITY_REMOVED, match)
        if event.kind is MatchEventKind.CANCELED:
            shares = event.qty
            self._reduce(entry, shares)
            reason = CANCEL_IMMEDIATE_OR_CANCEL if taker_cancel else CANCEL_USER_REQUESTED
            return ouch.Canceled(self.timestamp(), entry.token, shares, reason)
        return None

    def _reduce(self, entry: _Order, shares: int) -> None:
        entry.open_shares -= shares
        if entry.open_shares <= 0:
            entry.live = False
            self._live.pop(entry.client_order_id, None)


def _time_in_force(seconds: int, display: str) -> TimeInForce:
    if display not in DISPLAYS:
        raise _Refused(REJECT_INVALID_DISPLAY)
    post_only = DISPLAYS[display]
    if seconds == TIF_IOC:
        if post_only is not None:
            raise _Refused(REJECT_OTHER)  # post only and immediate or cancel exclude each other
        return TimeInForce.IOC
    if seconds in (TIF_MARKET_HOURS, TIF_SYSTEM_HOURS):
        return post_only if post_only is not None else TimeInForce.GTC
    raise _Refused(REJECT_OTHER)


def _ticks_and_lots(multiplier: int, price: int, shares: int) -> tuple[int, int]:
    """An OUCH price and share count in the instrument's data units, read as the feed writes
    them (price = ticks x the feed's price `multiplier`, one share = one lot); _Refused when
    either is not positive or the price is off the tick."""
    if price <= 0:
        raise _Refused(REJECT_INVALID_PRICE)
    if shares <= 0:
        raise _Refused(REJECT_OTHER)  # OUCH 4.2 has no reason for no shares at all
    ticks, off_tick = divmod(price, multiplier)
    if off_tick:
        raise _Refused(REJECT_INVALID_PRICE)
    return ticks, shares


class OrderEntryServer:
    """The venue's OUCH 4.2 port: SoupBinTCP sessions (lockstep.venue.loopback.sessions) in
    front of an OrderHandler. Every account's stream starts with System Event S (start of day);
    end_session() appends System Event E before End of Session. The session options (session
    name, heartbeat_interval, client_timeout, history, write_capacity, clock) are SoupServer's."""

    def __init__(self, address: str, accounts: Iterable[Account], handler: OrderHandler,
                 **session_options) -> None:
        self._handler = handler
        self._counts = collections.Counter({"protocol_errors": 0})
        self._soup = SoupServer(address, accounts, self._on_data, **session_options)
        self._broadcast(ouch.SystemEvent(handler.timestamp(), "S"))

    @property
    def address(self) -> str:
        return self._soup.address

    @property
    def soup(self) -> SoupServer:
        return self._soup

    def fileno(self) -> int:
        return self._soup.fileno()

    def poll(self, timeout: float = 0.0) -> None:
        """One non-blocking step: serves the clients, then sends the fills the market caused."""
        self._soup.poll(timeout)
        self.deliver()

    def deliver(self) -> None:
        """Sends what the handler has for accounts unasked (fills of resting orders)."""
        for username, message in self._handler.drain():
            self._soup.send(username, ouch.encode(message))

    def end_session(self) -> None:
        """Fills still waiting, then every live order canceled (its time in force ends with the
        session), then System Event E and End of Session to every logged-in account."""
        for username, message in self._handler.end_of_day():
            self._soup.send(username, ouch.encode(message))
        self._broadcast(ouch.SystemEvent(self._handler.timestamp(), "E"))
        self._soup.end_session()

    def close(self) -> None:
        self._soup.close()

    def summary(self) -> dict[str, int]:
        """sessions (connections accepted), logins, login_rejects, orders, rejects, fills,
        ignored (duplicate_tokens, unknown_tokens), expired, messages_in, messages_out, disconnects, protocol_errors, timeouts, replayed,
        heartbeats, logouts."""
        soup_counts = self._soup.counts
        out = {"sessions": soup_counts["connections"]}
        out.update((k, v) for k, v in soup_counts.items() if k != "connections")
        out.update(self._handler.counts())
        return out

    def _broadcast(self, message: ouch.Outbound) -> None:
        payload = ouch.encode(message)
        for username in self._soup.usernames:
            self._soup.send(username, payload)

    def _on_data(self, username: str, payload: bytes) -> None:
        message = ouch.decode_inbound(payload)  # ProtocolError: the session drops the client
        self.deliver()  # what the market did before this message reached the venue goes first
        if isinstance(message, ouch.EnterOrder):
            answers = self._handler.submit(username, message)
        elif isinstance(message, ouch.ReplaceOrder):
            answers = self._handler.replace(username, message)
        else:
            answers = self._handler.cancel(username, message)
        for answer in answers:
            self._soup.send(username, ouch.encode(answer))


__all__ = [
    "LIQUIDITY_ADDED", "LIQUIDITY_REMOVED", "Market", "MatchingOrderHandler", "OrderEntryServer",
    "OrderHandler", "TradedMarket", "wall_clock_ns",
]
