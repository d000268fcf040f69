"""Book snapshots over SoupBinTCP 4.1, GLIMPSE-style: what a receiver that lost part of the
loopback venue's MoldUDP64 feed logs in to, to rebuild its books (docs/protocols.md,
"Snapshots"; docs/loopback-venue.md, "Snapshots").

    snap = SnapshotServer(venue.feed, "tcp://127.0.0.1:0", accounts)
    venue.attach(snap, order_entry=False)   # what LoopbackVenue does for venue.snapshot

A client logs in as one of `venue.users` (logins, refusals, heartbeats, timeouts and protocol
errors are the order-entry server's, lockstep.venue.loopback.sessions; the session is the
MoldUDP64 session's name, the sequence number asked for is ignored). The snapshot is taken at
that moment, on the venue's one thread, between two batches of the feed, so it agrees with the
feed's sequence numbers. Login Accepted (sequence 1) is followed by one Sequenced Data packet per
message: a Stock Directory per instrument, an Add Order per live order (ItchFeed.snapshot), End
of Snapshot carrying the MoldUDP64 sequence number the snapshot was taken before, then End of
Session. Then the server waits for the client to close the connection (or log out), reading what
it sends meanwhile, and closes it itself only `linger` seconds after End of Session left the
write buffer: a close with the client's bytes unread would reset the connection, and a reset
throws away whatever of the snapshot the client's kernel had not yet delivered. The packets go out as the client reads (whole packets, while its write buffer has
room), so a book of any size takes no more than a bounded write buffer per client.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from lockstep.protocols import glimpse
from lockstep.protocols import soupbintcp as soup
from lockstep.venue.loopback.feed import MarketDataFeed
from lockstep.venue.loopback.sessions import (
    Account,
    PumpedSoupServer,
    SequencedStream,
    whole_packets,
)

__all__ = ["SnapshotServer", "snapshot_packets"]

_SEQUENCED = b"S"  # the Sequenced Data packet type


def snapshot_packets(blocks: bytes, next_sequence: int) -> tuple[bytes, list[int]]:
    """The SoupBinTCP packets of a snapshot: each ITCH block `[u16 n][message]` of `blocks` as a
    Sequenced Data packet `[u16 n+1]['S'][message]`, then End of Snapshot (`next_sequence`) as
    one more, then End of Session. Their bytes and start offsets (one more: the end)."""
    parts: list[bytes] = []
    offsets = [0]
    view = memoryview(blocks)
    at = 0
    while at < len(blocks):
        n = int.from_bytes(view[at:at + 2], "big")
        parts.append((n + 1).to_bytes(2, "big") + _SEQUENCED + view[at + 2:at + 2 + n])
        offsets.append(offsets[-1] + 3 + n)
        at += 2 + n
    if at != len(blocks):  # the feed writes whole blocks: this is a bug, not bad input
        raise ValueError(f"snapshot blocks end inside a block ({len(blocks)} bytes)")
    for packet in (soup.encode(soup.SequencedData(glimpse.end_of_snapshot(next_sequence))),
                   soup.encode(soup.EndOfSession())):
        parts.append(packet)
        offsets.append(offsets[-1] + len(packet))
    return b"".join(parts), offsets


#: How long a client may keep its connection after the whole snapshot left the write buffer.
LINGER_S = 1.0


@dataclasses.dataclass
class _Sending:
    data: bytes
    offsets: list[int]
    next_packet: int = 0  # the first packet not yet handed to the write buffer
    drained_at: float | None = None  # when End of Session left the write buffer

    @property
    def written(self) -> bool:
        return self.next_packet == len(self.offsets) - 1


class SnapshotServer(PumpedSoupServer):
    """See the module docstring. A VenueComponent of the run loop."""

    def __init__(self, feed: MarketDataFeed, address: str, accounts: Iterable[Account], *,
                 heartbeat_interval: float = 1.0, linger: float = LINGER_S) -> None:
        # history=1: the streams are never appended to, so every login is accepted at 1.
        super().__init__(address, accounts, self._unsequenced, session=feed.settings.session,
                         heartbeat_interval=heartbeat_interval, history=1)
        self._feed = feed
        self._linger = linger
        self._snapshots: dict[int, _Sending] = {}  # logged-in client (token) -> its snapshot
        self.counts.update({"snapshots": 0, "snapshot_messages": 0, "completed": 0,
                            "ignored_in": 0})

    def _unsequenced(self, username: str, payload: bytes) -> None:
        self.counts["ignored_in"] += 1  # a snapshot takes nothing from its clients

    # ---------------------------------------------------------------- SoupServer's hooks

    def _replay(self, token: int, stream: SequencedStream, start: int) -> bool:
        if token not in self._clients:  # Login Accepted could not be written
            return False
        blocks, next_sequence = self._feed.snapshot()
        data, offsets = snapshot_packets(blocks, next_sequence)
        self._snapshots[token] = _Sending(data, offsets)
        self.counts["snapshots"] += 1
        self.counts["snapshot_messages"] += len(offsets) - 3  # without 'G' and End of Session
        self._pump(token)
        return token in self._clients

    def _drop(self, token: int, reason: str | None) -> None:
        self._snapshots.pop(token, None)
        super()._drop(token, reason)

    def _timers(self) -> None:
        # Nothing follows End of Session, a heartbeat neither: a client whose snapshot is all in
        # its write buffer counts as just sent to (its read timeout still applies).
        now = self._clock()
        for token, sending in self._snapshots.items():
            if sending.written:
                self._clients[token].last_sent = now
        super()._timers()

    def summary(self) -> dict[str, Any]:
        return {"snapshot": dict(self.counts)}

    # ---------------------------------------------------------------- sending

    def _pumping(self) -> list[int]:
        return list(self._snapshots)

    def _pump(self, token: int) -> None:
        """Writes the client's next packets while its write buffer has room; once all of it has
        drained, closes the connection `linger` seconds later unless the client closed first."""
        while token in self._snapshots:
            sending = self._snapshots[token]
            conn = self._clients[token].conn
            if sending.written:
                if conn.pending:
                    return
                now = self._clock()
                if sending.drained_at is None:
                    sending.drained_at = now
                    self.counts["completed"] += 1
                if now - sending.drained_at >= self._linger:
                    self._drop(token, None)
                return
            room = self._room(token)
            if room == 0:
                return
            data, end = whole_packets(sending.data, sending.offsets, sending.next_packet, room)
            self._write(token, data)
            if token in self._snapshots:
                sending.next_packet = end
