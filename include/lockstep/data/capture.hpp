// The recorder's path to disk: receive threads hand frames to a writer thread through lock-free
// single-producer/single-consumer rings, and the writer appends them to raw capture files
// (docs/raw-format.md) with rotation and an fsync policy.
//
// Why a ring per producer: a receive loop must never wait for the disk. A push encodes the frame
// (header and CRC32C) straight into ring memory, no allocation, no lock, no syscall; a slow disk
// costs ring space. Only a full ring loses a frame, and then it is counted and, as soon as there
// is room again, written into the capture as a `drop` history record (payload: a small JSON
// object), so the capture says what it is missing.
//
// The ring holds encoded frames back to back, so the writer sends a run of consecutive frames to
// the file with one write() straight from ring memory. A frame never wraps: when it does not fit
// before the end of the buffer the producer writes a pad marker (a header whose stream id is
// kPadStream; or nothing, when fewer than a header's bytes are left) and starts again at offset 0.
//
// Crash safety: files are created exclusively and only appended to; a write that fails part way
// (a full disk) is cut back to the last whole frame, so every file reads to its last whole frame.
#pragma once

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "lockstep/base/clock.hpp"
#include "lockstep/base/crc32c.hpp"
#include "lockstep/base/status.hpp"
#include "lockstep/codecs/raw_capture.hpp"

namespace lockstep::capture {

inline constexpr uint32_t kPadStream = 0xFFFFFFFFu;  // ring-internal: skip to the buffer's end
inline constexpr size_t kDropRecordMax = 160;        // bytes of a drop record's JSON payload

enum class FsyncPolicy : int32_t {
    Rotation = 0,  // fsync a file (and its directory) when it is closed, nothing in between
    Interval = 1,  // also every `fsync_interval_ns` while there are bytes not yet synced
    Frame = 2,     // write and fsync each frame on its own before the next
};

// One producer's ring. Positions count bytes since the start and only grow; index = pos & mask.
class FrameRing {
public:
    // Zeroed here, so every page is resident from the start: no first-touch page fault on the
    // producer's hot path, and a process's memory does not creep up as the ring first wraps.
    explicit FrameRing(size_t capacity_pow2) : buf_(new uint8_t[capacity_pow2]()), cap_(capacity_pow2) {}

    size_t capacity() const noexcept { return cap_; }
    size_t used() const noexcept {
        return size_t(head_.load(std::memory_order_acquire) - tail_.load(std::memory_order_acquire));
    }

    // Producer: encodes one frame into the ring, its payload `head` then `body` (either may be
    // empty). False (and nothing written) when it does not fit.
    bool push(int64_t receive_ns, uint32_t stream_id, const uint8_t* head, uint32_t head_len,
              const uint8_t* body = nullptr, uint32_t body_len = 0) noexcept {
        const uint32_t length = head_len + body_len;
        size_t need = raw::kFrameHeader + length;
        uint64_t pos = head_.load(std::memory_order_relaxed);
        size_t at = size_t(pos & (cap_ - 1));
        size_t to_end = cap_ - at;
        size_t pad = need <= to_end ? 0 : to_end;
        if (need > cap_) return false;
        // The consumer's position as last read: it only grows, so a stale one under-counts the
        // room and is safe. Read again only when that room looks short, which spares the hot
        // path a cache line the writer thread keeps taking back.
        if ((pos + pad + need) - seen_tail_ > cap_) {
            seen_tail_ = tail_.load(std::memory_order_acquire);
            if ((pos + pad + need) - seen_tail_ > cap_) return false;
        }
        if (pad) {
            if (pad >= raw::kFrameHeader) write_pad(at);
            pos += pad;
            at = 0;
        }
        uint8_t* out = buf_.get() + at;
        if (head_len) std::memcpy(out + raw::kFrameHeader, head, head_len);
        if (body_len) std::memcpy(out + raw::kFrameHeader + head_len, body, body_len);
        raw::encode_header(out, receive_ns, stream_id, out + raw::kFrameHeader, length);
        head_.store(pos + need, std::memory_order_release);
        return true;
    }

    // Consumer: the bytes ready at the tail, contiguous (up to the end of the buffer).
    const uint8_t* peek(size_t& n) const noexcept {
        uint64_t tail = tail_.load(std::memory_order_relaxed);
        uint64_t head = head_.load(std::memory_order_acquire);
        size_t at = size_t(tail & (cap_ - 1));
        n = std::min<size_t>(size_t(head - tail), cap_ - at);
        return buf_.get() + at;
    }
    void release(size_t n) noexcept {
        tail_.store(tail_.load(std::memory_order_relaxed) + n, std::memory_order_release);
    }

private:
    void write_pad(size_t at) noexcept {
        uint8_t* p = buf_.get() + at;
        std::memset(p, 0, raw::kFrameHeader);
        raw::detail::store32(p + 8, kPadStream);
    }

    std::unique_ptr<uint8_t[]> buf_;
    size_t cap_;
    alignas(64) std::atomic<uint64_t> head_{0};
    uint64_t seen_tail_ = 0;  // the producer's: tail_ when it last read it
    alignas(64) std::atomic<uint64_t> tail_{0};
};

struct CaptureOptions {
    std::string directory;
    std::string prefix;
    uint64_t first_sequence = 1;   // the first file's number (after the highest already there)
    std::string metadata;          // the file header's JSON (stream table and info), fixed
    uint64_t max_bytes = 1ull << 30;
    int64_t window_ns = 0;         // rotation window of receive time; 0: none
    FsyncPolicy fsync = FsyncPolicy::Interval;
    int64_t fsync_interval_ns = 1000000000;
    size_t ring_bytes = 64u << 20; // per producer, a power of two
    uint32_t producers = 1;
    uint32_t history_stream = 0;   // where drop records go
};

// What a producer counts (only its own thread writes it; others read it relaxed).
struct ProducerStats {
    std::atomic<uint64_t> frames{0};         // data frames pushed (history records not counted)
    std::atomic<uint64_t> bytes{0};          // their payload bytes
    std::atomic<uint64_t> dropped{0};        // frames lost to a full ring
    std::atomic<uint64_t> dropped_bytes{0};  // their payload bytes
    std::atomic<uint64_t> drop_records{0};   // drop history records written
    std::atomic<uint64_t> waits{0};          // naps push_waiting took for ring space
};

struct WriterStats {
    std::atomic<uint64_t> frames{0};          // frames written to files
    std::atomic<uint64_t> bytes{0};           // bytes written, file headers included
    std::atomic<uint64_t> files{0};           // files created
    std::atomic<uint64_t> last_sequence{0};   // the newest file's number
    std::atomic<uint64_t> writes{0};          // write() calls
    std::atomic<uint64_t> write_ns{0};        // time in them
    std::atomic<uint64_t> write_ns_max{0};
    std::atomic<uint64_t> fsyncs{0};
};

class CaptureWriter {
public:
    // Allocates the rings; nothing else does. Check options before start().
    Status configure(const CaptureOptions& options) {
        options_ = options;
        size_t r = options.ring_bytes;
        if (options.producers == 0 || r < 4096 || (r & (r - 1)) != 0 || options.max_bytes == 0 ||
            options.window_ns < 0 || options.fsync_interval_ns <= 0)
            return Status::InvalidArgument;
        rings_.clear();
        producer_stats_.clear();
        pending_.assign(options.producers, Pending{});
        for (uint32_t i = 0; i < options.producers; ++i) {
            rings_.emplace_back(new FrameRing(r));
            producer_stats_.emplace_back(new ProducerStats);
        }
        header_.assign(28 + options.metadata.size(), 0);
        path_.reserve(options.directory.size() + options.prefix.size() + 64);
        return Status::Ok;
    }

    Status start() {
        if (rings_.empty() || thread_.joinable()) return Status::InvalidArgument;
        stop_.store(false);
        thread_ = std::thread([this] { run(); });
        return Status::Ok;
    }

    // Waits until every ring is written (or the writer failed), then closes the file.
    void stop() noexcept {
        stop_.store(true, std::memory_order_release);
        if (thread_.joinable()) thread_.join();
    }

    ~CaptureWriter() { stop(); }

    // Producer `p` only. False: the frame was dropped (ring full, or the writer failed).
    bool push(uint32_t p, int64_t receive_ns, uint32_t stream_id, const uint8_t* payload,
              uint32_t length) noexcept {
        FrameRing& ring = *rings_[p];
        ProducerStats& st = *producer_stats_[p];
        Pending& pend = pending_[p];
        if (pend.frames && !flush_drop_record(p, receive_ns)) return count_drop(p, receive_ns, length);
        if (failed_.load(std::memory_order_relaxed) || !ring.push(receive_ns, stream_id, payload, length))
            return count_drop(p, receive_ns, length);
        if (stream_id != options_.history_stream) {
            st.frames.store(st.frames.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
            st.bytes.store(st.bytes.load(std::memory_order_relaxed) + length, std::memory_order_relaxed);
        }
        return true;
    }

    // Producer `p`, for a capture that must not lose a frame (a live session's journal): a full
    // ring waits for the writer instead of dropping. False only when the writer has failed or
    // the frame is larger than the ring. The payload is `head` then `body` (either may be
    // empty), each copied once, straight into the ring.
    bool push_waiting(uint32_t p, int64_t receive_ns, uint32_t stream_id, const uint8_t* head,
                      uint32_t head_len, const uint8_t* body = nullptr,
                      uint32_t body_len = 0) noexcept {
        FrameRing& ring = *rings_[p];
        const uint32_t length = head_len + body_len;
        if (raw::kFrameHeader + size_t(head_len) + body_len > ring.capacity()) return false;
        while (!ring.push(receive_ns, stream_id, head, head_len, body, body_len)) {
            if (failed_.load(std::memory_order_acquire)) return false;
            ProducerStats& st = *producer_stats_[p];
            st.waits.store(st.waits.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
            timespec nap{0, 50000};
            ::nanosleep(&nap, nullptr);
        }
        ProducerStats& st = *producer_stats_[p];
        st.frames.store(st.frames.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        st.bytes.store(st.bytes.load(std::memory_order_relaxed) + length, std::memory_order_relaxed);
        return true;
    }

    // Waits until every frame pushed so far is written to the file (or the writer failed).
    void wait_written() const noexcept {
        for (const auto& ring : rings_)
            while (ring->used() != 0 && !failed_.load(std::memory_order_acquire)) {
                timespec nap{0, 50000};
                ::nanosleep(&nap, nullptr);
            }
    }

    // Producer `p`: a batch of datagrams laid out in slots (datagram i at data + i * slot); only
    // rows whose keep[i] is nonzero (keep may be null: all). Returns how many were dropped.
    size_t push_slots(uint32_t p, uint32_t stream_id, const uint8_t* data, size_t slot,
                      const uint32_t* length, const int64_t* stamp_ns, const uint8_t* keep,
                      size_t n) noexcept {
        size_t dropped = 0;
        for (size_t i = 0; i < n; ++i) {
            if (keep && !keep[i]) continue;
            uint32_t len = length[i] < slot ? length[i] : uint32_t(slot);
            dropped += !push(p, stamp_ns[i], stream_id, data + i * slot, len);
        }
        return dropped;
    }

    bool failed() const noexcept { return failed_.load(std::memory_order_acquire); }
    int error_errno() const noexcept { return errno_; }
    const std::string& error_what() const noexcept { return what_; }  // read after failed()
    const std::string& error_path() const noexcept { return error_path_; }
    const WriterStats& stats() const noexcept { return stats_; }
    const ProducerStats& producer_stats(uint32_t p) const noexcept { return *producer_stats_[p]; }
    size_t ring_used(uint32_t p) const noexcept { return rings_[p]->used(); }
    size_t ring_capacity() const noexcept { return options_.ring_bytes; }
    uint32_t producers() const noexcept { return uint32_t(rings_.size()); }

private:
    struct Pending {  // frames dropped and not yet told in a drop record (producer-owned)
        uint64_t frames = 0, bytes = 0;
        int64_t first_ns = 0, last_ns = 0;
    };

    bool count_drop(uint32_t p, int64_t receive_ns, uint32_t length) noexcept {
        ProducerStats& st = *producer_stats_[p];
        Pending& pend = pending_[p];
        if (pend.frames == 0) pend.first_ns = receive_ns;
        pend.last_ns = receive_ns;
        ++pend.frames;
        pend.bytes += length;
        st.dropped.store(st.dropped.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        st.dropped_bytes.store(st.dropped_bytes.load(std::memory_order_relaxed) + length,
                               std::memory_order_relaxed);
        return false;
    }

    // The history record of the drops so far, into the ring; true when written.
    bool flush_drop_record(uint32_t p, int64_t receive_ns) noexcept {
        if (failed_.load(std::memory_order_relaxed)) return false;
        Pending& pend = pending_[p];
        char text[kDropRecordMax];
        int n = std::snprintf(text, sizeof text,
                              "{\"bytes\":%llu,\"first_ns\":%lld,\"frames\":%llu,\"last_ns\":%lld,"
                              "\"record\":\"drop\",\"stream_id\":%u}",
                              (unsigned long long)pend.bytes, (long long)pend.first_ns,
                              (unsigned long long)pend.frames, (long long)pend.last_ns, p);
        if (!rings_[p]->push(receive_ns, options_.history_stream,
                             reinterpret_cast<const uint8_t*>(text), uint32_t(n)))
            return false;
        pend = Pending{};
        ProducerStats& st = *producer_stats_[p];
        st.drop_records.store(st.drop_records.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        return true;
    }

    void fail(const char* what, int err) noexcept {
        errno_ = err;
        what_ = what;
        error_path_ = path_;
        failed_.store(true, std::memory_order_release);
    }

    void run() noexcept {
        while (!failed_.load(std::memory_order_relaxed)) {
            bool any = false;
            for (uint32_t p = 0; p < rings_.size() && !failed_.load(std::memory_order_relaxed); ++p)
                any |= drain(*rings_[p]);
            if (fd_ >= 0 && options_.fsync == FsyncPolicy::Interval && unsynced_ &&
                monotonic_ns() - last_sync_ns_ >= options_.fsync_interval_ns)
                sync_file();
            if (!any) {
                // Stopping: the rings were found empty after the stop flag was seen, so every
                // frame pushed before stop() is written.
                if (stopping_) break;
                stopping_ = stop_.load(std::memory_order_acquire);
                if (!stopping_) {
                    timespec nap{0, 200000};  // idle: 0.2 ms, far under a ring's worth of time
                    ::nanosleep(&nap, nullptr);
                }
            }
        }
        if (fd_ >= 0) close_file();
    }

    // Writes what one ring holds, in runs of whole frames; true when it wrote or skipped anything.
    bool drain(FrameRing& ring) noexcept {
        size_t n;
        const uint8_t* p = ring.peek(n);
        if (n == 0) return false;
        size_t run = 0;  // bytes of whole frames from p not yet written
        size_t frames = 0;
        size_t done = 0;  // bytes consumed from p (written or pad)
        bool one_each = options_.fsync == FsyncPolicy::Frame;
        while (done + run < n) {
            const uint8_t* h = p + done + run;
            size_t left = n - done - run;
            if (left < raw::kFrameHeader) {  // a pad gap of fewer than a header's bytes at the end
                if (!flush_run(p + done, run, frames)) return true;
                done += run + left;
                run = frames = 0;
                break;
            }
            uint32_t stream = raw::detail::load32(h + 8);
            if (stream == kPadStream) {
                if (!flush_run(p + done, run, frames)) return true;
                done += run + left;
                run = frames = 0;
                break;
            }
            uint32_t len = raw::detail::load32(h + 12);
            int64_t ns = int64_t(raw::detail::load64(h));
            size_t frame = raw::kFrameHeader + len;
            if (needs_new_file(ns, frame)) {
                if (!flush_run(p + done, run, frames)) return true;
                done += run;
                run = frames = 0;
                if (fd_ >= 0) close_file();
                if (!open_file(ns)) return true;
            }
            run += frame;
            ++frames;
            file_size_ += frame;
            file_frames_ += 1;
            if (one_each) {
                if (!flush_run(p + done, run, frames)) return true;
                done += run;
                run = frames = 0;
                sync_file();
            }
        }
        if (run && !flush_run(p + done, run, frames)) return true;
        done += run;
        ring.release(done);
        return true;
    }

    // Rotation before a frame of `frame` bytes at `ns`: when the open file holds frames and the
    // frame would take it past max_bytes or falls in a later receive-time window.
    bool needs_new_file(int64_t ns, size_t frame) const noexcept {
        if (fd_ < 0) return true;
        if (file_frames_ == 0) return false;
        if (file_size_ + frame > options_.max_bytes) return true;
        return options_.window_ns > 0 && window_of(ns) > window_;
    }

    int64_t window_of(int64_t ns) const noexcept {
        if (options_.window_ns <= 0) return 0;
        int64_t q = ns / options_.window_ns;
        return (ns % options_.window_ns < 0) ? q - 1 : q;
    }

    bool flush_run(const uint8_t* data, size_t n, size_t frames) noexcept {
        if (n == 0) return true;
        int64_t t0 = monotonic_ns();
        size_t off = 0;
        while (off < n) {
            ssize_t w = ::write(fd_, data + off, n - off);
            if (w < 0) {
                if (errno == EINTR) continue;
                int err = errno;
                // Cut a partly written frame off, so the file ends on a whole frame.
                (void)::ftruncate(fd_, off_t(written_size_));
                fail("write", err);
                return false;
            }
            off += size_t(w);
        }
        written_size_ += n;
        int64_t dt = monotonic_ns() - t0;
        stats_.writes.fetch_add(1, std::memory_order_relaxed);
        stats_.write_ns.fetch_add(uint64_t(dt), std::memory_order_relaxed);
        if (uint64_t(dt) > stats_.write_ns_max.load(std::memory_order_relaxed))
            stats_.write_ns_max.store(uint64_t(dt), std::memory_order_relaxed);
        stats_.frames.fetch_add(frames, std::memory_order_relaxed);
        stats_.bytes.fetch_add(n, std::memory_order_relaxed);
        unsynced_ = true;
        return true;
    }

    bool open_file(int64_t first_ns) noexcept {
        for (int attempt = 0; attempt < 1000; ++attempt) {
            uint64_t seq = next_sequence_ ? next_sequence_ : options_.first_sequence;
            next_sequence_ = seq + 1;
            char name[64];
            std::snprintf(name, sizeof name, "-%06llu.lsraw", (unsigned long long)seq);
            path_.assign(options_.directory);
            path_.push_back('/');
            path_.append(options_.prefix);
            path_.append(name);
            // The file appears under its name with its header already in it (written under a
            // hidden name, then linked in): a kill at any moment never leaves an empty file.
            staging_.assign(options_.directory);
            staging_.append("/.");
            staging_.append(options_.prefix);
            staging_.append(name);
            staging_.append(".new");
            int fd = ::open(staging_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
            if (fd < 0) {
                if (errno == EEXIST) continue;  // another writer's, or a killed one's: the next
                fail("open", errno);
                return false;
            }
            fd_ = fd;
            size_t head = encode_file_header(seq);
            written_size_ = 0;
            file_size_ = 0;
            file_frames_ = 0;
            if (!flush_run(header_.data(), head, 0)) {
                ::unlink(staging_.c_str());
                return false;
            }
            int linked = ::link(staging_.c_str(), path_.c_str());
            int link_errno = linked == 0 ? 0 : errno;
            if (linked != 0 && link_errno != EEXIST) {
                // A file system without hard links: moved in instead (it would replace only a
                // file another writer made under the same name in the same instant).
                linked = ::rename(staging_.c_str(), path_.c_str());
                link_errno = linked == 0 ? 0 : errno;
            } else {
                ::unlink(staging_.c_str());
            }
            if (linked != 0) {
                ::close(fd_);
                fd_ = -1;
                if (link_errno == EEXIST) continue;  // another writer's file: never touched
                ::unlink(staging_.c_str());
                fail("link", link_errno);
                return false;
            }
            file_size_ = head;
            window_ = window_of(first_ns);
            stats_.files.fetch_add(1, std::memory_order_relaxed);
            stats_.last_sequence.store(seq, std::memory_order_relaxed);
            sync_directory();
            return true;
        }
        fail("open (1000 names taken)", EEXIST);
        return false;
    }

    size_t encode_file_header(uint64_t seq) noexcept {
        uint8_t* h = header_.data();
        std::memcpy(h, "LSRAW\0", 6);
        h[6] = 1;
        h[7] = 0;
        uint32_t m = uint32_t(options_.metadata.size());
        raw::detail::store32(h + 8, m);
        raw::detail::store32(h + 12, 0);
        raw::detail::store64(h + 16, seq);
        std::memcpy(h + 24, options_.metadata.data(), m);
        raw::detail::store32(h + 24 + m, crc32c::value(h, 24 + m));
        return 28 + m;
    }

    void sync_file() noexcept {
        if (fd_ < 0 || !unsynced_) return;
        ::fdatasync(fd_);
        stats_.fsyncs.fetch_add(1, std::memory_order_relaxed);
        unsynced_ = false;
        last_sync_ns_ = monotonic_ns();
    }

    void sync_directory() noexcept {
        int d = ::open(options_.directory.c_str(), O_RDONLY | O_CLOEXEC);
        if (d >= 0) {
            ::fsync(d);
            ::close(d);
        }
    }

    void close_file() noexcept {
        unsynced_ = true;
        sync_file();
        ::close(fd_);
        fd_ = -1;
        sync_directory();
    }

    CaptureOptions options_;
    std::vector<std::unique_ptr<FrameRing>> rings_;
    std::vector<std::unique_ptr<ProducerStats>> producer_stats_;
    std::vector<Pending> pending_;
    std::vector<uint8_t> header_;
    std::string path_, staging_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    std::atomic<bool> failed_{false};
    bool stopping_ = false;
    int errno_ = 0;
    std::string what_;
    std::string error_path_;
    int fd_ = -1;
    uint64_t next_sequence_ = 0;
    uint64_t file_size_ = 0;     // bytes of the open file, counting frames of the run being built
    uint64_t written_size_ = 0;  // bytes of the open file that write() has taken
    uint64_t file_frames_ = 0;
    int64_t window_ = 0;
    bool unsynced_ = false;
    int64_t last_sync_ns_ = 0;
    WriterStats stats_;
};

}  // namespace lockstep::capture
