// The instrument catalogue of a Binance stream: the symbols, their price and size increments
// (and where those came from), the instrument index each gets, and what scan mode learns of them.
//
// Symbols come from the configuration (with a fixed index, or as catalogue entries that get an
// index only if they appear in the data) and from the data itself (with the default increments,
// or none in scan mode). Indexes are handed out in order of first sight.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "lockstep/base/decimal.hpp"
#include "lockstep/base/status.hpp"
#include "lockstep/codecs/json_scan.hpp"

namespace lockstep::binance {

// Where an instrument's increments came from; reported, never interpreted by the decoder.
enum class IncrementSource : uint8_t { Explicit = 0, Option = 1, BuiltIn = 2, Inferred = 3 };

// Scan mode: the first value of a symbol (in input order) that is not a multiple of its configured
// increment: where a too-coarse table entry or option shows, for the report of its refinement.
struct FinerValue {
    bool found = false;
    char text[48] = {};
    uint32_t file = 0;
    uint64_t line = 0;    // 1-based within the file
    uint64_t offset = 0;  // byte offset of the line in the file's text
};

struct Instrument {
    std::string symbol;
    uint32_t slot = 0;  // position in the catalogue, fixed for the run
    bool has_increments = false;
    Increment price_inc, size_inc;
    FixedScale price_fs, size_fs;
    IncrementSource source = IncrementSource::Explicit;
    bool indexed = false;  // has an instrument index (explicit, or resolved and seen)
    uint32_t index = 0;
    bool seen = false;
    uint64_t messages = 0;
    DecimalGcd price_gcd, size_gcd;  // scan mode: every price / size seen
    FinerValue price_finer, size_finer;  // scan mode, with increments: the first value off them
};

// One row of the catalogue, for reports (allocates; not for hot paths).
struct SymbolInfo {
    std::string symbol;
    bool has_increments = false;
    Increment price_increment;
    Increment size_increment;
    IncrementSource source = IncrementSource::Explicit;
    bool indexed = false;  // has an instrument index (explicit, or resolved and seen)
    uint32_t index = 0;
    bool seen = false;
    uint64_t messages = 0;
    // Scan mode: exact decimal GCD of every price / size seen (zeros excluded).
    bool price_inferred_ok = false;
    Increment price_inferred;
    bool size_inferred_ok = false;
    Increment size_inferred;
    uint64_t price_values = 0;
    uint64_t size_values = 0;
    FinerValue price_finer, size_finer;
};

// Decimal text of an increment for messages ("0.001", "0.25", "100").
inline void format_increment(Increment inc, char* buf, size_t n) noexcept {
    if (n == 0) return;
    char digits[24];
    const int len = inc.valid() ? std::snprintf(digits, sizeof digits, "%lld",
                                                static_cast<long long>(inc.mantissa))
                                : 0;
    if (len <= 0 || inc.exponent < -40 || inc.exponent > 40) {
        std::snprintf(buf, n, "?");
        return;
    }
    char text[96];
    size_t o = 0;
    if (inc.exponent >= 0) {
        for (int i = 0; i < len; ++i) text[o++] = digits[i];
        for (int i = 0; i < inc.exponent; ++i) text[o++] = '0';
    } else {
        const int frac = -inc.exponent;
        const int whole = len - frac;  // digits before the point (<= 0: only leading zeros)
        if (whole > 0) {
            for (int i = 0; i < whole; ++i) text[o++] = digits[i];
        } else {
            text[o++] = '0';
        }
        text[o++] = '.';
        for (int i = whole; i < 0; ++i) text[o++] = '0';
        for (int i = whole > 0 ? whole : 0; i < len; ++i) text[o++] = digits[i];
    }
    text[o] = 0;
    std::snprintf(buf, n, "%s", text);
}

inline bool valid_symbol(const char* s, size_t n) noexcept {
    if (n == 0 || n > 32) return false;
    for (size_t i = 0; i < n; ++i) {
        const char c = s[i];
        const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                        (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
        if (!ok) return false;
    }
    return true;
}

// Why resolve() has no usable instrument for a symbol.
enum class Unresolved : uint8_t {
    InvalidSymbol,     // not 1-32 characters of [A-Za-z0-9._-]: the record is malformed
    NoDefault,         // first seen, and there are no default increments to give it
    NoIncrements,      // known, but without increments
    CannotRegister,    // the new entry was refused (the status says why)
    OutOfMemory,
};

class Catalogue {
public:
    // ---- configuration (allocates) ----

    // A symbol with a fixed instrument index.
    Status add_indexed(const char* sym, size_t n, uint32_t index, Increment price, Increment size,
                       IncrementSource source) {
        Instrument* s = nullptr;
        const Status st = add_entry(sym, n, price, size, source, &s);
        if (st != Status::Ok) return st;
        for (const auto& o : slots_) {
            if (o.get() != s && o->indexed && o->index == index) {
                remove_last();
                return Status::InvalidArgument;
            }
        }
        s->indexed = true;
        s->index = index;
        if (index >= next_index_) next_index_ = index + 1;
        return Status::Ok;
    }

    // A symbol whose increments are known but which gets an index only if it appears in the data
    // (built-in or inferred tables), so unused catalogue entries do not pollute the table.
    Status add(const char* sym, size_t n, Increment price, Increment size,
               IncrementSource source) {
        return add_entry(sym, n, price, size, source, nullptr);
    }

    // Increments for every symbol not otherwise known (one-symbol captures, explicit options).
    Status set_default_increments(Increment price, Increment size) {
        FixedScale a, b;
        Status st = FixedScale::make(price, a);
        if (st == Status::Ok) st = FixedScale::make(size, b);
        if (st != Status::Ok) return st;
        default_price_ = price;
        default_size_ = size;
        has_default_ = true;
        return Status::Ok;
    }

    // Scan mode needs no increments and hands out no indexes: new symbols are only collected
    // (with the default increments when there are any, to find the values finer than them).
    void set_scan_mode(bool on) noexcept { scan_ = on; }

    // ---- lookup ----

    // Symbol -> instrument, registering it on first sight when allowed; nullptr with `why` (and
    // for CannotRegister the refusal in `refusal`) otherwise. Hot: the last hit is cached.
    Instrument* resolve(json::Span sym, Unresolved& why, Status& refusal) noexcept {
        if (last_ && last_->symbol.size() == sym.len &&
            std::memcmp(last_->symbol.data(), sym.ptr, sym.len) == 0) {
            return touch(last_);
        }
        auto it = by_symbol_.find(std::string_view(sym.ptr, sym.len));
        Instrument* s = nullptr;
        if (it != by_symbol_.end()) {
            s = slots_[it->second].get();
        } else {
            if (!valid_symbol(sym.ptr, sym.len)) {
                why = Unresolved::InvalidSymbol;
                return nullptr;
            }
            if (!scan_ && !has_default_) {
                why = Unresolved::NoDefault;
                return nullptr;
            }
            try {
                // Scan mode gives new symbols the defaults too (when there are any), so that
                // values finer than them are found before the decode pass relies on them.
                refusal = add_entry(sym.ptr, sym.len, has_default_ ? default_price_ : Increment{},
                                    has_default_ ? default_size_ : Increment{},
                                    IncrementSource::Option, &s);
                if (refusal != Status::Ok) {
                    why = Unresolved::CannotRegister;
                    return nullptr;
                }
            } catch (...) {
                why = Unresolved::OutOfMemory;
                return nullptr;
            }
        }
        if (!scan_ && !s->has_increments) {
            why = Unresolved::NoIncrements;
            return nullptr;
        }
        last_ = s;
        return touch(s);
    }

    size_t size() const noexcept { return slots_.size(); }
    // Symbols seen in the data so far, and the latest of them (the one, when there is one).
    size_t seen_count() const noexcept { return n_seen_; }
    Instrument* last_seen() const noexcept { return last_seen_; }
    // COIN-M contracts are named <pair>_PERP or <pair>_<yymmdd>; spot and USD-M never carry an
    // underscore.
    bool has_coinm_symbol() const noexcept { return coinm_symbol_; }

    std::vector<SymbolInfo> symbols() const {
        std::vector<SymbolInfo> out;
        out.reserve(slots_.size());
        for (const auto& s : slots_) {
            SymbolInfo i;
            i.symbol = s->symbol;
            i.has_increments = s->has_increments;
            i.price_increment = s->price_inc;
            i.size_increment = s->size_inc;
            i.source = s->source;
            i.indexed = s->indexed;
            i.index = s->index;
            i.seen = s->seen;
            i.messages = s->messages;
            i.price_inferred_ok = s->price_gcd.result(i.price_inferred);
            i.size_inferred_ok = s->size_gcd.result(i.size_inferred);
            i.price_values = s->price_gcd.count();
            i.size_values = s->size_gcd.count();
            i.price_finer = s->price_finer;
            i.size_finer = s->size_finer;
            out.push_back(std::move(i));
        }
        return out;
    }

private:
    struct SvHash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };

    Status add_entry(const char* sym, size_t n, Increment price, Increment size,
                     IncrementSource source, Instrument** out) {
        if (!valid_symbol(sym, n)) return Status::InvalidArgument;
        if (by_symbol_.find(std::string_view(sym, n)) != by_symbol_.end())
            return Status::InvalidArgument;
        auto s = std::make_unique<Instrument>();
        s->symbol.assign(sym, n);
        s->slot = uint32_t(slots_.size());
        if (price.valid() || size.valid()) {
            Status st = FixedScale::make(price, s->price_fs);
            if (st == Status::Ok) st = FixedScale::make(size, s->size_fs);
            if (st != Status::Ok) return st;
            s->has_increments = true;
            s->price_inc = price;
            s->size_inc = size;
        }
        s->source = source;
        by_symbol_.emplace(s->symbol, uint32_t(slots_.size()));
        slots_.push_back(std::move(s));
        if (out) *out = slots_.back().get();
        last_ = nullptr;
        return Status::Ok;
    }

    void remove_last() {
        by_symbol_.erase(slots_.back()->symbol);
        slots_.pop_back();
        last_ = nullptr;
    }

    Instrument* touch(Instrument* s) noexcept {
        if (!s->seen) {
            s->seen = true;
            if (std::memchr(s->symbol.data(), '_', s->symbol.size())) coinm_symbol_ = true;
            ++n_seen_;
            last_seen_ = s;
            if (!scan_ && !s->indexed) {
                s->indexed = true;
                s->index = next_index_++;
            }
        }
        return s;
    }

    bool scan_ = false;
    bool has_default_ = false;
    Increment default_price_, default_size_;
    std::vector<std::unique_ptr<Instrument>> slots_;
    std::unordered_map<std::string, uint32_t, SvHash, std::equal_to<>> by_symbol_;
    Instrument* last_ = nullptr;
    Instrument* last_seen_ = nullptr;
    size_t n_seen_ = 0;
    uint32_t next_index_ = 0;
    bool coinm_symbol_ = false;
};

}  // namespace lockstep::binance
