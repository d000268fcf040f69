"""Book snapshots for a live node: read one from the venue (lockstep.protocols.glimpse) off the
node's thread, so that the feed is read meanwhile.

    fetch = SnapshotFetch(cfg.live.snapshot, username, password, timeout_ns, session="")
    fetch.start()
    ...
    if fetch.done():
        blocks, next_sequence = fetch.result()     # SnapshotError saying what went wrong

One fetch is one SoupBinTCP connection: log in, read the ITCH messages until End of Snapshot,
log out. Whatever goes wrong (refused connection, rejected login, a damaged packet, the session
ending before End of Snapshot, more than `max_bytes`, nothing whole within the timeout) is one
SnapshotError naming the address and what happened; the password never appears in it.
"""
from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

from lockstep.errors import DecodeError, LockstepError, ProtocolError
from lockstep.net import Address
from lockstep.protocols import soupbintcp as soup
from lockstep.protocols.glimpse import END_OF_SNAPSHOT, read_end_of_snapshot

__all__ = ["MAX_SNAPSHOT_BYTES", "SnapshotError", "SnapshotFetch", "fetch_snapshot"]

#: A snapshot larger than this is refused (a venue of millions of live orders is 50 bytes an
#: order: 256 MiB is about five million).
MAX_SNAPSHOT_BYTES = 256 << 20
_READ_BYTES = 1 << 20


class SnapshotError(LockstepError):
    """A snapshot could not be read: which address, and what went wrong."""


def fetch_snapshot(address: Address, username: str, password: str, timeout_ns: int, *,
                   session: str = "", max_bytes: int = MAX_SNAPSHOT_BYTES) -> tuple[bytes, int]:
    """One snapshot from `address`: its messages as blocks ([u16 length][ITCH message] ...,
    End of Snapshot left out) and the sequence number End of Snapshot carried."""
    where = f"snapshot {address}"
    deadline = time.monotonic_ns() + timeout_ns

    def left_s() -> float:
        left = deadline - time.monotonic_ns()
        if left <= 0:
            raise SnapshotError(f"{where}: not read whole within {timeout_ns / 1e9:g} s "
                                "(live.snapshot_timeout)")
        return left / 1e9

    try:
        sock = socket.create_connection((address.host, address.port), timeout=left_s())
    except OSError as e:
        raise SnapshotError(f"{where}: cannot connect: {e.strerror or e}") from None
    with sock:
        sock.settimeout(left_s())
        try:
            sock.sendall(soup.encode(soup.LoginRequest(username, password, session, 1)))
            framer = soup.Framer()
            blocks = bytearray()
            logged_in = False
            while True:
                sock.settimeout(left_s())
                try:
                    chunk = sock.recv(_READ_BYTES)
                except TimeoutError:
                    left_s()  # raises: the deadline passed
                    continue
                if not chunk:
                    raise SnapshotError(f"{where}: the venue closed the connection before End of "
                                        "Snapshot")
                for packet in framer.feed(chunk):
                    m = soup.decode(packet)
                    if isinstance(m, soup.LoginRejected):
                        raise SnapshotError(f"{where}: the venue rejected the login of "
                                            f"{username!r}: {m.reason.label.replace('_', ' ')}")
                    if isinstance(m, soup.LoginAccepted):
                        logged_in = True
                    elif isinstance(m, soup.SequencedData):
                        if not logged_in:
                            raise SnapshotError(f"{where}: sequenced data before the login was "
                                                "accepted")
                        payload = m.payload
                        if payload[:1] == bytes([END_OF_SNAPSHOT]):
                            next_sequence = read_end_of_snapshot(payload)
                            with contextlib.suppress(OSError):
                                sock.sendall(soup.encode(soup.LogoutRequest()))
                            return bytes(blocks), next_sequence
                        if len(blocks) + 2 + len(payload) > max_bytes:
                            raise SnapshotError(f"{where}: larger than {max_bytes:,} bytes")
                        blocks += len(payload).to_bytes(2, "big") + payload
                    elif isinstance(m, soup.EndOfSession):
                        raise SnapshotError(f"{where}: the session ended before End of Snapshot")
                if framer.error is not None:
                    raise SnapshotError(f"{where}: {framer.error}")
        except (DecodeError, ProtocolError) as e:
            raise SnapshotError(f"{where}: {e}") from None
        except OSError as e:
            raise SnapshotError(f"{where}: {e.strerror or e}") from None


class SnapshotFetch:
    """fetch_snapshot on a thread of its own (daemon: a node stopping does not wait for it)."""

    def __init__(self, address: Address, username: str, password: str, timeout_ns: int, *,
                 session: str = "", on_done: Callable[[], None] | None = None) -> None:
        self._args = (address, username, password, timeout_ns)
        self._session = session
        self._on_done = on_done
        self._outcome: tuple[bytes, int] | SnapshotError | None = None
        self._thread = threading.Thread(target=self._run, name="lockstep-snapshot", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            self._outcome = fetch_snapshot(*self._args, session=self._session)
        except SnapshotError as e:
            self._outcome = e
        except Exception as e:  # noqa: BLE001 - reported to the node's thread, never lost
            self._outcome = SnapshotError(f"snapshot {self._args[0]}: {type(e).__name__}: {e}")
        if self._on_done is not None:
            self._on_done()

    def done(self) -> bool:
        return self._outcome is not None

    def result(self) -> tuple[bytes, int]:
        """The snapshot (blocks, next sequence), once done(); its SnapshotError raised."""
        if isinstance(self._outcome, SnapshotError):
            raise self._outcome
        if self._outcome is None:
            raise RuntimeError("the snapshot is not read yet")
        return self._outcome
