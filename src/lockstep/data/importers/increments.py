"""Exact decimals, and the price/size increments of each instrument of a text format (Bybit, Tardis):
explicit per symbol, else one pair for every symbol, else inferred from the data (the exact decimal
GCD of its values, found by a first pass). A given increment is never coarser than the data: the
first pass finds where it is, and it is refined (refined(), refinement(), shared with the Binance
importer)."""
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


def refined(given: tuple[int, int], inferred: tuple[int, int] | None) -> tuple[int, int]:
    """The data increment to use when `given` (a table entry or option) meets data whose exact
    decimal GCD is `inferred`: the GCD of both, i.e. `given` itself (normalised) when every value
    lies on it, else the coarsest grid finer than it that holds every value."""
    g = gcd_add(None, *given)
    assert g is not None  # increments are positive
    return g if inferred is None else gcd_add(g, *inferred)  # type: ignore[return-value]


def refinement(symbol: str, what: str, given: str, used: tuple[int, int], source: str,
               value: str | None, file: str | None, line: int | None, offset: int | None) -> dict[str, Any]:
    """One data increment refined because the data are finer than the table entry or option that
    gave it: what the import reports (decoder counts "increments_refined") and warns about."""
    return {"symbol": symbol, "what": what, "given": given, "used": decimal_text(*used), "source": source,
            "value": value, "file": file, "line": line, "offset": offset}


def describe_refinement(r: Mapping[str, Any]) -> str:
    """The one-line warning of a refinement (report lines, logs)."""
    if r.get("value") is None:
        where = "values"
    elif r.get("line") is None:  # a binary format: records have byte offsets
        where = f"{r['value']} at {r['file']}, offset {r['offset']}"
    else:
        where = f"{r['value']} at {r['file']}:{r['line']}"
    return (f"{r['symbol']}: {r['what']} increment {r['given']} ({r['source']}) is coarser than the data "
            f"({where}); the data increment is refined to {r['used']} so every value is kept")


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
    """Which increments each instrument uses, and where they came from.

    The first pass observes every value: an increment given explicitly or by option that is
    coarser than the data is refined (the GCD of it and the data's), and reported with the first
    value off it, so no value is ever lost to it."""

    def __init__(self, instruments: Any, price_increment: Any, size_increment: Any) -> None:
        if (price_increment is None) != (size_increment is None):
            raise ValueError("price_increment and size_increment go together: give both or neither")
        self.explicit = increment_specs(instruments) if instruments is not None else {}
        self.defaults: tuple[str, str] | None = None
        if price_increment is not None:
            self.defaults = (increment_text(price_increment, "price_increment"),
                             increment_text(size_increment, "size_increment"))
        self._gcd: dict[Any, list[tuple[int, int] | None]] = {}
        # key -> [first price off the given increment, first size off it]: (value, file, line, offset)
        self._finer: dict[Any, list[tuple[str, str, int, int] | None]] = {}
        self._given: dict[str, tuple[tuple[int, int], tuple[int, int], str] | None] = {}
        self._resolved: dict[Any, tuple[tuple[int, int], tuple[int, int], str, str, str]] = {}
        self.refinements: list[dict[str, Any]] = []

    @property
    def needs_scan(self) -> bool:
        """Whether increments are inferred from the data (no option covers every symbol); the
        first pass runs either way, to check given increments against the data."""
        return self.defaults is None

    def given(self, symbol: str) -> tuple[tuple[int, int], tuple[int, int], str] | None:
        """The (price, size) increments configured for `symbol` and their source, or None."""
        key = symbol.upper()
        if key not in self._given:
            spec, source = self.explicit.get(key), "explicit"
            if spec is None:
                spec, source = self.defaults, "option"
            if spec is None:
                self._given[key] = None
            else:
                pp, sp = parse_decimal(spec[0]), parse_decimal(spec[1])
                assert pp is not None and sp is not None
                self._given[key] = (pp, sp, source)
        return self._given[key]

    def observe(self, key: Any, symbol: str, price: tuple[int, int] | None, size: tuple[int, int] | None,
                where: tuple[str, int, int]) -> None:
        """One price/size pair of the first pass, at (file, line, offset)."""
        acc = self._gcd.get(key)
        if acc is None:
            acc = self._gcd[key] = [None, None]
            self._finer[key] = [None, None]
        given = self.given(symbol)
        for i, value in enumerate((price, size)):
            if value is None:
                continue
            acc[i] = gcd_add(acc[i], *value)
            if given is not None and self._finer[key][i] is None and not _on_grid(value, given[i]):
                self._finer[key][i] = (decimal_text(*value), *where)

    def resolve(self, key: Any, symbol: str) -> tuple[tuple[int, int], tuple[int, int], str, str, str]:
        """(price increment, size increment) as (mantissa, exponent), their texts, and the source."""
        got = self._resolved.get(key)
        if got is not None:
            return got
        p, s = self._gcd.get(key, [None, None])
        given = self.given(symbol)
        if given is not None:
            pp, sp, source = given
            finer = self._finer.get(key, [None, None])
            pair = []
            for what, inc, data, first in (("price", pp, p, finer[0]), ("size", sp, s, finer[1])):
                used = refined(inc, data)
                if used != refined(inc, None):
                    self.refinements.append(refinement(symbol, what, decimal_text(*inc), used, source,
                                                       *(first or (None, None, None, None))))
                pair.append(used)
            pp, sp = pair
        else:
            # A symbol whose every value is 0 has no step to learn: 1 keeps its (zero) values exact.
            pp, sp, source = p or (1, 0), s or (1, 0), "inferred"
        got = (pp, sp, decimal_text(*pp), decimal_text(*sp), source)
        self._resolved[key] = got
        return got

    def inferred(self, key: Any) -> dict[str, str | None]:
        p, s = self._gcd.get(key, [None, None])
        return {"price": decimal_text(*p) if p is not None else None,
                "size": decimal_text(*s) if s is not None else None}


def _on_grid(value: tuple[int, int], increment: tuple[int, int]) -> bool:
    m, e = value
    im, ie = increment
    return (m * 10 ** (e - ie)) % im == 0 if e >= ie else m % (im * 10 ** (ie - e)) == 0


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

