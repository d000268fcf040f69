// The recorder's MoldUDP64 path: a receive batch checked, run through the session layer's
// MoldReceiver (the one the live node follows its feed with) and pushed into the capture's ring,
// in one call per batch, without returning to the caller per datagram.
//
// The capture records what arrived, not what the receiver delivers: every datagram of the session
// followed goes to the ring as received (bytes and receive stamp), late, repeated or ahead of a
// gap alike. The receiver only decides: which session is followed (and when it changes), where
// gaps are, which retransmission request is due, when a gap is given up, what is a duplicate, and
// when the feed went quiet. Its notices are drained by the caller after each batch and written
// as history records; its messages go to a sink that only counts them.
//
// A datagram is not recorded (and is counted by reason, marked in the caller's verdict array so
// it can log the first few) when it is shorter than a MoldUDP64 header or cut by its slot
// (Malformed), from another host or port than asked (WrongSource), of a session the receiver
// does not follow (WrongSession), or announcing a sequence the receiver finds implausible
// (Implausible: one forged header must not open a gap of 2^63 messages).
#pragma once

#include <cstddef>
#include <cstdint>

#include "lockstep/base/big_endian.hpp"
#include "lockstep/base/status.hpp"
#include "lockstep/codecs/moldudp64.hpp"
#include "lockstep/data/capture.hpp"
#include "lockstep/session/mold_receiver.hpp"

namespace lockstep::capture {

// Per datagram of a batch. Mirrored by lockstep.enums.MoldVerdict.
enum class MoldVerdict : uint8_t {
    Recorded = 0,
    Malformed = 1,
    WrongSource = 2,
    WrongSession = 3,
    Implausible = 4,
    Dropped = 5,  // the datagram was the session's but its ring was full (told in a drop record)
};

struct MoldCaptureCounters {
    uint64_t datagrams = 0;      // recorded
    uint64_t messages = 0;       // message blocks in recorded data datagrams
    uint64_t bytes = 0;          // bytes of recorded datagrams
    uint64_t retransmitted = 0;  // messages the receiver took from replies (they filled a gap)
    uint64_t damaged = 0;        // recorded, but blocks past the header are damaged
    uint64_t malformed = 0;
    uint64_t wrong_source = 0;
    uint64_t wrong_session = 0;
    uint64_t implausible = 0;
    uint64_t ring_drops = 0;
    int64_t last_stamp_ns = 0;   // of the latest data datagram from the feed socket ...
    uint64_t last_venue_ns = 0;  // ... and its first message's ITCH timestamp (ns since midnight)
};

class MoldCapture {
public:
    Status init(const session::MoldReceiverConfig& config) noexcept {
        counters_ = MoldCaptureCounters{};
        return receiver_.init(config);
    }

    // Datagrams 0..n-1 of a receive batch (datagram i at data + i * slot, length[i] bytes,
    // received at stamp_ns[i], from peer_ip[i]:peer_port[i]), from the feed socket or, when
    // `replies`, from the socket retransmission requests went out on. Only datagrams from
    // want_ip (0: any host) and want_port (0: any port) are taken. Those the receiver follows are
    // pushed to producer `p`'s ring as stream `stream_id`; verdict[i] says what became of each.
    // A datagram whose flags have a bit of `cut_flags` set was cut by its slot (the socket
    // layer's mark, passed in: data/ does not include net/).
    void on_batch(const uint8_t* data, size_t slot, const uint32_t* length, const int64_t* stamp_ns,
                  const uint8_t* flags, uint8_t cut_flags, const uint32_t* peer_ip,
                  const uint16_t* peer_port, size_t n, bool replies, uint32_t want_ip,
                  uint16_t want_port, CaptureWriter& writer, uint32_t p, uint32_t stream_id,
                  uint8_t* verdict) noexcept {
        Counter sink{replies, 0, 0};
        for (size_t i = 0; i < n; ++i) {
            const uint8_t* d = data + i * slot;
            const uint32_t len = length[i];
            MoldVerdict v = MoldVerdict::Recorded;
            if (len < moldudp64::kHeaderLength || len > slot || (flags[i] & cut_flags)) {
                v = MoldVerdict::Malformed;
                ++counters_.malformed;
            } else if ((want_ip && peer_ip[i] != want_ip) || (want_port && peer_port[i] != want_port)) {
                v = MoldVerdict::WrongSource;
                ++counters_.wrong_source;
            } else {
                v = follow(d, len, stamp_ns[i], sink);
                if (v == MoldVerdict::Recorded) v = record(d, len, stamp_ns[i], replies, writer, p, stream_id);
            }
            verdict[i] = uint8_t(v);
        }
    }

    // Time passing without datagrams (now_ns on the receive stamps' clock, CLOCK_REALTIME).
    void poll(int64_t now_ns) noexcept {
        Counter sink{false, 0, 0};
        receiver_.poll(now_ns, sink);
    }

    session::MoldReceiver& receiver() noexcept { return receiver_; }
    const MoldCaptureCounters& counters() const noexcept { return counters_; }

private:
    // The receiver's sink: counts what a reply itself gave (held datagrams it releases were
    // received earlier, on the feed).
    struct Counter {
        bool replies;
        int64_t stamp;
        uint64_t from_reply;
        void operator()(uint64_t, const uint8_t*, uint16_t, int64_t stamp_ns) noexcept {
            from_reply += replies && stamp_ns == stamp;
        }
    };

    MoldVerdict follow(const uint8_t* d, uint32_t len, int64_t stamp, Counter& sink) noexcept {
        const session::MoldReceiverCounters& rc = receiver_.counters();
        const uint64_t other = rc.other_session, implausible = rc.implausible;
        sink.stamp = stamp;
        sink.from_reply = 0;
        const Status st = receiver_.on_packet(d, len, stamp, sink);
        counters_.retransmitted += sink.from_reply;
        if (rc.other_session != other) {
            ++counters_.wrong_session;
            return MoldVerdict::WrongSession;
        }
        if (rc.implausible != implausible) {
            ++counters_.implausible;
            return MoldVerdict::Implausible;
        }
        counters_.damaged += st != Status::Ok;
        return MoldVerdict::Recorded;
    }

    MoldVerdict record(const uint8_t* d, uint32_t len, int64_t stamp, bool replies,
                       CaptureWriter& writer, uint32_t p, uint32_t stream_id) noexcept {
        if (!writer.push(p, stamp, stream_id, d, len)) {
            ++counters_.ring_drops;
            return MoldVerdict::Dropped;
        }
        ++counters_.datagrams;
        counters_.bytes += len;
        const uint16_t count = load_be16(d + 18);
        if (count == moldudp64::kHeartbeatCount || count == moldudp64::kEndOfSessionCount)
            return MoldVerdict::Recorded;
        counters_.messages += count;
        // The first block's ITCH timestamp: length(2) type(1) locate(2) tracking(2) ts(6).
        constexpr size_t kBlock = moldudp64::kHeaderLength;
        if (!replies && len >= kBlock + 13 && load_be16(d + kBlock) >= 11) {
            counters_.last_venue_ns = load_be48(d + kBlock + 7);
            counters_.last_stamp_ns = stamp;
        }
        return MoldVerdict::Recorded;
    }

    session::MoldReceiver receiver_;
    MoldCaptureCounters counters_{};
};

}  // namespace lockstep::capture
