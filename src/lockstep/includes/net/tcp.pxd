# Mirrors include/lockstep/net/tcp.hpp.
from libc.stdint cimport uint8_t

from lockstep.includes.base.status cimport CStatus
from lockstep.includes.net.address cimport CEndpoint
from lockstep.includes.net.socket cimport CSysError


cdef extern from "lockstep/net/tcp.hpp" namespace "lockstep::net" nogil:
    cdef cppclass CTcpConnection "lockstep::net::TcpConnection":
        CStatus connect(const CEndpoint& remote, size_t write_capacity) except +
        CStatus finish_connect() noexcept
        CStatus read(uint8_t* buf, size_t capacity, size_t& n) noexcept
        CStatus write(const uint8_t* data, size_t n) noexcept
        CStatus flush() noexcept
        CStatus set_send_buffer(int bytes) noexcept
        size_t pending() noexcept
        size_t capacity() noexcept
        int fd() noexcept
        const CEndpoint& local() noexcept
        const CEndpoint& peer() noexcept
        const CSysError& last_error() noexcept
        void close() noexcept

    cdef cppclass CTcpListener "lockstep::net::TcpListener":
        CStatus open(const CEndpoint& local, int backlog) except +
        CStatus accept(CTcpConnection& out, size_t write_capacity) except +
        int fd() noexcept
        const CEndpoint& local() noexcept
        const CSysError& last_error() noexcept
        void close() noexcept
