"""Exact decimals, and the price/size increments of each instrument of a text format (Bybit, Tardis):
explicit per symbol, else one pair for every symbol, else inferred from the data (the exact decimal
GCD of its values, found by a first pass)."""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from lockstep.data.dataset import Instrument

IncrementLike = str | Decimal | int

_INT64_MAX = (1 << 63) - 1
# Bounds on decimal text: a real price or size never needs more, and they keep `10 ** k` cheap.
_MAX_DIGITS = 40
_MAX_EXPONENT = 40

_PLAIN_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?\Z")
_ANY_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?\Z")


def parse_decimal(text: str) -> tuple[int, int] | None:
    """Exact (mantissa, exponent) of decimal text, or None if it is not a bounded decimal."""
    if _PLAIN_DECIMAL.match(text):
        if len(text) > _MAX_DIGITS + 2:
            return None
        dot = text.find(".")
        if dot < 0:
            return int(text), 0
        return int(text[:dot] + text[dot + 1:]), dot + 1 - len(text)
    if len(text) > _MAX_DIGITS + 8 or not _ANY_DECIMAL.match(text):
        return None
    d = Decimal(text)
    sign, digits, exponent = d.as_tuple()
    if len(digits) > _MAX_DIGITS or not -_MAX_EXPONENT <= exponent <= _MAX_EXPONENT:  # type: ignore[operator]
        return None
    m = int("".join(map(str, digits))) if digits else 0
    return (-m if sign else m), int(exponent)


def decimal_text(mantissa: int, exponent: int) -> str:
    return format(Decimal(mantissa).scaleb(exponent), "f")


def increment_input(value: Any, what: str) -> str:
    """The text of an increment given as a decimal string, Decimal or int, before parsing; floats
    are refused (they are not exact)."""
    if isinstance(value, (bool, float)):
        raise TypeError(f"{what} must be a decimal string, Decimal or int, not {type(value).__name__}"
                        " (floats are not exact)")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{what} must be finite, got {value}")
        text = format(value, "f")
    elif isinstance(value, (int, str)):
        text = str(value).strip()
    else:
        raise TypeError(f"{what} must be a decimal string, Decimal or int, not {type(value).__name__}")
    return text


def increment_text(value: Any, what: str) -> str:
    """Canonical text of a positive decimal increment; floats are refused (they are not exact)."""
    text = increment_input(value, what)
    parsed = parse_decimal(text)
    if parsed is None or parsed[0] <= 0:
        raise ValueError(f"{what} must be a positive decimal, got {value!r}")
    m, e = parsed
    while m % 10 == 0:
        m //= 10
        e += 1
    return decimal_text(m, e)


def gcd_add(acc: tuple[int, int] | None, m: int, e: int) -> tuple[int, int] | None:
    """The exact decimal GCD `acc` extended by the value m * 10**e (zeros change nothing)."""
    if m == 0:
        return acc
    m = abs(m)
    if acc is None:
        g, x = m, e
    else:
        g0, e0 = acc
        c = min(e0, e)
        g, x = math.gcd(g0 * 10 ** (e0 - c), m * 10 ** (e - c)), c
    while g % 10 == 0:
        g //= 10
        x += 1
    return g, x


def units(value: tuple[int, int], increment: tuple[int, int]) -> int | None:
    """value / increment as an int64, or None if it is not an exact multiple or out of range."""
    m, e = value
    im, ie = increment
    if e >= ie:
        num, den = m * 10 ** (e - ie), im
    else:
        num, den = m, im * 10 ** (ie - e)
    q, r = divmod(num, den)
    if r or not -_INT64_MAX - 1 <= q <= _INT64_MAX:
        return None
    return q


def increment_specs(instruments: Any) -> dict[str, tuple[str, str]]:
    """{SYMBOL: (price_increment, size_increment)} from {symbol: (p, s)}, {symbol: {...}}, or an
    iterable of mappings / Instrument objects carrying a symbol."""
    rows: list[tuple[str, Any]] = []
    if isinstance(instruments, Mapping):
        rows = [(str(k), v) for k, v in instruments.items()]
    else:
        for item in instruments:
            if isinstance(item, Instrument):
                rows.append((item.symbol, (item.price_increment, item.size_increment)))
            elif isinstance(item, Mapping) and "symbol" in item:
                rows.append((str(item["symbol"]), item))
            else:
                raise TypeError("instruments: each item must be an Instrument or a mapping with a 'symbol'")
    out: dict[str, tuple[str, str]] = {}
    for symbol, spec in rows:
        key = symbol.strip().upper()
        if key in out:
            raise ValueError(f"instruments: {key} given twice")
        if isinstance(spec, Mapping):
            try:
                price, size = spec["price_increment"], spec["size_increment"]
            except KeyError as e:
                raise ValueError(f"instruments: {key} lacks {e.args[0]}") from None
        else:
            try:
                price, size = spec
            except (TypeError, ValueError):
                raise TypeError(f"instruments: {key} must map to (price_increment, size_increment) "
                                "or a mapping") from None
        out[key] = (increment_text(price, f"{key} price_increment"),
                    increment_text(size, f"{key} size_increment"))
    return out


class Increments:
    """Which increments each instrument uses, and where they came from."""

    def __init__(self, instruments: Any, price_increment: Any, size_increment: Any) -> None:
        if (price_increment is None) != (size_increment is None):
            raise ValueError("price_increment and size_increment go together: give both or neither")
        self.explicit = increment_specs(instruments) if instruments is not None else {}
        self.defaults: tuple[str, str] | None = None
        if price_increment is not None:
            self.defaults = (increment_text(price_increment, "price_increment"),
                             increment_text(size_increment, "size_increment"))
        self._gcd: dict[Any, list[tuple[int, int] | None]] = {}
        self._resolved: dict[Any, tuple[tuple[int, int], tuple[int, int], str, str, str]] = {}

    @property
    def needs_scan(self) -> bool:
        """Every symbol is covered without looking at the data only when defaults are given."""
        return self.defaults is None

    def observe(self, key: Any, price: tuple[int, int] | None, size: tuple[int, int] | None) -> None:
        acc = self._gcd.get(key)
        if acc is None:
            acc = self._gcd[key] = [None, None]
        if price is not None:
            acc[0] = gcd_add(acc[0], *price)
        if size is not None:
            acc[1] = gcd_add(acc[1], *size)

    def resolve(self, key: Any, symbol: str) -> tuple[tuple[int, int], tuple[int, int], str, str, str]:
        """(price increment, size increment) as (mantissa, exponent), their texts, and the source."""
        got = self._resolved.get(key)
        if got is not None:
            return got
        spec = self.explicit.get(symbol.upper())
        if spec is not None:
            price, size, source = spec[0], spec[1], "explicit"
        elif self.defaults is not None:
            price, size, source = self.defaults[0], self.defaults[1], "option"
        else:
            p, s = self._gcd.get(key, [None, None])
            # A symbol whose every value is 0 has no step to learn: 1 keeps its (zero) values exact.
            price = decimal_text(*p) if p is not None else "1"
            size = decimal_text(*s) if s is not None else "1"
            source = "inferred"
        pp, sp = parse_decimal(price), parse_decimal(size)
        assert pp is not None and sp is not None
        got = (pp, sp, price, size, source)
        self._resolved[key] = got
        return got

    def inferred(self, key: Any) -> dict[str, str | None]:
        p, s = self._gcd.get(key, [None, None])
        return {"price": decimal_text(*p) if p is not None else None,
                "size": decimal_text(*s) if s is not None else None}



class InstrumentTable:
    """The instrument table, indexed by first appearance."""

    def __init__(self) -> None:
        self.index: dict[Any, int] = {}
        self.rows: list[Instrument] = []
        self.sources: dict[str, str] = {}

    def get(self, key: Any, symbol: str, venue: str, price: str, size: str, source: str) -> int:
        i = self.index.get(key)
        if i is None:
            i = self.index[key] = len(self.rows)
            self.rows.append(Instrument(symbol=symbol, venue=venue, price_increment=price,
                                        size_increment=size, book="l2"))
            self.sources[f"{venue}:{symbol}"] = source
        return i

