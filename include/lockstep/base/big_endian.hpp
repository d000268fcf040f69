// Big-endian fixed-width integers in and out of caller buffers: the byte order of NASDAQ's wire
// protocols (ITCH, OUCH, MoldUDP64, SoupBinTCP). The caller has checked the bounds; these only
// move bytes (memcpy + byte swap compiles to one load or store and a bswap).
#pragma once

#include <cstdint>
#include <cstring>

namespace lockstep {

inline uint16_t load_be16(const uint8_t* p) noexcept { return uint16_t((p[0] << 8) | p[1]); }

inline uint32_t load_be32(const uint8_t* p) noexcept {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return __builtin_bswap32(v);
}

inline uint64_t load_be64(const uint8_t* p) noexcept {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return __builtin_bswap64(v);
}

// ITCH's 6-byte timestamps.
inline uint64_t load_be48(const uint8_t* p) noexcept {
    return (uint64_t(load_be16(p)) << 32) | load_be32(p + 2);
}

inline void store_be16(uint8_t* p, uint16_t v) noexcept {
    p[0] = uint8_t(v >> 8);
    p[1] = uint8_t(v);
}

inline void store_be32(uint8_t* p, uint32_t v) noexcept {
    v = __builtin_bswap32(v);
    std::memcpy(p, &v, 4);
}

inline void store_be64(uint8_t* p, uint64_t v) noexcept {
    v = __builtin_bswap64(v);
    std::memcpy(p, &v, 8);
}

// The low 48 bits of v (ITCH timestamps are below 2^48 ns: 78 hours).
inline void store_be48(uint8_t* p, uint64_t v) noexcept {
    store_be16(p, uint16_t(v >> 32));
    store_be32(p + 2, uint32_t(v));
}

}  // namespace lockstep
