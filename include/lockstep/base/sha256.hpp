// SHA-256 (FIPS 180-4), incremental: the live core hashes its outputs as it makes them, in the
// thread that applies the inputs, so no return to Python is needed for the digest.
//
// Two compressions with identical results, as for CRC32C (crc32c.hpp): the x86 SHA extensions,
// chosen at run time (a target-attribute function, so a wheel built for baseline x86-64 still
// uses them), and portable C++ for every other CPU.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define LOCKSTEP_SHA256_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace lockstep {

namespace sha256_detail {

inline constexpr uint32_t kRound[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

inline uint32_t rotr(uint32_t x, int n) noexcept { return (x >> n) | (x << (32 - n)); }

inline void portable(uint32_t state[8], const uint8_t* p, size_t blocks) noexcept {
    for (; blocks; --blocks, p += 64) {
        uint32_t w[64];
        for (int i = 0; i < 16; ++i)
            w[i] = uint32_t(p[4 * i]) << 24 | uint32_t(p[4 * i + 1]) << 16 |
                   uint32_t(p[4 * i + 2]) << 8 | uint32_t(p[4 * i + 3]);
        for (int i = 16; i < 64; ++i) {
            const uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
            const uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        uint32_t a = state[0], b = state[1], c = state[2], d = state[3], e = state[4],
                 f = state[5], g = state[6], h = state[7];
        for (int i = 0; i < 64; ++i) {
            const uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) +
                                kRound[i] + w[i];
            const uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            h = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
        }
        state[0] += a, state[1] += b, state[2] += c, state[3] += d;
        state[4] += e, state[5] += f, state[6] += g, state[7] += h;
    }
}

#ifdef LOCKSTEP_SHA256_X86
// The state lives as two vectors, ABEF and CDGH (what sha256rnds2 takes); each step of the loop
// schedules four message words (sha256msg1 / msg2) and runs four rounds (two rnds2).
__attribute__((target("sha,sse4.1,ssse3"))) inline void shani(uint32_t state[8], const uint8_t* p,
                                                             size_t blocks) noexcept {
    const __m128i byteswap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
    __m128i dcba = _mm_loadu_si128(reinterpret_cast<const __m128i*>(state));
    __m128i hgfe = _mm_loadu_si128(reinterpret_cast<const __m128i*>(state + 4));
    const __m128i cdab = _mm_shuffle_epi32(dcba, 0xB1);
    const __m128i efgh = _mm_shuffle_epi32(hgfe, 0x1B);
    __m128i abef = _mm_alignr_epi8(cdab, efgh, 8);
    __m128i cdgh = _mm_blend_epi16(efgh, cdab, 0xF0);
    for (; blocks; --blocks, p += 64) {
        const __m128i abef_in = abef, cdgh_in = cdgh;
        __m128i w[4];
        for (int g = 0; g < 16; ++g) {
            __m128i& cur = w[g & 3];
            if (g < 4) {
                cur = _mm_shuffle_epi8(
                    _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * g)), byteswap);
            } else {
                const __m128i& prev = w[(g - 1) & 3];
                __m128i x = _mm_sha256msg1_epu32(cur, w[(g - 3) & 3]);
                x = _mm_add_epi32(x, _mm_alignr_epi8(prev, w[(g - 2) & 3], 4));
                cur = _mm_sha256msg2_epu32(x, prev);
            }
            __m128i m = _mm_add_epi32(
                cur, _mm_loadu_si128(reinterpret_cast<const __m128i*>(kRound + 4 * g)));
            cdgh = _mm_sha256rnds2_epu32(cdgh, abef, m);
            m = _mm_shuffle_epi32(m, 0x0E);
            abef = _mm_sha256rnds2_epu32(abef, cdgh, m);
        }
        abef = _mm_add_epi32(abef, abef_in);
        cdgh = _mm_add_epi32(cdgh, cdgh_in);
    }
    const __m128i feba = _mm_shuffle_epi32(abef, 0x1B);
    const __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);
    dcba = _mm_blend_epi16(feba, dchg, 0xF0);
    hgfe = _mm_alignr_epi8(dchg, feba, 8);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(state), dcba);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(state + 4), hgfe);
}
#endif

inline bool detect_shani() noexcept {
#ifdef LOCKSTEP_SHA256_X86
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSE4_1) || !(c & bit_SSSE3)) return false;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    return (b & bit_SHA) != 0;
#else
    return false;
#endif
}

}  // namespace sha256_detail

class Sha256 {
public:
    static constexpr size_t kDigestBytes = 32;

    // True when this CPU has the SHA extensions (a Sha256 then uses them unless told not to).
    static bool hardware_available() noexcept {
        static const bool available = sha256_detail::detect_shani();
        return available;
    }

    explicit Sha256(bool use_hardware = true) noexcept
        : hardware_(use_hardware && hardware_available()) {
        reset();
    }

    void reset() noexcept {
        static constexpr uint32_t kInitial[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                                 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
        std::memcpy(state_, kInitial, sizeof state_);
        length_ = 0;
        pending_ = 0;
    }

    void update(const void* data, size_t n) noexcept {
        if (n == 0) return;
        const uint8_t* p = static_cast<const uint8_t*>(data);
        length_ += n;
        if (pending_) {
            const size_t take = n < 64 - pending_ ? n : 64 - pending_;
            std::memcpy(block_ + pending_, p, take);
            pending_ += take;
            p += take;
            n -= take;
            if (pending_ < 64) return;
            compress(block_, 1);
            pending_ = 0;
        }
        if (n >= 64) {
            compress(p, n / 64);
            p += n & ~size_t(63);
            n &= 63;
        }
        if (n) std::memcpy(block_, p, n);
        pending_ = n;
    }

    // The digest of everything hashed so far; the hash goes on (a copy is finished).
    void digest(uint8_t out[kDigestBytes]) const noexcept {
        Sha256 h = *this;
        const uint64_t bits = h.length_ * 8;
        static constexpr uint8_t kPad[64] = {0x80};
        h.update(kPad, h.pending_ < 56 ? 56 - h.pending_ : 120 - h.pending_);
        uint8_t tail[8];
        for (int i = 0; i < 8; ++i) tail[i] = uint8_t(bits >> (56 - 8 * i));
        h.update(tail, 8);
        for (int i = 0; i < 8; ++i)
            for (int k = 0; k < 4; ++k) out[4 * i + k] = uint8_t(h.state_[i] >> (24 - 8 * k));
    }

private:
    void compress(const uint8_t* p, size_t blocks) noexcept {
#ifdef LOCKSTEP_SHA256_X86
        if (hardware_) return sha256_detail::shani(state_, p, blocks);
#endif
        sha256_detail::portable(state_, p, blocks);
    }

    uint32_t state_[8];
    uint64_t length_;
    uint8_t block_[64];
    size_t pending_;
    bool hardware_;
};

}  // namespace lockstep
