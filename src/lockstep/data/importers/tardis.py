"""Tardis.dev downloadable CSV files -> NormalizedChunks (lockstep.data.importers.normalized).

Two kinds, told apart by the header line (which is not a record):

- ``incremental_book_L2``: ``exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount``;
  one L2_SET per row (``amount`` is the level's new size, 0 removes it).
- ``trades``: ``exchange,symbol,timestamp,local_timestamp,id,side,price,amount``; one TRADE per row,
  ``side`` the aggressor (``buy``/``sell``; ``unknown`` is side 0, as Tardis documents it).

Each data row is one record. Tardis flattens a venue message into rows that share
``local_timestamp``; so consecutive rows with the same (exchange, symbol, local_timestamp, and for
books is_snapshot) are one message and the last of them carries LAST. A row the decoder cannot use
ends the message before it. Per Tardis, a snapshot row whose instrument's previous row was not a
snapshot row starts a new snapshot (a reconnect or the start of a day): a BOOK_CLEAR flagged
SNAPSHOT comes before it, and snapshot rows are flagged SNAPSHOT. Rows before an instrument's
first snapshot are emitted as they are (the validator owns that rule; ``requires_snapshot`` is True
when any input is a book file).

``ts_event`` = ``timestamp`` and ``ts_recv`` = ``local_timestamp`` (µs -> ns). ``seq``: 0 for book
rows (Tardis L2 carries no ids), the trade ``id`` when numeric, else 0. There are no ids to find
gaps or duplicates with. Instruments are indexed by first appearance, keyed by (venue, symbol);
the venue is the ``exchange`` column unless ``venue=`` is given. Increments as for Bybit: explicit
``instruments=``, else ``price_increment=`` + ``size_increment=``, else the exact decimal GCD of the
instrument's non-zero values (a first pass); a given increment coarser than the data is refined
and reported, as for Bybit.

Rows with the wrong number of columns, unparsable numbers or an unknown side are MALFORMED_RECORD
(a final line with no newline is TRUNCATED_RECORD instead); ``rec_line`` is the 1-based line of the
file and ``rec_offset`` its byte offset. A file whose header is neither kind is a DecodeError.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from lockstep.data.importers.increments import IncrementLike, Increments, decimal_text, parse_decimal, units
from lockstep.data.importers.normalized import (
    ASK,
    BID,
    BOOK_CLEAR,
    L2_SET,
    LAST,
    SNAPSHOT,
    TRADE,
    ChunkBuilder,
    InputFile,
    NormalizedChunk,
    Rule,
)
from lockstep.data.importers.text import PathLike, TextDecodeRun, TextLines, as_paths, read_lines, short
from lockstep.errors import DecodeError

BOOK_HEADER = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount"
TRADES_HEADER = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount"
_KINDS = {BOOK_HEADER: "incremental_book_L2", TRADES_HEADER: "trades"}
_BOOK_SIDES = {"bid": BID, "ask": ASK}
_TRADE_SIDES = {"buy": BID, "sell": ASK, "unknown": 0}
_MAX_US = ((1 << 63) - 1) // 1000
_UINT64_MAX = (1 << 64) - 1
_BOM = b"\xef\xbb\xbf"


def _header(content: bytes) -> str:
    content = content.removeprefix(_BOM)
    return content.decode("utf-8", "replace").strip()


def _sniff(path: str) -> tuple[str, str]:
    """(kind, header text) of a file from its first line; DecodeError if it is not a Tardis CSV."""
    for _, _, content, _, _ in read_lines(path):
        header = _header(content)
        kind = _KINDS.get(header)
        if kind is None:
            raise DecodeError(f"not a Tardis incremental_book_L2 or trades CSV: header {header[:120]!r}",
                              path=path, line=1, offset=0)
        return kind, header
    raise DecodeError("empty file: a Tardis CSV starts with a header line", path=path, offset=0)


class _Bad(Exception):
    pass


def _micros(text: str, what: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 19 or int(text) > _MAX_US:
        raise _Bad(f"{what} must be microseconds since the epoch, got {short(text)}")
    return int(text) * 1000


def _decimal(text: str, what: str) -> tuple[int, int]:
    parsed = parse_decimal(text) if text.isascii() else None
    if parsed is None:
        raise _Bad(f"{what} is not a decimal: {short(text)}")
    return parsed


def _parse_row(content: bytes, book: bool, venue: str | None) -> tuple:
    """(venue, symbol, ts_event, ts_recv, is_snapshot or None, seq, side, price, amount)."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _Bad(f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    cols = text.split(",")
    if len(cols) != 8:
        raise _Bad(f"expected 8 columns, found {len(cols)}")
    exchange, symbol, ts, local_ts, fifth, side, price, amount = cols
    if not exchange or not symbol:
        raise _Bad("exchange and symbol must not be empty")
    ts_event = _micros(ts, "timestamp")
    ts_recv = _micros(local_ts, "local_timestamp")
    if book:
        if fifth == "true":
            is_snapshot: bool | None = True
        elif fifth == "false":
            is_snapshot = False
        else:
            raise _Bad(f"is_snapshot must be true or false, got {short(fifth)}")
        seq = 0
        side_code = _BOOK_SIDES.get(side)
        if side_code is None:
            raise _Bad(f"side must be bid or ask, got {short(side)}")
    else:
        is_snapshot = None
        seq = int(fifth) if fifth.isascii() and fifth.isdigit() and len(fifth) <= 20 else 0
        if seq > _UINT64_MAX:
            seq = 0
        side_code = _TRADE_SIDES.get(side)
        if side_code is None:
            raise _Bad(f"side must be buy, sell or unknown, got {short(side)}")
    return (venue if venue is not None else exchange, symbol, ts_event, ts_recv, is_snapshot, seq,
            side_code, _decimal(price, "price"), _decimal(amount, "amount"))


class TardisDecodeRun(TextDecodeRun):
    """One decoding of Tardis CSV files (see the module docstring). Iterate once."""

    format = "tardis"

    def __init__(self, paths: list[str], kinds: list[str], venue: str | None, increments: Increments) -> None:
        super().__init__(paths, increments)
        self._kinds = kinds
        self._venue = venue
        self.requires_snapshot = "incremental_book_L2" in kinds
        self._seen_snapshot: set[int] = set()
        self._blank = self._headers = self._end = 0
        self._lines: TextLines | None = None  # the file _rows() reads

    def _rows(self, file_index: int) -> Iterator[tuple[int, int, bytes, bool, int]]:
        """The data lines of a file: the header and blank lines are left out (they are not records)."""
        path = self._paths[file_index]
        header: str | None = None
        self._end = 0
        self._lines = lines = read_lines(path)
        for line in lines:
            content = line[2]
            self._end = line[4]
            if header is None:
                header = _header(content)
                if _KINDS.get(header) != self._kinds[file_index]:
                    raise DecodeError("the file changed since its header was read", path=path, line=1, offset=0)
                continue
            if not content.strip():
                self._blank += 1
                continue
            if content.decode("utf-8", "replace").strip() == header:
                self._headers += 1  # files concatenated with their headers
                continue
            yield line

    def _scan(self) -> None:
        for i in range(len(self._paths)):
            book = self._kinds[i] == "incremental_book_L2"
            for line, offset, content, _, _ in self._rows(i):
                try:
                    row = _parse_row(content, book, self._venue)
                except _Bad:
                    continue
                self._inc.observe((row[0], row[1]), row[1], row[7], row[8], (self._paths[i], line, offset))

    def _decode(self, cb: ChunkBuilder) -> Iterator[NormalizedChunk]:
        self._blank = self._headers = 0  # counted again: the first pass read the lines too
        c: dict[str, Any] = {
            "files": len(self._paths), "file_kinds": dict(zip(self._paths, self._kinds)),
            "records": 0, "book_rows": 0, "trade_rows": 0, "messages": 0, "snapshots": 0,
            "deltas_before_snapshot": 0, "ts_recv_source": "local_timestamp",
        }
        in_snapshot: dict[int, bool] = {}
        for file_index, path in enumerate(self._paths):
            book = self._kinds[file_index] == "incremental_book_L2"
            records = 0
            pending: tuple | None = None
            for line_no, offset, content, terminated, _ in self._rows(file_index):
                records += 1
                cur = self._parse(file_index, line_no, offset, content, terminated, book)
                if pending is not None:
                    yield from self._emit(cb, pending, cur[7] is None or cur[7] != pending[7], in_snapshot, c)
                pending = cur
            if pending is not None:  # a message never spans files
                yield from self._emit(cb, pending, True, in_snapshot, c)
            lines = self._lines
            if lines is not None and lines.cut is not None:
                records += self._record_cut(cb, file_index, lines)
                self._end = lines.cut.offset + lines.cut.length
            self._inputs.append(InputFile(path=path, bytes_read=self._end, records=records))
            c["records"] += records
        c["blank_lines"] = self._blank
        c["repeated_headers"] = self._headers
        return c

    def _parse(self, file_index: int, line_no: int, offset: int, content: bytes, terminated: bool,
               book: bool) -> tuple:
        """(file, line, offset, length, problem, reason, row with units, message key or None)."""
        try:
            row = _parse_row(content, book, self._venue)
            venue, symbol = row[0], row[1]
            pinc, sinc, ptext, stext, source = self._inc.resolve((venue, symbol), symbol)
            price, amount = units(row[7], pinc), units(row[8], sinc)
            if price is None:
                raise _Bad(f"price {decimal_text(*row[7])} is not an int64 multiple of {ptext}")
            if amount is None:
                raise _Bad(f"amount {decimal_text(*row[8])} is not an int64 multiple of {stext}")
        except _Bad as e:
            rule = Rule.MALFORMED_RECORD if terminated else Rule.TRUNCATED_RECORD
            reason = str(e) if terminated else f"the input ends inside this line ({e})"
            return (file_index, line_no, offset, len(content), rule, reason, None, None)
        inst = (venue, symbol, ptext, stext, source)
        key = (venue, symbol, row[3], row[4])
        return (file_index, line_no, offset, len(content), Rule.OK, None, (inst, row, price, amount), key)

    def _emit(self, cb: ChunkBuilder, rec: tuple, last: bool, in_snapshot: dict[int, bool],
              c: dict[str, Any]) -> Iterator[NormalizedChunk]:
        file_index, line_no, offset, length, problem, reason, decoded, _ = rec
        cb.record(file_index, line_no, offset, length, problem, reason)
        if decoded is not None:
            (venue, symbol, ptext, stext, source), row, price, amount = decoded
            inst = self._table.get((venue, symbol), symbol, venue, ptext, stext, source)
            _, _, ts_event, ts_recv, is_snapshot, seq, side, _, _ = row
            flags = LAST if last else 0
            if is_snapshot is None:
                cb.event(ts_event, ts_recv, seq, inst, TRADE, side, flags, price, amount)
                c["trade_rows"] += 1
            else:
                c["book_rows"] += 1
                if is_snapshot:
                    flags |= SNAPSHOT
                    if not in_snapshot.get(inst, False):
                        cb.event(ts_event, ts_recv, 0, inst, BOOK_CLEAR, 0, SNAPSHOT, 0, 0)
                        c["snapshots"] += 1
                elif inst not in self._seen_snapshot:
                    c["deltas_before_snapshot"] += 1
                if is_snapshot:
                    self._seen_snapshot.add(inst)
                in_snapshot[inst] = is_snapshot
                cb.event(ts_event, ts_recv, 0, inst, L2_SET, side, flags, price, amount)
            c["messages"] += last
        yield from cb.take_if_full()


def decode_tardis(
    paths: PathLike | Iterable[PathLike],
    *,
    venue: str | None = None,
    instruments: Any = None,
    price_increment: IncrementLike | None = None,
    size_increment: IncrementLike | None = None,
) -> TardisDecodeRun:
    """Decode Tardis incremental_book_L2 / trades CSV files (one stream, files in order); iterate the
    result for NormalizedChunks. DecodeError here if a file is not a Tardis CSV of either kind."""
    if venue is not None and (not isinstance(venue, str) or not venue):
        raise ValueError("venue must be a non-empty string or None")
    files = as_paths(paths)
    kinds = [_sniff(p)[0] for p in files]
    return TardisDecodeRun(files, kinds, venue, Increments(instruments, price_increment, size_increment))


__all__ = ["BOOK_HEADER", "TRADES_HEADER", "TardisDecodeRun", "decode_tardis"]
