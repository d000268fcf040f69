// The client side of one SoupBinTCP 4.1 session, without a socket or a clock: bytes received
// and the caller's time in, payloads and the bytes to send out.
//
//   connected(now)      a new TCP connection: the Login Request to send first
//   on_bytes(...)       whatever TCP delivered; payloads go to the sink with their sequence
//   poll(now)           a Client Heartbeat when one is due; notices a silent server
//   send_data(...)      one Unsequenced Data packet (an OUCH inbound message)
//   logout(now)         the Logout Request
//   disconnected()      the connection is gone; the next connected() resumes the session
//
// What it decides (docs/protocols.md, "The SoupBinTCP client"): a login asks for the session it
// was accepted into before (the configured one, blank meaning "current", until then) and for
// the sequence number after the last sequenced message delivered, so that a re-login after a
// drop replays exactly what was missed; a message numbered below that is a duplicate, dropped
// and counted; a Login Accepted starting past the number asked for is a gap the server can no
// longer fill, reported (SequenceGap). Heartbeats follow the specification's figures: one after
// `heartbeat_interval_ns` without sending, and `server_timeout_ns` without receiving ends the
// session (Failed). A framing error, a type the specification does not define, or a packet out
// of place (data before login, a client-only type) fails the session with the stream offset;
// the caller drops the connection. The password lives in the config only to write the Login
// Request; nothing here reports it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "lockstep/base/status.hpp"
#include "lockstep/codecs/soupbintcp.hpp"
#include "lockstep/session/sink.hpp"

namespace lockstep::session {

namespace soup = lockstep::soupbin;

// Mirrored by lockstep.enums.SoupClientState.
enum class SoupClientState : uint8_t {
    Disconnected = 0,  // no connection: connected() logs in
    LoggingIn = 1,     // Login Request sent, no answer yet
    LoggedIn = 2,
    Rejected = 3,      // Login Rejected (reject_reason()): close the connection
    Ended = 4,         // End of Session from the server: close the connection
    LoggedOut = 5,     // we sent a Logout Request
    Failed = 6,        // protocol violation or silent server (failure()): drop the connection
};

// Mirrored by lockstep.enums.SoupNoticeKind.
enum class SoupNoticeKind : uint8_t {
    LoginAccepted = 1,     // first: the sequence number the server continues at
    LoginRejected = 2,     // count: the reason byte
    SequenceGap = 3,       // first, count: messages asked for that the server no longer has
    EndOfSession = 4,
    ServerTimeout = 5,     // count: ns since the server last sent anything
    ProtocolError = 6,     // first: stream offset; count: the WireProblem
    UnexpectedPacket = 7,  // first: stream offset; count: the type byte
};

struct SoupNotice {
    SoupNoticeKind kind;
    uint64_t first;
    uint64_t count;
    int64_t now_ns;
};

struct SoupClientConfig {
    uint8_t username[soup::kUsernameLength] = {' ', ' ', ' ', ' ', ' ', ' '};
    uint8_t password[soup::kPasswordLength] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
    uint8_t session[soup::kSessionLength] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
    uint64_t first_sequence = 1;  // asked for at the first login; 0: from the newest message
    int64_t heartbeat_interval_ns = 1'000'000'000;
    int64_t server_timeout_ns = 15'000'000'000;
    uint16_t max_packet_length = soup::kDefaultMaxPacketLength;
};

struct SoupClientCounters {
    uint64_t connections = 0;     // connected() calls
    uint64_t bytes_in = 0;
    uint64_t packets_in = 0;
    uint64_t sequenced = 0;       // sequenced messages delivered
    uint64_t unsequenced = 0;     // unsequenced messages delivered
    uint64_t duplicates = 0;      // sequenced messages delivered before: dropped
    uint64_t heartbeats_in = 0;
    uint64_t heartbeats_out = 0;
    uint64_t debug = 0;           // debug packets: ignored
    uint64_t logins = 0;
    uint64_t rejects = 0;
    uint64_t sequence_gaps = 0;
    uint64_t messages_lost = 0;   // in those gaps
    uint64_t protocol_errors = 0;
    uint64_t timeouts = 0;
    uint64_t messages_out = 0;    // Unsequenced Data sent
    uint64_t ignored_bytes = 0;   // received when no session was running
    uint64_t notices_lost = 0;
};

class SoupClient {
public:
    static constexpr size_t kNoticeCapacity = 64;

    // InvalidArgument for a non-positive interval or timeout or a maximum packet length too
    // short for a Login Accepted. Allocates the framer's buffer.
    Status init(const SoupClientConfig& config) noexcept {
        if (config.heartbeat_interval_ns <= 0 || config.server_timeout_ns <= 0 ||
            config.max_packet_length < soup::kSessionLength + soup::kSequenceLength + 1)
            return Status::InvalidArgument;
        config_ = config;
        std::memcpy(session_, config.session, soup::kSessionLength);
        next_ = config.first_sequence;
        state_ = SoupClientState::Disconnected;
        counters_ = SoupClientCounters{};
        notice_head_ = notice_size_ = 0;
        try {
            framer_ = soup::StreamFramer(config.max_packet_length);
        } catch (...) {
            return Status::InvalidArgument;
        }
        return Status::Ok;
    }

    // A new connection: resets the stream and writes the Login Request (49 bytes). OutputFull
    // if out is shorter.
    Status connected(int64_t now_ns, uint8_t* out, size_t capacity, size_t* written) noexcept {
        soup::LoginRequest login;
        std::memcpy(login.username, config_.username, soup::kUsernameLength);
        std::memcpy(login.password, config_.password, soup::kPasswordLength);
        std::memcpy(login.session, session_, soup::kSessionLength);
        login.sequence = next_;
        const Status st = soup::encode_login_request(login, out, capacity, written);
        if (st != Status::Ok) return st;
        framer_ = soup::StreamFramer(config_.max_packet_length);
        state_ = SoupClientState::LoggingIn;
        asked_ = next_;
        last_received_ns_ = last_sent_ns_ = now_ns;
        ++counters_.connections;
        return Status::Ok;
    }

    // What TCP delivered, received at now_ns. Payloads go to the sink (session/sink.hpp) with
    // their sequence number, 0 for unsequenced data, and now_ns as their stamp. Ok; DecodeError once the session failed on these bytes (the
    // notices say why and where; drop the connection).
    template <class Sink>
    Status on_bytes(const uint8_t* data, size_t len, int64_t now_ns, Sink& sink) noexcept {
        if (!running()) {
            counters_.ignored_bytes += len;
            return Status::Ok;
        }
        counters_.bytes_in += len;
        if (len) last_received_ns_ = now_ns;
        framer_.push(data, len);
        const uint8_t* packet;
        size_t length;
        Status st;
        uint64_t offset = framer_.offset();
        while (running() && (st = framer_.next(&packet, &length)) == Status::Ok) {
            packet_in(packet, length, offset, now_ns, sink);
            offset += length;
        }
        if (running() && st == Status::DecodeError) {
            fail(SoupNoticeKind::ProtocolError, framer_.error().offset,
                 uint64_t(framer_.error().problem), now_ns);
        }
        return state_ == SoupClientState::Failed ? Status::DecodeError : Status::Ok;
    }

    // A Client Heartbeat (3 bytes) when one is due, else 0; fails the session (ServerTimeout)
    // when the server has been silent for server_timeout_ns.
    size_t poll(int64_t now_ns, uint8_t* out, size_t capacity) noexcept {
        if (!running()) return 0;
        if (now_ns - last_received_ns_ >= config_.server_timeout_ns) {
            ++counters_.timeouts;
            fail(SoupNoticeKind::ServerTimeout, 0, uint64_t(now_ns - last_received_ns_), now_ns);
            return 0;
        }
        if (state_ != SoupClientState::LoggedIn ||
            now_ns - last_sent_ns_ < config_.heartbeat_interval_ns)
            return 0;
        size_t written = 0;
        if (soup::encode_packet(soup::PacketType::ClientHeartbeat, nullptr, 0, out, capacity,
                                &written) != Status::Ok)
            return 0;
        last_sent_ns_ = now_ns;
        ++counters_.heartbeats_out;
        return written;
    }

    // One Unsequenced Data packet carrying payload. InvalidArgument unless logged in (or the
    // payload is longer than a packet can be); OutputFull if out is too short.
    Status send_data(const uint8_t* payload, size_t n, int64_t now_ns, uint8_t* out,
                     size_t capacity, size_t* written) noexcept {
        if (state_ != SoupClientState::LoggedIn) return Status::InvalidArgument;
        const Status st = soup::encode_packet(soup::PacketType::UnsequencedData, payload, n, out,
                                              capacity, written);
        if (st == Status::Ok) {
            last_sent_ns_ = now_ns;
            ++counters_.messages_out;
        }
        return st;
    }

    // Bytes of this session written by someone else on its connection (the live loop writes
    // Unsequenced Data itself): no heartbeat is due until heartbeat_interval after them.
    void note_sent(int64_t now_ns) noexcept {
        if (now_ns > last_sent_ns_) last_sent_ns_ = now_ns;
    }

    // The Logout Request (3 bytes); the session is over for this connection.
    Status logout(int64_t now_ns, uint8_t* out, size_t capacity, size_t* written) noexcept {
        const Status st = soup::encode_packet(soup::PacketType::LogoutRequest, nullptr, 0, out,
                                              capacity, written);
        if (st == Status::Ok) {
            last_sent_ns_ = now_ns;
            state_ = SoupClientState::LoggedOut;
        }
        return st;
    }

    // The connection is gone (closed by either side): the next connected() logs in again from
    // next_sequence().
    void disconnected() noexcept { state_ = SoupClientState::Disconnected; }

    bool next_notice(SoupNotice& out) noexcept {
        if (notice_size_ == 0) return false;
        out = notices_[notice_head_];
        notice_head_ = (notice_head_ + 1) % kNoticeCapacity;
        --notice_size_;
        return true;
    }

    SoupClientState state() const noexcept { return state_; }
    size_t pending_notices() const noexcept { return notice_size_; }
    // The sequence number of the next sequenced message to deliver: what a login asks for.
    uint64_t next_sequence() const noexcept { return next_; }
    const uint8_t* session() const noexcept { return session_; }
    soup::RejectReason reject_reason() const noexcept { return reject_; }
    const SoupClientCounters& counters() const noexcept { return counters_; }
    // When the session must send something at the latest (a heartbeat), and when a silent
    // server is given up: for the caller's readiness wait.
    int64_t heartbeat_due_ns() const noexcept {
        return last_sent_ns_ + config_.heartbeat_interval_ns;
    }
    int64_t timeout_due_ns() const noexcept {
        return last_received_ns_ + config_.server_timeout_ns;
    }

private:
    bool running() const noexcept {
        return state_ == SoupClientState::LoggingIn || state_ == SoupClientState::LoggedIn;
    }

    void notice(SoupNoticeKind kind, uint64_t first, uint64_t count, int64_t now) noexcept {
        if (notice_size_ == kNoticeCapacity) {
            ++counters_.notices_lost;
            return;
        }
        notices_[(notice_head_ + notice_size_) % kNoticeCapacity] = {kind, first, count, now};
        ++notice_size_;
    }

    void fail(SoupNoticeKind kind, uint64_t first, uint64_t count, int64_t now) noexcept {
        if (kind != SoupNoticeKind::ServerTimeout) ++counters_.protocol_errors;
        state_ = SoupClientState::Failed;
        notice(kind, first, count, now);
    }

    template <class Sink>
    void packet_in(const uint8_t* p, size_t len, uint64_t offset, int64_t now,
                   Sink& sink) noexcept {
        ++counters_.packets_in;
        soup::Packet packet;
        soup::WireError err;
        if (soup::decode_packet(p, len, packet, &err) != Status::Ok) {
            fail(SoupNoticeKind::ProtocolError, offset + err.offset, uint64_t(err.problem), now);
            return;
        }
        const bool logged_in = state_ == SoupClientState::LoggedIn;
        switch (packet.type) {
            case soup::PacketType::Debug:
                ++counters_.debug;
                return;
            case soup::PacketType::ServerHeartbeat:
                ++counters_.heartbeats_in;
                return;
            case soup::PacketType::EndOfSession:
                state_ = SoupClientState::Ended;
                notice(SoupNoticeKind::EndOfSession, next_, 0, now);
                return;
            case soup::PacketType::LoginAccepted:
                if (logged_in) break;
                accepted(packet.accepted, now);
                return;
            case soup::PacketType::LoginRejected:
                if (logged_in) break;
                ++counters_.rejects;
                reject_ = packet.reject_reason;
                state_ = SoupClientState::Rejected;
                notice(SoupNoticeKind::LoginRejected, 0, uint64_t(packet.reject_reason), now);
                return;
            case soup::PacketType::SequencedData:
                if (!logged_in) break;
                if (stream_next_ < next_) {
                    ++counters_.duplicates;
                } else {
                    sink(stream_next_, packet.payload, packet.payload_length, now);
                    ++counters_.sequenced;
                    next_ = stream_next_ + 1;
                }
                ++stream_next_;
                return;
            case soup::PacketType::UnsequencedData:
                if (!logged_in) break;
                sink(uint64_t(0), packet.payload, packet.payload_length, now);
                ++counters_.unsequenced;
                return;
            default:  // a client's packet type
                break;
        }
        fail(SoupNoticeKind::UnexpectedPacket, offset + soup::kPrefixLength,
             uint64_t(packet.type), now);
    }

    void accepted(const soup::LoginAccepted& a, int64_t now) noexcept {
        ++counters_.logins;
        std::memcpy(session_, a.session, soup::kSessionLength);
        stream_next_ = a.sequence;
        if (asked_ == 0 || next_ == 0) {
            next_ = a.sequence;
        } else if (a.sequence > next_) {
            ++counters_.sequence_gaps;
            counters_.messages_lost += a.sequence - next_;
            notice(SoupNoticeKind::SequenceGap, next_, a.sequence - next_, now);
            next_ = a.sequence;
        }
        state_ = SoupClientState::LoggedIn;
        notice(SoupNoticeKind::LoginAccepted, a.sequence, 0, now);
    }

    SoupClientConfig config_{};
    soup::StreamFramer framer_{soup::kDefaultMaxPacketLength};
    SoupClientState state_ = SoupClientState::Disconnected;
    soup::RejectReason reject_ = soup::RejectReason::NotAuthorized;
    uint8_t session_[soup::kSessionLength] = {};
    uint64_t next_ = 1;         // next sequenced message to deliver
    uint64_t stream_next_ = 1;  // the number of the next Sequenced Data packet on this connection
    uint64_t asked_ = 1;        // what this connection's login asked for
    int64_t last_received_ns_ = 0;
    int64_t last_sent_ns_ = 0;
    SoupClientCounters counters_{};
    SoupNotice notices_[kNoticeCapacity] = {};
    size_t notice_head_ = 0;
    size_t notice_size_ = 0;
};

}  // namespace lockstep::session
