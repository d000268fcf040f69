"""Reading a book snapshot (lockstep.live.snapshot) from a server on loopback that answers as
told: the blocks and the sequence number of a whole one, and one clear SnapshotError for each
way one can go wrong, the password never in it."""
from __future__ import annotations

import socket
import threading
import time

import pytest

from lockstep.enums import LoginRejectReason
from lockstep.live.snapshot import SnapshotError, SnapshotFetch, fetch_snapshot
from lockstep.net import parse_address
from lockstep.protocols import soupbintcp as soup
from lockstep.protocols.glimpse import end_of_snapshot

PASSWORD = "hunter22"
TIMEOUT_NS = 2_000_000_000


class Server:
    """Accepts one connection, reads the login, sends `answer` (bytes), then closes or, with
    `hold`, keeps the connection open without a word until the test ends."""

    def __init__(self, answer: bytes, *, hold: bool = False) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = parse_address(f"tcp://127.0.0.1:{self.listener.getsockname()[1]}")
        self.login: soup.LoginRequest | None = None
        self.answer, self.hold = answer, hold
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            framer = soup.Framer()
            while self.login is None:
                data = conn.recv(4096)
                if not data:
                    return
                for packet in framer.feed(data):
                    self.login = soup.decode(packet)
            conn.sendall(self.answer)
            if self.hold:
                self.done.wait(10)

    def close(self) -> None:
        self.done.set()
        self.thread.join(10)
        self.listener.close()


def sequenced(*messages: bytes) -> bytes:
    return b"".join(soup.encode(soup.SequencedData(m)) for m in messages)


ACCEPTED = soup.encode(soup.LoginAccepted("LOCKSTEP", 1))
ADD = b"A" + bytes(35)


@pytest.fixture
def serve():
    servers: list[Server] = []

    def start(answer: bytes, **kw) -> Server:
        servers.append(Server(answer, **kw))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def test_a_whole_snapshot_is_its_blocks_and_the_sequence_it_was_taken_before(serve):
    server = serve(ACCEPTED + soup.encode(soup.ServerHeartbeat()) +
                   sequenced(b"R" + bytes(38), ADD, end_of_snapshot(4321)) +
                   soup.encode(soup.EndOfSession()))
    blocks, next_sequence = fetch_snapshot(server.address, "demo", PASSWORD, TIMEOUT_NS)
    assert next_sequence == 4321
    assert blocks == b"\x00\x27R" + bytes(38) + b"\x00\x24" + ADD
    assert (server.login.username, server.login.password, server.login.sequence) == (
        "demo", PASSWORD, 1)


@pytest.mark.parametrize(("answer", "why"), [
    (soup.encode(soup.LoginRejected(LoginRejectReason.NOT_AUTHORIZED)), "rejected the login of 'demo'"),
    (ACCEPTED + sequenced(ADD) + soup.encode(soup.EndOfSession()), "ended before End of Snapshot"),
    (ACCEPTED + sequenced(ADD), "closed the connection before End of Snapshot"),
    (ACCEPTED + sequenced(b"G" + b"x" * 20), "not a positive decimal"),
    (sequenced(ADD), "before the login was accepted"),
    (ACCEPTED + b"\x00\x00", "snapshot tcp://127.0.0.1"),  # a packet without a type
])
def test_each_way_a_snapshot_goes_wrong_is_one_line_naming_the_server(serve, answer, why):
    server = serve(answer)
    with pytest.raises(SnapshotError, match=why) as e:
        fetch_snapshot(server.address, "demo", PASSWORD, TIMEOUT_NS)
    text = str(e.value)
    assert str(server.address) in text and "\n" not in text and PASSWORD not in text


def test_a_silent_server_is_given_up_at_the_timeout(serve):
    server = serve(ACCEPTED + sequenced(ADD), hold=True)
    started = time.monotonic()
    with pytest.raises(SnapshotError, match="not read whole within 0.3 s"):
        fetch_snapshot(server.address, "demo", PASSWORD, 300_000_000)
    assert time.monotonic() - started < 5


def test_a_snapshot_too_large_is_refused(serve):
    server = serve(ACCEPTED + sequenced(*[ADD] * 10, end_of_snapshot(9)))
    with pytest.raises(SnapshotError, match="larger than 100 bytes"):
        fetch_snapshot(server.address, "demo", PASSWORD, TIMEOUT_NS, max_bytes=100)


def test_no_server_is_a_snapshot_error_and_a_fetch_reports_it_on_its_thread():
    with socket.create_server(("127.0.0.1", 0)) as s:
        port = s.getsockname()[1]
    woke = threading.Event()
    fetch = SnapshotFetch(parse_address(f"tcp://127.0.0.1:{port}"), "demo", PASSWORD, TIMEOUT_NS,
                          on_done=woke.set)
    fetch.start()
    assert woke.wait(10) and fetch.done()
    with pytest.raises(SnapshotError, match="cannot connect"):
        fetch.result()
