"""The socket layer on real loopback sockets: UDP batches with receive stamps, multicast, TCP,
readiness, pinning, and one-line errors for bad addresses and refused calls. Every socket binds
port 0; every loop is bounded in count and in time."""
from __future__ import annotations

import errno
import os
import random
import selectors
import struct
import threading
import time

import numpy as np
import pytest

from lockstep.errors import AddressError, InvalidArgumentError, PeerClosedError, SocketError
from lockstep.net import (
    DATAGRAM_TRUNCATED,
    HANGUP,
    READABLE,
    WRITABLE,
    Address,
    EventLoop,
    StampSource,
    TcpConnection,
    TcpListener,
    Transport,
    UdpSocket,
    local_host_towards,
    parse_address,
    pin_to_cpu,
)

DEADLINE_S = 5.0


def _until(predicate, what: str, seconds: float = DEADLINE_S, tries: int = 1_000_000):
    """Calls predicate() until it returns something truthy; fails naming `what` after `seconds`."""
    end = time.monotonic() + seconds
    for _ in range(tries):
        got = predicate()
        if got:
            return got
        if time.monotonic() > end:
            break
        time.sleep(0.0005)
    pytest.fail(f"timed out waiting for {what}")


def _packed(payloads: list[bytes]) -> tuple[bytes, np.ndarray]:
    return b"".join(payloads), np.array([len(p) for p in payloads], np.uint32)


def _drain(sock: UdpSocket, want: int, into: list[bytes], extra=None, most=None) -> None:
    """Receives until `into` holds `want` payloads (bounded in time), at most `most` a call."""
    def step():
        n = sock.receive(most)
        assert most is None or n <= most
        for i in range(n):
            into.append(sock.payload(i))
            if extra is not None:
                extra(sock, i)
        return len(into) >= want
    _until(step, f"{want} datagrams (got {len(into)})")


# --------------------------------------------------------------------------------------------
# addresses


@pytest.mark.parametrize("text,expected", [
    ("udp://127.0.0.1:0", Address(Transport.UDP, "127.0.0.1", 0)),
    ("tcp://localhost:9000", Address(Transport.TCP, "127.0.0.1", 9000)),
    ("udp://239.255.0.1:65535", Address(Transport.UDP, "239.255.0.1", 65535)),
])
def test_addresses_parse_and_spell_back(text, expected):
    got = parse_address(text)
    assert got == expected
    assert parse_address(str(got)) == got
    assert got.is_multicast == (text.startswith("udp://239."))


@pytest.mark.parametrize("text,reason", [
    ("http://127.0.0.1:80", "expected udp://HOST:PORT or tcp://HOST:PORT"),
    ("udp://127.0.0.1", "missing :PORT"),
    ("udp://127.0.0.1:65536", "the port is not a number from 0 to 65535"),
    ("udp://127.0.0.1:-1", "the port is not a number from 0 to 65535"),
    ("tcp://example.com:80", "the host is not a dotted IPv4 address or localhost"),
    ("udp://1.2.3:4", "the host is not a dotted IPv4 address"),
    ("udp://1.2.3.256:4", "the host is not a dotted IPv4 address"),
    ("udp://01.2.3.4:4", "the host is not a dotted IPv4 address"),
    ("udp://:4", "the host is not a dotted IPv4 address"),
    ("tcp://239.1.1.1:5000", "a multicast group is a UDP address"),
    ("", "expected udp://HOST:PORT or tcp://HOST:PORT"),
])
def test_bad_addresses_are_one_line_errors(text, reason):
    with pytest.raises(AddressError) as e:
        parse_address(text)
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith(f"{text!r}: bad address: {reason}")


def test_a_socket_refuses_the_other_transport():
    with pytest.raises(AddressError, match=r"'tcp://127.0.0.1:0': bad address: a UDP socket needs udp://"):
        UdpSocket("tcp://127.0.0.1:0")
    with pytest.raises(AddressError, match="a TCP listener needs tcp://"):
        TcpListener("udp://127.0.0.1:0")
    with pytest.raises(AddressError, match="a TCP connection needs tcp://"):
        TcpConnection("udp://127.0.0.1:1")


def test_refused_setup_names_the_address_the_call_and_the_cause():
    with TcpListener() as first:
        taken = first.address
        with pytest.raises(SocketError) as e:
            TcpListener(taken)
    assert e.value.errno == errno.EADDRINUSE
    assert str(e.value) == (f"{taken}: system call failed: bind: "
                            f"{os.strerror(errno.EADDRINUSE)} (errno {errno.EADDRINUSE})")
    with pytest.raises(SocketError, match=r"^udp://192\.0\.2\.1:0: system call failed: bind: ") as e:
        UdpSocket("udp://192.0.2.1:0")  # TEST-NET-1: not an address of this machine
    assert e.value.errno == errno.EADDRNOTAVAIL


def test_bad_sizes_are_refused_naming_the_limit():
    with pytest.raises(InvalidArgumentError, match=r"^udp://127\.0\.0\.1:0: invalid argument: batch must be 1\.\.1024"):
        UdpSocket("udp://127.0.0.1:0", batch=0)
    with pytest.raises(ValueError, match="slot_bytes must be 1..65536"):
        UdpSocket(slot_bytes=0)
    with pytest.raises(InvalidArgumentError, match="^event loop: invalid argument: capacity must be at least 1"):
        EventLoop(0)
    with pytest.raises(AddressError, match="the host is not a dotted IPv4 address"):
        UdpSocket(interface="lo")


# --------------------------------------------------------------------------------------------
# UDP


def test_bound_port_is_reported_back():
    with UdpSocket() as sock:
        address = parse_address(sock.address)
    assert address.host == "127.0.0.1" and address.port != 0


def test_udp_batches_round_trip_without_loss():
    total, per_send = 20_000, 200
    got: list[bytes] = []
    with UdpSocket(receive_buffer=4 << 20) as rx, \
            UdpSocket(destination=rx.address, batch=64) as tx:
        for start in range(0, total, per_send):
            payloads = [struct.pack("<Q", seq) + bytes(seq % 200) for seq in
                        range(start, start + per_send)]
            packed, lengths = _packed(payloads)
            sent = _until(lambda: tx.send(packed, lengths), "a send")
            assert sent == per_send  # loopback with a drained receiver never fills
            _drain(rx, start + per_send, got)
        stats = rx.stats
    seqs = [struct.unpack_from("<Q", p)[0] for p in got]
    assert seqs == list(range(total))
    assert all(len(p) == 8 + seq % 200 for seq, p in zip(seqs, got))
    assert stats["received"] == total and stats["kernel_drops"] == 0 and stats["truncated"] == 0


def _stamped_round_trip(rx: UdpSocket, count: int) -> tuple[list[int], list[int], int, int]:
    stamps: list[int] = []
    sources: list[int] = []

    def keep(sock, i):
        stamps.append(int(sock.stamp_ns[i]))
        sources.append(int(sock.stamp_source[i]))

    before = time.time_ns()
    with UdpSocket(destination=rx.address) as tx:
        for seq in range(count):
            packed, lengths = _packed([struct.pack("<Q", seq)])
            assert tx.send(packed, lengths) == 1
    _drain(rx, count, [], keep)
    after = time.time_ns()
    return stamps, sources, before, after


def test_kernel_receive_stamps_are_flagged_kernel_and_in_order():
    with UdpSocket() as rx:
        if not rx.kernel_stamps:
            pytest.skip("this kernel refused SO_TIMESTAMPNS")
        stamps, sources, before, after = _stamped_round_trip(rx, 200)
        assert rx.stats["user_stamped"] == 0
    assert set(sources) == {StampSource.KERNEL}
    assert all(before <= s <= after for s in stamps)
    assert stamps == sorted(stamps)  # one socket, one sender: arrival order


def test_without_kernel_stamps_the_user_clock_stamps_and_says_so():
    with UdpSocket(kernel_timestamps=False) as rx:
        assert not rx.kernel_stamps
        stamps, sources, before, after = _stamped_round_trip(rx, 50)
        assert rx.stats["user_stamped"] == 50
    assert set(sources) == {StampSource.USER_CLOCK}
    assert all(before <= s <= after for s in stamps)


def test_a_datagram_longer_than_its_slot_is_cut_and_flagged():
    with UdpSocket(slot_bytes=64) as rx, UdpSocket(destination=rx.address) as tx:
        packed, lengths = _packed([bytes(range(100)), b"short"])
        assert tx.send(packed, lengths) == 2
        got: list[bytes] = []
        flags: list[int] = []
        _drain(rx, 2, got, lambda s, i: flags.append(int(s.flags[i])))
        assert rx.stats["truncated"] == 1
    assert got == [bytes(range(64)), b"short"]
    assert flags == [DATAGRAM_TRUNCATED, 0]


def test_datagrams_the_kernel_drops_on_a_full_buffer_are_counted():
    with UdpSocket(receive_buffer=4096) as rx, UdpSocket(destination=rx.address) as tx:
        packed, lengths = _packed([bytes(1000)] * 200)
        assert tx.send(packed, lengths) == 200  # nobody reads: most cannot be queued
        got: list[bytes] = []
        _until(lambda: rx.receive() == 0 and rx.stats["received"] > 0, "the queued datagrams")
        queued = rx.stats["received"]
        assert 0 < queued < 200
        # The kernel tells the drop count with the next datagram it queues.
        packed, lengths = _packed([b"after"])
        assert tx.send(packed, lengths) == 1
        _drain(rx, 1, got)
        assert got == [b"after"]
        assert rx.stats["kernel_drops"] == 200 - queued


def test_the_sender_is_reported_and_can_be_answered():
    with UdpSocket() as server, UdpSocket(destination=server.address) as client:
        packed, lengths = _packed([b"request"])
        assert client.send(packed, lengths) == 1
        peers: list[str] = []
        _drain(server, 1, [], lambda s, i: peers.append(s.peer(i)))
        assert peers == [client.address]
        assert server.send_to(b"reply", peers[0])
        got: list[bytes] = []
        _drain(client, 1, got)
    assert got == [b"reply"]


def test_receive_after_sends_and_batches_of_every_size_reads_each_datagram_right():
    """The socket keeps its receive headers between calls and sets up again only what the
    kernel wrote: batches larger and smaller than the last, single datagrams (recvmsg, the
    first header) between them, a long datagram among short ones, two senders, and sends
    (sendmmsg, the same headers) in between."""
    with UdpSocket(slot_bytes=64, batch=8) as rx, UdpSocket(destination=rx.address) as a, \
            UdpSocket(destination=rx.address) as b:
        expected: list[tuple[bytes, str]] = []
        got: list[tuple[bytes, str]] = []
        for k, (sender, sizes) in enumerate([(a, [100] * 8), (b, [3, 4, 5]), (a, [10, 100, 20]),
                                             (b, [1] * 8), (a, [64, 65])]):
            payloads = [bytes([k, j]) + bytes(n - 2) if n >= 2 else bytes([k]) for j, n in
                        enumerate(sizes)]
            packed, lengths = _packed(payloads)
            assert _until(lambda: sender.send(packed, lengths), "a send") == len(payloads)
            expected += [(p[:64], sender.address) for p in payloads]
            # one datagram a call (one recvmsg) for the first of each round, then batches
            _drain(rx, len(expected) - len(payloads) + 1, got,
                   lambda s, i: got.__setitem__(-1, (got[-1], s.peer(i))), most=1)
            _drain(rx, len(expected), got,
                   lambda s, i: got.__setitem__(-1, (got[-1], s.peer(i))), most=[None, 2, 1][k % 3])
            # rx answers a: a receives after its own sends
            assert rx.send_to(bytes([k]) * 7, a.address)
            answer: list[bytes] = []
            _drain(a, 1, answer)
            assert answer == [bytes([k]) * 7]
        assert got == expected
        assert rx.stats["truncated"] == 8 + 1 + 1  # the 100-byte ones and the 65-byte one
        assert rx.stats["received"] == len(expected)


def test_nothing_waiting_is_zero_not_an_error():
    with UdpSocket() as rx:
        assert rx.receive() == 0
        assert rx.receive(1) == 0
        assert rx.stats["received"] == 0
        with pytest.raises(ValueError, match="most"):
            rx.receive(0)


def test_multicast_on_loopback():
    group = "udp://239.255.77.1:0"
    try:
        rx = UdpSocket(group)
    except SocketError as e:
        pytest.skip(f"the kernel refused to join {group} on loopback: {e}")
    with rx:
        port = parse_address(rx.address).port
        destination = f"udp://239.255.77.1:{port}"
        with UdpSocket(destination=destination) as tx:
            payloads = [struct.pack("<Q", seq) for seq in range(100)]
            packed, lengths = _packed(payloads)
            assert tx.send(packed, lengths) == 100
            got: list[bytes] = []
            _drain(rx, 100, got)
    assert got == payloads
    assert parse_address(destination).is_multicast


def test_sockets_work_with_selectors_and_the_event_loop():
    with UdpSocket() as rx, UdpSocket(destination=rx.address) as tx:
        loop = EventLoop(8)
        loop.add(rx.fileno(), READABLE, 7)
        assert loop.wait(0) == []
        packed, lengths = _packed([b"ping"])
        tx.send(packed, lengths)
        ready = loop.wait(2000)
        assert [(token, bool(bits & READABLE)) for token, bits in ready] == [(7, True)]
        with selectors.DefaultSelector() as sel:
            sel.register(rx, selectors.EVENT_READ)
            assert [key.fileobj for key, _ in sel.select(timeout=2)] == [rx]
        assert rx.receive() == 1
        loop.remove(rx.fileno())


def test_busy_poll_never_sleeps():
    loop = EventLoop(4, busy_poll=True)
    with UdpSocket() as rx:
        loop.add(rx.fileno(), READABLE, 1)
        start = time.monotonic()
        for _ in range(100):
            assert loop.wait(-1) == []  # -1 would sleep forever without busy-poll
        assert time.monotonic() - start < DEADLINE_S
    assert loop.busy_poll


def test_pin_to_cpu():
    allowed = sorted(os.sched_getaffinity(0))
    seen: list[set[int]] = []

    def pinned():
        pin_to_cpu(allowed[-1])
        seen.append(os.sched_getaffinity(0))

    thread = threading.Thread(target=pinned)
    thread.start()
    thread.join(DEADLINE_S)
    assert seen == [{allowed[-1]}]
    with pytest.raises(InvalidArgumentError, match=r"^CPU -1: invalid argument"):
        pin_to_cpu(-1)


# --------------------------------------------------------------------------------------------
# TCP


def _pair(listener: TcpListener, **kw) -> tuple[TcpConnection, TcpConnection]:
    client = TcpConnection(listener.address, **kw)
    server = _until(listener.accept, "accept")
    _until(client.finish_connect, "connect")
    return client, server


def test_tcp_connect_accept_with_nodelay():
    with TcpListener() as listener:
        assert parse_address(listener.address).port != 0
        client, server = _pair(listener)
        with client, server:
            assert client.nodelay and server.nodelay
            assert client.peer == listener.address
            assert server.peer == client.address and client.address != listener.address
            assert client.write(b"hello")
            buf = bytearray(16)
            n = _until(lambda: server.read_into(buf), "bytes")
            assert bytes(buf[:n]) == b"hello"
            assert server.read_into(buf) == 0


def test_tcp_connect_refused_is_a_socket_error():
    with TcpListener() as listener:
        free = listener.address
    conn = TcpConnection(free)  # nothing listens there any more
    with pytest.raises(SocketError) as e:
        _until(conn.finish_connect, "the refusal")
    assert e.value.errno == errno.ECONNREFUSED and str(e.value).startswith(f"{free}: system call failed: connect: ")


def test_tcp_stream_survives_arbitrary_chunking():
    rng = random.Random(11)
    sent = bytes(rng.getrandbits(8) for _ in range(300_000))
    received = bytearray()
    with TcpListener() as listener:
        client, server = _pair(listener, write_capacity=1 << 16)
        with client, server:
            pos = 0
            buf = bytearray(70_000)
            end = time.monotonic() + DEADLINE_S
            while len(received) < len(sent) and time.monotonic() < end:
                if pos < len(sent):
                    chunk = sent[pos:pos + rng.randint(1, 5000)]
                    if client.write(chunk):
                        pos += len(chunk)
                client.flush()
                n = server.read_into(memoryview(buf)[:rng.randint(1, len(buf))])
                received += buf[:n]
    assert bytes(received) == sent


def test_tcp_partial_writes_wait_in_order_and_a_full_buffer_refuses_whole():
    capacity = 64 << 10
    with TcpListener() as listener:
        client, server = _pair(listener, write_capacity=capacity)
        with client, server:
            client.set_send_buffer(4096)
            accepted = bytearray()
            chunk_no = 0
            for _ in range(100_000):  # the peer does not read: the kernel's buffers fill first
                chunk = bytes([chunk_no % 251]) * 1000
                if not client.write(chunk):
                    break
                accepted += chunk
                chunk_no += 1
            else:
                pytest.fail("the write buffer never filled")
            assert 0 < client.pending and client.pending + 1000 > capacity  # refused whole
            filler = b"z" * (capacity - client.pending)
            assert client.write(filler)  # what fits is taken
            accepted += filler
            assert client.pending == capacity and not client.write(b"z")
            received = bytearray()
            buf = bytearray(1 << 16)

            def drained():
                client.flush()
                received.extend(buf[:server.read_into(buf)])
                return client.pending == 0 and len(received) >= len(accepted)
            _until(drained, "the queued bytes")
    assert bytes(received[:len(accepted)]) == bytes(accepted)


def test_peer_close_is_detected_on_read_and_on_write():
    with TcpListener() as listener:
        client, server = _pair(listener)
        server.close()
        buf = bytearray(64)
        with pytest.raises(PeerClosedError, match="peer closed the connection"):
            _until(lambda: client.read_into(buf), "the close")

        def write_until_refused():
            client.write(b"y" * 1000)
            return client.flush() and False
        with pytest.raises(PeerClosedError):
            _until(write_until_refused, "the reset")
        client.close()


def test_the_event_loop_reports_a_connect_as_writable_and_a_close_as_hangup():
    loop = EventLoop(4)
    with TcpListener() as listener:
        client = TcpConnection(listener.address)
        loop.add(client.fileno(), WRITABLE, 1)
        ready = dict(_until(lambda: loop.wait(100), "the connect"))
        assert ready[1] & WRITABLE
        assert client.finish_connect()
        server = _until(listener.accept, "accept")
        loop.modify(client.fileno(), READABLE, 1)
        server.close()
        ready = dict(_until(lambda: loop.wait(100), "the hangup"))
        assert ready[1] & HANGUP
        client.close()


def test_a_socket_for_answers_from_a_host_listens_on_the_interface_that_reaches_it():
    # The node binds its retransmission-request socket here: never the wildcard address.
    assert local_host_towards("127.0.0.1") == "127.0.0.1"
    assert local_host_towards("127.5.6.7").startswith("127.")
