// SoupBinTCP 4.1 (NASDAQ): sequenced server-to-client and unsequenced client-to-server messages
// over one TCP connection, with login, heartbeats and end of session.
//
// A packet is a 2-byte big-endian length (of what follows it), a type byte and the payload.
// Login fields are ASCII: alpha fields (username 6, password 10, session 10) left-justified and
// padded with spaces on the right, numeric fields (sequence number 20) right-justified and padded
// with spaces on the left. Structs here keep alpha fields as their padded bytes and numbers as
// integers. docs/protocols.md says what the specification leaves open and what this does there.
//
// StreamFramer turns arbitrary TCP chunks into whole packets, bounded by a maximum packet length;
// the encoders write into caller buffers. No allocation after construction, no exception.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "lockstep/base/big_endian.hpp"
#include "lockstep/base/status.hpp"
#include "lockstep/codecs/wire.hpp"

namespace lockstep::soupbin {

using wire::WireError;
using wire::WireProblem;

// Mirrored by lockstep.enums.SoupPacketType.
enum class PacketType : uint8_t {
    Debug = '+',
    LoginAccepted = 'A',
    LoginRejected = 'J',
    SequencedData = 'S',
    ServerHeartbeat = 'H',
    EndOfSession = 'Z',
    LoginRequest = 'L',
    UnsequencedData = 'U',
    ClientHeartbeat = 'R',
    LogoutRequest = 'O',
};

// Mirrored by lockstep.enums.LoginRejectReason.
enum class RejectReason : uint8_t {
    NotAuthorized = 'A',
    SessionNotAvailable = 'S',
};

constexpr size_t kPrefixLength = 2;
constexpr size_t kHeaderLength = 3;  // length prefix and type
constexpr size_t kUsernameLength = 6;
constexpr size_t kPasswordLength = 10;
constexpr size_t kSessionLength = 10;
constexpr size_t kSequenceLength = 20;
constexpr size_t kMaxPayloadLength = 0xFFFF - 1;
// Far above OUCH 4.2's longest message (80 bytes) and the short texts of debug packets.
constexpr uint16_t kDefaultMaxPacketLength = 2048;

constexpr int kVariableLength = -1;
constexpr int kUnknownType = -2;

// The payload length a type requires, kVariableLength for data and debug packets, kUnknownType.
inline int payload_length_of(uint8_t type) noexcept {
    switch (type) {
        case 'L': return int(kUsernameLength + kPasswordLength + kSessionLength + kSequenceLength);
        case 'A': return int(kSessionLength + kSequenceLength);
        case 'J': return 1;
        case 'H': case 'R': case 'Z': case 'O': return 0;
        case 'S': case 'U': case '+': return kVariableLength;
        default: return kUnknownType;
    }
}

struct LoginRequest {
    uint8_t username[kUsernameLength];
    uint8_t password[kPasswordLength];
    uint8_t session[kSessionLength];  // all spaces: the session currently active
    uint64_t sequence;                // the next sequence number wanted; 0: from the newest
};

struct LoginAccepted {
    uint8_t session[kSessionLength];
    uint64_t sequence;  // the sequence number of the next sequenced packet
};

// One decoded packet; the fields of its type are set, the payload points into the packet.
struct Packet {
    PacketType type;
    const uint8_t* payload;
    uint16_t payload_length;
    LoginRequest login;
    LoginAccepted accepted;
    RejectReason reject_reason;
};

inline void put_header(uint8_t* out, PacketType type, size_t payload_length) noexcept {
    store_be16(out, uint16_t(payload_length + 1));
    out[2] = uint8_t(type);
}

// A packet of any type from its raw payload. InvalidArgument if the type is unknown or requires
// another payload length; OutputFull if the capacity is too small.
inline Status encode_packet(PacketType type, const uint8_t* payload, size_t n, uint8_t* out,
                            size_t capacity, size_t* written) noexcept {
    const int want = payload_length_of(uint8_t(type));
    if (want == kUnknownType || (want != kVariableLength && size_t(want) != n) ||
        n > kMaxPayloadLength)
        return Status::InvalidArgument;
    if (capacity < kHeaderLength + n) return Status::OutputFull;
    put_header(out, type, n);
    if (n) std::memcpy(out + kHeaderLength, payload, n);
    *written = kHeaderLength + n;
    return Status::Ok;
}

inline Status encode_login_request(const LoginRequest& m, uint8_t* out, size_t capacity,
                                   size_t* written) noexcept {
    constexpr size_t n = kUsernameLength + kPasswordLength + kSessionLength + kSequenceLength;
    if (capacity < kHeaderLength + n) return Status::OutputFull;
    uint8_t* p = out + kHeaderLength;
    std::memcpy(p, m.username, kUsernameLength);
    std::memcpy(p + 6, m.password, kPasswordLength);
    std::memcpy(p + 16, m.session, kSessionLength);
    wire::put_numeric(p + 26, kSequenceLength, m.sequence);  // 20 digits hold any uint64
    put_header(out, PacketType::LoginRequest, n);
    *written = kHeaderLength + n;
    return Status::Ok;
}

inline Status encode_login_accepted(const LoginAccepted& m, uint8_t* out, size_t capacity,
                                    size_t* written) noexcept {
    constexpr size_t n = kSessionLength + kSequenceLength;
    if (capacity < kHeaderLength + n) return Status::OutputFull;
    std::memcpy(out + kHeaderLength, m.session, kSessionLength);
    wire::put_numeric(out + kHeaderLength + kSessionLength, kSequenceLength, m.sequence);
    put_header(out, PacketType::LoginAccepted, n);
    *written = kHeaderLength + n;
    return Status::Ok;
}

inline Status encode_login_rejected(RejectReason reason, uint8_t* out, size_t capacity,
                                    size_t* written) noexcept {
    if (reason != RejectReason::NotAuthorized && reason != RejectReason::SessionNotAvailable)
        return Status::InvalidArgument;
    const uint8_t code = uint8_t(reason);
    return encode_packet(PacketType::LoginRejected, &code, 1, out, capacity, written);
}

// Decodes one whole packet (length prefix included), as StreamFramer yields them. DecodeError
// with err set: Truncated (fewer than 3 bytes), BadLength (the prefix disagrees with the bytes
// given, or with the type's fixed length), UnknownType, BadField (a login number that is not a
// number, a reject reason other than 'A' or 'S').
inline Status decode_packet(const uint8_t* p, size_t len, Packet& out, WireError* err) noexcept {
    if (len < kHeaderLength) return wire::fail(err, WireProblem::Truncated, len);
    const size_t n = load_be16(p);
    if (n + kPrefixLength != len) return wire::fail(err, WireProblem::BadLength, 0);
    const uint8_t type = p[2];
    const int want = payload_length_of(type);
    if (want == kUnknownType) return wire::fail(err, WireProblem::UnknownType, 2);
    const size_t payload = n - 1;
    if (want != kVariableLength && size_t(want) != payload)
        return wire::fail(err, WireProblem::BadLength, 0);
    const uint8_t* q = p + kHeaderLength;
    out.type = PacketType(type);
    out.payload = q;
    out.payload_length = uint16_t(payload);
    if (type == 'L') {
        std::memcpy(out.login.username, q, kUsernameLength);
        std::memcpy(out.login.password, q + 6, kPasswordLength);
        std::memcpy(out.login.session, q + 16, kSessionLength);
        if (!wire::parse_numeric(q + 26, kSequenceLength, &out.login.sequence))
            return wire::fail(err, WireProblem::BadField, kHeaderLength + 26);
    } else if (type == 'A') {
        std::memcpy(out.accepted.session, q, kSessionLength);
        if (!wire::parse_numeric(q + kSessionLength, kSequenceLength, &out.accepted.sequence))
            return wire::fail(err, WireProblem::BadField, kHeaderLength + kSessionLength);
    } else if (type == 'J') {
        if (q[0] != 'A' && q[0] != 'S') return wire::fail(err, WireProblem::BadField, kHeaderLength);
        out.reject_reason = RejectReason(q[0]);
    }
    return Status::Ok;
}

// Whole packets out of a TCP byte stream cut anywhere. push() a chunk, then next() until it
// answers NeedMoreInput; a packet lying whole in the chunk is handed out in place, one cut by a
// chunk boundary is gathered in the framer's buffer (at most the maximum packet length, allocated
// once). A packet is valid until the following next() or push().
//
// A length prefix of 0 (BadLength) or above the maximum (Oversized) leaves nothing to
// resynchronise on: DecodeError, error() giving the stream offset of that prefix, and every
// later call answers DecodeError. The connection is to be dropped.
class StreamFramer {
public:
    explicit StreamFramer(uint16_t max_packet_length = kDefaultMaxPacketLength)
        : max_(max_packet_length), buf_(size_t(max_packet_length) + kPrefixLength) {}

    void push(const uint8_t* data, size_t len) noexcept {
        chunk_ = data;
        chunk_len_ = len;
        pos_ = 0;
    }

    // Ok with the next packet (length prefix included), NeedMoreInput when the chunk is used up
    // (its tail kept for the next chunk), or DecodeError.
    Status next(const uint8_t** packet, size_t* length) noexcept {
        if (error_.problem != WireProblem::None) return Status::DecodeError;
        if (have_ > 0) {
            if (have_ < kPrefixLength) {
                have_ += take(kPrefixLength - have_);
                if (have_ < kPrefixLength) return Status::NeedMoreInput;
                if (!length_allowed(load_be16(buf_.data()))) return Status::DecodeError;
            }
            const size_t need = kPrefixLength + load_be16(buf_.data());
            have_ += take(need - have_);
            if (have_ < need) return Status::NeedMoreInput;
            *packet = buf_.data();
            *length = need;
            offset_ += need;
            have_ = 0;
            return Status::Ok;
        }
        const size_t left = chunk_len_ - pos_;
        if (left >= kPrefixLength) {
            const size_t n = load_be16(chunk_ + pos_);
            if (!length_allowed(n)) return Status::DecodeError;
            if (left - kPrefixLength >= n) {
                *packet = chunk_ + pos_;
                *length = n + kPrefixLength;
                pos_ += n + kPrefixLength;
                offset_ += n + kPrefixLength;
                return Status::Ok;
            }
        }
        have_ = take(left);
        return Status::NeedMoreInput;
    }

    // Calls on_packet(const uint8_t* packet, size_t length) for each whole packet the chunk
    // completes: Ok or DecodeError.
    template <class OnPacket>
    Status feed(const uint8_t* data, size_t len, OnPacket&& on_packet) noexcept {
        push(data, len);
        const uint8_t* packet;
        size_t length;
        Status st;
        while ((st = next(&packet, &length)) == Status::Ok) on_packet(packet, length);
        return st == Status::NeedMoreInput ? Status::Ok : st;
    }

    const WireError& error() const noexcept { return error_; }
    uint64_t offset() const noexcept { return offset_; }  // stream offset of the next packet
    size_t buffered() const noexcept { return have_; }
    uint16_t max_packet_length() const noexcept { return max_; }

private:
    // Moves up to `want` bytes of the chunk behind the buffered ones.
    size_t take(size_t want) noexcept {
        const size_t n = std::min(want, chunk_len_ - pos_);
        if (n) std::memcpy(buf_.data() + have_, chunk_ + pos_, n);
        pos_ += n;
        return n;
    }

    bool length_allowed(size_t n) noexcept {
        if (n == 0) {
            wire::fail(&error_, WireProblem::BadLength, offset_);
            return false;
        }
        if (n > max_) {
            wire::fail(&error_, WireProblem::Oversized, offset_);
            return false;
        }
        return true;
    }

    uint16_t max_;
    std::vector<uint8_t> buf_;
    size_t have_ = 0;
    const uint8_t* chunk_ = nullptr;
    size_t chunk_len_ = 0;
    size_t pos_ = 0;
    uint64_t offset_ = 0;
    WireError error_{};
};

}  // namespace lockstep::soupbin
