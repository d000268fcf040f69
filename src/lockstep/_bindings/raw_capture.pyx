# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin binding of include/lockstep/base/crc32c.hpp, include/lockstep/base/sha256.hpp and
include/lockstep/codecs/raw_capture.hpp.

The public API is lockstep.data.raw_capture; this module only moves buffers and column views across the
boundary and releases the GIL while checksumming.
"""
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t


cdef extern from "lockstep/base/crc32c.hpp" namespace "lockstep::crc32c" nogil:
    cdef enum class CImpl "lockstep::crc32c::Impl"(int32_t):
        Auto "lockstep::crc32c::Impl::Auto"
        Portable "lockstep::crc32c::Impl::Portable"
        Sse42 "lockstep::crc32c::Impl::Sse42"

    bint hardware_available() noexcept
    uint32_t extend(uint32_t crc, const void* data, size_t n, CImpl impl) noexcept


cdef extern from "lockstep/base/sha256.hpp" namespace "lockstep" nogil:
    cdef cppclass CSha256 "lockstep::Sha256":
        CSha256(bint use_hardware) noexcept
        void update(const void* data, size_t n) noexcept
        void digest(uint8_t* out) noexcept

    bint sha256_hardware "lockstep::Sha256::hardware_available"() noexcept


cdef extern from "lockstep/codecs/raw_capture.hpp" namespace "lockstep::raw" nogil:
    size_t kFrameHeader
    uint32_t kMaxPayload

    cdef enum class CStop "lockstep::raw::Stop"(int32_t):
        NeedMore "lockstep::raw::Stop::NeedMore"
        OutputFull "lockstep::raw::Stop::OutputFull"
        BadHeader "lockstep::raw::Stop::BadHeader"
        BadFrame "lockstep::raw::Stop::BadFrame"

    cdef struct CFrameColumns "lockstep::raw::FrameColumns":
        int64_t* receive_ns
        uint32_t* stream_id
        uint64_t* offset
        uint32_t* length
        size_t capacity
        size_t size

    cdef struct CWalkResult "lockstep::raw::WalkResult":
        size_t pos
        CStop stop
        size_t need
        uint32_t length
        uint32_t expected
        uint32_t got

    cdef struct CResyncResult "lockstep::raw::ResyncResult":
        size_t pos
        bint found

    void encode_header(uint8_t* out, int64_t receive_ns, uint32_t stream_id,
                       const uint8_t* payload, uint32_t length) noexcept
    CWalkResult walk(const uint8_t* buf, size_t begin, size_t end, CFrameColumns& out) noexcept
    CResyncResult resync(const uint8_t* buf, size_t begin, size_t end) noexcept


FRAME_HEADER = kFrameHeader
MAX_PAYLOAD = kMaxPayload
# The C++ enumerators by name, which tests/test_enum_parity.py holds lockstep.enums to.
ENUMERATORS = {
    "FrameStop": {
        "NeedMore": <int>CStop.NeedMore, "OutputFull": <int>CStop.OutputFull,
        "BadHeader": <int>CStop.BadHeader, "BadFrame": <int>CStop.BadFrame,
    },
    "Crc32cImpl": {
        "Auto": <int>CImpl.Auto, "Portable": <int>CImpl.Portable, "Sse42": <int>CImpl.Sse42,
    },
}

cdef uint8_t _EMPTY[1]


def hardware_crc32c():
    """True when this CPU has SSE4.2 and the hardware CRC32C path is used."""
    return hardware_available()


def crc32c(const uint8_t[::1] data, uint32_t crc=0, int impl=0):
    """CRC32C of `data`, continuing `crc` (0 to start); impl a lockstep.enums.Crc32cImpl."""
    if impl not in ENUMERATORS["Crc32cImpl"].values():
        raise ValueError(f"unknown CRC32C implementation {impl}")
    cdef size_t n = data.shape[0]
    cdef const uint8_t* p = &data[0] if n else _EMPTY
    cdef uint32_t out
    with nogil:
        out = extend(crc, p, n, <CImpl>impl)
    return out


def hardware_sha256():
    """True when this CPU has the SHA extensions and the hardware SHA-256 path is used."""
    return sha256_hardware()


def sha256(chunks, bint hardware=True):
    """SHA-256 (32 bytes) of the concatenated `chunks`, fed to one hash in turn (the live core's
    digest hash, lockstep::Sha256), on the hardware path or the portable one."""
    cdef CSha256* h = new CSha256(hardware)
    cdef const uint8_t[::1] view
    cdef uint8_t out[32]
    try:
        for chunk in chunks:
            view = chunk
            if view.shape[0]:
                h.update(&view[0], view.shape[0])
        h.digest(out)
    finally:
        del h
    return <bytes>out[:32]


def frame_header(int64_t receive_ns, uint32_t stream_id, const uint8_t[::1] payload):
    """The 24-byte header of a frame carrying `payload` (checksums included)."""
    cdef size_t n = payload.shape[0]
    if n > kMaxPayload:
        raise ValueError(f"payload of {n} bytes exceeds the format's limit of {kMaxPayload}")
    cdef uint8_t out[24]
    cdef const uint8_t* p = &payload[0] if n else _EMPTY
    with nogil:
        encode_header(out, receive_ns, stream_id, p, <uint32_t>n)
    return <bytes>out[:24]


def walk_frames(const uint8_t[::1] buf, size_t begin, size_t end, int64_t[::1] receive_ns,
                uint32_t[::1] stream_id, uint64_t[::1] offset, uint32_t[::1] length, size_t size):
    """Appends the whole valid frames of buf[begin:end] to the columns from row `size` on.

    Returns (pos, size, stop, need, length, expected, got): see lockstep::raw::walk.
    """
    if end > <size_t>buf.shape[0] or begin > end:
        raise ValueError("walk range outside the buffer")
    cdef size_t cap = receive_ns.shape[0]
    if (<size_t>stream_id.shape[0] < cap or <size_t>offset.shape[0] < cap
            or <size_t>length.shape[0] < cap or size > cap or cap == 0):
        raise ValueError("column arrays must share one non-zero capacity above `size`")
    cdef CFrameColumns cols
    cols.receive_ns = &receive_ns[0]
    cols.stream_id = &stream_id[0]
    cols.offset = &offset[0]
    cols.length = &length[0]
    cols.capacity = cap
    cols.size = size
    cdef const uint8_t* p = &buf[0] if buf.shape[0] else _EMPTY
    cdef CWalkResult r
    with nogil:
        r = walk(p, begin, end, cols)
    return (r.pos, cols.size, <int>r.stop, r.need, r.length, r.expected, r.got)


def resync_frames(const uint8_t[::1] buf, size_t begin, size_t end):
    """(pos, found): the next position in buf[begin:end] where a whole valid frame starts."""
    if end > <size_t>buf.shape[0] or begin > end:
        raise ValueError("resync range outside the buffer")
    cdef const uint8_t* p = &buf[0] if buf.shape[0] else _EMPTY
    cdef CResyncResult r
    with nogil:
        r = resync(p, begin, end)
    return (r.pos, r.found)
