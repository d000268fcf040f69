// NASDAQ TotalView-ITCH 5.0 (binary, as in NASDAQ's daily files) -> canonical events.
//
// Framing. A file is a sequence of [u16 big-endian length][message], the message starting with its
// type byte. Some files (RITCH's simulated sample among them) carry a zero in every length prefix;
// a zero prefix followed by a known type byte is therefore read as "length = that type's fixed
// length". A zero prefix followed by an unknown type byte leaves nothing to resync on: decoding
// stops with Status::DecodeError (error() names file and byte offset). With a real prefix, the
// prefix frames the record: an unknown type is UNSUPPORTED_MESSAGE, a known type whose prefix
// disagrees with its fixed length (or whose fields are invalid) is MALFORMED_RECORD; either way
// decoding continues after it. Input ending inside a message makes its tail one TRUNCATED_RECORD.
// Records with a problem emit no events.
//
// Every message: type(1) stock_locate(2) tracking_number(2) timestamp(6, ns since midnight), then
// its fields, all integers big-endian, prices Price(4) = 4 implied decimals.
//
// Mapping (docs/encoding.md is normative; these are the ITCH specifics):
// - Instruments: the table index of a stock locate is assigned at its first appearance, by a stock
//   directory 'R' or by a message that emits events. 'R' gives symbol = stock (spaces stripped),
//   venue "nasdaq", price_increment "0.0001" (Price(4)), size_increment "1", book "l3". A locate
//   used before its directory gets the placeholder symbol "LOCATE<n>" (counted), replaced if its
//   directory comes later. Messages about no stock (system event S, MWCB V/W: locate 0) do not
//   register locates, so no junk instrument appears for locate 0.
// - 'A' / 'F' add -> L3_ADD (side B -> bid, S -> ask, any other byte: MALFORMED), price, shares,
//   order_id = order reference number. An add whose reference is live is still emitted (the
//   validator flags the duplicate) and replaces the decoder's entry.
// - 'E' executed -> L3_EXECUTE (qty executed, price and side of the resting order from the
//   decoder's order map) then TRADE (same price and qty, side = aggressor = opposite of the
//   resting side). 'C' executed with price: the same with the message's execution price; the TRADE
//   only when printable = 'Y' ('N': no print; any other byte: MALFORMED).
// - 'X' cancel -> L3_MODIFY to the remaining qty, price unchanged (remaining 0 removes the order).
// - 'D' delete -> L3_DELETE.
// - 'U' replace -> L3_DELETE of the original reference, then L3_ADD of the new reference (new price
//   and shares, same side): the order loses priority, as ITCH says.
// - 'P' non-cross trade -> TRADE with side none: its buy/sell indicator is the side of the hidden
//   resting order, and NASDAQ has set it to 'B' on every message since 2014, so it says nothing
//   reliable about the aggressor; "unknown" is never wrong.
// - 'Q' cross trade -> TRADE (side none, qty = the 8-byte shares). A cross of 0 shares (NASDAQ
//   publishes those when no cross happened) has no canonical form: zero events, counted.
// - Trading phases (TRADING_PHASE, side = lockstep::TradingPhase, LAST):
//   'S' system event -> the session's phase (order_id kPhaseScopeSession; instrument 0): O start of
//   messages and S start of system hours -> PreOpen, Q start of market hours -> Continuous, M end
//   of market hours, E end of system hours and C end of messages -> Closed. NASDAQ's extended
//   hours are read as not continuous: orders for the regular session rest there unmatched, so a
//   crossed book before 9:30 or after 16:00 is not an error. A system event before any instrument
//   exists is held and emitted (at that message's time) with the first event of the first
//   instrument, or by the directory that creates it.
//   'H' stock trading action -> the stock's own phase (kPhaseScopeInstrument): H halted and
//   P paused -> Halted, Q quotation only (the quoting period before a halt or IPO cross) ->
//   Auction, T trading -> Continuous (free to trade: the session's phase still rules, see
//   effective_phase in core/events.hpp). Any other event code or trading state is MALFORMED.
// - Every other known type (Y, L, V, W, K, J, h, I, N, O, B broken trade) is a record with zero
//   events, counted per type.
// - References the order map does not know are still emitted, so the validator can flag
//   unknown_order_ref rather than the data vanishing: E -> L3_EXECUTE only (price 0; a TRADE print
//   needs a price), C -> as usual with its own price, X -> L3_MODIFY with price 0 and qty 0,
//   D -> L3_DELETE with price 0, U -> L3_DELETE (price 0) then L3_ADD with side none (the side
//   lived in the unknown order). Counted per type.
// - Execution or cancel of more than the remaining shares is emitted as the venue said (a
//   negative remaining on X included) for the validator to judge; the order leaves the map.
// - The last event of each message carries LAST.
// - ts_event = day_start_ns (UTC ns of the session's local midnight, given per file by the caller)
//   + the 48-bit timestamp; ts_recv = ts_event (a file has no receive clock).
// - seq = 1-based message number in the stream (record index + 1). ITCH in a file carries no
//   sequence numbers, so no GAP events are emitted. Live, MoldUDP64 carries them: its packets'
//   message blocks are what this decoder reads (codecs/moldudp64.hpp), and gaps are found there.
// - Records: rec_offset = byte offset of the length prefix in the file's uncompressed content,
//   rec_length = 2 + message bytes. Several files are one stream (order map, instruments and seq
//   carry across), but a message never spans files: a file's tail is truncated on its own.
//
// Order map: order reference -> slot of a pool of live orders (price, remaining shares, side),
// in lockstep's FlatHashMap. It starts small on purpose: a table sized for a whole day's peak
// would spread a quiet stream's few thousand live orders over megabytes and miss cache on every
// lookup (measured: half the speed); it doubles as the book grows, allocating only then.
#pragma once

#include <algorithm>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "lockstep/base/big_endian.hpp"
#include "lockstep/base/flat_hash_map.hpp"
#include "lockstep/base/status.hpp"
#include "lockstep/core/events.hpp"

namespace lockstep::itch {

// Rule codes of lockstep.data.importers.normalized.Rule used here.
constexpr uint8_t kRuleOk = 0;
constexpr uint8_t kRuleMalformed = 9;
constexpr uint8_t kRuleUnsupported = 10;
constexpr uint8_t kRuleTruncated = 11;

constexpr uint32_t kNoIndex = UINT32_MAX;

// Message length (type byte included, length prefix excluded) by type byte; 0 = not an ITCH 5.0
// type.
struct LengthTable {
    uint8_t len[256] = {};
    constexpr LengthTable() {
        len['S'] = 12; len['R'] = 39; len['H'] = 25; len['Y'] = 20; len['L'] = 26;
        len['V'] = 35; len['W'] = 12; len['K'] = 28; len['J'] = 35; len['h'] = 21;
        len['A'] = 36; len['F'] = 40; len['E'] = 31; len['C'] = 36; len['X'] = 23;
        len['D'] = 19; len['U'] = 35; len['P'] = 44; len['Q'] = 40; len['B'] = 19;
        len['I'] = 50; len['N'] = 20; len['O'] = 48;
    }
};
inline constexpr LengthTable kLengths{};

// The same lengths for the decoder's fast path, an unknown type's being one no 16-bit length
// prefix can equal, so that one comparison rejects both an unknown type and a wrong prefix.
struct RunLengthTable {
    uint32_t len[256] = {};
    constexpr RunLengthTable() {
        for (int t = 0; t < 256; ++t) len[t] = kLengths.len[t] ? kLengths.len[t] : 0x10000;
    }
};
inline constexpr RunLengthTable kRunLengths{};

inline uint32_t message_length(uint8_t type) noexcept { return kLengths.len[type]; }

// Where the decoder writes: canonical columns plus the record accounting of one chunk.
struct Sink {
    EventColumns ev;
    int64_t* event_record = nullptr;  // global record index per event
    int32_t* rec_file = nullptr;
    int64_t* rec_offset = nullptr;
    int64_t* rec_length = nullptr;
    uint8_t* rec_problem = nullptr;
    size_t rec_size = 0;
    size_t rec_capacity = 0;
};

// A record with a problem, for the reason text (kept for the first few of each rule).
struct ProblemNote {
    uint64_t record = 0;
    uint32_t file = 0;
    uint64_t offset = 0;
    uint8_t rule = 0;
    uint8_t type = 0;       // the type byte (0 if the record is too short to have one)
    uint32_t prefix = 0;    // the length prefix (truncated: bytes present)
    uint32_t expected = 0;  // the type's fixed length (truncated: bytes the record needed, or 0)
    uint8_t field = 0;      // malformed field: 0 length, 1 side, 2 printable, 3 shares overflow,
                            // 4 system event code, 5 trading state
};

struct Counts {
    uint64_t records = 0;
    uint64_t bytes = 0;               // bytes framed into records (tails included)
    uint64_t messages[256] = {};      // well-framed messages of known types, by type byte
    uint64_t zero_prefix = 0;         // records framed by the type's fixed length
    uint64_t problems[12] = {};       // by Rule code
    uint64_t events[66] = {};         // by EventKind
    uint64_t unknown_ref[256] = {};   // E/C/X/D/U on a reference the order map does not know
    uint64_t duplicate_add = 0;       // A/F/U-new of a reference already live
    uint64_t overfill = 0;            // E/C/X of more shares than the order had left
    uint64_t cross_no_volume = 0;     // Q with 0 shares
    uint64_t placeholder_instruments = 0;
    uint64_t directory_conflicts = 0; // R naming another stock for a locate already named
    uint64_t live_orders_max = 0;
};

struct ErrorInfo {
    Status status = Status::Ok;
    uint32_t file = 0;
    uint64_t offset = 0;
    char message[256] = {};
};

// Who keeps an instrument's resting orders (OrderSource::keeper).
enum class OrderKeeper : uint8_t {
    Decoder = 0,  // the decoder, in its own order map
    Source = 1,   // the source: the decoder looks them up there
    // No one: the caller drops the instrument's events. The decoder tracks none of its orders
    // from now on: an execution, cancel, delete or replace of one is decoded as of an order it
    // does not know (side and price 0, an execution without price not printed), uncounted.
    Nobody = 2,
};

// The resting orders of some instruments, kept by someone else. A decoder given one reads those
// instruments' orders from it instead of tracking them in its own order map: LiveCore's are the
// engine's L3 books, which apply every event the decoder emits for a message before the next
// message is decoded, so one table serves both and each message looks its order up once.
class OrderSource {
public:
    virtual ~OrderSource() = default;
    // Who keeps decoder instrument `instrument`'s orders (asked once per message that names an
    // order; within a day the answer may leave Decoder, never return to it).
    virtual OrderKeeper keeper(uint32_t instrument) noexcept = 0;
    // The order `ref` resting on `instrument` (one the source holds): side (1 bid, 2 ask), price
    // in the message's units and remaining shares; false if it does not rest there.
    virtual bool find(uint32_t instrument, uint64_t ref, uint8_t* side, int64_t* price,
                      int64_t* qty) const noexcept = 0;
};

class ItchDecoder {
public:
    // Two of a message's own, and a session phase held back until an instrument existed.
    static constexpr size_t kMaxEventsPerMessage = 3;
    static constexpr size_t kKeepNotes = 20;

    explicit ItchDecoder(size_t expected_orders = 1 << 12) : orders_(expected_orders) {
        // locate_index_ (256 KB) makes a heap-allocated decoder preferable to one on the stack.
        for (auto& v : locate_index_) v = kNoIndex;
        pool_.reserve(expected_orders);
        free_.reserve(expected_orders);
        notes_.reserve(kKeepNotes * 3);
    }
    ItchDecoder(const ItchDecoder&) = delete;
    ItchDecoder& operator=(const ItchDecoder&) = delete;

    // Starts file `file_index`: offsets restart at 0, every other piece of state carries on.
    void begin_file(uint32_t file_index, int64_t day_start_ns) noexcept {
        file_ = file_index;
        day_start_ = day_start_ns;
        file_pos_ = 0;
    }

    // From now on the orders of every instrument `source` keeps are looked up there, and those
    // of instruments no one keeps are not tracked (null: all tracked here, the default). Orders
    // this decoder already tracks stay here: a lookup the source misses falls back to them, so a
    // stock that leaves the decoder part way through its day loses none. Its own counts then
    // see only what it tracks itself (duplicate adds and the live-order peak are the source's to
    // count for the rest).
    void set_order_source(OrderSource* source) noexcept { source_ = source; }

    // A new day on the same stream (a venue's feed session started over): its stock locates and
    // order references are its own, so the old day's are forgotten and the decoder reads on as a
    // new one would. Counts and the file position carry on.
    void begin_day() noexcept {
        orders_.clear();
        pool_.clear();
        free_.clear();
        instruments_.clear();
        for (auto& v : locate_index_) v = kNoIndex;
        held_session_phase_ = kNoPhase;
    }

    // Decodes the records in data[0, len), which starts at the file position after everything
    // consumed so far. Returns Ok when it needs more input (*consumed < len: a partial message is
    // left, feed it again with more bytes after it; with eof it becomes a TRUNCATED_RECORD),
    // OutputFull when the sink is full (take the chunk, call again with data + *consumed), or
    // DecodeError (error() filled; every later call returns it).
    Status feed(const uint8_t* data, size_t len, bool eof, Sink& out, size_t* consumed) noexcept {
        *consumed = 0;
        if (error_.status != Status::Ok) return error_.status;
        size_t pos = 0;
        Status st = Status::Ok;
        while (pos < len) {
            if (out.rec_size >= out.rec_capacity ||
                out.ev.size + kMaxEventsPerMessage > out.ev.capacity) {
                st = Status::OutputFull;
                break;
            }
            // Once an instrument exists no system event can be held back any more, so the run
            // needs no check for one per event.
            const size_t run_end = held_session_phase_ == kNoPhase && !instruments_.empty()
                                       ? decode_run<false>(data, len, pos, out)
                                       : decode_run<true>(data, len, pos, out);
            if (run_end != pos) {
                pos = run_end;
                continue;
            }
            // The record at pos is one the run leaves to this general path: too short for the
            // input, a zero or wrong length prefix, an unknown type.
            const size_t rem = len - pos;
            const uint8_t* p = data + pos;
            if (rem < 3) {
                if (!eof) break;
                truncated(out, file_pos_ + pos, p, rem, 0);
                pos = len;
                break;
            }
            const uint32_t prefix = load_be16(p);
            const uint8_t type = p[2];
            const uint32_t fixed = kLengths.len[type];
            uint32_t mlen = prefix;
            if (prefix == 0) {
                if (fixed == 0) {
                    st = fail(file_pos_ + pos,
                              "zero length prefix followed by byte 0x%02x, which is not an ITCH 5.0 "
                              "message type: with zero prefixes the stream cannot be resynchronised",
                              type);
                    break;
                }
                mlen = fixed;
                ++counts_.zero_prefix;
            }
            const size_t total = size_t(mlen) + 2;
            if (rem < total) {
                if (!eof) break;
                truncated(out, file_pos_ + pos, p, rem, uint32_t(total));
                pos = len;
                break;
            }
            const uint64_t at = file_pos_ + pos;
            const uint64_t rec = begin_record(out, at, total);
            uint8_t& rule = out.rec_problem[out.rec_size - 1];
            if (fixed == 0) {
                problem(rule, rec, kRuleUnsupported, type, prefix, 0, 0, at);
            } else if (mlen != fixed) {
                problem(rule, rec, kRuleMalformed, type, prefix, fixed, 0, at);
            } else {
                const uint8_t bad = message<true>(out, rec, p + 2, type);
                if (bad) {
                    problem(rule, rec, kRuleMalformed, type, prefix, fixed, bad, at);
                } else {
                    ++counts_.messages[type];
                }
            }
            pos += total;
        }
        *consumed = pos;
        file_pos_ += pos;
        return st;
    }

    // Calls f(kind, locate, ref, side, price) for each order reference the length-prefixed
    // messages in `data` name, with the event kind decoding them gives it (side and price: an
    // add's as the message gives them, else 0). Reads only what lies within `len`; no effect on
    // the decoder's state. The look-ahead of a caller that prefetches (LiveCore).
    template <class F>
    void for_each_reference(const uint8_t* data, size_t len, F&& f) const noexcept {
        constexpr uint8_t kAdd = static_cast<uint8_t>(EventKind::L3Add);
        constexpr uint8_t kModify = static_cast<uint8_t>(EventKind::L3Modify);
        constexpr uint8_t kDelete = static_cast<uint8_t>(EventKind::L3Delete);
        constexpr uint8_t kExecute = static_cast<uint8_t>(EventKind::L3Execute);
        size_t pos = 0;
        while (pos + 2 <= len) {
            const size_t n = load_be16(data + pos);
            const uint8_t* m = data + pos + 2;
            pos += 2 + n;
            if (pos > len) break;
            if (n < 19) continue;  // too short to name a reference
            const uint16_t locate = load_be16(m + 1);
            const uint64_t ref = load_be64(m + 11);
            switch (m[0]) {
                case 'A':
                case 'F':
                    if (n >= 36) f(kAdd, locate, ref, side_of(m[19]), int64_t(load_be32(m + 32)));
                    break;
                case 'E':
                case 'C': f(kExecute, locate, ref, uint8_t{0}, int64_t{0}); break;
                case 'X': f(kModify, locate, ref, uint8_t{0}, int64_t{0}); break;
                case 'D': f(kDelete, locate, ref, uint8_t{0}, int64_t{0}); break;
                case 'U':  // the old reference leaves, the new one joins on the old one's side
                    f(kDelete, locate, ref, uint8_t{0}, int64_t{0});
                    if (n >= 35) f(kAdd, locate, load_be64(m + 19), uint8_t{0}, int64_t(load_be32(m + 31)));
                    break;
                default:
                    break;
            }
        }
    }

    // A hint that a message about `ref` (with the event kind for_each_reference gives it) comes
    // soon, in two stages: its order map slot starts loading, then (`near`: the slot there by
    // now) the record of the order it finds. No effect on the decoder's state.
    void prefetch(uint8_t kind, uint64_t ref, bool near) const noexcept {
        if (!near) return orders_.prefetch(ref);
        if (kind == static_cast<uint8_t>(EventKind::L3Add)) return;  // a new one: a slot only
        const uint32_t slot = orders_.find(ref);
        if (slot != FlatHashMap<uint64_t>::kMissing) __builtin_prefetch(&pool_[slot]);
    }

    // The instrument index the decoder gives stock locate `locate`, kNoIndex before its first
    // message.
    uint32_t instrument_of(uint16_t locate) const noexcept { return locate_index_[locate]; }

    // The current file's compressed stream is cut right after a whole message (feed() with eof
    // left no partial one): one empty TRUNCATED_RECORD where the input ends, so that a cut is
    // never silent. OutputFull when the sink has no room for it.
    Status cut(Sink& out) noexcept {
        if (error_.status != Status::Ok) return error_.status;
        if (out.rec_size >= out.rec_capacity) return Status::OutputFull;
        truncated(out, file_pos_, nullptr, 0, 0);
        return Status::Ok;
    }

    const ErrorInfo& error() const noexcept { return error_; }
    const Counts& counts() const noexcept { return counts_; }
    const std::vector<ProblemNote>& notes() const noexcept { return notes_; }
    uint64_t records() const noexcept { return counts_.records; }
    size_t live_orders() const noexcept { return orders_.size(); }

    // The instrument table in index order: symbol (empty for placeholders) and locate.
    size_t instrument_count() const noexcept { return instruments_.size(); }
    const char* instrument_symbol(size_t i) const noexcept { return instruments_[i].symbol; }
    uint16_t instrument_locate(size_t i) const noexcept { return instruments_[i].locate; }

private:
    struct Order {
        int64_t price;
        int64_t qty;  // remaining shares
        uint8_t side;
    };
    struct InstrumentRow {
        char symbol[9];  // NUL-terminated, spaces stripped; "" until a directory names it
        uint16_t locate;
    };

    // The fast path of feed(): decodes whole records from pos while each has its type's fixed
    // length as its prefix and the sink has room for them all (checked once per run, not per
    // record); returns where it stopped. Everything else is left to feed()'s general path, which
    // produces the same outputs record by record.
    template <bool kMayHold>
    size_t decode_run(const uint8_t* data, size_t len, size_t pos, Sink& out) noexcept {
        const size_t room = std::min(out.rec_capacity - out.rec_size,
                                     (out.ev.capacity - out.ev.size) / kMaxEventsPerMessage);
        const size_t start = pos;
        const uint64_t first_rec = counts_.records;
        uint64_t rec = first_rec;
        const uint64_t rec_end = first_rec + room;
        const uint64_t base = file_pos_;
        const int32_t file = int32_t(file_);
        // A local copy: stores into int64 columns may alias out's size_t fields as far as the
        // compiler knows, which made it reload them after every store.
        Sink o = out;
        while (rec != rec_end && len - pos >= 3) {
            const uint8_t* p = data + pos;
            const uint8_t type = p[2];
            const uint32_t fixed = kRunLengths.len[type];  // never equal to a prefix if unknown
            if (load_be16(p) != fixed || len - pos < fixed + 2) break;
            const size_t total = size_t(fixed) + 2;
            const size_t i = o.rec_size++;
            o.rec_file[i] = file;
            o.rec_offset[i] = int64_t(base + pos);
            o.rec_length[i] = int64_t(total);
            o.rec_problem[i] = kRuleOk;
            const uint8_t bad = message<kMayHold>(o, rec, p + 2, type);
            if (bad) [[unlikely]] {
                problem(o.rec_problem[i], rec, kRuleMalformed, type, fixed, fixed, bad, base + pos);
            } else {
                ++counts_.messages[type];
            }
            ++rec;
            pos += total;
        }
        out.rec_size = o.rec_size;
        out.ev.size = o.ev.size;
        counts_.records = rec;
        counts_.bytes += pos - start;
        return pos;
    }

    uint64_t begin_record(Sink& out, uint64_t offset, size_t total) noexcept {
        const size_t i = out.rec_size++;
        out.rec_file[i] = int32_t(file_);
        out.rec_offset[i] = int64_t(offset);
        out.rec_length[i] = int64_t(total);
        out.rec_problem[i] = kRuleOk;
        ++counts_.records;
        counts_.bytes += total;
        return counts_.records - 1;
    }

    // `cell` is the record's rec_problem entry.
    void problem(uint8_t& cell, uint64_t rec, uint8_t rule, uint8_t type, uint32_t prefix,
                 uint32_t expected, uint8_t field, uint64_t offset) noexcept {
        cell = rule;
        if (counts_.problems[rule]++ < kKeepNotes) {
            ProblemNote n;
            n.record = rec;
            n.file = file_;
            n.offset = offset;
            n.rule = rule;
            n.type = type;
            n.prefix = prefix;
            n.expected = expected;
            n.field = field;
            notes_.push_back(n);  // reserved for kKeepNotes per rule: never reallocates
        }
    }

    // The input ends inside this record: one TRUNCATED_RECORD of the bytes present.
    void truncated(Sink& out, uint64_t offset, const uint8_t* p, size_t rem,
                   uint32_t needed) noexcept {
        const uint64_t rec = begin_record(out, offset, rem);
        problem(out.rec_problem[out.rec_size - 1], rec, kRuleTruncated, rem >= 3 ? p[2] : 0,
                uint32_t(rem), needed, 0, offset);
    }

    // Decodes one well-framed message of a known type; returns 0, or the malformed-field code.
    // kMayHold: whether a system event may be held back (no instrument yet, or one is held).
    template <bool kMayHold>
    [[gnu::always_inline]] uint8_t message(Sink& out, uint64_t rec, const uint8_t* m,
                                           uint8_t type) noexcept {
        const uint16_t locate = load_be16(m + 1);
        const int64_t ts = day_start_ + int64_t(load_be48(m + 5));
        const uint64_t seq = rec + 1;
        switch (type) {
            case 'R':
                directory(locate, m + 11);
                if (held_session_phase_ != kNoPhase) {
                    const uint8_t phase = held_session_phase_;
                    held_session_phase_ = kNoPhase;
                    put(out, rec, ts, seq, locate_index_[locate], kTradingPhase, phase, 1, 0, 0,
                        kPhaseScopeSession);
                }
                return 0;
            case 'S': {
                const uint8_t phase = session_phase_of(m[11]);
                if (phase == kNoPhase) return 4;
                if (instruments_.empty()) {
                    held_session_phase_ = phase;  // emitted with the first instrument's first event
                } else {
                    emit<kMayHold>(out, rec, ts, seq, 0, kTradingPhase, phase, 1, 0, 0,
                                   kPhaseScopeSession);
                }
                return 0;
            }
            case 'H': {
                const uint8_t phase = stock_phase_of(m[19]);
                if (phase == kNoPhase) return 5;
                emit<kMayHold>(out, rec, ts, seq, instrument(locate), kTradingPhase, phase, 1, 0, 0,
                               kPhaseScopeInstrument);
                return 0;
            }
            case 'A':
            case 'F': {
                const uint8_t side = side_of(m[19]);
                if (!side) return 1;
                const uint64_t ref = load_be64(m + 11);
                const int64_t qty = load_be32(m + 20);
                const int64_t price = load_be32(m + 32);
                const uint32_t inst = instrument(locate);
                if (keeper(inst) == OrderKeeper::Decoder) add_order(ref, price, qty, side);
                emit<kMayHold>(out, rec, ts, seq, inst, 2, side, 1, price, qty, ref);
                return 0;
            }
            case 'E':
            case 'C': {
                const uint64_t ref = load_be64(m + 11);
                const int64_t qty = load_be32(m + 19);
                bool print = true;
                int64_t exec_price = 0;
                if (type == 'C') {
                    const uint8_t printable = m[31];
                    if (printable != 'Y' && printable != 'N') return 2;
                    print = printable == 'Y';
                    exec_price = load_be32(m + 32);
                }
                const uint32_t inst = instrument(locate);
                uint8_t side = 0;
                int64_t price = 0, left = 0;
                const OrderKeeper keeps = keeper(inst);
                if (keeps == OrderKeeper::Source && source_->find(inst, ref, &side, &price, &left)) {
                    if (left < qty) ++counts_.overfill;
                } else if (const auto cell = orders_.locate(ref);
                           cell.value != FlatHashMap<uint64_t>::kMissing) {
                    Order& o = pool_[cell.value];
                    side = o.side;
                    price = o.price;
                    o.qty -= qty;
                    if (o.qty <= 0) {
                        if (o.qty < 0) ++counts_.overfill;
                        release(cell);
                    }
                } else {
                    if (keeps != OrderKeeper::Nobody) ++counts_.unknown_ref[type];
                    if (type == 'E') print = false;  // no price to print
                }
                if (type == 'C') price = exec_price;
                emit<kMayHold>(out, rec, ts, seq, inst, 5, side, print ? 0 : 1, price, qty, ref);
                if (print) {
                    const uint8_t aggressor = side == 1 ? 2 : side == 2 ? 1 : 0;
                    emit<kMayHold>(out, rec, ts, seq, inst, 7, aggressor, 1, price, qty, 0);
                }
                return 0;
            }
            case 'X': {
                const uint64_t ref = load_be64(m + 11);
                const int64_t canceled = load_be32(m + 19);
                const uint32_t inst = instrument(locate);
                uint8_t held_side;
                int64_t held_price, held_qty;
                const OrderKeeper keeps = keeper(inst);
                if (keeps == OrderKeeper::Source &&
                    source_->find(inst, ref, &held_side, &held_price, &held_qty)) {
                    const int64_t left = held_qty - canceled;
                    if (left < 0) ++counts_.overfill;
                    emit<kMayHold>(out, rec, ts, seq, inst, 3, held_side, 1, held_price, left, ref);
                    return 0;
                }
                const auto cell = orders_.locate(ref);
                if (cell.value != FlatHashMap<uint64_t>::kMissing) {
                    Order& o = pool_[cell.value];
                    o.qty -= canceled;
                    const int64_t left = o.qty;
                    const int64_t price = o.price;
                    const uint8_t side = o.side;
                    if (left <= 0) {
                        if (left < 0) ++counts_.overfill;
                        release(cell);
                    }
                    emit<kMayHold>(out, rec, ts, seq, inst, 3, side, 1, price, left, ref);
                } else {
                    if (keeps != OrderKeeper::Nobody) ++counts_.unknown_ref['X'];
                    emit<kMayHold>(out, rec, ts, seq, inst, 3, 0, 1, 0, 0, ref);
                }
                return 0;
            }
            case 'D': {
                const uint64_t ref = load_be64(m + 11);
                const uint32_t inst = instrument(locate);
                uint8_t side = 0;
                int64_t price = 0, left;
                const OrderKeeper keeps = keeper(inst);
                if (keeps == OrderKeeper::Source && source_->find(inst, ref, &side, &price, &left)) {
                    // the source's book lets it go when it applies the delete
                } else if (const auto cell = orders_.locate(ref);
                           cell.value != FlatHashMap<uint64_t>::kMissing) {
                    side = pool_[cell.value].side;
                    price = pool_[cell.value].price;
                    release(cell);
                } else {
                    if (keeps != OrderKeeper::Nobody) ++counts_.unknown_ref['D'];
                }
                emit<kMayHold>(out, rec, ts, seq, inst, 4, side, 1, price, 0, ref);
                return 0;
            }
            case 'U': {
                const uint64_t old_ref = load_be64(m + 11);
                const uint64_t new_ref = load_be64(m + 19);
                const int64_t qty = load_be32(m + 27);
                const int64_t price = load_be32(m + 31);
                const uint32_t inst = instrument(locate);
                const OrderKeeper keeps = keeper(inst);
                uint8_t side = 0;
                int64_t old_price = 0, left;
                if (keeps == OrderKeeper::Source &&
                    source_->find(inst, old_ref, &side, &old_price, &left)) {
                    // the source's book takes the delete and the add that follow
                } else if (const auto cell = orders_.locate(old_ref);
                           cell.value != FlatHashMap<uint64_t>::kMissing) {
                    side = pool_[cell.value].side;
                    old_price = pool_[cell.value].price;
                    release(cell);
                    if (keeps == OrderKeeper::Decoder) add_order(new_ref, price, qty, side);
                } else {
                    if (keeps != OrderKeeper::Nobody) ++counts_.unknown_ref['U'];
                }
                emit<kMayHold>(out, rec, ts, seq, inst, 4, side, 0, old_price, 0, old_ref);
                emit<kMayHold>(out, rec, ts, seq, inst, 2, side, 1, price, qty, new_ref);
                return 0;
            }
            case 'P': {
                const int64_t qty = load_be32(m + 20);
                const int64_t price = load_be32(m + 32);
                emit<kMayHold>(out, rec, ts, seq, instrument(locate), 7, 0, 1, price, qty, 0);
                return 0;
            }
            case 'Q': {
                const uint64_t shares = load_be64(m + 11);
                if (shares > uint64_t(INT64_MAX)) return 3;
                if (shares == 0) {
                    ++counts_.cross_no_volume;
                    return 0;
                }
                const int64_t price = load_be32(m + 27);
                emit<kMayHold>(out, rec, ts, seq, instrument(locate), 7, 0, 1, price,
                               int64_t(shares), 0);
                return 0;
            }
            default:
                return 0;  // known, deliberately without events
        }
    }

    static uint8_t side_of(uint8_t c) noexcept { return c == 'B' ? 1 : c == 'S' ? 2 : 0; }

    static constexpr uint8_t kTradingPhase = static_cast<uint8_t>(EventKind::TradingPhase);
    static constexpr uint8_t kNoPhase = 0xff;

    static uint8_t session_phase_of(uint8_t code) noexcept {
        switch (code) {
            case 'O':
            case 'S': return static_cast<uint8_t>(TradingPhase::PreOpen);
            case 'Q': return static_cast<uint8_t>(TradingPhase::Continuous);
            case 'M':
            case 'E':
            case 'C': return static_cast<uint8_t>(TradingPhase::Closed);
            default: return kNoPhase;
        }
    }

    static uint8_t stock_phase_of(uint8_t state) noexcept {
        switch (state) {
            case 'H':
            case 'P': return static_cast<uint8_t>(TradingPhase::Halted);
            case 'Q': return static_cast<uint8_t>(TradingPhase::Auction);
            case 'T': return static_cast<uint8_t>(TradingPhase::Continuous);
            default: return kNoPhase;
        }
    }

    // The per-event helpers are forced inline: in a large translation unit (a Cython module) GCC
    // left them as calls, which cost about a quarter of the decoder's instructions.
    template <bool kMayHold>
    [[gnu::always_inline]] void emit(Sink& out, uint64_t rec, int64_t ts, uint64_t seq,
                                     uint32_t inst, uint8_t kind, uint8_t side, uint8_t flags,
                                     int64_t price, int64_t qty, uint64_t order_id) noexcept {
        if (kMayHold && held_session_phase_ != kNoPhase) [[unlikely]] {
            const uint8_t phase = held_session_phase_;
            held_session_phase_ = kNoPhase;
            put(out, rec, ts, seq, inst, kTradingPhase, phase, 0, 0, 0, kPhaseScopeSession);
        }
        put(out, rec, ts, seq, inst, kind, side, flags, price, qty, order_id);
    }

    [[gnu::always_inline]] void put(Sink& out, uint64_t rec, int64_t ts, uint64_t seq,
                                    uint32_t inst, uint8_t kind, uint8_t side, uint8_t flags,
                                    int64_t price, int64_t qty, uint64_t order_id) noexcept {
        EventColumns& e = out.ev;
        const size_t i = e.size++;
        e.ts_event[i] = ts;
        e.ts_recv[i] = ts;
        e.seq[i] = seq;
        e.instrument[i] = inst;
        e.kind[i] = kind;
        e.side[i] = side;
        e.flags[i] = flags;
        e.price[i] = price;
        e.qty[i] = qty;
        e.order_id[i] = order_id;
        out.event_record[i] = int64_t(rec);
        ++counts_.events[kind];
    }

    [[gnu::always_inline]] OrderKeeper keeper(uint32_t inst) noexcept {
        return source_ == nullptr ? OrderKeeper::Decoder : source_->keeper(inst);
    }

    [[gnu::always_inline]] void add_order(uint64_t ref, int64_t price, int64_t qty,
                                          uint8_t side) noexcept {
        bool inserted;
        uint32_t* cell = orders_.find_or_insert(ref, &inserted);
        if (!inserted) {
            ++counts_.duplicate_add;
            pool_[*cell] = Order{price, qty, side};
            return;
        }
        uint32_t slot;
        if (!free_.empty()) {
            slot = free_.back();
            free_.pop_back();
            pool_[slot] = Order{price, qty, side};
        } else {
            slot = uint32_t(pool_.size());
            pool_.push_back(Order{price, qty, side});  // grows with live orders only
        }
        *cell = slot;
        if (orders_.size() > counts_.live_orders_max) counts_.live_orders_max = orders_.size();
    }

    [[gnu::always_inline]] void release(FlatHashMap<uint64_t>::Cell cell) noexcept {
        free_.push_back(cell.value);  // grows only with the pool (amortized), not per event
        orders_.erase_at(cell);
    }

    [[gnu::always_inline]] uint32_t instrument(uint16_t locate) noexcept {
        uint32_t idx = locate_index_[locate];
        if (idx == kNoIndex) [[unlikely]] {
            idx = new_instrument(locate);
            ++counts_.placeholder_instruments;
        }
        return idx;
    }

    uint32_t new_instrument(uint16_t locate) noexcept {
        const uint32_t idx = uint32_t(instruments_.size());
        InstrumentRow row{};
        row.locate = locate;
        instruments_.push_back(row);  // at most 65,536 rows over a run
        locate_index_[locate] = idx;
        return idx;
    }

    void directory(uint16_t locate, const uint8_t* stock) noexcept {
        char sym[9] = {};
        size_t n = 8;
        while (n > 0 && stock[n - 1] == ' ') --n;
        for (size_t i = 0; i < n; ++i) {
            const uint8_t c = stock[i];
            sym[i] = (c >= 0x21 && c <= 0x7e) ? char(c) : '?';
        }
        uint32_t idx = locate_index_[locate];
        if (idx == kNoIndex) idx = new_instrument(locate);
        InstrumentRow& row = instruments_[idx];
        if (row.symbol[0] == 0) {
            std::memcpy(row.symbol, sym, sizeof sym);
        } else if (std::strcmp(row.symbol, sym) != 0) {
            ++counts_.directory_conflicts;  // first name wins: events already carry the index
        }
    }

    Status fail(uint64_t offset, const char* fmt, ...) noexcept {
        error_.status = Status::DecodeError;
        error_.file = file_;
        error_.offset = offset;
        va_list ap;
        va_start(ap, fmt);
        std::vsnprintf(error_.message, sizeof error_.message, fmt, ap);
        va_end(ap);
        return error_.status;
    }

    OrderSource* source_ = nullptr;
    FlatHashMap<uint64_t> orders_;
    std::vector<Order> pool_;
    std::vector<uint32_t> free_;
    std::vector<InstrumentRow> instruments_;
    uint32_t locate_index_[65536];
    std::vector<ProblemNote> notes_;
    Counts counts_;
    ErrorInfo error_;
    uint32_t file_ = 0;
    int64_t day_start_ = 0;
    uint64_t file_pos_ = 0;
    uint8_t held_session_phase_ = kNoPhase;  // a system event seen before any instrument existed
};

}  // namespace lockstep::itch
