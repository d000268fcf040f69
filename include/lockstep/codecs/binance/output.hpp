// Where the Binance decoder's records and events go: the caller's columns (Output), and the
// window that holds records back while a buffered depth diff's disposition is unknown.
//
// Records leave in input order, each with all its events; a held record leaves only once it is
// settled (the decoder says up to which record that is) and `out` has room for it whole.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "lockstep/base/grow_capacity.hpp"
#include "lockstep/base/status.hpp"
#include "lockstep/core/events.hpp"

namespace lockstep::binance {

// Per-record columns of one output chunk (the caller's arrays).
struct RecordColumns {
    int32_t* file = nullptr;
    int64_t* line = nullptr;
    int64_t* offset = nullptr;
    int64_t* length = nullptr;
    uint8_t* problem = nullptr;
    size_t size = 0;
    size_t capacity = 0;
};

// Where feed() writes: events (with the global record index of each) and records.
struct Output {
    EventColumns ev;
    int64_t* ev_record = nullptr;
    RecordColumns rec;
};

struct HeldEvent {
    int64_t ts_event, ts_recv;
    uint64_t seq;
    uint32_t instrument;
    uint8_t kind, side, flags;
    int64_t price, qty;
    uint64_t order_id;
    uint64_t record;  // global index of the record it belongs to
};

struct HeldRecord {
    uint32_t file;
    uint64_t line, offset, length;
    uint8_t problem;
};

class HeldOutput {
public:
    HeldOutput() {
        events_.reserve(1024);
        records_.reserve(256);
    }

    // Nothing waits to be handed out.
    bool empty() const noexcept { return pos_ == records_.size(); }

    // Holds record `index` (the next in input order). false: out of memory.
    bool hold_record(uint64_t index, const HeldRecord& r) noexcept {
        if (empty()) {  // restart the window at this record
            records_.clear();
            pos_ = 0;
            first_ = index;
        }
        if (records_.size() == records_.capacity() && !grow_capacity(records_)) return false;
        records_.push_back(r);
        return true;
    }

    bool hold_event(const HeldEvent& e) noexcept {
        if (events_.size() == events_.capacity() && !grow_capacity(events_)) return false;
        events_.push_back(e);
        return true;
    }

    // The events held so far, to take back those a record turned out not to have.
    size_t event_count() const noexcept { return events_.size(); }
    void drop_events_from(size_t n) noexcept { events_.resize(n); }

    // A held record's problem, decided after it was held (a buffered diff given up or stale).
    void set_problem(uint64_t record, uint8_t problem) noexcept {
        if (record >= first_ + pos_ && record - first_ < records_.size())
            records_[size_t(record - first_)].problem = problem;
    }

    // Hands out the records before `settled_end`, each with all its events, as far as `out` has
    // room: OutputFull when it has not, with `needed_events` set when not even one record fits
    // an empty `out`.
    Status hand_out(Output& out, uint64_t settled_end, size_t& needed_events) noexcept {
        while (pos_ < records_.size()) {
            const uint64_t r = first_ + pos_;
            if (r >= settled_end) break;
            size_t k = 0;
            while (ev_pos_ + k < events_.size() && events_[ev_pos_ + k].record == r) ++k;
            if (out.rec.size >= out.rec.capacity || out.ev.capacity - out.ev.size < k) {
                if (out.rec.size == 0) needed_events = k;
                return Status::OutputFull;
            }
            EventColumns& ev = out.ev;
            for (size_t j = 0; j < k; ++j) {
                const HeldEvent& e = events_[ev_pos_ + j];
                out.ev_record[ev.size] = int64_t(e.record);
                ev.push(e.ts_event, e.ts_recv, e.seq, e.instrument, static_cast<EventKind>(e.kind),
                        static_cast<Side>(e.side), e.flags, e.price, e.qty, e.order_id);
            }
            ev_pos_ += k;
            const HeldRecord& w = records_[pos_++];
            RecordColumns& rc = out.rec;
            const size_t i = rc.size++;
            rc.file[i] = int32_t(w.file);
            rc.line[i] = int64_t(w.line);
            rc.offset[i] = int64_t(w.offset);
            rc.length[i] = int64_t(w.length);
            rc.problem[i] = w.problem;
        }
        if (pos_ == records_.size()) {
            records_.clear();
            events_.clear();
            pos_ = ev_pos_ = 0;
        } else if (pos_ >= 4096 && 2 * pos_ >= records_.size()) {
            // A long hold (a symbol that never gets its snapshot): keep the window compact.
            records_.erase(records_.begin(), records_.begin() + ptrdiff_t(pos_));
            events_.erase(events_.begin(), events_.begin() + ptrdiff_t(ev_pos_));
            first_ += pos_;
            pos_ = ev_pos_ = 0;
        }
        return Status::Ok;
    }

private:
    std::vector<HeldEvent> events_;
    std::vector<HeldRecord> records_;
    size_t ev_pos_ = 0, pos_ = 0;  // the first not handed out
    uint64_t first_ = 0;           // global index of records_[0]
};

}  // namespace lockstep::binance
