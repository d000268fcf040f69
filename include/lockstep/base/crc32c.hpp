// CRC32C (Castagnoli, reflected polynomial 0x82F63B78, init and final xor 0xFFFFFFFF: the iSCSI /
// RFC 3720 checksum) for the raw capture format.
//
// Two implementations with identical results: the SSE4.2 `crc32` instruction, chosen at run time
// (a target-attribute function, so a wheel compiled for baseline x86-64 still uses it), and a
// portable slice-by-8 table walk for every other CPU. extend() continues a checksum the way zlib's
// crc32(crc, data) does: extend(extend(0, a), b) == value(a + b).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define LOCKSTEP_CRC32C_X86 1
#include <nmmintrin.h>
#endif

namespace lockstep::crc32c {

enum class Impl : int32_t { Auto = 0, Portable = 1, Sse42 = 2 };

namespace detail {

inline constexpr uint32_t kPoly = 0x82F63B78u;

struct Tables {
    uint32_t t[8][256];
};

constexpr Tables make_tables() {
    Tables tb{};
    for (uint32_t i = 0; i < 256; ++i) {
        uint32_t c = i;
        for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (kPoly & (0u - (c & 1u)));
        tb.t[0][i] = c;
    }
    for (int k = 1; k < 8; ++k)
        for (uint32_t i = 0; i < 256; ++i)
            tb.t[k][i] = (tb.t[k - 1][i] >> 8) ^ tb.t[0][tb.t[k - 1][i] & 0xFFu];
    return tb;
}

inline constexpr Tables kTables = make_tables();

inline uint32_t load_le32(const uint8_t* p) noexcept {
    return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}

// `state` is the running register (already inverted), as are the results.
inline uint32_t portable(uint32_t state, const uint8_t* p, size_t n) noexcept {
    const auto& t = kTables.t;
    while (n >= 8) {
        uint32_t lo = load_le32(p) ^ state;
        uint32_t hi = load_le32(p + 4);
        state = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^
                t[3][hi & 0xFF] ^ t[2][(hi >> 8) & 0xFF] ^ t[1][(hi >> 16) & 0xFF] ^ t[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--) state = (state >> 8) ^ t[0][(state ^ *p++) & 0xFF];
    return state;
}

#ifdef LOCKSTEP_CRC32C_X86
__attribute__((target("sse4.2"))) inline uint32_t sse42(uint32_t state, const uint8_t* p,
                                                         size_t n) noexcept {
    uint64_t c = state;
    // Unaligned 8-byte loads are fine on x86; the byte loop only handles the tail.
    while (n >= 32) {
        uint64_t v[4];
        std::memcpy(v, p, 32);
        c = _mm_crc32_u64(c, v[0]);
        c = _mm_crc32_u64(c, v[1]);
        c = _mm_crc32_u64(c, v[2]);
        c = _mm_crc32_u64(c, v[3]);
        p += 32;
        n -= 32;
    }
    while (n >= 8) {
        uint64_t v;
        std::memcpy(&v, p, 8);
        c = _mm_crc32_u64(c, v);
        p += 8;
        n -= 8;
    }
    uint32_t s = uint32_t(c);
    while (n--) s = _mm_crc32_u8(s, *p++);
    return s;
}
#endif

inline bool detect_sse42() noexcept {
#ifdef LOCKSTEP_CRC32C_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2");
#else
    return false;
#endif
}

}  // namespace detail

// True when this CPU runs the hardware path (Impl::Auto then uses it).
inline bool hardware_available() noexcept {
    static const bool available = detail::detect_sse42();
    return available;
}

// Continues `crc` (a finished CRC32C value; 0 to start) over n bytes. Impl::Sse42 on a CPU without
// SSE4.2 falls back to the portable path rather than faulting.
inline uint32_t extend(uint32_t crc, const void* data, size_t n, Impl impl = Impl::Auto) noexcept {
    const auto* p = static_cast<const uint8_t*>(data);
    uint32_t state = ~crc;
#ifdef LOCKSTEP_CRC32C_X86
    if (impl != Impl::Portable && hardware_available()) return ~detail::sse42(state, p, n);
#else
    (void)impl;
#endif
    return ~detail::portable(state, p, n);
}

inline uint32_t value(const void* data, size_t n, Impl impl = Impl::Auto) noexcept {
    return extend(0, data, n, impl);
}

}  // namespace lockstep::crc32c
