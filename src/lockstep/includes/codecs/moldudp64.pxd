# Mirrors include/lockstep/codecs/moldudp64.hpp.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t

from lockstep.includes.base.status cimport CStatus
from lockstep.includes.codecs.wire cimport CWireError


cdef extern from "lockstep/codecs/moldudp64.hpp" namespace "lockstep::moldudp64" nogil:
    const size_t kSessionLength
    const size_t kHeaderLength
    const uint16_t kEndOfSessionCount
    const uint16_t kMaxBlocks

    cdef cppclass CHeader "lockstep::moldudp64::Header":
        uint8_t session[10]
        uint64_t sequence
        uint16_t count

    cdef cppclass CBlock "lockstep::moldudp64::Block":
        const uint8_t* data
        uint16_t length
        uint64_t sequence
        uint64_t offset

    cdef cppclass CPacketReader "lockstep::moldudp64::PacketReader":
        CStatus open(const uint8_t* data, size_t n) noexcept
        const CHeader& header() noexcept
        bint next(CBlock& out) noexcept
        const CWireError& error() noexcept

    cdef cppclass CPacketBuilder "lockstep::moldudp64::PacketBuilder":
        CStatus begin(uint8_t* out, size_t capacity, const uint8_t* session,
                      uint64_t sequence) noexcept
        CStatus append(const uint8_t* message, size_t n) noexcept
        size_t size() noexcept
        uint16_t count() noexcept

    cdef cppclass CGathered "lockstep::moldudp64::Gathered":
        CHeader header
        uint16_t blocks
        uint32_t empty_blocks
        size_t bytes

    CStatus gather_blocks(const uint8_t* data, size_t n, uint8_t* out, size_t capacity,
                          CGathered& g, CWireError* err) noexcept
    CStatus encode_header_only(const uint8_t* session, uint64_t sequence, uint16_t count,
                               uint8_t* out, size_t capacity, size_t* written) noexcept
    CStatus decode_request(const uint8_t* p, size_t n, CHeader& out, CWireError* err) noexcept
