"""The data path: raw -> normalized -> validated -> canonical or quarantine (docs/data.md).

`import_data` runs it in one streaming pass over the inputs, memory bounded by a chunk:

1. raw: the inputs are copied, byte for byte, to ``ROOT/raw/<name>/<import id>/`` (the import id
   is a digest of their contents, so importing the same bytes again reuses the copy);
2. normalize: a decoder (lockstep.data.importers.*) turns records into canonical events, each event
   tied to its record; they are written to ``ROOT/normalized/<name>/<import id>/``;
3. validate: lockstep._bindings.validate.Validator gives every record a verdict (rules in docs/data.md);
4. promote: promoted records' events (plus a GAP marker wherever a book became invalid) go to a
   new version of ``ROOT/canonical/<name>``, whose manifest holds the validation report; the others
   go to ``ROOT/quarantine/<name>/<import id>/`` with their rule, reason, positions and raw bytes.

For every import: records_canonical + records_quarantined == records_read.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lockstep.data.dataset import Dataset, DatasetWriter, Instrument
from lockstep.checks import parse_duration
from lockstep.enums import Rule, RuleAction
from lockstep.errors import ConfigError, LockstepError
from lockstep.events import COLUMN_NAMES, COLUMNS, EventKind, Flag, to_columns
from lockstep.data.importers.normalized import (
    NormalizedChunk,
    open_decompressed,
)
from lockstep.data.storage import Location, ensure_layout, locate, root_location

FORMATS = ("binance", "bybit", "tardis", "dbn", "itch")
STEPS = ("raw", "normalize", "validate", "promote")
ACTIONS = RuleAction.labels()

#: What each rule does unless configured otherwise. Feed latency and raised receive stamps are
#: facts about the capture a user should see, not reasons to discard it: the real Binance spot
#: capture runs 1.27 s behind the venue on every message.
DEFAULT_ACTIONS: Mapping[str, str] = {
    **{rule.label: RuleAction.QUARANTINE.label for rule in Rule if rule != Rule.OK},
    "feed_latency": "warn",
    "ts_recv_backwards": "warn",
}
DEFAULT_MAX_FEED_LATENCY_NS = 60 * 10**9
DEFAULT_MIN_FEED_LATENCY_NS = 0
_POSITIONS_KEPT = 20
CHUNK_EVENTS = 1 << 17  # events per decoded chunk where the decoder lets us choose

RULE_MEANING: Mapping[str, str] = {
    "sequence_gap": "messages were lost (sequence ids not contiguous); the book is unknown until a snapshot",
    "ts_recv_backwards": "the receive clock went back",
    "feed_latency": "ts_recv - ts_event outside the configured bounds",
    "crossed_book": "best bid >= best ask after a complete message",
    "unknown_order_ref": "an order reference that is not in the book (or an add of one already there)",
    "bad_price_qty": "zero or negative price or quantity where not allowed",
    "duplicate_message": "a message already seen (same or older sequence id)",
    "deltas_before_snapshot": "book deltas before the instrument's first snapshot",
    "malformed_record": "bytes that do not parse as the format",
    "unsupported_message": "a well-formed message this decoder does not decode",
    "truncated_record": "the input ends inside a record",
}


class PipelineError(LockstepError):
    """A step of the data path cannot run (bad arguments, missing inputs, unknown dataset)."""


# ---------------------------------------------------------------------------------------------
# Configuration


def parse_duration_ns(text: str | int) -> int:
    """'250ms', '-2s', '1500000' (ns) -> int ns, in the one duration grammar
    (lockstep.checks.parse_duration), negatives allowed: a feed-latency bound may be below 0.
    ValueError naming the text otherwise."""
    try:
        return parse_duration("duration", text, allow_negative=True)
    except ConfigError as e:
        raise ValueError(f"{text!r} is not a duration (examples: 500ms, 2s, -1.5s, 1000ns): "
                         f"{e.reason}") from None


@dataclass(frozen=True)
class ValidationConfig:
    """Rule actions (off, warn, quarantine) and the feed-latency bounds."""

    actions: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ACTIONS))
    min_feed_latency_ns: int = DEFAULT_MIN_FEED_LATENCY_NS
    max_feed_latency_ns: int = DEFAULT_MAX_FEED_LATENCY_NS

    def __post_init__(self) -> None:
        merged = dict(DEFAULT_ACTIONS)
        for rule, action in self.actions.items():
            if rule not in DEFAULT_ACTIONS:
                raise ValueError(f"unknown rule {rule!r}; rules are {', '.join(DEFAULT_ACTIONS)}")
            if action not in ACTIONS:
                raise ValueError(f"rule {rule}: action {action!r} is not one of {', '.join(ACTIONS)}")
            merged[rule] = action
        object.__setattr__(self, "actions", merged)
        if self.min_feed_latency_ns > self.max_feed_latency_ns:
            raise ValueError("min feed latency is above the max")

    @classmethod
    def from_options(cls, rules: Sequence[str] = (), min_latency: str | None = None,
                     max_latency: str | None = None) -> ValidationConfig:
        """`rules` as 'name=action' strings (the CLI's --rule)."""
        actions = {}
        for item in rules:
            name, sep, action = item.partition("=")
            if not sep:
                raise ValueError(f"--rule {item!r}: expected RULE=ACTION (e.g. feed_latency=quarantine)")
            actions[name.strip()] = action.strip()
        return cls(
            actions=actions,
            min_feed_latency_ns=DEFAULT_MIN_FEED_LATENCY_NS if min_latency is None else parse_duration_ns(min_latency),
            max_feed_latency_ns=DEFAULT_MAX_FEED_LATENCY_NS if max_latency is None else parse_duration_ns(max_latency),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"actions": dict(self.actions), "min_feed_latency_ns": self.min_feed_latency_ns,
                "max_feed_latency_ns": self.max_feed_latency_ns}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ValidationConfig:
        return cls(actions=dict(d.get("actions", {})),
                   min_feed_latency_ns=int(d.get("min_feed_latency_ns", DEFAULT_MIN_FEED_LATENCY_NS)),
                   max_feed_latency_ns=int(d.get("max_feed_latency_ns", DEFAULT_MAX_FEED_LATENCY_NS)))


# ---------------------------------------------------------------------------------------------
# Decoders


def is_raw_capture(path: str) -> bool:
    """A lockstep raw capture file (docs/raw-format.md), as a recorder writes them."""
    from lockstep.data.raw_capture import MAGIC

    try:
        with open(path, "rb") as f:
            return f.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def open_source(path: str) -> Any:
    """The bytes a decoder sees for one input: a raw capture's frames as "<receive ns> <payload>"
    lines, anything else decompressed. Record positions refer to these bytes."""
    if "://" not in path and is_raw_capture(path):
        from lockstep.data.raw_capture import open_lines

        return open_lines([path])
    return open_decompressed(path)


def decode(format: str, paths: Sequence[str], options: Mapping[str, Any]) -> Any:
    """The decode run of FORMAT over `paths` (one stream, in order)."""
    opts = {k: v for k, v in options.items() if v is not None}
    if any(is_raw_capture(p) for p in paths):
        if format != "binance":
            raise PipelineError(f"raw captures hold websocket text frames; import them as binance, not {format}")
        paths = [open_source(p) for p in paths]  # the decoder reads file objects as they are
    if format == "binance":
        from lockstep.data.importers.binance import decode_binance

        instruments_file = opts.pop("instruments_file", None)
        if instruments_file is not None:
            from lockstep.data.importers.binance import load_instruments_file

            opts["instruments"] = load_instruments_file(instruments_file)
        opts.pop("venue", None)  # the venue follows from the market type
        # Chunks small enough that writing one overlaps with decoding the next (_WriteBehind).
        opts.setdefault("batch_size", CHUNK_EVENTS)
        return decode_binance(list(paths), **opts)
    _refuse(format, opts, {"bybit": ("date", "definitions", "instruments_file"),
                           "tardis": ("date", "definitions", "instruments_file"),
                           "dbn": ("date", "instruments_file"),
                           "itch": ("venue", "price_increment", "size_increment", "definitions",
                                    "instruments_file")}.get(format, ()))
    if format == "bybit":
        from lockstep.data.importers.bybit import decode_bybit

        return decode_bybit(list(paths), **opts)
    if format == "tardis":
        from lockstep.data.importers.tardis import decode_tardis

        return decode_tardis(list(paths), **opts)
    if format == "dbn":
        from lockstep.data.importers.dbn import decode_dbn

        return decode_dbn(list(paths), **opts)
    if format == "itch":
        from lockstep.data.importers.itch import decode_itch

        return decode_itch(list(paths), **opts)
    raise PipelineError(f"unknown format {format!r}; formats are {', '.join(FORMATS)}")


def _refuse(format: str, opts: Mapping[str, Any], unused: Sequence[str]) -> None:
    given = [k for k in unused if k in opts]
    if given:
        names = ", ".join("--instruments" if k == "instruments_file" else "--" + k.replace("_", "-")
                          for k in given)
        raise PipelineError(f"{names} does not apply to {format} imports")


# ---------------------------------------------------------------------------------------------
# Reports


@dataclass
class ImportResult:
    """What an import (or a promote) read, promoted, quarantined and wrote."""

    name: str
    import_id: str
    format: str
    records_read: int = 0
    records_canonical: int = 0
    records_quarantined: int = 0
    events_canonical: int = 0
    quarantined_by_rule: dict[str, int] = field(default_factory=dict)
    warnings_by_rule: dict[str, int] = field(default_factory=dict)
    paths: dict[str, str | None] = field(default_factory=dict)
    segments: list[dict[str, Any]] = field(default_factory=list)
    invalid_stretches: list[dict[str, Any]] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    instruments: list[dict[str, Any]] = field(default_factory=list)
    decoder_counts: dict[str, Any] = field(default_factory=dict)
    bytes_read: int = 0
    seconds: float = 0.0
    stopped_after: str = "promote"

    @property
    def mb_per_second(self) -> float:
        return self.bytes_read / 1e6 / self.seconds if self.seconds > 0 else 0.0

    @property
    def dataset(self) -> str | None:
        return self.paths.get("canonical")

    def verdict(self) -> str:
        if self.stopped_after in ("raw", "normalize"):
            return "not validated"
        if self.records_quarantined == 0:
            return "pass"
        return "fail" if self.records_canonical == 0 else "partial"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "import_id": self.import_id, "format": self.format,
            "verdict": self.verdict(), "stopped_after": self.stopped_after,
            "records_read": self.records_read, "records_canonical": self.records_canonical,
            "records_quarantined": self.records_quarantined, "events_canonical": self.events_canonical,
            "quarantined_by_rule": self.quarantined_by_rule, "warnings_by_rule": self.warnings_by_rule,
            "paths": self.paths, "segments": self.segments, "invalid_stretches": self.invalid_stretches,
            "quarantine_entries": self.entries, "inputs": self.inputs, "instruments": self.instruments,
            "decoder_counts": self.decoder_counts, "bytes_read": self.bytes_read,
            "seconds": self.seconds, "mb_per_second": self.mb_per_second,
        }

    def describe(self) -> str:
        lines = [
            f"{'validate' if self.stopped_after == 'validate' else 'import':<12} {self.name} ({self.format}), "
            f"id {self.import_id}: {self.verdict()}",
            f"records      {self.records_read:,} read = {self.records_canonical:,} canonical + "
            f"{self.records_quarantined:,} quarantined",
            f"input        {self.bytes_read / 1e6:,.1f} MB in {self.seconds:.2f} s ({self.mb_per_second:,.0f} MB/s)",
        ]
        for rule, n in sorted(self.quarantined_by_rule.items()):
            lines.append(f"quarantined  {rule}: {n:,}")
        for rule, n in sorted(self.warnings_by_rule.items()):
            lines.append(f"warning      {rule}: {n:,} record(s) kept")
        for e in self.entries[:10]:
            lines.append(f"  {e['rule']}: {e['records']:,} record(s) from {_where(e['first'])}: {e['reason']}")
        if len(self.entries) > 10:
            lines.append(f"  ... {len(self.entries) - 10} more quarantine entries")
        for s in self.invalid_stretches[:10]:
            until = f"row {s['to_row']:,}" if s["to_row"] is not None else "the end"
            lines.append(f"invalid book {s['symbol']} from row {s['from_row']:,} to {until} ({s['rule']})")
        if len(self.segments) > 1:
            lines.append(f"segments     {len(self.segments)} (cut where a book became invalid)")
        for key, path in self.paths.items():
            if path:
                lines.append(f"{key:<12} {path}")
        return "\n".join(lines)


def _where(pos: Mapping[str, Any]) -> str:
    path = os.path.basename(str(pos.get("file", "?")))
    if pos.get("line"):
        return f"{path}:{pos['line']}"
    return f"{path}@{pos.get('offset')}"


# ---------------------------------------------------------------------------------------------
# Steps


def _import_id(paths: Sequence[str]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(os.path.basename(p).encode() + b"\0")
        with open(p, "rb") as f:
            while chunk := f.read(1 << 22):
                h.update(chunk)
        h.update(b"\1")
    return h.hexdigest()[:16]


def _copy_raw(paths: Sequence[str], target: Location) -> list[dict[str, Any]]:
    """Byte-for-byte copies of the inputs under `target` (kept if already there)."""
    import shutil

    target.mkdir()
    local = isinstance(target.fs, pa.fs.LocalFileSystem)
    out = []
    for i, p in enumerate(paths):
        dest = target.join(f"{i:03d}-{os.path.basename(p)}")
        size = os.path.getsize(p)
        info = dest.fs.get_file_info(dest.path)
        if info.type == pa.fs.FileType.NotFound or info.size != size:
            if local:
                shutil.copyfile(p, dest.path)  # the kernel copies; no bytes through Python
            else:
                with open(p, "rb") as src, dest.fs.open_output_stream(dest.path) as sink:
                    while chunk := src.read(1 << 22):
                        sink.write(chunk)
        out.append({"source": os.path.abspath(p), "raw": dest.uri, "bytes": size})
    return out


def _existing_raw(root: Location, import_id: str) -> str | None:
    """The name an earlier import of the same bytes (same import id) stored its raw copy under."""
    for name in root.join("raw").list_dirs():
        if root.join("raw", name, import_id).is_dir():
            return name
    return None


class _WriteBehind:
    """Runs write jobs in order on one thread, at most `depth` behind the caller: Parquet encoding
    releases the GIL, so writing a chunk overlaps with decoding and validating the next one, and
    memory stays bounded by `depth` chunks. A job's error surfaces at the next submit or at close."""

    def __init__(self, depth: int = 3) -> None:
        import queue
        import threading

        self._jobs: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="lockstep-write-behind", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            if self._error is None:
                try:
                    job()
                except BaseException as e:  # handed to the caller
                    self._error = e

    def submit(self, job: Any) -> None:
        self._raise()
        self._jobs.put(job)

    def close(self) -> None:
        """Waits for every job; raises the first error."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error


_NORMALIZED_RECORD_SCHEMA = pa.schema([
    ("record", pa.int64()), ("file", pa.int32()), ("line", pa.int64()), ("offset", pa.int64()),
    ("length", pa.int64()), ("problem", pa.uint8()), ("reason", pa.string()),
])


class _NormalizedWriter:
    """normalized/<name>/<id>/: events.parquet (canonical columns + record) and records.parquet."""

    def __init__(self, loc: Location) -> None:
        from lockstep.events import SCHEMA

        loc.mkdir()
        self.loc = loc
        self._events_schema = SCHEMA.append(pa.field("record", pa.int64(), nullable=False))
        self._ev = pq.ParquetWriter(loc.fs.open_output_stream(loc.join("events.parquet").path),
                                    self._events_schema, compression="lz4")
        self._rec = pq.ParquetWriter(loc.fs.open_output_stream(loc.join("records.parquet").path),
                                     _NORMALIZED_RECORD_SCHEMA, compression="lz4")

    def write(self, chunk: NormalizedChunk) -> None:
        n, m = chunk.n_events, chunk.n_records
        if n:
            arrays = [pa.array(chunk.events[name][:n]) for name in COLUMN_NAMES]
            arrays.append(pa.array(chunk.event_record[:n], pa.int64()))
            self._ev.write_batch(pa.RecordBatch.from_arrays(arrays, schema=self._events_schema))
        reasons = [None] * m
        for rec, why in chunk.problem_reasons.items():
            if 0 <= rec - chunk.first_record < m:
                reasons[rec - chunk.first_record] = why
        self._rec.write_batch(pa.RecordBatch.from_arrays([
            pa.array(np.arange(chunk.first_record, chunk.first_record + m, dtype=np.int64)),
            pa.array(chunk.rec_file[:m], pa.int32()), pa.array(chunk.rec_line[:m], pa.int64()),
            pa.array(chunk.rec_offset[:m], pa.int64()), pa.array(chunk.rec_length[:m], pa.int64()),
            pa.array(chunk.rec_problem[:m], pa.uint8()), pa.array(reasons, pa.string()),
        ], schema=_NORMALIZED_RECORD_SCHEMA))

    def finish(self) -> None:
        if self._ev is not None:
            self._ev.close()
            self._rec.close()
            self._ev = self._rec = None

    def close(self, meta: Mapping[str, Any]) -> None:
        self.finish()
        self.loc.join("normalized.json").write_bytes((json.dumps(meta, indent=2, default=str) + "\n").encode())


def read_normalized(loc: Location, chunk_records: int = 1 << 16) -> Iterator[NormalizedChunk]:
    """The chunks a normalized directory holds, in order, `chunk_records` records at a time."""
    rec_file = pq.ParquetFile(loc.fs.open_input_file(loc.join("records.parquet").path))
    ev_file = pq.ParquetFile(loc.fs.open_input_file(loc.join("events.parquet").path))
    ev_batches = ev_file.iter_batches(batch_size=1 << 16)
    pending: list[pa.RecordBatch] = []
    exhausted = False
    for rb in rec_file.iter_batches(batch_size=chunk_records):
        record = rb.column("record").to_numpy()
        last = int(record[-1])
        # Pull event batches until one goes past this chunk's last record.
        while not exhausted and (not pending or int(pending[-1].column("record")[-1].as_py()) <= last):
            try:
                b = next(ev_batches)
            except StopIteration:
                exhausted = True
                break
            pending.append(b)
        table = pa.Table.from_batches(pending, schema=ev_file.schema_arrow) if pending else None
        if table is not None and table.num_rows:
            er = table.column("record").to_numpy()
            take = int(np.searchsorted(er, last, side="right"))
            head, tail = table.slice(0, take), table.slice(take)
            pending = tail.combine_chunks().to_batches() if tail.num_rows else []
        else:
            head = pa.Table.from_batches([], schema=ev_file.schema_arrow)
        reasons_col = rb.column("reason")
        reasons = {}
        if reasons_col.null_count < rb.num_rows:
            for i, why in enumerate(reasons_col.to_pylist()):
                if why is not None:
                    reasons[int(record[i])] = why
        head = head.combine_chunks()
        yield NormalizedChunk(
            events=to_columns(head), n_events=head.num_rows,
            event_record=head.column("record").to_numpy(),
            first_record=int(record[0]), n_records=rb.num_rows,
            rec_file=rb.column("file").to_numpy(), rec_line=rb.column("line").to_numpy(),
            rec_offset=rb.column("offset").to_numpy(), rec_length=rb.column("length").to_numpy(),
            rec_problem=rb.column("problem").to_numpy(), problem_reasons=reasons,
        )


_QUARANTINE_INDEX_SCHEMA = pa.schema([
    ("record", pa.int64()), ("file", pa.int32()), ("line", pa.int64()), ("offset", pa.int64()),
    ("length", pa.int64()), ("rule", pa.string()), ("cause", pa.int64()), ("instrument", pa.uint32()),
    ("detail_a", pa.int64()), ("detail_b", pa.int64()), ("reason", pa.string()),
])
_QUARANTINE_RECORD_SCHEMA = _QUARANTINE_INDEX_SCHEMA.append(pa.field("raw", pa.binary()))


class _Quarantine:
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
        names = [Rule(r).label for r in rule[rows]]
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
                if len(entry["positions"]) < _POSITIONS_KEPT:
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
        try:
            for batch in index.iter_batches(batch_size=1 << 14):
                files = batch.column("file").to_numpy()
                offsets = batch.column("offset").to_numpy()
                lengths = batch.column("length").to_numpy()
                raw = []
                for f, off, ln in zip(files.tolist(), offsets.tolist(), lengths.tolist()):
                    if f not in readers:
                        readers[f] = open_source(sources[f])
                        positions[f] = 0
                    reader = readers[f]
                    skip = off - positions[f]
                    if skip < 0:  # records out of order in a file: reopen and read forward
                        reader.close()
                        reader = readers[f] = open_source(sources[f])
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
    if rule == "sequence_gap":
        return f"{symbol}: sequence expected {a}, found {b}; book invalid until a snapshot"
    if rule == "crossed_book":
        return f"{symbol}: book crossed after the message (best bid {a} >= best ask {b}, in ticks)"
    if rule == "feed_latency":
        return (f"{symbol}: feed latency {a} ns outside [{cfg.min_feed_latency_ns}, "
                f"{cfg.max_feed_latency_ns}] ns")
    if rule == "ts_recv_backwards":
        return f"{symbol}: ts_recv {b} is before the previous promoted {a}"
    if rule == "bad_price_qty":
        return f"{symbol}: price {a} qty {b} (in increments) not allowed for this event"
    if rule == "unknown_order_ref":
        return f"{symbol}: order {a} is not in the book (or added twice)"
    if rule == "deltas_before_snapshot":
        return f"{symbol}: book delta before any snapshot of the book"
    return RULE_MEANING.get(rule, rule)


class _Promoter:
    """Canonical side of promotion: kept events plus GAP markers; segments and invalid stretches."""

    def __init__(self, name: str, data: str | None, behind: _WriteBehind) -> None:
        self.writer = DatasetWriter(name, None, data=data)
        self.behind = behind
        self.promoted_events = 0  # events of promoted records (GAP markers not counted)
        self.rows = 0
        self.segments: list[dict[str, Any]] = []
        self.invalid: dict[int, dict[str, Any]] = {}
        self.stretches: list[dict[str, Any]] = []
        self._segment: dict[str, Any] | None = None

    def _open_segment(self, first_record: int, row: int) -> None:
        self._segment = {"index": len(self.segments), "first_row": row, "rows": 0,
                         "first_record": first_record, "ts_recv": [None, None]}
        self.segments.append(self._segment)

    def add(self, chunk: NormalizedChunk, keep: np.ndarray, markers: list[dict[str, Any]],
            symbols: Sequence[str]) -> None:
        n = chunk.n_events
        kept = np.flatnonzero(keep[:n])
        self.promoted_events += int(kept.size)
        if kept.size == n:  # the common case: the whole chunk is promoted
            cols = {name: chunk.events[name][:n] for name in COLUMN_NAMES}
        else:
            cols = {name: chunk.events[name][:n][kept] for name in COLUMN_NAMES}
        if markers:
            where = np.searchsorted(kept, [m["before_event"] for m in markers])
            values = {
                "ts_event": [m["ts_event"] for m in markers], "ts_recv": [m["ts_recv"] for m in markers],
                "seq": [m["seq"] for m in markers], "instrument": [m["instrument"] for m in markers],
                "kind": [int(EventKind.GAP)] * len(markers), "side": [0] * len(markers),
                "flags": [int(Flag.LAST)] * len(markers), "price": [0] * len(markers),
                "qty": [0] * len(markers), "order_id": [m["order_id"] for m in markers],
            }
            cols = {name: np.insert(cols[name], where, np.asarray(values[name], dtype=dtype))
                    for name, dtype in COLUMNS}
            # Rows of the markers in the output, to cut segments and open invalid stretches.
            marker_rows = self.rows + where + np.arange(len(markers))
        else:
            marker_rows = np.empty(0, np.int64)
        total = len(cols["ts_event"])
        # Walk the chunk's output in row order: markers cut segments and open invalid stretches,
        # a BOOK_CLEAR of an instrument with an open stretch closes it.
        items = [(int(r) - self.rows, 0, k) for k, r in enumerate(marker_rows)]
        if self.invalid or markers:
            clears = np.flatnonzero(cols["kind"][:total] == int(EventKind.BOOK_CLEAR))
            items += [(int(r), 1, int(cols["instrument"][r])) for r in clears]
        items.sort()
        start = 0
        for row, what, payload in items:
            if what == 1:
                stretch = self.invalid.pop(payload, None)
                if stretch is not None:
                    stretch["to_row"] = self.rows + row
                    stretch["to_ts_recv"] = int(cols["ts_recv"][row])
                continue
            if row > start:
                self._extend_segment(cols["ts_recv"][start:row], chunk.first_record, self.rows + start)
                start = row
            m = markers[payload]
            if self._segment is None or self._segment["rows"] > 0:
                self._open_segment(m["record"], self.rows + row)
            inst = m["instrument"]
            self.invalid[inst] = {
                "symbol": symbols[inst] if inst < len(symbols) else f"#{inst}",
                "instrument": inst, "rule": m["rule"], "cause_record": m["record"],
                "from_row": self.rows + row, "from_ts_recv": m["ts_recv"], "to_row": None, "to_ts_recv": None}
            self.stretches.append(self.invalid[inst])
        if total > start:
            self._extend_segment(cols["ts_recv"][start:total], chunk.first_record, self.rows + start)
        self.behind.submit(lambda: self.writer.write(cols, total))
        self.rows += total

    def _extend_segment(self, ts: np.ndarray, first_record: int, row: int) -> None:
        if self._segment is None:
            self._open_segment(first_record, row)
        seg = self._segment
        assert seg is not None
        seg["rows"] += len(ts)
        if seg["ts_recv"][0] is None:
            seg["ts_recv"][0] = int(ts[0])
        seg["ts_recv"][1] = int(ts[-1])


def import_data(
    format: str,
    sources: Sequence[str | os.PathLike[str]],
    *,
    data: str | None = None,
    name: str | None = None,
    stop_after: str = "promote",
    validation: ValidationConfig | None = None,
    options: Mapping[str, Any] | None = None,
    run: Any = None,
) -> ImportResult:
    """Runs the data path on SOURCES (one stream, in order) of FORMAT; see the module docstring.

    `run` replaces the format's decoder with a DecodeRun over the same sources (tests, and
    formats decoded elsewhere)."""
    start = time.perf_counter()
    if format not in FORMATS:
        raise PipelineError(f"unknown format {format!r}; formats are {', '.join(FORMATS)}")
    if stop_after not in STEPS:
        raise PipelineError(f"unknown step {stop_after!r}; steps are {', '.join(STEPS)}")
    paths = [os.fspath(s) for s in sources]
    for p in paths:
        if not os.path.isfile(p):
            raise PipelineError(f"{p}: no such file")
    cfg = validation or ValidationConfig()
    options = dict(options or {})
    import_id = _import_id(paths)
    root = ensure_layout(data)
    if run is None:
        run = decode(format, paths, options)
    # Without a name, the instruments name the import, known once decoded: until then the
    # areas sit under a provisional name and are moved at the end.
    provisional = name or f"import-{import_id}"
    # The same bytes were imported before: their raw copy is reused, not copied again.
    raw_loc = root.join("raw", name or _existing_raw(root, import_id) or provisional, import_id)
    inputs = _copy_raw(paths, raw_loc)
    result = ImportResult(name=provisional, import_id=import_id, format=format, stopped_after=stop_after,
                          inputs=inputs)
    result.paths["raw"] = raw_loc.uri
    if stop_after == "raw":
        result.seconds = time.perf_counter() - start
        return result
    norm = _NormalizedWriter(root.join("normalized", provisional, import_id))
    try:
        _run_chunks(iter(run), run, result, cfg, root, provisional, import_id, data, paths,
                    normalized=norm, stop_after=stop_after, rename=name is None)
    except BaseException:
        norm.close({"complete": False})
        raise
    result.seconds = time.perf_counter() - start
    return result


def default_name(instruments: Sequence[Instrument], format: str) -> str:
    """<venue>-<symbol>[_<symbol>...] (up to three symbols), else <venue>-<first>-and-<k>."""
    venue = instruments[0].venue if instruments else format
    symbols = sorted({i.symbol.lower() for i in instruments}) or ["empty"]
    label = "_".join(symbols) if len(symbols) <= 3 else f"{symbols[0]}-and-{len(symbols) - 1}"
    return re.sub(r"[^A-Za-z0-9._-]", "_", f"{venue}-{label}").lower()


def _move_area(root: Location, area: str, old: str, new: str, import_id: str) -> Location | None:
    src = root.join(area, old, import_id)
    if not src.exists():
        return None
    dst = root.join(area, new, import_id)
    if dst.exists():
        dst.fs.delete_dir(dst.path)  # the same bytes imported again: the newer copy wins
    root.join(area, new).mkdir()
    src.fs.move(src.path, dst.path)
    parent = root.join(area, old)
    try:
        if not parent.fs.get_file_info(pa.fs.FileSelector(parent.path)):
            parent.fs.delete_dir(parent.path)
    except OSError:
        pass
    return dst


def _run_chunks(chunks: Iterator[NormalizedChunk], run: Any, result: ImportResult, cfg: ValidationConfig,
                root: Location, name: str, import_id: str, data: str | None, sources: Sequence[str],
                *, normalized: _NormalizedWriter | None, stop_after: str,
                instruments: Sequence[Instrument] | None = None, rename: bool = False) -> None:

    validator = None
    behind = _WriteBehind()
    quarantine = _Quarantine(root.join("quarantine", name, import_id), result.inputs,
                             write=stop_after == "promote")
    promoter = _Promoter(name, data, behind) if stop_after == "promote" else None
    requires_snapshot = bool(getattr(run, "requires_snapshot", False))
    default_book = "l3" if result.format == "itch" else "l2"
    warned: dict[str, int] = {}
    warn_first: dict[str, list[dict[str, Any]]] = {}
    first_offset: dict[int, int] = {}  # per input: where its first record starts (after a header)
    try:
        for chunk in chunks:
            result.records_read += chunk.n_records
            if chunk.n_records:
                files, at = np.unique(chunk.rec_file[: chunk.n_records], return_index=True)
                for f, i in zip(files.tolist(), at.tolist()):
                    first_offset.setdefault(f, int(chunk.rec_offset[i]))
            if normalized is not None:
                behind.submit(lambda c=chunk: normalized.write(c))
            if stop_after == "normalize":
                continue
            table = list(instruments) if instruments is not None else _table_so_far(run)
            need = max(len(table), int(chunk.events["instrument"][: chunk.n_events].max()) + 1
                       if chunk.n_events else 0)
            if validator is None:
                validator = _ValidatorGrowing(cfg, requires_snapshot)
            validator.grow(need, table, default_book)
            verdicts, keep, markers = validator.check(chunk)
            rule = verdicts["rule"][: chunk.n_records]
            q = int(np.count_nonzero(rule))
            result.records_quarantined += q
            result.records_canonical += chunk.n_records - q
            for r, c in zip(*np.unique(rule[rule > 0], return_counts=True)):
                label = Rule(r).label
                result.quarantined_by_rule[label] = result.quarantined_by_rule.get(label, 0) + int(c)
            warn = verdicts["warn"][: chunk.n_records]
            for r in np.unique(warn[warn > 0]):
                rows = np.flatnonzero(warn == r)
                label = Rule(r).label
                warned[label] = warned.get(label, 0) + int(rows.size)
                firsts = warn_first.setdefault(label, [])
                for k in rows[: max(0, _POSITIONS_KEPT - len(firsts))]:
                    firsts.append({"record": chunk.first_record + int(k), "file": int(chunk.rec_file[k]),
                                   "line": int(chunk.rec_line[k]) or None, "offset": int(chunk.rec_offset[k]),
                                   "detail": [int(verdicts["detail_a"][k]), int(verdicts["detail_b"][k])]})
            symbols = [i.symbol for i in table]
            if q:
                quarantine.add(chunk, verdicts, symbols, cfg)
            if promoter is not None:
                promoter.add(chunk, keep, markers, symbols)
        behind.close()
    except BaseException:
        try:
            behind.close()
        except BaseException:
            pass  # the first error is the one to report
        if promoter is not None:
            promoter.writer.abort()
        raise
    table = list(instruments) if instruments is not None else _table_so_far(run)
    result.instruments = [_instrument_dict(i) for i in table]
    result.decoder_counts = _jsonable(getattr(run, "counts", {}))
    result.bytes_read = sum(getattr(i, "bytes_read", 0) for i in getattr(run, "inputs", [])) or \
        sum(i["bytes"] for i in result.inputs)
    result.warnings_by_rule = warned
    if rename:
        name = _settle_name(root, name, default_name(table, result.format), import_id, result, normalized,
                            quarantine)
    meta_common = {"name": name, "import_id": import_id, "format": result.format, "inputs": result.inputs,
                   "instruments": result.instruments, "validation": cfg.to_dict(),
                   "requires_snapshot": requires_snapshot}
    if normalized is not None:
        normalized.close({**meta_common, "complete": True, "records": result.records_read,
                          "decoder_counts": result.decoder_counts})
        result.paths["normalized"] = normalized.loc.uri
    if stop_after == "normalize":
        return
    symbols = [i.symbol for i in table]
    result.entries = quarantine.entry_list(symbols)
    report = {
        "verdict": None, "records_read": result.records_read, "records_canonical": result.records_canonical,
        "records_quarantined": result.records_quarantined, "quarantined_by_rule": result.quarantined_by_rule,
        "warnings_by_rule": warned, "warnings_first": warn_first, "validation": cfg.to_dict(),
    }
    if stop_after == "validate":
        result.paths["quarantine"] = None
        return
    assert promoter is not None
    for stretch in promoter.stretches:  # names the decoder learned after the stretch began
        if stretch["instrument"] < len(symbols):
            stretch["symbol"] = symbols[stretch["instrument"]]
    result.segments = promoter.segments
    result.invalid_stretches = promoter.stretches
    report["verdict"] = result.verdict()
    report["segments"] = promoter.segments
    report["invalid_stretches"] = promoter.stretches
    qpath = quarantine.close(sources, {**meta_common, "report": report,
                                       "headers": _headers(sources, first_offset)}, symbols)
    result.paths["quarantine"] = qpath
    report["quarantine"] = qpath
    report["quarantine_entries"] = [{k: v for k, v in e.items() if k != "positions"} for e in result.entries]
    if promoter.promoted_events == 0:  # nothing to back-test: no dataset of markers alone
        promoter.writer.abort()
        result.paths["canonical"] = None
        return
    source = {**meta_common, "importer": result.format, "decoder_counts": result.decoder_counts,
              "validation_report": report, "raw": result.paths.get("raw"),
              "normalized": result.paths.get("normalized")}
    ds: Dataset = promoter.writer.close(name=name, instruments=table or [Instrument("unknown", "unknown", "1", "1")],
                                        source=source)
    result.events_canonical = ds.rows
    result.paths["canonical"] = ds.path


def _settle_name(root: Location, old: str, new: str, import_id: str, result: ImportResult,
                 normalized: _NormalizedWriter | None, quarantine: _Quarantine) -> str:
    """Moves raw, normalized and quarantine from the provisional name to the final one."""
    if normalized is not None:
        normalized.finish()
    quarantine.finish_index()
    raw = _move_area(root, "raw", old, new, import_id)
    if raw is not None:
        result.paths["raw"] = raw.uri
        for i, entry in enumerate(result.inputs):
            entry["raw"] = raw.join(os.path.basename(entry["raw"])).uri
    moved = _move_area(root, "normalized", old, new, import_id)
    if moved is not None and normalized is not None:
        normalized.loc = moved
    moved = _move_area(root, "quarantine", old, new, import_id)
    quarantine.loc = moved or root.join("quarantine", new, import_id)
    result.name = new
    return new


def _headers(sources: Sequence[str], first_offset: Mapping[int, int]) -> dict[str, str]:
    """Per input, the bytes before its first record (a CSV header, DBN metadata) as hex, so that
    quarantined records can be decoded again on their own."""
    out = {}
    for f, off in first_offset.items():
        if 0 < off <= (1 << 22) and f < len(sources):
            with open_source(sources[f]) as reader:
                out[str(f)] = reader.read(off).hex()
    return out


def _table_so_far(run: Any) -> list[Instrument]:
    """The instruments a run knows so far (decoders learn them as they go; some say so by
    raising until they have seen the data)."""
    try:
        return list(run.instruments)
    except LockstepError:
        return []


def _instrument_dict(i: Instrument) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(i)


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


class _ValidatorGrowing:
    """The compiled validator, rebuilt with more instruments when a decoder learns new ones
    mid-stream (only before any event of the new instruments was judged, which is when they
    appear)."""

    def __init__(self, cfg: ValidationConfig, requires_snapshot: bool) -> None:
        self.cfg = cfg
        self.requires_snapshot = requires_snapshot
        self.core = None
        self.size = 0

    def grow(self, need: int, table: Sequence[Instrument], default_book: str) -> None:
        if self.core is not None and need <= self.size:
            return
        from lockstep._bindings.validate import Validator

        books = [table[i].book if i < len(table) else default_book for i in range(max(need, 1))]
        if self.core is None:
            self.core = Validator(books, [self.requires_snapshot and b == "l2" for b in books],
                                  dict(self.cfg.actions), self.cfg.min_feed_latency_ns,
                                  self.cfg.max_feed_latency_ns)
        else:
            self.core.add_instruments(books[self.size:], [self.requires_snapshot and b == "l2"
                                                           for b in books[self.size:]])
        self.size = len(books)

    def check(self, chunk: NormalizedChunk):
        assert self.core is not None
        return self.core.check(chunk)


# ---------------------------------------------------------------------------------------------
# validate and promote alone


def _kind_of_source(loc: Location) -> str:
    if loc.join("normalized.json").exists():
        return "normalized"
    if loc.join("quarantine.json").exists():
        return "quarantine"
    if loc.join("manifest.json").exists():
        return "canonical"
    raise PipelineError(f"{loc.uri}: not a normalized import, a quarantine entry or a canonical dataset")


def resolve_source(src: str, data: str | None = None) -> Location:
    """A path/URI, or a name under the root: canonical/<name>[/vK], normalized/<name>[/<id>],
    quarantine/<name>[/<id>] (the newest when the id or version is left out)."""
    loc = locate(src)
    if loc.exists():
        return loc
    root = root_location(data)
    for area in ("canonical", "normalized", "quarantine"):
        base = root.join(area, *src.split("/"))
        if base.is_dir():
            if area == "canonical":
                if base.join("manifest.json").exists():
                    return base
                versions = [d for d in base.list_dirs() if re.fullmatch(r"v\d+", d)]
                if versions:
                    return base.join(max(versions, key=lambda v: int(v[1:])))
            else:
                if base.join(f"{area}.json").exists():
                    return base
                ids = base.list_dirs()
                if ids:
                    newest = max(ids, key=lambda d: base.join(d).fs.get_file_info(base.join(d).path).mtime_ns or 0)
                    return base.join(newest)
    raise PipelineError(f"{src}: no such file, dataset, normalized import or quarantine entry under {root.uri}")


def _chunks_from_canonical(ds: Dataset) -> Iterator[NormalizedChunk]:
    """A canonical dataset as chunks whose records are its venue messages (LAST ends one)."""
    first_record = 0
    for cols in ds.iter_columns():
        n = len(cols["ts_event"])
        last = (cols["flags"] & int(Flag.LAST)) != 0
        ends = np.cumsum(last)
        record = first_record + ends - last  # a message's events share the count of LASTs before it
        m = int(ends[-1]) if n else 0
        if n and not last[-1]:
            m += 1  # an unterminated trailing message is a record of its own
        yield NormalizedChunk(
            events={k: np.ascontiguousarray(v) for k, v in cols.items()}, n_events=n,
            event_record=record.astype(np.int64), first_record=first_record, n_records=m,
            rec_file=np.zeros(m, np.int32), rec_line=np.zeros(m, np.int64),
            rec_offset=np.zeros(m, np.int64), rec_length=np.zeros(m, np.int64),
            rec_problem=np.zeros(m, np.uint8))
        first_record += m


class _StoredRun:
    """The DecodeRun interface over stored chunks (normalized import or canonical dataset)."""

    def __init__(self, chunks: Iterator[NormalizedChunk], fmt: str, instruments: Sequence[Instrument],
                 requires_snapshot: bool, counts: Mapping[str, Any] | None = None) -> None:
        self._chunks = chunks
        self.format = fmt
        self.instruments = list(instruments)
        self.requires_snapshot = requires_snapshot
        self.inputs: list[Any] = []
        self.counts = dict(counts or {})

    def __iter__(self) -> Iterator[NormalizedChunk]:
        return self._chunks


def validate_source(src: str, *, data: str | None = None, validation: ValidationConfig | None = None,
                    options: Mapping[str, Any] | None = None) -> ImportResult:
    """The validation step alone on a normalized import, a canonical dataset or a quarantine
    entry (whose raw records are decoded again): verdicts only, nothing written."""
    return _step_on_source(src, data=data, validation=validation, options=options, stop_after="validate")


def promote_source(src: str, *, data: str | None = None, validation: ValidationConfig | None = None,
                   options: Mapping[str, Any] | None = None, name: str | None = None,
                   run_factory: Any = None) -> ImportResult:
    """Validation and promotion of a normalized import, or of a quarantine entry's raw records
    decoded again (after a fix: new increments, other rule actions, edited records).
    `run_factory(paths)` replaces the format's decoder for the latter (see import_data's `run`)."""
    return _step_on_source(src, data=data, validation=validation, options=options, stop_after="promote",
                           name=name, run_factory=run_factory)


def _step_on_source(src: str, *, data: str | None, validation: ValidationConfig | None,
                    options: Mapping[str, Any] | None, stop_after: str, name: str | None = None,
                    run_factory: Any = None) -> ImportResult:
    start = time.perf_counter()
    loc = resolve_source(src, data)
    kind = _kind_of_source(loc)
    root = root_location(data)
    if kind == "quarantine":
        return _from_quarantine(loc, data=data, validation=validation, options=options, stop_after=stop_after,
                                name=name, run_factory=run_factory)
    if kind == "canonical":
        if stop_after != "validate":
            raise PipelineError(f"{loc.uri} is already canonical; promote a normalized import or a quarantine entry")
        ds = Dataset.open(loc.uri)
        if validation is None:
            # The GAP markers promotion wrote are accounted losses, not news: judged as warnings.
            stored = ds.manifest.get("source", {}).get("validation_report", {}).get("validation", {})
            actions = {**stored.get("actions", {}), "sequence_gap": "warn"}
            cfg = ValidationConfig.from_dict({**stored, "actions": actions})
        else:
            cfg = validation
        run = _StoredRun(_chunks_from_canonical(ds), ds.manifest.get("source", {}).get("format", "canonical"),
                         ds.instruments, False)
        result = ImportResult(name=ds.name, import_id=f"v{ds.manifest['version']}", format=run.format,
                              stopped_after="validate")
        _run_chunks(iter(run), run, result, cfg, root, ds.name, result.import_id, data, [],
                    normalized=None, stop_after="validate", instruments=ds.instruments)
        result.paths["canonical"] = ds.path
        result.seconds = time.perf_counter() - start
        return result
    meta = json.loads(loc.join("normalized.json").read_bytes())
    if not meta.get("complete", False):
        raise PipelineError(f"{loc.uri}: the normalized import did not complete; import again")
    cfg = validation or ValidationConfig.from_dict(meta.get("validation", {}))
    instruments = [Instrument.from_dict(i) for i in meta.get("instruments", [])]
    run = _StoredRun(read_normalized(loc), meta["format"], instruments, bool(meta.get("requires_snapshot")),
                     meta.get("decoder_counts"))
    nm = name or meta["name"]
    result = ImportResult(name=nm, import_id=meta["import_id"], format=meta["format"], stopped_after=stop_after,
                          inputs=meta.get("inputs", []))
    sources = [i["raw"] for i in result.inputs]
    _run_chunks(iter(run), run, result, cfg, root, nm, meta["import_id"], data, sources, normalized=None,
                stop_after=stop_after, instruments=instruments)
    result.paths["normalized"] = loc.uri
    result.seconds = time.perf_counter() - start
    return result


def _from_quarantine(loc: Location, *, data: str | None, validation: ValidationConfig | None,
                     options: Mapping[str, Any] | None, stop_after: str, name: str | None,
                     run_factory: Any = None) -> ImportResult:
    import contextlib
    import tempfile

    meta = json.loads(loc.join("quarantine.json").read_bytes())
    table = pq.read_table(loc.join("records.parquet").path, filesystem=loc.fs)
    files = table.column("file").to_numpy()
    raw = table.column("raw").to_pylist()
    binary = meta["format"] in ("itch", "dbn")
    headers = meta.get("headers", {})
    root = root_location(data)
    if stop_after == "promote" and isinstance(root.fs, pa.fs.LocalFileSystem):
        # Kept under derived/ so the positions the new import reports name files that exist.
        kept = root.join("derived", "requeued", meta["name"], meta["import_id"])
        kept.mkdir()
        place = contextlib.nullcontext(kept.path)
    else:  # validation writes nothing; a remote root cannot be read as local files
        place = tempfile.TemporaryDirectory(prefix="lockstep-requeue-")
    with place as where:
        paths = []
        for f in sorted(set(files.tolist())):
            rows = [raw[i] for i in np.flatnonzero(files == f)]
            body = b"".join(rows) if binary else b"".join(r + b"\n" for r in rows)
            header = bytes.fromhex(headers.get(str(f), ""))
            src = meta["inputs"][f]["source"] if f < len(meta["inputs"]) else f"input{f}"
            # The bytes here are plain: a compression suffix would mislead.
            base = re.sub(r"\.(gz|zst|zip)$", "", os.path.basename(src))
            path = os.path.join(where, f"{f:03d}-requeued-{base}")
            with open(path, "wb") as out:
                out.write(header + body)
            paths.append(path)
        cfg = validation or ValidationConfig.from_dict(meta.get("validation", {}))
        result = import_data(meta["format"], paths, data=data, name=name or meta["name"], stop_after=stop_after,
                             validation=cfg, options=options,
                             run=run_factory(paths) if run_factory is not None else None)
    result.paths["requeued_from"] = loc.uri
    return result


# ---------------------------------------------------------------------------------------------
# ls and show


def _verdict_of(manifest: Mapping[str, Any]) -> str:
    report = manifest.get("source", {}).get("validation_report")
    if report is None:
        return "unvalidated"  # generated (synthetic) or written before the data platform
    return str(report.get("verdict") or "unknown")


def list_storage(data: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """Canonical datasets and quarantine entries under the root."""
    from lockstep.data.dataset import list_datasets

    canonical = [
        {"dataset": d.path, "name": d.name, "version": d.manifest["version"], "events": d.rows,
         "instruments": [i.symbol for i in d.instruments], "verdict": _verdict_of(d.manifest)}
        for d in list_datasets(data)
    ]
    quarantine = []
    qroot = root_location(data).join("quarantine")
    for name in qroot.list_dirs():
        for import_id in qroot.join(name).list_dirs():
            loc = qroot.join(name, import_id)
            if not loc.join("quarantine.json").exists():
                continue
            meta = json.loads(loc.join("quarantine.json").read_bytes())
            quarantine.append({"name": name, "import_id": import_id, "path": loc.uri,
                               "records": meta.get("records", 0),
                               "by_rule": meta.get("report", {}).get("quarantined_by_rule", {})})
    return {"canonical": canonical, "quarantine": quarantine}


def show_dataset(dataset: str, data: str | None = None) -> dict[str, Any]:
    """A dataset's schema, instruments, time range, counts and validation verdicts."""
    from lockstep.events import SCHEMA

    ds = Dataset.open(dataset, data=data)
    m = ds.manifest
    report = m.get("source", {}).get("validation_report") or {}
    return {
        "dataset": ds.path, "name": ds.name, "version": m["version"],
        "schema": [{"name": f.name, "type": str(f.type)} for f in SCHEMA],
        "schema_version": m.get("schema_version"),
        "instruments": m.get("instruments", []), "rows": m.get("rows"), "time_range": m.get("time_range"),
        "counts_by_kind": {_kind_name(k): v for k, v in m.get("counts_by_kind", {}).items()},
        "files": m.get("files", []),
        "verdict": _verdict_of(m),
        "validation": {k: report.get(k) for k in (
            "records_read", "records_canonical", "records_quarantined", "quarantined_by_rule",
            "warnings_by_rule", "segments", "invalid_stretches", "quarantine", "quarantine_entries",
            "validation")} if report else None,
        "source": {k: v for k, v in m.get("source", {}).items() if k != "validation_report"},
    }


def _kind_name(k: Any) -> str:
    try:
        return EventKind(int(k)).name
    except (ValueError, TypeError):
        return str(k)


def describe_dataset(info: Mapping[str, Any]) -> str:
    from datetime import datetime, timezone

    def ts(ns: int | None) -> str:
        if ns is None:
            return "-"
        return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f UTC")

    lines = [f"dataset      {info['name']}/v{info['version']}  {info['dataset']}",
             f"verdict      {info['verdict']}",
             f"rows         {info['rows']:,} in {len(info['files'])} file(s)"]
    tr = (info.get("time_range") or {}).get("ts_recv") or [None, None]
    lines.append(f"time range   {ts(tr[0])} .. {ts(tr[1])} (ts_recv)")
    lines.append("schema       " + ", ".join(f"{c['name']}:{c['type']}" for c in info["schema"]))
    for i in info["instruments"]:
        lines.append(f"instrument   {i['symbol']} on {i['venue']}: tick {i['price_increment']}, "
                     f"lot {i['size_increment']}, book {i.get('book', 'l2')}")
    lines.append("kinds        " + ", ".join(f"{k} {v:,}" for k, v in info["counts_by_kind"].items()))
    v = info.get("validation")
    if v:
        lines.append(f"records      {v['records_read']:,} read = {v['records_canonical']:,} canonical + "
                     f"{v['records_quarantined']:,} quarantined")
        for rule, n in sorted((v.get("quarantined_by_rule") or {}).items()):
            lines.append(f"quarantined  {rule}: {n:,}")
        for rule, n in sorted((v.get("warnings_by_rule") or {}).items()):
            lines.append(f"warning      {rule}: {n:,} record(s) kept")
        for s in v.get("invalid_stretches") or []:
            until = f"row {s['to_row']:,}" if s["to_row"] is not None else "the end"
            lines.append(f"invalid book {s['symbol']} from row {s['from_row']:,} to {until} ({s['rule']})")
        if v.get("quarantine"):
            lines.append(f"quarantine   {v['quarantine']}")
    return "\n".join(lines)
