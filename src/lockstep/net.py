"""Sockets for the live path: UDP in batches with receive stamps, TCP, readiness, CPU pinning.

The typed face of include/lockstep/net/ (Linux: recvmmsg, sendmmsg, epoll). The socket layer
moves bytes and nothing else; codecs frame and decode them. Addresses are spelled as configs
spell them, ``udp://HOST:PORT`` and ``tcp://HOST:PORT`` (HOST a dotted IPv4 address or
``localhost``, never resolved; port 0 asks for any free port, and ``address`` reports the one
the socket got). Sockets bind to loopback unless told otherwise.

Setting a socket up (binding, joining, listening, connecting) raises one exception naming the
address and the cause: AddressError for an address that does not parse, SocketError (with
``errno``) for a refused system call. After that, receive, send, read and write do not raise for
the ordinary states of a non-blocking socket: nothing waiting is 0, a full buffer is False or a
short count; only a closed peer (PeerClosedError) or a failed system call raises.

Every received datagram carries a receive stamp (ns since the epoch, CLOCK_REALTIME) and which
clock took it (StampSource): the kernel's where it gives one, ours otherwise. That stamp is the
one clock the live path reads.
"""
from __future__ import annotations

import os
import socket
from typing import Any, NamedTuple, Self

import numpy as np

from lockstep.enums import StampSource, Status, Transport
from lockstep.errors import LockstepError, SocketError

try:
    from lockstep._bindings import net as _net
except ImportError as exc:  # only Linux builds have the socket layer
    raise LockstepError(f"lockstep.net needs Linux (recvmmsg, sendmmsg, epoll): {exc}") from None

#: Readiness bits of EventLoop.add / EventLoop.ready.
READABLE: int = _net.READABLE
WRITABLE: int = _net.WRITABLE
HANGUP: int = _net.HANGUP
#: Bit of UdpSocket.flags: the datagram was longer than its slot and was cut.
DATAGRAM_TRUNCATED: int = _net.DATAGRAM_TRUNCATED

LOOPBACK = "127.0.0.1"


class Address(NamedTuple):
    """A parsed address; str() spells it back ("udp://127.0.0.1:9000")."""

    transport: Transport
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.transport.label}://{self.host}:{self.port}"

    @property
    def is_multicast(self) -> bool:
        return 224 <= int(self.host.split(".", 1)[0]) <= 239


def _host(ip: int) -> str:
    return ".".join(str((ip >> shift) & 0xFF) for shift in (24, 16, 8, 0))


def parse_address(text: str) -> Address:
    """`text` as an Address; AddressError (one line, saying what is wrong) when it does not parse."""
    transport, ip, port = _net.parse_address(text)
    return Address(Transport(transport), _host(ip), port)


def local_host_towards(host: str) -> str:
    """The address of this machine's interface that reaches `host` (the kernel's route; a UDP
    connect sends nothing), so that a socket expecting answers from `host` listens there and
    not on every interface. SocketError when no route leads there."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((host, 9))
        except OSError as e:
            raise SocketError(Status.SYSTEM_ERROR, f"route to {host}", e.strerror or str(e),
                              e.errno or 0) from None
        return probe.getsockname()[0]


def pin_to_cpu(cpu: int) -> None:
    """Pins the calling thread to one CPU (sched_setaffinity); SocketError if refused."""
    _net.pin_thread_to_cpu(cpu)


def keep_off_cpu(cpu: int) -> None:
    """Lets the calling thread, and the threads it starts from now on (they inherit it), run on
    every CPU it may use but `cpu`, when one is left: a thread that will be pinned to `cpu` and
    spin there starts its helper threads first, so none of them ever takes its CPU."""
    allowed = os.sched_getaffinity(0) - {cpu}
    if allowed:
        os.sched_setaffinity(0, allowed)


class _Socket:
    """What every socket here has: its bound address, a file descriptor for selectors, close(),
    and `with` closing it."""

    _handle: Any  # the binding's object

    @property
    def address(self) -> str:
        """The bound address, with the real port where 0 was asked."""
        return self._handle.address

    def fileno(self) -> int:
        return self._handle.fileno()

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class UdpSocket(_Socket):
    """A bound, non-blocking UDP socket that receives and sends in batches.

    `local` is where it binds; a multicast group there is joined on `interface` (loopback by
    default). `destination` is where send() goes (a multicast group is sent to through
    `interface`, looped back to this host's receivers while `multicast_loop`; on the loopback
    interface itself every send comes back, loop or not). One receive() reads up to
    `batch` datagrams, each into a `slot_bytes` row of `data`; the per-datagram columns
    (`length`, `stamp_ns`, `stamp_source`, `flags`, `peer_ip`, `peer_port`) are numpy arrays
    allocated once and refilled by every receive(): copy what must outlive the next call.
    `kernel_timestamps=False` stamps every datagram from our clock (flagged USER_CLOCK).
    `receive_buffer` / `send_buffer` ask the kernel for that many bytes of buffer (0: its
    default; without privileges the kernel caps them at net.core.[rw]mem_max).
    """

    def __init__(self, local: str = f"udp://{LOOPBACK}:0", *, destination: str | None = None,
                 batch: int = 64, slot_bytes: int = 2048, kernel_timestamps: bool = True,
                 receive_buffer: int = 0, send_buffer: int = 0, interface: str = LOOPBACK,
                 multicast_loop: bool = True) -> None:
        self._handle = _net.UdpSocket(
            local, destination=destination, batch=batch, slot_bytes=slot_bytes,
            kernel_timestamps=kernel_timestamps, receive_buffer=receive_buffer,
            send_buffer=send_buffer, interface=interface, multicast_loop=multicast_loop)
        self.data: np.ndarray = self._handle.data
        self.length: np.ndarray = self._handle.length
        self.stamp_ns: np.ndarray = self._handle.stamp_ns
        self.stamp_source: np.ndarray = self._handle.stamp_source
        self.flags: np.ndarray = self._handle.flags
        self.peer_ip: np.ndarray = self._handle.peer_ip
        self.peer_port: np.ndarray = self._handle.peer_port

    def receive(self, most: int | None = None) -> int:
        """Reads the datagrams already waiting, at most one batch (and at most `most`); how many
        (0 when none). `most=1` reads with one recvmsg, cheaper than a batch that finds one."""
        return self._handle.receive() if most is None else self._handle.receive(most)

    def payload(self, i: int) -> bytes:
        """A copy of datagram i of the last receive()."""
        return self.data[i, :self.length[i]].tobytes()

    def peer(self, i: int) -> str:
        """Who sent datagram i of the last receive(), as a udp:// address."""
        return f"udp://{_host(int(self.peer_ip[i]))}:{int(self.peer_port[i])}"

    def send(self, packed, lengths) -> int:
        """Sends the datagrams packed back to back in `packed` (bytes-like), lengths[i] bytes
        each (a uint32 array), to the destination in sendmmsg batches; how many went (fewer
        when the send buffer filled: send the rest once writable)."""
        return self._handle.send(packed, lengths)

    def native(self) -> Any:
        """The C++ socket (a capsule), for a C++ loop that reads it (lockstep.live.node); valid
        while this object lives."""
        return self._handle.native()

    def send_to(self, payload, address: str) -> bool:
        """One datagram to `address` (a reply to a peer); False when the send buffer is full."""
        return self._handle.send_to(payload, address)

    @property
    def kernel_stamps(self) -> bool:
        """True when the kernel agreed to stamp datagrams (SO_TIMESTAMPNS)."""
        return self._handle.kernel_stamps

    @property
    def buffer_sizes(self) -> tuple[int, int]:
        """(receive, send) kernel buffer sizes as the kernel set them."""
        return self._handle.buffer_sizes

    @property
    def stats(self) -> dict[str, int]:
        """Counts since opening: received, truncated, user_stamped, kernel_drops (datagrams the
        kernel dropped on a full receive buffer), sent, send_blocked."""
        return self._handle.stats



class TcpConnection(_Socket):
    """A non-blocking TCP connection with TCP_NODELAY and a bounded write buffer.

    TcpConnection(remote) starts connecting; poll finish_connect() (or wait until writable) until
    it says True. A write is taken whole or refused whole: what the kernel does not take at once
    waits, in order, in a buffer of `write_capacity` bytes until flush() sends it; write() answers
    False, taking nothing, when the buffer cannot hold the bytes.
    """

    def __init__(self, remote: str, *, write_capacity: int = 1 << 20) -> None:
        self._handle = _net.TcpConnection(remote, write_capacity=write_capacity)

    @classmethod
    def _adopt(cls, conn) -> TcpConnection:
        self = cls.__new__(cls)
        self._handle = conn
        return self

    def finish_connect(self) -> bool:
        """True once connected, False while the handshake runs; SocketError on a refusal."""
        return self._handle.finish_connect()

    def read_into(self, buffer) -> int:
        """Reads what has arrived into `buffer` (writable bytes-like): the byte count, 0 when
        nothing has. PeerClosedError once the peer has closed the connection."""
        return self._handle.read_into(buffer)

    def write(self, data) -> bool:
        """Sends `data` or queues what the kernel does not take now: True; False, nothing
        taken, when the write buffer cannot hold it."""
        return self._handle.write(data)

    def flush(self) -> bool:
        """Sends what waits in the write buffer: True once it is empty."""
        return self._handle.flush()

    def set_send_buffer(self, size: int) -> None:
        """Asks the kernel for a send buffer of `size` bytes (SO_SNDBUF): a small one makes more
        of a burst wait in our write buffer."""
        self._handle.set_send_buffer(size)

    @property
    def pending(self) -> int:
        """Bytes waiting in the write buffer."""
        return self._handle.pending

    @property
    def write_capacity(self) -> int:
        return self._handle.write_capacity

    @property
    def nodelay(self) -> bool:
        """TCP_NODELAY as the kernel reports it."""
        return self._handle.nodelay

    @property
    def peer(self) -> str:
        return self._handle.peer



class TcpListener(_Socket):
    """A listening TCP socket; accept() hands out TcpConnections (TCP_NODELAY set)."""

    def __init__(self, local: str = f"tcp://{LOOPBACK}:0", *, backlog: int = 64,
                 write_capacity: int = 1 << 20) -> None:
        self._handle = _net.TcpListener(local, backlog=backlog, write_capacity=write_capacity)

    def accept(self) -> TcpConnection | None:
        """The next waiting connection, or None when none waits."""
        conn = self._handle.accept()
        return None if conn is None else TcpConnection._adopt(conn)



class EventLoop:
    """Readiness of registered sockets (epoll). Register a file descriptor with a token of your
    own; wait() reports up to `capacity` ready ones as (token, readiness bits) pairs. With
    `busy_poll`, wait() never sleeps, whatever its timeout: pin the thread (pin_to_cpu) and spin."""

    def __init__(self, capacity: int = 64, *, busy_poll: bool = False) -> None:
        self._loop = _net.EventLoop(capacity, busy_poll=busy_poll)

    def add(self, fd: int, interest: int, token: int) -> None:
        self._loop.add(fd, interest, token)

    def modify(self, fd: int, interest: int, token: int) -> None:
        self._loop.modify(fd, interest, token)

    def remove(self, fd: int) -> None:
        self._loop.remove(fd)

    def wait(self, timeout_ms: int) -> list[tuple[int, int]]:
        """The ready sockets as (token, readiness) pairs; waits up to timeout_ms (-1: until one
        is ready) unless busy-polling."""
        n = self._loop.wait(timeout_ms)
        return list(zip(self._loop.tokens[:n].tolist(), self._loop.ready[:n].tolist()))

    @property
    def busy_poll(self) -> bool:
        return self._loop.busy_poll

    def fileno(self) -> int:
        return self._loop.fileno()


__all__ = [
    "DATAGRAM_TRUNCATED",
    "HANGUP",
    "LOOPBACK",
    "READABLE",
    "WRITABLE",
    "Address",
    "EventLoop",
    "StampSource",
    "TcpConnection",
    "TcpListener",
    "Transport",
    "UdpSocket",
    "keep_off_cpu",
    "parse_address",
    "pin_to_cpu",
]
