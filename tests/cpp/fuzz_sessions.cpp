// The protocol sessions on arbitrary, damaged, reordered and repeated input, each datagram or TCP
// chunk in a heap block of exactly its size, so that AddressSanitizer stops at the first byte read
// past it; the sink reads every byte it is handed. Seeded: the same inputs on every run. Prints
// what the sessions made of them, so the caller can tell the damage reached every path.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "lockstep/codecs/moldudp64.hpp"
#include "lockstep/codecs/soupbintcp.hpp"
#include "lockstep/session/mold_receiver.hpp"
#include "lockstep/session/soup_client.hpp"

using namespace lockstep;

static uint64_t state = 0x2545F4914F6CDD1Dull;
static uint64_t next_random() {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

struct TouchingSink {
    uint64_t messages = 0, bytes = 0, checksum = 0;
    void operator()(uint64_t sequence, const uint8_t* data, uint16_t length, int64_t) noexcept {
        ++messages;
        bytes += length;
        for (uint16_t i = 0; i < length; ++i) checksum += data[i] * (sequence | 1);
    }
};

// A copy of bytes in a heap block of exactly their size.
static std::unique_ptr<uint8_t[]> exact(const std::vector<uint8_t>& bytes) {
    std::unique_ptr<uint8_t[]> p(new uint8_t[bytes.empty() ? 1 : bytes.size()]);
    if (!bytes.empty()) std::memcpy(p.get(), bytes.data(), bytes.size());
    return p;
}

static std::vector<uint8_t> mold_packet(const uint8_t* session, uint64_t first, int count) {
    std::vector<uint8_t> out(1400);
    moldudp64::PacketBuilder b;
    b.begin(out.data(), out.size(), session, first);
    for (int i = 0; i < count; ++i) {
        const size_t n = next_random() % 40;
        uint8_t* at = b.reserve(n);
        for (size_t k = 0; k < n; ++k) at[k] = uint8_t(next_random());
    }
    out.resize(b.size());
    return out;
}

int main(int argc, char** argv) {
    const long rounds = argc > 1 ? std::atol(argv[1]) : 20000;
    const uint8_t session[10] = {'S', 'E', 'S', 'S', 'I', 'O', 'N', ' ', ' ', ' '};
    const uint8_t other[10] = {'O', 'T', 'H', 'E', 'R', ' ', ' ', ' ', ' ', ' '};

    session::MoldReceiverConfig mc;
    mc.hold_packets = 8;
    mc.hold_slot_bytes = 256;
    mc.give_up_ns = 50;
    mc.request_interval_ns = 10;
    mc.heartbeat_timeout_ns = 100;
    session::MoldReceiver receiver;
    if (receiver.init(mc) != Status::Ok) return 2;
    TouchingSink mold_sink;
    uint64_t damaged = 0, requests = 0;
    uint8_t request[20];
    for (long r = 0; r < rounds; ++r) {
        // Mostly near the next expected sequence (in order, a little ahead, repeated), sometimes
        // anywhere.
        const uint64_t near = receiver.expected() + next_random() % 12;
        const uint64_t first = next_random() % 8 ? (near > 4 ? near - 4 : 1)
                                                 : 1 + next_random() % 5000;
        std::vector<uint8_t> d;
        switch (next_random() % 6) {
            case 0: d = mold_packet(session, first, 1 + int(next_random() % 5)); break;
            case 1: d = mold_packet(r % 3 ? session : other, first, 2); break;
            case 2: d = mold_packet(session, first, 3); d.resize(next_random() % (d.size() + 1)); break;
            case 3: d = mold_packet(session, first, 0); break;
            case 4: d = mold_packet(session, first, 2); d[19] = uint8_t(next_random()); break;
            default: d.resize(next_random() % 80); for (auto& b : d) b = uint8_t(next_random());
        }
        auto p = exact(d);
        if (receiver.on_packet(d.empty() ? nullptr : p.get(), d.size(), r, mold_sink) != Status::Ok)
            ++damaged;
        if (r % 7 == 0) receiver.poll(r + int64_t(next_random() % 200), mold_sink);
        requests += receiver.take_request(r, request, sizeof request) != 0;
        session::MoldNotice n;
        while (receiver.next_notice(n)) {}
    }
    const auto& mcnt = receiver.counters();

    session::SoupClientConfig sc;
    sc.heartbeat_interval_ns = 5;
    sc.server_timeout_ns = 1000;
    sc.max_packet_length = uint16_t(40);
    session::SoupClient client;
    if (client.init(sc) != Status::Ok) return 2;
    TouchingSink soup_sink;
    uint64_t logins = 0, failures = 0;
    uint8_t out[64];
    size_t written;
    for (long r = 0; r < rounds; ++r) {
        if (client.state() != session::SoupClientState::LoggingIn &&
            client.state() != session::SoupClientState::LoggedIn) {
            failures += client.state() == session::SoupClientState::Failed;
            client.disconnected();
            client.connected(r, out, sizeof out, &written);
            ++logins;
        }
        std::vector<uint8_t> chunk;
        if (next_random() % 3) {  // whole packets, sometimes cut anywhere
            soupbin::LoginAccepted a{};
            std::memcpy(a.session, session, 10);
            a.sequence = next_random() % 9;
            std::vector<uint8_t> buf(64);
            const int kind = int(next_random() % 4);
            if (kind == 0) soupbin::encode_login_accepted(a, buf.data(), buf.size(), &written);
            else {
                const uint8_t payload[5] = {1, 2, 3, 4, 5};
                const soupbin::PacketType t = kind == 1 ? soupbin::PacketType::SequencedData
                                            : kind == 2 ? soupbin::PacketType::ServerHeartbeat
                                                        : soupbin::PacketType::UnsequencedData;
                soupbin::encode_packet(t, payload, kind == 2 ? 0 : next_random() % 6, buf.data(),
                                       buf.size(), &written);
            }
            buf.resize(written);
            chunk = buf;
            if (next_random() % 4 == 0) chunk.resize(next_random() % (chunk.size() + 1));
        } else {
            chunk.resize(next_random() % 50);
            for (auto& b : chunk) b = uint8_t(next_random());
        }
        auto p = exact(chunk);
        client.on_bytes(chunk.empty() ? nullptr : p.get(), chunk.size(), r, soup_sink);
        client.poll(r, out, sizeof out);
        session::SoupNotice n;
        while (client.next_notice(n)) {}
    }
    const auto& scnt = client.counters();
    std::printf("mold_delivered %lu mold_damaged %lu mold_gaps %lu mold_abandoned %lu "
                "mold_requests %lu mold_held %lu soup_sequenced %lu soup_logins %lu "
                "soup_failures %lu soup_duplicates %lu\n",
                (unsigned long)mold_sink.messages, (unsigned long)damaged,
                (unsigned long)mcnt.gaps, (unsigned long)mcnt.gaps_abandoned,
                (unsigned long)requests, (unsigned long)mcnt.held_packets,
                (unsigned long)soup_sink.messages, (unsigned long)scnt.logins,
                (unsigned long)failures, (unsigned long)scnt.duplicates);
    return 0;
}
