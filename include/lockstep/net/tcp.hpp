// TCP: a listener that accepts, and a connection with TCP_NODELAY, reads into caller memory and a
// bounded write buffer.
//
// A write is taken whole or refused whole (Status::OutputFull, nothing taken), so a protocol's
// message is never half queued: what the kernel does not take now waits in the connection's
// buffer, in order, until flush() finds the socket writable. The buffer's capacity is the most a
// slow peer can make us hold; a caller that meets OutputFull decides what to do (wait, or drop the
// peer), nothing grows.
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "lockstep/net/socket.hpp"

namespace lockstep::net {

class TcpConnection {
public:
    // Starts a non-blocking connect to `remote`. Ok when connected at once, WouldBlock while the
    // handshake runs: wait until the socket is writable, then call finish_connect().
    Status connect(const Endpoint& remote, size_t write_capacity) {
        if (Status s = open_socket(Transport::Tcp, fd_, error_); s != Status::Ok) return s;
        if (Status s = prepare(write_capacity); s != Status::Ok) return s;
        sockaddr_in a = to_sockaddr(remote);
        peer_ = remote;
        if (::connect(fd_.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0)
            return finish_connect();
        if (errno == EINPROGRESS) return Status::WouldBlock;
        return sys_fail(error_, "connect");
    }

    // The outcome of a connect in progress: Ok, WouldBlock (still running) or the refusal.
    Status finish_connect() noexcept {
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            return sys_fail(error_, "getsockopt(SO_ERROR)");
        if (err == EINPROGRESS || err == EALREADY) return Status::WouldBlock;
        if (err != 0) {
            error_ = SysError{"connect", err};
            return Status::SystemError;
        }
        sockaddr_in a{};
        socklen_t alen = sizeof a;
        if (::getpeername(fd_.get(), reinterpret_cast<sockaddr*>(&a), &alen) != 0) {
            if (errno == ENOTCONN) return Status::WouldBlock;
            return sys_fail(error_, "getpeername");
        }
        return local_endpoint(fd_.get(), Transport::Tcp, local_, error_);
    }

    // Takes over an accepted socket.
    Status adopt(Fd fd, const Endpoint& peer, size_t write_capacity) {
        fd_ = std::move(fd);
        peer_ = peer;
        if (Status s = prepare(write_capacity); s != Status::Ok) return s;
        return local_endpoint(fd_.get(), Transport::Tcp, local_, error_);
    }

    // Reads what has arrived, at most `capacity` bytes, into buf: Ok with n > 0, WouldBlock with
    // n = 0 when nothing has, PeerClosed once the peer has closed (or reset) the connection.
    Status read(uint8_t* buf, size_t capacity, size_t& n) noexcept {
        n = 0;
        for (;;) {
            ssize_t r = ::recv(fd_.get(), buf, capacity, MSG_DONTWAIT);
            if (r > 0) {
                n = size_t(r);
                return Status::Ok;
            }
            if (r == 0) return capacity == 0 ? Status::Ok : Status::PeerClosed;
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return Status::WouldBlock;
            if (errno == ECONNRESET) {
                sys_fail(error_, "recv");
                return Status::PeerClosed;
            }
            return sys_fail(error_, "recv");
        }
    }

    // Sends data[0, n) or queues what the kernel does not take now. OutputFull (nothing taken)
    // when the bytes already waiting plus n exceed the write capacity.
    Status write(const uint8_t* data, size_t n) noexcept {
        if (n > capacity() - pending()) return Status::OutputFull;
        if (pending() > 0) {
            if (Status s = flush(); s != Status::Ok && s != Status::WouldBlock) return s;
        }
        size_t done = 0;
        if (pending() == 0) {  // nothing queued ahead: straight to the kernel
            Status s = send_some(data, n, done);
            if (s != Status::Ok && s != Status::WouldBlock) return s;
        }
        enqueue(data + done, n - done);
        return Status::Ok;
    }

    // Sends what waits in the write buffer: Ok when it is empty, WouldBlock while some remains.
    Status flush() noexcept {
        while (head_ < tail_) {
            size_t done = 0;
            Status s = send_some(buffer_.data() + head_, tail_ - head_, done);
            head_ += done;
            if (s != Status::Ok) return s;
        }
        head_ = tail_ = 0;
        return Status::Ok;
    }

    // Sets SO_SNDBUF (a small one makes the kernel take less at once, so more waits with us).
    Status set_send_buffer(int bytes) noexcept {
        return set_buffer_size(fd_.get(), false, bytes, error_);
    }

    size_t pending() const noexcept { return tail_ - head_; }
    size_t capacity() const noexcept { return buffer_.size(); }
    int fd() const noexcept { return fd_.get(); }
    const Endpoint& local() const noexcept { return local_; }
    const Endpoint& peer() const noexcept { return peer_; }
    const SysError& last_error() const noexcept { return error_; }
    void close() noexcept { fd_.reset(); }

private:
    Status prepare(size_t write_capacity) {
        if (Status s = set_int_option(fd_.get(), IPPROTO_TCP, TCP_NODELAY, 1, error_,
                                      "setsockopt(TCP_NODELAY)"); s != Status::Ok)
            return s;
        buffer_.assign(write_capacity, 0);
        head_ = tail_ = 0;
        return Status::Ok;
    }

    // One send() (retried on EINTR): Ok when all n went, WouldBlock when the kernel took `done` < n.
    Status send_some(const uint8_t* data, size_t n, size_t& done) noexcept {
        done = 0;
        while (done < n) {
            ssize_t r = ::send(fd_.get(), data + done, n - done, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (r >= 0) {
                done += size_t(r);
                continue;
            }
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return Status::WouldBlock;
            if (errno == EPIPE || errno == ECONNRESET) {
                sys_fail(error_, "send");
                return Status::PeerClosed;
            }
            return sys_fail(error_, "send");
        }
        return Status::Ok;
    }

    void enqueue(const uint8_t* data, size_t n) noexcept {
        if (n == 0) return;
        if (tail_ + n > buffer_.size()) {  // slide the waiting bytes to the front
            std::memmove(buffer_.data(), buffer_.data() + head_, tail_ - head_);
            tail_ -= head_;
            head_ = 0;
        }
        std::memcpy(buffer_.data() + tail_, data, n);
        tail_ += n;
    }

    Fd fd_;
    Endpoint local_;
    Endpoint peer_;
    std::vector<uint8_t> buffer_;
    size_t head_ = 0;
    size_t tail_ = 0;
    SysError error_;
};

class TcpListener {
public:
    Status open(const Endpoint& local, int backlog = 64) {
        if (Status s = open_socket(Transport::Tcp, fd_, error_); s != Status::Ok) return s;
        // A restarted venue can bind its port again while old connections sit in TIME_WAIT.
        if (Status s = set_int_option(fd_.get(), SOL_SOCKET, SO_REUSEADDR, 1, error_,
                                      "setsockopt(SO_REUSEADDR)"); s != Status::Ok)
            return s;
        if (Status s = bind_endpoint(fd_.get(), local, error_); s != Status::Ok) return s;
        if (::listen(fd_.get(), backlog) != 0) return sys_fail(error_, "listen");
        return local_endpoint(fd_.get(), Transport::Tcp, local_, error_);
    }

    // Accepts one waiting connection into `out` (non-blocking, TCP_NODELAY): Ok, or WouldBlock
    // when none waits.
    Status accept(TcpConnection& out, size_t write_capacity) {
        sockaddr_in a{};
        socklen_t len = sizeof a;
        for (;;) {
            int fd = ::accept4(fd_.get(), reinterpret_cast<sockaddr*>(&a), &len,
                               SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd >= 0) return out.adopt(Fd(fd), from_sockaddr(a, Transport::Tcp), write_capacity);
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return Status::WouldBlock;
            return sys_fail(error_, "accept4");
        }
    }

    int fd() const noexcept { return fd_.get(); }
    const Endpoint& local() const noexcept { return local_; }
    const SysError& last_error() const noexcept { return error_; }
    void close() noexcept { fd_.reset(); }

private:
    Fd fd_;
    Endpoint local_;
    SysError error_;
};

}  // namespace lockstep::net
