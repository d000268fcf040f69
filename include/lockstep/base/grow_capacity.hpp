// Growth of a reused buffer without exceptions: hot code that appends to scratch or a window
// reserves more itself and turns out-of-memory into a status.
#pragma once

namespace lockstep {

// Doubles a vector's capacity (false: out of memory), so a reused buffer grows to the largest
// need once and stays there.
template <class V>
bool grow_capacity(V& v) noexcept {
    try {
        v.reserve(v.capacity() < 64 ? 128 : v.capacity() * 2);
        return true;
    } catch (...) {
        return false;
    }
}

}  // namespace lockstep
