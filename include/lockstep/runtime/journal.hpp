// A live session's journal (docs/journal.md is normative): the recorder's raw-capture writer
// (data/capture.hpp: one lock-free ring, a writer thread, CRC32C frames, rotation) with a push
// that never drops, so the live loop appends frames without a syscall and the journal still
// holds every record. One producer: the thread that runs the live session.
#pragma once

#include <cstdint>

#include "lockstep/base/status.hpp"
#include "lockstep/data/capture.hpp"

namespace lockstep::live {

// The journal's streams, in the order of its file header's stream table (Python
// lockstep.live.journal.STREAMS names them).
enum class JournalStream : uint32_t {
    Itch = 0,
    Ouch = 1,
    Tick = 2,
    Gap = 3,
    Finish = 4,
    Control = 5,
    Dispatch = 6,
    Decision = 7,
    Execution = 8,
    Failure = 9,
    End = 10,
    Snapshot = 11,
    SnapshotPart = 12,
};

class Journal {
public:
    // Allocates the ring and starts the writer thread. `options.metadata` is the file header's
    // JSON (stream table and session info); producers is forced to 1.
    Status open(capture::CaptureOptions options) {
        options.producers = 1;
        if (Status s = writer_.configure(options); s != Status::Ok) return s;
        return writer_.start();
    }

    // False only when the writer has failed (the file system refused a write): the journal is
    // then incomplete and the session must stop.
    bool append(int64_t receive_ns, JournalStream stream, const uint8_t* payload,
                uint32_t length) noexcept {
        return writer_.push_waiting(0, receive_ns, uint32_t(stream), payload, length);
    }

    // A frame whose payload is `head` followed by `body` (an ITCH input's sequence and blocks).
    bool append(int64_t receive_ns, JournalStream stream, const uint8_t* head, uint32_t head_len,
                const uint8_t* body, uint32_t body_len) noexcept {
        return writer_.push_waiting(0, receive_ns, uint32_t(stream), head, head_len, body, body_len);
    }

    void wait_written() const noexcept { writer_.wait_written(); }
    void close() noexcept { writer_.stop(); }
    bool failed() const noexcept { return writer_.failed(); }
    const capture::CaptureWriter& writer() const noexcept { return writer_; }

private:
    capture::CaptureWriter writer_;
};

}  // namespace lockstep::live
