"""The loopback venue's market data: a canonical dataset replayed as ITCH 5.0 over MoldUDP64.

`MarketDataFeed` sends the feed (paced by ts_event times the speed factor, or as fast as
possible) and answers MoldUDP64 retransmission requests from a bounded history of what it sent.
The per-event work (events -> ITCH messages -> MoldUDP64 packets) is C++
(include/lockstep/venue/itch_feed.hpp); this module reads the dataset in batches, sends each
batch's packets with one sendmmsg run, keeps the history and serves requests.
docs/loopback-venue.md is normative.

The run loop (lockstep.venue.loopback.serve) drives it as one `VenueComponent` among others: the
order-entry side is another, on the same event loop. It attaches its books and matchers
(`attach_markets`), which the C++ encoder then moves by every event it sends; our resting orders
reach the feed through `show_own_orders()`, their fills as 'E' inside the encoder.
"""
from __future__ import annotations

import collections
import dataclasses
import logging
import select
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import numpy as np

from lockstep._bindings.itch_feed import ItchFeed
from lockstep.data.dataset import Dataset, Instrument
from lockstep.enums import FeedSkip, Status
from lockstep.errors import ProtocolError, check_status
from lockstep.events import Columns
from lockstep.net import LOOPBACK, UdpSocket
from lockstep.protocols import moldudp64
from lockstep.venue.loopback.config import VenueSettings
from lockstep.venue.matching import ReplayedMarkets

__all__ = ["MarketDataFeed", "RetransmitCounts", "day_start", "feed_symbol", "price_multiplier"]

log = logging.getLogger("lockstep.venue")

#: Datagram budget: within one Ethernet frame (docs/protocols.md).
PACKET_BYTES = 1400
#: ITCH prices are Price(4): 1/10,000ths.
ITCH_PRICE_UNIT = Decimal("0.0001")
_NS_PER_DAY = 86_400 * 1_000_000_000
_INT64_MAX = (1 << 63) - 1
# One encode call's output: room for tens of thousands of messages, one sendmmsg run.
_OUT_PACKETS = 1024
_READ_BATCH = 1 << 16
# Bad requests logged one by one up to this many (a flood of garbage is counted, not logged).
_LOGGED_BAD_REQUESTS = 20
# How long a reply waits for room in the send buffer before it is given up (and counted).
_REPLY_WAIT_S = 0.5
# System event codes (ITCH 5.0 'S').
_START = (b"O", b"S", b"Q")  # start of messages, of system hours, of market hours
_END = (b"M", b"E", b"C")  # end of market hours, of system hours, of messages


def price_multiplier(instrument: Instrument) -> int:
    """How many ITCH price units (1/10,000) one tick of `instrument` is; 1 when a tick is finer
    than that or not a whole number of them (the feed then publishes prices in ticks)."""
    ratio = Decimal(instrument.price_increment) / ITCH_PRICE_UNIT
    return int(ratio) if ratio == ratio.to_integral_value() and ratio >= 1 else 1


def day_start(first_event_ns: int) -> int:
    """The midnight (UTC ns) the venue's ITCH and OUCH timestamps count from: that of the day of
    the dataset's first event, `first_event_ns` its ts_event."""
    return first_event_ns - first_event_ns % _NS_PER_DAY


def feed_symbol(instrument: Instrument, index: int, taken: set[str]) -> str:
    """The 8-character ITCH stock name of an instrument: its symbol, upper case, cut to 8; when
    that is taken (two symbols alike in their first 8 characters), "I" and the table index."""
    name = instrument.symbol.upper()[:8]
    if not name.isascii() or name in taken or not name:
        name = f"I{index}"
    taken.add(name)
    return name


@dataclasses.dataclass
class RetransmitCounts:
    requests: int = 0  #: well-formed requests received
    answered: int = 0  #: requests answered with data
    messages: int = 0  #: messages resent
    packets: int = 0  #: packets resent
    refused: int = 0  #: requests for messages outside the history (or not yet sent): no data
    wrong_session: int = 0  #: requests naming another session: no data
    bad_requests: int = 0  #: datagrams that are not a request (the first ones logged with the peer)
    reply_dropped: int = 0  #: reply packets the send buffer would not take in time


class _History:
    """The last `limit` messages sent (at least), as the packets that carried them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        # (first sequence, messages, packed datagrams, their lengths, each one's first sequence)
        self._batches: collections.deque[tuple[int, int, bytes, np.ndarray, np.ndarray]] = collections.deque()
        self._held = 0

    def add(self, packed: bytes, lengths: np.ndarray, first: np.ndarray, counts: np.ndarray) -> None:
        messages = int(counts.sum())
        if messages == 0:
            return
        self._batches.append((int(first[0]), messages, packed, lengths.copy(), first.copy()))
        self._held += messages
        while self._held - self._batches[0][1] >= self.limit:
            self._held -= self._batches.popleft()[1]

    @property
    def first(self) -> int:
        """The oldest sequence number still held (1 when nothing was sent)."""
        return self._batches[0][0] if self._batches else 1

    def messages(self, sequence: int, count: int) -> Iterator[bytes]:
        """Messages sequence .. sequence + count - 1, all held (the caller checked)."""
        end = sequence + count
        for first, n, packed, lengths, starts in self._batches:
            if first + n <= sequence or first >= end:
                continue
            offsets = np.concatenate(([0], np.cumsum(lengths, dtype=np.int64)))
            for k in range(len(lengths)):
                seq0 = int(starts[k])
                packet = moldudp64.read_packet(packed[offsets[k]:offsets[k + 1]])
                for j, message in enumerate(packet.messages):
                    if sequence <= seq0 + j < end:
                        yield message


class MarketDataFeed:
    """The feed side of the loopback venue: one dataset, one MoldUDP64 session.

    Sockets open here (so the bound addresses are known before anything is sent); `start()`
    begins the replay clock; `poll()` sends what is due and says how long until more is;
    `serve_requests()` answers what waits on the retransmit socket.
    """

    def __init__(self, dataset: Dataset, settings: VenueSettings, *,
                 max_messages: int | None = None, read_batch: int = _READ_BATCH) -> None:
        self.settings = settings
        self.dataset = dataset
        self._max_messages = max_messages
        self._batches = dataset.iter_columns(read_batch)
        self._cols: Columns | None = next(self._batches, None)
        self._pos = 0
        first_ts = int(self._cols["ts_event"][0]) if self._cols is not None and len(self._cols["ts_event"]) else 0
        self._first_ts = first_ts
        self.day_start_ns = day_start(first_ts)
        session = settings.session.encode("ascii").ljust(moldudp64.SESSION_LENGTH)
        self._core = ItchFeed(session, PACKET_BYTES, self.day_start_ns, 1, 1 << 16)
        taken: set[str] = set()
        self.instruments: list[dict[str, Any]] = []
        for i, ins in enumerate(dataset.instruments):
            name = feed_symbol(ins, i, taken)
            mult = price_multiplier(ins)
            self._core.add_instrument(i, name.encode("ascii").ljust(8), mult, ins.book == "l2")
            self.instruments.append({"symbol": ins.symbol, "stock": name, "locate": i + 1,
                                     "price_multiplier": mult, "book": ins.book})
        self._out = np.zeros(_OUT_PACKETS * PACKET_BYTES, dtype=np.uint8)
        self._lengths = np.zeros(_OUT_PACKETS, dtype=np.uint32)
        self._history = _History(settings.history)
        self.retransmit = RetransmitCounts()
        self._destination = self._feed_address()
        self._feed_socket = UdpSocket(f"udp://{LOOPBACK}:0", destination=self._destination,
                                      batch=256, send_buffer=8 << 20)
        self._request_socket = UdpSocket(str(settings.retransmit), batch=64, slot_bytes=512)
        self._wall0 = 0
        self._last_send = 0
        self.heartbeats = 0
        self.ended = False  #: End of Session sent: the dataset (or the message budget) is done
        self._started = False
        self._last_sent_ts = self._first_ts
        self._markets: ReplayedMarkets | None = None
        #: Told (ts_event, filled) after each run of dataset events sent: the last one's
        #: ts_event, and whether that event filled one of our orders (its matcher's events then
        #: wait in the attached ReplayedMarkets, to be answered before the replay goes on).
        self.on_sent: Callable[[int, bool], None] | None = None
        #: Told (packed, lengths, first sequences, message counts) of every batch of data
        #: packets sent, before the next is encoded into the same memory (the SoupBinTCP feed).
        self.packet_listeners: list[Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], None]] = []

    def _feed_address(self) -> str:
        feed = self.settings.feed
        if feed.port:
            return str(feed)
        # Port 0: a free port on that host (or group), found by binding it and letting it go.
        with UdpSocket(str(feed)) as probe:
            return probe.address

    def attach_markets(self, markets: ReplayedMarkets) -> None:
        """From now on every dataset event sent also moves `markets` (in C++, per event)."""
        self._markets = markets
        self._core.attach(markets.core)

    @property
    def events_sent(self) -> int:
        """Dataset events consumed so far (sent, or skipped and counted): the stream position."""
        return self._core.counts()["events"]

    @property
    def last_sent_ns(self) -> int:
        """The ts_event of the last dataset event sent (before any, the first event's): the
        replay's clock."""
        return self._last_sent_ts

    @property
    def first_event_ns(self) -> int:
        """The first event's ts_event (the replay clock before anything is sent)."""
        return self._first_ts

    @property
    def addresses(self) -> dict[str, str]:
        return {"feed": self._destination, "retransmit": self._request_socket.address}

    def fileno(self) -> int:
        """The retransmit socket, for the run loop's readiness wait."""
        return self._request_socket.fileno()

    # ----------------------------------------------------------------------------------------
    # sending

    def start(self) -> None:
        """Starts the replay clock and sends the session's opening messages: system events
        (start of messages, of system hours, of market hours) and a stock directory per
        instrument."""
        self._wall0 = time.monotonic_ns()
        self._started = True
        self._core.begin(self._out, self._lengths)
        for code in _START:
            self._core.system_event(code[0], self._first_ts)
        for i in range(len(self.instruments)):
            self._core.stock_directory(i, self._first_ts)
        self._flush()

    def poll(self) -> float | None:
        """Sends what is due now: seconds until more is (0.0: call again at once), None once
        the feed has ended."""
        if self.ended:
            return None
        now = time.monotonic_ns()
        speed = self.settings.speed
        until = _INT64_MAX if speed is None else self._first_ts + int((now - self._wall0) * speed)
        sent_before = self._core.counts()["messages"]
        while self._cols is not None:
            budget = self._budget()
            if budget == 0:
                break
            self._core.begin(self._out, self._lengths)
            size = len(self._cols["ts_event"])
            begin = self._pos
            status, self._pos, due = self._core.encode(self._cols, size, self._pos, until, budget)
            self._flush()
            if self._pos > begin:
                self._last_sent_ts = int(self._cols["ts_event"][self._pos - 1])
                if self.on_sent is not None:
                    self.on_sent(self._last_sent_ts, self._core.filled)
            if status == Status.WOULD_BLOCK:
                wait = (due - self._first_ts) / speed + self._wall0 - time.monotonic_ns()
                return self._until_heartbeat(max(wait, 0.0) / 1e9)
            if self._pos == size:
                self._cols, self._pos = next(self._batches, None), 0
            if self._core.counts()["messages"] - sent_before >= _OUT_PACKETS * 30:
                return 0.0  # let the run loop serve requests between bursts
        self._end()
        return None

    def _budget(self) -> int:
        if self._max_messages is None:
            return 1 << 62
        return max(self._max_messages - self.data_messages, 0)

    @property
    def data_messages(self) -> int:
        """Messages sent after the session's opening ones."""
        return self._core.counts()["messages"] - self._opening

    @property
    def _opening(self) -> int:
        return len(_START) + len(self.instruments)

    def _until_heartbeat(self, wait: float) -> float:
        since = (time.monotonic_ns() - self._last_send) / 1e9
        beat = self.settings.heartbeat_ns / 1e9
        if since >= beat:
            self._send_header_only(moldudp64.encode_heartbeat)
            self.heartbeats += 1
            since = 0.0
        return min(wait, beat - since)

    def heartbeat_due(self) -> float:
        """After the end: End of Session again each heartbeat interval (a receiver that lost it
        learns the session is over); seconds until the next one."""
        since = (time.monotonic_ns() - self._last_send) / 1e9
        beat = self.settings.heartbeat_ns / 1e9
        if since >= beat:
            self._send_header_only(moldudp64.encode_end_of_session)
            since = 0.0
        return beat - since

    def _end(self) -> None:
        self._core.begin(self._out, self._lengths)
        for code in _END:
            self._core.system_event(code[0], self._last_sent_ts)
        self._flush()
        self._send_header_only(moldudp64.encode_end_of_session)
        self.ended = True

    def snapshot(self) -> tuple[bytes, int]:
        """The books as the feed has shown them, now: (blocks, next_sequence), the ITCH messages
        of a snapshot as [u16 length][message] blocks (a Stock Directory per instrument, then an
        Add Order per live order) and the MoldUDP64 sequence number it was taken before: every
        message sent below it is reflected, none from it on (lockstep.venue.loopback.snapshot)."""
        return self._core.snapshot()

    def show_own_orders(self) -> None:
        """Shows now, in the same sequence, what changed in our resting orders on L3
        instruments of the attached markets since the feed last showed them (A, X, U, D),
        stamped with the replay's clock (docs/loopback-venue.md)."""
        self._core.begin(self._out, self._lengths)
        status = self._core.show_own_orders(self._last_sent_ts)
        self._flush()
        # OutputFull only past ~30,000 resting orders at once (one call's buffer).
        check_status(status, "showing our resting orders in the feed")

    def _flush(self) -> None:
        n = self._core.finish()
        if n == 0:
            return
        lengths = self._lengths[:n]
        total = int(lengths.sum(dtype=np.int64))
        packed = self._out[:total]
        offsets = np.concatenate(([0], np.cumsum(lengths[:-1], dtype=np.int64)))
        counts = self._out[offsets + 18].astype(np.int64) * 256 + self._out[offsets + 19]
        # Sequence numbers run on from packet to packet: the first header says where they start.
        first = int.from_bytes(self._out[10:18].tobytes(), "big") + np.concatenate(
            ([0], np.cumsum(counts[:-1])))
        self._send(packed, lengths)
        self._history.add(packed.tobytes(), lengths, first, counts)
        for listener in self.packet_listeners:
            listener(packed, lengths, first, counts)

    def _send(self, packed: np.ndarray, lengths: np.ndarray) -> None:
        sent = offset = 0
        n = len(lengths)
        while sent < n:
            k = self._feed_socket.send(packed[offset:], lengths[sent:])
            offset += int(lengths[sent:sent + k].sum(dtype=np.int64))
            sent += k
            if sent < n:  # the send buffer is full: wait (briefly) until it drains
                select.select([], [self._feed_socket], [], 0.01)
        self._last_send = time.monotonic_ns()

    def _send_header_only(self, encode) -> None:
        packet = encode(self.settings.session, self._core.next_sequence)
        self._send(np.frombuffer(packet, dtype=np.uint8), np.array([len(packet)], dtype=np.uint32))

    # ----------------------------------------------------------------------------------------
    # retransmission

    def serve_requests(self, limit: int = 64) -> int:
        """Answers the retransmission requests waiting (at most `limit` datagrams); how many
        datagrams were read."""
        sock = self._request_socket
        n = sock.receive()
        for i in range(min(n, limit)):
            self._answer(sock.payload(i), sock.peer(i))
        return n

    def _answer(self, payload: bytes, peer: str) -> None:
        try:
            request = moldudp64.decode_request(payload)
        except ProtocolError as e:
            self.retransmit.bad_requests += 1
            if self.retransmit.bad_requests <= _LOGGED_BAD_REQUESTS:
                log.warning("retransmit: bad request from %s (%d bytes): %s", peer, len(payload), e)
            return
        self.retransmit.requests += 1
        if request.session != self.settings.session:
            self.retransmit.wrong_session += 1
            log.warning("retransmit: request from %s names session %r, not %r", peer,
                        request.session, self.settings.session)
            return
        end = request.sequence + request.count
        if request.sequence < self._history.first or end > self._core.next_sequence:
            self.retransmit.refused += 1
            log.info("retransmit: %s asked for %d..%d, outside %d..%d", peer, request.sequence,
                     end - 1, self._history.first, self._core.next_sequence - 1)
            return
        messages = list(self._history.messages(request.sequence, request.count))
        sequence = request.sequence
        while messages:
            packet, took = moldudp64.encode_packet(self.settings.session, sequence, messages, PACKET_BYTES)
            if not self._reply(packet, peer):
                self.retransmit.reply_dropped += 1
                log.warning("retransmit: reply to %s from %d dropped (send buffer full)", peer, sequence)
            self.retransmit.packets += 1
            self.retransmit.messages += took
            sequence += took
            messages = messages[took:]
        self.retransmit.answered += 1

    def _reply(self, packet: bytes, peer: str) -> bool:
        deadline = time.monotonic() + _REPLY_WAIT_S
        while not self._request_socket.send_to(packet, peer):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            select.select([], [self._request_socket], [], min(left, 0.01))
        return True

    # ----------------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        c = self._core.counts()
        return {
            "packets": c["packets"] + self.heartbeats,
            "messages": c["messages"],
            "events": c["events"],
            "next_sequence": self._core.next_sequence,
            "heartbeats": self.heartbeats,
            "skipped": {FeedSkip(k).label: n for k, n in enumerate(c["skipped"]) if n},
            "retransmit": dataclasses.asdict(self.retransmit),
            "send_blocked": self._feed_socket.stats["send_blocked"],
        }

    def close(self) -> None:
        self._feed_socket.close()
        self._request_socket.close()

