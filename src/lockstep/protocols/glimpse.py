"""Book snapshots over SoupBinTCP, GLIMPSE-style: what a receiver that lost part of the ITCH feed
reads to rebuild its books (docs/protocols.md, "Snapshots").

After a SoupBinTCP login the server sends, one ITCH 5.0 message per Sequenced Data packet, the
Stock Directory of every stock, then an Add Order for every order live in its books (in the order
a receiver adds them for price-time priority: oldest first), then End of Snapshot and End of
Session. End of Snapshot is a 'G'
message whose 20 ASCII bytes hold the MoldUDP64 sequence number the snapshot was taken before
(decimal, right-justified, space-padded, as SoupBinTCP's sequence numbers are): every message
numbered below it is in the snapshot, every message from it on is not.

    block = end_of_snapshot(4_182_113)      # the message (no block length)
    next_sequence = read_end_of_snapshot(block)
"""
from __future__ import annotations

from lockstep.errors import DecodeError

__all__ = ["END_OF_SNAPSHOT", "END_OF_SNAPSHOT_LENGTH", "end_of_snapshot", "read_end_of_snapshot"]

#: The End of Snapshot message type.
END_OF_SNAPSHOT = ord("G")
_DIGITS = 20
END_OF_SNAPSHOT_LENGTH = 1 + _DIGITS


def end_of_snapshot(next_sequence: int) -> bytes:
    """The End of Snapshot message for a snapshot taken before `next_sequence` (>= 1)."""
    if not isinstance(next_sequence, int) or isinstance(next_sequence, bool) or not (
            1 <= next_sequence < 10**_DIGITS):
        raise ValueError(f"next_sequence must be an int in [1, 10^{_DIGITS}), not {next_sequence!r}")
    return bytes([END_OF_SNAPSHOT]) + str(next_sequence).rjust(_DIGITS).encode("ascii")


def read_end_of_snapshot(message: bytes) -> int:
    """The sequence number an End of Snapshot message carries; DecodeError saying what is wrong
    with one that is not such a message."""
    if len(message) != END_OF_SNAPSHOT_LENGTH or message[0] != END_OF_SNAPSHOT:
        raise DecodeError(f"not an End of Snapshot message: {len(message)} bytes of type "
                          f"{message[:1]!r} (want {END_OF_SNAPSHOT_LENGTH} of type b'G')")
    text = message[1:].decode("ascii", "replace").strip(" ")
    if not text.isdigit() or not text.isascii() or int(text) < 1:
        raise DecodeError(f"End of Snapshot: sequence number {message[1:]!r} is not a positive "
                          "decimal number")
    return int(text)
