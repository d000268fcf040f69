// UDP in batches: recvmmsg into caller memory with a receive stamp per datagram, sendmmsg out.
//
// The receive stamp is the only clock the live path reads. The kernel's (SO_TIMESTAMPNS, taken
// when the datagram reached the socket) is used where the kernel gives one; otherwise the
// datagram is stamped from CLOCK_REALTIME right after recvmmsg returns, the same clock the
// kernel's stamp uses, and flagged as such (StampSource::UserClock), so a journal always says
// which clock stamped what. A receive call reads that clock at most once for its whole batch.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <cstring>
#include <cstdint>
#include <vector>

#include "lockstep/base/clock.hpp"
#include "lockstep/net/socket.hpp"

namespace lockstep::net {

enum class StampSource : uint8_t { Kernel = 0, UserClock = 1 };

// Per-datagram flags of a receive.
inline constexpr uint8_t kDatagramTruncated = 1;  // longer than its slot: the tail was cut off

struct UdpOptions {
    uint32_t batch = 64;            // datagrams per recvmmsg/sendmmsg call (1..1024)
    bool kernel_timestamps = true;  // false: stamp every datagram from the user-space clock
    int receive_buffer = 0;         // SO_RCVBUF bytes; 0 keeps the kernel default
    int send_buffer = 0;            // SO_SNDBUF bytes; 0 keeps the kernel default
    uint32_t interface_ip = 0x7F000001;  // multicast: the interface that joins and sends (loopback)
    bool multicast_loop = true;     // multicast: deliver our own sends to local receivers
};

// Caller memory one receive fills, `capacity` rows: datagram i is data[i * slot_bytes, + length[i]).
struct Datagrams {
    uint8_t* data = nullptr;
    size_t slot_bytes = 0;
    size_t capacity = 0;
    uint32_t* length = nullptr;
    int64_t* stamp_ns = nullptr;
    uint8_t* stamp_source = nullptr;  // StampSource
    uint8_t* flags = nullptr;         // kDatagram* bits
    uint32_t* peer_ip = nullptr;      // the sender, host byte order
    uint16_t* peer_port = nullptr;
};

struct UdpStats {
    uint64_t received = 0;       // datagrams
    uint64_t truncated = 0;      // datagrams longer than their slot
    uint64_t user_stamped = 0;   // datagrams stamped from the user-space clock
    uint64_t kernel_drops = 0;   // datagrams the kernel dropped on a full receive buffer (SO_RXQ_OVFL)
    uint64_t sent = 0;           // datagrams
    uint64_t send_blocked = 0;   // send calls that found the send buffer full
};

class UdpSocket {
public:
    // Binds to `local` (port 0: any free port). A multicast group is bound and joined on
    // options.interface_ip. Allocates the batch's message headers; nothing after this does.
    Status open(const Endpoint& local, const UdpOptions& options) {
        options_ = options;
        if (options.batch == 0 || options.batch > 1024) {
            error_ = SysError{"batch must be 1..1024", EINVAL};
            return Status::InvalidArgument;
        }
        if (Status s = open_socket(Transport::Udp, fd_, error_); s != Status::Ok) return s;
        int fd = fd_.get();
        if (local.is_multicast()) {  // several local receivers may share a group and port
            if (Status s = set_int_option(fd, SOL_SOCKET, SO_REUSEADDR, 1, error_,
                                          "setsockopt(SO_REUSEADDR)"); s != Status::Ok)
                return s;
        }
        if (Status s = set_buffer_size(fd, true, options.receive_buffer, error_); s != Status::Ok)
            return s;
        if (Status s = set_buffer_size(fd, false, options.send_buffer, error_); s != Status::Ok)
            return s;
        if (Status s = bind_endpoint(fd, local, error_); s != Status::Ok) return s;
        if (local.is_multicast()) {
            ip_mreq join{};
            join.imr_multiaddr.s_addr = htonl(local.ip);
            join.imr_interface.s_addr = htonl(options.interface_ip);
            if (::setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &join, sizeof join) != 0)
                return sys_fail(error_, "setsockopt(IP_ADD_MEMBERSHIP)");
        }
        // Refused timestamps are not an error: datagrams are then stamped and flagged UserClock.
        kernel_stamps_ = options.kernel_timestamps &&
                         ::setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &kOne, sizeof kOne) == 0;
        ::setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &kOne, sizeof kOne);
        if (Status s = local_endpoint(fd, Transport::Udp, local_, error_); s != Status::Ok) return s;
        headers_.assign(options.batch, mmsghdr{});
        iovecs_.assign(options.batch, iovec{});
        peers_.assign(options.batch, sockaddr_in{});
        control_.assign(size_t(options.batch) * kControlBytes, 0);
        ready_count_ = 0;
        return Status::Ok;
    }

    // Sets where send() goes. A multicast group is sent to through options.interface_ip.
    Status set_destination(const Endpoint& to) noexcept {
        int fd = fd_.get();
        if (to.is_multicast()) {
            in_addr iface{htonl(options_.interface_ip)};
            if (::setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &iface, sizeof iface) != 0)
                return sys_fail(error_, "setsockopt(IP_MULTICAST_IF)");
            if (Status s = set_int_option(fd, IPPROTO_IP, IP_MULTICAST_LOOP,
                                          options_.multicast_loop ? 1 : 0, error_,
                                          "setsockopt(IP_MULTICAST_LOOP)"); s != Status::Ok)
                return s;
        }
        destination_ = to_sockaddr(to);
        has_destination_ = true;
        return Status::Ok;
    }

    // Reads up to min(batch, out.capacity, most) datagrams that are already waiting; count = 0
    // when none are. Never blocks, never allocates. `most` 1 is one recvmsg: a recvmmsg that
    // finds one datagram asks the socket again before it returns (on this project's hosts
    // 0.3 us of a 1.4-1.7 us call), so a caller that expects a lone datagram (its last look
    // found none) asks for one.
    Status receive(const Datagrams& out, size_t& count, size_t most = SIZE_MAX) noexcept {
        count = 0;
        const size_t ready = std::min<size_t>(headers_.size(), out.capacity);
        const size_t n = std::min(ready, most);
        if (out.data != ready_data_ || out.slot_bytes != ready_slot_ || ready != ready_count_) {
            for (size_t i = 0; i < ready; ++i) {
                iovecs_[i] = iovec{out.data + i * out.slot_bytes, out.slot_bytes};
                msghdr& h = headers_[i].msg_hdr;
                h.msg_name = &peers_[i];
                h.msg_iov = &iovecs_[i];
                h.msg_iovlen = 1;
                h.msg_control = control_.data() + i * kControlBytes;
            }
            ready_data_ = out.data;
            ready_slot_ = out.slot_bytes;
            ready_count_ = ready;
            written_ = ready;
        }
        // The kernel writes back only the headers of the datagrams it returns (and may have
        // begun the next one's): only those need their lengths and flags again. A busy-polling
        // caller asks a million times a second, nearly always of an empty socket.
        for (size_t i = 0; i < written_; ++i) {
            msghdr& h = headers_[i].msg_hdr;
            h.msg_namelen = sizeof(sockaddr_in);
            h.msg_controllen = kControlBytes;
            h.msg_flags = 0;
        }
        int got;
        if (n == 1) {
            const ssize_t r = ::recvmsg(fd_.get(), &headers_[0].msg_hdr, MSG_DONTWAIT);
            if (r >= 0) headers_[0].msg_len = unsigned(r);
            got = r < 0 ? -1 : 1;
        } else {
            got = ::recvmmsg(fd_.get(), headers_.data(), unsigned(n), MSG_DONTWAIT, nullptr);
        }
        written_ = got < 0 ? 1 : std::min(size_t(got) + 1, n);
        if (got < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return Status::Ok;
            return sys_fail(error_, n == 1 ? "recvmsg" : "recvmmsg");
        }
        int64_t user_ns = 0;  // read once, only if some datagram has no kernel stamp
        for (size_t i = 0; i < size_t(got); ++i) {
            msghdr& h = headers_[i].msg_hdr;
            int64_t stamp = 0;
            bool kernel = false;
            for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(&h, c)) {
                if (c->cmsg_level != SOL_SOCKET) continue;
                if (c->cmsg_type == SCM_TIMESTAMPNS) {
                    timespec ts;
                    std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
                    stamp = int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
                    kernel = true;
                } else if (c->cmsg_type == SO_RXQ_OVFL) {
                    uint32_t drops;
                    std::memcpy(&drops, CMSG_DATA(c), sizeof drops);
                    stats_.kernel_drops = drops;
                }
            }
            if (!kernel) {
                if (user_ns == 0) user_ns = realtime_ns();
                stamp = user_ns;
                ++stats_.user_stamped;
            }
            bool cut = (h.msg_flags & MSG_TRUNC) != 0;
            stats_.truncated += cut;
            out.length[i] = headers_[i].msg_len;
            out.stamp_ns[i] = stamp;
            out.stamp_source[i] = uint8_t(kernel ? StampSource::Kernel : StampSource::UserClock);
            out.flags[i] = cut ? kDatagramTruncated : 0;
            out.peer_ip[i] = ntohl(peers_[i].sin_addr.s_addr);
            out.peer_port[i] = ntohs(peers_[i].sin_port);
        }
        count = size_t(got);
        stats_.received += count;
        return Status::Ok;
    }

    // Sends n datagrams packed back to back in `data` (datagram i is length[i] bytes) to the
    // destination, in sendmmsg batches. `sent` says how many left; Status::WouldBlock when the
    // send buffer filled first (send the rest once the socket is writable).
    Status send(const uint8_t* data, const uint32_t* length, size_t n, size_t& sent) noexcept {
        sent = 0;
        if (!has_destination_ || headers_.empty()) {
            error_ = SysError{"send before open and set_destination", EDESTADDRREQ};
            return Status::InvalidArgument;
        }
        size_t offset = 0;
        ready_count_ = 0;  // the headers are a send's now: receive() sets them up again
        while (sent < n) {
            size_t k = std::min(headers_.size(), n - sent);
            size_t o = offset;
            for (size_t i = 0; i < k; ++i) {
                iovecs_[i] = iovec{const_cast<uint8_t*>(data + o), length[sent + i]};
                o += length[sent + i];
                msghdr& h = headers_[i].msg_hdr;
                h = msghdr{};
                h.msg_name = &destination_;
                h.msg_namelen = sizeof destination_;
                h.msg_iov = &iovecs_[i];
                h.msg_iovlen = 1;
            }
            int done = ::sendmmsg(fd_.get(), headers_.data(), unsigned(k), MSG_DONTWAIT);
            if (done < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
                    ++stats_.send_blocked;
                    return Status::WouldBlock;
                }
                if (errno == EINTR) continue;
                return sys_fail(error_, "sendmmsg");
            }
            if (done == 0) {  // nothing taken and no error: treat as a full buffer, never spin here
                ++stats_.send_blocked;
                return Status::WouldBlock;
            }
            for (int i = 0; i < done; ++i) offset += length[sent + size_t(i)];
            sent += size_t(done);
            stats_.sent += size_t(done);
        }
        return Status::Ok;
    }

    // One datagram to `to` (a reply to a peer that asked, e.g. a retransmission request).
    Status send_to(const uint8_t* data, size_t n, const Endpoint& to) noexcept {
        sockaddr_in a = to_sockaddr(to);
        ssize_t r = ::sendto(fd_.get(), data, n, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&a),
                             sizeof a);
        if (r >= 0) {
            ++stats_.sent;
            return Status::Ok;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
            ++stats_.send_blocked;
            return Status::WouldBlock;
        }
        return sys_fail(error_, "sendto");
    }

    int fd() const noexcept { return fd_.get(); }
    const Endpoint& local() const noexcept { return local_; }
    bool kernel_stamps() const noexcept { return kernel_stamps_; }
    const UdpStats& stats() const noexcept { return stats_; }
    const SysError& last_error() const noexcept { return error_; }
    void close() noexcept { fd_.reset(); }

private:
    static constexpr int kOne = 1;
    // Room for a timespec and the drop counter, with headers and alignment.
    static constexpr size_t kControlBytes = CMSG_SPACE(sizeof(timespec)) + CMSG_SPACE(sizeof(uint32_t));

    Fd fd_;
    UdpOptions options_;
    Endpoint local_;
    sockaddr_in destination_{};
    bool has_destination_ = false;
    bool kernel_stamps_ = false;
    std::vector<mmsghdr> headers_;
    std::vector<iovec> iovecs_;
    std::vector<sockaddr_in> peers_;
    std::vector<uint8_t> control_;  // operator new aligns it for cmsghdr
    // What receive() last set the headers up for (its buffers and batch), and how many of them
    // the kernel may have written since.
    const uint8_t* ready_data_ = nullptr;
    size_t ready_slot_ = 0, ready_count_ = 0, written_ = 0;
    UdpStats stats_;
    SysError error_;
};

}  // namespace lockstep::net
