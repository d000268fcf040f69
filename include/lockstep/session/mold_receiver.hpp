// One MoldUDP64 session as a receiver sees it: datagrams and their receive stamps in, message
// blocks in sequence order and decisions out. No socket and no clock: time is only ever the
// receive stamps (and the `now` of poll / take_request) the caller passes.
//
// What it decides (docs/protocols.md, "The MoldUDP64 receiver"):
// - Delivery: each message exactly once, in sequence order, to a caller-supplied sink
//   (sink(sequence, data, length, stamp_ns), no allocation per message). A packet that starts
//   past the next expected sequence is held, up to `hold_packets` packets of `hold_slot_bytes`
//   each (allocated once by init), until the gap before it is filled; one that does not fit is
//   dropped and counted, and its messages are requested again with the rest of the gap.
// - Gaps: the next expected sequence below the highest announced one (a data packet's
//   sequence + count, a heartbeat's or end of session's sequence) opens a gap. Retransmission
//   requests ask for the first hole, [next expected, the first held packet or the highest
//   announced), at most `max_request_count` messages; again after `request_interval_ns`, or at
//   once when the hole asked for is filled and another remains. A hole with no progress for
//   `give_up_ns` is abandoned: reported (GapAbandoned with the range) so the caller can mark
//   its book invalid, and delivery resumes after it.
// - Duplicates (a packet, or the part of one, already delivered) are dropped and counted.
// - Session: blank `session` in the config follows the first session of a whole datagram and
//   switches on a change (again only on a whole datagram; the old session's stragglers are then
//   dropped); a named one ignores every other session. A change abandons any open gap and
//   starts the new session at `first_sequence`.
// - Liveness: no datagram of the session for `heartbeat_timeout_ns` is a HeartbeatTimeout
//   (once, until the next datagram: FeedResumed); none after end of session.
// - A datagram announcing a sequence more than `max_sequence_jump` past the next expected is
//   counted as implausible and ignored, so one forged header cannot open a gap of 2^63.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "lockstep/base/status.hpp"
#include "lockstep/codecs/moldudp64.hpp"
#include "lockstep/session/sink.hpp"

namespace lockstep::session {

namespace mold = lockstep::moldudp64;

// Mirrored by lockstep.enums.MoldNoticeKind.
enum class MoldNoticeKind : uint8_t {
    SessionStarted = 1,    // the first session followed
    SessionChanged = 2,    // another session followed from here (first: its first sequence)
    GapDetected = 3,       // first, count: the messages missing when the gap opened
    GapRecovered = 4,      // every missing message arrived (first: the next expected now)
    GapAbandoned = 5,      // first, count: given up, never delivered
    EndOfSession = 6,      // first: the sequence the end of session carried
    HeartbeatTimeout = 7,  // count: ns since the last datagram of the session
    FeedResumed = 8,       // a datagram after a heartbeat timeout
};

struct MoldNotice {
    MoldNoticeKind kind;
    uint64_t first;
    uint64_t count;
    int64_t stamp_ns;  // the receive stamp (or poll time) it was decided at
};

struct MoldReceiverConfig {
    uint8_t session[mold::kSessionLength] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
    uint64_t first_sequence = 1;  // 0: start at the first datagram seen (join late)
    int64_t heartbeat_timeout_ns = 3'000'000'000;  // three missed one-second heartbeats
    int64_t request_interval_ns = 250'000'000;
    int64_t give_up_ns = 2'000'000'000;
    uint16_t max_request_count = mold::kMaxBlocks;
    uint32_t hold_packets = 1024;
    uint32_t hold_slot_bytes = 2048;
    uint64_t max_sequence_jump = 1'000'000;
};

struct MoldReceiverCounters {
    uint64_t packets = 0;             // datagrams given
    uint64_t messages = 0;            // delivered in order
    uint64_t heartbeats = 0;
    uint64_t end_of_session = 0;      // end-of-session datagrams (repeats included)
    uint64_t short_packets = 0;       // shorter than a header: not read
    uint64_t damaged_packets = 0;     // header read, blocks damaged (whole ones delivered)
    uint64_t other_session = 0;       // of a session not followed: ignored
    uint64_t implausible = 0;         // sequence too far ahead: ignored
    uint64_t duplicate_packets = 0;   // wholly delivered before
    uint64_t duplicate_messages = 0;  // messages delivered before (whole or overlapping packets)
    uint64_t held_packets = 0;        // kept out of order
    uint64_t hold_refused = 0;        // out of order without room (or too long): dropped
    uint64_t held_discarded = 0;      // held, then dropped by a session change
    uint64_t gaps = 0;
    uint64_t gaps_recovered = 0;
    uint64_t gaps_abandoned = 0;
    uint64_t messages_abandoned = 0;
    uint64_t requests = 0;
    uint64_t messages_requested = 0;
    uint64_t session_changes = 0;
    uint64_t heartbeat_timeouts = 0;
    uint64_t notices_lost = 0;        // the notice queue was full (drain it after each batch)
};

class MoldReceiver {
public:
    static constexpr size_t kNoticeCapacity = 256;

    // Checks the config and allocates the hold buffer: InvalidArgument for a non-positive
    // interval or timeout, a max_request_count of 0 or above 65534, a hold slot smaller than a
    // header or above a datagram's 65535 bytes.
    Status init(const MoldReceiverConfig& config) noexcept {
        if (config.heartbeat_timeout_ns <= 0 || config.request_interval_ns <= 0 ||
            config.give_up_ns <= 0 || config.max_request_count == 0 ||
            config.max_request_count > mold::kMaxBlocks ||
            config.hold_slot_bytes < mold::kHeaderLength || config.hold_slot_bytes > 0xFFFF)
            return Status::InvalidArgument;
        config_ = config;
        try {
            arena_.assign(size_t(config.hold_packets) * config.hold_slot_bytes, 0);
            slots_.assign(config.hold_packets, Held{});
        } catch (...) {
            return Status::InvalidArgument;
        }
        named_ = !blank(config.session);
        std::memcpy(session_, config.session, mold::kSessionLength);
        have_session_ = false;
        have_previous_ = false;
        counters_ = MoldReceiverCounters{};
        notice_head_ = notice_size_ = 0;
        started_ = false;
        reset_sequence();
        return Status::Ok;
    }

    // One datagram received at stamp_ns. Ok, or DecodeError for a datagram shorter than a
    // header or with damaged blocks (error() says what and where; its whole blocks before the
    // damage still count). Messages go to sink in sequence order, possibly with held ones.
    template <class Sink>
    Status on_packet(const uint8_t* data, size_t len, int64_t stamp_ns, Sink& sink) noexcept {
        ++counters_.packets;
        mold::PacketReader reader;
        if (reader.open(data, len) != Status::Ok) {
            ++counters_.short_packets;
            error_ = reader.error();
            return Status::DecodeError;
        }
        const Status walked = reader.check();
        if (walked != Status::Ok) {
            ++counters_.damaged_packets;
            error_ = reader.error();
        }
        const mold::Header& h = reader.header();
        if (follows(h, walked == Status::Ok, stamp_ns)) {
            alive(stamp_ns);
            sequence_packet(data, len, h, reader.blocks_read(), stamp_ns, sink);
            advance(stamp_ns, sink);
        }
        return walked;
    }

    // Time passes without datagrams: gives up on a hole that made no progress for give_up_ns
    // (releasing the held packets behind it to sink) and notices a heartbeat timeout.
    template <class Sink>
    void poll(int64_t now_ns, Sink& sink) noexcept {
        if (!started_) {
            started_ = true;
            last_packet_ns_ = now_ns;
        }
        advance(now_ns, sink);
    }

    // The retransmission request due now, written to out (20 bytes): 20, or 0 when none is due
    // (no gap, asked recently enough, or out shorter than a request).
    size_t take_request(int64_t now_ns, uint8_t* out, size_t capacity) noexcept {
        if (!gap_open_ || !have_session_ || capacity < mold::kRequestLength) return 0;
        const uint64_t end = hole_end();
        if (end <= expected_) return 0;
        const bool due = !requested_ || now_ns - last_request_ns_ >= config_.request_interval_ns ||
                         expected_ >= requested_end_;
        if (!due) return 0;
        uint64_t count = end - expected_;
        if (count > config_.max_request_count) count = config_.max_request_count;
        mold::put_header(out, session_, expected_, uint16_t(count));
        requested_ = true;
        last_request_ns_ = now_ns;
        requested_end_ = expected_ + count;
        ++counters_.requests;
        counters_.messages_requested += count;
        return mold::kRequestLength;
    }

    // Delivery goes back to `sequence`, below the next expected one: a book snapshot taken
    // before it replaced what the messages since had built, so they are wanted again. They are
    // a hole like any other (GapDetected unless one is open; requested, then recovered or
    // abandoned). False, and nothing changes, when `sequence` is not below the next expected
    // one (the messages up to it are then the caller's to drop) or no sequence is known yet.
    bool rewind(uint64_t sequence, int64_t stamp) noexcept {
        if (!known_ || !have_session_ || sequence == 0 || sequence >= expected_) return false;
        expected_ = sequence;
        requested_ = false;
        hole_since_ns_ = stamp;
        if (!gap_open_) {
            gap_open_ = true;
            ++counters_.gaps;
            notice(MoldNoticeKind::GapDetected, expected_, highest_ - expected_, stamp);
        }
        gap_abandoned_ = false;
        return true;
    }

    // The oldest notice not yet taken: false when none waits.
    bool next_notice(MoldNotice& out) noexcept {
        if (notice_size_ == 0) return false;
        out = notices_[notice_head_];
        notice_head_ = (notice_head_ + 1) % kNoticeCapacity;
        --notice_size_;
        return true;
    }

    const MoldReceiverCounters& counters() const noexcept { return counters_; }
    const mold::WireError& error() const noexcept { return error_; }
    // The next sequence to deliver (0 before the first datagram when joining late).
    uint64_t expected() const noexcept { return expected_; }
    uint64_t highest() const noexcept { return highest_; }  // the highest announced + 1
    bool gap_open() const noexcept { return gap_open_; }
    bool ended() const noexcept { return ended_; }
    bool timed_out() const noexcept { return timed_out_; }
    bool has_session() const noexcept { return have_session_; }
    const uint8_t* session() const noexcept { return session_; }
    uint32_t held() const noexcept { return held_count_; }
    size_t held_bytes() const noexcept { return held_bytes_; }

private:
    struct Held {
        uint64_t start = 0;
        uint16_t whole = 0;
        uint32_t length = 0;
        int64_t stamp_ns = 0;
        bool used = false;
    };

    static bool blank(const uint8_t* s) noexcept {
        for (size_t i = 0; i < mold::kSessionLength; ++i)
            if (s[i] != ' ') return false;
        return true;
    }

    void notice(MoldNoticeKind kind, uint64_t first, uint64_t count, int64_t stamp) noexcept {
        if (notice_size_ == kNoticeCapacity) {
            ++counters_.notices_lost;
            return;
        }
        notices_[(notice_head_ + notice_size_) % kNoticeCapacity] = {kind, first, count, stamp};
        ++notice_size_;
    }

    void reset_sequence() noexcept {
        expected_ = config_.first_sequence;
        known_ = config_.first_sequence != 0;
        highest_ = expected_;
        gap_open_ = false;
        gap_abandoned_ = false;
        requested_ = false;
        ended_ = false;
        for (Held& s : slots_) s.used = false;
        held_count_ = 0;
        held_bytes_ = 0;
    }

    // Whether the datagram belongs to the session followed (switching to it if it may).
    bool follows(const mold::Header& h, bool whole, int64_t stamp) noexcept {
        const bool same = std::memcmp(h.session, session_, mold::kSessionLength) == 0;
        if (!have_session_ && (named_ ? same : whole)) {
            std::memcpy(session_, h.session, mold::kSessionLength);
            have_session_ = true;
            notice(MoldNoticeKind::SessionStarted, expected_, 0, stamp);
            return true;
        }
        if (same) return true;
        const bool previous =
            have_previous_ && std::memcmp(h.session, previous_, mold::kSessionLength) == 0;
        if (named_ || previous || !whole) {
            ++counters_.other_session;
            return false;
        }
        if (gap_open_ && hole_end() > expected_) abandon(stamp);
        counters_.held_discarded += held_count_;
        std::memcpy(previous_, session_, mold::kSessionLength);
        have_previous_ = true;
        std::memcpy(session_, h.session, mold::kSessionLength);
        ++counters_.session_changes;
        reset_sequence();
        notice(MoldNoticeKind::SessionChanged, expected_, 0, stamp);
        return true;
    }

    void alive(int64_t stamp) noexcept {
        if (!started_ || stamp > last_packet_ns_) last_packet_ns_ = stamp;
        started_ = true;
        if (timed_out_) {
            timed_out_ = false;
            notice(MoldNoticeKind::FeedResumed, expected_, 0, stamp);
        }
    }

    template <class Sink>
    void sequence_packet(const uint8_t* data, size_t len, const mold::Header& h, uint16_t whole,
                         int64_t stamp, Sink& sink) noexcept {
        const bool header_only = h.count == mold::kHeartbeatCount ||
                                 h.count == mold::kEndOfSessionCount;
        const uint64_t announced = header_only ? 0 : h.count;
        if (h.sequence > UINT64_MAX - announced - 1 ||
            (known_ && h.sequence > expected_ &&
             h.sequence - expected_ > config_.max_sequence_jump)) {
            ++counters_.implausible;
            return;
        }
        if (!known_) {
            known_ = true;
            expected_ = highest_ = h.sequence;
        }
        if (header_only) {
            if (h.count == mold::kHeartbeatCount) {
                ++counters_.heartbeats;
            } else {
                ++counters_.end_of_session;
                if (!ended_) notice(MoldNoticeKind::EndOfSession, h.sequence, 0, stamp);
                ended_ = true;
            }
            announce(h.sequence, stamp);
            return;
        }
        // Announced after an in-order delivery, so that only what is still missing opens a gap.
        if (whole == 0 || h.sequence > expected_) {
            announce(h.sequence + announced, stamp);
            // Damaged before its first block, nothing to keep: the gap asks for it again.
            if (whole) hold(data, len, h.sequence, whole, stamp);
            return;
        }
        if (h.sequence + whole <= expected_) {
            ++counters_.duplicate_packets;
            counters_.duplicate_messages += whole;
            announce(h.sequence + announced, stamp);
            return;
        }
        deliver(data, len, whole, stamp, sink);
        announce(h.sequence + announced, stamp);
        drain(sink);
        settle(stamp);
    }

    // A sequence announced (one past the last message a datagram says exists).
    void announce(uint64_t end, int64_t stamp) noexcept {
        if (end > highest_) highest_ = end;
        if (!gap_open_ && expected_ < highest_) {
            gap_open_ = true;
            gap_abandoned_ = false;
            requested_ = false;
            hole_since_ns_ = stamp;
            ++counters_.gaps;
            notice(MoldNoticeKind::GapDetected, expected_, highest_ - expected_, stamp);
        }
    }

    // Closes the gap once every announced message has been delivered.
    void settle(int64_t stamp) noexcept {
        if (!gap_open_ || expected_ < highest_) return;
        gap_open_ = false;
        if (!gap_abandoned_) {
            ++counters_.gaps_recovered;
            notice(MoldNoticeKind::GapRecovered, expected_, 0, stamp);
        }
    }

    // Delivers the blocks at or after expected_ of a datagram starting at or before it.
    template <class Sink>
    void deliver(const uint8_t* data, size_t len, uint16_t whole, int64_t stamp,
                 Sink& sink) noexcept {
        mold::PacketReader reader;
        reader.open(data, len);
        mold::Block b;
        const uint64_t before = expected_;
        for (uint16_t i = 0; i < whole && reader.next(b); ++i) {
            if (b.sequence < expected_) {
                ++counters_.duplicate_messages;
                continue;
            }
            sink(b.sequence, b.data, b.length, stamp);
            ++counters_.messages;
            expected_ = b.sequence + 1;
        }
        // Progress restarts the give-up clock: a hole is abandoned only when nothing arrives.
        if (gap_open_ && expected_ > before) hole_since_ns_ = stamp;
    }

    void hold(const uint8_t* data, size_t len, uint64_t start, uint16_t whole,
              int64_t stamp) noexcept {
        Held* free_slot = nullptr;
        for (Held& s : slots_) {
            if (s.used && s.start == start && s.whole >= whole) {
                ++counters_.duplicate_packets;
                counters_.duplicate_messages += whole;
                return;
            }
            if (!s.used && !free_slot) free_slot = &s;
        }
        if (!free_slot || len > config_.hold_slot_bytes) {
            ++counters_.hold_refused;
            return;
        }
        const size_t index = size_t(free_slot - slots_.data());
        std::memcpy(arena_.data() + index * config_.hold_slot_bytes, data, len);
        *free_slot = Held{start, whole, uint32_t(len), stamp, true};
        ++held_count_;
        held_bytes_ += len;
        ++counters_.held_packets;
    }

    void release(Held& s) noexcept {
        s.used = false;
        --held_count_;
        held_bytes_ -= s.length;
    }

    // Delivers held datagrams that now continue the sequence, oldest first.
    template <class Sink>
    void drain(Sink& sink) noexcept {
        for (bool moved = true; moved && held_count_;) {
            moved = false;
            for (size_t i = 0; i < slots_.size(); ++i) {
                Held& s = slots_[i];
                if (!s.used || s.start > expected_) continue;
                if (s.start + s.whole > expected_) {
                    deliver(arena_.data() + i * config_.hold_slot_bytes, s.length, s.whole,
                            s.stamp_ns, sink);
                } else {
                    ++counters_.duplicate_packets;
                    counters_.duplicate_messages += s.whole;
                }
                release(s);
                moved = true;
            }
        }
    }

    // One past the first hole: the first held datagram after expected_, or the highest announced.
    uint64_t hole_end() const noexcept {
        uint64_t end = highest_;
        for (const Held& s : slots_)
            if (s.used && s.start > expected_ && s.start < end) end = s.start;
        return end;
    }

    void abandon(int64_t stamp) noexcept {
        const uint64_t end = hole_end();
        ++counters_.gaps_abandoned;
        counters_.messages_abandoned += end - expected_;
        notice(MoldNoticeKind::GapAbandoned, expected_, end - expected_, stamp);
        gap_abandoned_ = true;
        expected_ = end;
        requested_ = false;
        hole_since_ns_ = stamp;
    }

    template <class Sink>
    void advance(int64_t now, Sink& sink) noexcept {
        if (gap_open_ && now - hole_since_ns_ >= config_.give_up_ns) {
            abandon(now);
            drain(sink);
            settle(now);
        }
        if (started_ && !ended_ && !timed_out_ &&
            now - last_packet_ns_ >= config_.heartbeat_timeout_ns) {
            timed_out_ = true;
            ++counters_.heartbeat_timeouts;
            notice(MoldNoticeKind::HeartbeatTimeout, expected_, uint64_t(now - last_packet_ns_),
                   now);
        }
    }

    MoldReceiverConfig config_{};
    bool named_ = false;
    uint8_t session_[mold::kSessionLength] = {};
    uint8_t previous_[mold::kSessionLength] = {};
    bool have_session_ = false;
    bool have_previous_ = false;
    uint64_t expected_ = 1;
    bool known_ = true;
    uint64_t highest_ = 1;
    bool gap_open_ = false;
    bool gap_abandoned_ = false;
    int64_t hole_since_ns_ = 0;
    bool requested_ = false;
    uint64_t requested_end_ = 0;
    int64_t last_request_ns_ = 0;
    bool ended_ = false;
    bool started_ = false;
    bool timed_out_ = false;
    int64_t last_packet_ns_ = 0;
    std::vector<uint8_t> arena_;
    std::vector<Held> slots_;
    uint32_t held_count_ = 0;
    size_t held_bytes_ = 0;
    MoldReceiverCounters counters_{};
    mold::WireError error_{};
    MoldNotice notices_[kNoticeCapacity] = {};
    size_t notice_head_ = 0;
    size_t notice_size_ = 0;
};

}  // namespace lockstep::session
