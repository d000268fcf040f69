// What a host costs a live node before any of the node's work: how often a spinning core loses
// time, and the tick-to-trade of a node that does nothing but answer each datagram.
//
// Tick-to-trade on a shared or virtual machine is bounded below by the machine: a vCPU that is
// descheduled for 50 us puts 50 us into whatever it was timing, and loopback UDP and TCP cost
// what the kernel (and under it the hypervisor) makes them cost. This probe measures those two
// floors with the live node's own parts (UdpSocket with kernel receive stamps, a TCP_NODELAY
// connection written with one send() per order, pinned threads), so the node's figures can be
// read against them:
//
// - Stalls: a thread pinned to `cpu` reads the clock in a loop; every gap of at least
//   `stall_threshold_ns` between two reads is time the core spent elsewhere (an interrupt, a
//   softirq, another task, the hypervisor).
// - Zero-work tick-to-trade: a peer thread pinned to `peer_cpu` (the venue's core) sends one
//   datagram every `interval_ns` and spins reading a TCP connection; a thread pinned to `cpu`
//   busy-polls the UDP socket and, for each datagram, sends one `order_bytes` message on the
//   connection. From the datagram's kernel receive stamp it times the end of recvmmsg (feed lag)
//   and the moment before send() (tick-to-trade, as the live loop times it), and the send itself.
//
// It reads the wall clock, by design: it is a measurement, and nothing it measures reaches State.
#pragma once

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include <sys/socket.h>

#include "lockstep/base/clock.hpp"
#include "lockstep/base/latency_histogram.hpp"
#include "lockstep/base/status.hpp"
#include "lockstep/net/event_loop.hpp"
#include "lockstep/net/tcp.hpp"
#include "lockstep/net/udp.hpp"

namespace lockstep::live {

struct ProbeOptions {
    int cpu = 0;                          // the node's core
    int peer_cpu = 1;                     // the venue's core: the feed's sender and order sink
    int64_t stall_ns = 1'000'000'000;     // how long the stall part spins
    int64_t stall_threshold_ns = 1'000;   // a gap between clock reads counted as a stall
    int64_t feed_ns = 1'000'000'000;      // how long the feed part sends
    int64_t interval_ns = 100'000;        // between two datagrams of the feed
    uint32_t datagram_bytes = 400;        // a datagram of the feed (MoldUDP64 with ~10 ITCH messages)
    uint32_t order_bytes = 52;            // one order (SoupBinTCP-framed OUCH 4.2 Enter Order: 3 + 49)
};

// Gap thresholds the stall part counts exactly (the histogram's buckets are ~3 % wide).
inline constexpr int64_t kStallBoundsNs[] = {10'000, 20'000, 50'000, 100'000, 1'000'000};
inline constexpr size_t kStallBounds = sizeof kStallBoundsNs / sizeof kStallBoundsNs[0];

struct ProbeResult {
    int64_t spun_ns = 0;       // how long the stall part ran
    int64_t lost_ns = 0;       // the sum of its stalls
    uint64_t stalls_at_least[kStallBounds] = {};  // stalls of at least kStallBoundsNs[i]
    LatencyHistogram stalls;   // every stall
    uint64_t datagrams_sent = 0, datagrams_received = 0;
    uint64_t user_stamped = 0;  // datagrams without a kernel stamp (not timed)
    uint64_t orders_sent = 0, order_bytes_received = 0;
    LatencyHistogram feed_lag, tick_to_trade, send_time;
};

namespace detail {

// How long the receiver keeps reading after the sender stopped: datagrams still in flight.
inline constexpr int64_t kDrainNs = 20'000'000;

}  // namespace detail

// Runs the stall part, then the feed part, each on threads of its own (the caller's thread is
// never pinned). InvalidArgument for a bad option, SystemError (with `error`) for a failed call.
inline Status run_host_probe(const ProbeOptions& o, ProbeResult& out, net::SysError& error) {
    out = ProbeResult{};
    const auto failed = [&error](Status status, const net::SysError& why) {
        error = why;
        return status;
    };
    if (o.stall_ns <= 0 || o.feed_ns <= 0 || o.interval_ns <= 0 || o.stall_threshold_ns <= 0 ||
        o.datagram_bytes < 8 || o.datagram_bytes > 1472 || o.order_bytes == 0 ||
        o.order_bytes > 4096 || o.cpu == o.peer_cpu) {
        return failed(Status::InvalidArgument, net::SysError{"probe options", EINVAL});
    }
    net::SysError pin_error;
    Status pin_status = Status::Ok;
    {  // the CPUs first: a CPU this process may not use is said before anything runs
        std::thread t([&] {
            if (Status s = net::pin_to_cpu(o.cpu, pin_error); s != Status::Ok) pin_status = s;
            else if (Status s2 = net::pin_to_cpu(o.peer_cpu, pin_error); s2 != Status::Ok)
                pin_status = s2;
        });
        t.join();
        if (pin_status != Status::Ok) return failed(pin_status, pin_error);
    }

    std::thread([&] {  // stalls
        net::SysError ignored;
        net::pin_to_cpu(o.cpu, ignored);
        const int64_t start = monotonic_ns();
        int64_t last = start, now = start;
        while ((now = monotonic_ns()) - start < o.stall_ns) {
            const int64_t gap = now - last;
            last = now;
            if (gap < o.stall_threshold_ns) continue;
            out.stalls.add(gap);
            out.lost_ns += gap;
            for (size_t i = 0; i < kStallBounds; ++i)
                if (gap >= kStallBoundsNs[i]) ++out.stalls_at_least[i];
        }
        out.spun_ns = now - start;
    }).join();

    // The feed part's sockets: a UDP receiver (kernel stamps), the order connection's two ends.
    net::UdpSocket receiver, sender;
    net::UdpOptions udp;
    udp.batch = 64;
    udp.receive_buffer = 4 << 20;
    if (Status s = receiver.open(net::Endpoint{}, udp); s != Status::Ok)
        return failed(s, receiver.last_error());
    udp.receive_buffer = 0;
    if (Status s = sender.open(net::Endpoint{}, udp); s != Status::Ok)
        return failed(s, sender.last_error());
    if (Status s = sender.set_destination(receiver.local()); s != Status::Ok)
        return failed(s, sender.last_error());
    net::TcpListener listener;
    net::Endpoint any_tcp{};
    any_tcp.transport = net::Transport::Tcp;
    if (Status s = listener.open(any_tcp, 1); s != Status::Ok)
        return failed(s, listener.last_error());
    net::TcpConnection client, server;
    Status s = client.connect(listener.local(), 1 << 16);
    if (s != Status::Ok && s != Status::WouldBlock) return failed(s, client.last_error());
    // Loopback: the handshake completes within the connect call or very soon after; bounded.
    for (int tries = 0; tries < 10000; ++tries) {
        s = listener.accept(server, 1 << 16);
        if (s != Status::WouldBlock) break;
        std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    if (s == Status::WouldBlock) return failed(Status::SystemError, net::SysError{"accept", ETIMEDOUT});
    if (s != Status::Ok) return failed(s, listener.last_error());
    for (int tries = 0; tries < 10000 && (s = client.finish_connect()) == Status::WouldBlock; ++tries)
        std::this_thread::sleep_for(std::chrono::microseconds(100));
    if (s != Status::Ok) return failed(s, client.last_error());

    std::atomic<bool> ready{false}, done{false};
    net::SysError peer_error;
    Status peer_status = Status::Ok;
    std::thread peer([&] {  // the venue: the feed out, the orders in
        net::SysError ignored;
        net::pin_to_cpu(o.peer_cpu, ignored);
        std::vector<uint8_t> datagram(o.datagram_bytes, 0);
        std::vector<uint8_t> sink(1 << 16);
        const uint32_t length = o.datagram_bytes;
        while (!ready.load(std::memory_order_acquire)) std::this_thread::yield();
        const int64_t start = monotonic_ns();
        int64_t next = start;
        auto drain = [&] {
            size_t n = 0;
            while (server.read(sink.data(), sink.size(), n) == Status::Ok)
                out.order_bytes_received += n;
        };
        for (;;) {
            const int64_t now = monotonic_ns();
            if (now - start >= o.feed_ns) break;
            if (now >= next) {
                size_t sent = 0;
                Status st = sender.send(datagram.data(), &length, 1, sent);
                if (st != Status::Ok && st != Status::WouldBlock) {
                    peer_status = st;
                    peer_error = sender.last_error();
                    break;
                }
                out.datagrams_sent += sent;
                next += o.interval_ns;
            }
            drain();
        }
        done.store(true, std::memory_order_release);
        const int64_t end = monotonic_ns();
        while (monotonic_ns() - end < 2 * detail::kDrainNs) drain();
    });

    net::SysError node_error;
    Status node_status = Status::Ok;
    std::thread node([&] {  // the node: each datagram answered with one order
        net::SysError ignored;
        net::pin_to_cpu(o.cpu, ignored);
        const size_t slot = 2048, batch = 64;
        std::vector<uint8_t> data(slot * batch);
        std::vector<uint32_t> length(batch);
        std::vector<int64_t> stamp(batch);
        std::vector<uint8_t> source(batch), flags(batch);
        std::vector<uint32_t> peer_ip(batch);
        std::vector<uint16_t> peer_port(batch);
        net::Datagrams view{data.data(), slot, batch, length.data(), stamp.data(), source.data(),
                            flags.data(), peer_ip.data(), peer_port.data()};
        std::vector<uint8_t> order(o.order_bytes, 'O');
        const int fd = client.fd();
        ready.store(true, std::memory_order_release);
        int64_t quiet_since = 0;
        for (;;) {
            size_t count = 0;
            if (Status st = receiver.receive(view, count); st != Status::Ok) {
                node_status = st;
                node_error = receiver.last_error();
                break;
            }
            if (count == 0) {
                if (!done.load(std::memory_order_acquire)) continue;
                const int64_t now = monotonic_ns();
                if (quiet_since == 0) quiet_since = now;
                if (now - quiet_since >= detail::kDrainNs) break;
                continue;
            }
            quiet_since = 0;
            const int64_t received = realtime_ns();
            for (size_t i = 0; i < count; ++i) {
                ++out.datagrams_received;
                if (source[i] != uint8_t(net::StampSource::Kernel)) {
                    ++out.user_stamped;
                    continue;
                }
                out.feed_lag.add(received - stamp[i]);
                const int64_t before = realtime_ns();
                out.tick_to_trade.add(before - stamp[i]);
                ssize_t r;
                do {
                    r = ::send(fd, order.data(), order.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
                } while (r < 0 && errno == EINTR);
                out.send_time.add(realtime_ns() - before);
                if (r == ssize_t(order.size())) ++out.orders_sent;
            }
        }
    });
    node.join();
    peer.join();
    if (node_status != Status::Ok) return failed(node_status, node_error);
    if (peer_status != Status::Ok) return failed(peer_status, peer_error);
    return Status::Ok;
}

}  // namespace lockstep::live
