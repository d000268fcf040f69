// The two clocks the C++ parts read, in int64 nanoseconds. CLOCK_REALTIME is the clock of every
// receive stamp (the kernel stamps datagrams with it, so the live loop, the recorder and the
// probes read it too, and their stamps compare); CLOCK_MONOTONIC times intervals (fsync cadence,
// spins) that must not jump with the wall clock. Nothing here may reach State in a backtest or a
// replay: only callers that journal what they read (the live node's receive stamps) or only
// measure use them.
#pragma once

#include <time.h>

#include <cstdint>

namespace lockstep {

inline int64_t realtime_ns() noexcept {
    timespec ts;
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

inline int64_t monotonic_ns() noexcept {
    timespec ts;
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace lockstep
