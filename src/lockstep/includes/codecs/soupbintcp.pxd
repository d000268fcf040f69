# Mirrors include/lockstep/codecs/soupbintcp.hpp.
from libc.stdint cimport uint8_t, uint16_t, uint64_t

from lockstep.includes.base.status cimport CStatus
from lockstep.includes.codecs.wire cimport CWireError


cdef extern from "lockstep/codecs/soupbintcp.hpp" namespace "lockstep::soupbin" nogil:
    cdef enum class CPacketType "lockstep::soupbin::PacketType"(uint8_t):
        Debug, LoginAccepted, LoginRejected, SequencedData, ServerHeartbeat, EndOfSession,
        LoginRequest, UnsequencedData, ClientHeartbeat, LogoutRequest

    cdef enum class CRejectReason "lockstep::soupbin::RejectReason"(uint8_t):
        NotAuthorized, SessionNotAvailable

    const uint16_t kDefaultMaxPacketLength

    cdef cppclass CLoginRequest "lockstep::soupbin::LoginRequest":
        uint8_t username[6]
        uint8_t password[10]
        uint8_t session[10]
        uint64_t sequence

    cdef cppclass CLoginAccepted "lockstep::soupbin::LoginAccepted":
        uint8_t session[10]
        uint64_t sequence

    cdef cppclass CPacket "lockstep::soupbin::Packet":
        CPacketType type
        const uint8_t* payload
        uint16_t payload_length
        CLoginRequest login
        CLoginAccepted accepted
        CRejectReason reject_reason

    CStatus encode_packet(CPacketType type, const uint8_t* payload, size_t n, uint8_t* out,
                          size_t capacity, size_t* written) noexcept
    CStatus encode_login_request(const CLoginRequest& m, uint8_t* out, size_t capacity,
                                 size_t* written) noexcept
    CStatus encode_login_accepted(const CLoginAccepted& m, uint8_t* out, size_t capacity,
                                  size_t* written) noexcept
    CStatus encode_login_rejected(CRejectReason reason, uint8_t* out, size_t capacity,
                                  size_t* written) noexcept
    CStatus decode_packet(const uint8_t* p, size_t n, CPacket& out, CWireError* err) noexcept

    cdef cppclass CStreamFramer "lockstep::soupbin::StreamFramer":
        CStreamFramer(uint16_t max_packet_length) except +
        void push(const uint8_t* data, size_t n) noexcept
        CStatus next(const uint8_t** packet, size_t* length) noexcept
        const CWireError& error() noexcept
        uint64_t offset() noexcept
        size_t buffered() noexcept
