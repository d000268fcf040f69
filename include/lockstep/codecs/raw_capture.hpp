// Raw capture frames (docs/raw-format.md is the normative spec): encoding one frame header and
// walking a buffer of frames with every checksum verified.
//
// Frame = 24-byte little-endian header + payload, no padding:
//   0  int64  receive_ns
//   8  uint32 stream_id
//   12 uint32 payload_length      (<= kMaxPayload)
//   16 uint32 header_crc          CRC32C(bytes 0..16)
//   20 uint32 frame_crc           CRC32C(bytes 0..16 ++ payload)
// The header has its own checksum so a reader can trust payload_length before it trusts the
// payload: that is what tells a torn tail (a valid header whose payload runs past the end of the
// file) from a corrupt length, and what lets resync() find the next frame after damage.
//
// The file header is parsed in Python (once per file); only the per-frame work lives here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "lockstep/base/crc32c.hpp"

namespace lockstep::raw {

inline constexpr size_t kFrameHeader = 24;
inline constexpr uint32_t kMaxPayload = 1u << 26;  // 64 MiB: larger lengths are corrupt by definition

namespace detail {

inline uint32_t load32(const uint8_t* p) noexcept {
    return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}

inline uint64_t load64(const uint8_t* p) noexcept {
    return uint64_t(load32(p)) | (uint64_t(load32(p + 4)) << 32);
}

inline void store32(uint8_t* p, uint32_t v) noexcept {
    for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i));
}

inline void store64(uint8_t* p, uint64_t v) noexcept {
    for (int i = 0; i < 8; ++i) p[i] = uint8_t(v >> (8 * i));
}

}  // namespace detail

// Writes the 24-byte header of a frame carrying `payload`.
inline void encode_header(uint8_t* out, int64_t receive_ns, uint32_t stream_id,
                          const uint8_t* payload, uint32_t length) noexcept {
    detail::store64(out, uint64_t(receive_ns));
    detail::store32(out + 8, stream_id);
    detail::store32(out + 12, length);
    uint32_t hcrc = crc32c::value(out, 16);
    detail::store32(out + 16, hcrc);
    detail::store32(out + 20, crc32c::extend(hcrc, payload, length));
}

// The header at p (kFrameHeader readable bytes) passes its own checksum and length limit.
inline bool header_ok(const uint8_t* p, uint32_t& length) noexcept {
    length = detail::load32(p + 12);
    // The length test first: it rejects almost every position of a resync scan without a CRC.
    return length <= kMaxPayload && crc32c::value(p, 16) == detail::load32(p + 16);
}

enum class Stop : int32_t {
    NeedMore = 0,    // no whole frame at `pos`: read more (or, at end of file, it is a torn tail)
    OutputFull = 1,  // the output columns are full: drain them and call again from `pos`
    BadHeader = 2,   // header at `pos` fails its checksum or length limit: its length is untrusted
    BadFrame = 3,    // header at `pos` is valid, frame_crc is not: the frame spans header + length
};

struct FrameColumns {
    int64_t* receive_ns;
    uint32_t* stream_id;
    uint64_t* offset;  // of the payload, as an index into the walked buffer
    uint32_t* length;
    size_t capacity;
    size_t size;
};

struct WalkResult {
    size_t pos = 0;        // start of the first frame not consumed
    Stop stop = Stop::NeedMore;
    size_t need = 0;       // NeedMore with a valid header at pos: bytes of that whole frame
    uint32_t length = 0;   // BadFrame: its payload length
    uint32_t expected = 0; // BadHeader/BadFrame: the stored checksum
    uint32_t got = 0;      // BadHeader/BadFrame: the checksum of the bytes present
};

// Appends every whole, valid frame of buf[begin, end) to `out`, stopping at the first frame that
// is incomplete, damaged or does not fit.
inline WalkResult walk(const uint8_t* buf, size_t begin, size_t end, FrameColumns& out) noexcept {
    WalkResult r;
    size_t p = begin;
    while (true) {
        r.pos = p;
        if (end - p < kFrameHeader) {
            r.stop = Stop::NeedMore;
            return r;
        }
        const uint8_t* h = buf + p;
        uint32_t len = detail::load32(h + 12);
        uint32_t hcrc = crc32c::value(h, 16);
        if (len > kMaxPayload || hcrc != detail::load32(h + 16)) {
            r.stop = Stop::BadHeader;
            r.expected = detail::load32(h + 16);
            r.got = hcrc;
            r.length = len;
            return r;
        }
        if (end - p - kFrameHeader < len) {
            r.stop = Stop::NeedMore;
            r.need = kFrameHeader + len;
            return r;
        }
        uint32_t fcrc = crc32c::extend(hcrc, h + kFrameHeader, len);
        if (fcrc != detail::load32(h + 20)) {
            r.stop = Stop::BadFrame;
            r.expected = detail::load32(h + 20);
            r.got = fcrc;
            r.length = len;
            return r;
        }
        if (out.size == out.capacity) {
            r.stop = Stop::OutputFull;
            return r;
        }
        size_t i = out.size++;
        out.receive_ns[i] = int64_t(detail::load64(h));
        out.stream_id[i] = detail::load32(h + 8);
        out.offset[i] = p + kFrameHeader;
        out.length[i] = len;
        p += kFrameHeader + len;
    }
}

struct ResyncResult {
    size_t pos;  // found: a whole valid frame starts here; else every position before it is ruled out
    bool found;
};

// After a BadHeader: the first position in [begin, end) where a whole frame passes both checksums.
// Not found: `pos` is the first position that cannot be decided without more bytes (a valid header
// whose payload runs past `end`, or fewer than kFrameHeader bytes left), or `end`.
inline ResyncResult resync(const uint8_t* buf, size_t begin, size_t end) noexcept {
    for (size_t q = begin; q < end; ++q) {
        if (end - q < kFrameHeader) return {q, false};
        uint32_t len;
        if (!header_ok(buf + q, len)) continue;
        if (end - q - kFrameHeader < len) return {q, false};
        uint32_t hcrc = detail::load32(buf + q + 16);
        if (crc32c::extend(hcrc, buf + q + kFrameHeader, len) == detail::load32(buf + q + 20))
            return {q, true};
    }
    return {end, false};
}

}  // namespace lockstep::raw
