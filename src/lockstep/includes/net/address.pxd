# Mirrors include/lockstep/net/address.hpp.
from libc.stdint cimport int32_t, uint16_t, uint32_t

from lockstep.includes.base.status cimport CStatus


cdef extern from "lockstep/net/address.hpp" namespace "lockstep::net" nogil:
    cdef enum class CTransport "lockstep::net::Transport"(int32_t):
        Udp, Tcp

    cdef cppclass CEndpoint "lockstep::net::Endpoint":
        CTransport transport
        uint32_t ip
        uint16_t port
        bint is_multicast() noexcept

    size_t kEndpointText
    CStatus parse_endpoint(const char* text, size_t n, CEndpoint& out, const char*& reason) noexcept
    size_t format_endpoint(const CEndpoint& e, char* out) noexcept
