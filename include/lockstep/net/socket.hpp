// What every socket of the layer shares: fd ownership, the error record, socket options.
//
// The net layer is the only code that touches the kernel's socket API. Codecs take and return
// bytes and never see a socket, so a kernel-bypass library (ef_vi, DPDK, io_uring) can replace
// these headers without touching them. Setup (open, bind, join, listen, connect) may allocate;
// receive, send, read and write never do, are noexcept and return a Status with the errno kept in
// the socket's last_error().
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <utility>

#include "lockstep/base/status.hpp"
#include "lockstep/net/address.hpp"

namespace lockstep::net {

// Owns one file descriptor and closes it once; move-only.
class Fd {
public:
    Fd() noexcept = default;
    explicit Fd(int fd) noexcept : fd_(fd) {}
    Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    Fd& operator=(Fd&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }

    int get() const noexcept { return fd_; }
    bool valid() const noexcept { return fd_ >= 0; }
    void reset() noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_ = -1;
};

// The failed operating-system call behind a Status::SystemError: its name and errno.
struct SysError {
    const char* call = "";
    int err = 0;
};

// Records the failing call with the current errno and returns Status::SystemError.
inline Status sys_fail(SysError& e, const char* call) noexcept {
    e.call = call;
    e.err = errno;
    return Status::SystemError;
}

inline sockaddr_in to_sockaddr(const Endpoint& e) noexcept {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(e.port);
    a.sin_addr.s_addr = htonl(e.ip);
    return a;
}

inline Endpoint from_sockaddr(const sockaddr_in& a, Transport t) noexcept {
    return Endpoint{t, ntohl(a.sin_addr.s_addr), ntohs(a.sin_port)};
}

// A new non-blocking, close-on-exec IPv4 socket of the transport's type.
inline Status open_socket(Transport t, Fd& out, SysError& e) noexcept {
    int type = (t == Transport::Tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC;
    int fd = ::socket(AF_INET, type, 0);
    if (fd < 0) return sys_fail(e, "socket");
    out = Fd(fd);
    return Status::Ok;
}

inline Status set_int_option(int fd, int level, int name, int value, SysError& e,
                             const char* call) noexcept {
    if (::setsockopt(fd, level, name, &value, sizeof value) != 0) return sys_fail(e, call);
    return Status::Ok;
}

inline int get_int_option(int fd, int level, int name) noexcept {
    int value = -1;
    socklen_t len = sizeof value;
    return ::getsockopt(fd, level, name, &value, &len) == 0 ? value : -1;
}

// Asks for `bytes` of kernel buffer: the privileged *FORCE option first (it may exceed
// net.core.[rw]mem_max), else the ordinary one, which the kernel caps silently. 0 leaves it alone.
inline Status set_buffer_size(int fd, bool receive, int bytes, SysError& e) noexcept {
    if (bytes <= 0) return Status::Ok;
    int forced = receive ? SO_RCVBUFFORCE : SO_SNDBUFFORCE;
    if (::setsockopt(fd, SOL_SOCKET, forced, &bytes, sizeof bytes) == 0) return Status::Ok;
    return set_int_option(fd, SOL_SOCKET, receive ? SO_RCVBUF : SO_SNDBUF, bytes, e,
                          receive ? "setsockopt(SO_RCVBUF)" : "setsockopt(SO_SNDBUF)");
}

inline Status bind_endpoint(int fd, const Endpoint& local, SysError& e) noexcept {
    sockaddr_in a = to_sockaddr(local);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) return sys_fail(e, "bind");
    return Status::Ok;
}

// The address the socket is bound to (the real port where 0 was asked).
inline Status local_endpoint(int fd, Transport t, Endpoint& out, SysError& e) noexcept {
    sockaddr_in a{};
    socklen_t len = sizeof a;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
        return sys_fail(e, "getsockname");
    out = from_sockaddr(a, t);
    return Status::Ok;
}

}  // namespace lockstep::net
