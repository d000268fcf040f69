"""What the live-core tests share: a dataset served as MoldUDP64 packets by the venue's own ITCH
feed encoder (venue/itch_feed.hpp), a scripted OUCH 4.2 venue built on lockstep.protocols, and
a driver feeding a LiveSession from both with deterministic receive stamps."""
from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from lockstep._bindings.itch_feed import ItchFeed

from lockstep.backtest.artifacts import read_artifact
from lockstep.backtest.config import load_config
from lockstep.data.dataset import Dataset
from lockstep.enums import Status
from lockstep.live.journal import JournalWriter
from lockstep.live.session import (
    LiveSession,
    LiveTerms,
    journaled_session,
    venue_instruments,
)
from lockstep.protocols import moldudp64
from lockstep.protocols import ouch42 as ouch

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
DAY_NS = 86_400 * 1_000_000_000
SESSION = b"LIVETEST  "
#: Receive stamps: one packet every PACKET_NS, venue answers ANSWER_NS after what they answer.
PACKET_NS = 20_000
ANSWER_NS = 5_000


def live_config(tmp: Path, example: str) -> Path:
    """examples/live_loopback.toml trading the strategy of `example`."""
    text = (EXAMPLES / "live_loopback.toml").read_text()
    strategy = next(line for line in (EXAMPLES / example).read_text().splitlines()
                    if line.startswith("path = "))
    path = tmp / f"live_{example}"
    path.write_text("\n".join(strategy if line.startswith("path = ") else line
                              for line in text.splitlines()) + "\n")
    return path


def day_start(ds: Dataset) -> int:
    first = int(next(ds.iter_columns(1))["ts_event"][0])
    return first - first % DAY_NS


def feed_packets(ds: Dataset, *, max_packets: int = 1 << 30) -> Iterator[tuple[int, bytes]]:
    """(first sequence, message blocks) of each datagram the venue's feed encoder writes for
    `ds`: the session's opening system events and stock directories, then the data."""
    feed = ItchFeed(SESSION, 1400, day_start(ds), 1, 1 << 12)
    names = venue_instruments(ds.instruments)
    for i, (ins, v) in enumerate(zip(ds.instruments, names, strict=True)):
        feed.add_instrument(i, v.stock.encode("ascii").ljust(8), v.price_multiplier, ins.book == "l2")
    out = np.zeros(256 * 1400, np.uint8)
    lengths = np.zeros(256, np.uint32)
    first_ts = int(next(ds.iter_columns(1))["ts_event"][0])
    count = 0

    def datagrams(n: int) -> Iterator[tuple[int, bytes]]:
        data = out.tobytes()
        offsets = np.concatenate(([0], np.cumsum(lengths[:n], dtype=np.int64)))
        for k in range(n):
            packet = moldudp64.read_packet(data[offsets[k]:offsets[k + 1]])
            yield packet.sequence, b"".join(len(m).to_bytes(2, "big") + m for m in packet.messages)

    feed.begin(out, lengths)
    for code in b"OSQ":
        feed.system_event(code, first_ts)
    for i in range(len(ds.instruments)):
        feed.stock_directory(i, first_ts)
    for cols in ds.iter_columns(1 << 14):
        size, pos = len(cols["ts_event"]), 0
        while pos < size:
            status, pos, _ = feed.encode(cols, size, pos, (1 << 63) - 1, 1 << 40)
            n = feed.finish()
            for packet in datagrams(n):
                yield packet
                count += 1
                if count >= max_packets:
                    return
            feed.begin(out, lengths)
            assert status in (Status.OK, Status.OUTPUT_FULL)
    for packet in datagrams(feed.finish()):
        yield packet


@dataclasses.dataclass
class _Order:
    token: str
    enter: ouch.EnterOrder
    open_shares: int


class ScriptedVenue:
    """Answers OUCH 4.2 orders as a venue would, by a fixed script: every order accepted (or
    rejected with `reject_reason` when its price is `reject_price`), cancels and replaces done,
    and every `fill_every`-th accepted order filled whole, as a maker, when the next packet
    arrives. Timestamps are the answer's receive stamp since `day` midnight."""

    def __init__(self, day: int, *, fill_every: int = 4, reject_price: int | None = None,
                 reject_reason: str = "X") -> None:
        self.day = day
        self.fill_every = fill_every
        self.reject_price = reject_price
        self.reject_reason = reject_reason
        self.orders: dict[str, _Order] = {}
        self.accepted = 0
        self.to_fill: list[str] = []
        self.match = 0
        self.executed: list[ouch.Executed] = []
        self.received: list[ouch.Inbound] = []
        self.tokens: set[str] = set()

    def answer(self, payload: bytes, stamp: int) -> list[bytes]:
        m = ouch.decode_inbound(payload)
        self.received.append(m)
        ts = stamp - self.day
        if isinstance(m, ouch.EnterOrder):
            if m.token in self.tokens:
                return []  # OUCH: an Enter Order reusing a token is ignored
            self.tokens.add(m.token)
            if m.price == self.reject_price:
                return [ouch.encode(ouch.Rejected(ts, m.token, self.reject_reason))]
            self.orders[m.token] = _Order(m.token, m, m.shares)
            self.accepted += 1
            if self.accepted % self.fill_every == 0:
                self.to_fill.append(m.token)
            return [ouch.encode(ouch.Accepted(ts, m.token, m.side, m.shares, m.stock, m.price,
                                              m.time_in_force, m.firm, m.display, self.accepted,
                                              m.capacity, m.intermarket_sweep,
                                              m.minimum_quantity, m.cross_type, "L", " "))]
        if isinstance(m, ouch.CancelOrder):
            order = self.orders.pop(m.token, None)
            if order is None:
                return []  # OUCH: a cancel of a token no longer live is ignored
            return [ouch.encode(ouch.Canceled(ts, m.token, order.open_shares, "U"))]
        order = self.orders.pop(m.existing_token, None)
        if order is None:
            return []
        e = order.enter
        self.orders[m.replacement_token] = _Order(m.replacement_token, e, m.shares)
        return [ouch.encode(ouch.Replaced(ts, m.replacement_token, e.side, m.shares, e.stock,
                                          m.price, m.time_in_force, e.firm, m.display, 0,
                                          e.capacity, m.intermarket_sweep, m.minimum_quantity,
                                          e.cross_type, "L", m.existing_token, " "))]

    def fills(self, stamp: int) -> list[bytes]:
        """Executed messages for the orders due a fill (those still open)."""
        out = []
        for token in self.to_fill:
            order = self.orders.pop(token, None)
            if order is None:
                continue
            self.match += 1
            self.executed.append(ouch.Executed(stamp - self.day, token, order.open_shares,
                                               order.enter.price, "A", self.match))
            out.append(ouch.encode(self.executed[-1]))
        self.to_fill = []
        return out


def deliver(session: LiveSession, venue: ScriptedVenue, sent: list[bytes], stamp: int) -> None:
    """The venue answers what was sent, and the answers' own consequences, until quiet."""
    pending = list(sent)
    rounds = 0
    while pending and rounds < 1000:
        rounds += 1
        stamp += ANSWER_NS
        answers = [a for payload in pending for a in venue.answer(payload, stamp)]
        pending = []
        for a in answers:
            pending += session.on_ouch(a, stamp)


def drive(session: LiveSession, venue: ScriptedVenue, packets, start: int) -> int:
    """Every packet to the session, the venue's fills and answers between them, a clock tick
    every tenth packet; returns the last stamp used."""
    stamp = start
    for k, (sequence, blocks) in enumerate(packets):
        stamp = start + k * PACKET_NS
        for fill in venue.fills(stamp):
            deliver(session, venue, session.on_ouch(fill, stamp), stamp)
        deliver(session, venue, session.on_itch(blocks, sequence, stamp), stamp)
        if k % 10 == 9:
            deliver(session, venue, session.on_tick(stamp + ANSWER_NS), stamp + ANSWER_NS)
    return stamp + PACKET_NS


def open_in_records(run_dir: Path | str) -> set[int]:
    """The order ids a session's orders table leaves open: submitted, never ended and not
    filled to their (last replaced) total."""
    orders = read_artifact(str(run_dir), "orders").to_pydict()
    total: dict[int, int] = {}
    filled: Counter[int] = Counter()
    ended: set[int] = set()
    for kind, oid, lots in zip(orders["kind"], orders["order_id"], orders["qty_lots"], strict=True):
        if kind in ("order_submitted", "order_replaced"):
            total[oid] = lots
        elif kind == "order_filled":
            filled[oid] += lots
        elif kind in ("order_rejected", "order_canceled", "order_expired"):
            ended.add(oid)
    return {oid for oid, lots in total.items() if oid not in ended and filled[oid] < lots}


def session_for(config: Path | str, ds: Dataset, journal_dir: Path | None, *,
                overrides: tuple[str, ...] = (),
                held_feed_bytes: int | None = None) -> tuple[LiveSession, JournalWriter | None]:
    """A session trading `ds`'s instruments as `config` says, journaling into `journal_dir`."""
    cfg = load_config(config, [f"dataset={ds.path}", *overrides])
    terms = LiveTerms(day_start(ds), tuple(venue_instruments(ds.instruments)),
                      held_feed_bytes=held_feed_bytes)
    if journal_dir is None:
        return LiveSession(cfg, ds.instruments, terms, record=lambda *_: None,
                           base_dir=Path(config).parent), None
    return journaled_session(cfg, ds.instruments, terms, journal_dir, base_dir=Path(config).parent,
                             version="test")
