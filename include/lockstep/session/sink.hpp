// What the session layer hands payloads to: a sink is any callable
// sink(uint64_t sequence, const uint8_t* data, uint16_t length, int64_t stamp_ns), called once
// per message in delivery order; the data lives in the caller's bytes only during the call.
// Sequence numbers start at 1 in both protocols, so 0 marks a message that has none (SoupBinTCP
// unsequenced data).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "lockstep/base/big_endian.hpp"

namespace lockstep::session {

// A sink that writes messages as the [u16 length][message] stream the ITCH decoder reads, with
// each message's sequence and receive stamp in parallel arrays. The caller sizes it: a batch
// can release up to its own bytes plus held_bytes(). Empty messages are left out of the stream
// when skip_empty (the ITCH framing reads length 0 as "the type's length"), and counted.
struct StreamSink {
    uint8_t* out = nullptr;
    size_t capacity = 0;
    uint64_t* sequences = nullptr;
    int64_t* stamps = nullptr;
    size_t max_messages = 0;
    bool skip_empty = false;
    size_t size = 0;
    size_t messages = 0;
    uint64_t empty_skipped = 0;
    uint64_t overflow = 0;  // messages that did not fit (the caller sized it wrong)

    void operator()(uint64_t sequence, const uint8_t* data, uint16_t length,
                    int64_t stamp_ns) noexcept {
        if (length == 0 && skip_empty) {
            ++empty_skipped;
            return;
        }
        if (messages == max_messages || capacity - size < size_t(length) + 2) {
            ++overflow;
            return;
        }
        store_be16(out + size, length);
        if (length) std::memcpy(out + size + 2, data, length);
        size += size_t(length) + 2;
        sequences[messages] = sequence;
        stamps[messages++] = stamp_ns;
    }
};

}  // namespace lockstep::session
