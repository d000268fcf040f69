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
price (size) of the symbol, found by a first pass over the inputs. The first pass runs always: a
given increment coarser than the data is refined to the GCD of it and the data's, and reported
(``counts["increments_refined"]``: the value and line first off it), so every value is kept; only a
value that does not fit int64 in units of its increment is MALFORMED_RECORD.

Line reading, decimals and increments are shared with the Tardis decoder (importers/text.py,
importers/increments.py).
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Any

from lockstep.data.importers.increments import IncrementLike, Increments, decimal_text, parse_decimal, units
from lockstep.data.importers.normalized import (
    ASK,
    BID,
    BOOK_CLEAR,
    GAP,
    L2_SET,
    LAST,
    SNAPSHOT,
    TRADE,
    ChunkBuilder,
    InputFile,
    NormalizedChunk,
    Rule,
)
from lockstep.data.importers.text import PathLike, TextDecodeRun, as_paths, read_lines, short

_INT64_MAX = (1 << 63) - 1
_UINT64_MAX = (1 << 64) - 1
_MS = 1_000_000

_CAPTURE_PREFIX = re.compile(rb"([0-9]{1,19})[ \t]+")

# parsed-line kinds
_BOOK, _TRADES, _REPLY, _UNSUPPORTED, _MALFORMED = range(5)


class _Bad(Exception):
    """A line that is not a well-formed Bybit message (the reason is the text)."""


def _int_field(obj: Mapping[str, Any], name: str, *, limit: int = _INT64_MAX) -> int:
    v = obj.get(name)
    if type(v) is not int:
        raise _Bad(f"field {name!r} must be an integer, got {short(v)}")
    if not 0 <= v <= limit:
        raise _Bad(f"field {name!r} out of range: {v}")
    return v


def _ms_field(obj: Mapping[str, Any], name: str) -> int:
    return _int_field(obj, name, limit=_INT64_MAX // _MS) * _MS


def _decimal_field(v: Any, what: str) -> tuple[int, int]:
    if isinstance(v, str):
        parsed = parse_decimal(v)
    elif type(v) is int:
        parsed = (v, 0)
    elif isinstance(v, Decimal) and v.is_finite():
        parsed = parse_decimal(format(v, "f"))
    else:
        parsed = None
    if parsed is None:
        raise _Bad(f"{what} is not a decimal: {short(v)}")
    return parsed


def _levels(data: Mapping[str, Any], name: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    raw = data.get(name)
    if not isinstance(raw, list):
        raise _Bad(f"data.{name} must be a list of [price, size]")
    out = []
    for level in raw:
        if not isinstance(level, list) or len(level) != 2:
            raise _Bad(f"data.{name}: a level must be [price, size], got {short(level)}")
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
        return _MALFORMED, f"'topic' must be a string, got {short(topic)}"
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
        raise _Bad(f"'type' must be 'snapshot' or 'delta', got {short(kind)}")
    data = msg.get("data")
    if not isinstance(data, dict):
        raise _Bad("'data' must be an object")
    symbol = data.get("s", parts[2])
    if not isinstance(symbol, str) or symbol != parts[2]:
        raise _Bad(f"data.s {short(symbol)} does not match the topic's symbol {parts[2]!r}")
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
            raise _Bad(f"a trade must be an object, got {short(t)}")
        symbol = t.get("s", parts[1])
        if not isinstance(symbol, str) or not symbol:
            raise _Bad(f"trade symbol must be a string, got {short(symbol)}")
        side = t.get("S")
        if side == "Buy":
            side_code = BID
        elif side == "Sell":
            side_code = ASK
        else:
            raise _Bad(f"trade side 'S' must be 'Buy' or 'Sell', got {short(side)}")
        ident = t.get("i")
        seq = 0
        if type(ident) is int and 0 <= ident <= _UINT64_MAX:
            seq = ident
        elif isinstance(ident, str) and ident.isascii() and ident.isdigit() and len(ident) <= 20:
            seq = int(ident) if int(ident) <= _UINT64_MAX else 0
        trades.append((symbol, side_code, _ms_field(t, "T"), _decimal_field(t.get("p"), "trade price 'p'"),
                       _decimal_field(t.get("v"), "trade size 'v'"), seq))
    return ts if recv is None else recv, recv is not None, trades


class BybitDecodeRun(TextDecodeRun):
    """One decoding of Bybit v5 websocket captures (see the module docstring). Iterate once."""

    format = "bybit"
    requires_snapshot = True

    def __init__(self, paths: list[str], venue: str, increments: Increments) -> None:
        super().__init__(paths, increments)
        self._venue = venue

    def _scan(self) -> None:
        """First pass: the decimal GCD of every price and size per symbol."""
        for path in self._paths:
            for line, offset, content, _, _ in read_lines(path):
                if not content.strip():
                    continue
                where = (path, line, offset)
                kind, p = _parse_bybit(content)
                if kind == _BOOK:
                    symbol, bids, asks = p[0], p[6], p[7]
                    for price, size in (*bids, *asks):
                        self._inc.observe(symbol, symbol, price, size, where)
                elif kind == _TRADES:
                    for symbol, _, _, price, size, _ in p[2]:
                        self._inc.observe(symbol, symbol, price, size, where)

    def _instrument(self, symbol: str) -> tuple[int, tuple[int, int], tuple[int, int]]:
        pinc, sinc, ptext, stext, source = self._inc.resolve(symbol, symbol)
        return self._table.get(symbol, symbol, self._venue, ptext, stext, source), pinc, sinc

    def _decode(self, cb: ChunkBuilder) -> Iterator[NormalizedChunk]:
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
            lines = read_lines(path)
            for line_no, offset, content, terminated, size in lines:
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
                    reason = reason or problem.label
                elif kind in (_BOOK, _TRADES):
                    c["ts_recv_source"]["capture" if p[5 if kind == _BOOK else 1] else "message_ts"] += 1
                cb.record(file_index, line_no, offset, len(content), problem, reason)
                for ev in events:
                    cb.event(*ev)
                yield from cb.take_if_full()
            if lines.cut is not None:
                records += self._record_cut(cb, file_index, lines)
                size = lines.cut.offset + lines.cut.length
            self._inputs.append(InputFile(path=path, bytes_read=size, records=records))
            c["records"] += records
        return c

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
                pu, su = units(price, pinc), units(size, sinc)
                if pu is None or su is None:
                    what = (f"price {decimal_text(*price)}" if pu is None else f"size {decimal_text(*size)}")
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
            pu, su = units(price, pinc), units(size, sinc)
            if pu is None or su is None:
                events.clear()
                what = f"price {decimal_text(*price)}" if pu is None else f"size {decimal_text(*size)}"
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
    return BybitDecodeRun(as_paths(paths), venue, Increments(instruments, price_increment, size_increment))


__all__ = ["BybitDecodeRun", "decode_bybit"]
