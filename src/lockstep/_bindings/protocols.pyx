# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin binding of the NASDAQ protocol codecs (include/lockstep/codecs/: moldudp64.hpp,
soupbintcp.hpp, ouch42.hpp, itch_encode.hpp, wire.hpp).

The public API is lockstep.protocols. Fields cross as ints and bytes: alpha fields as their bytes
(padded here with spaces to the field's width on the way in, returned padded), one-byte codes as
ints. Refused input raises lockstep.errors.ProtocolError with the problem and the offset.
"""
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset
from libcpp.memory cimport unique_ptr

from lockstep.includes.base.status cimport CStatus
from lockstep.includes.codecs.itch_encode cimport CItchTypes
from lockstep.includes.codecs.moldudp64 cimport (
    CBlock, CGathered, CHeader, CPacketBuilder, CPacketReader, decode_request,
    encode_header_only, gather_blocks, kHeaderLength,
)
from lockstep.includes.codecs.ouch42 cimport (
    CEnterOrder, CExecuted, CInbound, CInboundTypes, COutbound, COutboundTypes, decode_inbound,
    decode_outbound, encode_message,
)
from lockstep.includes.codecs.soupbintcp cimport (
    CLoginAccepted, CLoginRequest, CPacket, CPacketType, CRejectReason, CStreamFramer,
    decode_packet, encode_login_accepted, encode_login_rejected, encode_login_request,
    encode_packet,
)
from lockstep.includes.codecs.wire cimport (
    CSlots, CWireError, CWireProblem, decode_slots, describe, encode_slots, kNoProblem,
    wire_problem_name,
)

from lockstep.errors import ProtocolError, check_status

ENUMERATORS = {
    "WireProblem": {
        "None": <int>kNoProblem, "Truncated": <int>CWireProblem.Truncated,
        "UnknownType": <int>CWireProblem.UnknownType, "BadLength": <int>CWireProblem.BadLength,
        "Oversized": <int>CWireProblem.Oversized,
        "TrailingBytes": <int>CWireProblem.TrailingBytes, "BadField": <int>CWireProblem.BadField,
    },
    "SoupPacketType": {
        "Debug": <int>CPacketType.Debug, "LoginAccepted": <int>CPacketType.LoginAccepted,
        "LoginRejected": <int>CPacketType.LoginRejected,
        "SequencedData": <int>CPacketType.SequencedData,
        "ServerHeartbeat": <int>CPacketType.ServerHeartbeat,
        "EndOfSession": <int>CPacketType.EndOfSession,
        "LoginRequest": <int>CPacketType.LoginRequest,
        "UnsequencedData": <int>CPacketType.UnsequencedData,
        "ClientHeartbeat": <int>CPacketType.ClientHeartbeat,
        "LogoutRequest": <int>CPacketType.LogoutRequest,
    },
    "LoginRejectReason": {
        "NotAuthorized": <int>CRejectReason.NotAuthorized,
        "SessionNotAvailable": <int>CRejectReason.SessionNotAvailable,
    },
}
ENUM_NAMES = {
    "WireProblem": {v: wire_problem_name(<CWireProblem>v).decode()
                    for v in ENUMERATORS["WireProblem"].values()},
}

# Which type set a fixed-layout message belongs to.
cdef enum Family:
    FAMILY_OUCH_INBOUND = 0
    FAMILY_OUCH_OUTBOUND = 1
    FAMILY_ITCH = 2

OUCH_INBOUND = FAMILY_OUCH_INBOUND
OUCH_OUTBOUND = FAMILY_OUCH_OUTBOUND
ITCH = FAMILY_ITCH

cdef uint8_t _EMPTY[1]


cdef inline const uint8_t* _ptr(const unsigned char[::1] data):
    return &data[0] if data.shape[0] else _EMPTY


cdef _refused(const CWireError& err, what):
    return ProtocolError(<int>err.problem, err.offset, what)


cdef bytes _padded(object value, size_t width, str what):
    if not isinstance(value, bytes):
        raise TypeError(f"{what}: expected bytes, not {type(value).__name__}")
    if len(value) > width:
        raise ValueError(f"{what}: {len(value)} bytes do not fit a {width}-byte field")
    return value + b" " * (width - len(value))


# --------------------------------------------------------------------------------------------
# Fixed-layout messages (OUCH 4.2, ITCH 5.0) through slots


cdef bint _describe(int family, uint8_t type, CSlots& s) noexcept nogil:
    if family == FAMILY_OUCH_INBOUND:
        return describe[CInboundTypes](type, s)
    if family == FAMILY_OUCH_OUTBOUND:
        return describe[COutboundTypes](type, s)
    return describe[CItchTypes](type, s)


def encode_fields(int family, int type_byte, tuple fields):
    """The message of `type_byte` in `family` from its fields in wire order (ints; bytes for
    alpha fields, padded here): bytes."""
    cdef CSlots s
    cdef uint8_t out[128]
    cdef size_t written = 0
    cdef size_t i, width
    cdef uint8_t t = <uint8_t>(type_byte & 0xFF)
    if not _describe(family, t, s):
        raise ValueError(f"no message type {chr(t)!r} in this protocol")
    if <size_t>len(fields) != s.n:
        raise ValueError(f"message {chr(t)!r} has {s.n} fields, {len(fields)} given")
    for i in range(s.n):
        width = s.width[i]
        if s.is_bytes[i]:
            text = _padded(fields[i], width, f"field {i}")
            memcpy(&s.bytes[s.value[i]], <const char*>text, width)
        else:
            v = fields[i]
            if v < 0 or v >> (8 * width):
                raise ValueError(f"field {i}: {v} does not fit {width} unsigned bytes")
            s.value[i] = v
    cdef CStatus st
    if family == FAMILY_OUCH_INBOUND:
        st = encode_slots[CInboundTypes](t, s, out, sizeof(out), &written)
    elif family == FAMILY_OUCH_OUTBOUND:
        st = encode_slots[COutboundTypes](t, s, out, sizeof(out), &written)
    else:
        st = encode_slots[CItchTypes](t, s, out, sizeof(out), &written)
    check_status(<int>st, f"encoding message {chr(t)!r}")
    return out[:written]


def decode_fields(int family, const unsigned char[::1] data):
    """(type byte, fields in wire order: ints, and bytes as they travel for alpha fields) of an
    OUCH message (ITCH is decoded by the one ITCH decoder, lockstep._bindings.itch)."""
    if family != FAMILY_OUCH_INBOUND and family != FAMILY_OUCH_OUTBOUND:
        raise ValueError("only OUCH messages are decoded here")
    cdef CSlots s
    cdef CWireError err
    cdef size_t n = data.shape[0]
    cdef const uint8_t* p = _ptr(data)
    cdef CStatus st
    with nogil:
        if family == FAMILY_OUCH_INBOUND:
            st = decode_slots[CInboundTypes](p, n, s, &err)
        else:
            st = decode_slots[COutboundTypes](p, n, s, &err)
    if st != CStatus.Ok:
        raise _refused(err, "OUCH message")
    cdef size_t i
    out = []
    for i in range(s.n):
        if s.is_bytes[i]:
            out.append(bytes(s.bytes[s.value[i]:s.value[i] + s.width[i]]))
        else:
            out.append(s.value[i])
    return p[0], tuple(out)


def ouch_round_trips(const unsigned char[::1] template, uint64_t n):
    """Encodes and decodes `n` copies of an Enter Order or an Executed message (`template`, its
    bytes), varying the shares, in one loop without the GIL: a checksum of what was decoded."""
    cdef CInbound inbound
    cdef COutbound outbound
    cdef CWireError err
    cdef uint8_t buf[128]
    cdef size_t written
    cdef uint64_t i, total = 0
    cdef bint enter = template.shape[0] > 0 and template[0] == b'O'
    cdef CStatus st = decode_inbound(&template[0], template.shape[0], inbound, &err) if enter \
        else decode_outbound(&template[0], template.shape[0], outbound, &err)
    if st != CStatus.Ok or (not enter and outbound.type != b'E'):
        raise ValueError("template must be an Enter Order or an Executed message")
    cdef CEnterOrder order = inbound.body.enter
    cdef CExecuted fill = outbound.body.executed
    with nogil:
        for i in range(n):
            if enter:
                order.shares = <uint32_t>i
                encode_message[CEnterOrder](order, buf, sizeof(buf), &written)
                decode_inbound(buf, written, inbound, &err)
                total += inbound.body.enter.shares
            else:
                fill.executed_shares = <uint32_t>i
                encode_message[CExecuted](fill, buf, sizeof(buf), &written)
                decode_outbound(buf, written, outbound, &err)
                total += outbound.body.executed.executed_shares
    return total


# --------------------------------------------------------------------------------------------
# MoldUDP64


def mold_encode_packet(bytes session, uint64_t sequence, list messages, size_t capacity):
    """(packet bytes, how many of `messages` it took, from the first): as many as fit."""
    cdef bytearray out = bytearray(max(capacity, 1))
    cdef uint8_t* o = out
    cdef CPacketBuilder b
    check_status(<int>b.begin(o, capacity, _padded(session, 10, "session"), sequence),
                 f"MoldUDP64 packet of capacity {capacity}")
    cdef size_t taken = 0
    cdef const unsigned char[::1] m
    cdef CStatus st
    for message in messages:
        m = message
        st = b.append(_ptr(m), m.shape[0])
        if st == CStatus.OutputFull:
            break
        check_status(<int>st, f"MoldUDP64 message of {m.shape[0]} bytes")
        taken += 1
    return bytes(out[:b.size()]), taken


def mold_encode_header_only(bytes session, uint64_t sequence, uint16_t count):
    """A heartbeat (count 0), end of session (0xFFFF) or retransmission request."""
    cdef uint8_t out[20]
    cdef size_t written = 0
    encode_header_only(_padded(session, 10, "session"), sequence, count, out, 20, &written)
    return out[:written]


def mold_decode_packet(const unsigned char[::1] data):
    """(session, sequence, count, [messages], problem, offset): the blocks before any damage;
    problem 0 when the datagram is whole. A datagram shorter than a header raises."""
    cdef CPacketReader r
    cdef CBlock b
    if r.open(_ptr(data), data.shape[0]) != CStatus.Ok:
        raise _refused(r.error(), "MoldUDP64 packet")
    messages = []
    while r.next(b):
        messages.append(b.data[:b.length])
    cdef const CHeader* h = &r.header()
    return (bytes(h.session[:10]), h.sequence, h.count, messages, <int>r.error().problem,
            r.error().offset)


def mold_decode_request(const unsigned char[::1] data):
    """(session, first sequence, count) of a retransmission request."""
    cdef CHeader h
    cdef CWireError err
    if decode_request(_ptr(data), data.shape[0], h, &err) != CStatus.Ok:
        raise _refused(err, "MoldUDP64 retransmission request")
    return bytes(h.session[:10]), h.sequence, h.count


def mold_gather(const unsigned char[::1] data, const int64_t[::1] lengths,
                unsigned char[::1] out, uint8_t[::1] problem, int64_t[::1] problem_offset):
    """Appends the whole blocks of each packet (data holds the datagrams back to back, their
    lengths in `lengths`) to `out`, without the GIL: (bytes written, messages). problem[i] and
    problem_offset[i] say what was wrong with packet i (0 when whole)."""
    cdef size_t k, pos = 0, written = 0, messages = 0, size = data.shape[0]
    cdef size_t packets = lengths.shape[0], cap = out.shape[0]
    cdef CGathered g
    cdef CWireError err
    cdef CStatus st
    if problem.shape[0] < <Py_ssize_t>packets or problem_offset.shape[0] < <Py_ssize_t>packets:
        raise ValueError("problem arrays shorter than the packet count")
    with nogil:
        for k in range(packets):
            if lengths[k] < 0 or <size_t>lengths[k] > size - pos:
                with gil:
                    raise ValueError(f"packet {k}: length {lengths[k]} runs past the data")
            err.problem = kNoProblem
            err.offset = 0
            st = gather_blocks(&data[0] + pos, lengths[k], &out[0] + written if cap else NULL,
                               cap - written, g, &err)
            if st == CStatus.OutputFull:
                with gil:
                    raise ValueError(f"packet {k}: the output buffer is full")
            problem[k] = <uint8_t>err.problem
            problem_offset[k] = err.offset
            written += g.bytes
            messages += g.blocks - g.empty_blocks
            pos += lengths[k]
    return written, messages


# --------------------------------------------------------------------------------------------
# SoupBinTCP


cdef bytes _soup_out(CStatus st, uint8_t* out, size_t written, what):
    check_status(<int>st, what)
    return out[:written]


def soup_encode(int type_byte, const unsigned char[::1] payload):
    """A packet of any type from its raw payload."""
    cdef size_t n = payload.shape[0]
    cdef bytearray out = bytearray(n + 3)
    cdef size_t written = 0
    cdef CStatus st = encode_packet(<CPacketType>(type_byte & 0xFF), _ptr(payload), n, out, n + 3,
                                    &written)
    return _soup_out(st, out, written, f"SoupBinTCP packet {chr(type_byte)!r} of {n} bytes")


def soup_encode_login_request(bytes username, bytes password, bytes session, uint64_t sequence):
    cdef CLoginRequest m
    cdef uint8_t out[49]
    cdef size_t written = 0
    cdef bytes u = _padded(username, 6, "username")
    cdef bytes w = _padded(password, 10, "password")
    cdef bytes s = _padded(session, 10, "session")
    memcpy(m.username, <const char*>u, 6)
    memcpy(m.password, <const char*>w, 10)
    memcpy(m.session, <const char*>s, 10)
    m.sequence = sequence
    cdef CStatus st = encode_login_request(m, out, 49, &written)
    return _soup_out(st, out, written, "login request")


def soup_encode_login_accepted(bytes session, uint64_t sequence):
    cdef CLoginAccepted m
    cdef uint8_t out[33]
    cdef size_t written = 0
    cdef bytes s = _padded(session, 10, "session")
    memcpy(m.session, <const char*>s, 10)
    m.sequence = sequence
    cdef CStatus st = encode_login_accepted(m, out, 33, &written)
    return _soup_out(st, out, written, "login accepted")


def soup_encode_login_rejected(int reason):
    cdef uint8_t out[4]
    cdef size_t written = 0
    cdef CStatus st = encode_login_rejected(<CRejectReason>(reason & 0xFF), out, 4, &written)
    return _soup_out(st, out, written, f"login rejected with reason {reason}")


def soup_decode(const unsigned char[::1] data):
    """(type byte, payload, fields): fields (username, password, session, sequence) for a login
    request, (session, sequence) for login accepted, (reason,) for login rejected, else ()."""
    cdef CPacket p
    cdef CWireError err
    if decode_packet(_ptr(data), data.shape[0], p, &err) != CStatus.Ok:
        raise _refused(err, "SoupBinTCP packet")
    cdef uint8_t t = <uint8_t>p.type
    payload = p.payload[:p.payload_length]
    if t == b'L':
        fields = (bytes(p.login.username[:6]), bytes(p.login.password[:10]),
                  bytes(p.login.session[:10]), p.login.sequence)
    elif t == b'A':
        fields = (bytes(p.accepted.session[:10]), p.accepted.sequence)
    elif t == b'J':
        fields = (<int>p.reject_reason,)
    else:
        fields = ()
    return t, payload, fields


cdef class SoupFramer:
    """lockstep::soupbin::StreamFramer: whole packets out of TCP chunks cut anywhere."""
    cdef unique_ptr[CStreamFramer] core

    def __cinit__(self, uint16_t max_packet_length):
        self.core.reset(new CStreamFramer(max_packet_length))

    def feed(self, const unsigned char[::1] data):
        """The packets (length prefix included) this chunk completes; after a refused length
        prefix, `problem` says what and where and no more packets come."""
        cdef CStreamFramer* f = self.core.get()
        cdef const uint8_t* packet
        cdef size_t length
        f.push(_ptr(data), data.shape[0])
        out = []
        while f.next(&packet, &length) == CStatus.Ok:
            out.append(packet[:length])
        return out

    @property
    def problem(self):
        """(problem, stream offset of the refused length prefix), or None."""
        cdef const CWireError* e = &self.core.get().error()
        return None if e.problem == kNoProblem else (<int>e.problem, e.offset)

    @property
    def offset(self):
        return self.core.get().offset()

    @property
    def buffered(self):
        return self.core.get().buffered()
