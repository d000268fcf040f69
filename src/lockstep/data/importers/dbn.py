"""Databento DBN files -> NormalizedChunks (lockstep.data.importers.normalized).

Inputs are DBN streams (DBN v1, v2 or v3; plain or zstd), several files given in order being one
stream. Each file starts with its own metadata (read with ``databento_dbn.Metadata``), which gives
the dataset, the schema, ``ts_out`` and the symbology mappings. Every DBN record after the metadata
is one record of the run; its ``rec_offset`` is its byte offset in the file's uncompressed content
(metadata included) and ``rec_length`` its size (the header's length field, in 4-byte words). The
records are framed here, by that length field: MBO, MBP and trade records are read with ``struct``
(their layouts are the same in every DBN version); definition and symbol-mapping records, whose
layouts change between versions, are decoded by ``databento_dbn``.

Mapping (prices are DBN fixed point, 1e-9 units, converted exactly to the instrument's ticks; a
price that is not an exact multiple of a definition's increment, one that overflows int64 in ticks,
or UNDEF_PRICE where a price is needed, makes the record MALFORMED_RECORD):

- MBO (L3 book):
  ``A`` add -> L3_ADD. ``C`` cancel removes ``size`` from the order (Databento cancels are partial
  or full): L3_MODIFY to the remaining quantity at the order's price, or L3_DELETE when nothing
  remains (a cancel of an order we do not know is an L3_DELETE; the validator judges it).
  ``M`` modify -> L3_MODIFY (new price and size). ``R`` clear -> BOOK_CLEAR.
  Trades and fills do not change the book (Databento's MBO rules): the ``C`` or ``M`` that
  follows a fill, often in a later packet of the same venue event, is what changes it, so an order
  stays resting, at its size, until then. ``T`` trade -> TRADE (side = the aggressor as DBN gives
  it, ``N`` -> 0; order_id 0). ``F`` fill -> TRADE with order_id = the filled resting order, its
  price and size, side = the aggressor: opposite of the resting order's side as its add gave it
  (0 when the order is unknown, counted in ``fills_of_unknown_orders``). Where a venue publishes
  both, one trade is a ``T`` print (order_id 0) and one TRADE per order it filled (order_id set):
  count volume from one kind or the other.
  ``N`` -> a record with no events. An unknown action is MALFORMED_RECORD.
- MBP-10 / MBP-1 (L2 book, top-N view): each record is the top N after the update. For each
  record the L2_SETs of the levels (each side) whose (price, size) differ from the previous view of
  the instrument, and L2_SET qty 0 for prices that left the view (so our book is exactly the view).
  The first MBP record of an instrument, and any ``R`` record, is a snapshot: BOOK_CLEAR + its levels,
  flagged SNAPSHOT. Levels with UNDEF_PRICE or size 0 are empty. A ``T`` record also gives a TRADE
  (before the levels). For the ``tbbo`` schema (trades with the BBO *before* them) only the TRADE.
- trades (MBP-0) -> TRADE.
- definition -> the instrument table (no events). The symbol is ``raw_symbol``; the venue the
  ``venue`` argument, else the file's dataset code (e.g. ``GLBX.MDP3``); ``price_increment`` is
  ``min_price_increment`` converted exactly from 1e-9 units to a decimal string (a definition with
  an undefined or non-positive increment does not give one); ``size_increment`` is "1" (DBN sizes are
  integer contracts/shares; ``min_lot_size_round_lot`` is not used: odd lots trade below it) unless
  ``size_increment=`` says otherwise. Definitions may come from separate files (``definitions=``,
  read first, not part of the run's records) or from the stream itself.
- status (DBN v2/v3) -> TRADING_PHASE of its instrument (order_id 0: the instrument's own phase,
  side = lockstep.enums.TradingPhase): action pre-open and quoting -> pre_open; pre-cross, cross,
  rotation, new price indication and pre-close -> auction; trading -> continuous; halt, pause and
  suspend -> halted; close, post-close and not available for trading -> closed. Any other action
  (none, a short-sell restriction change) leaves it to ``is_trading``: ``Y`` continuous, ``N``
  pre_open when ``is_quoting`` is ``Y`` else halted, ``~`` no event (as for a DBN v1 status record,
  whose layout is not read; both counted in ``status_records_without_phase``). A status record has
  no F_LAST: its event is a message of its own, or joins the instrument's open one. Definition
  records carry no trading status (DBN v2/v3) and give no phase.
- symbol mapping, system and error records: ordinary records with no events. Other record
  types DBN defines (statistics, imbalance, OHLCV, BBO, ...) are UNSUPPORTED_MESSAGE.

Instruments are table rows keyed by (venue, symbol): DBN instrument ids that share a raw symbol
(equity ids change daily) share a row. Without a definition the symbol comes from the metadata's
symbology mappings (or an in-stream symbol-mapping record), else ``ID<instrument_id>``; the price
increment is ``price_increment=`` if given, else 0.000000001 (DBN's fixed-point unit; source
``dbn_fixed_point`` in ``counts["instruments"]``). When ``price_increment=`` or ``size_increment=``
is given, a first pass over the records (after the metadata pre-scan) takes the integer GCD of
every price (1e-9 units) and size per instrument: an option coarser than an instrument's data is
refined to the GCD of it and the data's, and reported in ``counts["increments_refined"]`` (the
shape of importers/increments.refinement, with the first value off the option, its file and byte
offset), so no record is lost to an option. A definition's increment is the venue's and is not
refined. An instrument's increment is fixed by its first
use: a definition arriving later with another increment is counted (``late_definitions``) and
ignored. A row's book is ``l3`` when it is created by an MBO record, ``l2`` by an MBP or trade
record, and for a row created by a definition ``l3`` when any input's schema is ``mbo``.

Flags: DBN F_SNAPSHOT -> SNAPSHOT; F_BAD_TS_RECV -> BAD_TS_RECV (ts_recv is not changed; DBN sets
it when ts_recv is not a true receive time, e.g. on every snapshot record, so the validator's
ts_recv_backwards warning counts such records). A run of
F_SNAPSHOT MBO records for an instrument that does not start with ``R`` gets a BOOK_CLEAR (SNAPSHOT)
first, so every snapshot starts with a clear. LAST: Databento sets F_LAST on the last record *of an
instrument* in a venue event, and an event may span several packets (several ts_recv), so messages
are per instrument and end where the venue's event ends: at a record with F_LAST, whose
instrument's last event then carries LAST (even when the F_LAST record itself has no events), or at
the end of the stream. Events between are never observable half-applied, whatever their ts_recv.
Two fallbacks, counted in ``messages_ended_without_f_last``: a record of the instrument with
another ts_event starts a new event (the records of one venue event share its ts_event; a stream
without F_LAST), and events still open when the chunk being built holds twice its size are ended
there (no real venue event is that long), so memory stays bounded.

``ts_event``/``ts_recv`` are DBN's (ns); ``seq`` is DBN's ``sequence``. Databento's sequence is the
venue channel's, shared by all the channel's instruments, so forward jumps in a filtered file are
not losses: no GAP is ever emitted. Duplicate check (MBO only, records that are not snapshot records
and have a non-zero sequence): a record whose sequence is lower than the previous record's of its
instrument, or equal to it with a different ts_recv (records of one venue packet share a sequence
and a ts_recv), is DUPLICATE_MESSAGE (no events); an ``R`` record or a snapshot resets the check.
This cannot see a loss, nor a duplicate whose sequence is higher than what came before.

Errors: input that is not DBN (no magic, metadata databento_dbn cannot decode, a truncated metadata
block, bad compression), a record whose length field is below the header size, an rtype DBN does
not define, or a record whose size does not match its type's are DecodeError naming the file and
the offset (the framing cannot be trusted past that point; records before it are still yielded).
Bytes at the end of a file that do not make a whole record are one TRUNCATED_RECORD record; a
compressed file that is cut ends at the cut the same way (an empty record when it falls between records).
Files are streamed in 1 MiB pieces; decoding is per record in Python (a few hundred thousand records
per second).
"""
from __future__ import annotations

import math
import os
import struct
from collections.abc import Iterable, Iterator
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any, Union

import databento_dbn as db

from lockstep.data.dataset import Instrument
from lockstep.data.importers.decode_run import DecodeRunBase
from lockstep.data.importers.increments import (
    decimal_text,
    parse_decimal,
    refined,
    refinement,
)
from lockstep.data.importers.normalized import (
    ASK,
    BAD_TS_RECV,
    BID,
    BOOK_CLEAR,
    L2_SET,
    L3_ADD,
    L3_DELETE,
    L3_EXECUTE,
    L3_MODIFY,
    LAST,
    SNAPSHOT,
    TRADE,
    TRADING_PHASE,
    ChunkBuilder,
    InputFile,
    NormalizedChunk,
    Rule,
    StreamCut,
    open_decompressed,
)
from lockstep.enums import TradingPhase
from lockstep.errors import DecodeError

PathLike = Union[str, "os.PathLike[str]"]
IncrementLike = Union[str, Decimal, int]  # noqa: UP007

# DBN constants (databento_dbn exposes the same values; kept literal so framing needs no import)
UNDEF_PRICE = (1 << 63) - 1
F_LAST = 0x80
F_SNAPSHOT = 0x20
F_BAD_TS_RECV = 0x08
_INT64_MAX = (1 << 63) - 1

RT_MBP0, RT_MBP1, RT_MBP10, RT_STATUS, RT_DEF, RT_ERROR, RT_SYMMAP, RT_SYSTEM, RT_MBO = (
    0x00, 0x01, 0x0A, 0x12, 0x13, 0x15, 0x16, 0x17, 0xA0)
_HEADER_SIZE = 16
_SIZES = {RT_MBO: 56, RT_MBP10: 368, RT_MBP1: 80, RT_MBP0: 48}
_DEF_SIZES = {1: 360, 2: 400, 3: 520}
_INFO_RTYPES = {RT_ERROR, RT_SYMMAP, RT_SYSTEM}  # understood, no canonical form
_RTYPE_NAMES = {0x00: "mbp-0", 0x01: "mbp-1", 0x0A: "mbp-10", 0x11: "ohlcv-deprecated",
                0x20: "ohlcv-1s", 0x21: "ohlcv-1m", 0x22: "ohlcv-1h", 0x23: "ohlcv-1d",
                0x24: "ohlcv-eod", 0x12: "status", 0x13: "definition", 0x14: "imbalance",
                0x15: "error", 0x16: "symbol-mapping", 0x17: "system", 0x18: "statistics",
                0xA0: "mbo", 0xB1: "cmbp-1", 0xC0: "cbbo-1s", 0xC1: "cbbo-1m", 0xC2: "tcbbo",
                0xC3: "bbo-1s", 0xC4: "bbo-1m", 0xC5: "tbbo"}

_MBO = struct.Struct("<BBHIQQqIBBccQiI")  # header + order_id price size flags channel action side ts_recv delta seq
_MBP = struct.Struct("<BBHIQqIccBBQiI")  # header + price size action side flags depth ts_recv delta seq
_LEVEL = struct.Struct("<qqIIII")  # bid_px ask_px bid_sz ask_sz bid_ct ask_ct
# header + ts_recv action reason trading_event is_trading is_quoting is_short_sell_restricted (DBN v2, v3)
_STATUS = struct.Struct("<BBHIQQHHHccc7x")
assert _MBO.size == 56 and _MBP.size == 48 and _LEVEL.size == 32 and _STATUS.size == 40

# DBN StatusAction -> the phase it puts the instrument in (docs/data.md). Absent: the action does
# not say (none, a short-sell restriction change, a code DBN may add), is_trading decides.
_STATUS_PHASE = {
    1: TradingPhase.PRE_OPEN,    # pre-open: orders accepted, no matching
    2: TradingPhase.AUCTION,     # pre-cross
    3: TradingPhase.PRE_OPEN,    # quoting: quotes, no trades
    4: TradingPhase.AUCTION,     # cross
    5: TradingPhase.AUCTION,     # rotation (an options opening)
    6: TradingPhase.AUCTION,     # new price indication (a reopening being called)
    7: TradingPhase.CONTINUOUS,  # trading
    8: TradingPhase.HALTED,      # halt
    9: TradingPhase.HALTED,      # pause
    10: TradingPhase.HALTED,     # suspend
    11: TradingPhase.AUCTION,    # pre-close: the closing cross is being called
    12: TradingPhase.CLOSED,     # close
    13: TradingPhase.CLOSED,     # post-close
    15: TradingPhase.CLOSED,     # not available for trading
}

_KIND_NAMES = {L2_SET: "l2_set", L3_ADD: "l3_add", L3_MODIFY: "l3_modify", L3_DELETE: "l3_delete",
               L3_EXECUTE: "l3_execute", BOOK_CLEAR: "book_clear", TRADE: "trade",
               TRADING_PHASE: "trading_phase"}
_AGGRESSOR = {BID: ASK, ASK: BID}  # a fill's aggressor is on the other side of the resting order
_SIDES = {b"B": BID, b"A": ASK, b"N": 0}
_READ = 1 << 20
_REASONS_PER_RULE = 50  # reasons kept per rule: enough to diagnose, bounded on garbage input
_FIXED_POINT = Fraction(1, 10**9)


class _Bad(Exception):
    """A record that cannot be used (the reason is the text); it becomes MALFORMED_RECORD."""


def _increment_fraction(value: IncrementLike, what: str) -> tuple[str, Fraction]:
    if isinstance(value, (bool, float)):
        raise TypeError(f"{what} must be a decimal string, Decimal or int (floats are not exact)")
    try:
        d = Decimal(value.strip() if isinstance(value, str) else value)
    except (InvalidOperation, TypeError, ValueError):
        raise ValueError(f"{what}: {value!r} is not a decimal number") from None
    if not d.is_finite() or d <= 0:
        raise ValueError(f"{what} must be a positive decimal, got {value!r}")
    return _decimal_text(d), Fraction(d)


def _decimal_text(d: Decimal) -> str:
    return format(d.normalize(), "f")


def _as_paths(paths: PathLike | Iterable[PathLike] | None) -> list[str]:
    if paths is None:
        return []
    if isinstance(paths, (str, os.PathLike)):
        return [os.fspath(paths)]
    out = [os.fspath(p) for p in paths]
    return out


class _Row:
    __slots__ = ("book", "ids", "index", "p", "price_text", "q", "refinements", "settled", "size_text",
                 "source", "sp", "sq", "symbol", "used", "venue")

    def __init__(self, index: int, symbol: str, venue: str, price_text: str, ratio: Fraction, book: str,
                 source: str, size: tuple[str, Fraction]) -> None:
        self.index = index
        self.symbol = symbol
        self.venue = venue
        self.refinements: dict[str, dict[str, Any]] = {}  # "price"/"size" -> its refinement()
        self.set_price(price_text, ratio, source)
        self.set_size(*size)
        self.book = book
        self.ids: list[int] = []
        self.settled = False  # option increments were checked against the data (the first pass)
        self.used = False  # an event was converted with its increment: it can no longer change

    def set_price(self, text: str, ratio: Fraction, source: str) -> None:
        # ticks = raw * q / p, exactly: the increment is p/q DBN units of 1e-9
        self.price_text, self.p, self.q, self.source = text, ratio.numerator, ratio.denominator, source
        self.refinements.pop("price", None)  # a refinement of the option it replaces

    def set_size(self, text: str, ratio: Fraction) -> None:
        # qty = size * sq / sp, exactly
        self.size_text, self.sp, self.sq = text, ratio.numerator, ratio.denominator


class _Seen:
    """What the first pass saw of one instrument's values: the integer GCD of its prices (1e-9
    units) and sizes (0: none yet), and the first of each off the option's increment as (file
    index, file, offset, value text)."""

    __slots__ = ("first_price", "first_size", "price_gcd", "size_gcd", "symbol")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol  # as the file's metadata names the instrument
        self.price_gcd = self.size_gcd = 0
        self.first_price: tuple[int, str, int, str] | None = None
        self.first_size: tuple[int, str, int, str] | None = None


class _Meta:
    __slots__ = ("dataset", "header_len", "schema", "symbols", "ts_out", "version")

    def __init__(self, version: int, dataset: str, schema: str | None, ts_out: bool,
                 symbols: dict[int, str], header_len: int) -> None:
        self.version, self.dataset, self.schema, self.ts_out = version, dataset, schema, ts_out
        self.symbols, self.header_len = symbols, header_len


def _read_chunks(path: str, cuts: list[StreamCut] | None = None) -> Iterator[tuple[int, bytes]]:
    """(uncompressed offset, bytes) pieces of `path`; DecodeError when decompression fails. A
    compressed stream that is cut ends where it is cut, and its StreamCut goes to `cuts`."""
    produced = 0
    try:
        f = open_decompressed(path)
    except OSError as e:
        raise DecodeError(f"cannot open: {e}", path=path, offset=0) from None
    try:
        while True:
            try:
                piece = f.read(_READ)
            except Exception as e:  # noqa: BLE001 - zstd/gzip/zip layers raise their own types
                raise DecodeError(f"corrupt compressed data ({e})", path=path, offset=produced) from None
            if not piece:
                if f.cut is not None and cuts is not None:
                    cuts.append(f.cut)
                return
            yield produced, bytes(piece)
            produced += len(piece)
    finally:
        try:
            f.close()
        except Exception:  # noqa: BLE001, S110 - closing a stream that already failed
            pass


def _values(meta: _Meta, buf: bytearray, pos: int, length: int) -> Iterator[tuple[int, int, int]]:
    """(instrument_id, price, size) of every price and size of a data record (MBO, MBP, trades)
    whose length is its type's; a price may be UNDEF_PRICE, a level's is read only when it has a
    size, as the decode reads it."""
    rtype = buf[pos + 1]
    expected = _SIZES.get(rtype)
    if expected is None or length != expected + (8 if meta.ts_out else 0):
        return
    if rtype == RT_MBO:
        fields = _MBO.unpack_from(buf, pos)
        yield fields[3], fields[6], fields[7]
        return
    fields = _MBP.unpack_from(buf, pos)
    iid = fields[3]
    yield iid, fields[5], fields[6]
    at = pos + _MBP.size
    for _ in range({RT_MBP10: 10, RT_MBP1: 1}.get(rtype, 0)):
        bpx, apx, bsz, asz, _, _ = _LEVEL.unpack_from(buf, at)
        at += _LEVEL.size
        if bsz:
            yield iid, bpx, bsz
        if asz:
            yield iid, apx, asz


def _parse_metadata(path: str, buf: bytes | bytearray, final: bool) -> _Meta | None:
    """The file's metadata once `buf` holds all of it (None: need more bytes)."""
    if len(buf) >= 3 and bytes(buf[:3]) != b"DBN":
        raise DecodeError("not a DBN stream (the file does not start with the DBN magic)", path=path, offset=0)
    if len(buf) < 8:
        if final:
            raise DecodeError(f"truncated DBN metadata: the file has {len(buf)} bytes", path=path, offset=0)
        return None
    version = buf[3]
    length = int.from_bytes(buf[4:8], "little")
    if version not in _DEF_SIZES:
        raise DecodeError(f"unsupported DBN version {version}", path=path, offset=3)
    if len(buf) < 8 + length:
        if final:
            raise DecodeError(f"truncated DBN metadata: it declares {length} bytes, the file has "
                              f"{len(buf) - 8} after the header", path=path, offset=8)
        return None
    try:
        meta = db.Metadata.decode(bytes(buf[: 8 + length]),
                                  upgrade_policy=db.VersionUpgradePolicy.AS_IS)
        symbols: dict[int, str] = {}
        for symbol, intervals in (meta.mappings or {}).items():
            for interval in intervals:
                text = str(interval.get("symbol", ""))
                if text.isdigit():
                    symbols.setdefault(int(text), str(symbol))
        schema = meta.schema
        result = _Meta(version, str(meta.dataset), None if schema is None else str(schema),
                       bool(meta.ts_out), symbols, 8 + length)
    except Exception as e:  # noqa: BLE001 - DBNError, or a value the bindings refuse
        raise DecodeError(f"DBN metadata cannot be decoded ({e})", path=path, offset=0) from None
    return result


class DbnDecodeRun(DecodeRunBase):
    """One decode of DBN files (one stream). Iterate once for NormalizedChunks; then `inputs`
    and `counts` are known (`instruments` is the table so far at any time)."""

    format = "dbn"
    requires_snapshot = False

    def __init__(self, paths: list[str], *, venue: str | None, definitions: list[str],
                 price_increment: tuple[str, Fraction] | None, size_increment: tuple[str, Fraction] | None,
                 chunk_size: int) -> None:
        super().__init__()
        self._paths = paths
        self._venue = venue
        self._definition_paths = definitions
        self._price_option = price_increment
        self._size_option = size_increment
        # (dataset, instrument_id) -> what the first pass saw of its values (_scan_values)
        self._data: dict[tuple[str, int], _Seen] = {}
        self._cb = ChunkBuilder(capacity=chunk_size, reasons_per_rule=_REASONS_PER_RULE)  # cut between messages
        self._overfull = 2 * chunk_size
        self._rows: list[_Row] = []
        self._by_symbol: dict[tuple[str, str], int] = {}
        self._by_id: dict[tuple[str, int], int] = {}
        self._default_book = "l2"
        self._cut: StreamCut | None = None  # how the file being read ends, if it is cut
        c: dict[str, Any] = {
            "records": 0, "bytes": 0, "files": [], "definition_files": [], "records_by_type": {},
            "mbo_actions": {}, "events": {}, "problems": self._cb.problems, "snapshot_clears_inserted": 0,
            "unknown_order_refs": 0, "fills_of_unknown_orders": 0, "messages_ended_without_f_last": 0,
            "status_records_without_phase": 0,
            "last_added": 0, "definitions": 0, "definitions_without_increment": 0,
            "late_definitions": 0, "book_kind_conflicts": 0,
        }
        self._c = c
        # per table row state
        self._orders: dict[int, dict[int, list[int]]] = {}  # row -> order_id -> [ticks, qty, side]
        self._in_snapshot: dict[int, bool] = {}
        self._seq: dict[int, tuple[int, int]] = {}  # row -> (sequence, ts_recv)
        self._views: dict[int, tuple[dict[int, int], dict[int, int]]] = {}  # row -> (bids, asks)
        self._open: dict[int, int] = {}  # row -> position (in the chunk) of its open message's last event
        self._open_ts_event: dict[int, int] = {}  # row -> ts_event of its open message
        self._bytes_in_file = 0

    # ---- report ----

    @property
    def instruments(self) -> list[Instrument]:
        """The table so far, at any time."""
        return [Instrument(r.symbol, r.venue, r.price_text, r.size_text, r.book) for r in self._rows]

    # ---- chunk building ----

    def _record(self, file: int, offset: int, length: int, problem: Rule = Rule.OK,
                reason: str | None = None) -> int:
        self._c["records"] += 1
        return self._cb.record(file, 0, offset, length, problem, reason)

    def _close(self, row: int) -> None:
        pos = self._open.pop(row, None)
        self._open_ts_event.pop(row, None)
        if pos is not None:
            self._cb.add_flags(pos, LAST)

    def _close_all(self) -> None:
        for row in list(self._open):
            self._close(row)

    # ---- instruments ----

    def _fallback_price(self) -> tuple[str, Fraction, str]:
        if self._price_option is not None:
            text, ratio = self._price_option
            return text, ratio / _FIXED_POINT, "option"
        return "0.000000001", Fraction(1), "dbn_fixed_point"

    def _row_for_symbol(self, symbol: str, venue: str, book: str, price: tuple[str, Fraction, str] | None) -> int:
        key = (venue, symbol)
        index = self._by_symbol.get(key)
        if index is None:
            text, ratio, source = price if price is not None else self._fallback_price()
            index = len(self._rows)
            size = self._size_option or ("1", Fraction(1))
            self._rows.append(_Row(index, symbol, venue, text, ratio, book, source, size))
            self._by_symbol[key] = index
        return index

    def _row(self, meta: _Meta, instrument_id: int, book: str | None, create_as: str = "l2") -> int:
        """The table row of a data record's instrument (book None: trades and status, any book will
        do; a row they create has the book `create_as`)."""
        key = (meta.dataset, instrument_id)
        index = self._by_id.get(key)
        if index is None:
            symbol = meta.symbols.get(instrument_id) or f"ID{instrument_id}"
            index = self._row_for_symbol(symbol, self._venue or meta.dataset, book or create_as, None)
            self._by_id[key] = index
            self._rows[index].ids.append(instrument_id)
        elif book is not None and self._rows[index].book != book:
            # The pipeline's validator fixes a row's book when it first sees the row, so it is
            # never changed here; the events then meet the other book (wrong_book_kind).
            self._c["book_kind_conflicts"] += 1
        return index

    def _definition(self, meta: _Meta, fields: tuple[int, str, int]) -> None:
        self._c["definitions"] += 1
        instrument_id, symbol, m = fields
        symbol = symbol or f"ID{instrument_id}"
        price = None
        if 0 < m < UNDEF_PRICE:
            price = (_decimal_text(Decimal(m).scaleb(-9)), Fraction(m), "definition")
        else:
            self._c["definitions_without_increment"] += 1
        venue = self._venue or meta.dataset
        key = (meta.dataset, instrument_id)
        known = self._by_id.get(key)
        if known is None:
            known = self._by_symbol.get((venue, symbol))
        if known is None:
            index = self._row_for_symbol(symbol, venue, self._default_book, price)
        else:
            index = known
            row = self._rows[index]
            if price is not None and (row.p, row.q) != (price[1].numerator, price[1].denominator):
                if row.used or row.source == "definition":
                    self._c["late_definitions"] += 1
                else:
                    row.set_price(*price)
        if key not in self._by_id:
            self._by_id[key] = index
            self._rows[index].ids.append(instrument_id)

    def _ticks(self, row: _Row, raw: int, what: str) -> int:
        if not row.settled:
            self._settle(row)
        if raw == UNDEF_PRICE:
            raise _Bad(f"{what} is undefined (UNDEF_PRICE)")
        num = raw * row.q
        ticks, rest = divmod(num, row.p)
        if rest:
            raise _Bad(f"{what} {Decimal(raw).scaleb(-9)} is not a multiple of the price increment "
                       f"{row.price_text} of {row.symbol}")
        if not -_INT64_MAX <= ticks <= _INT64_MAX:
            raise _Bad(f"{what} {raw} out of range in ticks of {row.price_text}")
        return ticks

    def _lots(self, row: _Row, size: int) -> int:
        if not row.settled:
            self._settle(row)
        if row.sp == 1 and row.sq == 1:
            return size
        lots, rest = divmod(size * row.sq, row.sp)
        if rest:
            raise _Bad(f"size {size} is not a multiple of the size increment {row.size_text} of {row.symbol}")
        return lots

    # ---- decoding ----

    def _settle(self, row: _Row) -> None:
        """Before the first conversion with a row's increments: an option coarser than the data
        of the row's instruments (as the first pass saw them) is refined to the GCD of it and the
        data's, and the refinement kept for the report, so no value is lost to the option."""
        row.settled = True
        if self._price_option is None and self._size_option is None:
            return
        seen = [d for key, d in self._data.items()
                if self._by_id.get(key) == row.index or (key not in self._by_id and d.symbol == row.symbol)]
        price_gcd = size_gcd = 0
        for d in seen:
            price_gcd, size_gcd = math.gcd(price_gcd, d.price_gcd), math.gcd(size_gcd, d.size_gcd)
        firsts = {"price": min((d.first_price for d in seen if d.first_price), default=None),
                  "size": min((d.first_size for d in seen if d.first_size), default=None)}
        for what, option, data in (("price", self._price_option if row.source == "option" else None,
                                    (price_gcd, -9)),
                                   ("size", self._size_option, (size_gcd, 0))):
            if option is None:
                continue
            given = parse_decimal(option[0])
            assert given is not None  # checked by decode_dbn
            used = refined(given, data if data[0] else None)
            if used == refined(given, None):
                continue
            text = decimal_text(*used)
            if what == "price":
                row.set_price(text, Fraction(text) / _FIXED_POINT, "option")
            else:
                row.set_size(text, Fraction(text))
            first = firsts[what]
            _, path, offset, value = first if first is not None else (None, None, None, None)
            row.refinements[what] = refinement(row.symbol, what, option[0], used, "option", value, path,
                                               None, offset)

    def _scan_values(self) -> None:
        """The first pass, when an option gives an increment: the integer GCD of every price
        (1e-9 units) and size per instrument, and the first value off the option. Records the
        decode will refuse are read as far as they can be; damage ends a file's pass (the decode
        reports it in place)."""
        price = None if self._price_option is None else self._price_option[1] / _FIXED_POINT
        pp, pq = (1, 1) if price is None else (price.numerator, price.denominator)
        sp, sq = (1, 1) if self._size_option is None else (
            self._size_option[1].numerator, self._size_option[1].denominator)
        for fi, path in enumerate(self._paths):
            try:
                for meta, buf, pos, offset, length in self._frames(path, report=False):
                    if length is None or length < 0:
                        continue
                    for iid, px, size in _values(meta, buf, pos, length):
                        key = (meta.dataset, iid)
                        d = self._data.get(key)
                        if d is None:
                            d = self._data[key] = _Seen(meta.symbols.get(iid) or f"ID{iid}")
                        if px != UNDEF_PRICE and px:
                            d.price_gcd = math.gcd(d.price_gcd, px)
                            if d.first_price is None and (px * pq) % pp:
                                d.first_price = (fi, path, offset, _decimal_text(Decimal(px).scaleb(-9)))
                        if size:
                            d.size_gcd = math.gcd(d.size_gcd, size)
                            if d.first_size is None and (size * sq) % sp:
                                d.first_size = (fi, path, offset, str(size))
            except DecodeError:
                continue

    def _run(self) -> Iterator[NormalizedChunk]:
        self._default_book = self._prescan()
        if self._price_option is not None or self._size_option is not None:
            self._scan_values()
        for path in self._definition_paths:
            self._read_definitions(path)
        try:
            for fi, path in enumerate(self._paths):
                yield from self._file(fi, path)
            self._close_all()
            yield from self._cb.take_rest()
        except DecodeError:
            self._close_all()
            yield from self._cb.take_rest()  # records complete before the damage still reach the consumer
            raise
        finally:
            self._finish_counts()
        self._finish(self._c)

    def _finish_counts(self) -> None:
        self._c["instruments"] = [
            {"index": i, "symbol": r.symbol, "venue": r.venue, "instrument_ids": list(r.ids),
             "price_increment": r.price_text, "size_increment": r.size_text, "increment_source": r.source,
             "book": r.book}
            for i, r in enumerate(self._rows)]
        self._c["increments_refined"] = [ref for r in self._rows for ref in r.refinements.values()]

    def _prescan(self) -> str:
        """'l3' when an input's metadata says mbo (the book of rows created by definitions)."""
        for path in self._paths:
            buf = b""
            meta = None
            for _, piece in _read_chunks(path):
                buf += piece
                meta = _parse_metadata(path, buf, False)
                if meta is not None:
                    break
            if meta is None:
                meta = _parse_metadata(path, buf, True)
            if meta is not None and meta.schema == "mbo":
                return "l3"
        return "l2"

    def _frames(self, path: str, report: bool = True) -> Iterator[tuple[_Meta, bytearray, int, int, int]]:
        """(metadata, buffer, position, file offset, length) of each whole record; at the end a
        torn tail as length < 0 (its real length is -length), or as None when a compressed stream
        is cut after a whole record (self._cut says why). `report`: the file goes into the counts."""
        buf = bytearray()
        base = 0  # file offset of buf[0]
        meta: _Meta | None = None
        pos = 0
        cuts: list[StreamCut] = []
        self._cut = None
        for _, piece in _read_chunks(path, cuts):
            if pos:
                del buf[:pos]
                base += pos
                pos = 0
            buf += piece
            self._bytes_in_file = base + len(buf)
            if meta is None:
                meta = _parse_metadata(path, buf, False)
                if meta is None:
                    continue
                pos = meta.header_len
                if report:
                    self._c["files"].append({"path": path, "version": meta.version, "dataset": meta.dataset,
                                             "schema": meta.schema, "ts_out": meta.ts_out})
            n = len(buf)
            while pos < n:
                length = buf[pos] * 4
                if length < _HEADER_SIZE:
                    raise DecodeError(f"record length {length} is below the DBN record header size "
                                      f"({_HEADER_SIZE}): not a DBN record", path=path, offset=base + pos)
                if pos + length > n:
                    break
                yield meta, buf, pos, base + pos, length
                pos += length
        if meta is None:
            _parse_metadata(path, buf, True)  # raises: the metadata never completed
            raise DecodeError("truncated DBN metadata", path=path, offset=0)
        if pos < len(buf):
            length = buf[pos] * 4
            if length < _HEADER_SIZE:
                raise DecodeError(f"record length {length} is below the DBN record header size "
                                  f"({_HEADER_SIZE}): not a DBN record", path=path, offset=base + pos)
        self._cut = cuts[0] if cuts else None
        if pos < len(buf):
            yield meta, buf, pos, base + pos, -(len(buf) - pos)
        elif self._cut is not None:
            yield meta, buf, pos, base + pos, None

    def _file(self, fi: int, path: str) -> Iterator[NormalizedChunk]:
        first = self._cb.next_record
        self._bytes_in_file = 0
        try:
            for meta, buf, pos, offset, length in self._frames(path):
                if length is None or length < 0:
                    self._record(fi, offset, -(length or 0), Rule.TRUNCATED_RECORD,
                                 self._torn_reason(path, buf, pos, -(length or 0)))
                    continue
                self._dispatch(fi, path, meta, buf, pos, offset, length)
                if not self._open:
                    yield from self._cb.take_if_full()
                elif self._cb.n_records >= self._overfull or self._cb.n_events >= self._overfull:
                    # Events still open at twice a chunk (no real venue event is that long: the
                    # stream lacks F_LAST): ended here, so memory stays bounded.
                    self._c["messages_ended_without_f_last"] += len(self._open)
                    self._close_all()
                    yield from self._cb.take_if_full()
        finally:
            self._inputs.append(InputFile(path, self._bytes_in_file, self._cb.next_record - first))
            self._c["bytes"] += self._bytes_in_file

    def _torn_reason(self, path: str, buf: bytearray, pos: int, length: int) -> str:
        what = f"{length} of {buf[pos] * 4} bytes" if length else "after the last whole record"
        if self._cut is None:
            return f"the file ends inside a record: {what}"
        return f"{path}: {self._cut.reason}: {what}"

    def _dispatch(self, fi: int, path: str, meta: _Meta, buf: bytearray, pos: int, offset: int,
                  length: int) -> None:
        rtype = buf[pos + 1]
        name = _RTYPE_NAMES.get(rtype)
        if name is None:
            raise DecodeError(f"unknown DBN record type 0x{rtype:02x}: the stream is corrupt",
                              path=path, offset=offset)
        by_type = self._c["records_by_type"]
        by_type[name] = by_type.get(name, 0) + 1
        extra = 8 if meta.ts_out else 0
        expected = _SIZES.get(rtype)
        if rtype == RT_DEF:
            expected = _DEF_SIZES[meta.version]
        if expected is not None and length != expected + extra:
            raise DecodeError(f"a {name} record of DBN v{meta.version} is {expected + extra} bytes, "
                              f"this one says {length}: the stream is corrupt", path=path, offset=offset)
        try:
            if rtype == RT_MBO:
                self._mbo(fi, meta, buf, pos, offset, length)
            elif rtype in (RT_MBP10, RT_MBP1):
                self._mbp(fi, meta, buf, pos, offset, length, 10 if rtype == RT_MBP10 else 1)
            elif rtype == RT_MBP0:
                self._trade(fi, meta, buf, pos, offset, length)
            elif rtype == RT_STATUS:
                self._status(fi, meta, buf, pos, offset, length)
            elif rtype == RT_DEF or rtype == RT_SYMMAP:
                rec = self._decode_with_dbn(meta, bytes(buf[pos: pos + length]))
                if rtype == RT_DEF:
                    self._definition(meta, rec)
                else:
                    self._symbol_mapping(meta, rec)
                self._record(fi, offset, length)
            elif rtype in _INFO_RTYPES:
                self._record(fi, offset, length)
            else:
                self._record(fi, offset, length, Rule.UNSUPPORTED_MESSAGE,
                             f"DBN {name} records are not decoded into canonical events")
        except _Bad as e:
            self._record(fi, offset, length, Rule.MALFORMED_RECORD, str(e))

    def _decode_with_dbn(self, meta: _Meta, data: bytes) -> tuple[int, str, int]:
        """(instrument_id, symbol, min_price_increment or UNDEF_PRICE) of a definition or
        symbol-mapping record, decoded by databento_dbn (fields are read inside the guard: the
        bindings convert them lazily and raise on bad text)."""
        try:
            dec = db.DBNDecoder(has_metadata=False, ts_out=meta.ts_out, input_version=meta.version,
                                upgrade_policy=db.VersionUpgradePolicy.AS_IS)
            out = dec.write_and_decode(data)
            if len(out) != 1:
                raise _Bad("databento_dbn does not decode the record")
            rec = out[0]
            if hasattr(rec, "min_price_increment"):
                return int(rec.instrument_id), str(rec.raw_symbol).strip(), int(rec.min_price_increment)
            return int(rec.instrument_id), str(rec.stype_out_symbol).strip(), UNDEF_PRICE
        except _Bad:
            raise
        except Exception as e:  # noqa: BLE001 - DBNError, or a field the bindings refuse
            raise _Bad(f"databento_dbn cannot decode the record ({e})") from None

    def _symbol_mapping(self, meta: _Meta, fields: tuple[int, str, int]) -> None:
        instrument_id, symbol = fields[0], fields[1]
        if symbol and instrument_id not in meta.symbols:
            meta.symbols[instrument_id] = symbol

    def _read_definitions(self, path: str) -> None:
        count = 0
        for meta, buf, pos, offset, length in self._frames(path):
            if length < 0:
                raise DecodeError("the definitions file ends inside a record", path=path, offset=offset)
            if buf[pos + 1] != RT_DEF:
                continue
            if length != _DEF_SIZES[meta.version] + (8 if meta.ts_out else 0):
                raise DecodeError(f"a definition record of DBN v{meta.version} cannot be {length} bytes",
                                  path=path, offset=offset)
            try:
                rec = self._decode_with_dbn(meta, bytes(buf[pos: pos + length]))
            except _Bad as e:
                raise DecodeError(str(e), path=path, offset=offset) from None
            self._definition(meta, rec)
            count += 1
        self._c["definition_files"].append({"path": path, "definitions": count})

    # ---- record kinds ----

    def _begin_message(self, row: int, ts_event: int) -> None:
        """Before a data record of `row`: a venue event keeps one ts_event, so a record of the
        instrument with another one starts a new event, ending the open one (a stream without
        F_LAST; counted)."""
        opened = self._open_ts_event.get(row)
        if opened is not None and opened != ts_event:
            self._c["messages_ended_without_f_last"] += 1
            self._close(row)

    def _emit(self, row: int, ts_event: int, ts_recv: int, seq: int, kind: int, side: int,
              flags: int, price: int, qty: int, order_id: int = 0) -> None:
        """An event of the record started last."""
        if row not in self._open:
            self._open_ts_event[row] = ts_event
        self._open[row] = self._cb.n_events
        self._cb.event(ts_event, ts_recv, seq, row, kind, side, flags, price, qty, order_id)
        ev = self._c["events"]
        name = _KIND_NAMES[kind]
        ev[name] = ev.get(name, 0) + 1

    def _mbo(self, fi: int, meta: _Meta, buf: bytearray, pos: int, offset: int, length: int) -> None:
        (_, _, _, iid, ts_event, order_id, price, size, dflags, _, action, side_c, ts_recv, _,
         seq) = _MBO.unpack_from(buf, pos)
        actions = self._c["mbo_actions"]
        a = action.decode("latin-1")
        actions[a] = actions.get(a, 0) + 1
        if ts_event > _INT64_MAX or ts_recv > _INT64_MAX:
            raise _Bad("ts_event or ts_recv is undefined")
        row = self._row(meta, iid, "l3")
        r = self._rows[row]
        self._begin_message(row, ts_event)
        snapshot = bool(dflags & F_SNAPSHOT)
        flags = (SNAPSHOT if snapshot else 0) | (BAD_TS_RECV if dflags & F_BAD_TS_RECV else 0)
        problem = None
        if not snapshot and seq and action != b"R":
            last = self._seq.get(row)
            if last is not None and (seq < last[0] or (seq == last[0] and ts_recv != last[1])):
                problem = (f"sequence {seq} at ts_recv {ts_recv} repeats or precedes {last[0]} "
                           f"(ts_recv {last[1]}) of {r.symbol}")
        if problem is not None:
            self._record(fi, offset, length, Rule.DUPLICATE_MESSAGE, problem)
            if dflags & F_LAST:
                self._close(row)
            return
        try:
            events = self._mbo_events(row, r, action, side_c, order_id, price, size, snapshot)
        except _Bad:
            if dflags & F_LAST:
                self._close(row)
            raise
        self._record(fi, offset, length)
        r.used = True
        if snapshot or action == b"R":  # snapshot sequences are not in order; a clear restarts
            self._seq.pop(row, None)
        elif seq:
            self._seq[row] = (seq, ts_recv)
        for kind, eside, eprice, qty, oid, extra in events:
            self._emit(row, ts_event, ts_recv, seq, kind, eside, flags | extra, eprice, qty, oid)
        if dflags & F_LAST:
            self._close(row)

    def _mbo_events(self, row: int, r: _Row, action: bytes, side_c: bytes, order_id: int,
                    price: int, size: int, snapshot: bool) -> list[tuple[int, int, int, int, int, int]]:
        """The record's events as (kind, side, price, qty, order_id, extra flags). Everything that
        can make the record malformed is checked before any state changes."""
        side = _SIDES.get(side_c)
        if side is None:
            raise _Bad(f"unknown side {side_c!r}")
        ticks = qty = 0
        if action in (b"A", b"M", b"T", b"F"):
            if action == b"A" and side == 0:
                raise _Bad("an add without a side")
            ticks = self._ticks(r, price, "price")
            qty = self._lots(r, size)
        elif action == b"C":
            qty = self._lots(r, size)
            try:  # only informative: the order map knows the order's price
                ticks = self._ticks(r, price, "price")
            except _Bad:
                ticks = 0
        elif action not in (b"R", b"N"):
            raise _Bad(f"unknown MBO action {action!r}")

        out: list[tuple[int, int, int, int, int, int]] = []
        orders = self._orders.setdefault(row, {})
        if snapshot and not self._in_snapshot.get(row):
            self._in_snapshot[row] = True
            if action != b"R":
                out.append((BOOK_CLEAR, 0, 0, 0, 0, SNAPSHOT))
                self._c["snapshot_clears_inserted"] += 1
                orders.clear()
        elif not snapshot:
            self._in_snapshot[row] = False
        if action == b"A":
            orders[order_id] = [ticks, qty, side]
            out.append((L3_ADD, side, ticks, qty, order_id, 0))
        elif action == b"C":
            entry = orders.get(order_id)
            if entry is None:
                self._c["unknown_order_refs"] += 1
                out.append((L3_DELETE, side, ticks, 0, order_id, 0))
            elif entry[1] - qty > 0:
                entry[1] -= qty
                out.append((L3_MODIFY, entry[2], entry[0], entry[1], order_id, 0))
            else:
                del orders[order_id]
                out.append((L3_DELETE, entry[2], entry[0], 0, order_id, 0))
        elif action == b"M":
            entry = orders.get(order_id)
            if entry is None:
                self._c["unknown_order_refs"] += 1
            elif qty > 0:
                entry[0], entry[1] = ticks, qty
            else:
                del orders[order_id]
            out.append((L3_MODIFY, entry[2] if entry is not None else side, ticks, qty, order_id, 0))
        elif action == b"R":
            orders.clear()
            out.append((BOOK_CLEAR, 0, 0, 0, 0, 0))
        elif action == b"T":
            out.append((TRADE, side, ticks, qty, 0, 0))
        elif action == b"F":
            # The print of a fill; the order stays as it is until the C or M that follows.
            entry = orders.get(order_id)
            if entry is None:
                self._c["fills_of_unknown_orders"] += 1
            aggressor = _AGGRESSOR.get(entry[2], 0) if entry is not None else 0
            out.append((TRADE, aggressor, ticks, qty, order_id, 0))
        return out

    def _mbp(self, fi: int, meta: _Meta, buf: bytearray, pos: int, offset: int, length: int,
             depth: int) -> None:
        (_, _, _, iid, ts_event, price, size, action, side_c, dflags, _, ts_recv, _,
         seq) = _MBP.unpack_from(buf, pos)
        if ts_event > _INT64_MAX or ts_recv > _INT64_MAX:
            raise _Bad("ts_event or ts_recv is undefined")
        trades_only = meta.schema == "tbbo"
        row = self._row(meta, iid, None if trades_only else "l2")
        r = self._rows[row]
        self._begin_message(row, ts_event)
        side = _SIDES.get(side_c)
        base_flags = BAD_TS_RECV if dflags & F_BAD_TS_RECV else 0
        try:
            if side is None:
                raise _Bad(f"unknown side {side_c!r}")
            if action not in (b"A", b"C", b"M", b"R", b"T", b"F", b"N"):
                raise _Bad(f"unknown MBP action {action!r}")
            events: list[tuple[int, int, int, int, int]] = []  # kind, side, price, qty, flags
            if action == b"T":
                events.append((TRADE, side, self._ticks(r, price, "trade price"), self._lots(r, size), 0))
            if not trades_only:
                bids: dict[int, int] = {}
                asks: dict[int, int] = {}
                at = pos + _MBP.size
                for _ in range(depth):
                    bpx, apx, bsz, asz, _, _ = _LEVEL.unpack_from(buf, at)
                    at += _LEVEL.size
                    if bpx != UNDEF_PRICE and bsz:
                        t = self._ticks(r, bpx, "bid price")
                        if t in bids:
                            raise _Bad(f"bid price {bpx} appears twice in the levels")
                        bids[t] = self._lots(r, bsz)
                    if apx != UNDEF_PRICE and asz:
                        t = self._ticks(r, apx, "ask price")
                        if t in asks:
                            raise _Bad(f"ask price {apx} appears twice in the levels")
                        asks[t] = self._lots(r, asz)
                view = self._views.get(row)
                snap = view is None or action == b"R"
                if snap:
                    events.append((BOOK_CLEAR, 0, 0, 0, SNAPSHOT))
                    for t, q in bids.items():
                        events.append((L2_SET, BID, t, q, SNAPSHOT))
                    for t, q in asks.items():
                        events.append((L2_SET, ASK, t, q, SNAPSHOT))
                else:
                    for s, old, new in ((BID, view[0], bids), (ASK, view[1], asks)):
                        for t in old:
                            if t not in new:
                                events.append((L2_SET, s, t, 0, 0))
                        for t, q in new.items():
                            if old.get(t) != q:
                                events.append((L2_SET, s, t, q, 0))
                self._views[row] = (bids, asks)
        except _Bad:
            if dflags & F_LAST:
                self._close(row)
            raise
        self._record(fi, offset, length)
        r.used = True
        for kind, eside, eprice, qty, extra in events:
            self._emit(row, ts_event, ts_recv, seq, kind, eside, base_flags | extra, eprice, qty)
        if dflags & F_LAST:
            self._close(row)

    def _trade(self, fi: int, meta: _Meta, buf: bytearray, pos: int, offset: int, length: int) -> None:
        (_, _, _, iid, ts_event, price, size, _, side_c, dflags, _, ts_recv, _,
         seq) = _MBP.unpack_from(buf, pos)
        if ts_event > _INT64_MAX or ts_recv > _INT64_MAX:
            raise _Bad("ts_event or ts_recv is undefined")
        row = self._row(meta, iid, None)
        r = self._rows[row]
        self._begin_message(row, ts_event)
        side = _SIDES.get(side_c)
        try:
            if side is None:
                raise _Bad(f"unknown side {side_c!r}")
            ticks = self._ticks(r, price, "trade price")
            qty = self._lots(r, size)
        except _Bad:
            if dflags & F_LAST:
                self._close(row)
            raise
        self._record(fi, offset, length)
        r.used = True
        self._emit(row, ts_event, ts_recv, seq, TRADE, side,
                   BAD_TS_RECV if dflags & F_BAD_TS_RECV else 0, ticks, qty)
        if dflags & F_LAST:
            self._close(row)

    def _status(self, fi: int, meta: _Meta, buf: bytearray, pos: int, offset: int, length: int) -> None:
        """A status record: the instrument's trading phase, as one TRADING_PHASE event. Status
        records carry no F_LAST: the event ends its own message, or joins the instrument's open
        one (the phase then holds when that message's book is judged)."""
        if meta.version < 2 or length != _STATUS.size + (8 if meta.ts_out else 0):
            self._c["status_records_without_phase"] += 1  # DBN v1's status layout: not decoded
            self._record(fi, offset, length)
            return
        (_, _, _, iid, ts_event, ts_recv, action, _, _, is_trading, is_quoting,
         _) = _STATUS.unpack_from(buf, pos)
        if ts_event > _INT64_MAX or ts_recv > _INT64_MAX:
            raise _Bad("ts_event or ts_recv is undefined")
        phase = _STATUS_PHASE.get(action)
        if phase is None and is_trading == b"Y":
            phase = TradingPhase.CONTINUOUS
        elif phase is None and is_trading == b"N":
            phase = TradingPhase.PRE_OPEN if is_quoting == b"Y" else TradingPhase.HALTED
        self._record(fi, offset, length)
        if phase is None:
            self._c["status_records_without_phase"] += 1
            return
        row = self._row(meta, iid, None, create_as=self._default_book)
        joins = row in self._open
        self._emit(row, ts_event, ts_recv, 0, TRADING_PHASE, int(phase), 0, 0, 0)
        if not joins:
            self._close(row)


def decode_dbn(
    paths: PathLike | Iterable[PathLike],
    *,
    venue: str | None = None,
    definitions: PathLike | Iterable[PathLike] | None = None,
    price_increment: IncrementLike | None = None,
    size_increment: IncrementLike | None = None,
    chunk_size: int = 1 << 16,
) -> DbnDecodeRun:
    """Decode DBN files (one stream, in order; plain or zstd) into NormalizedChunks.

    venue: the venue of every instrument (default: each file's dataset code, e.g. GLBX.MDP3).
    definitions: DBN file(s) whose definition records fill the instrument table first.
    price_increment: the data increment of instruments without a usable definition (exact
        decimal; default 0.000000001, DBN's fixed-point unit); refined where the data are finer.
    size_increment: of every instrument (default 1: DBN sizes are integer counts); refined where
        the data are finer.
    chunk_size: records/events per chunk (a chunk is only cut between messages).
    """
    files = _as_paths(paths)
    if not files:
        raise ValueError("decode_dbn needs at least one input")
    price = None
    if price_increment is not None:
        price = _increment_fraction(price_increment, "price_increment")
    size = None if size_increment is None else _increment_fraction(size_increment, "size_increment")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
    return DbnDecodeRun(files, venue=None if venue is None else str(venue), definitions=_as_paths(definitions),
                        price_increment=price, size_increment=size, chunk_size=chunk_size)


__all__ = ["DbnDecodeRun", "decode_dbn"]
