// MoldUDP64 (NASDAQ, version 1.00): sequenced messages in UDP datagrams.
//
// A packet is a 20-byte header, session(10) sequence(8) count(2), all integers big-endian,
// followed by `count` message blocks, each a 2-byte length and that many bytes of message. The
// sequence is that of the first block; block i has sequence + i. Count 0 is a heartbeat and
// 0xFFFF the end of the session, both without blocks, their sequence the next one to come. A
// retransmission request (client to server) has the header's layout: session, the first sequence
// wanted and how many messages.
//
// Everything here reads and writes caller buffers: no allocation, no exception. docs/protocols.md
// says what the specification leaves open and what these codecs do there.
//
// ITCH over MoldUDP64: the blocks of a packet are byte for byte the [u16 length][message] framing
// lockstep::itch::ItchDecoder::feed reads, so a feed handler hands it the packet's blocks
// (payload()) once PacketReader has walked them without a problem and found no empty block.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "lockstep/base/big_endian.hpp"
#include "lockstep/base/status.hpp"
#include "lockstep/codecs/wire.hpp"

namespace lockstep::moldudp64 {

using wire::WireError;
using wire::WireProblem;

constexpr size_t kSessionLength = 10;
constexpr size_t kHeaderLength = 20;
constexpr size_t kRequestLength = 20;
constexpr uint16_t kHeartbeatCount = 0;
constexpr uint16_t kEndOfSessionCount = 0xFFFF;
constexpr uint16_t kMaxBlocks = 0xFFFE;  // 0xFFFF is the end-of-session mark
constexpr size_t kMaxMessageLength = 0xFFFF;

// A packet header, or a retransmission request (same layout; count = messages requested).
struct Header {
    uint8_t session[kSessionLength];
    uint64_t sequence;
    uint16_t count;
};

struct Block {
    const uint8_t* data;  // the message, inside the datagram
    uint16_t length;
    uint64_t sequence;
    uint64_t offset;      // of the block's length prefix in the datagram
};

inline void put_header(uint8_t* out, const uint8_t* session, uint64_t sequence,
                       uint16_t count) noexcept {
    std::memcpy(out, session, kSessionLength);
    store_be64(out + 10, sequence);
    store_be16(out + 18, count);
}

inline void get_header(const uint8_t* p, Header& out) noexcept {
    std::memcpy(out.session, p, kSessionLength);
    out.sequence = load_be64(p + 10);
    out.count = load_be16(p + 18);
}

// Walks the blocks of one datagram, never past its length.
class PacketReader {
public:
    // Reads the header: Ok, or DecodeError (Truncated) for a datagram shorter than a header.
    Status open(const uint8_t* data, size_t len) noexcept {
        data_ = data;
        len_ = len;
        index_ = 0;
        pos_ = kHeaderLength;
        empty_blocks_ = 0;
        error_ = WireError{};
        if (len < kHeaderLength) {
            blocks_ = 0;
            return wire::fail(&error_, WireProblem::Truncated, len);
        }
        get_header(data, header_);
        blocks_ = header_.count == kEndOfSessionCount ? 0 : header_.count;
        return Status::Ok;
    }

    const Header& header() const noexcept { return header_; }
    bool heartbeat() const noexcept { return header_.count == kHeartbeatCount; }
    bool end_of_session() const noexcept { return header_.count == kEndOfSessionCount; }

    // The next block; false after the last one the header announced, or at the first damage
    // (error() says what and where; the blocks before it were whole). Past the last block, bytes
    // left in the datagram are TrailingBytes.
    bool next(Block& out) noexcept {
        if (error_.problem != WireProblem::None) return false;
        if (index_ == blocks_) {
            if (pos_ != len_) wire::fail(&error_, WireProblem::TrailingBytes, pos_);
            return false;
        }
        if (len_ - pos_ < 2) {
            wire::fail(&error_, WireProblem::Truncated, pos_);
            return false;
        }
        const uint16_t n = load_be16(data_ + pos_);
        if (len_ - pos_ - 2 < n) {  // the length runs past the datagram
            wire::fail(&error_, WireProblem::Oversized, pos_);
            return false;
        }
        out.data = data_ + pos_ + 2;
        out.length = n;
        out.sequence = header_.sequence + index_;
        out.offset = pos_;
        empty_blocks_ += n == 0;
        pos_ += 2 + size_t(n);
        ++index_;
        return true;
    }

    // Walks every block: Ok when the datagram is exactly its header and `count` whole blocks.
    Status check() noexcept {
        Block b;
        while (next(b)) {
        }
        return error_.problem == WireProblem::None ? Status::Ok : Status::DecodeError;
    }

    const WireError& error() const noexcept { return error_; }
    uint16_t blocks_read() const noexcept { return uint16_t(index_); }
    uint32_t empty_blocks() const noexcept { return empty_blocks_; }
    // The blocks as they sit in the datagram (length prefixes included).
    const uint8_t* payload() const noexcept { return data_ + kHeaderLength; }
    size_t payload_length() const noexcept { return len_ >= kHeaderLength ? len_ - kHeaderLength : 0; }

private:
    const uint8_t* data_ = nullptr;
    size_t len_ = 0;
    size_t pos_ = 0;
    uint32_t index_ = 0;
    uint32_t blocks_ = 0;
    uint32_t empty_blocks_ = 0;
    Header header_{};
    WireError error_{};
};

// Fills one packet in a caller buffer whose capacity is the datagram budget (the MTU less the IP
// and UDP headers): messages are appended while they fit, the header's count kept current, so the
// packet is complete after every append.
class PacketBuilder {
public:
    // InvalidArgument if the capacity cannot hold a header.
    Status begin(uint8_t* out, size_t capacity, const uint8_t* session, uint64_t sequence) noexcept {
        if (capacity < kHeaderLength) return Status::InvalidArgument;
        out_ = out;
        capacity_ = capacity;
        size_ = kHeaderLength;
        count_ = 0;
        sequence_ = sequence;
        put_header(out, session, sequence, 0);
        return Status::Ok;
    }

    // Where to write a message of n bytes, its block length already written; nullptr when it
    // does not fit (send this packet and begin the next) or n is above kMaxMessageLength.
    uint8_t* reserve(size_t n) noexcept {
        if (n > kMaxMessageLength || count_ == kMaxBlocks || capacity_ - size_ < n + 2)
            return nullptr;
        store_be16(out_ + size_, uint16_t(n));
        uint8_t* at = out_ + size_ + 2;
        size_ += n + 2;
        store_be16(out_ + 18, ++count_);
        return at;
    }

    // Copies a message in: Ok, OutputFull (does not fit: send and begin the next packet) or
    // InvalidArgument (longer than a block can be: no packet would take it).
    Status append(const uint8_t* message, size_t n) noexcept {
        if (n > kMaxMessageLength) return Status::InvalidArgument;
        uint8_t* at = reserve(n);
        if (!at) return Status::OutputFull;
        std::memcpy(at, message, n);
        return Status::Ok;
    }

    size_t size() const noexcept { return size_; }
    uint16_t count() const noexcept { return count_; }
    uint64_t next_sequence() const noexcept { return sequence_ + count_; }

private:
    uint8_t* out_ = nullptr;
    size_t capacity_ = 0;
    size_t size_ = 0;
    uint16_t count_ = 0;
    uint64_t sequence_ = 0;
};

// What gather_blocks took from one packet.
struct Gathered {
    Header header;
    uint16_t blocks;          // whole blocks read (those before any damage)
    uint32_t empty_blocks;    // of which empty, not copied
    size_t bytes;             // written to out
};

// Whether the datagram (header already read as valid) is exactly its header and `blocks` whole,
// non-empty blocks: the common case, which gather_blocks copies in one piece after this walk of
// the length prefixes alone. Anything else is left to PacketReader, which says what is wrong.
inline bool plain_blocks(const uint8_t* data, size_t len, uint32_t blocks) noexcept {
    size_t pos = kHeaderLength;
    for (uint32_t i = 0; i < blocks; ++i) {
        // A block running past the end leaves pos > len: the next prefix or the end check fails.
        if (pos + 2 > len) return false;
        const size_t n = load_be16(data + pos);
        if (n == 0) return false;
        pos += 2 + n;
    }
    return pos == len;
}

// Appends the whole blocks of one datagram, length prefixes included, to out: the
// [u16 length][message] framing itch::ItchDecoder::feed reads, so several packets' messages go to
// the decoder in one call. Empty blocks are left out (that framing reads a zero length as "the
// type's fixed length"). Ok; OutputFull if out cannot take the datagram's payload (nothing
// written); DecodeError if the datagram is damaged (the blocks before the damage are written, err
// says what and where).
inline Status gather_blocks(const uint8_t* data, size_t len, uint8_t* out, size_t capacity,
                            Gathered& g, WireError* err) noexcept {
    PacketReader reader;
    g = Gathered{};
    if (reader.open(data, len) != Status::Ok) {
        if (err) *err = reader.error();
        return Status::DecodeError;
    }
    if (reader.payload_length() > capacity) return Status::OutputFull;
    g.header = reader.header();
    const uint32_t announced = reader.end_of_session() ? 0 : g.header.count;
    if (plain_blocks(data, len, announced)) {
        g.blocks = uint16_t(announced);
        g.bytes = reader.payload_length();
        std::memcpy(out, reader.payload(), g.bytes);
        return Status::Ok;
    }
    // Damaged, or with empty blocks: copied block by block, up to the damage.
    const Status st = reader.check();
    const WireError damage = reader.error();
    g.blocks = reader.blocks_read();
    g.empty_blocks = reader.empty_blocks();
    reader.open(data, len);
    Block b;
    for (uint16_t i = 0; i < g.blocks && reader.next(b); ++i) {
        if (b.length == 0) continue;
        std::memcpy(out + g.bytes, data + b.offset, size_t(b.length) + 2);
        g.bytes += size_t(b.length) + 2;
    }
    if (st != Status::Ok && err) *err = damage;
    return st;
}

// A header-only packet: heartbeat (kHeartbeatCount), end of session (kEndOfSessionCount), or a
// retransmission request (count = messages wanted). OutputFull if capacity < 20.
inline Status encode_header_only(const uint8_t* session, uint64_t sequence, uint16_t count,
                                 uint8_t* out, size_t capacity, size_t* written) noexcept {
    if (capacity < kHeaderLength) return Status::OutputFull;
    put_header(out, session, sequence, count);
    *written = kHeaderLength;
    return Status::Ok;
}

// A retransmission request: exactly 20 bytes, asking for 1 to kMaxBlocks messages.
inline Status decode_request(const uint8_t* p, size_t len, Header& out, WireError* err) noexcept {
    if (len < kRequestLength) return wire::fail(err, WireProblem::Truncated, len);
    if (len > kRequestLength) return wire::fail(err, WireProblem::TrailingBytes, kRequestLength);
    get_header(p, out);
    if (out.count == 0 || out.count == kEndOfSessionCount)
        return wire::fail(err, WireProblem::BadField, 18);
    return Status::Ok;
}

}  // namespace lockstep::moldudp64
