// What the NASDAQ protocol codecs (moldudp64.hpp, soupbintcp.hpp, ouch42.hpp) share: the one list
// of problems a decoder reports for untrusted bytes, with the byte offset where it found it, and
// the space-padded ASCII fields of the binary protocols, and the field lists that fixed-layout
// messages (OUCH, ITCH) are encoded and decoded from.
//
// A fixed-layout message is a struct deriving from Message<type byte, length> with a static
// constexpr fields(m, f) calling f on each field in wire order: uint8_t,
// uint16_t, uint32_t, uint64_t, U48 (big-endian integers) and uint8_t[N] (bytes as they travel,
// alpha fields space-padded). The one list serves encoding, decoding and the length check, so the
// two directions cannot disagree.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "lockstep/base/big_endian.hpp"
#include "lockstep/base/status.hpp"

namespace lockstep::wire {

// Why bytes were refused. Mirrored by lockstep.enums.WireProblem.
enum class WireProblem : uint8_t {
    None = 0,
    Truncated = 1,      // the bytes end inside a header, a field or a block
    UnknownType = 2,    // a type byte the protocol does not define
    BadLength = 3,      // a length that disagrees with its type's fixed length, or zero
    Oversized = 4,      // a length above the limit the reader was given
    TrailingBytes = 5,  // bytes after everything the header announced
    BadField = 6,       // a field whose content the specification does not allow
};

inline const char* wire_problem_name(WireProblem p) noexcept {
    switch (p) {
        case WireProblem::None: return "none";
        case WireProblem::Truncated: return "truncated";
        case WireProblem::UnknownType: return "unknown_type";
        case WireProblem::BadLength: return "bad_length";
        case WireProblem::Oversized: return "oversized";
        case WireProblem::TrailingBytes: return "trailing_bytes";
        case WireProblem::BadField: return "bad_field";
    }
    return "unknown";
}

// The problem and the offset (from the start of the bytes given to the decoder, or of the stream
// for a framer) where it was found.
struct WireError {
    WireProblem problem = WireProblem::None;
    uint64_t offset = 0;
};

inline Status fail(WireError* err, WireProblem problem, uint64_t offset) noexcept {
    if (err) {
        err->problem = problem;
        err->offset = offset;
    }
    return Status::DecodeError;
}

// A numeric ASCII field: the decimal digits of v, right-justified, padded on the left with
// spaces. Returns false (nothing written) if v has more digits than the field is wide.
inline bool put_numeric(uint8_t* dst, size_t width, uint64_t v) noexcept {
    uint8_t digits[20];
    size_t n = 0;
    do {
        digits[n++] = uint8_t('0' + v % 10);
        v /= 10;
    } while (v);
    if (n > width) return false;
    size_t i = 0;
    for (; i < width - n; ++i) dst[i] = ' ';
    for (size_t k = 0; k < n; ++k) dst[i + k] = digits[n - 1 - k];
    return true;
}

// Reads a numeric ASCII field: one run of decimal digits with spaces on either side (the
// specification pads on the left; peers that pad on the right are read too). Returns false for
// anything else (no digit, another byte, a second run, a value above 2^64 - 1).
inline bool parse_numeric(const uint8_t* p, size_t width, uint64_t* out) noexcept {
    size_t i = 0;
    while (i < width && p[i] == ' ') ++i;
    if (i == width) return false;
    uint64_t v = 0;
    for (; i < width && p[i] != ' '; ++i) {
        const uint8_t c = p[i];
        if (c < '0' || c > '9') return false;
        const uint64_t d = c - '0';
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    for (; i < width; ++i)
        if (p[i] != ' ') return false;
    *out = v;
    return true;
}

// The type byte and the specification's length (type byte included) of a fixed-layout message.
template <uint8_t Type, size_t Length>
struct Message {
    static constexpr uint8_t kType = Type;
    static constexpr size_t kLength = Length;
};

// A 48-bit big-endian integer (ITCH timestamps).
struct U48 {
    uint64_t value;
};

struct FieldWriter {
    uint8_t* p;
    void operator()(uint8_t v) noexcept { *p++ = v; }
    void operator()(uint16_t v) noexcept { store_be16(p, v), p += 2; }
    void operator()(uint32_t v) noexcept { store_be32(p, v), p += 4; }
    void operator()(uint64_t v) noexcept { store_be64(p, v), p += 8; }
    void operator()(U48 v) noexcept { store_be48(p, v.value), p += 6; }
    template <size_t N>
    void operator()(const uint8_t (&a)[N]) noexcept {
        std::memcpy(p, a, N);
        p += N;
    }
};

struct FieldReader {
    const uint8_t* p;
    void operator()(uint8_t& v) noexcept { v = *p++; }
    void operator()(uint16_t& v) noexcept { v = load_be16(p), p += 2; }
    void operator()(uint32_t& v) noexcept { v = load_be32(p), p += 4; }
    void operator()(uint64_t& v) noexcept { v = load_be64(p), p += 8; }
    void operator()(U48& v) noexcept { v.value = load_be48(p), p += 6; }
    template <size_t N>
    void operator()(uint8_t (&a)[N]) noexcept {
        std::memcpy(a, p, N);
        p += N;
    }
};

struct FieldBytes {
    size_t n = 0;
    constexpr void operator()(uint8_t) noexcept { n += 1; }
    constexpr void operator()(uint16_t) noexcept { n += 2; }
    constexpr void operator()(uint32_t) noexcept { n += 4; }
    constexpr void operator()(uint64_t) noexcept { n += 8; }
    constexpr void operator()(U48) noexcept { n += 6; }
    template <size_t N>
    constexpr void operator()(const uint8_t (&)[N]) noexcept { n += N; }
};

// The wire length its field list gives a message, type byte included.
template <class M>
constexpr size_t listed_length() noexcept {
    M m{};
    FieldBytes count;
    M::fields(m, count);
    return 1 + count.n;
}

// Writes m (type byte first): OutputFull if the capacity is too small.
template <class M>
Status encode_message(const M& m, uint8_t* out, size_t capacity, size_t* written) noexcept {
    static_assert(listed_length<M>() == M::kLength, "field list disagrees with the spec length");
    if (capacity < M::kLength) return Status::OutputFull;
    out[0] = M::kType;
    M::fields(m, FieldWriter{out + 1});
    *written = M::kLength;
    return Status::Ok;
}

// Reads a message whose type byte the caller has matched to M: exactly kLength bytes, else
// Truncated (at the end of the bytes) or TrailingBytes (at kLength).
template <class M>
Status decode_message(const uint8_t* p, size_t len, M& m, WireError* err) noexcept {
    static_assert(listed_length<M>() == M::kLength, "field list disagrees with the spec length");
    if (len < M::kLength) return fail(err, WireProblem::Truncated, len);
    if (len > M::kLength) return fail(err, WireProblem::TrailingBytes, M::kLength);
    M::fields(m, FieldReader{p + 1});
    return Status::Ok;
}

// A message's fields as numbers and byte strings, in wire order: how bindings and tools reach
// any message type through one door (not the hot path).
struct Slots {
    static constexpr size_t kMax = 24;
    static constexpr size_t kMaxBytes = 128;
    size_t n = 0;
    uint64_t value[kMax] = {};  // the integer, or the offset of the field's bytes in `bytes`
    uint8_t width[kMax] = {};   // bytes on the wire
    bool is_bytes[kMax] = {};
    uint8_t bytes[kMaxBytes] = {};
    size_t nbytes = 0;
};

struct ToSlots {
    Slots& s;
    void number(uint64_t v, uint8_t width) noexcept {
        s.value[s.n] = v;
        s.width[s.n] = width;
        s.is_bytes[s.n++] = false;
    }
    void operator()(uint8_t v) noexcept { number(v, 1); }
    void operator()(uint16_t v) noexcept { number(v, 2); }
    void operator()(uint32_t v) noexcept { number(v, 4); }
    void operator()(uint64_t v) noexcept { number(v, 8); }
    void operator()(U48 v) noexcept { number(v.value, 6); }
    template <size_t N>
    void operator()(const uint8_t (&a)[N]) noexcept {
        std::memcpy(s.bytes + s.nbytes, a, N);
        s.value[s.n] = s.nbytes;
        s.width[s.n] = uint8_t(N);
        s.is_bytes[s.n++] = true;
        s.nbytes += N;
    }
};

// Reads slots laid out as ToSlots wrote them for the same type (the caller checked the layout).
struct FromSlots {
    const Slots& s;
    size_t i = 0;
    void operator()(uint8_t& v) noexcept { v = uint8_t(s.value[i++]); }
    void operator()(uint16_t& v) noexcept { v = uint16_t(s.value[i++]); }
    void operator()(uint32_t& v) noexcept { v = uint32_t(s.value[i++]); }
    void operator()(uint64_t& v) noexcept { v = s.value[i++]; }
    void operator()(U48& v) noexcept { v.value = s.value[i++] & ((uint64_t(1) << 48) - 1); }
    template <size_t N>
    void operator()(uint8_t (&a)[N]) noexcept {
        std::memcpy(a, s.bytes + s.value[i++], N);
    }
};

// A set of message types reachable by their type byte (bindings, tools; not the hot path):
// with_type(type, f) calls f.template operator()<M>() for the M whose kType is `type`, and
// answers false when none is.
template <class... M>
struct TypeSet {
    template <class F>
    static bool with_type(uint8_t type, F&& f) noexcept {
        return ((type == M::kType ? (f.template operator()<M>(), true) : false) || ...);
    }
};

// Generic access by type byte for a TypeSet.
template <class Types>
bool describe(uint8_t type, Slots& s) noexcept {
    s = Slots{};
    return Types::with_type(type, [&]<class M>() {
        M m{};
        M::fields(m, ToSlots{s});
    });
}

template <class Types>
Status encode_slots(uint8_t type, const Slots& s, uint8_t* out, size_t capacity,
                    size_t* written) noexcept {
    Status st = Status::InvalidArgument;
    Types::with_type(type, [&]<class M>() {
        M m{};
        M::fields(m, FromSlots{s});
        st = encode_message(m, out, capacity, written);
    });
    return st;
}

template <class Types>
Status decode_slots(const uint8_t* p, size_t len, Slots& s, WireError* err) noexcept {
    if (len == 0) return fail(err, WireProblem::Truncated, 0);
    Status st = Status::Ok;
    s = Slots{};
    const bool known = Types::with_type(p[0], [&]<class M>() {
        M m{};
        st = decode_message(p, len, m, err);
        if (st == Status::Ok) M::fields(m, ToSlots{s});
    });
    return known ? st : fail(err, WireProblem::UnknownType, 0);
}

}  // namespace lockstep::wire
