# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin binding of include/lockstep/net/: UDP batches, TCP, the epoll loop, address parsing.

The public API is lockstep.net; this module moves buffers across the boundary, releases the GIL
around every system call and turns a setup Status into an exception through errors.check_status,
naming the address and the failed call.
"""
from libc.stdint cimport SIZE_MAX, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport strlen
from cpython.pycapsule cimport PyCapsule_New

import numpy as np

from lockstep.includes.base.status cimport CStatus
from lockstep.includes.net.address cimport (
    CEndpoint, CTransport, format_endpoint, kEndpointText, parse_endpoint,
)
from lockstep.includes.net.event_loop cimport CEventLoop, kHangup, kReadable, kWritable, pin_to_cpu
from lockstep.includes.net.socket cimport CSysError, get_int_option
from lockstep.includes.net.tcp cimport CTcpConnection, CTcpListener
from lockstep.includes.net.udp cimport (
    CDatagrams, CStampSource, CUdpOptions, CUdpSocket, kDatagramTruncated,
)

from lockstep.errors import check_status

cdef extern from "<sys/socket.h>":
    int SOL_SOCKET, SO_RCVBUF, SO_SNDBUF

cdef extern from "<netinet/tcp.h>":
    int IPPROTO_TCP, TCP_NODELAY

# The C++ enumerators by name, which tests/test_enum_parity.py holds lockstep.enums to.
ENUMERATORS = {
    "Transport": {"Udp": <int>CTransport.Udp, "Tcp": <int>CTransport.Tcp},
    "StampSource": {"Kernel": <int>CStampSource.Kernel, "UserClock": <int>CStampSource.UserClock},
}
READABLE = kReadable
WRITABLE = kWritable
HANGUP = kHangup
DATAGRAM_TRUNCATED = kDatagramTruncated


cdef CEndpoint _endpoint(str text) except *:
    cdef bytes raw = text.encode("utf-8", "replace")
    cdef CEndpoint e
    cdef const char* reason = b""
    cdef CStatus s = parse_endpoint(raw, len(raw), e, reason)
    check_status(<int>s, repr(text), detail=reason.decode())
    return e


cdef str _text(const CEndpoint& e):
    cdef char out[64]
    cdef size_t n = format_endpoint(e, out)
    return out[:n].decode()


cdef _check(CStatus s, str address, const CSysError& e):
    check_status(<int>s, address, detail=e.call.decode(), errno=e.err)


def parse_address(str text):
    """(transport, ip, port) of "udp://HOST:PORT" / "tcp://HOST:PORT"; the ip in host order."""
    cdef CEndpoint e = _endpoint(text)
    return <int>e.transport, e.ip, e.port


def format_address(int transport, uint32_t ip, uint16_t port):
    cdef CEndpoint e
    e.transport = <CTransport>transport
    e.ip = ip
    e.port = port
    return _text(e)


def pin_thread_to_cpu(int cpu):
    """Pins the calling thread to `cpu` (sched_setaffinity)."""
    cdef CSysError e
    _check(pin_to_cpu(cpu, e), f"CPU {cpu}", e)


cdef class UdpSocket:
    """A bound non-blocking UDP socket with a preallocated receive batch (see lockstep.net)."""

    cdef CUdpSocket _sock
    cdef CDatagrams _out
    cdef readonly object data, length, stamp_ns, stamp_source, flags, peer_ip, peer_port
    cdef str _name

    def __init__(self, str local, *, str destination=None, unsigned int batch=64,
                 size_t slot_bytes=2048, bint kernel_timestamps=True, int receive_buffer=0,
                 int send_buffer=0, str interface="127.0.0.1", bint multicast_loop=True):
        cdef CEndpoint where = _endpoint(local)
        if where.transport != CTransport.Udp:
            check_status(<int>CStatus.BadAddress, repr(local), detail="a UDP socket needs udp://")
        if slot_bytes == 0 or slot_bytes > 65536:
            raise ValueError(f"slot_bytes must be 1..65536, got {slot_bytes}")
        cdef CUdpOptions opt
        opt.batch = batch
        opt.kernel_timestamps = kernel_timestamps
        opt.receive_buffer = receive_buffer
        opt.send_buffer = send_buffer
        opt.interface_ip = _endpoint("udp://" + interface + ":0").ip
        opt.multicast_loop = multicast_loop
        self._name = local
        _check(self._sock.open(where, opt), local, self._sock.last_error())
        cdef CEndpoint to
        if destination is not None:
            to = _endpoint(destination)
            self._name = destination
            _check(self._sock.set_destination(to), destination, self._sock.last_error())
        n = batch
        self.data = np.zeros((n, slot_bytes), np.uint8)
        self.length = np.zeros(n, np.uint32)
        self.stamp_ns = np.zeros(n, np.int64)
        self.stamp_source = np.zeros(n, np.uint8)
        self.flags = np.zeros(n, np.uint8)
        self.peer_ip = np.zeros(n, np.uint32)
        self.peer_port = np.zeros(n, np.uint16)
        cdef uint8_t[:, ::1] d = self.data
        cdef uint32_t[::1] ln = self.length
        cdef int64_t[::1] st = self.stamp_ns
        cdef uint8_t[::1] src = self.stamp_source
        cdef uint8_t[::1] fl = self.flags
        cdef uint32_t[::1] pip = self.peer_ip
        cdef uint16_t[::1] pport = self.peer_port
        self._out.data = &d[0, 0]
        self._out.slot_bytes = slot_bytes
        self._out.capacity = n
        self._out.length = &ln[0]
        self._out.stamp_ns = &st[0]
        self._out.stamp_source = &src[0]
        self._out.flags = &fl[0]
        self._out.peer_ip = &pip[0]
        self._out.peer_port = &pport[0]

    def receive(self, size_t most=SIZE_MAX):
        """Reads the datagrams already waiting (at most one batch, at most `most`) into the
        arrays; their count."""
        if most == 0:
            raise ValueError("most must be at least 1")
        cdef size_t count = 0
        cdef CStatus s
        with nogil:
            s = self._sock.receive(self._out, count, most)
        if s != CStatus.Ok:
            _check(s, self._name, self._sock.last_error())
        return count

    def send(self, const uint8_t[::1] packed, const uint32_t[::1] lengths):
        """Sends the datagrams packed back to back in `packed`, lengths[i] bytes each, to the
        destination; how many went (fewer when the send buffer filled)."""
        cdef size_t n = lengths.shape[0]
        cdef size_t i, total = 0
        for i in range(n):
            total += lengths[i]
        if total > <size_t>packed.shape[0]:
            raise ValueError(f"lengths add up to {total} bytes, the buffer holds {packed.shape[0]}")
        cdef size_t sent = 0
        cdef CStatus s = CStatus.Ok
        if n:
            with nogil:
                s = self._sock.send(&packed[0], &lengths[0], n, sent)
        if s != CStatus.Ok and s != CStatus.WouldBlock:
            _check(s, self._name, self._sock.last_error())
        return sent

    def send_to(self, const uint8_t[::1] payload, str address):
        """One datagram to `address`; False when the send buffer is full."""
        cdef CEndpoint to = _endpoint(address)
        cdef CStatus s
        cdef uint8_t empty = 0
        cdef const uint8_t* p = &payload[0] if payload.shape[0] else &empty
        with nogil:
            s = self._sock.send_to(p, payload.shape[0], to)
        if s == CStatus.WouldBlock:
            return False
        _check(s, address, self._sock.last_error())
        return True

    @property
    def address(self):
        return _text(self._sock.local())

    @property
    def kernel_stamps(self):
        return self._sock.kernel_stamps()

    @property
    def buffer_sizes(self):
        """(SO_RCVBUF, SO_SNDBUF) as the kernel set them."""
        fd = self._sock.fd()
        return get_int_option(fd, SOL_SOCKET, SO_RCVBUF), get_int_option(fd, SOL_SOCKET, SO_SNDBUF)

    @property
    def stats(self):
        st = self._sock.stats()
        return {"received": st.received, "truncated": st.truncated,
                "user_stamped": st.user_stamped, "kernel_drops": st.kernel_drops,
                "sent": st.sent, "send_blocked": st.send_blocked}

    def fileno(self):
        return self._sock.fd()

    def native(self):
        """The C++ socket in a capsule, for a C++ loop that reads it (lockstep._bindings.live_loop);
        valid while this object lives."""
        return PyCapsule_New(<void*>&self._sock, b"lockstep::net::UdpSocket", NULL)

    def close(self):
        self._sock.close()


cdef class TcpConnection:
    """A non-blocking TCP connection with TCP_NODELAY and a bounded write buffer (lockstep.net)."""

    cdef CTcpConnection _conn
    cdef str _name

    def __init__(self, str remote=None, *, size_t write_capacity=1 << 20):
        """Starts connecting to `remote`; without one, an empty object for TcpListener.accept."""
        if remote is None:
            return
        cdef CEndpoint e = _endpoint(remote)
        if e.transport != CTransport.Tcp:
            check_status(<int>CStatus.BadAddress, repr(remote), detail="a TCP connection needs tcp://")
        self._name = remote
        cdef CStatus s = self._conn.connect(e, write_capacity)
        if s != CStatus.WouldBlock:
            _check(s, remote, self._conn.last_error())

    def finish_connect(self):
        """True once connected, False while the handshake runs; raises on a refusal."""
        cdef CStatus s = self._conn.finish_connect()
        if s == CStatus.WouldBlock:
            return False
        _check(s, self._name, self._conn.last_error())
        return True

    def read_into(self, uint8_t[::1] buf):
        """Reads what has arrived into buf: the byte count, 0 when nothing has; raises
        PeerClosedError once the peer has closed."""
        cdef size_t n = 0
        cdef CStatus s
        cdef uint8_t empty = 0
        cdef uint8_t* p = &buf[0] if buf.shape[0] else &empty
        with nogil:
            s = self._conn.read(p, buf.shape[0], n)
        if s == CStatus.WouldBlock:
            return 0
        _check(s, self._name, self._conn.last_error())
        return n

    def write(self, const uint8_t[::1] data):
        """Sends data or queues what the kernel does not take now: True; False (nothing taken)
        when the write buffer cannot hold it."""
        cdef CStatus s
        cdef uint8_t empty = 0
        cdef const uint8_t* p = &data[0] if data.shape[0] else &empty
        with nogil:
            s = self._conn.write(p, data.shape[0])
        if s == CStatus.OutputFull:
            return False
        _check(s, self._name, self._conn.last_error())
        return True

    def flush(self):
        """Sends what waits in the write buffer: True when it is empty."""
        cdef CStatus s
        with nogil:
            s = self._conn.flush()
        if s == CStatus.WouldBlock:
            return False
        _check(s, self._name, self._conn.last_error())
        return True

    def set_send_buffer(self, int bytes):
        _check(self._conn.set_send_buffer(bytes), self._name, self._conn.last_error())

    @property
    def pending(self):
        return self._conn.pending()

    @property
    def write_capacity(self):
        return self._conn.capacity()

    @property
    def nodelay(self):
        return get_int_option(self._conn.fd(), IPPROTO_TCP, TCP_NODELAY) == 1

    @property
    def address(self):
        return _text(self._conn.local())

    @property
    def peer(self):
        return _text(self._conn.peer())

    def fileno(self):
        return self._conn.fd()

    def close(self):
        self._conn.close()


cdef class TcpListener:
    """A listening TCP socket (lockstep.net)."""

    cdef CTcpListener _lis
    cdef str _name
    cdef size_t _write_capacity

    def __init__(self, str local, *, int backlog=64, size_t write_capacity=1 << 20):
        cdef CEndpoint e = _endpoint(local)
        if e.transport != CTransport.Tcp:
            check_status(<int>CStatus.BadAddress, repr(local), detail="a TCP listener needs tcp://")
        self._name = local
        self._write_capacity = write_capacity
        _check(self._lis.open(e, backlog), local, self._lis.last_error())

    def accept(self):
        """The next waiting connection, or None when none waits."""
        conn = TcpConnection()
        cdef TcpConnection c = conn
        cdef CStatus s = self._lis.accept(c._conn, self._write_capacity)
        if s == CStatus.WouldBlock:
            return None
        _check(s, self._name, self._lis.last_error())
        c._name = _text(c._conn.peer())
        return conn

    @property
    def address(self):
        return _text(self._lis.local())

    def fileno(self):
        return self._lis.fd()

    def close(self):
        self._lis.close()


cdef class EventLoop:
    """Readiness of registered file descriptors over epoll (lockstep.net)."""

    cdef CEventLoop _loop
    cdef readonly object tokens, ready

    def __init__(self, unsigned int capacity=64, *, bint busy_poll=False):
        _check(self._loop.open(capacity, busy_poll), "event loop", self._loop.last_error())
        self.tokens = np.zeros(capacity, np.uint64)
        self.ready = np.zeros(capacity, np.uint32)

    def add(self, int fd, uint32_t interest, uint64_t token):
        _check(self._loop.add(fd, interest, token), f"fd {fd}", self._loop.last_error())

    def modify(self, int fd, uint32_t interest, uint64_t token):
        _check(self._loop.modify(fd, interest, token), f"fd {fd}", self._loop.last_error())

    def remove(self, int fd):
        _check(self._loop.remove(fd), f"fd {fd}", self._loop.last_error())

    def wait(self, int timeout_ms):
        """Fills tokens[:n] and ready[:n]; returns n."""
        cdef uint64_t[::1] t = self.tokens
        cdef uint32_t[::1] r = self.ready
        cdef size_t n = 0
        cdef CStatus s
        with nogil:
            s = self._loop.wait(timeout_ms, &t[0], &r[0], t.shape[0], n)
        _check(s, "event loop", self._loop.last_error())
        return n

    @property
    def busy_poll(self):
        return self._loop.busy_poll()

    def fileno(self):
        return self._loop.fd()
