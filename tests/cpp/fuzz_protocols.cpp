// Every protocol decoder on arbitrary and on damaged bytes, each input in a heap block of exactly
// its size, so that AddressSanitizer stops at the first byte read past it. Seeded: the same
// inputs on every run. Prints how many inputs each decoder took and refused.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "lockstep/codecs/itch_encode.hpp"
#include "lockstep/codecs/moldudp64.hpp"
#include "lockstep/codecs/ouch42.hpp"
#include "lockstep/codecs/soupbintcp.hpp"

using namespace lockstep;

static uint64_t state = 0x9E3779B97F4A7C15ull;
static uint64_t next_random() {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

struct Tally {
    uint64_t ok = 0, refused = 0;
    void add(Status st) { (st == Status::Ok ? ok : refused)++; }
};

int main(int argc, char** argv) {
    const long rounds = argc > 1 ? std::atol(argv[1]) : 20000;
    Tally mold, request, gather, soup, framer, inbound, outbound;
    std::vector<uint8_t> sink(1 << 16);
    // Valid seeds to damage: a Mold packet of ITCH messages, a login, an Accepted.
    uint8_t seed_packet[200];
    moldudp64::PacketBuilder builder;
    const uint8_t session[10] = {'S', 'E', 'S', 'S', 'I', 'O', 'N', ' ', ' ', ' '};
    builder.begin(seed_packet, sizeof seed_packet, session, 1);
    itch_encode::AddOrder add{};
    size_t n = 0;
    wire::encode_message(add, builder.reserve(itch_encode::AddOrder::kLength), 64, &n);
    itch_encode::OrderDelete del{};
    wire::encode_message(del, builder.reserve(itch_encode::OrderDelete::kLength), 64, &n);
    const size_t seed_len = builder.size();

    for (long r = 0; r < rounds; ++r) {
        size_t len = next_random() % 120;
        std::vector<uint8_t> bytes(len);
        const bool damage = r % 2 == 0 && len <= seed_len;
        for (size_t i = 0; i < len; ++i)
            bytes[i] = damage ? seed_packet[i] : uint8_t(next_random());
        if (damage && len) bytes[next_random() % len] = uint8_t(next_random());
        if (r % 5 == 0 && len) bytes[0] = "LAJSHZUROA+OUXEC"[next_random() % 16];
        if (r % 7 == 0 && len >= 2) {  // a small length prefix, as framing would have it
            bytes[0] = 0;
            bytes[1] = uint8_t(next_random() % (len + 2));
        }
        std::unique_ptr<uint8_t[]> p(new uint8_t[len ? len : 1]);
        if (len) std::memcpy(p.get(), bytes.data(), len);
        const uint8_t* d = len ? p.get() : nullptr;
        wire::WireError err;

        moldudp64::PacketReader reader;
        Status st = reader.open(d, len);
        if (st == Status::Ok) st = reader.check();
        mold.add(st);
        moldudp64::Header h;
        request.add(moldudp64::decode_request(d, len, h, &err));
        moldudp64::Gathered g;
        gather.add(moldudp64::gather_blocks(d, len, sink.data(), sink.size(), g, &err));
        soupbin::Packet packet;
        soup.add(soupbin::decode_packet(d, len, packet, &err));
        soupbin::StreamFramer f(uint16_t(1 + next_random() % 80));
        size_t cut = len ? next_random() % (len + 1) : 0;
        const uint8_t* whole;
        size_t whole_len;
        f.push(d, cut);
        while ((st = f.next(&whole, &whole_len)) == Status::Ok) {}
        f.push(len ? d + cut : nullptr, len - cut);
        while ((st = f.next(&whole, &whole_len)) == Status::Ok) {}
        framer.add(st == Status::NeedMoreInput ? Status::Ok : st);
        ouch42::Inbound in;
        inbound.add(ouch42::decode_inbound(d, len, in, &err));
        ouch42::Outbound out;
        outbound.add(ouch42::decode_outbound(d, len, out, &err));
    }
    std::printf("mold %lu/%lu request %lu/%lu gather %lu/%lu soup %lu/%lu framer %lu/%lu "
                "inbound %lu/%lu outbound %lu/%lu\n",
                mold.ok, mold.refused, request.ok, request.refused, gather.ok, gather.refused,
                soup.ok, soup.refused, framer.ok, framer.refused, inbound.ok, inbound.refused,
                outbound.ok, outbound.refused);
    return 0;
}
