// Big-endian fixed-width integers in and out of caller buffers: the byte order of NASDAQ's wire
// protocols (ITCH, OUCH, MoldUDP64, SoupBinTCP). The caller has checked the bounds; these only
// move bytes (memcpy + byte swap compiles to one load or store and a bswap).
#pragma once

#include <cstdint>
#include <cstring>

namespace lockstep {

// The big-endian unsigned integer of sizeof(T) bytes at p.
template <class T>
inline T load_be(const uint8_t* p) noexcept {
    static_assert(sizeof(T) == 2 || sizeof(T) == 4 || sizeof(T) == 8);
    T v;
    std::memcpy(&v, p, sizeof v);
    if constexpr (sizeof(T) == 2) return T(__builtin_bswap16(v));
    else if constexpr (sizeof(T) == 4) return T(__builtin_bswap32(v));
    else return T(__builtin_bswap64(v));
}

template <class T>
inline void store_be(uint8_t* p, T v) noexcept {
    static_assert(sizeof(T) == 2 || sizeof(T) == 4 || sizeof(T) == 8);
    if constexpr (sizeof(T) == 2) v = T(__builtin_bswap16(v));
    else if constexpr (sizeof(T) == 4) v = T(__builtin_bswap32(v));
    else v = T(__builtin_bswap64(v));
    std::memcpy(p, &v, sizeof v);
}

inline uint16_t load_be16(const uint8_t* p) noexcept { return load_be<uint16_t>(p); }
inline uint32_t load_be32(const uint8_t* p) noexcept { return load_be<uint32_t>(p); }
inline uint64_t load_be64(const uint8_t* p) noexcept { return load_be<uint64_t>(p); }
inline void store_be16(uint8_t* p, uint16_t v) noexcept { store_be(p, v); }
inline void store_be32(uint8_t* p, uint32_t v) noexcept { store_be(p, v); }
inline void store_be64(uint8_t* p, uint64_t v) noexcept { store_be(p, v); }

// ITCH's 6-byte timestamps (below 2^48 ns: 78 hours).
inline uint64_t load_be48(const uint8_t* p) noexcept {
    return (uint64_t(load_be16(p)) << 32) | load_be32(p + 2);
}

inline void store_be48(uint8_t* p, uint64_t v) noexcept {
    store_be16(p, uint16_t(v >> 32));
    store_be32(p + 2, uint32_t(v));
}

}  // namespace lockstep
