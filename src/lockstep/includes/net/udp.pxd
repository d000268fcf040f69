# Mirrors include/lockstep/net/udp.hpp.
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t

from lockstep.includes.base.status cimport CStatus
from lockstep.includes.net.address cimport CEndpoint
from lockstep.includes.net.socket cimport CSysError


cdef extern from "lockstep/net/udp.hpp" namespace "lockstep::net" nogil:
    cdef enum class CStampSource "lockstep::net::StampSource"(uint8_t):
        Kernel, UserClock

    uint8_t kDatagramTruncated

    cdef cppclass CUdpOptions "lockstep::net::UdpOptions":
        uint32_t batch
        bint kernel_timestamps
        int receive_buffer
        int send_buffer
        uint32_t interface_ip
        bint multicast_loop

    cdef cppclass CDatagrams "lockstep::net::Datagrams":
        uint8_t* data
        size_t slot_bytes
        size_t capacity
        uint32_t* length
        int64_t* stamp_ns
        uint8_t* stamp_source
        uint8_t* flags
        uint32_t* peer_ip
        uint16_t* peer_port

    cdef cppclass CUdpStats "lockstep::net::UdpStats":
        uint64_t received, truncated, user_stamped, kernel_drops, sent, send_blocked

    cdef cppclass CUdpSocket "lockstep::net::UdpSocket":
        CStatus open(const CEndpoint& local, const CUdpOptions& options) except +
        CStatus set_destination(const CEndpoint& to) noexcept
        CStatus receive(const CDatagrams& out, size_t& count, size_t most) noexcept
        CStatus send(const uint8_t* data, const uint32_t* length, size_t n, size_t& sent) noexcept
        CStatus send_to(const uint8_t* data, size_t n, const CEndpoint& to) noexcept
        int fd() noexcept
        const CEndpoint& local() noexcept
        bint kernel_stamps() noexcept
        const CUdpStats& stats() noexcept
        const CSysError& last_error() noexcept
        void close() noexcept
