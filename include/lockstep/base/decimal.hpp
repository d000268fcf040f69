// Exact decimal strings <-> fixed-point integers, and the exact decimal GCD used to infer
// increments from data.
//
// Venues quote prices and sizes as decimal strings ("61800.20"). Canonical events hold them as
// int64 multiples of the instrument's increment. Floating point never touches a value: a price
// that is not an exact multiple of the increment is an error, not a rounding.
#pragma once

#include <cstddef>
#include <cstdint>

#include "lockstep/base/status.hpp"

namespace lockstep {

// An increment (tick or lot) as mantissa * 10^exponent, mantissa > 0 with no trailing zeros
// (normalised so that equal increments compare equal): 0.01 = (1, -2), 0.25 = (25, -2), 5 = (5, 0),
// 100 = (1, 2).
struct Increment {
    int64_t mantissa = 0;
    int32_t exponent = 0;

    bool valid() const noexcept { return mantissa > 0; }
    bool operator==(const Increment&) const = default;
};

// A parsed decimal: (negative ? -1 : 1) * mantissa * 10^-scale, scale >= 0. Trailing fraction zeros
// are stripped, so scale is the number of significant fraction digits ("1.50" -> (15, 1)).
struct Decimal {
    uint64_t mantissa = 0;
    int32_t scale = 0;
    bool negative = false;
};

namespace decimal_detail {

inline constexpr uint64_t kPow10[20] = {
    1ull,
    10ull,
    100ull,
    1000ull,
    10000ull,
    100000ull,
    1000000ull,
    10000000ull,
    100000000ull,
    1000000000ull,
    10000000000ull,
    100000000000ull,
    1000000000000ull,
    10000000000000ull,
    100000000000000ull,
    1000000000000000ull,
    10000000000000000ull,
    100000000000000000ull,
    1000000000000000000ull,
    10000000000000000000ull,
};

inline bool is_digit(char c) noexcept { return static_cast<unsigned char>(c - '0') < 10; }

}  // namespace decimal_detail

// Strict syntax shared by every parser here: -?[0-9]+(\.[0-9]+)?  No exponent, no '+', no spaces:
// venue decimal strings never carry them, and accepting them would hide corrupted input.
inline Status parse_decimal(const char* s, size_t n, Decimal& out) noexcept {
    using namespace decimal_detail;
    const char* p = s;
    const char* end = s + n;
    out = Decimal{};
    if (p < end && *p == '-') {
        out.negative = true;
        ++p;
    }
    if (p == end || !is_digit(*p)) return Status::DecodeError;
    uint64_t m = 0;
    for (; p < end && is_digit(*p); ++p) {
        if (__builtin_mul_overflow(m, 10u, &m) || __builtin_add_overflow(m, uint64_t(*p - '0'), &m))
            return Status::Overflow;
    }
    int32_t scale = 0;
    if (p < end && *p == '.') {
        ++p;
        if (p == end || !is_digit(*p)) return Status::DecodeError;
        // Zeros are held back until a non-zero digit follows, so trailing zeros never cost range.
        uint32_t zeros = 0;
        int32_t digits = 0;
        for (; p < end && is_digit(*p); ++p) {
            ++digits;
            if (*p == '0') {
                ++zeros;
                continue;
            }
            for (; zeros; --zeros) {
                if (__builtin_mul_overflow(m, 10u, &m)) return Status::Overflow;
            }
            if (__builtin_mul_overflow(m, 10u, &m) ||
                __builtin_add_overflow(m, uint64_t(*p - '0'), &m))
                return Status::Overflow;
            scale = digits;
        }
    }
    if (p != end) return Status::DecodeError;
    out.mantissa = m;
    out.scale = scale;
    if (m == 0) out.negative = false;
    return Status::Ok;
}

// Parses an increment given as a decimal string ("0.01"); it must be > 0 and fit int64.
inline Status parse_increment(const char* s, size_t n, Increment& out) noexcept {
    Decimal d;
    const Status st = parse_decimal(s, n, d);
    if (st != Status::Ok) return st;
    if (d.negative || d.mantissa == 0) return Status::InvalidArgument;
    uint64_t m = d.mantissa;
    int32_t e = -d.scale;
    while (m % 10 == 0) {
        m /= 10;
        ++e;
    }
    if (m > uint64_t(INT64_MAX)) return Status::Overflow;
    out = Increment{int64_t(m), e};
    return Status::Ok;
}

// Precomputed form of an increment for the hot conversion: value / increment ==
// (value * 10^digits) / divisor, so conversion is one digit loop plus (rarely) one division.
struct FixedScale {
    int32_t digits = 0;     // fraction digits kept while parsing (max(0, -exponent))
    uint64_t divisor = 1;   // mantissa * 10^max(0, exponent); 1 for the usual 0.01-style increments

    static Status make(Increment inc, FixedScale& out) noexcept {
        using namespace decimal_detail;
        if (!inc.valid()) return Status::InvalidArgument;
        if (inc.exponent < -60 || inc.exponent > 19) return Status::Overflow;
        out.digits = inc.exponent < 0 ? -inc.exponent : 0;
        uint64_t div = uint64_t(inc.mantissa);
        if (inc.exponent > 0 && __builtin_mul_overflow(div, kPow10[inc.exponent], &div))
            return Status::Overflow;
        out.divisor = div;
        return Status::Ok;
    }
};

// Exact conversion of a decimal string to a multiple of the increment described by `fs`.
// DecodeError: not a decimal; NotMultiple: not an exact multiple; Overflow: outside int64.
inline Status to_fixed(const char* s, size_t n, const FixedScale& fs, int64_t& out) noexcept {
    using namespace decimal_detail;
    const char* p = s;
    const char* end = s + n;
    bool negative = false;
    if (p < end && *p == '-') {
        negative = true;
        ++p;
    }
    if (p == end || !is_digit(*p)) return Status::DecodeError;
    uint64_t acc = 0;
    bool overflow = false;
    // At most 19 digits always fit uint64: venue strings ("61800.20000000") skip the checks.
    const bool checked = n > 19;
    // Digits are first checked for syntax in full so that "12x" reports DecodeError even when it
    // would also overflow; overflow is remembered and reported last.
    for (; p < end && is_digit(*p); ++p) {
        if (checked) {
            overflow |= __builtin_mul_overflow(acc, 10u, &acc);
            overflow |= __builtin_add_overflow(acc, uint64_t(*p - '0'), &acc);
        } else {
            acc = acc * 10 + uint64_t(*p - '0');
        }
    }
    int32_t kept = 0;
    bool not_multiple = false;
    if (p < end && *p == '.') {
        ++p;
        if (p == end || !is_digit(*p)) return Status::DecodeError;
        for (; p < end && is_digit(*p); ++p) {
            if (kept < fs.digits) {
                if (checked) {
                    overflow |= __builtin_mul_overflow(acc, 10u, &acc);
                    overflow |= __builtin_add_overflow(acc, uint64_t(*p - '0'), &acc);
                } else {
                    acc = acc * 10 + uint64_t(*p - '0');
                }
                ++kept;
            } else if (*p != '0') {
                not_multiple = true;  // a digit finer than the increment's exponent
            }
        }
    }
    if (p != end) return Status::DecodeError;
    if (not_multiple) return Status::NotMultiple;
    if (overflow) return Status::Overflow;
    for (int32_t pad = fs.digits - kept; pad > 0;) {
        const int32_t step = pad > 19 ? 19 : pad;
        if (acc != 0 && __builtin_mul_overflow(acc, kPow10[step], &acc)) return Status::Overflow;
        pad -= step;
    }
    if (fs.divisor != 1) {
        if (acc % fs.divisor != 0) return Status::NotMultiple;
        acc /= fs.divisor;
    }
    if (negative) {
        if (acc > uint64_t(INT64_MAX) + 1) return Status::Overflow;
        out = acc == uint64_t(INT64_MAX) + 1 ? INT64_MIN : -int64_t(acc);
    } else {
        if (acc > uint64_t(INT64_MAX)) return Status::Overflow;
        out = int64_t(acc);
    }
    return Status::Ok;
}

// Whether |d| is an exact multiple of `inc` (valid), computed on the parsed value.
inline bool is_multiple(const Decimal& d, Increment inc) noexcept {
    using namespace decimal_detail;
    __extension__ typedef unsigned __int128 u128;
    if (d.mantissa == 0) return true;
    const int32_t k = -d.scale - inc.exponent;  // d / inc = mantissa * 10^k / inc.mantissa
    const u128 m = d.mantissa;
    const u128 im = static_cast<uint64_t>(inc.mantissa);
    if (k >= 0) {
        if (im == 1) return true;
        u128 r = m % im;  // (m * 10^k) mod im, 10^19 at a time (r * 10^19 < 2^127)
        for (int32_t left = k; left > 0 && r != 0;) {
            const int32_t step = left > 19 ? 19 : left;
            r = r * kPow10[step] % im;
            left -= step;
        }
        return r == 0;
    }
    if (-k > 19) return false;  // the divisor exceeds any uint64 mantissa
    u128 den = im * kPow10[-k];
    return m % den == 0;
}

// Running exact GCD of the absolute values of decimals: the coarsest increment of which every
// value seen is a multiple. Zeros carry no information about the grid and are only counted.
// Held as g * 10^-f with a 128-bit g so that mixing magnitudes and precisions cannot overflow on
// realistic data; if it ever does, the result is reported as unavailable instead of wrong.
class DecimalGcd {
public:
    void add(const Decimal& d) noexcept {
        ++count_;
        if (d.mantissa == 0) {
            ++zeros_;
            return;
        }
        if (overflow_) return;
        // Already 10^-f: every value with no finer digits is a multiple.
        if (g_ == 1 && d.scale <= f_) return;
        u128 m = d.mantissa;
        if (g_ == 0) {
            g_ = m;
            f_ = d.scale;
            return;
        }
        if (d.scale > f_) {
            if (!mul_pow10(g_, d.scale - f_)) return;
            f_ = d.scale;
        } else if (d.scale < f_) {
            if (!mul_pow10(m, f_ - d.scale)) return;
        }
        g_ = gcd(g_, m);
    }

    void merge(const DecimalGcd& o) noexcept {
        count_ += o.count_;
        zeros_ += o.zeros_;
        overflow_ |= o.overflow_;
        if (o.g_ == 0 || overflow_) return;
        if (g_ == 0) {
            g_ = o.g_;
            f_ = o.f_;
            return;
        }
        u128 a = g_, b = o.g_;
        int32_t f = f_;
        if (o.f_ > f) {
            if (!mul_pow10(a, o.f_ - f)) return;
            f = o.f_;
        } else if (o.f_ < f) {
            if (!mul_pow10(b, f - o.f_)) return;
        }
        g_ = gcd(a, b);
        f_ = f;
    }

    // The inferred increment; false when no non-zero value was seen or the range was exceeded.
    bool result(Increment& out) const noexcept {
        if (g_ == 0 || overflow_) return false;
        u128 g = g_;
        int32_t e = -f_;
        while (g % 10 == 0) {
            g /= 10;
            ++e;
        }
        if (g > u128(INT64_MAX)) return false;
        out = Increment{int64_t(g), e};
        return true;
    }

    // Whether adding d would leave the GCD as it is, known cheaply: the GCD is a power of ten
    // no finer than d's last digit (the usual case). False means "maybe not".
    bool already_divides(const Decimal& d) const noexcept {
        return d.mantissa == 0 || (g_ == 1 && !overflow_ && d.scale <= f_);
    }
    // Counts d without looking at it (it is a multiple of the GCD it will be merged into).
    void add_known(const Decimal& d) noexcept {
        ++count_;
        if (d.mantissa == 0) ++zeros_;
    }

    uint64_t count() const noexcept { return count_; }   // values seen, zeros included
    uint64_t zeros() const noexcept { return zeros_; }
    bool overflowed() const noexcept { return overflow_; }

private:
    __extension__ typedef unsigned __int128 u128;  // GCC/Clang; exact headroom for the GCD

    bool mul_pow10(u128& v, int32_t k) noexcept {
        using namespace decimal_detail;
        while (k > 0) {
            const int32_t step = k > 19 ? 19 : k;
            if (__builtin_mul_overflow(v, u128(kPow10[step]), &v)) {
                overflow_ = true;
                return false;
            }
            k -= step;
        }
        return true;
    }

    static u128 gcd(u128 a, u128 b) noexcept {
        while (b != 0) {
            // 64-bit remainders are an order of magnitude cheaper; values usually fit.
            if ((a >> 64) == 0 && (b >> 64) == 0) {
                uint64_t x = uint64_t(a), y = uint64_t(b);
                while (y != 0) {
                    const uint64_t t = x % y;
                    x = y;
                    y = t;
                }
                return x;
            }
            const u128 t = a % b;
            a = b;
            b = t;
        }
        return a;
    }

    u128 g_ = 0;
    int32_t f_ = 0;
    uint64_t count_ = 0;
    uint64_t zeros_ = 0;
    bool overflow_ = false;
};

}  // namespace lockstep
