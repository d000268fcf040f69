"""Bybit v5 public websocket captures -> NormalizedChunks (lockstep.data.importers.normalized).

One message per line: bare JSON as Bybit sends it (the nautilus_trader capture), or
``<receive ns> <JSON>`` when a recorder stamped it. Files may be plain, gzip, zstd or a one-member
zip; several files in order are one stream. Lines end with ``\\n`` or ``\\r\\n``; blank lines are not
records.

Decoded topics:

- ``orderbook.<depth>.<SYM>``: a ``snapshot`` is BOOK_CLEAR then one L2_SET per level (bids, then
  asks), all flagged SNAPSHOT; a ``delta`` is one L2_SET per level (size 0 removes it). ``seq`` is
  the update id ``u``. Bybit documents ``u`` as consecutive per symbol, reset to 1 by a snapshot
  after a service restart; so a delta whose ``u`` is not the previous ``u`` + 1 gets a GAP before
  its events, a message whose ``u`` is not above the previous one is a DUPLICATE_MESSAGE, and a
  snapshot with ``u`` = 1 is a restart, never a duplicate. Deltas before the first snapshot are
  emitted as they are: the validator owns that rule (``requires_snapshot``).
- ``publicTrade.<SYM>``: one TRADE per trade (``S`` is the aggressor); ``seq`` is the trade id
  ``i`` when it is numeric (spot), else 0 (linear/inverse ids are UUIDs).

Times: ``ts_event`` is ``cts`` (matching-engine time) when present, else ``ts``; a trade's is its
``T``. ``ts_recv`` is the recorder's stamp when the line carries one, else the message's ``ts``
(Bybit's send time): a bare capture has no receive clock of ours, and ``counts["ts_recv_source"]``
says which was used.

Subscription replies and pongs (``{"success":..., "op":...}``) are records with no events; other
topics are UNSUPPORTED_MESSAGE; a line that is not a well-formed message is MALFORMED_RECORD; a
final line with no newline that does not parse is TRUNCATED_RECORD.

Price/size increments per symbol: ``instruments=`` (explicit), else ``price_increment=`` +
``size_increment=`` (every other symbol), else inferred: the exact decimal GCD of every non-zero
price (size) of the symbol, found by a first pass over the inputs. A value that is not a multiple
of its increment makes the record MALFORMED_RECORD (it cannot happen with inferred increments).

The helpers for line reading, decimals and increments are shared with the Tardis decoder.
"""
from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Any, BinaryIO

from lockstep.data.dataset import Instrument
from lockstep.errors import DecodeError, LockstepError
from lockstep.events import EventKind, Flag, Side
from lockstep.data.importers.normalized import (
    ChunkBuilder,
    InputFile,
    NormalizedChunk,
    Rule,
    open_decompressed,
)

PathLike = str | os.PathLike[str]
IncrementLike = str | Decimal | int

_READ = 1 << 20
_INT64_MAX = (1 << 63) - 1
_UINT64_MAX = (1 << 64) - 1
_MS = 1_000_000
_REASONS_PER_RULE = 100  # reasons kept per rule: enough to diagnose, bounded on garbage input
# Bounds on decimal text: a real price or size never needs more, and they keep `10 ** k` cheap.
_MAX_DIGITS = 40
_MAX_EXPONENT = 40

L2_SET = int(EventKind.L2_SET)
BOOK_CLEAR = int(EventKind.BOOK_CLEAR)
TRADE = int(EventKind.TRADE)
GAP = int(EventKind.GAP)
LAST = int(Flag.LAST)
SNAPSHOT = int(Flag.SNAPSHOT)
BID = int(Side.BID)
ASK = int(Side.ASK)

_KIND_NAMES = {int(k): k.name.lower() for k in EventKind}

# ---------------------------------------------------------------- shared helpers (also Tardis)

_PLAIN_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?\Z")
_ANY_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?\Z")


def _parse_decimal(text: str) -> tuple[int, int] | None:
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


def _decimal_text(mantissa: int, exponent: int) -> str:
    return format(Decimal(mantissa).scaleb(exponent), "f")


def _increment_text(value: Any, what: str) -> str:
    """Canonical text of a positive decimal increment; floats are refused (they are not exact)."""
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
    parsed = _parse_decimal(text)
    if parsed is None or parsed[0] <= 0:
        raise ValueError(f"{what} must be a positive decimal, got {value!r}")
    m, e = parsed
    while m % 10 == 0:
        m //= 10
        e += 1
    return _decimal_text(m, e)


def _gcd_add(acc: tuple[int, int] | None, m: int, e: int) -> tuple[int, int] | None:
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


def _units(value: tuple[int, int], increment: tuple[int, int]) -> int | None:
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


def _increment_specs(instruments: Any) -> dict[str, tuple[str, str]]:
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
        out[key] = (_increment_text(price, f"{key} price_increment"),
                    _increment_text(size, f"{key} size_increment"))
    return out


class _Increments:
    """Which increments each instrument uses, and where they came from."""

    def __init__(self, instruments: Any, price_increment: Any, size_increment: Any) -> None:
        if (price_increment is None) != (size_increment is None):
            raise ValueError("price_increment and size_increment go together: give both or neither")
        self.explicit = _increment_specs(instruments) if instruments is not None else {}
        self.defaults: tuple[str, str] | None = None
        if price_increment is not None:
            self.defaults = (_increment_text(price_increment, "price_increment"),
                             _increment_text(size_increment, "size_increment"))
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
            acc[0] = _gcd_add(acc[0], *price)
        if size is not None:
            acc[1] = _gcd_add(acc[1], *size)

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
            price = _decimal_text(*p) if p is not None else "1"
            size = _decimal_text(*s) if s is not None else "1"
            source = "inferred"
        pp, sp = _parse_decimal(price), _parse_decimal(size)
        assert pp is not None and sp is not None
        got = (pp, sp, price, size, source)
        self._resolved[key] = got
        return got

    def inferred(self, key: Any) -> dict[str, str | None]:
        p, s = self._gcd.get(key, [None, None])
        return {"price": _decimal_text(*p) if p is not None else None,
                "size": _decimal_text(*s) if s is not None else None}


def _as_paths(paths: PathLike | Iterable[PathLike]) -> list[str]:
    if isinstance(paths, (str, os.PathLike)):
        return [os.fspath(paths)]
    out = []
    for p in paths:
        if not isinstance(p, (str, os.PathLike)):
            raise TypeError(f"inputs are paths, got {type(p).__name__}")
        out.append(os.fspath(p))
    if not out:
        raise ValueError("no input files")
    return out


def _open(path: str) -> BinaryIO:
    try:
        return open_decompressed(path)
    except Exception as e:  # noqa: BLE001 - a missing file, a bad zip directory, a zip of several members
        raise DecodeError(f"cannot open: {e}", path=path, offset=0) from None


def _iter_lines(path: str, f: BinaryIO) -> Iterator[tuple[int, int, bytes, bool, int]]:
    """(1-based line, byte offset, content, terminated, offset after the line) per line of `f`.
    Content excludes the ``\\n`` and a ``\\r`` before it. A read error (corrupt gzip, zstd,
    zip) is a DecodeError."""
    line_no = 0
    start = 0  # offset of the line being assembled
    consumed = 0
    parts: list[bytes] = []
    while True:
        try:
            data = f.read(_READ)
        except Exception as e:  # noqa: BLE001 - zlib, EOF, BadZipFile, Arrow...: all mean "corrupt input"
            raise DecodeError(f"cannot read the input: {type(e).__name__}: {e}", path=path,
                              offset=consumed) from None
        if not data:
            break
        consumed += len(data)
        i = 0
        while True:
            j = data.find(b"\n", i)
            if j < 0:
                if i < len(data):
                    parts.append(data[i:])
                break
            if parts:
                parts.append(data[i:j])
                line = b"".join(parts)
                parts = []
            else:
                line = data[i:j]
            line_no += 1
            end = start + len(line) + 1
            yield line_no, start, (line[:-1] if line.endswith(b"\r") else line), True, end
            start = end
            i = j + 1
    if parts:
        line = b"".join(parts)
        line_no += 1
        yield line_no, start, (line[:-1] if line.endswith(b"\r") else line), False, start + len(line)


def _read_file(path: str) -> Iterator[tuple[int, int, bytes, bool, int]]:
    f = _open(path)
    try:
        yield from _iter_lines(path, f)
    finally:
        f.close()


class _Problems:
    """Counts per rule, and reason texts for the first few records of each."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def reason(self, rule: Rule, text: str) -> str | None:
        n = self.counts.get(rule.label, 0)
        self.counts[rule.label] = n + 1
        return text if n < _REASONS_PER_RULE else None


class _Table:
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


class _RunBase:
    format = ""
    requires_snapshot = True

    def __init__(self) -> None:
        self._iterated = False
        self._done = False
        self._table = _Table()
        self._inputs: list[InputFile] = []
        self._counts: dict[str, Any] = {}

    def _require(self) -> None:
        if not self._done:
            raise LockstepError(f"the {self.format} decode run has not been iterated to its end yet")

    @property
    def instruments(self) -> list[Instrument]:
        self._require()
        return list(self._table.rows)

    @property
    def inputs(self) -> list[InputFile]:
        self._require()
        return list(self._inputs)

    @property
    def counts(self) -> dict[str, Any]:
        self._require()
        return self._counts

    def __iter__(self) -> Iterator[NormalizedChunk]:
        if self._iterated:
            raise LockstepError(f"a {type(self).__name__} can be iterated only once")
        self._iterated = True
        return self._run()

    def _run(self) -> Iterator[NormalizedChunk]:  # pragma: no cover - overridden
        raise NotImplementedError


# ---------------------------------------------------------------- Bybit

_CAPTURE_PREFIX = re.compile(rb"([0-9]{1,19})[ \t]+")

# parsed-line kinds
_BOOK, _TRADES, _REPLY, _UNSUPPORTED, _MALFORMED = range(5)


class _Bad(Exception):
    """A line that is not a well-formed Bybit message (the reason is the text)."""


def _int_field(obj: Mapping[str, Any], name: str, *, limit: int = _INT64_MAX) -> int:
    v = obj.get(name)
    if type(v) is not int:
        raise _Bad(f"field {name!r} must be an integer, got {_short(v)}")
    if not 0 <= v <= limit:
        raise _Bad(f"field {name!r} out of range: {v}")
    return v


def _ms_field(obj: Mapping[str, Any], name: str) -> int:
    return _int_field(obj, name, limit=_INT64_MAX // _MS) * _MS


def _decimal_field(v: Any, what: str) -> tuple[int, int]:
    if isinstance(v, str):
        parsed = _parse_decimal(v)
    elif type(v) is int:
        parsed = (v, 0)
    elif isinstance(v, Decimal) and v.is_finite():
        parsed = _parse_decimal(format(v, "f"))
    else:
        parsed = None
    if parsed is None:
        raise _Bad(f"{what} is not a decimal: {_short(v)}")
    return parsed


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _levels(data: Mapping[str, Any], name: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    raw = data.get(name)
    if not isinstance(raw, list):
        raise _Bad(f"data.{name} must be a list of [price, size]")
    out = []
    for level in raw:
        if not isinstance(level, list) or len(level) != 2:
            raise _Bad(f"data.{name}: a level must be [price, size], got {_short(level)}")
        out.append((_decimal_field(level[0], f"data.{name} price"),
                    _decimal_field(level[1], f"data.{name} size")))
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _parse_bybit(content: bytes) -> tuple[int, Any]:
    """(kind, payload) of one line; payload is the reason for _UNSUPPORTED/_MALFORMED."""
    recv: int | None = None
    body = content
    m = _CAPTURE_PREFIX.match(content)
    if m is not None:
        recv = int(m.group(1))
        if recv > _INT64_MAX:
            return _MALFORMED, f"receive time {recv} out of range"
        body = content[m.end():]
    try:
        msg = json.loads(body.decode("utf-8"), parse_float=Decimal, parse_constant=_reject_constant)
    except UnicodeDecodeError as e:
        return _MALFORMED, f"not UTF-8 text ({e.reason} at byte {e.start})"
    except (ValueError, RecursionError) as e:
        return _MALFORMED, f"not JSON: {str(e)[:120]}"
    if not isinstance(msg, dict):
        return _MALFORMED, f"a message must be a JSON object, got {type(msg).__name__}"
    topic = msg.get("topic")
    if topic is None:
        if "op" in msg or "success" in msg:
            return _REPLY, None
        return _UNSUPPORTED, "a JSON object with neither 'topic' nor 'op'"
    if not isinstance(topic, str):
        return _MALFORMED, f"'topic' must be a string, got {_short(topic)}"
    try:
        if topic.startswith("orderbook."):
            return _BOOK, _parse_book(msg, topic, recv)
        if topic.startswith("publicTrade."):
            return _TRADES, _parse_trades(msg, topic, recv)
    except _Bad as e:
        return _MALFORMED, f"{topic}: {e}"
    return _UNSUPPORTED, f"topic {topic[:80]!r} is not decoded"


def _parse_book(msg: Mapping[str, Any], topic: str, recv: int | None) -> tuple:
    parts = topic.split(".")
    if len(parts) != 3 or not parts[2]:
        raise _Bad("topic must be orderbook.<depth>.<symbol>")
    kind = msg.get("type")
    if kind not in ("snapshot", "delta"):
        raise _Bad(f"'type' must be 'snapshot' or 'delta', got {_short(kind)}")
    data = msg.get("data")
    if not isinstance(data, dict):
        raise _Bad("'data' must be an object")
    symbol = data.get("s", parts[2])
    if not isinstance(symbol, str) or symbol != parts[2]:
        raise _Bad(f"data.s {_short(symbol)} does not match the topic's symbol {parts[2]!r}")
    u = _int_field(data, "u", limit=_UINT64_MAX)
    ts = _ms_field(msg, "ts")
    ts_event = _ms_field(msg, "cts") if "cts" in msg else ts
    bids = _levels(data, "b")
    asks = _levels(data, "a")
    return symbol, kind == "snapshot", u, ts_event, recv if recv is not None else ts, recv is not None, bids, asks


def _parse_trades(msg: Mapping[str, Any], topic: str, recv: int | None) -> tuple:
    parts = topic.split(".")
    if len(parts) != 2 or not parts[1]:
        raise _Bad("topic must be publicTrade.<symbol>")
    ts = _ms_field(msg, "ts")
    data = msg.get("data")
    if not isinstance(data, list):
        raise _Bad("'data' must be a list of trades")
    trades = []
    for t in data:
        if not isinstance(t, dict):
            raise _Bad(f"a trade must be an object, got {_short(t)}")
        symbol = t.get("s", parts[1])
        if not isinstance(symbol, str) or not symbol:
            raise _Bad(f"trade symbol must be a string, got {_short(symbol)}")
        side = t.get("S")
        if side == "Buy":
            side_code = BID
        elif side == "Sell":
            side_code = ASK
        else:
            raise _Bad(f"trade side 'S' must be 'Buy' or 'Sell', got {_short(side)}")
        ident = t.get("i")
        seq = 0
        if type(ident) is int and 0 <= ident <= _UINT64_MAX:
            seq = ident
        elif isinstance(ident, str) and ident.isascii() and ident.isdigit() and len(ident) <= 20:
            seq = int(ident) if int(ident) <= _UINT64_MAX else 0
        trades.append((symbol, side_code, _ms_field(t, "T"), _decimal_field(t.get("p"), "trade price 'p'"),
                       _decimal_field(t.get("v"), "trade size 'v'"), seq))
    return ts if recv is None else recv, recv is not None, trades


class BybitDecodeRun(_RunBase):
    """One decoding of Bybit v5 websocket captures (see the module docstring). Iterate once."""

    format = "bybit"
    requires_snapshot = True

    def __init__(self, paths: list[str], venue: str, increments: _Increments) -> None:
        super().__init__()
        self._paths = paths
        self._venue = venue
        self._inc = increments

    def _scan(self) -> None:
        """First pass: the decimal GCD of every price and size per symbol."""
        for path in self._paths:
            for _, _, content, _, _ in _read_file(path):
                if not content.strip():
                    continue
                kind, p = _parse_bybit(content)
                if kind == _BOOK:
                    symbol, bids, asks = p[0], p[6], p[7]
                    for price, size in bids:
                        self._inc.observe(symbol, price, size)
                    for price, size in asks:
                        self._inc.observe(symbol, price, size)
                elif kind == _TRADES:
                    for symbol, _, _, price, size, _ in p[2]:
                        self._inc.observe(symbol, price, size)

    def _instrument(self, symbol: str) -> tuple[int, tuple[int, int], tuple[int, int]]:
        pinc, sinc, ptext, stext, source = self._inc.resolve(symbol, symbol)
        return self._table.get(symbol, symbol, self._venue, ptext, stext, source), pinc, sinc

    def _run(self) -> Iterator[NormalizedChunk]:
        if self._inc.needs_scan:
            self._scan()
        cb = ChunkBuilder()
        problems = _Problems()
        c: dict[str, Any] = {
            "files": len(self._paths), "records": 0, "blank_lines": 0, "snapshots": 0, "restarts": 0,
            "deltas": 0, "deltas_before_snapshot": 0, "gaps": 0, "trade_messages": 0, "trades": 0,
            "replies": 0, "ts_recv_source": {"capture": 0, "message_ts": 0},
        }
        last_u: dict[str, int] = {}
        snapshotted: set[str] = set()
        for file_index, path in enumerate(self._paths):
            records = 0
            size = 0
            for line_no, offset, content, terminated, size in _read_file(path):
                if not content.strip():
                    c["blank_lines"] += 1
                    continue
                records += 1
                kind, p = _parse_bybit(content)
                events: list[tuple] = []
                problem, reason = Rule.OK, None
                if kind == _MALFORMED:
                    problem, reason = (Rule.MALFORMED_RECORD, p) if terminated else (
                        Rule.TRUNCATED_RECORD, f"the input ends inside this line ({p})")
                elif kind == _UNSUPPORTED:
                    problem, reason = Rule.UNSUPPORTED_MESSAGE, p
                elif kind == _REPLY:
                    c["replies"] += 1
                elif kind == _BOOK:
                    problem, reason = self._book(p, events, last_u, snapshotted, c)
                else:
                    problem, reason = self._trades(p, events, c)
                if problem != Rule.OK:
                    events = []
                    reason = problems.reason(problem, reason or problem.label)
                elif kind in (_BOOK, _TRADES):
                    c["ts_recv_source"]["capture" if p[5 if kind == _BOOK else 1] else "message_ts"] += 1
                cb.record(file_index, line_no, offset, len(content), problem, reason)
                for ev in events:
                    cb.event(*ev)
                if cb.full:
                    chunk = cb.take()
                    if chunk is not None:
                        yield chunk
            self._inputs.append(InputFile(path=path, bytes_read=size, records=records))
            c["records"] += records
        chunk = cb.take()
        if chunk is not None:
            yield chunk
        c["problems"] = problems.counts
        c["increment_source"] = dict(self._table.sources)
        if self._inc.needs_scan:
            c["inferred_increments"] = {f"{row.venue}:{row.symbol}": self._inc.inferred(row.symbol)
                                        for row in self._table.rows}
        self._counts = c
        self._done = True

    def _book(self, p: tuple, events: list[tuple], last_u: dict[str, int], snapshotted: set[str],
              c: dict[str, Any]) -> tuple[Rule, str | None]:
        symbol, is_snapshot, u, ts_event, ts_recv, _, bids, asks = p
        prev = last_u.get(symbol)
        restart = is_snapshot and u == 1 and prev is not None
        if prev is not None and u <= prev and not restart:
            return Rule.DUPLICATE_MESSAGE, f"{symbol}: update id {u} is not above the previous {prev}"
        inst, pinc, sinc = self._instrument(symbol)
        rows = []
        for side, levels in ((BID, bids), (ASK, asks)):
            for price, size in levels:
                pu, su = _units(price, pinc), _units(size, sinc)
                if pu is None or su is None:
                    what = (f"price {_decimal_text(*price)}" if pu is None else f"size {_decimal_text(*size)}")
                    return Rule.MALFORMED_RECORD, f"{symbol}: {what} is not an int64 multiple of its increment"
                rows.append((side, pu, su))
        flag = SNAPSHOT if is_snapshot else 0
        if is_snapshot:
            events.append((ts_event, ts_recv, u, inst, BOOK_CLEAR, 0, flag, 0, 0, 0))
        elif prev is not None and u != prev + 1:
            events.append((ts_event, ts_recv, u, inst, GAP, 0, LAST, 0, 0, prev + 1))
            c["gaps"] += 1
        for side, pu, su in rows:
            events.append((ts_event, ts_recv, u, inst, L2_SET, side, flag, pu, su, 0))
        if events and events[-1][4] != GAP:
            last = events[-1]
            events[-1] = last[:6] + (last[6] | LAST,) + last[7:]
        last_u[symbol] = u
        if is_snapshot:
            c["snapshots"] += 1
            c["restarts"] += restart
            snapshotted.add(symbol)
        else:
            c["deltas"] += 1
            if symbol not in snapshotted:
                c["deltas_before_snapshot"] += 1
        return Rule.OK, None

    def _trades(self, p: tuple, events: list[tuple], c: dict[str, Any]) -> tuple[Rule, str | None]:
        ts_recv, _, trades = p
        for symbol, side, ts_event, price, size, seq in trades:
            inst, pinc, sinc = self._instrument(symbol)
            pu, su = _units(price, pinc), _units(size, sinc)
            if pu is None or su is None:
                events.clear()
                what = f"price {_decimal_text(*price)}" if pu is None else f"size {_decimal_text(*size)}"
                return Rule.MALFORMED_RECORD, f"{symbol}: trade {what} is not an int64 multiple of its increment"
            events.append((ts_event, ts_recv, seq, inst, TRADE, side, 0, pu, su, 0))
        if events:
            last = events[-1]
            events[-1] = last[:6] + (LAST,) + last[7:]
        c["trade_messages"] += 1
        c["trades"] += len(trades)
        return Rule.OK, None


def decode_bybit(
    paths: PathLike | Iterable[PathLike],
    *,
    venue: str = "bybit-linear",
    instruments: Any = None,
    price_increment: IncrementLike | None = None,
    size_increment: IncrementLike | None = None,
) -> BybitDecodeRun:
    """Decode Bybit v5 public websocket captures (one stream, files in order); iterate the result
    for NormalizedChunks. See the module docstring for the encoding choices."""
    if not isinstance(venue, str) or not venue:
        raise ValueError("venue must be a non-empty string")
    return BybitDecodeRun(_as_paths(paths), venue, _Increments(instruments, price_increment, size_increment))


__all__ = ["BybitDecodeRun", "decode_bybit"]
