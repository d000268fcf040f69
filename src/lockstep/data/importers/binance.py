"""Binance websocket captures (spot, USD-M, COIN-M) -> NormalizedChunks (a DecodeRun).

Input files hold one message per line, ``<receive ns> <combined-stream JSON>`` (plain, gzip, zstd
or a one-member zip; a compressed file that is cut is read up to the cut, which is one truncated
record); several files given in order are one stream (daily rotation). Decoding happens in C++
(include/lockstep/codecs/codecs/binance/decoder.hpp, which documents the encoding choices); this module streams the
files through it in bounded memory and works out each symbol's price/size (data) increments:

1. ``instruments=``: explicit, per symbol;
2. ``price_increment=`` + ``size_increment=``: for every other symbol;
3. the built-in table (binance_instruments.json) for the detected market (spot / usdm / coinm);
4. inferred from the data: the exact decimal GCD of every price and every size of the symbol.

A C++ scan pass over all inputs before decoding computes those GCDs, and for symbols covered by
1-3 the first value off the given increments. An increment coarser than the data is refined to
the GCD of it and the data's (reported in ``counts["increments_refined"]`` with that value, file
and line), so no record is lost to a coarse table entry or option. With ``infer=None`` the first
~2 MB of the first file are sniffed for the market type and symbols; when 1-3 cover every symbol
seen and the inputs can be read twice, decoding starts at once with those increments (no pass:
the common case costs one read), and the first value off them, or a symbol none covers, sends it
back to the pass: before any chunk was handed out the run starts over by itself, after it raises
DecodeRestart (lockstep.errors), whose ``restarted()`` is the run to iterate instead (the data
path does so, discarding what it wrote). Otherwise the pass runs first, over every input when a
symbol is not covered (a one-pass file object cannot be scanned; with every symbol covered it is
decoded with the given increments, and a value off one is then MALFORMED_RECORD). ``infer=True`` always scans;
``infer=False`` never does: given increments are trusted and an uncovered symbol is a
DecodeError at its first line. The built-in table also gives the venue's order-entry rules
(tick_size, lot_size, min_qty, min_notional) of each instrument it knows.

Records (one per non-empty line) and their Rules are described in codecs/binance/decoder.hpp; only
configuration problems and corrupt compressed input raise DecodeError.
"""
from __future__ import annotations

import json
import os
import sys
import zlib
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, BinaryIO, Union

import numpy as np

from lockstep._bindings import binance as _binance
from lockstep.data.dataset import ORDER_RULE_FIELDS, Instrument
from lockstep.data.importers.decode_run import DecodeRunBase
from lockstep.data.importers.increments import (
    IncrementLike,
    decimal_text,
    increment_input,
    parse_decimal,
    refined,
    refinement,
)
from lockstep.data.importers.normalized import (
    InputFile,
    NormalizedChunk,
    StreamCut,
    decompressed,
    open_decompressed,
)
from lockstep.enums import IncrementSource, MarketType, Rule, Status
from lockstep.errors import DecodeError, DecodeRestart, LockstepError
from lockstep.events import COLUMN_NAMES, Columns, EventKind, empty_columns

Source = Union[str, "os.PathLike[str]", BinaryIO]

_CHUNK = 1 << 20  # most uncompressed bytes handed to the decoder at once
_SNIFF = 1 << 21  # bytes of the first input scanned to learn market type and symbols

_VENUE = {m.label: f"binance-{m.label}" for m in MarketType if m is not MarketType.UNKNOWN}
_EVENT_KEYS = {
    EventKind.L2_SET: "l2_set",
    EventKind.BOOK_CLEAR: "book_clear",
    EventKind.TRADE: "trade",
    EventKind.VENUE_BBO: "venue_bbo",
    EventKind.GAP: "gap",
}


@lru_cache(maxsize=1)
def _builtin_table() -> dict[tuple[str, str], tuple[str, str]]:
    text = resources.files("lockstep.data.importers").joinpath("binance_instruments.json").read_text()
    table = {}
    for row in json.loads(text)["instruments"]:
        table[(row["venue"], row["symbol"].upper())] = (
            _increment_text(row["price_increment"], "price_increment"),
            _increment_text(row["size_increment"], "size_increment"),
        )
    return table


@lru_cache(maxsize=1)
def _builtin_order_rules() -> dict[tuple[str, str], dict[str, str]]:
    """{(market, SYMBOL): the venue's order-entry rules the built-in table knows, real units}."""
    text = resources.files("lockstep.data.importers").joinpath("binance_instruments.json").read_text()
    return {(row["venue"], row["symbol"].upper()): {k: str(row[k]) for k in ORDER_RULE_FIELDS if k in row}
            for row in json.loads(text)["instruments"]}


def builtin_instruments() -> list[dict[str, str]]:
    """The built-in table: dicts with venue ('spot'/'usdm'/'coinm'), symbol, the data increments
    (price/size_increment) and the order-entry rules it knows (tick_size, lot_size, min_qty,
    min_notional)."""
    rules = _builtin_order_rules()
    return [
        {"venue": v, "symbol": s, "price_increment": p, "size_increment": q, **rules.get((v, s), {})}
        for (v, s), (p, q) in sorted(_builtin_table().items())
    ]


def _increment_text(value: IncrementLike, what: str) -> str:
    """Canonical decimal text of an increment, parsed as the decoder parses it."""
    text = increment_input(value, what)
    try:
        mantissa, exponent = _binance.parse_increment_text(text)
    except ValueError as e:
        raise ValueError(f"{what}: {e}") from None
    return decimal_text(mantissa, exponent)


class _OffIncrement(Exception):
    """Decoding without the first pass met what only the first pass handles (the reason)."""


class _InputError(Exception):
    """A problem with the byte stream itself (a corrupt compressed stream), at an uncompressed offset."""

    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(reason)
        self.offset = offset
        self.reason = reason


class _Input:
    """One input: a path or a binary file object, compressed (importers/normalized.decompressed)
    or plain text."""

    def __init__(self, src: Source, position: int) -> None:
        if isinstance(src, (str, os.PathLike)):
            self.path: str | None = os.fspath(src)
            self.fileobj: BinaryIO | None = None
            self.name = self.path
            self.start = 0
        elif hasattr(src, "read"):
            self.path = None
            self.fileobj = src
            name = getattr(src, "name", None)
            self.name = str(name) if isinstance(name, (str, bytes, os.PathLike)) else f"<input {position}>"
            try:
                self.start = src.tell() if src.seekable() else None
            except (OSError, AttributeError):
                self.start = None
        else:
            raise TypeError(f"inputs are paths or binary file objects, got {type(src).__name__}")
        self.opened = 0
        self.cut: StreamCut | None = None  # set when a read to the end found the stream cut

    @property
    def rereadable(self) -> bool:
        return self.path is not None or self.start is not None

    def chunks(self) -> Iterator[bytes]:
        """Uncompressed text in chunks of at most _CHUNK bytes; _InputError on a corrupt
        compressed stream; a cut one ends where it is cut, and `cut` says so."""
        self.cut = None
        if self.fileobj is None:
            f = open_decompressed(self.path)  # type: ignore[arg-type]
        else:
            if self.opened and not self.rereadable:
                raise LockstepError(f"{self.name}: this file object cannot be read twice; "
                                    "pass a path or a seekable file")
            if self.opened:
                self.fileobj.seek(self.start)  # type: ignore[arg-type]
            self.opened += 1
            f = decompressed(self.fileobj, self.name, owned=False)
        produced = 0
        with f:
            while True:
                try:
                    chunk = f.read(_CHUNK)
                except (OSError, EOFError, ValueError, zlib.error) as e:  # the decompressors' errors
                    raise _InputError(produced, f"corrupt {f.compression or 'input'} data ({e})") from None
                if not chunk:
                    break
                produced += len(chunk)
                yield chunk
            self.cut = f.cut


class _ReadAhead:
    """The first input's sniffed chunks, replayed to the decode pass instead of read again."""

    def __init__(self, source: _Input) -> None:
        self.gen = source.chunks()
        self.cached: list[bytes] = []
        self.error: _InputError | None = None
        self.done = False

    def prefetch(self, nbytes: int) -> Iterator[bytes]:
        got = 0
        while got < nbytes and not self.done:
            try:
                chunk = next(self.gen)
            except StopIteration:
                self.done = True
                break
            except _InputError as e:
                self.error = e
                self.done = True
                break
            self.cached.append(chunk)
            got += len(chunk)
            yield chunk

    def replay(self) -> Iterator[bytes]:
        cached, self.cached = self.cached, []
        yield from cached
        if self.error is not None:
            raise self.error
        if not self.done:
            yield from self.gen


def _normalise_instruments(instruments: Any) -> list[tuple[str, int | None, str, str]]:
    """[(symbol, index or None, price_increment, size_increment)] from the accepted forms:
    {symbol: (price, size)}, {symbol: {"price_increment":..., "size_increment":..., "index":...}}
    or an iterable of such dicts that also carry "symbol"."""
    rows: list[tuple[str, Any]] = []
    if isinstance(instruments, Mapping):
        rows = [(str(k), v) for k, v in instruments.items()]
    else:
        for item in instruments:
            if not isinstance(item, Mapping) or "symbol" not in item:
                raise TypeError("instruments: each item must be a mapping with a 'symbol'")
            rows.append((str(item["symbol"]), item))
    out = []
    seen: set[str] = set()
    for symbol, spec in rows:
        symbol = symbol.strip().upper()
        if symbol in seen:
            raise ValueError(f"instruments: {symbol} given twice")
        seen.add(symbol)
        if isinstance(spec, Mapping):
            try:
                price, size = spec["price_increment"], spec["size_increment"]
            except KeyError as e:
                raise ValueError(f"instruments: {symbol} lacks {e.args[0]}") from None
            index = spec.get("index")
        else:
            try:
                price, size = spec
            except (TypeError, ValueError):
                raise TypeError(f"instruments: {symbol} must map to (price_increment, "
                                "size_increment) or a dict") from None
            index = None
        if index is not None and (isinstance(index, bool) or not isinstance(index, int)
                                  or not 0 <= index < 2**32):
            raise ValueError(f"instruments: {symbol} index must be an int in [0, 2**32)")
        out.append((symbol, index,
                    _increment_text(price, f"{symbol} price_increment"),
                    _increment_text(size, f"{symbol} size_increment")))
    used = {i for _, i, _, _ in out if i is not None}
    if len(used) != sum(1 for _, i, _, _ in out if i is not None):
        raise ValueError("instruments: two symbols share an index")
    nxt = 0
    result = []
    for symbol, index, price, size in out:
        if index is None:
            while nxt in used:
                nxt += 1
            index = nxt
            used.add(index)
        result.append((symbol, index, price, size))
    return result


def _batch_views(bufs: dict[str, np.ndarray], n: int) -> Columns:
    return {name: bufs[name][:n] for name in COLUMN_NAMES}


class _Buffers:
    """Chunk storage (event columns, event_record, per-record columns). A handed-out chunk's
    arrays are reused once the consumer has let go of every view of them (fresh pages cost more
    than decoding into them); otherwise new ones are made."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.bufs = self._make(capacity, capacity)
        self.baseline = self._refs()

    @staticmethod
    def _make(events: int, records: int) -> dict[str, np.ndarray]:
        bufs = empty_columns(events)
        bufs["event_record"] = np.empty(events, np.int64)
        for name, dtype in _binance.RECORD_COLUMNS:
            bufs[name] = np.empty(records, dtype)
        return bufs

    def _refs(self) -> list[int] | None:
        if not hasattr(sys, "getrefcount"):
            return None
        return [sys.getrefcount(arr) for arr in self.bufs.values()]

    def next(self) -> dict[str, np.ndarray]:
        """Buffers for the next chunk."""
        if (self.baseline is None or self._refs() != self.baseline
                or len(self.bufs["ts_event"]) != self.capacity):
            self.bufs = self._make(self.capacity, self.capacity)
            self.baseline = self._refs()
        return self.bufs

    def grow(self, events: int) -> dict[str, np.ndarray]:
        """Buffers for one chunk whose first record has `events` events, more than fit."""
        self.bufs = self._make(max(events, self.capacity), self.capacity)
        self.baseline = None
        return self.bufs


class BinanceDecodeRun(DecodeRunBase):
    """One decoding of Binance captures: a DecodeRun (lockstep.data.importers.normalized).

    Iterate it (once) for NormalizedChunks; each chunk's arrays are fresh views the consumer may
    keep. Report attributes:

    - ``instruments``: the instrument table (list of lockstep.data.dataset.Instrument, position =
      event ``instrument``), the table so far while iterating;
    - ``instrument_info``: the same rows as dicts with index, increment_source and the inferred
      increments (after iterating);
    - ``inputs``: list of InputFile (path, uncompressed bytes, records);
    - ``counts``: lines, records, files, messages, events per kind, skipped (per reason: count +
      first locations), problems (per Rule), sequence_gaps, ts_recv_raised, depth_buffered/replayed;
    - ``market_type``: 'spot', 'usdm', 'coinm' or 'unknown';
    - ``bytes_read``: bytes of uncompressed text read;
    - ``complete``: True when every input was decoded to its end without a fatal error.
    """

    format = "binance"
    requires_snapshot = True

    def __init__(
        self,
        inputs: list[_Input],
        *,
        instruments: list[tuple[str, int, str, str]],
        defaults: tuple[str, str] | None,
        batch_size: int,
        infer: bool | None,
        snapshot_symbol: str | None,
        market_type: str | None = None,
        max_held_records: int | None = None,
    ) -> None:
        super().__init__()
        self._sources = inputs
        self._explicit = instruments
        self._defaults = defaults
        self._batch_size = batch_size
        self._infer = infer
        self._snapshot_symbol = snapshot_symbol
        self._market_type = market_type
        self._max_held_records = max_held_records
        self._instrument_info: list[dict[str, Any]] = []
        self._market_found = MarketType.UNKNOWN.label
        self._bytes_read = 0
        self._complete = False
        self._inferred: dict[str, tuple[str | None, str | None]] = {}
        self._scanned = False
        self._refinements: list[dict[str, Any]] = []
        self._dec: _binance.BinanceDecoder | None = None
        self._lines: list[int] = []
        self._optimistic = False  # decoding with configured increments before any scan
        self._market_used = MarketType.UNKNOWN.label  # the market whose table gave the increments
        self._handed_out = 0  # chunks yielded

    # ---- reports ----

    @property
    def instruments(self) -> list[Instrument]:
        if self._done or self._dec is None:
            return super().instruments
        return [self._instrument(r) for r in self._table(self._dec)]  # the table so far

    @property
    def instrument_info(self) -> list[dict[str, Any]]:
        self._require()
        return self._instrument_info

    @property
    def market_type(self) -> str:
        self._require()
        return self._market_found

    @property
    def bytes_read(self) -> int:
        return self._bytes_read

    @property
    def complete(self) -> bool:
        return self._complete

    # ---- decoding ----

    def _new_decoder(self) -> _binance.BinanceDecoder:
        dec = _binance.BinanceDecoder()
        if self._snapshot_symbol:
            dec.set_snapshot_symbol(self._snapshot_symbol)
        if self._market_type:
            dec.set_market_type(self._market_type)
        if self._max_held_records:
            dec.set_max_held_records(self._max_held_records)
        return dec

    def _sniff(self, ahead: _ReadAhead) -> tuple[str, list[str]]:
        dec = self._new_decoder()
        dec.set_scan_mode(True)
        dec.begin_file(0, self._sources[0].name)
        for chunk in ahead.prefetch(_SNIFF):
            _, _, _, status = dec.feed(chunk, None, 0, 0)
            if status != Status.OK:
                break  # the decode pass reports it, in place
        return dec.market_type, [r["symbol"] for r in dec.symbols() if r["seen"]]

    def _scan(self, market: str) -> tuple[str, list[dict[str, Any]]]:
        """The first pass: market type, symbols, the exact decimal GCD of every price and size per
        symbol, and for symbols with configured increments the first value off them."""
        dec = self._new_decoder()
        dec.set_scan_mode(True)
        self._add_configured(dec, market, {}, scan=True)
        for i, src in enumerate(self._sources):
            if not src.rereadable:
                raise LockstepError(f"{src.name}: inferring increments needs a second pass over "
                                    "the input; pass a path or a seekable file, or give increments")
            dec.begin_file(i, src.name)
            try:
                for chunk in src.chunks():
                    _, _, _, status = dec.feed(chunk, None, 0, 0)
                    if status != Status.OK:
                        raise dec.exception(status)
            except _InputError:
                pass  # the values before the damage are scanned; the decode pass reports it in place
            _, _, status = dec.finish(None, 0, 0)
            if status != Status.OK:
                raise dec.exception(status)
        return dec.market_type, dec.symbols()

    def _configured(self, market: str) -> dict[str, tuple[str, str, str]]:
        """{symbol: (price increment, size increment, source)} of the configured symbols:
        explicit, else built-in for `market` (when no option covers every symbol)."""
        out = {s: (p, q, IncrementSource.EXPLICIT.label) for s, _, p, q in self._explicit}
        if self._defaults is None:
            for (venue, symbol), (price, size) in _builtin_table().items():
                if venue == market and symbol not in out:
                    out[symbol] = (price, size, IncrementSource.BUILTIN.label)
        return out

    def _add_configured(self, dec: _binance.BinanceDecoder, market: str,
                        used: Mapping[str, tuple[str, str]], *, scan: bool = False) -> None:
        """The configured increments (explicit, option, built-in for `market`) into `dec`, each
        replaced by its entry in `used` (the increments refined for the data)."""
        for symbol, index, price, size in self._explicit:
            price, size = used.get(symbol, (price, size))
            if scan:  # the scan hands out no indexes
                dec.add_catalog(symbol, price, size, IncrementSource.EXPLICIT)
            else:
                dec.add_instrument(symbol, index, price, size, IncrementSource.EXPLICIT)
        configured = self._configured(market)
        for symbol, (price, size, source) in configured.items():
            if source == IncrementSource.BUILTIN.label:
                price, size = used.get(symbol, (price, size))
                dec.add_catalog(symbol, price, size, IncrementSource.BUILTIN)
        if self._defaults is not None:
            dec.set_default_increments(*self._defaults)
            for symbol, (price, size) in used.items():
                if symbol not in configured:
                    dec.add_catalog(symbol, price, size, IncrementSource.OPTION)

    def _refine(self, scan_rows: list[dict[str, Any]], market: str) -> dict[str, tuple[str, str]]:
        """Per scanned symbol with configured increments (explicit, option or built-in), the
        increments the decode uses: each refined, and reported, where the data hold values finer
        than it, so that nothing is lost to a coarse table entry or option."""
        configured = self._configured(market)
        used = {}
        for r in scan_rows:
            symbol = r["symbol"]
            if not r["seen"]:
                continue
            if symbol in configured:
                given_text = configured[symbol][:2]
                source = configured[symbol][2]
            elif self._defaults is not None:
                given_text, source = self._defaults, IncrementSource.OPTION.label
            else:
                continue
            pair = []
            for what, text in zip(("price", "size"), given_text):
                given = parse_decimal(text)
                assert given is not None  # checked when configured
                inc = refined(given, r[f"{what}_inferred"])
                if inc != refined(given, None):
                    # The first value off the increment is known when the scan had it configured.
                    finer = (r[f"{what}_finer"] if r["has_increments"] else None) or {}
                    file = finer.get("file")
                    self._refinements.append(refinement(
                        symbol, what, text, inc, source, finer.get("value"),
                        self._sources[file].name if file is not None else None,
                        finer.get("line"), finer.get("offset")))
                pair.append(decimal_text(*inc))
            used[symbol] = (pair[0], pair[1])
        return used

    def _configure(self) -> tuple[_binance.BinanceDecoder, _ReadAhead | None]:
        explicit = {s for s, _, _, _ in self._explicit}
        builtin = _builtin_table()
        ahead = None
        market = self._market_type or MarketType.UNKNOWN.label
        uncovered: list[str] = []
        if self._defaults is None and self._sources:
            ahead = _ReadAhead(self._sources[0])
            sniffed, seen = self._sniff(ahead)
            market = self._market_type or sniffed
            uncovered = [s for s in seen if s not in explicit and (market, s) not in builtin]
        scan_rows: list[dict[str, Any]] = []
        rereadable = all(src.rereadable for src in self._sources)
        # Every symbol the sniff saw has configured increments: decode with them at once, and run
        # the scan (then decode again) only if a value off them, or a symbol none covers, turns up.
        # A consumer that cannot restart is handed nothing before the pass has checked every
        # value, so the pass then runs while the first chunk waits: beside the decode, which
        # needs inputs opened twice at once (paths, not a shared file object).
        paths = all(src.path is not None for src in self._sources)
        self._optimistic = (self._infer is None and rereadable and not uncovered
                            and (self._restart_allowed or paths))
        self._market_used = market
        # Without the scan, configured increments are trusted (a value off them is malformed):
        # only when asked (infer=False), or when the input cannot be read twice.
        if self._sources and (self._infer is True or (self._infer is None and uncovered)):
            if ahead is not None:
                # The scan re-reads the first input (for a file object: seeks the shared handle),
                # so the read-ahead cannot be resumed; the decode pass reads it afresh.
                ahead.gen.close()
                ahead = None
            scanned, scan_rows = self._scan(market)
            market = self._market_type or (market if market != MarketType.UNKNOWN.label else scanned)
            self._note_inferred(scan_rows)

        dec = self._new_decoder()
        used = self._refine(scan_rows, market)
        self._add_configured(dec, market, used)
        if self._defaults is None:
            for r in scan_rows:
                symbol = r["symbol"]
                if symbol in used or not r["seen"]:
                    continue
                price, size = self._inferred[symbol]
                if price is None or size is None:
                    what = "price" if price is None else "size"
                    raise LockstepError(f"cannot infer the {what} increment of {symbol}: the data "
                                        f"has no non-zero {what}; give it explicitly")
                dec.add_catalog(symbol, price, size, IncrementSource.INFERRED)
        return dec, ahead

    def _run(self) -> Iterator[NormalizedChunk]:
        try:
            yield from self._decode()
            return
        except _OffIncrement as e:
            if self._handed_out:
                raise DecodeRestart(f"{e}; the {self._handed_out} chunks handed out so far are void: "
                                    "decode again with the first pass (restarted())", self.restarted) from None
        # Nothing was handed out: this run starts over, with the first pass (the abandoned
        # decode's readers are closed by now, outside the handler that held its frame).
        self._inputs, self._lines, self._bytes_read, self._refinements = [], [], 0, []
        self._inferred, self._scanned = {}, False
        self._infer, self._dec = True, None
        yield from self._decode()

    def restarted(self) -> BinanceDecodeRun:
        """A new run over the same inputs and settings that always runs the first pass."""
        return BinanceDecodeRun(
            self._sources, instruments=self._explicit, defaults=self._defaults, batch_size=self._batch_size,
            infer=True, snapshot_symbol=self._snapshot_symbol, market_type=self._market_type,
            max_held_records=self._max_held_records)

    def _check_optimism(self, dec: _binance.BinanceDecoder, status: int = Status.OK) -> None:
        """Decoding without the first pass holds only while every value lies on its configured
        increment and every symbol has one."""
        if not self._optimistic:
            return
        if dec.values_off_increment():
            raise _OffIncrement("a value is finer than its configured increment")
        if status == Status.UNKNOWN_INSTRUMENT:
            raise _OffIncrement("a symbol has no configured increments")

    def _hand_out(self, dec: _binance.BinanceDecoder, decoded_all: bool = False) -> None:
        """Before a chunk is yielded. A consumer that cannot restart gets its first chunk only
        once every value of the inputs was found on its configured increment: by the decode
        itself when it has read them all (`decoded_all`), else by the first pass, run now."""
        self._check_optimism(dec)
        if self._optimistic and not self._handed_out and not self._restart_allowed and not decoded_all:
            _, rows = self._scan(self._market_used)
            self._refine(rows, self._market_used)
            if self._refinements or any(r["seen"] and not r["has_increments"] for r in rows):
                raise _OffIncrement("the first pass found what the configured increments miss")
            self._note_inferred(rows)
            self._optimistic = False
        self._handed_out += 1

    def _note_inferred(self, rows: list[dict[str, Any]]) -> None:
        self._scanned = True
        for r in rows:
            self._inferred[r["symbol"]] = (
                decimal_text(*r["price_inferred"]) if r["price_inferred"] else None,
                decimal_text(*r["size_inferred"]) if r["size_inferred"] else None,
            )

    def _decode(self) -> Iterator[NormalizedChunk]:
        dec, ahead = self._configure()
        self._dec = dec
        store = _Buffers(self._batch_size)
        bufs = store.bufs
        ev = rec = 0
        first = 0
        reasons: dict[int, str] = {}

        def chunk() -> NormalizedChunk:
            nonlocal first, ev, rec
            for record, rule, path, line, offset, text in dec.new_reasons():
                reasons[record] = f"{path}, line {line}, offset {offset}: {text}"
            end = first + rec
            mine = {r: t for r, t in reasons.items() if r < end}
            for r in mine:
                del reasons[r]
            c = NormalizedChunk(
                events=_batch_views(bufs, ev), n_events=ev,
                event_record=bufs["event_record"][:ev], first_record=first, n_records=rec,
                rec_file=bufs["rec_file"][:rec], rec_line=bufs["rec_line"][:rec],
                rec_offset=bufs["rec_offset"][:rec], rec_length=bufs["rec_length"][:rec],
                rec_problem=bufs["rec_problem"][:rec], problem_reasons=mine)
            first = end
            ev = rec = 0
            return c

        def full() -> dict[str, np.ndarray]:
            # OutputFull with no record in the chunk: its next record needs more event room.
            return store.grow(dec.needed_events) if rec == 0 else store.next()

        def drain(step) -> Iterator[NormalizedChunk]:
            """Calls one decoder step until it is done, handing out each chunk it fills."""
            nonlocal bufs, ev, rec
            while True:
                ev, rec, status = step(bufs, ev, rec)
                if status == Status.OK:
                    return
                if status != Status.OUTPUT_FULL:
                    self._check_optimism(dec, status)
                    raise dec.exception(status)
                if rec:
                    self._hand_out(dec)
                    yield chunk()
                    bufs = store.next()
                else:
                    bufs = full()

        try:
            for i, src in enumerate(self._sources):
                dec.begin_file(i, src.name)
                chunks = ahead.replay() if (i == 0 and ahead is not None) else src.chunks()
                file_bytes = 0
                try:
                    for text in chunks:
                        file_bytes += len(text)
                        self._bytes_read += len(text)
                        view = memoryview(text)
                        pos = 0

                        def feed(b, e, r, view=view):
                            nonlocal pos
                            consumed, e, r, status = dec.feed(view[pos:], b, e, r)
                            pos += consumed
                            return e, r, status

                        yield from drain(feed)
                except _InputError as e:
                    # Everything complete before the damage was decoded; the partial line is not.
                    raise DecodeError(e.reason, path=src.name, line=dec.lines_in_file + 1,
                                      offset=e.offset) from None
                yield from drain(dec.finish if src.cut is None else dec.finish_cut)
                self._inputs.append(InputFile(path=src.name, bytes_read=file_bytes,
                                             records=dec.records_in_file))
                self._lines.append(dec.lines_in_file)
            yield from drain(dec.end_stream)
            if rec:
                self._hand_out(dec, decoded_all=True)
                yield chunk()
            self._check_optimism(dec)
            self._complete = True
        except DecodeError:
            self._check_optimism(dec)
            self._collect(dec)
            if rec:  # records settled before the error still reach the consumer
                self._hand_out(dec, decoded_all=True)
                yield chunk()
            raise
        self._collect(dec)

    @staticmethod
    def _table(dec: _binance.BinanceDecoder) -> list[dict[str, Any]]:
        rows = [r for r in dec.symbols() if r["indexed"]]
        rows.sort(key=lambda r: r["index"])
        market = dec.market_type
        for r in rows:
            r["venue"] = _VENUE.get(market, "binance")
            r["order_rules"] = _builtin_order_rules().get((market, r["symbol"]), {})
        return rows

    @staticmethod
    def _instrument(r: dict[str, Any]) -> Instrument:
        """A table row: the data increments the decode used, and the venue's order-entry rules
        the built-in table knows for the symbol on its market (whatever gave the increments)."""
        return Instrument(symbol=r["symbol"], venue=r["venue"],
                          price_increment=decimal_text(*r["price_increment"]),
                          size_increment=decimal_text(*r["size_increment"]), book="l2", **r["order_rules"])

    def _collect(self, dec: _binance.BinanceDecoder) -> None:
        c = dec.counts()
        ev = c["events"]
        events = {key: ev.get(int(kind), 0) for kind, key in _EVENT_KEYS.items()}
        events["total"] = sum(ev.values())
        files = [{"path": f.path, "lines": n, "records": f.records, "bytes": f.bytes_read}
                 for f, n in zip(self._inputs, self._lines)]
        counts = {
            "lines": c["lines"],
            "bytes": c["bytes"],
            "records": c["records"],
            "files": files,
            "messages": c["messages"],
            "events": events,
            "depth_buffered": c["depth_buffered"],
            "depth_replayed": c["depth_replayed"],
            "skipped": c["skipped"],
            "problems": {Rule(i).label: log for i, log in enumerate(c["problems"]) if log["count"]},
            "sequence_gaps": c["sequence_gaps"],
            "ts_recv_raised": c["ts_recv_raised"],
            "increments_refined": self._refinements,
        }
        rows = self._table(dec)
        if [r["index"] for r in rows] != list(range(len(rows))):  # guarded by decode_binance
            raise LockstepError(f"instrument indexes are not contiguous: {[r['index'] for r in rows]}")
        info = []
        for r in rows:
            inferred = self._inferred.get(r["symbol"], (None, None))
            info.append({
                "index": r["index"],
                "symbol": r["symbol"],
                "venue": r["venue"],
                "price_increment": decimal_text(*r["price_increment"]),
                "size_increment": decimal_text(*r["size_increment"]),
                "increment_source": r["source"],
                "inferred_price_increment": inferred[0],
                "inferred_size_increment": inferred[1],
            })
        self._instruments = [self._instrument(r) for r in rows]
        self._instrument_info = info
        self._market_found = dec.market_type
        self._finish(counts)


def load_instruments_file(path: str | os.PathLike[str]) -> dict[str, tuple[str, str]]:
    """A JSON list of {symbol, price_increment, size_increment[, venue]}: symbol -> increments."""
    try:
        rows = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read instruments: {e}") from None
    if not isinstance(rows, list):
        raise ValueError(f"{path}: expected a JSON list of instruments")
    out = {}
    for i, row in enumerate(rows):
        missing = {"symbol", "price_increment", "size_increment"} - set(row)
        if missing:
            raise ValueError(f"{path}: instrument {i} lacks {sorted(missing)}")
        out[str(row["symbol"])] = (str(row["price_increment"]), str(row["size_increment"]))
    return out


def decode_binance(
    paths: Source | Iterable[Source],
    *,
    instruments: Mapping[str, Any] | Iterable[Mapping[str, Any]] | None = None,
    price_increment: IncrementLike | None = None,
    size_increment: IncrementLike | None = None,
    batch_size: int = 1 << 20,
    infer: bool | None = None,
    snapshot_symbol: str | None = None,
    market_type: str | None = None,
    max_held_records: int | None = None,
) -> BinanceDecodeRun:
    """Decode Binance websocket captures (one stream, files in order) into NormalizedChunks.

    paths: a path / binary file object, or an iterable of them (plain text, or gzip, zstd or a
        one-member zip of it).
    instruments: explicit increments per symbol: ``{"BTCUSDT": ("0.1", "0.001")}``, or dicts
        with price_increment, size_increment and optionally index (otherwise indexes follow the
        given order; given indexes must leave no hole, as the index is the position in the
        instrument table); symbols met in the data but not given get the next indexes.
    price_increment, size_increment: together, the increments of every symbol not in
        ``instruments`` (exact decimals: str, Decimal or int; never float).
    batch_size: most events, and most records, per chunk (a single record with more events gets
        a chunk of its own, as large as it needs).
    infer: None = scan the data (to infer unknown symbols' increments and check the given ones
        against every value, refining one coarser than the data) when the inputs can be read
        twice, first when a symbol is not covered, else only once a value off a given increment
        turns up (see the module docstring: DecodeRestart); True = always, first; False = never
        (given increments are trusted: a value off them is malformed).
    snapshot_symbol: the symbol of bare REST snapshot lines; by default the one symbol seen
        before the snapshot (an error if none or several).
    market_type: 'spot', 'usdm' or 'coinm' when known (otherwise told from the data); it picks
        the built-in increments and the venue name, and depth diffs of the other family are fatal.
    max_held_records: bound on records held back behind a diff waiting for its snapshot
        (default 65536).

    Returns a BinanceDecodeRun. Iterating raises DecodeError (lockstep.errors) only for fatal
    problems (configuration, corrupt compressed input), naming file, line and offset; bad lines become
    records marked with their Rule.
    """
    if isinstance(paths, (str, os.PathLike)) or hasattr(paths, "read"):
        sources = [paths]
    else:
        sources = list(paths)  # type: ignore[arg-type]
    inputs = [_Input(s, i) for i, s in enumerate(sources)]
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if (price_increment is None) != (size_increment is None):
        raise ValueError("price_increment and size_increment go together: give both or neither")
    defaults = None
    if price_increment is not None:
        defaults = (_increment_text(price_increment, "price_increment"),
                    _increment_text(size_increment, "size_increment"))  # type: ignore[arg-type]
    if infer is not None and not isinstance(infer, bool):
        raise TypeError("infer must be None, True or False")
    if snapshot_symbol is not None:
        snapshot_symbol = str(snapshot_symbol).strip().upper()
    if market_type is not None:
        market_type = str(market_type).strip().lower()
        if market_type not in _VENUE:
            raise ValueError(f"market_type must be one of {', '.join(_VENUE)}; got {market_type!r}")
    if max_held_records is not None and (isinstance(max_held_records, bool)
                                         or not isinstance(max_held_records, int)
                                         or max_held_records < 1):
        raise ValueError(f"max_held_records must be a positive int, got {max_held_records!r}")
    explicit = _normalise_instruments(instruments) if instruments is not None else []
    if sorted(i for _, i, _, _ in explicit) != list(range(len(explicit))):
        raise ValueError("instruments: indexes must be 0..n-1 without holes (an index is the "
                         "instrument's position in the table events refer to)")
    return BinanceDecodeRun(
        inputs,
        instruments=explicit,
        defaults=defaults,
        batch_size=batch_size,
        infer=infer,
        snapshot_symbol=snapshot_symbol,
        market_type=market_type,
        max_held_records=max_held_records,
    )


__all__ = ["BinanceDecodeRun", "builtin_instruments", "decode_binance"]
