// Socket addresses as configs spell them: "udp://HOST:PORT" and "tcp://HOST:PORT".
//
// HOST is a dotted IPv4 address or "localhost" (127.0.0.1); names are never resolved, so parsing
// never blocks on DNS. Port 0 asks the kernel for any free port; the socket reports the port it
// got (local_endpoint). A UDP host in 224.0.0.0/4 is a multicast group.
#pragma once

#if !defined(__linux__)
#error "lockstep/net needs Linux (recvmmsg, sendmmsg, epoll); another OS needs its own socket layer"
#endif

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "lockstep/base/status.hpp"

namespace lockstep::net {

enum class Transport : int32_t { Udp = 1, Tcp = 2 };

inline const char* transport_scheme(Transport t) noexcept {
    return t == Transport::Tcp ? "tcp" : "udp";
}

struct Endpoint {
    Transport transport = Transport::Udp;
    uint32_t ip = 0x7F000001;  // host byte order; loopback unless a config says otherwise
    uint16_t port = 0;

    bool is_multicast() const noexcept { return (ip >> 28) == 0xE; }
};

// Longest text format_endpoint writes, terminator included: "tcp://255.255.255.255:65535".
inline constexpr size_t kEndpointText = 32;

namespace detail {

// Parses the digits of text[begin, end) as a decimal number no greater than max.
inline bool parse_decimal(const char* text, size_t begin, size_t end, uint32_t max,
                          uint32_t& out) noexcept {
    if (begin == end || end - begin > 5) return false;
    uint32_t v = 0;
    for (size_t i = begin; i < end; ++i) {
        if (text[i] < '0' || text[i] > '9') return false;
        v = v * 10 + uint32_t(text[i] - '0');
    }
    if (v > max) return false;
    out = v;
    return true;
}

inline bool parse_ipv4(const char* text, size_t begin, size_t end, uint32_t& out) noexcept {
    if (end - begin == 9 && std::memcmp(text + begin, "localhost", 9) == 0) {
        out = 0x7F000001;
        return true;
    }
    uint32_t ip = 0;
    int parts = 0;
    size_t start = begin;
    for (size_t i = begin; i <= end; ++i) {
        if (i < end && text[i] != '.') continue;
        uint32_t octet = 0;
        if (parts == 4 || !parse_decimal(text, start, i, 255, octet)) return false;
        if (i - start > 1 && text[start] == '0') return false;  // "010" would read as octal elsewhere
        ip = (ip << 8) | octet;
        ++parts;
        start = i + 1;
    }
    if (parts != 4) return false;
    out = ip;
    return true;
}

}  // namespace detail

// Parses text[0, n) into out. On a bad address returns Status::BadAddress with `reason` saying
// what was wrong; out is untouched.
inline Status parse_endpoint(const char* text, size_t n, Endpoint& out,
                             const char*& reason) noexcept {
    Transport transport;
    if (n >= 6 && std::memcmp(text, "udp://", 6) == 0) {
        transport = Transport::Udp;
    } else if (n >= 6 && std::memcmp(text, "tcp://", 6) == 0) {
        transport = Transport::Tcp;
    } else {
        reason = "expected udp://HOST:PORT or tcp://HOST:PORT";
        return Status::BadAddress;
    }
    size_t colon = n;
    while (colon > 6 && text[colon - 1] != ':') --colon;
    if (colon == 6) {
        reason = "missing :PORT";
        return Status::BadAddress;
    }
    uint32_t port = 0;
    if (!detail::parse_decimal(text, colon, n, 65535, port)) {
        reason = "the port is not a number from 0 to 65535";
        return Status::BadAddress;
    }
    uint32_t ip = 0;
    if (!detail::parse_ipv4(text, 6, colon - 1, ip)) {
        reason = "the host is not a dotted IPv4 address or localhost (names are not resolved)";
        return Status::BadAddress;
    }
    Endpoint e{transport, ip, uint16_t(port)};
    if (transport == Transport::Tcp && e.is_multicast()) {
        reason = "a multicast group is a UDP address";
        return Status::BadAddress;
    }
    out = e;
    return Status::Ok;
}

// Writes "udp://A.B.C.D:PORT" (at most kEndpointText bytes, terminated); returns its length.
inline size_t format_endpoint(const Endpoint& e, char* out) noexcept {
    int n = std::snprintf(out, kEndpointText, "%s://%u.%u.%u.%u:%u", transport_scheme(e.transport),
                          (e.ip >> 24) & 0xFF, (e.ip >> 16) & 0xFF, (e.ip >> 8) & 0xFF,
                          e.ip & 0xFF, unsigned(e.port));
    return n < 0 ? 0 : size_t(n);
}

}  // namespace lockstep::net
