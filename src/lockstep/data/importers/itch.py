"""NASDAQ TotalView-ITCH 5.0 binary files -> NormalizedChunks (lockstep.data.importers.normalized).

The decoding and the mapping to canonical events are in include/lockstep/codecs/itch.hpp (its header
comment is the normative description: framing, the zero-length-prefix quirk, which message gives
which events, unknown order references). This module reads the files (gzip, zstd, zip or plain,
streamed in bounded pieces; a compressed file that is cut is read up to the cut, which is one
truncated record), works out each file's session date, and cuts chunks.

Time: ITCH timestamps are nanoseconds since midnight of the session, New York time. ts_event is
the UTC epoch ns of that local midnight (from zoneinfo, so daylight saving is right) plus the
timestamp. The session date is the ``date`` argument, else an 8-digit date in the file's name
(``ex20101224...`` / ``20190130...`` as YYYYMMDD, or NASDAQ's own ``01302019.NASDAQ_ITCH50`` as
MMDDYYYY); otherwise decoding refuses to start and asks for it.
"""
from __future__ import annotations

import calendar
import datetime as _dt
import os
import re
import zlib
from collections.abc import Iterable, Iterator
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from lockstep._bindings import itch as _itch
from lockstep.data.dataset import Instrument
from lockstep.data.importers.decode_run import DecodeRunBase
from lockstep.data.importers.normalized import (
    InputFile,
    NormalizedChunk,
    StreamCut,
    open_decompressed,
)
from lockstep.enums import Rule, Status
from lockstep.errors import DecodeError, SettingError
from lockstep.events import EventKind

VENUE = "nasdaq"
PRICE_INCREMENT = "0.0001"  # ITCH Price(4): 4 implied decimals
SIZE_INCREMENT = "1"
NEW_YORK = ZoneInfo("America/New_York")

# Bytes read per step; a partial message (at most 2 + 65,535 bytes) is carried to the next.
_READ = 1 << 20
_CARRY = 2 + 0xFFFF

_DATE_IN_NAME = re.compile(r"(?<!\d)(\d{8})(?!\d)")
_FIELDS = {1: "buy/sell indicator is not 'B' or 'S'", 2: "printable flag is not 'Y' or 'N'",
           3: "cross shares exceed the int64 range",
           4: "system event code is not one of O, S, Q, M, E, C",
           5: "trading state is not one of H, P, Q, T"}


def session_day_start_ns(day: _dt.date) -> int:
    """UTC epoch ns of midnight in New York on `day` (the origin of ITCH timestamps)."""
    offset = NEW_YORK.utcoffset(_dt.datetime(day.year, day.month, day.day))
    assert offset is not None
    seconds = calendar.timegm((day.year, day.month, day.day, 0, 0, 0)) - int(offset.total_seconds())
    return seconds * 1_000_000_000


def _parse_date(value: Any) -> _dt.date:
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    if isinstance(value, str):
        text = value.strip()
        for fmt in ("%Y-%m-%d", "%Y%m%d"):
            try:
                return _dt.datetime.strptime(text, fmt).date()
            except ValueError:
                pass
    raise ValueError(f"date must be a datetime.date or 'YYYY-MM-DD' / 'YYYYMMDD', got {value!r}")


def date_from_name(path: str) -> _dt.date | None:
    """The session date an ITCH file's name states, or None."""
    for digits in _DATE_IN_NAME.findall(os.path.basename(path)):
        for fmt in ("%Y%m%d", "%m%d%Y"):
            try:
                day = _dt.datetime.strptime(digits, fmt).date()
            except ValueError:
                continue
            if 1990 <= day.year <= 2100:
                return day
    return None


class ItchDecodeRun(DecodeRunBase):
    """One decode of ITCH files (one stream). Iterate once for NormalizedChunks; afterwards
    ``instruments``, ``inputs`` and ``counts`` describe what was read (also after a fatal error)."""

    format = "itch"
    requires_snapshot = False

    def __init__(self, paths: list[str], day_starts: list[int], batch: int) -> None:
        super().__init__()
        self._paths = paths
        self._day_starts = day_starts
        self._batch = batch

    def _run(self) -> Iterator[NormalizedChunk]:
        dec = _itch.ItchDecoder(self._batch)
        names = self._paths
        self._notes_seen = 0
        self._cuts: dict[int, StreamCut] = {}  # by input: how its compressed stream is cut
        truncated_streams: list[str] = []
        try:
            for i, path in enumerate(self._paths):
                dec.begin_file(i, self._day_starts[i])
                before_records = dec.counts()["records"]
                truncated_before = dec.counts()["problems"][Rule.TRUNCATED_RECORD]
                file_bytes = 0
                buf = bytearray(_READ + _CARRY)
                view = memoryview(buf)
                left = 0
                with self._open(path) as f:
                    while True:
                        try:
                            n = f.readinto(view[left: left + _READ])
                        except (OSError, EOFError, ValueError, zlib.error) as e:
                            yield from self._flush(dec)
                            raise DecodeError(f"cannot decompress: {e}", path=path,
                                              offset=file_bytes + left) from None
                        file_bytes += n
                        end = left + n
                        eof = n == 0
                        if eof and f.cut is not None:
                            self._cuts[i] = f.cut  # before the eof feed, whose tail it explains
                        pos = 0
                        while True:
                            consumed, status = dec.feed(view[pos:end], eof)
                            pos += consumed
                            if status == Status.OK:
                                break
                            if status != Status.OUTPUT_FULL:
                                yield from self._flush(dec)
                                raise dec.exception(names)
                            chunk = self._take(dec)
                            if chunk is not None:
                                yield chunk
                        if eof:
                            break
                        left = end - pos
                        if left:
                            buf[0:left] = buf[pos:end]
                    if f.cut is not None:
                        truncated_streams.append(path)
                        if dec.counts()["problems"][Rule.TRUNCATED_RECORD] == truncated_before:
                            yield from self._cut(dec)
                self._inputs.append(InputFile(path=path, bytes_read=file_bytes,
                                              records=dec.counts()["records"] - before_records))
            yield from self._flush(dec)
        finally:
            self._collect(dec, truncated_streams)

    def _open(self, path: str) -> Any:
        """Input `path` as an uncompressed binary stream with a `cut` attribute (normalized.Decompressed)."""
        return open_decompressed(path)

    def _cut(self, dec: Any) -> Iterator[NormalizedChunk]:
        """The empty truncated record of a stream cut right after a whole message."""
        while dec.cut() == Status.OUTPUT_FULL:
            yield from self._flush(dec)

    def _flush(self, dec: Any) -> Iterator[NormalizedChunk]:
        chunk = self._take(dec)
        if chunk is not None:
            yield chunk

    def _take(self, dec: Any) -> NormalizedChunk | None:
        got = dec.take()
        if got is None:
            return None
        first, n_rec, n_ev, cols, event_record, rec_file, rec_offset, rec_length, rec_problem = got
        reasons: dict[int, str] = {}
        notes = dec.notes()
        if len(notes) > self._notes_seen:
            for note in notes[self._notes_seen:]:
                if first <= note["record"] < first + n_rec:
                    reasons[note["record"]] = _reason(note, self._paths[note["file"]],
                                                      self._cuts.get(note["file"]))
            self._notes_seen = len(notes)
        return NormalizedChunk(
            events=cols, n_events=n_ev, event_record=event_record, first_record=first,
            n_records=n_rec, rec_file=rec_file, rec_line=np.zeros(n_rec, dtype=np.int64),
            rec_offset=rec_offset, rec_length=rec_length, rec_problem=rec_problem,
            problem_reasons=reasons)

    def _collect(self, dec: Any, truncated_streams: list[str]) -> None:
        c = dec.counts()
        table = []
        for symbol, locate in dec.instruments():
            table.append(Instrument(symbol=symbol or f"LOCATE{locate}", venue=VENUE,
                                    price_increment=PRICE_INCREMENT, size_increment=SIZE_INCREMENT,
                                    book="l3"))
        events = {EventKind(k).name.lower(): n for k, n in enumerate(c["events"]) if n}
        events["total"] = sum(c["events"])
        problems = {Rule(r).label: n for r, n in enumerate(c["problems"]) if n}
        self._instruments = table
        self._finish({
            "records": c["records"],
            "bytes": c["bytes"],
            "messages": dict(sorted(c["messages"].items())),
            "framing": {"zero_prefix": c["zero_prefix"],
                        "length_prefix": c["records"] - c["zero_prefix"]},
            "problems": problems,
            "events": events,
            "unknown_order_ref": c["unknown_order_ref"],
            "duplicate_add": c["duplicate_add"],
            "overfill": c["overfill"],
            "cross_no_volume": c["cross_no_volume"],
            "placeholder_instruments": c["placeholder_instruments"],
            "directory_conflicts": c["directory_conflicts"],
            "live_orders_max": c["live_orders_max"],
            "live_orders_end": c["live_orders_end"],
            "compressed_stream_truncated": truncated_streams,
            "files": len(self._inputs),
        })


def _reason(note: dict[str, Any], path: str, cut: StreamCut | None) -> str:
    at = f"at offset {note['offset']}"
    t = note["type"]
    shown = repr(chr(t)) if 0x20 < t < 0x7F else f"0x{t:02x}"
    if note["rule"] == Rule.TRUNCATED_RECORD:
        if not note["prefix"]:
            what = f"nothing follows the last whole message, {at}"
        elif note["expected"]:
            what = f"input ends inside a message {at}: {note['prefix']} of {note['expected']} bytes present"
        else:
            what = f"input ends inside a message header {at}: {note['prefix']} bytes present"
        return what if cut is None else f"{path}: {cut.reason}; {what}"
    if note["rule"] == Rule.UNSUPPORTED_MESSAGE:
        return f"message type {shown} is not ITCH 5.0 ({note['prefix']} bytes) {at}"
    if note["field"]:
        return f"message type {shown} {at}: {_FIELDS.get(note['field'], 'bad field')}"
    return (f"length prefix {note['prefix']} {at} but message type {shown} is "
            f"{note['expected']} bytes")


def decode_itch(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], *,
                date: Any = None, batch: int = 1 << 16) -> ItchDecodeRun:
    """Decode NASDAQ TotalView-ITCH 5.0 files (one stream, in order) into NormalizedChunks.

    paths: a path or URI, or several (gzip, zstd, single-member zip or plain; detected by magic).
    date: the session date (datetime.date or 'YYYY-MM-DD'); by default each file's name must
        state it (YYYYMMDD, or NASDAQ's MMDDYYYY).
    batch: records (and at most as many events) per chunk; memory is bounded by it plus ~2 MB.
    """
    if isinstance(paths, (str, os.PathLike)):
        names = [os.fspath(paths)]
    else:
        names = [os.fspath(p) for p in paths]
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 4:
        raise ValueError(f"batch must be an int >= 4, got {batch!r}")
    starts = []
    given = None if date is None else _parse_date(date)
    for name in names:
        day = given or date_from_name(name)
        if day is None:
            raise SettingError("{path}: cannot tell the session date (ITCH timestamps count from New York "
                               "midnight): pass {date} YYYY-MM-DD, or name the file with its date (YYYYMMDD)",
                               ["date"], path=name)
        starts.append(session_day_start_ns(day))
    return ItchDecodeRun(names, starts, batch)


__all__ = ["ItchDecodeRun", "date_from_name", "decode_itch", "session_day_start_ns"]
