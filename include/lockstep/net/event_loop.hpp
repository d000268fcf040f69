// Readiness over epoll, with a busy-poll mode, and pinning the calling thread to a CPU.
//
// Sockets register with a caller's token (an index into the caller's own table), so the loop
// holds no callbacks and allocates nothing per event. In busy-poll mode wait() never sleeps: it
// asks the kernel with a zero timeout and returns at once, so a pinned thread spins on its core
// and sees a datagram without a wake-up's latency, at the price of that whole core.
#pragma once

#include <sched.h>
#include <sys/epoll.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "lockstep/net/socket.hpp"

namespace lockstep::net {

inline constexpr uint32_t kReadable = EPOLLIN;
inline constexpr uint32_t kWritable = EPOLLOUT;
inline constexpr uint32_t kHangup = EPOLLHUP | EPOLLERR | EPOLLRDHUP;

class EventLoop {
public:
    // `capacity` is the most events one wait() reports.
    Status open(uint32_t capacity, bool busy_poll) {
        if (capacity == 0) {
            error_ = SysError{"capacity must be at least 1", EINVAL};
            return Status::InvalidArgument;
        }
        int fd = ::epoll_create1(EPOLL_CLOEXEC);
        if (fd < 0) return sys_fail(error_, "epoll_create1");
        epoll_ = Fd(fd);
        events_.assign(capacity, epoll_event{});
        busy_poll_ = busy_poll;
        return Status::Ok;
    }

    // Watches fd for `interest` (kReadable | kWritable); wait() reports it with `token`.
    Status add(int fd, uint32_t interest, uint64_t token) noexcept {
        return control(EPOLL_CTL_ADD, fd, interest, token, "epoll_ctl(ADD)");
    }
    Status modify(int fd, uint32_t interest, uint64_t token) noexcept {
        return control(EPOLL_CTL_MOD, fd, interest, token, "epoll_ctl(MOD)");
    }
    Status remove(int fd) noexcept {
        if (::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr) != 0)
            return sys_fail(error_, "epoll_ctl(DEL)");
        return Status::Ok;
    }

    // Waits up to timeout_ms (-1: until something is ready; ignored in busy-poll mode, which
    // never sleeps) and writes the ready sockets' tokens and readiness (k* bits); n is how many.
    Status wait(int timeout_ms, uint64_t* tokens, uint32_t* ready, size_t capacity,
                size_t& n) noexcept {
        n = 0;
        int max = int(std::min(capacity, events_.size()));
        int got = ::epoll_wait(epoll_.get(), events_.data(), max, busy_poll_ ? 0 : timeout_ms);
        if (got < 0) {
            if (errno == EINTR) return Status::Ok;
            return sys_fail(error_, "epoll_wait");
        }
        for (int i = 0; i < got; ++i) {
            tokens[i] = events_[size_t(i)].data.u64;
            ready[i] = events_[size_t(i)].events;
        }
        n = size_t(got);
        return Status::Ok;
    }

    bool busy_poll() const noexcept { return busy_poll_; }
    int fd() const noexcept { return epoll_.get(); }
    const SysError& last_error() const noexcept { return error_; }

private:
    Status control(int op, int fd, uint32_t interest, uint64_t token, const char* call) noexcept {
        epoll_event ev{};
        ev.events = interest | EPOLLRDHUP;
        ev.data.u64 = token;
        if (::epoll_ctl(epoll_.get(), op, fd, &ev) != 0) return sys_fail(error_, call);
        return Status::Ok;
    }

    Fd epoll_;
    std::vector<epoll_event> events_;
    bool busy_poll_ = false;
    SysError error_;
};

// Pins the calling thread to one CPU (a live core's socket loop keeps its caches and never
// migrates). InvalidArgument for a CPU outside this machine's set.
inline Status pin_to_cpu(int cpu, SysError& e) noexcept {
    if (cpu < 0 || cpu >= CPU_SETSIZE) {
        e = SysError{"sched_setaffinity", EINVAL};
        return Status::InvalidArgument;
    }
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (::sched_setaffinity(0, sizeof set, &set) != 0) return sys_fail(e, "sched_setaffinity");
    return Status::Ok;
}

}  // namespace lockstep::net
