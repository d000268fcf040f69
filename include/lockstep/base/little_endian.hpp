// Little-endian fixed-width writes: the byte format of every state serialization (digests), the
// same on every machine.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

namespace lockstep {

template <class T>
inline void put_le(std::string& out, T value) {
    uint8_t bytes[sizeof(T)];
    auto u = static_cast<std::make_unsigned_t<T>>(value);
    for (size_t b = 0; b < sizeof(T); ++b) bytes[b] = static_cast<uint8_t>(u >> (8 * b));
    out.append(reinterpret_cast<const char*>(bytes), sizeof(T));
}

// The same bytes into caller memory (fixed-layout records: a live session's journal).
template <class T>
inline void store_le(uint8_t* p, T value) noexcept {
    auto u = static_cast<std::make_unsigned_t<T>>(value);
    for (size_t b = 0; b < sizeof(T); ++b) p[b] = static_cast<uint8_t>(u >> (8 * b));
}

}  // namespace lockstep
