# Mirrors include/lockstep/net/event_loop.hpp.
from libc.stdint cimport uint32_t, uint64_t

from lockstep.includes.base.status cimport CStatus
from lockstep.includes.net.socket cimport CSysError


cdef extern from "lockstep/net/event_loop.hpp" namespace "lockstep::net" nogil:
    uint32_t kReadable, kWritable, kHangup

    cdef cppclass CEventLoop "lockstep::net::EventLoop":
        CStatus open(uint32_t capacity, bint busy_poll) except +
        CStatus add(int fd, uint32_t interest, uint64_t token) noexcept
        CStatus modify(int fd, uint32_t interest, uint64_t token) noexcept
        CStatus remove(int fd) noexcept
        CStatus wait(int timeout_ms, uint64_t* tokens, uint32_t* ready, size_t capacity,
                     size_t& n) noexcept
        bint busy_poll() noexcept
        int fd() noexcept
        const CSysError& last_error() noexcept

    CStatus pin_to_cpu(int cpu, CSysError& e) noexcept
