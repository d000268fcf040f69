// The live node's hot path in one loop: the feed's datagrams (recvmmsg, kernel receive stamps)
// through the MoldUDP64 receiver into the LiveCore, every input and output appended to the
// journal, the outputs hashed for the digest, and the OUCH messages the core dispatches written straight
// to the order-entry socket as SoupBinTCP Unsequenced Data. docs/live.md is normative.
//
// The loop owns no socket and no session: the Python node (lockstep.live.node) creates the UDP
// sockets, the receiver, the core and the journal, and owns the order-entry client (login,
// heartbeats, reads, reconnects) and the control socket. run() returns to it whenever it is
// needed (LoopExit says why): the order-entry or control socket is readable, the receiver
// decided something (notices), OUCH bytes were left for the client to send, the strategy failed,
// the time budget or the turn count ran out. While the loop owns the logged-in order-entry
// connection it also keeps that session's clock (Client Heartbeats, a silent server given up),
// so Python is not woken for either. At every return the node takes the outputs
// (take_* below) before it applies any input of its own, so the digest, the records and the
// journal see every input in the one order it was applied.
//
// Equivalence with lockstep.live.session.LiveSession (the path a journal replay takes): each
// input is journaled first, then applied; then LiveCore::end_input hashes its outputs for the
// digest (the one place both drivers share), and its decisions, executions and dispatches are
// journaled in that order at the core's stamp; the PnL samples the engine took are moved out
// with the records.
//
// Tick-to-trade (measurement only: never journaled, never hashed): for each OUCH message
// written in response to a datagram, the clock read right before the send() call minus that
// datagram's receive stamp, into a fixed histogram; and the feed's receive lag (how long each
// datagram waited in the socket before the loop read it) into another.
//
// Hot paths are noexcept and allocation-free once the buffers reached their working sizes (the
// node empties them at every return).
#pragma once

#include <sys/socket.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "lockstep/base/big_endian.hpp"
#include "lockstep/base/clock.hpp"
#include "lockstep/base/latency_histogram.hpp"
#include "lockstep/base/status.hpp"
#include "lockstep/codecs/soupbintcp.hpp"
#include "lockstep/net/event_loop.hpp"
#include "lockstep/net/udp.hpp"
#include "lockstep/runtime/journal.hpp"
#include "lockstep/runtime/live.hpp"
#include "lockstep/session/mold_receiver.hpp"
#include "lockstep/session/sink.hpp"
#include "lockstep/session/soup_client.hpp"

namespace lockstep::live {

// Mirrored by lockstep.enums.LoopExit.
enum class LoopExit : uint8_t {
    Turns = 0,          // max_turns turns done
    Time = 1,           // the time budget is spent
    OrderEntry = 2,     // the order-entry socket is readable: the client reads it
    Control = 3,        // the control socket is readable
    Notice = 4,         // the MoldUDP64 receiver decided something (take_notices)
    Unsent = 5,         // OUCH messages the loop did not write: the client's to send (take_unsent)
    Failed = 6,         // the strategy failed (failure()); later inputs are journaled, refused
                        // (but the venue's answers: applied to Execution State)
    JournalFailed = 7,  // the journal writer failed: the journal is incomplete
    SocketError = 8,    // a feed socket failed (socket_error())
};

struct LoopOptions {
    int64_t tick_ns = 1'000'000;  // no input for this long: the clock is read, the core ticks
    int wait_ms = 1;              // how long a turn may sleep in epoll (busy_poll: never)
    uint32_t idle_every = 64;     // turns with datagrams between two idle steps
};

struct LoopCounters {
    uint64_t datagrams = 0;
    uint64_t ticks = 0;
    uint64_t requests = 0;           // retransmission requests sent
    uint64_t requests_not_sent = 0;  // the socket refused one (the receiver asks again)
    uint64_t sent_direct = 0;        // OUCH messages written straight to the order-entry socket
    uint64_t partial_writes = 0;     // writes the kernel took only part of (or none of)
    uint64_t handed_back = 0;        // OUCH messages left for the client to send
    uint64_t refused = 0;            // inputs after a failure: journaled, not applied
    uint64_t notices_lost = 0;       // more notices in one run than the loop keeps
    uint64_t order_reads = 0;        // reads of the order-entry connection by the loop
    uint64_t order_messages = 0;     // the venue's messages the loop applied itself
};

class LiveLoop {
public:
    static constexpr uint64_t kFeedToken = 0, kRetransmitToken = 1, kOrderEntryToken = 2,
                              kControlToken = 3;
    static constexpr size_t kNoticeCapacity = 256;
    static constexpr int64_t kNotMeasured = INT64_MIN;

    LiveLoop(LiveCore& core, session::MoldReceiver& receiver, net::UdpSocket& feed,
             net::UdpSocket& retransmit, Journal& journal) noexcept
        : core_(core), receiver_(receiver), journal_(journal),
          feed_{&feed, {}, {}, {}, {}, {}, {}, {}, {}, 0, 0},
          retransmit_{&retransmit, {}, {}, {}, {}, {}, {}, {}, {}, 0, 0} {
        core_.set_outbound_hook(&LiveLoop::on_outbound, this);
    }
    ~LiveLoop() { core_.set_outbound_hook(nullptr, nullptr); }
    LiveLoop(const LiveLoop&) = delete;
    LiveLoop& operator=(const LiveLoop&) = delete;

    // Allocates the datagram batches (`batch` datagrams of `slot_bytes` per socket), the
    // receiver's output (a datagram plus `held_bytes`, what the receiver can hold back) and the
    // epoll set. Setup: call once.
    Status open(const LoopOptions& options, bool busy_poll, uint32_t batch, size_t slot_bytes,
                size_t held_bytes) {
        if (batch == 0 || slot_bytes == 0 || options.tick_ns <= 0 || options.idle_every == 0)
            return Status::InvalidArgument;
        options_ = options;
        for (Batch* b : {&feed_, &retransmit_}) {
            b->data.assign(size_t(batch) * slot_bytes, 0);
            b->length.assign(batch, 0);
            b->stamp.assign(batch, 0);
            b->source.assign(batch, 0);
            b->flags.assign(batch, 0);
            b->peer_ip.assign(batch, 0);
            b->peer_port.assign(batch, 0);
            b->view = net::Datagrams{b->data.data(), slot_bytes, batch, b->length.data(),
                                     b->stamp.data(), b->source.data(), b->flags.data(),
                                     b->peer_ip.data(), b->peer_port.data()};
        }
        const size_t release = slot_bytes + held_bytes;
        released_.assign(release, 0);
        sequences_.assign(release / 2 + 1, 0);
        stamps_.assign(release / 2 + 1, 0);
        sink_.out = released_.data();
        sink_.capacity = released_.size();
        sink_.sequences = sequences_.data();
        sink_.stamps = stamps_.data();
        sink_.max_messages = sequences_.size();
        sink_.skip_empty = true;  // ITCH has no empty message
        decisions_.reserve(1 << 16);
        executions_.reserve(1 << 16);
        tx_.reserve(1 << 16);
        if (Status s = epoll_.open(8, busy_poll); s != Status::Ok) return s;
        if (Status s = epoll_.add(feed_.socket->fd(), net::kReadable, kFeedToken); s != Status::Ok)
            return s;
        return epoll_.add(retransmit_.socket->fd(), net::kReadable, kRetransmitToken);
    }

    void set_retransmit_server(const net::Endpoint& server) noexcept { server_ = server; }

    // The order-entry connection's descriptor (-1: none) and whether the loop may write to it:
    // only when the client is logged in and has nothing of its own waiting to be sent, so bytes
    // never overtake each other. A changed descriptor is watched instead of the old one.
    // `connection` numbers the client's connections: a new one may reuse the old descriptor.
    Status set_order_entry(int fd, uint64_t connection, bool direct) noexcept {
        direct_ = direct && fd >= 0;
        if (fd == order_fd_ && connection == connection_) return Status::Ok;
        if (order_fd_ >= 0) epoll_.remove(order_fd_);  // a closed descriptor left epoll already
        order_fd_ = -1;
        connection_ = connection;
        if (fd >= 0) {
            if (Status s = epoll_.add(fd, net::kReadable, kOrderEntryToken); s != Status::Ok) {
                direct_ = false;
                return s;
            }
        }
        order_fd_ = fd;
        return Status::Ok;
    }

    // The order-entry client's SoupBinTCP session: while it is logged in and the loop may write,
    // the loop reads the connection itself and applies the venue's answers as OUCH inputs, so
    // they never wait for a return to Python. Anything else (a closed connection, an error, a
    // notice such as a failed session) returns to Python, whose client reads and acts on it.
    void set_order_session(session::SoupClient* soup) noexcept {
        soup_ = soup;
        if (soup_ != nullptr && order_buffer_.empty()) order_buffer_.assign(64 * 1024, 0);
    }

    Status set_control(int fd) noexcept {
        if (control_fd_ >= 0) epoll_.remove(control_fd_);
        control_fd_ = fd;
        return fd < 0 ? Status::Ok : epoll_.add(fd, net::kReadable, kControlToken);
    }

    // ---- the loop ----------------------------------------------------------------------------

    LoopExit run(int64_t budget_ns, uint32_t max_turns) noexcept {
        if (returned_at_ != 0) away_time_.add(realtime_ns() - returned_at_);
        running_ = true;  // inputs applied from outside the loop send their own messages
        const LoopExit why = turns(budget_ns, max_turns);
        running_ = false;
        returned_at_ = realtime_ns();
        return why;
    }


    // ---- what the node takes at a return ---------------------------------------------------

    // Decisions and execution records of the inputs since the last take, packed as journaled,
    // and the PnL samples the engine took (the records the node writes).
    const std::vector<uint8_t>& decisions() const noexcept { return decisions_; }
    const std::vector<uint8_t>& executions() const noexcept { return executions_; }
    const std::vector<PnlSample>& samples() const noexcept { return samples_; }
    void clear_outputs() noexcept {
        decisions_.clear();
        executions_.clear();
        samples_.clear();
    }
    // OUCH bytes the loop did not write: first the SoupBinTCP-framed rest of a write the kernel
    // took only part of (it goes out before anything else), then whole OUCH messages
    // ([u16 length][message] each) for the client to send.
    const std::vector<uint8_t>& unsent_framed() const noexcept { return unsent_framed_; }
    const std::vector<uint8_t>& unsent() const noexcept { return unsent_; }
    void clear_unsent() noexcept {
        unsent_framed_.clear();
        unsent_.clear();
    }
    size_t notice_count() const noexcept { return notice_count_; }
    const session::MoldNotice& notice(size_t i) const noexcept { return notices_[i]; }
    void clear_notices() noexcept { notice_count_ = 0; }
    // The status of the input that failed (RunStatus::Ok: none has).
    RunStatus failure() const noexcept { return failure_; }

    // The last input's receive stamp (a tick is due tick_ns after it); the node moves it with
    // the inputs it applies itself.
    int64_t last_input() const noexcept { return last_input_; }
    void note_input(int64_t stamp) noexcept {
        if (stamp > last_input_) last_input_ = stamp;
    }

    const LoopCounters& counters() const noexcept { return counters_; }
    const LatencyHistogram& tick_to_trade() const noexcept { return tick_to_trade_; }
    // The loop's part of tick-to-trade: for each timed OUCH message, the clock right before
    // send() minus the clock right after the read that took its datagram (the rest is the
    // datagram's wait in the socket, feed_lag's).
    const LatencyHistogram& read_to_trade() const noexcept { return read_to_trade_; }
    // Receive lag: the clock right after each recvmmsg minus each datagram's receive stamp.
    const LatencyHistogram& feed_lag() const noexcept { return feed_lag_; }
    // How long each turn took (a look at the sockets, what it read processed, and the wait of
    // the next look): a thread that stalls (descheduled, waiting for the journal) shows here.
    const LatencyHistogram& turn_time() const noexcept { return turn_time_; }
    // How long each return lasted: from run() returning to the next run(), the feed unread
    // (the node's Python between runs). Its count is the number of returns.
    const LatencyHistogram& away_time() const noexcept { return away_time_; }
    // How many times an append waited for room in the journal's ring (its writer fell behind).
    uint64_t journal_waits() const noexcept {
        return journal_.writer().producer_stats(0).waits.load(std::memory_order_relaxed);
    }
    const net::SysError& socket_error() const noexcept { return socket_error_; }

private:
    LoopExit turns(int64_t budget_ns, uint32_t max_turns) noexcept {
        exit_ = false;
        const int64_t start = realtime_ns();
        last_turn_ = start;
        // Datagrams a failure left unread in the last batch come first.
        if (!drain(feed_) || !drain(retransmit_)) return reason_;
        const bool busy = epoll_.busy_poll();
        for (uint32_t turn = 0; turn < max_turns; ++turn) {
            size_t n = 0;
            bool got = false, orders = false, control = false;
            if (busy) {
                // Busy-polling, the feed is read every turn without asking epoll first (one
                // syscall less between a datagram and its orders); the other sockets are looked
                // at every kLookEvery turns.
                got = receive(feed_);
                if (exit_ && halted()) return reason_;
            }
            if (!busy || ++looks_ >= kLookEvery) {
                looks_ = 0;
                if (epoll_.wait(options_.wait_ms, tokens_, ready_, kTokens, n) != Status::Ok)
                    return stop(LoopExit::SocketError);
            }
            for (size_t i = 0; i < n; ++i) {
                switch (tokens_[i]) {
                    case kFeedToken: got |= receive(feed_); break;
                    case kRetransmitToken: got |= receive(retransmit_); break;
                    case kOrderEntryToken: orders |= !read_orders(); break;
                    default: control = true; break;
                }
                if (exit_ && halted()) return reason_;
            }
            const int64_t now = realtime_ns();
            turn_time_.add(now - last_turn_);
            last_turn_ = now;
            if (!got || ++busy_turns_ >= options_.idle_every) {
                busy_turns_ = 0;
                idle(now);
            }
            if (exit_) return reason_;
            if (orders) return LoopExit::OrderEntry;
            if (control) return LoopExit::Control;
            if (now - start >= budget_ns) return LoopExit::Time;
        }
        return LoopExit::Turns;
    }

    static constexpr size_t kTokens = 8;
    static constexpr uint32_t kLookEvery = 4;

    struct Batch {
        net::UdpSocket* socket;
        std::vector<uint8_t> data;
        std::vector<uint32_t> length;
        std::vector<int64_t> stamp;
        std::vector<uint8_t> source, flags;
        std::vector<uint32_t> peer_ip;
        std::vector<uint16_t> peer_port;
        net::Datagrams view;
        size_t next;   // the first datagram of the batch not yet processed
        size_t count;  // datagrams in the batch
        int64_t read_at = 0;  // the clock after the read that took the batch
    };

    LoopExit stop(LoopExit why) noexcept {
        if (!exit_ || why == LoopExit::Failed || why == LoopExit::JournalFailed ||
            why == LoopExit::SocketError) {
            exit_ = true;
            reason_ = why;
        }
        return reason_;
    }
    // A return that must come before the next input (the node writes the failure record first).
    bool halted() const noexcept {
        return exit_ && (reason_ == LoopExit::Failed || reason_ == LoopExit::JournalFailed ||
                         reason_ == LoopExit::SocketError);
    }

    // One batch of `b`, processed; false when nothing came. After a look that found nothing
    // a datagram most likely comes alone (one recvmsg, cheaper: UdpSocket::receive); after
    // one that found some, more may wait (a batch).
    bool receive(Batch& b) noexcept {
        if (b.next < b.count && !drain(b)) return true;
        size_t count = 0;
        if (b.socket->receive(b.view, count, b.count == 0 ? 1 : SIZE_MAX) != Status::Ok) {
            socket_error_ = b.socket->last_error();
            stop(LoopExit::SocketError);
            return false;
        }
        b.next = 0;
        b.count = count;
        if (count) {
            // How long the datagrams waited in the socket: a backlog shows here first.
            const int64_t now = realtime_ns();
            for (size_t i = 0; i < count; ++i) feed_lag_.add(now - b.stamp[i]);
            b.read_at = now;
        }
        drain(b);
        return count != 0;
    }

    // Processes the datagrams of `b` not yet processed; false when a halt stopped it part way.
    bool drain(Batch& b) noexcept {
        const size_t slot = b.view.slot_bytes;
        while (b.next < b.count) {
            const size_t i = b.next++;
            const size_t len = b.length[i] < slot ? b.length[i] : slot;
            ++counters_.datagrams;
            read_at_ = b.read_at;
            on_datagram(b.data.data() + i * slot, len, b.stamp[i]);
            if (halted()) return false;
        }
        return true;
    }

    void on_datagram(const uint8_t* data, size_t len, int64_t stamp) noexcept {
        sink_.size = sink_.messages = 0;
        receiver_.on_packet(data, len, stamp, sink_);  // damage is the receiver's to count
        take_receiver_notices();
        deliver(stamp, stamp);
        request(stamp);
    }

    // Time passing: gaps given up, requests due, the order-entry session's clock, a tick when no
    // input came for tick_ns.
    void idle(int64_t now) noexcept {
        sink_.size = sink_.messages = 0;
        receiver_.poll(now, sink_);
        take_receiver_notices();
        deliver(now, kNotMeasured);
        request(now);
        order_entry_clock(now);
        if (now - last_input_ >= options_.tick_ns && !halted()) {
            ++counters_.ticks;
            last_input_ = now;
            if (!journal(now, JournalStream::Tick, nullptr, 0)) return;
            applied(core_.on_tick(now), kNotMeasured);
        }
    }

    // The messages the receiver released, as ITCH inputs at `stamp`: one per run of consecutive
    // sequence numbers (one per datagram, unless held packets were released with it).
    void deliver(int64_t stamp, int64_t measured_from) noexcept {
        const size_t count = sink_.messages;
        if (count == 0) return;
        size_t start = 0, pos = 0, start_k = 0;
        for (size_t k = 0; k < count; ++k) {
            if (k && sequences_[k] != sequences_[k - 1] + 1) {
                itch(released_.data() + start, pos - start, sequences_[start_k], stamp, measured_from);
                start = pos;
                start_k = k;
            }
            pos += 2 + load_be16(released_.data() + pos);
        }
        itch(released_.data() + start, pos - start, sequences_[start_k], stamp, measured_from);
    }

    void itch(const uint8_t* blocks, size_t len, uint64_t first, int64_t stamp,
              int64_t measured_from) noexcept {
        if (halted()) return;
        note_input(stamp);
        uint8_t head[8];
        store_be64(head, first);
        if (!journal_.append(stamp, JournalStream::Itch, head, 8, blocks, uint32_t(len))) {
            stop(LoopExit::JournalFailed);
            return;
        }
        measured_from_ = measured_from;
        applied(core_.on_itch(blocks, len, first, stamp), measured_from);
    }

    // Reads the order-entry connection until it would block, the venue's messages applied as
    // OUCH inputs at the read's stamp. False when Python must look: the loop may not read (not
    // logged in, bytes of the client waiting), the peer closed or failed, or the session has
    // notices or left the logged-in state.
    bool read_orders() noexcept {
        if (soup_ == nullptr || !direct_ || order_fd_ < 0 || halted()) return false;
        struct Sink {
            LiveLoop* loop;
            void operator()(uint64_t, const uint8_t* data, uint16_t length,
                            int64_t stamp) noexcept {
                loop->ouch(data, length, stamp);
            }
        } sink{this};
        for (int reads = 0; reads < 64; ++reads) {
            if (soup_->state() != session::SoupClientState::LoggedIn ||
                soup_->pending_notices() != 0)
                return false;
            ssize_t r;
            do {
                r = ::recv(order_fd_, order_buffer_.data(), order_buffer_.size(), MSG_DONTWAIT);
            } while (r < 0 && errno == EINTR);
            if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
            if (r <= 0) return false;  // closed or failed: the client's next read finds out
            const int64_t now = realtime_ns();
            soup_->on_bytes(order_buffer_.data(), size_t(r), now, sink);
            ++counters_.order_reads;
            if (halted()) return false;
        }
        return soup_->state() == session::SoupClientState::LoggedIn &&
               soup_->pending_notices() == 0;
    }

    // While the loop owns the logged-in connection: a Client Heartbeat written when nothing was
    // for the heartbeat interval, and a server silent for its timeout given up (the session's
    // notice returns to Python, whose client reconnects).
    void order_entry_clock(int64_t now) noexcept {
        if (soup_ == nullptr || !direct_ || order_fd_ < 0 || halted()) return;
        uint8_t beat[8];
        const size_t n = soup_->poll(now, beat, sizeof beat);
        if (soup_->state() != session::SoupClientState::LoggedIn || soup_->pending_notices() != 0) {
            stop(LoopExit::OrderEntry);
            return;
        }
        if (n != 0) write_framed(beat, n);  // counted by the session (heartbeats_out)
    }

    // One OUCH message of the venue, journaled and applied as LiveSession.on_ouch does (after a
    // strategy failure too: the core applies it to Execution State only).
    void ouch(const uint8_t* message, size_t len, int64_t stamp) noexcept {
        note_input(stamp);
        ++counters_.order_messages;
        if (!journal(stamp, JournalStream::Ouch, message, uint32_t(len))) return;
        applied(core_.on_ouch(message, len, stamp), kNotMeasured, /*after_failure=*/true);
    }

    void take_receiver_notices() noexcept {
        session::MoldNotice n;
        while (receiver_.next_notice(n)) {
            if (notice_count_ < kNoticeCapacity)
                notices_[notice_count_++] = n;
            else
                ++counters_.notices_lost;
            stop(LoopExit::Notice);
            if (n.kind == session::MoldNoticeKind::GapAbandoned && !halted()) {
                // The book is invalid from here: a journaled input like any other.
                note_input(n.stamp_ns);
                uint8_t expected[8];
                store_be64(expected, n.first);
                if (!journal(last_input_, JournalStream::Gap, expected, 8)) return;
                applied(core_.on_feed_gap(n.first, last_input_), kNotMeasured);
            } else if (n.kind == session::MoldNoticeKind::SessionChanged && !halted()) {
                // The venue restarted: every book invalid, and the new session's messages (which
                // the receiver releases with this notice, numbered from 1 again) taken, not read
                // as duplicates. Applied before they are delivered, as its journal record says.
                note_input(n.stamp_ns);
                static constexpr uint8_t kFeedSession[2] = {'S', 0};
                if (!journal(last_input_, JournalStream::Control, kFeedSession, 2)) return;
                applied(core_.on_feed_session(last_input_), kNotMeasured);
            }
        }
    }

    void request(int64_t now) noexcept {
        uint8_t out[moldudp64::kRequestLength];
        const size_t n = receiver_.take_request(now, out, sizeof out);
        if (n == 0) return;
        ++counters_.requests;
        if (retransmit_.socket->send_to(out, n, server_) != Status::Ok) ++counters_.requests_not_sent;
    }

    bool journal(int64_t stamp, JournalStream stream, const uint8_t* payload, uint32_t n) noexcept {
        if (journal_.append(stamp, stream, payload, n)) return true;
        stop(LoopExit::JournalFailed);
        return false;
    }

    // After an input: what the core did not send early sent, the input ended (its outputs
    // hashed for the digest: LiveCore::end_input), its outputs journaled and kept for the records.
    // After a failure an input is refused (the core applied nothing) unless it is one the core
    // still applies then (`after_failure`: the venue's answers).
    void applied(RunStatus status, int64_t measured_from, bool after_failure = false) noexcept {
        if (failure_ != RunStatus::Ok && !after_failure) {
            ++counters_.refused;
            return;
        }
        const std::vector<uint8_t>& o = core_.outbound();
        if (o.size() > sent_early_)
            send(o.data() + sent_early_, o.size() - sent_early_, measured_from);
        sent_early_ = 0;
        measured_from_ = kNotMeasured;
        core_.end_input();
        const std::vector<uint8_t>& d = core_.decisions();
        const std::vector<uint8_t>& x = core_.executions();
        decisions_.insert(decisions_.end(), d.begin(), d.end());
        executions_.insert(executions_.end(), x.begin(), x.end());
        const int64_t stamp = core_.stamp();
        bool ok = true;
        for (size_t k = 0; ok && k + kDecisionBytes <= d.size(); k += kDecisionBytes)
            ok = journal_.append(stamp, JournalStream::Decision, d.data() + k, kDecisionBytes);
        for (size_t k = 0; ok && k + kExecutionBytes <= x.size(); k += kExecutionBytes)
            ok = journal_.append(stamp, JournalStream::Execution, x.data() + k, kExecutionBytes);
        for (size_t pos = 0; ok && pos + 2 <= o.size();) {
            const uint16_t n = load_be16(o.data() + pos);
            ok = journal_.append(stamp, JournalStream::Dispatch, o.data() + pos + 2, n);
            pos += 2 + size_t(n);
        }
        core_.clear_packed();
        core_.clear_outbound();
        Engine& e = core_.engine();
        samples_.insert(samples_.end(), e.samples().begin(), e.samples().end());
        e.clear_records();
        if (!ok) stop(LoopExit::JournalFailed);
        if (status != RunStatus::Ok && failure_ == RunStatus::Ok) {
            failure_ = status;
            stop(LoopExit::Failed);
        }
    }

    // The messages of a batch the core just dispatched (one strategy call's), while the loop
    // applies an input: written at once in one write (when the loop may write), so the orders
    // leave before the rest of their datagram is applied.
    // What is written here is journaled and hashed with the input's other outputs (applied).
    static void on_outbound(void* self) noexcept { static_cast<LiveLoop*>(self)->send_early(); }

    void send_early() noexcept {
        if (!running_ || !direct_) return;
        const std::vector<uint8_t>& o = core_.outbound();
        if (o.size() <= sent_early_) return;
        send(o.data() + sent_early_, o.size() - sent_early_, measured_from_);
        sent_early_ = o.size();
    }

    // Dispatches ([u16 length][message] each) as SoupBinTCP Unsequenced Data: one write when the
    // loop may write, else (or for what the kernel did not take) left for the client, in order.
    void send(const uint8_t* o, size_t size, int64_t measured_from) noexcept {
        if (!direct_) {
            for (size_t pos = 0; pos + 2 <= size; pos += 2 + load_be16(o + pos))
                ++counters_.handed_back;
            unsent_.insert(unsent_.end(), o, o + size);
            stop(LoopExit::Unsent);
            return;
        }
        tx_.clear();
        for (size_t pos = 0; pos + 2 <= size;) {
            const size_t n = load_be16(o + pos);
            const size_t at = tx_.size();
            tx_.resize(at + soupbin::kHeaderLength + n);
            soupbin::put_header(tx_.data() + at, soupbin::PacketType::UnsequencedData, n);
            std::memcpy(tx_.data() + at + soupbin::kHeaderLength, o + pos + 2, n);
            pos += 2 + n;
        }
        const int64_t now = realtime_ns();
        const size_t wrote = write_framed(tx_.data(), tx_.size());
        if (wrote > 0 && soup_ != nullptr) soup_->note_sent(now);
        size_t pos = 0;
        while (pos + soupbin::kPrefixLength <= tx_.size()) {
            const size_t frame = soupbin::kPrefixLength + load_be16(tx_.data() + pos);
            if (pos + frame <= wrote) {
                ++counters_.sent_direct;
                if (measured_from != kNotMeasured) {
                    tick_to_trade_.add(now - measured_from);
                    read_to_trade_.add(now - read_at_);
                }
            } else {
                ++counters_.handed_back;
            }
            pos += frame;
        }
    }

    // One write of SoupBinTCP-framed bytes to the order-entry socket; how many the kernel took.
    // The rest (EAGAIN, a reset: none) is left to the client, which sends it before anything
    // else, or finds the full buffer or the broken connection itself.
    size_t write_framed(const uint8_t* bytes, size_t size) noexcept {
        ssize_t r;
        do {
            r = ::send(order_fd_, bytes, size, MSG_DONTWAIT | MSG_NOSIGNAL);
        } while (r < 0 && errno == EINTR);
        const size_t wrote = r > 0 ? size_t(r) : 0;
        if (wrote < size) {
            ++counters_.partial_writes;
            unsent_framed_.insert(unsent_framed_.end(), bytes + wrote, bytes + size);
            direct_ = false;  // until the node says the client's buffer is empty again
            stop(LoopExit::Unsent);
        }
        return wrote;
    }

    LiveCore& core_;
    session::MoldReceiver& receiver_;
    Journal& journal_;
    Batch feed_, retransmit_;
    net::EventLoop epoll_;
    net::Endpoint server_{};
    LoopOptions options_{};
    int order_fd_ = -1, control_fd_ = -1;
    uint64_t connection_ = 0;
    bool direct_ = false;
    bool exit_ = false;
    bool running_ = false;
    session::SoupClient* soup_ = nullptr;
    std::vector<uint8_t> order_buffer_;
    size_t sent_early_ = 0;  // bytes of the core's outbound buffer already sent (send_early)
    int64_t measured_from_ = kNotMeasured;  // the stamp of the datagram being applied
    int64_t read_at_ = 0;  // when the read that took the datagram being applied returned
    LoopExit reason_ = LoopExit::Turns;
    uint32_t busy_turns_ = 0;
    uint32_t looks_ = 0;  // busy-poll turns since epoll was last asked
    int64_t last_input_ = 0;
    RunStatus failure_ = RunStatus::Ok;
    uint64_t tokens_[kTokens] = {};
    uint32_t ready_[kTokens] = {};
    session::StreamSink sink_{};
    std::vector<uint8_t> released_;
    std::vector<uint64_t> sequences_;
    std::vector<int64_t> stamps_;
    std::vector<uint8_t> decisions_, executions_, tx_, unsent_framed_, unsent_;
    std::vector<PnlSample> samples_;
    session::MoldNotice notices_[kNoticeCapacity] = {};
    size_t notice_count_ = 0;
    LoopCounters counters_{};
    LatencyHistogram tick_to_trade_, read_to_trade_, feed_lag_, turn_time_, away_time_;
    int64_t last_turn_ = 0;
    int64_t returned_at_ = 0;  // when run() last returned (0: it has not run)
    net::SysError socket_error_{};
};

}  // namespace lockstep::live
