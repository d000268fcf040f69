// A small strict JSON scanner: validates RFC 8259 syntax (UTF-8 included) of one text in memory
// and lets the caller pull out the members it needs as spans into the input, without allocating.
//
// It is a cursor, not a tree: the caller walks objects and arrays with next_member()/next_element()
// and either reads a value (string(), integer(), ...) or skip_value()s it, which still validates it.
// Keys and strings are returned raw (escapes are validated, not decoded): the formats we read use
// plain ASCII names and decimal strings, and a key written with escapes simply matches nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace lockstep::json {

struct Span {
    const char* ptr = nullptr;
    uint32_t len = 0;

    bool equals(const char* lit, size_t n) const noexcept {
        return len == n && std::memcmp(ptr, lit, n) == 0;
    }
    template <size_t N>
    bool operator==(const char (&lit)[N]) const noexcept {
        return equals(lit, N - 1);
    }
};

enum class Type : uint8_t { Invalid, Object, Array, String, Number, True, False, Null };

namespace detail {

// String byte classes: 0 plain, 1 '"', 2 '\\', 3 control character, 4 start of a UTF-8 sequence.
struct Tables {
    uint8_t str[256];
    uint8_t ws[256];
};

constexpr Tables make_tables() {
    Tables t{};
    for (int c = 0; c < 256; ++c) {
        t.str[c] = c < 0x20 ? 3 : c >= 0x80 ? 4 : c == '"' ? 1 : c == '\\' ? 2 : 0;
        t.ws[c] = (c == ' ' || c == '\t' || c == '\r' || c == '\n') ? 1 : 0;
    }
    return t;
}

inline constexpr Tables kTables = make_tables();

inline bool is_digit(char c) noexcept { return static_cast<unsigned char>(c - '0') < 10; }
inline bool is_hex(char c) noexcept {
    return is_digit(c) || static_cast<unsigned char>((c | 0x20) - 'a') < 6;
}

}  // namespace detail

class Scanner {
public:
    // Nesting deeper than this is refused: real messages nest 4 levels, and a bound keeps hostile
    // input from exhausting the stack.
    static constexpr int kMaxDepth = 64;

    Scanner(const char* begin, const char* end) noexcept : p_(begin), begin_(begin), end_(end) {}

    const char* pos() const noexcept { return p_; }
    int depth() const noexcept { return depth_; }
    // Back to an earlier position (and its nesting depth) to re-read a value another way.
    void rewind(const char* p, int depth) noexcept {
        p_ = p;
        depth_ = depth;
    }
    bool at_end() const noexcept { return p_ >= end_; }

    // The first error wins; what() is a static string.
    bool failed() const noexcept { return what_ != nullptr; }
    const char* what() const noexcept { return what_; }
    size_t error_offset() const noexcept { return size_t(err_at_ - begin_); }
    // True when the error is "the input ended too early": the signature of a truncated record.
    bool error_at_end() const noexcept { return at_eof_; }

    void skip_ws() noexcept {
        while (p_ < end_ && detail::kTables.ws[static_cast<unsigned char>(*p_)]) ++p_;
    }

    // Type of the value at the cursor (after whitespace), without consuming it.
    Type peek() noexcept {
        skip_ws();
        if (p_ >= end_) return Type::Invalid;
        switch (*p_) {
            case '{': return Type::Object;
            case '[': return Type::Array;
            case '"': return Type::String;
            case 't': return Type::True;
            case 'f': return Type::False;
            case 'n': return Type::Null;
            default: return (*p_ == '-' || detail::is_digit(*p_)) ? Type::Number : Type::Invalid;
        }
    }

    // Object walk. Call begin_object() at '{', then next_member() until it returns false; after a
    // true return the cursor is at the member's value, which the caller must consume.
    bool begin_object() noexcept { return open('{'); }
    bool next_member(Span& key, bool& first) noexcept {
        if (!next_entry('}', first)) return false;
        if (*p_ != '"') return fail("expected a string key");
        if (!string(key)) return false;
        skip_ws();
        if (p_ >= end_) return fail_eof("unterminated object");
        if (*p_ != ':') return fail("expected ':' after key");
        ++p_;
        skip_ws();
        if (p_ >= end_) return fail_eof("missing value");
        return true;
    }

    bool begin_array() noexcept { return open('['); }
    bool next_element(bool& first) noexcept { return next_entry(']', first); }
    // Leaves a container entered with begin_object/begin_array (depth bookkeeping only).
    void close() noexcept { --depth_; }

    // A string at the cursor; `out` is its raw content between the quotes.
    bool string(Span& out) noexcept {
        if (p_ >= end_) return fail_eof("expected a string");
        if (*p_ != '"') return fail("expected a string");
        const char* start = ++p_;
        const char* p = p_;
        for (;;) {
            // Plain ASCII runs are the common case: 8 bytes per step while they last.
            while (end_ - p >= 8) {
                uint64_t w;
                std::memcpy(&w, p, 8);
                if (has_special(w)) break;
                p += 8;
            }
            while (p < end_ && detail::kTables.str[static_cast<unsigned char>(*p)] == 0) ++p;
            if (p >= end_) {
                p_ = p;
                return fail_eof("unterminated string");
            }
            switch (detail::kTables.str[static_cast<unsigned char>(*p)]) {
                case 1:
                    out.ptr = start;
                    out.len = uint32_t(p - start);
                    p_ = p + 1;
                    return true;
                case 2:
                    if (!escape(p)) return false;
                    break;
                case 3:
                    p_ = p;
                    return fail("control character in string");
                default:
                    if (!utf8(p)) return false;
                    break;
            }
        }
    }

    // A number at the cursor. `is_uint` is set when it is a plain non-negative integer that fits
    // uint64 (no fraction, no exponent); `out` then holds it.
    bool number(uint64_t& out, bool& is_uint) noexcept {
        const char* p = p_;
        bool neg = false;
        if (p < end_ && *p == '-') {
            neg = true;
            ++p;
        }
        if (p >= end_) {
            p_ = p;
            return fail_eof("truncated number");
        }
        uint64_t v = 0;
        bool overflow = false;
        if (*p == '0') {
            ++p;
        } else if (detail::is_digit(*p)) {
            const char* first = p;
            for (; p < end_ && detail::is_digit(*p); ++p) v = v * 10 + uint64_t(*p - '0');
            // 19 digits always fit uint64; only longer runs need the checked recount.
            if (p - first > 19) {
                v = 0;
                for (const char* q = first; q < p; ++q) {
                    overflow |= __builtin_mul_overflow(v, 10u, &v);
                    overflow |= __builtin_add_overflow(v, uint64_t(*q - '0'), &v);
                }
            }
        } else {
            p_ = p;
            return fail("invalid number");
        }
        bool integral = true;
        if (p < end_ && *p == '.') {
            integral = false;
            ++p;
            if (p >= end_) {
                p_ = p;
                return fail_eof("truncated number");
            }
            if (!detail::is_digit(*p)) {
                p_ = p;
                return fail("invalid number");
            }
            while (p < end_ && detail::is_digit(*p)) ++p;
        }
        if (p < end_ && (*p == 'e' || *p == 'E')) {
            integral = false;
            ++p;
            if (p < end_ && (*p == '+' || *p == '-')) ++p;
            if (p >= end_) {
                p_ = p;
                return fail_eof("truncated number");
            }
            if (!detail::is_digit(*p)) {
                p_ = p;
                return fail("invalid number");
            }
            while (p < end_ && detail::is_digit(*p)) ++p;
        }
        p_ = p;
        is_uint = integral && !neg && !overflow;
        out = is_uint ? v : 0;
        return true;
    }

    bool literal(Type t) noexcept {
        const char* lit = t == Type::True ? "true" : t == Type::False ? "false" : "null";
        const size_t n = t == Type::False ? 5 : 4;
        for (size_t i = 0; i < n; ++i, ++p_) {
            if (p_ >= end_) return fail_eof("truncated literal");
            if (*p_ != lit[i]) return fail("invalid literal");
        }
        return true;
    }

    // Validates and consumes any value.
    bool skip_value() noexcept {
        switch (peek()) {
            case Type::Object: {
                if (!begin_object()) return false;
                bool first = true;
                Span key;
                while (next_member(key, first)) {
                    if (!skip_value()) return false;
                }
                if (failed()) return false;
                close();
                return true;
            }
            case Type::Array: {
                if (!begin_array()) return false;
                bool first = true;
                while (next_element(first)) {
                    if (!skip_value()) return false;
                }
                if (failed()) return false;
                close();
                return true;
            }
            case Type::String: {
                Span s;
                return string(s);
            }
            case Type::Number: {
                uint64_t v;
                bool u;
                return number(v, u);
            }
            case Type::True:
            case Type::False:
            case Type::Null:
                return literal(peek());
            case Type::Invalid:
                if (p_ >= end_) return fail_eof("missing value");
                return fail("invalid value");
        }
        return fail("invalid value");
    }

    // After the top-level value: only whitespace may remain.
    bool finish() noexcept {
        skip_ws();
        if (p_ < end_) return fail("unexpected characters after the JSON value");
        return true;
    }

    bool fail(const char* what) noexcept {
        if (!what_) {
            what_ = what;
            err_at_ = p_ < end_ ? p_ : end_;
        }
        return false;
    }
    bool fail_eof(const char* what) noexcept {
        if (!what_) at_eof_ = true;
        return fail(what);
    }

private:
    // The step both walks share: at `close` the container ends (false, no failure); an entry
    // after the first must follow a ','. True with the cursor at the entry.
    [[gnu::always_inline]] bool next_entry(char close, bool& first) noexcept {
        const bool object = close == '}';
        skip_ws();
        if (p_ >= end_) return fail_eof(object ? "unterminated object" : "unterminated array");
        if (*p_ == close) {
            ++p_;
            return false;
        }
        if (!first) {
            if (*p_ != ',')
                return fail(object ? "expected ',' or '}' in object"
                                   : "expected ',' or ']' in array");
            ++p_;
            skip_ws();
            if (p_ >= end_) return fail_eof(object ? "unterminated object" : "unterminated array");
            if (*p_ == close)
                return fail(object ? "trailing comma in object" : "trailing comma in array");
        }
        first = false;
        return true;
    }

    static bool has_special(uint64_t w) noexcept {
        constexpr uint64_t ones = 0x0101010101010101ull;
        constexpr uint64_t highs = 0x8080808080808080ull;
        const uint64_t quote = w ^ (ones * '"');
        const uint64_t bslash = w ^ (ones * '\\');
        // A byte is zero (or, for the first term, < 0x20) iff its high bit survives here; bytes with
        // the high bit already set are caught by `w & highs` (non-ASCII needs validation anyway).
        const uint64_t t = ((w - ones * 0x20) | (quote - ones) | (bslash - ones)) & ~w & highs;
        return (t | (w & highs)) != 0;
    }

    bool open(char c) noexcept {
        if (p_ >= end_) return fail_eof("missing value");
        if (*p_ != c) return fail(c == '{' ? "expected an object" : "expected an array");
        if (++depth_ > kMaxDepth) return fail("JSON nested too deeply");
        ++p_;
        return true;
    }

    bool escape(const char*& p) noexcept {
        // p at the backslash
        if (end_ - p < 2) {
            p_ = end_;
            return fail_eof("unterminated string");
        }
        switch (p[1]) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                p += 2;
                return true;
            case 'u':
                for (int i = 2; i < 6; ++i) {
                    if (p + i >= end_) {
                        p_ = end_;
                        return fail_eof("unterminated string");
                    }
                    if (!detail::is_hex(p[i])) {
                        p_ = p + i;
                        return fail("invalid \\u escape");
                    }
                }
                p += 6;
                return true;
            default:
                p_ = p + 1;
                return fail("invalid escape in string");
        }
    }

    // One UTF-8 sequence at p (lead byte >= 0x80); rejects overlongs, surrogates and > U+10FFFF.
    bool utf8(const char*& p) noexcept {
        const auto* u = reinterpret_cast<const unsigned char*>(p);
        const unsigned char c = u[0];
        int n;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 3;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 4;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else {
            p_ = p;
            return fail("invalid UTF-8 in string");
        }
        for (int i = 1; i < n; ++i) {
            if (p + i >= end_) {
                p_ = end_;
                return fail_eof("truncated UTF-8 sequence");
            }
            const unsigned char b = u[i];
            const unsigned char l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
            if (b < l || b > h) {
                p_ = p + i;
                return fail("invalid UTF-8 in string");
            }
        }
        p += n;
        return true;
    }

    const char* p_;
    const char* begin_;
    const char* end_;
    const char* what_ = nullptr;
    const char* err_at_ = nullptr;
    bool at_eof_ = false;
    int depth_ = 0;
};

}  // namespace lockstep::json
