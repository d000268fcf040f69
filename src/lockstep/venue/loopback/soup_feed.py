"""The loopback venue's market data over SoupBinTCP 4.1: the same ITCH 5.0 messages as its
MoldUDP64 feed, with the same sequence numbers, to clients that log in over TCP (NASDAQ offers
TotalView-ITCH both ways).

    soup = SoupFeedServer(venue.feed, "tcp://127.0.0.1:0", accounts, history=1_000_000)
    venue.attach(soup, order_entry=False)   # what LoopbackVenue does for venue.feed_soupbintcp

Every batch of packets the MoldUDP64 feed sends is also turned into Sequenced Data packets (one
per ITCH message, numbered as in the MoldUDP64 session) and kept, the newest `history` messages
at least. A client logs in as one of `venue.users` (sessions, heartbeats, timeouts and protocol
errors are the order-entry server's, lockstep.venue.loopback.sessions) asking for a sequence
number: it is sent everything from there, as fast as it reads. Each client has a cursor into the
kept packets and is written only while its write buffer has room, so a slow reader or a long
replay falls behind and catches up from the history instead of filling memory; a client whose
cursor falls out of the history is dropped (logged), and a login asking for a number older than
the history is refused (session not available), as the order-entry server refuses one. Once the
feed has ended and a client has been sent the last message (and its write buffer has drained),
it gets End of Session.
"""
from __future__ import annotations

import bisect
from collections.abc import Iterable
from typing import Any

import numpy as np

from lockstep.protocols import moldudp64
from lockstep.protocols import soupbintcp as soup
from lockstep.venue.loopback.feed import MarketDataFeed
from lockstep.venue.loopback.sessions import Account, PumpedSoupServer, whole_packets

__all__ = ["SoupFeedServer", "sequenced_packets"]

_SEQUENCED = ord("S")  # the Sequenced Data packet type


def sequenced_packets(packed: np.ndarray, lengths: np.ndarray,
                      counts: np.ndarray) -> tuple[bytes, np.ndarray]:
    """The message blocks of MoldUDP64 packets (laid end to end in `packed`, their `lengths`
    and message `counts`) as SoupBinTCP Sequenced Data packets: each `[u16 n][message]` becomes
    `[u16 n+1]['S'][message]`. The packets' bytes and their start offsets (one more: the end)."""
    counts = counts.astype(np.int64)
    header = moldudp64.HEADER_LENGTH
    packet_at = np.concatenate(([0], np.cumsum(lengths[:-1], dtype=np.int64)))
    pos = packet_at + header
    starts = np.full((len(counts), int(counts.max(initial=0))), -1, np.int64)
    for k in range(starts.shape[1]):  # the k-th block of every packet at once
        rows = np.flatnonzero(counts > k)
        at = pos[rows]
        starts[rows, k] = at
        pos[rows] = at + 2 + packed[at].astype(np.int64) * 256 + packed[at + 1]
    block = starts[starts >= 0]  # packet by packet, block by block: sequence order
    size = packed[block].astype(np.int64) * 256 + packed[block + 1]
    # The blocks without the packet headers, then the type byte after each length.
    keep = np.ones(len(packed), bool)
    keep[(packet_at[:, None] + np.arange(header)).ravel()] = False
    in_blocks = block - header * (1 + np.repeat(np.arange(len(counts)), counts))
    out = np.insert(packed[keep], in_blocks + 2, _SEQUENCED)
    head = in_blocks + np.arange(len(block))  # each type byte before moves a packet on by one
    out[head] = (size + 1) >> 8
    out[head + 1] = (size + 1) & 0xFF
    return out.tobytes(), np.concatenate((head, [len(out)]))


class _SequencedHistory:
    """Sequenced Data packets numbered from 1, in batches; the newest `limit` messages (at
    least) kept. What the login checks of SoupServer read: first_kept, next_sequence."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"history must keep at least 1 message, not {limit}")
        self.limit = limit
        self._firsts: list[int] = []  # each batch's first sequence number
        self._batches: list[tuple[bytes, np.ndarray]] = []  # its packets and their offsets
        self._front = 0  # batches before it are no longer kept
        self._held = 0
        self.next_sequence = 1

    def add(self, data: bytes, offsets: np.ndarray) -> None:
        n = len(offsets) - 1
        if n == 0:
            return
        self._firsts.append(self.next_sequence)
        self._batches.append((data, offsets))
        self.next_sequence += n
        self._held += n
        while self._held - (len(self._batches[self._front][1]) - 1) >= self.limit:
            self._held -= len(self._batches[self._front][1]) - 1
            self._batches[self._front] = (b"", offsets[:1])
            self._front += 1
        if self._front > 1024 and self._front * 2 > len(self._batches):
            del self._firsts[:self._front], self._batches[:self._front]
            self._front = 0

    @property
    def first_kept(self) -> int:
        """The oldest sequence number still held (next_sequence when none is)."""
        return self.next_sequence - self._held

    def packets(self, sequence: int, max_bytes: int) -> tuple[bytes, int]:
        """Whole packets from `sequence` on (first_kept <= sequence < next_sequence), at most
        `max_bytes` of them unless the first alone is larger: their bytes and how many."""
        i = bisect.bisect_right(self._firsts, sequence, lo=self._front) - 1
        data, offsets = self._batches[i]
        k = sequence - self._firsts[i]
        chunk, end_k = whole_packets(data, offsets, k, max_bytes)
        return chunk, end_k - k


class SoupFeedServer(PumpedSoupServer):
    """See the module docstring. A VenueComponent of the run loop."""

    def __init__(self, feed: MarketDataFeed, address: str, accounts: Iterable[Account], *,
                 history: int, heartbeat_interval: float = 1.0) -> None:
        accounts = list(accounts)
        super().__init__(address, accounts, self._unsequenced, session=feed.settings.session,
                         heartbeat_interval=heartbeat_interval, history=1)
        self._feed = feed
        self._history = _SequencedHistory(history)
        # One sequenced stream for every account: the feed's (the login checks read it).
        self._streams = {a.username: self._history for a in accounts}
        self._cursors: dict[int, int] = {}  # logged-in client (token) -> next sequence to send
        self._ended: set[int] = set()  # clients sent End of Session
        self.counts.update({"messages_out": 0, "end_of_session": 0, "fell_behind": 0,
                            "ignored_in": 0})
        feed.packet_listeners.append(self._on_packets)

    def _on_packets(self, packed: np.ndarray, lengths: np.ndarray, first: np.ndarray,
                    counts: np.ndarray) -> None:
        data, offsets = sequenced_packets(packed, lengths, counts)
        self._history.add(data, offsets)

    def _unsequenced(self, username: str, payload: bytes) -> None:
        self.counts["ignored_in"] += 1  # a feed takes nothing from its clients

    # ---------------------------------------------------------------- SoupServer's hooks

    def _replay(self, token: int, stream: Any, start: int) -> bool:
        self._cursors[token] = start
        self._pump(token)
        return token in self._clients

    def _drop(self, token: int, reason: str | None) -> None:
        self._cursors.pop(token, None)
        self._ended.discard(token)
        super()._drop(token, reason)

    def summary(self) -> dict[str, Any]:
        return {"feed_soupbintcp": dict(self.counts)}

    # ---------------------------------------------------------------- sending

    def _pumping(self) -> list[int]:
        return list(self._cursors)

    def _pump(self, token: int) -> None:
        """Writes the client's next packets while its write buffer has room."""
        history = self._history
        while token in self._cursors:
            cursor = self._cursors[token]
            if cursor >= history.next_sequence:
                self._end_if_done(token)
                return
            if cursor < history.first_kept:
                self.counts["fell_behind"] += 1
                self._drop(token, f"fell behind the history kept: needs {cursor}, the oldest "
                                  f"held is {history.first_kept}")
                return
            room = self._room(token)
            if room == 0:
                return
            data, n = history.packets(cursor, room)
            self._write(token, data)
            if token in self._cursors:
                self._cursors[token] = cursor + n
                self.counts["messages_out"] += n

    def _end_if_done(self, token: int) -> None:
        if not self._feed.ended or token in self._ended or self._clients[token].conn.pending:
            return
        self._ended.add(token)
        self.counts["end_of_session"] += 1
        self._write(token, soup.encode(soup.EndOfSession()))
