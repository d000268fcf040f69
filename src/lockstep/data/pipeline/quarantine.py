"""Step 4, the quarantine side of promotion: records that fail validation, with their rule, reason,
positions and raw bytes, under ROOT/quarantine/<name>/<import id>/."""
from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lockstep.data.importers import FORMATS
from lockstep.data.importers.normalized import NormalizedChunk
from lockstep.data.pipeline.raw import open_source
from lockstep.data.pipeline.report import POSITIONS_KEPT
from lockstep.data.pipeline.rules import ValidationConfig
from lockstep.data.storage import Location, naming_its_location
from lockstep.enums import Rule

_RULE_LABELS = {rule.value: rule.label for rule in Rule}

RULE_MEANING: Mapping[str, str] = {
    Rule.SEQUENCE_GAP.label: "messages were lost (sequence ids not contiguous); the book is unknown until a snapshot",
    Rule.TS_RECV_BACKWARDS.label: "the receive clock went back",
    Rule.FEED_LATENCY.label: "ts_recv - ts_event outside the configured bounds",
    Rule.CROSSED_BOOK.label: "best bid >= best ask after a complete message, in continuous trading",
    Rule.CROSSED_BOOK_PHASE_UNKNOWN.label: ("best bid >= best ask after a complete message, while the venue "
                                            "had announced no trading phase (it may be a pre-open book)"),
    Rule.UNKNOWN_ORDER_REF.label: "an order reference that is not in the book (or an add of one already there)",
    Rule.BAD_PRICE_QTY.label: "zero or negative price or quantity where not allowed",
    Rule.DUPLICATE_MESSAGE.label: "a message already seen (same or older sequence id)",
    Rule.DELTAS_BEFORE_SNAPSHOT.label: "book deltas before the instrument's first snapshot",
    Rule.MALFORMED_RECORD.label: "bytes that do not parse as the format",
    Rule.UNSUPPORTED_MESSAGE.label: "a well-formed message this decoder does not decode",
    Rule.TRUNCATED_RECORD.label: "the input ends inside a record",
}



_QUARANTINE_INDEX_SCHEMA = pa.schema([
    ("record", pa.int64()), ("file", pa.int32()), ("line", pa.int64()), ("offset", pa.int64()),
    ("length", pa.int64()), ("rule", pa.string()), ("cause", pa.int64()), ("instrument", pa.uint32()),
    ("detail_a", pa.int64()), ("detail_b", pa.int64()), ("reason", pa.string()),
])
_QUARANTINE_RECORD_SCHEMA = _QUARANTINE_INDEX_SCHEMA.append(pa.field("raw", pa.binary()))


class Quarantine:
    """quarantine/<name>/<id>/: records.parquet (one row per record, raw bytes included) and
    quarantine.json (entries grouped by rule and cause, counts, positions)."""

    def __init__(self, loc: Location, inputs: Sequence[Mapping[str, Any]], write: bool = True) -> None:
        self.loc = loc
        self.inputs = inputs
        self.write = write  # False: entries and counts only (validation without promotion)
        self._index: pq.ParquetWriter | None = None
        self._index_closed = False
        self.entries: dict[tuple[str, int, int], dict[str, Any]] = {}
        self.count = 0

    def _position(self, file: int, line: int, offset: int) -> dict[str, Any]:
        return {"file": self.inputs[file]["source"] if 0 <= file < len(self.inputs) else file,
                "line": int(line) or None, "offset": int(offset)}

    @naming_its_location
    def add(self, chunk: NormalizedChunk, verdicts: Mapping[str, np.ndarray], symbols: Sequence[str],
            cfg: ValidationConfig) -> None:
        m = chunk.n_records
        rule = verdicts["rule"][:m]
        rows = np.flatnonzero(rule)
        if rows.size == 0:
            return
        if self._index is None and self.write:
            self.loc.mkdir()
            self._index = pq.ParquetWriter(self.loc.fs.open_output_stream(self.loc.join("index.parquet").path),
                                           _QUARANTINE_INDEX_SCHEMA, compression="lz4")
        records = chunk.first_record + rows
        cause = verdicts["cause"][rows]
        inst = verdicts["instrument"][rows]
        a = verdicts["detail_a"][rows]
        b = verdicts["detail_b"][rows]
        names = [_RULE_LABELS[r] for r in rule[rows].tolist()]
        reasons = []
        for k, r in enumerate(rows):
            rec = int(records[k])
            # Decoders may learn an instrument's name after its records (an ITCH directory):
            # the name is filled in when the quarantine is written.
            symbol = symbols[inst[k]] if inst[k] < len(symbols) else f"\x00{inst[k]}\x00"
            why = reason_text(names[k], int(cause[k]), symbol, int(a[k]), int(b[k]), cfg,
                              chunk.problem_reasons.get(rec))
            reasons.append(why)
            key = (names[k], int(cause[k]), int(inst[k]))
            entry = self.entries.get(key)
            pos = self._position(int(chunk.rec_file[r]), int(chunk.rec_line[r]), int(chunk.rec_offset[r]))
            if entry is None:
                self.entries[key] = {"rule": names[k], "reason": why, "instrument": symbol,
                                     "cause_record": int(cause[k]) if cause[k] >= 0 else None,
                                     "records": 1, "first_record": rec, "last_record": rec,
                                     "first": pos, "last": pos, "positions": [pos]}
            else:
                entry["records"] += 1
                entry["last_record"] = rec
                entry["last"] = pos
                if len(entry["positions"]) < POSITIONS_KEPT:
                    entry["positions"].append(pos)
        self.count += int(rows.size)
        if self._index is None:
            return
        self._index.write_batch(pa.RecordBatch.from_arrays([
            pa.array(records, pa.int64()), pa.array(chunk.rec_file[rows], pa.int32()),
            pa.array(chunk.rec_line[rows], pa.int64()), pa.array(chunk.rec_offset[rows], pa.int64()),
            pa.array(chunk.rec_length[rows], pa.int64()), pa.array(names, pa.string()),
            pa.array(cause, pa.int64()), pa.array(inst, pa.uint32()), pa.array(a, pa.int64()),
            pa.array(b, pa.int64()), pa.array(reasons, pa.string()),
        ], schema=_QUARANTINE_INDEX_SCHEMA))

    @naming_its_location
    def close(self, sources: Sequence[str], meta: Mapping[str, Any], symbols: Sequence[str]) -> str | None:
        """Copies each quarantined record's raw bytes out of the inputs (one sequential pass per
        input), writes records.parquet and quarantine.json; returns the directory or None."""
        if self._index is None:
            return None
        self.finish_index()
        index_loc = self.loc.join("index.parquet")
        index = pq.ParquetFile(index_loc.fs.open_input_file(index_loc.path))
        out = pq.ParquetWriter(self.loc.fs.open_output_stream(self.loc.join("records.parquet").path),
                               _QUARANTINE_RECORD_SCHEMA, compression="zstd")
        readers: dict[int, Any] = {}
        positions: dict[int, int] = {}
        as_stored = FORMATS[meta["format"]].reads_capture_files
        try:
            for batch in index.iter_batches(batch_size=1 << 14):
                files = batch.column("file").to_numpy()
                offsets = batch.column("offset").to_numpy()
                lengths = batch.column("length").to_numpy()
                raw = []
                for f, off, ln in zip(files.tolist(), offsets.tolist(), lengths.tolist()):
                    if f not in readers:
                        readers[f] = open_source(sources[f], as_stored=as_stored)
                        positions[f] = 0
                    reader = readers[f]
                    skip = off - positions[f]
                    if skip < 0:  # records out of order in a file: reopen and read forward
                        reader.close()
                        reader = readers[f] = open_source(sources[f], as_stored=as_stored)
                        skip = off
                    while skip > 0:
                        got = reader.read(min(skip, 1 << 20))
                        if not got:
                            break
                        skip -= len(got)
                    data = reader.read(ln) if ln > 0 else b""
                    positions[f] = off + len(data)
                    raw.append(data)
                columns = list(batch.columns)
                reason_at = _QUARANTINE_INDEX_SCHEMA.get_field_index("reason")
                columns[reason_at] = pa.array([_named(t, symbols) for t in columns[reason_at].to_pylist()],
                                              pa.string())
                out.write_batch(pa.RecordBatch.from_arrays(
                    [*columns, pa.array(raw, pa.binary())], schema=_QUARANTINE_RECORD_SCHEMA))
        finally:
            out.close()
            for r in readers.values():
                r.close()
        index_loc.fs.delete_file(index_loc.path)
        doc = {**meta, "records": self.count, "entries": self.entry_list(symbols)}
        self.loc.join("quarantine.json").write_bytes((json.dumps(doc, indent=2, default=str) + "\n").encode())
        return self.loc.uri

    @naming_its_location
    def finish_index(self) -> None:
        if self._index is not None and not self._index_closed:
            self._index.close()
            self._index_closed = True

    def entry_list(self, symbols: Sequence[str]) -> list[dict[str, Any]]:
        named = [{**e, "reason": _named(e["reason"], symbols), "instrument": _named(e["instrument"], symbols)}
                 for e in self.entries.values()]
        return sorted(named, key=lambda e: e["first_record"])


_PENDING_NAME = re.compile("\x00(\\d+)\x00")


def _named(text: str | None, symbols: Sequence[str]) -> str | None:
    """Fills in instrument names a decoder did not know yet when the text was written."""
    if text is None or "\x00" not in text:
        return text
    return _PENDING_NAME.sub(lambda m: symbols[int(m.group(1))] if int(m.group(1)) < len(symbols)
                             else f"instrument {m.group(1)}", text)


def reason_text(rule: str, cause: int, symbol: str, a: int, b: int, cfg: ValidationConfig,
                decoder_reason: str | None) -> str:
    """Why one record is in quarantine, in words (numbers from the validator's details)."""
    if cause >= 0:
        return f"book of {symbol} invalid since record {cause} ({rule}); book records wait for a snapshot"
    if decoder_reason:
        return decoder_reason
    if rule == Rule.SEQUENCE_GAP.label:
        return f"{symbol}: sequence expected {a}, found {b}; book invalid until a snapshot"
    if rule == Rule.CROSSED_BOOK.label:
        return f"{symbol}: book crossed after the message (best bid {a} >= best ask {b}, in ticks)"
    if rule == Rule.CROSSED_BOOK_PHASE_UNKNOWN.label:
        return (f"{symbol}: book crossed after the message (best bid {a} >= best ask {b}, in ticks) "
                f"and no trading phase announced: a pre-open book, or an error")
    if rule == Rule.FEED_LATENCY.label:
        return (f"{symbol}: feed latency {a} ns outside [{cfg.min_feed_latency_ns}, "
                f"{cfg.max_feed_latency_ns}] ns")
    if rule == Rule.TS_RECV_BACKWARDS.label:
        return f"{symbol}: ts_recv {b} is before the previous promoted {a}"
    if rule == Rule.BAD_PRICE_QTY.label:
        return f"{symbol}: price {a} qty {b} (in increments) not allowed for this event"
    if rule == Rule.UNKNOWN_ORDER_REF.label:
        return f"{symbol}: order {a} is not in the book (or added twice)"
    if rule == Rule.DELTAS_BEFORE_SNAPSHOT.label:
        return f"{symbol}: book delta before any snapshot of the book"
    return RULE_MEANING.get(rule, rule)

