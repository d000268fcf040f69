// Binance websocket captures -> canonical events, with every input record accounted for.
//
// Input: text, one message per line, `<receive ns> <JSON>`, where the JSON is a combined-stream
// message {"stream":"<sym>@<type>","data":{...}} or a bare REST depth snapshot
// {"lastUpdateId":N,"bids":[...],"asks":[...]} (which names no symbol). Several files given in
// order are one stream (daily rotation): all state carries across begin_file().
// Markets: spot, USD-M futures and COIN-M futures (symbols like BTCUSD_PERP / ETHUSD_241227,
// depth diffs with `pu` and the pair field `ps`, quantities in contracts).
//
// Records (lockstep.data.importers.normalized is the contract): one non-empty line is one record; blank
// lines are not records (counted as empty_line). Every record goes out exactly once, in input
// order, with its file, 1-based line, byte offset in the file's text, length (the line's bytes
// without its '\n') and a Rule code;
// every event names the global index of its record. A record the decoder cannot use gets a Rule
// and no events, and decoding goes on with the next line:
//   MALFORMED_RECORD     bad JSON, a known message with missing or ill-typed fields, a value that
//                        is not an exact multiple of its increment (only when the scan pass did
//                        not check them: it refines an increment coarser than the data), overflow
//                        of int64 units, a line too long;
//   UNSUPPORTED_MESSAGE  a stream we do not decode (kline, partial depth, ...);
//   DUPLICATE_MESSAGE    a depth diff older than the chain (u <= previous u);
//   DELTAS_BEFORE_SNAPSHOT  a depth diff that never met a snapshot (buffer bound, end of stream);
//   TRUNCATED_RECORD     the final line of a file ends mid-message (a killed recorder).
// Records understood but without a canonical form are ordinary zero-event records: subscription
// replies and other non-market JSON, USD-M trades with X != MARKET, depth diffs without levels or
// already inside the snapshot, aggTrades duplicating a trade stream. Each is counted per reason.
// Fatal (a Status and error() naming file, line, offset): configuration problems only -- spot and
// futures depth mixed in one stream, a symbol with no increments while inference is off, a
// snapshot whose symbol cannot be attributed, out of memory.
//
// Encoding choices (docs/encoding.md is normative; these are the Binance specifics):
// - ts_recv: the line's receive ns, raised to the previous accepted line's when the capture clock
//   steps back (flag BadTsRecv, counted with locations), so the output is in Processing Order.
//   Only records without a problem move this clock: a garbage line cannot drag it forward.
// - ts_event: the transaction time T when present (the matching-engine time at which the book or
//   trade happened), else the event time E (when Binance pushed it), in ms -> ns. Spot bookTicker
//   and the spot REST snapshot carry neither: ts_event = ts_recv for them.
// - seq: final update id `u` (depth, bookTicker), trade id `t`, aggregate id `a` (aggTrade),
//   lastUpdateId (snapshot events).
// - depth diff -> one L2Set per level (bids first, then asks; qty 0 removes), LAST on the final one.
//   A diff with no levels is valid and advances the update-id chain, but has nothing to emit: a
//   zero-event record (counted depth_no_levels) instead of an invented no-op event.
// - trade / aggTrade -> Trade, side = aggressor: `m` (buyer is maker) true -> Ask, false -> Bid.
//   USD-M trades whose order type X is not MARKET (insurance fund, ADL) did not cross the book:
//   zero-event records (non_market_trade); futures aggTrades never aggregate those.
// - trade and aggTrade of one symbol are the same prints. Decided per symbol, in the one pass, on
//   first sight of a `trade` message: from then on its aggTrades are zero-event records
//   (agg_trade_duplicate). aggTrades before that first trade are emitted (there was no trade
//   stream yet to carry them), and a trade whose id t is within the last emitted aggTrade's range
//   (t <= its `l`) is a zero-event record (trade_in_agg_trade) so no print is emitted twice. A
//   sniff-based decision would depend on how far the sniff reads; this one only on the data.
// - bookTicker -> two VenueBbo events, bid then ask (LAST on the ask).
// - snapshot -> BookClear then one L2Set per level (bids, then asks), all flagged Snapshot.
// - Update-id reconciliation, per instrument, by Binance's documented rules (reconcile.hpp):
//   diffs are buffered until the instrument's first snapshot; those the snapshot already
//   contains are zero-event records, a diff not after the chain's last u is DUPLICATE_MESSAGE.
//   A broken chain emits a Gap event (kind 64, seq = the id found: U for spot, pu for futures, or
//   U for a diff not bridging the snapshot; order_id = the id expected; flags LAST; the diff's
//   ts_event) before that diff's own events, which follow as usual: the chain continues from it.
//   Gaps are also counted with locations.
// - Buffered diffs applied after the snapshot are emitted right after it with the snapshot line's
//   ts_recv (the first moment a book could know them) and their own ts_event and seq, and their
//   events (Gap included) are attributed to the snapshot's record: event_record never decreases
//   and chunks stay contiguous. Their own records are zero-event records (or DUPLICATE_MESSAGE /
//   DELTAS_BEFORE_SNAPSHOT if the reconciliation drops them).
// - Holding back: a buffered diff's disposition is known only when its snapshot arrives, and a
//   record must not be handed out before its disposition is known. So while any diff is buffered,
//   records (from the oldest buffered one on) and their events wait in an internal window; only
//   the settled prefix goes to the caller. The window is bounded: when it holds more than
//   max_held_records records, the oldest buffered diffs are given up (DELTAS_BEFORE_SNAPSHOT),
//   which depends only on the data, never on the caller's batch size.
// - Market type: futures depth diffs carry `pu`, spot ones do not; mixing them is fatal. COIN-M is
//   told from USD-M by an underscore contract suffix in a symbol or the `ps` field, or given.
//
// This file is the driver: lines and records, and the rules of each message. It reads messages
// with messages.hpp, finds instruments in catalogue.hpp, asks reconcile.hpp what a depth diff
// is, writes or holds back records and events with output.hpp, and reports through reports.hpp.
#pragma once

#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "lockstep/base/decimal.hpp"
#include "lockstep/base/status.hpp"
#include "lockstep/codecs/binance/catalogue.hpp"
#include "lockstep/codecs/binance/messages.hpp"
#include "lockstep/codecs/binance/output.hpp"
#include "lockstep/codecs/binance/reconcile.hpp"
#include "lockstep/codecs/binance/reports.hpp"
#include "lockstep/codecs/json_scan.hpp"
#include "lockstep/core/events.hpp"
#include "lockstep/core/rules.hpp"

namespace lockstep::binance {

// Trades and aggTrades of one symbol are the same prints: which stream carries them (see the
// header comment), decided on the data alone.
class PrintSource {
public:
    void saw_trade() noexcept { trade_stream_ = true; }
    bool agg_trades_duplicate() const noexcept { return trade_stream_; }
    bool within_agg_trade(uint64_t trade_id) const noexcept {
        return agg_emitted_ && trade_id <= agg_last_trade_;
    }
    // An emitted aggTrade covers the trade ids up to its `l`.
    void covered_trades_up_to(uint64_t last_trade_id) noexcept {
        if (!agg_emitted_ || last_trade_id > agg_last_trade_) agg_last_trade_ = last_trade_id;
        agg_emitted_ = true;
    }

private:
    bool trade_stream_ = false;
    bool agg_emitted_ = false;
    uint64_t agg_last_trade_ = 0;
};

class BinanceDecoder {
public:
    BinanceDecoder() {
        levels_.reserve(4096);
        carry_.reserve(1 << 16);
        reasons_.reserve(kRuleCount * LocationLog::kKeep);  // never reallocates afterwards
    }
    BinanceDecoder(const BinanceDecoder&) = delete;
    BinanceDecoder& operator=(const BinanceDecoder&) = delete;

    // ---- configuration (allocates; call before feeding) ----

    // A symbol with a fixed instrument index.
    Status add_instrument(const char* sym, size_t n, uint32_t index, Increment price, Increment size,
                          IncrementSource source) {
        return catalogue_.add_indexed(sym, n, index, price, size, source);
    }

    // A symbol whose increments are known but which gets an index only if it appears in the data
    // (built-in or inferred tables), so unused catalogue entries do not pollute the table.
    Status add_catalog(const char* sym, size_t n, Increment price, Increment size,
                       IncrementSource source) {
        return catalogue_.add(sym, n, price, size, source);
    }

    // Increments for every symbol not otherwise known (one-symbol captures, explicit options).
    Status set_default_increments(Increment price, Increment size) {
        return catalogue_.set_default_increments(price, size);
    }

    // Snapshot lines name no symbol: normally the one symbol seen so far; this overrides it.
    Status set_snapshot_symbol(const char* sym, size_t n) {
        if (!valid_symbol(sym, n)) return Status::InvalidArgument;
        snapshot_symbol_.assign(sym, n);
        return Status::Ok;
    }

    // The market, when the caller knows it: depth diffs of the other family are then fatal.
    void set_market_type(MarketType m) noexcept {
        forced_market_ = m;
        if (m == MarketType::Spot) market_ = MarketType::Spot;
        if (m == MarketType::UsdM || m == MarketType::CoinM) market_ = MarketType::UsdM;
    }

    // Scan mode emits nothing and needs no increments: it collects, per symbol, the exact decimal
    // GCD of every price and size (the inferred increments), plus symbols and market type, and
    // for symbols configured with increments the first value off them (Instrument::*_finer).
    void set_scan_mode(bool on) noexcept {
        scan_ = on;
        catalogue_.set_scan_mode(on);
    }

    // Bound on depth diffs buffered before a snapshot (levels); beyond it the oldest half is
    // dropped and counted (depth_unsynced).
    void set_pending_limit(size_t levels, size_t messages) noexcept {
        bounds_.levels = levels ? levels : 1;
        bounds_.messages = messages ? messages : 1;
    }
    // Bound on records held back behind a buffered diff (see the header comment).
    void set_max_held_records(size_t n) noexcept { max_held_records_ = n ? n : 1; }
    void set_max_line(size_t bytes) noexcept { max_line_ = bytes ? bytes : 1; }

    // ---- decoding ----

    // Starts file `file_index` (as the caller numbers its inputs): line numbers restart, every
    // other piece of state carries on. A partial line left by a previous file without finish()
    // is dropped.
    void begin_file(uint32_t file_index) noexcept {
        file_ = file_index;
        line_no_ = 0;
        file_bytes_ = 0;
        file_records_ = 0;
        carry_.clear();
        discarding_ = false;
        discard_len_ = 0;
        cut_done_ = false;
    }

    // Decodes the complete lines in data[0, len) into `out` (appending at its sizes). Returns Ok
    // with *consumed == len when everything was taken (a trailing partial line is kept inside for
    // the next call or finish()); OutputFull when `out` is full: hand out its records and events,
    // reset the sizes and call again with data + *consumed (if `out` holds no record, one record
    // needs more event room than it has: needed_events() says how much); a fatal status with
    // error() filled, after which every call returns the same error.
    Status feed(const char* data, size_t len, Output& out, size_t* consumed) noexcept {
        *consumed = 0;
        if (error_.status != Status::Ok) return error_.status;
        if (!scan_ && (out.ev.capacity == 0 || out.rec.capacity == 0))
            return Status::InvalidArgument;
        out_ = &out;
        Status st = drain(out);
        if (st != Status::Ok || len == 0) return st;
        size_t pos = 0;
        if (discarding_ || !carry_.empty()) {
            const char* nl = static_cast<const char*>(std::memchr(data, '\n', len));
            if (!nl) {
                if (!append_carry(data, len)) return error_.status;
                *consumed = len;
                return Status::Ok;
            }
            const size_t part = size_t(nl - data);
            st = choose_sink(out, discarding_ ? 0 : carry_.size() + part);
            if (st != Status::Ok) return st;
            if (!append_carry(data, part)) return error_.status;
            st = discarding_ ? line(nullptr, discard_len_, false, true)
                             : line(carry_.data(), carry_.size(), false, false);
            carry_.clear();
            discarding_ = false;
            discard_len_ = 0;
            if (st != Status::Ok) return st;
            pos = part + 1;
            st = after_line(out);
            if (st != Status::Ok) {
                *consumed = pos;
                return st;
            }
        }
        while (pos < len) {
            const char* b = data + pos;
            const char* nl = static_cast<const char*>(std::memchr(b, '\n', len - pos));
            if (!nl) {
                if (!append_carry(b, len - pos)) {
                    *consumed = pos;
                    return error_.status;
                }
                pos = len;
                break;
            }
            const size_t n = size_t(nl - b);
            const bool too_long = n > max_line_;
            st = choose_sink(out, too_long ? 0 : n);
            if (st != Status::Ok) {
                *consumed = pos;
                return st;
            }
            st = line(b, n, false, too_long);
            if (st != Status::Ok) {
                *consumed = pos;
                return st;
            }
            pos += n + 1;
            st = after_line(out);
            if (st != Status::Ok) {
                *consumed = pos;
                return st;
            }
        }
        *consumed = pos;
        return Status::Ok;
    }

    // End of the current file: decodes a final line that lacks its newline; if that line ends
    // mid-message it becomes a TRUNCATED_RECORD. Call again after OutputFull.
    Status finish(Output& out) noexcept {
        if (error_.status != Status::Ok) return error_.status;
        if (!scan_ && (out.ev.capacity == 0 || out.rec.capacity == 0))
            return Status::InvalidArgument;
        out_ = &out;
        Status st = drain(out);
        if (st != Status::Ok) return st;
        if (discarding_ || !carry_.empty()) {
            st = choose_sink(out, discarding_ ? 0 : carry_.size());
            if (st != Status::Ok) return st;
            st = discarding_ ? line(nullptr, discard_len_, true, true)
                             : line(carry_.data(), carry_.size(), true, false);
            carry_.clear();
            discarding_ = false;
            discard_len_ = 0;
            if (st != Status::Ok) return st;
            return after_line(out);
        }
        return Status::Ok;
    }

    // End of the current file when its compressed stream is cut (the input ends before the
    // stream does): whatever follows the last whole line, up to the cut, is one TRUNCATED_RECORD,
    // not decoded (where that line would have ended is unknown); with nothing after the last whole
    // line it is empty, so that a cut is never silent. Call again after OutputFull.
    Status finish_cut(Output& out) noexcept {
        if (error_.status != Status::Ok) return error_.status;
        if (!scan_ && (out.ev.capacity == 0 || out.rec.capacity == 0))
            return Status::InvalidArgument;
        out_ = &out;
        Status st = drain(out);
        if (st != Status::Ok || cut_done_) return st;
        st = choose_sink(out, 0);
        if (st != Status::Ok) return st;
        const size_t n = discarding_ ? discard_len_ : carry_.size();
        carry_.clear();
        discarding_ = false;
        discard_len_ = 0;
        cut_done_ = true;
        ++line_no_;
        ++counts_.lines;
        line_offset_ = file_bytes_;
        file_bytes_ += n;
        counts_.bytes += n;
        rec_index_ = next_record_++;
        ++counts_.records;
        ++file_records_;
        skip_at(Skip::TruncatedLine, here());
        char text[sizeof reason_];
        std::snprintf(text, sizeof text,
                      "the compressed input is cut: it ends %zu bytes into this line, which is "
                      "not decoded", n);
        log_problem(rec_index_, Rule::TruncatedRecord, here(), text);
        if (scan_) return Status::Ok;
        st = push_record(uint64_t(n), uint8_t(Rule::TruncatedRecord));
        if (st != Status::Ok) return st;
        return after_line(out);
    }

    // After the last file: buffered diffs that never met a snapshot become DELTAS_BEFORE_SNAPSHOT
    // records and the held window is handed out. Call again after OutputFull.
    Status end_stream(Output& out) noexcept {
        if (error_.status != Status::Ok) return error_.status;
        if (!scan_ && (out.ev.capacity == 0 || out.rec.capacity == 0))
            return Status::InvalidArgument;
        out_ = &out;
        for (Track& t : tracks_)
            drop_buffered(t.depth, t.depth.buffered(), "the stream ended before a snapshot");
        return drain(out);
    }

    // ---- reports ----

    const ErrorInfo& error() const noexcept { return error_; }
    const Counts& counts() const noexcept { return counts_; }
    const LocationLog& skips(size_t reason) const noexcept { return skips_[reason]; }
    const LocationLog& problems(size_t rule) const noexcept { return problems_[rule]; }
    const std::vector<Reason>& reasons() const noexcept { return reasons_; }
    const LocationLog& gaps() const noexcept { return gaps_; }
    const LocationLog& ts_recv_raised() const noexcept { return ts_raised_; }
    uint64_t lines_in_file() const noexcept { return line_no_; }
    uint64_t records_in_file() const noexcept { return file_records_; }
    uint64_t file_bytes() const noexcept { return file_bytes_; }
    size_t carried_bytes() const noexcept { return carry_.size() + discard_len_; }
    size_t needed_events() const noexcept { return need_events_; }
    // Values of the decode that were not a multiple of their configured increment (each made its
    // record malformed): a caller that decoded without a first pass restarts with one when this
    // is not 0 (the increments are refined there).
    uint64_t values_off_increment() const noexcept { return values_off_increment_; }
    uint64_t next_record() const noexcept { return next_record_; }

    // Authoritative from depth diffs (`pu` present or not) or the caller; when the capture has
    // none, from the fields that only futures send (trade X, bookTicker e/E/T, snapshot E/T).
    // COIN-M from its symbols (contract suffix after '_') or the `ps` field.
    MarketType market_type() const noexcept {
        if (forced_market_ != MarketType::Unknown) return forced_market_;
        const bool coinm = hint_coinm_ || catalogue_.has_coinm_symbol();
        MarketType m = market_;
        if (m == MarketType::Unknown) {
            if (coinm) return MarketType::CoinM;
            if (hint_usdm_ && !hint_spot_) return MarketType::UsdM;
            if (hint_spot_ && !hint_usdm_) return MarketType::Spot;
            return MarketType::Unknown;
        }
        if (m == MarketType::UsdM && coinm) return MarketType::CoinM;
        return m;
    }

    std::vector<SymbolInfo> symbols() const { return catalogue_.symbols(); }

private:
    // What the driver keeps per instrument beside its catalogue entry (same slot).
    struct Track {
        DepthSync depth;
        PrintSource prints;
    };

    // Symbol -> instrument; a symbol the catalogue cannot give is a malformed record (invalid
    // symbol) or a fatal configuration problem (no increments).
    Instrument* resolve(json::Span sym) noexcept {
        Unresolved why;
        Status refusal = Status::Ok;
        Instrument* s = catalogue_.resolve(sym, why, refusal);
        if (!s) {
            switch (why) {
                case Unresolved::InvalidSymbol:
                    fail(Status::DecodeError, "invalid symbol \"%s\"", snip(sym));
                    break;
                case Unresolved::NoDefault:
                    fatal(Status::UnknownInstrument,
                          "no price/size increments for symbol \"%s\" (first seen here): "
                          "configure it or let increments be inferred",
                          snip(sym));
                    break;
                case Unresolved::NoIncrements:
                    fatal(Status::UnknownInstrument, "no price/size increments for symbol \"%s\"",
                          snip(sym));
                    break;
                case Unresolved::CannotRegister:
                    fatal(refusal, "cannot register symbol \"%s\"", snip(sym));
                    break;
                case Unresolved::OutOfMemory:
                    fatal(Status::InvalidArgument, "out of memory registering a symbol");
                    break;
            }
            return nullptr;
        }
        if (s->slot >= tracks_.size()) {
            try {
                tracks_.resize(catalogue_.size());
            } catch (...) {
                fatal(Status::InvalidArgument, "out of memory registering a symbol");
                return nullptr;
            }
        }
        return s;
    }

    Track& track(const Instrument& s) noexcept { return tracks_[s.slot]; }

    ChainRules chain_rules() const noexcept {
        return market_ == MarketType::UsdM ? ChainRules::Futures : ChainRules::Spot;
    }

    // Every field in `mask` must be present with its expected type.
    Status require(const Fields& f, uint32_t mask, const char* what) noexcept {
        if ((f.has & mask) == mask) return Status::Ok;
        bool ill_typed = false;
        const Field fld = f.first_missing(mask, ill_typed);
        if (fld == kFieldCount) return Status::Ok;
        if (ill_typed)
            return fail(Status::DecodeError, "%s: field \"%s\" is not %s", what, field_name(fld),
                        field_expect(fld));
        return fail(Status::DecodeError, "%s: missing field \"%s\"", what, field_name(fld));
    }

    // ---- lines ----

    static bool blank(const char* b, size_t n) noexcept {
        for (size_t i = 0; i < n; ++i)
            if (b[i] != ' ' && b[i] != '\t' && b[i] != '\r') return false;
        return true;
    }

    // One line: a record unless blank. Returns Ok unless a fatal error stopped the decoder; a
    // record the decoder cannot use gets its Rule and no events.
    Status line(const char* b, size_t n, bool unterminated, bool too_long) noexcept {
        ++line_no_;
        ++counts_.lines;
        line_offset_ = file_bytes_;
        const size_t adv = n + (unterminated ? 0 : 1);
        file_bytes_ += adv;
        counts_.bytes += adv;
        if (!too_long && blank(b, n)) {
            skip_at(Skip::EmptyLine, here());
            return Status::Ok;
        }
        rec_index_ = next_record_++;
        ++counts_.records;
        ++file_records_;
        problem_ = Rule::Ok;
        reason_[0] = 0;
        eof_error_ = false;
        err_col_ = 0;
        ts_raise_ = false;
        ts_commit_ = last_ts_recv_;
        in_line_ = true;
        scan_slot_ = nullptr;
        if (scan_) {
            line_pgcd_ = DecimalGcd{};
            line_sgcd_ = DecimalGcd{};
            line_pfiner_.found = line_sfiner_.found = false;
        }
        const size_t mark = direct_ ? out_->ev.size : held_.event_count();
        const Status st = too_long ? fail(Status::DecodeError, "line longer than %zu bytes", max_line_) : decode_line(b, n);
        in_line_ = false;
        if (error_.status != Status::Ok) return error_.status;  // fatal
        if (st != Status::Ok) {
            if (direct_)
                out_->ev.size = mark;
            else
                held_.drop_events_from(mark);
            if (unterminated && eof_error_ && problem_ == Rule::MalformedRecord) {
                // The capture stopped mid-write: the usual end of a killed recorder.
                problem_ = Rule::TruncatedRecord;
                skip_at(Skip::TruncatedLine, here());
            } else if (problem_ == Rule::MalformedRecord) {
                skip_at(Skip::Malformed, here());
            }
        }
        if (problem_ == Rule::Ok) {
            if (ts_raise_) ts_raised_.add(ts_loc_);
            last_ts_recv_ = ts_commit_;
            if (scan_slot_) {
                scan_slot_->price_gcd.merge(line_pgcd_);
                scan_slot_->size_gcd.merge(line_sgcd_);
                if (line_pfiner_.found && !scan_slot_->price_finer.found)
                    scan_slot_->price_finer = line_pfiner_;
                if (line_sfiner_.found && !scan_slot_->size_finer.found)
                    scan_slot_->size_finer = line_sfiner_;
            }
        } else {
            log_problem(rec_index_, problem_, here(), reason_);
        }
        if (scan_) return Status::Ok;
        return push_record(uint64_t(n), uint8_t(problem_));
    }

    Status decode_line(const char* b, size_t n) noexcept {
        const char* p = b;
        const char* end = b + n;
        uint64_t ts = 0;
        bool overflow = false;
        int digits = 0;
        for (; p < end && json::detail::is_digit(*p); ++p, ++digits) {
            overflow |= __builtin_mul_overflow(ts, 10u, &ts);
            overflow |= __builtin_add_overflow(ts, uint64_t(*p - '0'), &ts);
        }
        if (digits == 0) return fail(Status::DecodeError, "line does not start with a receive timestamp");
        if (overflow || ts > uint64_t(INT64_MAX))
            return fail(Status::Overflow, "receive timestamp %.*s is out of range", digits > 40 ? 40 : digits, b);
        if (p == end) {
            eof_error_ = true;
            err_col_ = n;
            return fail(Status::DecodeError, "line ends after the receive timestamp");
        }
        if (*p != ' ') {
            err_col_ = size_t(p - b);
            return fail(Status::DecodeError, "expected a space after the receive timestamp");
        }
        ++p;
        json::Scanner s(p, end);
        reader_.clear();
        if (s.peek() != json::Type::Object) {
            if (!s.skip_value() || !s.finish()) return json_error(s, size_t(p - b));
            skip_at(Skip::NotStreamMessage, here());
            return Status::Ok;
        }
        if (!reader_.read(s) || !s.finish()) return json_error(s, size_t(p - b));
        return dispatch(int64_t(ts));
    }

    Status json_error(const json::Scanner& s, size_t base) noexcept {
        eof_error_ = s.error_at_end();
        err_col_ = base + s.error_offset();
        if (std::strcmp(s.what(), "duplicate key") == 0)
            return fail(Status::DecodeError, "duplicate key \"%s\" at column %zu", snip(reader_.duplicate_key()),
                        err_col_ + 1);
        return fail(Status::DecodeError, "malformed JSON: %s at column %zu", s.what(),
                    err_col_ + 1);
    }

    Status dispatch(int64_t ts) noexcept {
        const Fields& top = reader_.top();
        if (top.has & bit(kStream)) {
            const json::Span stream = top.str[kStream];
            json::Span prefix;
            const StreamKind kind = classify_stream(stream, prefix);
            if (kind == StreamKind::Unknown) {
                skip_at(Skip::UnknownStream, here());
                return reject(Rule::UnsupportedMessage, "stream \"%s\" is not decoded",
                              snip(stream));
            }
            if (!(top.has & bit(kData)))
                return require(top, bit(kData), stream_message_name(kind));
            uint8_t lf;
            const int64_t tr = recv_time(ts, lf);
            switch (kind) {
                case StreamKind::Depth: return on_depth(tr, lf, prefix);
                case StreamKind::Trade: return on_trade(tr, lf, prefix);
                case StreamKind::AggTrade: return on_agg_trade(tr, lf, prefix);
                default: return on_book_ticker(tr, lf, prefix);
            }
        }
        if (top.bad & bit(kStream))
            return fail(Status::DecodeError, "field \"stream\" is not a string");
        if ((top.has | top.bad) & bit(kLastUpdateId)) {
            uint8_t lf;
            const int64_t tr = recv_time(ts, lf);
            return on_snapshot(tr, lf);
        }
        skip_at(Skip::NotStreamMessage, here());
        return Status::Ok;
    }

    // The line's ts_recv; the clock only moves (and a raise is only counted) if the record is
    // accepted, which line() decides at its end.
    int64_t recv_time(int64_t ts, uint8_t& line_flags) noexcept {
        line_flags = 0;
        if (ts < last_ts_recv_) {
            ts_loc_ = here();
            ts_loc_.expected = uint64_t(last_ts_recv_);
            ts_loc_.got = uint64_t(ts);
            ts_raise_ = true;
            ts_commit_ = last_ts_recv_;
            line_flags = flags::kBadTsRecv;
            return last_ts_recv_;
        }
        ts_commit_ = ts;
        return ts;
    }

    bool ms_to_ns(uint64_t ms, const char* name, int64_t& out) noexcept {
        if (ms > uint64_t(INT64_MAX / 1000000)) {
            fail(Status::Overflow, "%s %llu ms is out of the nanosecond range", name,
                 static_cast<unsigned long long>(ms));
            return false;
        }
        out = int64_t(ms) * 1000000;
        return true;
    }

    // T (transaction time) when present, else E (event time), else the receive time. A time
    // field that is present but not an integer is an error, not a reason to use the other one.
    bool event_time(const Fields& f, int64_t fallback, const char* what, int64_t& out) noexcept {
        const uint32_t bad = f.bad & (bit(kTxTime) | bit(kEventTime));
        if (bad) {
            require(f, bad, what);
            return false;
        }
        if (f.has & bit(kTxTime)) return ms_to_ns(f.num[kTxTime], "transaction time T", out);
        if (f.has & bit(kEventTime)) return ms_to_ns(f.num[kEventTime], "event time E", out);
        out = fallback;
        return true;
    }

    Status check_symbol(json::Span prefix, json::Span sym, const char* what) noexcept {
        if (same_symbol(prefix, sym)) return Status::Ok;
        return fail(Status::DecodeError, "%s: stream prefix \"%s\" does not match symbol \"%s\"",
                    what, snip(prefix), snip(sym));
    }

    Status check_event_type(const Fields& f, const char* expect, bool required,
                            const char* what) noexcept {
        if (!(f.has & bit(kE))) {
            if (f.bad & bit(kE) || required) return require(f, bit(kE), what);
            return Status::Ok;
        }
        if (f.str[kE].equals(expect, std::strlen(expect))) return Status::Ok;
        return fail(Status::DecodeError, "%s: event type \"%s\" where \"%s\" was expected", what,
                    snip(f.str[kE]), expect);
    }


    // ---- values ----

    static constexpr uint32_t kNoLevel = ~0u;

    bool convert(json::Span v, const FixedScale& fs, const Increment& inc, const char* what,
                 uint32_t level, int64_t& out) noexcept {
        const Status st = to_fixed(v.ptr, v.len, fs, out);
        if (st == Status::Ok) {
            if (out >= 0) return true;
            value_error(Status::DecodeError, v, what, level, "is negative", inc);
            return false;
        }
        if (st == Status::NotMultiple) ++values_off_increment_;
        value_error(st, v, what, level,
                    st == Status::NotMultiple ? "is not a multiple of the increment"
                    : st == Status::Overflow  ? "overflows int64 multiples of the increment"
                                              : "is not a decimal number",
                    inc);
        return false;
    }

    // `known`: the symbol's GCD so far. A value it already divides cannot change the merge of the
    // line's GCD into it, so only its count is kept (the u128 GCD is the costly part of the scan).
    bool gcd_add(DecimalGcd& g, const DecimalGcd& known, json::Span v, const char* what,
                 uint32_t level, Decimal& d) noexcept {
        const Status st = parse_decimal(v.ptr, v.len, d);
        if (st == Status::Ok && !d.negative) {
            if (known.already_divides(d))
                g.add_known(d);
            else
                g.add(d);
            return true;
        }
        value_error(st == Status::Ok ? Status::DecodeError : st, v, what, level,
                    st == Status::Ok         ? "is negative"
                    : st == Status::Overflow ? "has more than 19 significant digits"
                                             : "is not a decimal number",
                    Increment{});
        return false;
    }

    void value_error(Status st, json::Span v, const char* what, uint32_t level, const char* why,
                     const Increment& inc) noexcept {
        char incs[48] = "";
        if (inc.valid() && st != Status::DecodeError) {
            char tmp[40];
            format_increment(inc, tmp, sizeof tmp);
            std::snprintf(incs, sizeof incs, " %s", tmp);
        }
        if (level == kNoLevel)
            fail(st, "%s \"%s\" %s%s", what, snip(v), why, incs);
        else
            fail(st, "%s of level %u \"%s\" %s%s", what, level, snip(v), why, incs);
    }

    // A price and its quantity (a print, a best bid or ask, a book level) in multiples of the
    // instrument's increments; false: the record is malformed (the price is checked first).
    bool convert_pair(const Instrument& s, json::Span price, json::Span qty,
                      const char* price_name, const char* qty_name, uint32_t level, int64_t& px,
                      int64_t& q) noexcept {
        return convert(price, s.price_fs, s.price_inc, price_name, level, px) &&
               convert(qty, s.size_fs, s.size_inc, qty_name, level, q);
    }

    // Scan mode's counterpart: the pair goes into the line's GCDs, merged into the instrument's
    // when the line is accepted.
    bool scan_pair(Instrument& s, json::Span price, json::Span qty, const char* price_name,
                   const char* qty_name, uint32_t level) noexcept {
        scan_slot_ = &s;
        Decimal p, q;
        if (!gcd_add(line_pgcd_, s.price_gcd, price, price_name, level, p) ||
            !gcd_add(line_sgcd_, s.size_gcd, qty, qty_name, level, q))
            return false;
        if (s.has_increments) {
            note_finer(price, p, s.price_inc, s.price_finer, line_pfiner_);
            note_finer(qty, q, s.size_inc, s.size_finer, line_sfiner_);
        }
        return true;
    }

    // Remembers the line's first value that is not a multiple of the configured increment, while
    // the symbol has none yet (only the first of the input is reported).
    void note_finer(json::Span v, const Decimal& d, Increment inc, const FinerValue& known,
                    FinerValue& line) noexcept {
        if (known.found || line.found || is_multiple(d, inc)) return;
        line.found = true;
        std::snprintf(line.text, sizeof line.text, "%s", snip(v));
        line.file = file_;
        line.line = line_no_;
        line.offset = line_offset_;
    }

    struct Print {
        int64_t price = 0, qty = 0, ts_event = 0;
    };

    // What trades and aggTrades share: price and quantity, and the event time. In scan mode only
    // the GCDs learn them, and there is nothing to emit.
    Status read_print(Instrument& s, const Fields& f, int64_t tr, const char* price_name,
                      const char* qty_name, const char* what, Print& p) noexcept {
        if (scan_)
            return scan_pair(s, f.str[kPrice], f.str[kQty], price_name, qty_name, kNoLevel)
                       ? Status::Ok
                       : Status::DecodeError;
        return convert_pair(s, f.str[kPrice], f.str[kQty], price_name, qty_name, kNoLevel,
                            p.price, p.qty) &&
                       event_time(f, tr, what, p.ts_event)
                   ? Status::Ok
                   : Status::DecodeError;
    }

    static const char* level_price_name(int side) noexcept {
        return side == 0 ? "bid price" : "ask price";
    }
    static const char* level_qty_name(int side) noexcept {
        return side == 0 ? "bid quantity" : "ask quantity";
    }

    // Levels of `f` (bids, then asks) into levels_, converted with the instrument's increments.
    bool convert_levels(const Instrument& s, const Fields& f) noexcept {
        levels_.clear();
        const size_t total = (f.lv_end[0] - f.lv_begin[0]) + (f.lv_end[1] - f.lv_begin[1]);
        if (levels_.capacity() < total) {
            try {
                levels_.reserve(total * 2);
            } catch (...) {
                fatal(Status::InvalidArgument, "out of memory");
                return false;
            }
        }
        for (int side = 0; side < 2; ++side) {
            const Side sd = side == 0 ? Side::Bid : Side::Ask;
            for (uint32_t i = f.lv_begin[side]; i < f.lv_end[side]; ++i) {
                const LevelSpan& in = reader_.level(i);
                BookLevel l;
                l.side = sd;
                if (!convert_pair(s, in.price, in.qty, level_price_name(side),
                                  level_qty_name(side), i - f.lv_begin[side], l.price, l.qty))
                    return false;
                levels_.push_back(l);
            }
        }
        return true;
    }

    bool scan_levels(Instrument& s, const Fields& f) noexcept {
        scan_slot_ = &s;
        for (int side = 0; side < 2; ++side) {
            for (uint32_t i = f.lv_begin[side]; i < f.lv_end[side]; ++i) {
                const LevelSpan& in = reader_.level(i);
                if (!scan_pair(s, in.price, in.qty, level_price_name(side), level_qty_name(side),
                               i - f.lv_begin[side]))
                    return false;
            }
        }
        return true;
    }

    // ---- messages ----

    Status on_trade(int64_t tr, uint8_t lf, json::Span prefix) noexcept {
        const Fields& f = reader_.data();
        const char* what = "trade message";
        constexpr uint32_t req =
            bit(kSym) | bit(kTradeId) | bit(kPrice) | bit(kQty) | bit(kMaker);
        Status st = require(f, req, what);
        if (st == Status::Ok) st = check_event_type(f, "trade", true, what);
        if (st == Status::Ok && !(f.has & (bit(kTxTime) | bit(kEventTime))))
            st = require(f, bit(kTxTime), what);
        if (st == Status::Ok && (f.bad & bit(kOrderType))) st = require(f, bit(kOrderType), what);
        if (st == Status::Ok) st = check_symbol(prefix, f.str[kSym], what);
        if (st != Status::Ok) return st;
        (f.has & bit(kOrderType) ? hint_usdm_ : hint_spot_) = true;
        Instrument* s = resolve(f.str[kSym]);
        if (!s) return Status::DecodeError;
        ++s->messages;
        ++counts_.trade_messages;
        PrintSource& prints = track(*s).prints;
        prints.saw_trade();
        if ((f.has & bit(kOrderType)) && !(f.str[kOrderType] == "MARKET")) {
            skip_at(Skip::NonMarketTrade, here());
            return Status::Ok;
        }
        Print p;
        st = read_print(*s, f, tr, "trade price", "trade quantity", what, p);
        if (st != Status::Ok || scan_) return st;
        if (prints.within_agg_trade(f.num[kTradeId])) {
            skip_at(Skip::TradeInAggTrade, here());
            return Status::Ok;
        }
        emit(p.ts_event, tr, f.num[kTradeId], s->index, EventKind::Trade,
             f.maker ? Side::Ask : Side::Bid, uint8_t(flags::kLast | lf), p.price, p.qty);
        return Status::Ok;
    }

    Status on_agg_trade(int64_t tr, uint8_t lf, json::Span prefix) noexcept {
        const Fields& f = reader_.data();
        const char* what = "aggTrade message";
        constexpr uint32_t req = bit(kSym) | bit(kAggId) | bit(kPrice) | bit(kQty) | bit(kMaker);
        Status st = require(f, req, what);
        if (st == Status::Ok) st = check_event_type(f, "aggTrade", true, what);
        if (st == Status::Ok && !(f.has & (bit(kTxTime) | bit(kEventTime))))
            st = require(f, bit(kTxTime), what);
        if (st == Status::Ok && (f.bad & (bit(kFirstTrade) | bit(kLastTrade))))
            st = require(f, f.bad & (bit(kFirstTrade) | bit(kLastTrade)), what);
        if (st == Status::Ok) st = check_symbol(prefix, f.str[kSym], what);
        if (st != Status::Ok) return st;
        if (f.has & bit(kPair)) hint_coinm_ = true;
        Instrument* s = resolve(f.str[kSym]);
        if (!s) return Status::DecodeError;
        ++s->messages;
        ++counts_.agg_trade_messages;
        Print p;
        st = read_print(*s, f, tr, "aggTrade price", "aggTrade quantity", what, p);
        if (st != Status::Ok || scan_) return st;
        PrintSource& prints = track(*s).prints;
        if (prints.agg_trades_duplicate()) {
            skip_at(Skip::AggTradeDuplicate, here());
            return Status::Ok;
        }
        if (f.has & bit(kLastTrade)) prints.covered_trades_up_to(f.num[kLastTrade]);
        emit(p.ts_event, tr, f.num[kAggId], s->index, EventKind::Trade,
             f.maker ? Side::Ask : Side::Bid, uint8_t(flags::kLast | lf), p.price, p.qty);
        return Status::Ok;
    }

    Status on_book_ticker(int64_t tr, uint8_t lf, json::Span prefix) noexcept {
        const Fields& f = reader_.data();
        const char* what = "bookTicker message";
        constexpr uint32_t req = bit(kSym) | bit(kFinalId) | bit(kBidStr) | bit(kBidQty) |
                                 bit(kAskStr) | bit(kAskQty);
        Status st = require(f, req, what);
        if (st == Status::Ok) st = check_event_type(f, "bookTicker", false, what);
        if (st == Status::Ok) st = check_symbol(prefix, f.str[kSym], what);
        if (st != Status::Ok) return st;
        (f.has & (bit(kE) | bit(kEventTime) | bit(kTxTime)) ? hint_usdm_ : hint_spot_) = true;
        Instrument* s = resolve(f.str[kSym]);
        if (!s) return Status::DecodeError;
        ++s->messages;
        ++counts_.book_ticker_messages;
        if (scan_)
            return scan_pair(*s, f.str[kBidStr], f.str[kBidQty], "best bid price",
                             "best bid quantity", kNoLevel) &&
                           scan_pair(*s, f.str[kAskStr], f.str[kAskQty], "best ask price",
                                     "best ask quantity", kNoLevel)
                       ? Status::Ok
                       : Status::DecodeError;
        int64_t bp, bq, ap, aq, te;
        if (!convert_pair(*s, f.str[kBidStr], f.str[kBidQty], "best bid price",
                          "best bid quantity", kNoLevel, bp, bq) ||
            !convert_pair(*s, f.str[kAskStr], f.str[kAskQty], "best ask price",
                          "best ask quantity", kNoLevel, ap, aq) ||
            !event_time(f, tr, what, te))
            return Status::DecodeError;
        const uint64_t seq = f.num[kFinalId];
        emit(te, tr, seq, s->index, EventKind::VenueBbo, Side::Bid, lf, bp, bq);
        emit(te, tr, seq, s->index, EventKind::VenueBbo, Side::Ask, uint8_t(flags::kLast | lf), ap,
             aq);
        return Status::Ok;
    }

    Status on_depth(int64_t tr, uint8_t lf, json::Span prefix) noexcept {
        const Fields& f = reader_.data();
        const char* what = "depth message";
        constexpr uint32_t req = bit(kSym) | bit(kFirstId) | bit(kFinalId) | bit(kBidLevels) |
                                 bit(kAskLevels);
        Status st = require(f, req, what);
        if (st == Status::Ok) st = check_event_type(f, "depthUpdate", true, what);
        if (st == Status::Ok && !(f.has & (bit(kTxTime) | bit(kEventTime))))
            st = require(f, bit(kEventTime), what);
        if (st == Status::Ok && (f.bad & bit(kPrevId))) st = require(f, bit(kPrevId), what);
        if (st == Status::Ok) st = check_symbol(prefix, f.str[kSym], what);
        if (st != Status::Ok) return st;
        UpdateIds ids;
        ids.first_id = f.num[kFirstId];
        ids.final_id = f.num[kFinalId];
        if (ids.first_id > ids.final_id)
            return fail(Status::DecodeError,
                        "%s: first update id U=%llu is after final update id u=%llu", what,
                        static_cast<unsigned long long>(ids.first_id),
                        static_cast<unsigned long long>(ids.final_id));
        const bool has_prev = f.has & bit(kPrevId);
        const MarketType mt = has_prev ? MarketType::UsdM : MarketType::Spot;
        if (market_ == MarketType::Unknown) {
            market_ = mt;
        } else if (market_ != mt) {
            // Not a bad line but a bad stream: the update-id rules differ between the two.
            return fatal(Status::DecodeError,
                         "%s %s \"pu\" but %s: spot and futures depth mixed in one stream", what,
                         has_prev ? "has" : "lacks",
                         forced_market_ != MarketType::Unknown ? "the market type was given"
                         : has_prev                           ? "earlier ones did not"
                                                              : "earlier ones did");
        }
        if (f.has & bit(kPair)) hint_coinm_ = true;
        Instrument* s = resolve(f.str[kSym]);
        if (!s) return Status::DecodeError;
        ++s->messages;
        ++counts_.depth_messages;
        if (scan_) return scan_levels(*s, f) ? Status::Ok : Status::DecodeError;
        int64_t te;
        if (!event_time(f, tr, what, te) || !convert_levels(*s, f)) return Status::DecodeError;
        if (has_prev) ids.prev_id = f.num[kPrevId];
        DepthSync& d = track(*s).depth;
        if (!d.has_snapshot()) return buffer_diff(d, ids, te);
        apply_diff(d, s->index, ids, te, levels_.data(), uint32_t(levels_.size()), tr, lf, here(),
                   rec_index_);
        return Status::Ok;
    }

    Status on_snapshot(int64_t tr, uint8_t lf) noexcept {
        const Fields& f = reader_.top();
        const char* what = "depth snapshot";
        Status st = require(f, bit(kLastUpdateId) | bit(kBids) | bit(kAsks), what);
        if (st != Status::Ok) return st;
        Instrument* s = nullptr;
        if (!snapshot_symbol_.empty()) {
            s = resolve(json::Span{snapshot_symbol_.data(), uint32_t(snapshot_symbol_.size())});
            if (!s) return Status::DecodeError;
        } else if (catalogue_.seen_count() == 1) {
            s = catalogue_.last_seen();  // resolved before, so it has its Track
        } else if (catalogue_.seen_count() == 0) {
            return fatal(Status::DecodeError,
                         "depth snapshot names no symbol and none was seen before it: configure "
                         "the snapshot symbol");
        } else {
            return fatal(Status::DecodeError,
                         "depth snapshot names no symbol and %zu symbols were seen before it: "
                         "configure the snapshot symbol",
                         catalogue_.seen_count());
        }
        (f.has & (bit(kEventTime) | bit(kTxTime)) ? hint_usdm_ : hint_spot_) = true;
        ++s->messages;
        ++counts_.snapshot_messages;
        if (scan_) return scan_levels(*s, f) ? Status::Ok : Status::DecodeError;
        int64_t te;
        if (!event_time(f, tr, what, te) || !convert_levels(*s, f)) return Status::DecodeError;
        const uint64_t id = f.num[kLastUpdateId];
        const uint8_t fl = uint8_t(flags::kSnapshot | lf);
        const size_t n = levels_.size();
        emit(te, tr, id, s->index, EventKind::BookClear, Side::None,
             uint8_t(fl | (n == 0 ? flags::kLast : 0)), 0, 0);
        for (size_t i = 0; i < n; ++i) {
            const BookLevel& l = levels_[i];
            emit(te, tr, id, s->index, EventKind::L2Set, l.side,
                 uint8_t(fl | (i + 1 == n ? flags::kLast : 0)), l.price, l.qty);
        }
        // Diffs that arrived before the snapshot: only now can a book know them. Their events
        // belong to this record (see the header comment); their own records stay event-less.
        DepthSync& d = track(*s).depth;
        buffered_diffs_ -= d.restart(id, [&](const BufferedDiff& m, const BookLevel* levels) {
            if (apply_diff(d, s->index, m.ids, m.ts_event, levels, m.level_count, tr, lf, m.loc,
                           m.record))
                ++counts_.depth_replayed;
        });
        return Status::Ok;
    }

    // ---- depth reconciliation ----

    Status buffer_diff(DepthSync& d, const UpdateIds& ids, int64_t te) noexcept {
        ++counts_.depth_buffered;
        const size_t n = levels_.size();
        if (n > bounds_.levels) {
            skip_at(Skip::DepthUnsynced, here());
            return reject(Rule::DeltasBeforeSnapshot,
                          "depth diff before the first snapshot with more levels (%zu) than the "
                          "buffer holds", n);
        }
        drop_buffered(d, d.overflow(n, bounds_),
                      "the buffer of diffs waiting for a snapshot overflowed");
        BufferedDiff m;
        m.ids = ids;
        m.ts_event = te;
        m.loc = here();
        m.record = rec_index_;
        if (!d.buffer(m, levels_.data(), n))
            return fatal(Status::InvalidArgument, "out of memory buffering depth diffs");
        ++buffered_diffs_;
        return Status::Ok;
    }

    // Gives up the `n` oldest buffered diffs of `d`: DELTAS_BEFORE_SNAPSHOT records.
    void drop_buffered(DepthSync& d, size_t n, const char* why) noexcept {
        d.give_up(n, [&](const BufferedDiff& m) {
            skip_at(Skip::DepthUnsynced, m.loc);
            mark(m.record, m.loc, Rule::DeltasBeforeSnapshot,
                 "depth diff U=%llu u=%llu never met a snapshot: %s",
                 static_cast<unsigned long long>(m.ids.first_id),
                 static_cast<unsigned long long>(m.ids.final_id), why);
        });
        buffered_diffs_ -= n;
    }

    // The window may not hold more than max_held_records_ records behind the oldest buffered
    // diff: beyond that, the oldest buffered diffs are given up.
    void bound_held() noexcept {
        while (buffered_diffs_ > 0) {
            DepthSync* oldest = nullptr;
            for (Track& t : tracks_)
                if (t.depth.buffered() &&
                    (!oldest || t.depth.oldest_record() < oldest->oldest_record()))
                    oldest = &t.depth;
            if (next_record_ - oldest->oldest_record() <= max_held_records_) return;
            drop_buffered(*oldest, 1, "it waited longer than the held-record bound");
        }
    }

    uint64_t oldest_buffered_record() const noexcept {
        uint64_t r = UINT64_MAX;
        for (const Track& t : tracks_)
            if (t.depth.buffered() && t.depth.oldest_record() < r) r = t.depth.oldest_record();
        return r;
    }

    // Applies one diff after a snapshot as the chain decides; false if it was dropped. `record`
    // is the diff's own record (an earlier one for a buffered diff).
    bool apply_diff(DepthSync& d, uint32_t inst, const UpdateIds& ids, int64_t te,
                    const BookLevel* levels, uint32_t n, int64_t tr, uint8_t lf,
                    const Location& loc, uint64_t record) noexcept {
        const ChainStep step = d.next(ids, chain_rules());
        if (step.kind == ChainStep::InSnapshot) {
            skip_at(Skip::DepthInSnapshot, loc);
            return false;
        }
        if (step.kind == ChainStep::Stale) {
            skip_at(Skip::DepthStale, loc);
            mark(record, loc, Rule::DuplicateMessage,
                 "depth diff u=%llu is not after the chain's last u=%llu",
                 static_cast<unsigned long long>(ids.final_id),
                 static_cast<unsigned long long>(d.last_final_id()));
            return false;
        }
        if (step.gap) {
            Location g = loc;
            g.expected = step.expected;
            g.got = step.got;
            gaps_.add(g);
            emit(te, tr, step.got, inst, EventKind::Gap, Side::None, uint8_t(flags::kLast | lf), 0,
                 0, step.expected);
        }
        if (n == 0) {
            skip_at(Skip::DepthNoLevels, loc);
            return true;
        }
        for (uint32_t i = 0; i < n; ++i) {
            emit(te, tr, ids.final_id, inst, EventKind::L2Set, levels[i].side,
                 uint8_t(lf | (i + 1 == n ? flags::kLast : 0)), levels[i].price, levels[i].qty);
        }
        return true;
    }

    // ---- output ----

    void emit(int64_t te, int64_t tr, uint64_t seq, uint32_t inst, EventKind kind, Side side,
              uint8_t fl, int64_t price, int64_t qty, uint64_t order_id = 0) noexcept {
        ++counts_.events[static_cast<size_t>(kind)];
        if (direct_) {
            EventColumns& ev = out_->ev;
            out_->ev_record[ev.size] = int64_t(rec_index_);
            ev.push(te, tr, seq, inst, kind, side, fl, price, qty, order_id);
            return;
        }
        if (!held_.hold_event(HeldEvent{te, tr, seq, inst, static_cast<uint8_t>(kind),
                                        static_cast<uint8_t>(side), fl, price, qty, order_id,
                                        rec_index_}))
            fatal(Status::InvalidArgument, "out of memory holding events");
    }

    Status push_record(uint64_t length, uint8_t problem) noexcept {
        if (direct_ && buffered_diffs_ == 0 && held_.empty()) {
            RecordColumns& r = out_->rec;
            const size_t i = r.size++;
            r.file[i] = int32_t(file_);
            r.line[i] = int64_t(line_no_);
            r.offset[i] = int64_t(line_offset_);
            r.length[i] = int64_t(length);
            r.problem[i] = problem;
            return Status::Ok;
        }
        if (!held_.hold_record(rec_index_,
                               HeldRecord{file_, line_no_, line_offset_, length, problem}))
            return fatal(Status::InvalidArgument, "out of memory holding records");
        return Status::Ok;
    }

    // Events go straight into the caller's columns when nothing is held back and the line surely
    // fits (bound: a level is at least 8 bytes of text, plus a gap). Otherwise the line goes to
    // the window, from which drain() hands out settled records whole.
    Status choose_sink(Output& out, size_t n) noexcept {
        direct_ = false;
        if (scan_) return Status::Ok;
        if (buffered_diffs_ == 0 && held_.empty()) {
            const size_t bound = n / 8 + 4;
            if (out.rec.size < out.rec.capacity && out.ev.capacity - out.ev.size >= bound) {
                direct_ = true;
                return Status::Ok;
            }
            if (out.rec.size > 0) return Status::OutputFull;
        }
        return Status::Ok;
    }

    Status after_line(Output& out) noexcept {
        direct_ = false;
        if (error_.status != Status::Ok) return error_.status;
        if (buffered_diffs_ > 0) bound_held();
        if (held_.empty()) return Status::Ok;
        return drain(out);
    }

    // Hands out the held records that are settled (those before the oldest buffered diff), as
    // far as `out` has room.
    Status drain(Output& out) noexcept {
        need_events_ = 0;
        if (scan_ || held_.empty()) return Status::Ok;
        const uint64_t settled_end = buffered_diffs_ ? oldest_buffered_record() : UINT64_MAX;
        return held_.hand_out(out, settled_end, need_events_);
    }

    // Lines longer than max_line_ are not assembled: their bytes are counted and the record is
    // malformed.
    bool append_carry(const char* d, size_t n) noexcept {
        if (discarding_) {
            discard_len_ += n;
            return true;
        }
        if (carry_.size() + n > max_line_) {
            discarding_ = true;
            discard_len_ = carry_.size() + n;
            carry_.clear();
            return true;
        }
        try {
            carry_.append(d, n);
        } catch (...) {
            fatal(Status::InvalidArgument, "out of memory assembling a line");
            return false;
        }
        return true;
    }

    // ---- reporting ----

    Location here() const noexcept {
        Location l;
        l.file = file_;
        l.line = line_no_;
        l.offset = line_offset_;
        return l;
    }

    void skip_at(Skip r, const Location& l) noexcept { skips_[static_cast<size_t>(r)].add(l); }

    void log_problem(uint64_t record, Rule rule, const Location& loc, const char* text) noexcept {
        LocationLog& log = problems_[static_cast<size_t>(rule)];
        const bool keep = log.first().size() < LocationLog::kKeep;
        log.add(loc);
        if (keep && reasons_.size() < reasons_.capacity()) {
            Reason r;
            r.record = record;
            r.rule = rule;
            r.loc = loc;
            std::snprintf(r.text, sizeof r.text, "%s", text);
            reasons_.push_back(r);
        }
    }

    // Sets the Rule of `record`: the current line's (logged when the line ends) or a held one.
    __attribute__((format(printf, 5, 6))) void mark(uint64_t record, const Location& loc, Rule rule,
                                                    const char* fmt, ...) noexcept {
        char text[sizeof reason_];
        va_list ap;
        va_start(ap, fmt);
        std::vsnprintf(text, sizeof text, fmt, ap);
        va_end(ap);
        if (in_line_ && record == rec_index_) {
            problem_ = rule;
            std::memcpy(reason_, text, sizeof text);
            return;
        }
        if (!scan_) held_.set_problem(record, uint8_t(rule));
        log_problem(record, rule, loc, text);
    }

    // A printable excerpt of untrusted text for messages (two live at once).
    const char* snip(json::Span v) noexcept {
        char* buf = snip_buf_[snip_next_ ^= 1];
        constexpr size_t kMax = 48;
        size_t o = 0;
        for (uint32_t i = 0; i < v.len && o < kMax; ++i) {
            const unsigned char c = static_cast<unsigned char>(v.ptr[i]);
            buf[o++] = (c >= 0x20 && c < 0x7f) ? char(c) : '?';
        }
        if (v.len > kMax) {
            buf[o++] = '.';
            buf[o++] = '.';
            buf[o++] = '.';
        }
        buf[o] = 0;
        return buf;
    }

    // The current record cannot be used: it gets `rule` and no events; decoding goes on.
    __attribute__((format(printf, 3, 4))) Status reject(Rule rule, const char* fmt, ...) noexcept {
        if (problem_ == Rule::Ok) {
            problem_ = rule;
            va_list ap;
            va_start(ap, fmt);
            std::vsnprintf(reason_, sizeof reason_, fmt, ap);
            va_end(ap);
        }
        return Status::DecodeError;
    }

    // A malformed record (the status only tells the kind of trouble; the rule is the same).
    __attribute__((format(printf, 3, 4))) Status fail(Status, const char* fmt, ...) noexcept {
        if (problem_ == Rule::Ok) {
            problem_ = Rule::MalformedRecord;
            va_list ap;
            va_start(ap, fmt);
            std::vsnprintf(reason_, sizeof reason_, fmt, ap);
            va_end(ap);
        }
        return Status::DecodeError;
    }

    // A problem of the stream or its configuration: decoding stops.
    __attribute__((format(printf, 3, 4))) Status fatal(Status st, const char* fmt, ...) noexcept {
        if (error_.status == Status::Ok) {
            error_.status = st;
            error_.file = file_;
            error_.line = line_no_;
            error_.offset = line_offset_ + err_col_;
            va_list ap;
            va_start(ap, fmt);
            std::vsnprintf(error_.message, sizeof error_.message, fmt, ap);
            va_end(ap);
        }
        return st;
    }


    // ---- state ----

    // configuration
    bool scan_ = false;
    std::string snapshot_symbol_;
    BufferBounds bounds_;
    size_t max_held_records_ = size_t(1) << 16;
    size_t max_line_ = size_t(64) << 20;
    MarketType forced_market_ = MarketType::Unknown;

    // instruments
    Catalogue catalogue_;
    std::vector<Track> tracks_;  // by catalogue slot
    MarketType market_ = MarketType::Unknown;  // Spot or UsdM (= the futures rules) once known
    bool hint_spot_ = false, hint_usdm_ = false, hint_coinm_ = false;
    size_t buffered_diffs_ = 0;  // across instruments; while any, records are held back

    // position
    uint32_t file_ = 0;
    uint64_t line_no_ = 0;
    uint64_t file_bytes_ = 0;
    uint64_t file_records_ = 0;
    uint64_t line_offset_ = 0;
    size_t err_col_ = 0;
    bool eof_error_ = false;
    int64_t last_ts_recv_ = INT64_MIN;
    std::string carry_;
    bool discarding_ = false;  // inside a line longer than max_line_
    bool cut_done_ = false;    // finish_cut() has recorded the cut of the current file
    size_t discard_len_ = 0;

    // the current record
    uint64_t next_record_ = 0;
    uint64_t rec_index_ = 0;
    bool in_line_ = false;
    Rule problem_ = Rule::Ok;
    char reason_[240] = {};
    bool ts_raise_ = false;
    int64_t ts_commit_ = INT64_MIN;
    Location ts_loc_;
    Instrument* scan_slot_ = nullptr;
    uint64_t values_off_increment_ = 0;
    DecimalGcd line_pgcd_, line_sgcd_;
    FinerValue line_pfiner_, line_sfiner_;

    // per-line scratch (capacity reused: no allocation per line)
    MessageReader reader_;
    std::vector<BookLevel> levels_;

    // output
    Output* out_ = nullptr;
    bool direct_ = false;
    HeldOutput held_;
    size_t need_events_ = 0;

    // reports
    ErrorInfo error_;
    Counts counts_;
    LocationLog skips_[kSkipCount];
    LocationLog problems_[kRuleCount];
    std::vector<Reason> reasons_;
    LocationLog gaps_;
    LocationLog ts_raised_;
    char snip_buf_[2][56] = {};
    int snip_next_ = 0;
};

}  // namespace lockstep::binance
