"""Reference twin of the loopback venue's ITCH feed (include/lockstep/venue/itch_feed.hpp, bound
as lockstep._bindings.itch_feed.ItchFeed): the same API and, for an output buffer that never
fills, the same bytes. Plain dicts for the order maps, struct for the messages (through the
reference ITCH encoder and MoldUDP64 packet writer). docs/loopback-venue.md says what each event
becomes."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lockstep.enums import FeedSkip, MatchEventKind, Status
from lockstep.events import EventKind, Flag, Side
from lockstep.protocols import itch_encode as msg
from lockstep.reference import itch_encode, moldudp64
from lockstep.reference.replayed_markets import ReplayedMarkets

_U32 = (1 << 32) - 1
_MARKET_END = 32
_HEADER = 20
_LONGEST = 2 + 44  # a block's length and the longest message written ('P')
_OWN = 1 << 63  # in the key of our own orders shown


class _Order:
    __slots__ = ("instrument", "key", "own", "price", "reference", "shares", "side")

    def __init__(self, reference: int, key: int, price: int, shares: int, instrument: int, side: str,
                 own: bool = False):
        self.reference, self.key, self.price = reference, key, price
        self.shares, self.instrument, self.side, self.own = shares, instrument, side, own


class ItchFeed:
    def __init__(self, session: bytes, packet_bytes: int, day_start_ns: int, first_sequence: int,
                 expected_orders: int) -> None:
        self._session = session.decode("latin-1")
        self._packet_bytes = packet_bytes
        self._day_start = day_start_ns
        self._last_event_ts = day_start_ns  # the snapshot's clock: the last event consumed
        self._next_sequence = first_sequence
        self._next_reference = 1
        self._match = 0
        self._at_start = True
        self._execute_in_message = False
        self._instruments: dict[int, tuple[str, int, bool]] = {}
        # per instrument, insertion-ordered (newest last): L3 orders by id, L2 levels by (side, price)
        self._orders: dict[int, dict[Any, _Order]] = {}
        self._counts = {"messages": 0, "packets": 0, "events": 0, "skipped": [0] * len(FeedSkip)}
        self._packet: list[bytes] = []
        self._packet_size = 0
        self._markets: ReplayedMarkets | None = None
        self._own: list[_Order] = []  # our orders shown, in the order first shown
        self.filled = False

    def add_instrument(self, index: int, symbol: bytes, price_multiplier: int, l2: bool) -> None:
        self._instruments[index] = (symbol.decode("latin-1"), price_multiplier, l2)
        self._orders.setdefault(index, {})

    def begin(self, out: np.ndarray, lengths: np.ndarray) -> None:
        self._out, self._lengths = out, lengths
        self._used = 0
        self._packets = 0
        self._packet, self._packet_size = [], 0
        self._packet_first = self._next_sequence

    def finish(self) -> int:
        self._close()
        return self._packets

    def _close(self) -> None:
        if not self._packet:
            return
        data, _ = moldudp64.encode_packet(self._session, self._packet_first, self._packet, 1 << 16)
        self._out[self._used:self._used + len(data)] = np.frombuffer(data, np.uint8)
        self._lengths[self._packets] = len(data)
        self._used += len(data)
        self._packets += 1
        self._counts["packets"] += 1
        self._packet, self._packet_size = [], 0

    def _cap(self) -> int:
        return min(len(self._out) - self._used, self._packet_bytes)

    def _room_for(self, messages: int) -> bool:
        """Whether `messages` of the longest kind surely fit: in what the open packet has left,
        then in fresh packets that each waste less than one message at their end."""
        if messages == 0:
            return True
        size = _HEADER + self._packet_size if self._packet else 0
        in_open = (self._cap() - size) // _LONGEST if self._packet else 0
        if messages <= in_open:
            return True
        per_packet = (self._packet_bytes - _HEADER) // _LONGEST
        fresh = -(-(messages - in_open) // per_packet)
        return (self._packets + bool(self._packet) + fresh <= len(self._lengths)
                and self._used + size + fresh * self._packet_bytes <= len(self._out))

    def _put(self, message: msg._ItchMessage) -> None:
        data = itch_encode.encode(message)
        if not self._packet or _HEADER + self._packet_size + 2 + len(data) > self._cap():
            self._close()
            self._packet_first = self._next_sequence
        self._packet.append(data)
        self._packet_size += 2 + len(data)
        self._next_sequence += 1
        self._counts["messages"] += 1

    def _ts(self, ts: int) -> int:
        return (ts - self._day_start) & ((1 << 48) - 1)

    def system_event(self, code: int, ts: int) -> int:
        self._put(msg.SystemEvent(0, 0, self._ts(ts), chr(code)))
        return Status.OK

    def stock_directory(self, index: int, ts: int) -> int:
        if index not in self._instruments:
            return Status.UNKNOWN_INSTRUMENT
        self._put(self._directory(index, ts))
        return Status.OK

    def _directory(self, index: int, ts: int) -> msg.StockDirectory:
        return msg.StockDirectory(index + 1, 0, self._ts(ts), self._instruments[index][0], "Q", "N",
                                  1, "N", "C", "Z ", "P", " ", " ", " ", " ", 0, " ")

    def snapshot(self) -> tuple[bytes, int]:
        """(blocks, next_sequence): a Stock Directory per declared instrument, then per
        instrument an Add Order per live order (ours shown included) by ascending reference, as
        [u16 length][message] blocks stamped with the last event consumed."""
        ts = self._last_event_ts
        messages = [self._directory(i, ts) for i in sorted(self._instruments)]
        for i in sorted(self._instruments):
            for o in sorted(self._orders[i].values(), key=lambda o: o.reference):
                messages.append(self._add_message(i, ts, o))
        blocks = b"".join(len(d).to_bytes(2, "big") + d for d in map(itch_encode.encode, messages))
        return blocks, self._next_sequence

    def attach(self, markets: ReplayedMarkets) -> None:
        self._markets = markets

    def encode(self, cols: Mapping[str, np.ndarray], size: int, start: int, until_ts: int,
               max_messages: int) -> tuple[int, int, int]:
        result = self._encode(cols, size, start, until_ts, max_messages)
        if result[1] > start:
            self._last_event_ts = int(cols["ts_event"][result[1] - 1])
        return result

    def _encode(self, cols: Mapping[str, np.ndarray], size: int, start: int, until_ts: int,
                max_messages: int) -> tuple[int, int, int]:
        end = self._counts["messages"] + max_messages
        self.filled = False
        markets = self._markets
        for i in range(start, size):
            if self._at_start and int(cols["ts_event"][i]) > until_ts:
                return Status.WOULD_BLOCK, i, int(cols["ts_event"][i])
            inst = int(cols["instrument"][i])
            needed = 1
            if cols["kind"][i] == EventKind.BOOK_CLEAR:
                needed = sum(not o.own for o in self._orders.get(inst, {}).values())
            if markets is not None and inst < markets.instrument_count:
                needed += len(markets.orders(inst))
            if self._counts["messages"] + needed > end or not self._room_for(needed):
                return Status.OUTPUT_FULL, i, 0
            self._apply({k: int(cols[k][i]) for k in cols})
            self._counts["events"] += 1
            fills = markets is not None and markets.on_event(cols, i)
            if fills:
                self._show_own_fills(inst, int(cols["ts_event"][i]))
            self._at_start = bool(cols["flags"][i] & Flag.LAST)
            if self._at_start:
                self._execute_in_message = False
            if fills:
                self.filled = True
                return Status.OK, i + 1, 0
        return Status.OK, size, 0

    def show_own_orders(self, ts: int) -> int:
        markets = self._markets
        needed = len(self._own) + sum(len(markets.orders(k)) for k in range(markets.instrument_count))
        if not self._room_for(needed):
            return Status.OUTPUT_FULL
        kept = []
        for o in self._own:
            r = markets.order(o.instrument, o.key & ~_OWN)
            wire = None if r is None else self._wire(o.instrument, r.price, r.qty)
            if wire is None or wire[1] == 0:
                self._delete(o.instrument, ts, o)
                continue
            if wire[0] == o.price and wire[1] < o.shares:
                self._cancel(o.instrument, ts, o, o.shares - wire[1])
            elif wire != (o.price, o.shares):
                self._replace(o.instrument, ts, o, *wire)
            kept.append(o)
        self._own = kept
        for inst in range(markets.instrument_count):
            if inst not in self._instruments or self._instruments[inst][2]:
                continue
            for r in markets.orders(inst):
                wire = self._wire(inst, r.price, r.qty)
                if r.client_order_id | _OWN in self._orders[inst] or wire is None or wire[1] == 0:
                    continue
                o = self._new(inst, r.client_order_id | _OWN, "B" if r.side == Side.BID else "S", *wire)
                o.own = True
                self._add(inst, ts, o)
                self._own.append(o)
        return Status.OK

    @property
    def own_shown(self) -> int:
        return len(self._own)

    def _show_own_fills(self, inst: int, ts: int) -> None:
        if inst not in self._instruments or self._instruments[inst][2]:
            return
        for e in self._markets.events(inst):
            o = self._orders[inst].get(e.client_order_id | _OWN)
            if e.kind != MatchEventKind.FILL or o is None or not 0 <= e.qty <= _U32:
                continue
            self._execute(inst, ts, o, e.qty)
            if o.key not in self._orders[inst]:
                self._own.remove(o)

    @property
    def next_sequence(self) -> int:
        return self._next_sequence

    @property
    def live_orders(self) -> int:
        return sum(len(o) for o in self._orders.values())

    def counts(self) -> dict[str, Any]:
        return {**self._counts, "skipped": list(self._counts["skipped"])}

    # ----------------------------------------------------------------------------------------

    def _skip(self, why: FeedSkip) -> None:
        self._counts["skipped"][why] += 1

    def _wire(self, inst: int, price: int, qty: int) -> tuple[int, int] | None:
        p = price * self._instruments[inst][1]
        if price < 0 or qty < 0 or p > _U32 or qty > _U32:
            return None
        return p, qty

    def _new(self, inst: int, key: Any, side: str, price: int, shares: int) -> _Order:
        o = _Order(self._next_reference, key, price, shares, inst, side)
        self._next_reference += 1
        self._orders[inst][key] = o
        return o

    def _add(self, inst: int, ts: int, o: _Order) -> None:
        self._put(self._add_message(inst, ts, o))

    def _add_message(self, inst: int, ts: int, o: _Order) -> msg.AddOrder:
        return msg.AddOrder(inst + 1, 0, self._ts(ts), o.reference, o.side, o.shares,
                            self._instruments[inst][0], o.price)

    def _delete(self, inst: int, ts: int, o: _Order) -> None:
        self._put(msg.OrderDelete(inst + 1, 0, self._ts(ts), o.reference))
        del self._orders[inst][o.key]

    def _cancel(self, inst: int, ts: int, o: _Order, shares: int) -> None:
        o.shares -= shares
        self._put(msg.OrderCancel(inst + 1, 0, self._ts(ts), o.reference, shares))

    def _replace(self, inst: int, ts: int, o: _Order, price: int, shares: int) -> None:
        old = o.reference
        o.reference, o.price, o.shares = self._next_reference, price, shares
        self._next_reference += 1
        self._put(msg.OrderReplace(inst + 1, 0, self._ts(ts), old, o.reference, shares, price))

    def _execute(self, inst: int, ts: int, o: _Order, shares: int) -> None:
        shares = min(shares, o.shares)
        self._match += 1
        self._put(msg.OrderExecuted(inst + 1, 0, self._ts(ts), o.reference, shares, self._match))
        if shares == o.shares:
            del self._orders[inst][o.key]
        else:
            o.shares -= shares

    def _apply(self, e: dict[str, int]) -> None:
        kind, inst, ts = e["kind"], e["instrument"], e["ts_event"]
        if kind >= _MARKET_END or kind in (EventKind.VENUE_BBO, 0):
            return self._skip(FeedSkip.NOT_MARKET_DATA)
        if inst not in self._instruments:
            return self._skip(FeedSkip.UNKNOWN_INSTRUMENT)
        stock, _, l2 = self._instruments[inst]
        side = "B" if e["side"] == Side.BID else "S"
        orders = self._orders[inst]
        if kind == EventKind.TRADE:
            if self._execute_in_message:
                return self._skip(FeedSkip.EXECUTION_PRINT)
            wire = self._wire(inst, e["price"], e["qty"])
            if wire is None:
                return self._skip(FeedSkip.OUT_OF_RANGE)
            self._match += 1
            self._put(msg.Trade(inst + 1, 0, self._ts(ts), 0, "S" if e["side"] == Side.BID else "B",
                                wire[1], stock, wire[0], self._match))
            return None
        if kind == EventKind.BOOK_CLEAR:
            # newest first, as the compiled list runs; ours are the trading side's to show
            for o in reversed([o for o in orders.values() if not o.own]):
                self._delete(inst, ts, o)
            return None
        if kind == EventKind.L2_SET:
            if not l2:
                return self._skip(FeedSkip.WRONG_BOOK_KIND)
            wire = self._wire(inst, e["price"], e["qty"])
            if e["side"] == Side.NONE or wire is None:
                return self._skip(FeedSkip.OUT_OF_RANGE)
            o = orders.get((side, e["price"]))
            if o is None:
                if wire[1] == 0:
                    return self._skip(FeedSkip.NO_CHANGE)
                return self._add(inst, ts, self._new(inst, (side, e["price"]), side, *wire))
            if wire[1] == 0:
                return self._delete(inst, ts, o)
            if wire[1] < o.shares:
                return self._cancel(inst, ts, o, o.shares - wire[1])
            if wire[1] > o.shares:
                return self._replace(inst, ts, o, *wire)
            return self._skip(FeedSkip.NO_CHANGE)
        if l2:
            return self._skip(FeedSkip.WRONG_BOOK_KIND)
        oid = e["order_id"]
        if kind == EventKind.L3_ADD:
            wire = self._wire(inst, e["price"], e["qty"])
            if e["side"] == Side.NONE or wire is None or wire[1] == 0:
                return self._skip(FeedSkip.OUT_OF_RANGE)
            if oid in orders:
                self._delete(inst, ts, orders[oid])
            return self._add(inst, ts, self._new(inst, oid, side, *wire))
        o = orders.get(oid)
        if o is None:
            return self._skip(FeedSkip.UNKNOWN_ORDER)
        if kind == EventKind.L3_DELETE:
            return self._delete(inst, ts, o)
        if kind == EventKind.L3_EXECUTE:
            if not 0 <= e["qty"] <= _U32:
                return self._skip(FeedSkip.OUT_OF_RANGE)
            self._execute(inst, ts, o, e["qty"])
            self._execute_in_message = True
            return None
        if kind == EventKind.L3_MODIFY:
            wire = self._wire(inst, e["price"], e["qty"])
            if wire is None:
                return self._skip(FeedSkip.OUT_OF_RANGE)
            if wire[1] == 0:
                return self._delete(inst, ts, o)
            if wire[0] == o.price and wire[1] < o.shares:
                return self._cancel(inst, ts, o, o.shares - wire[1])
            if wire[0] == o.price and wire[1] == o.shares:
                return self._skip(FeedSkip.NO_CHANGE)
            return self._replace(inst, ts, o, *wire)
        return self._skip(FeedSkip.NOT_MARKET_DATA)
