"""Step 2, normalize: a format's decoder (from the registry, lockstep.data.importers.FORMATS) turns
the inputs into canonical events tied to their records, written to ROOT/normalized/<name>/<import id>/
and read back from there."""
from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lockstep.data.importers import FORMATS, Format
from lockstep.data.importers.normalized import DecodeRun, NormalizedChunk
from lockstep.data.pipeline.raw import CaptureDecodeRun, is_raw_capture
from lockstep.data.raw_capture import CaptureLines, read_header
from lockstep.data.storage import Location, naming_its_location
from lockstep.errors import PipelineError
from lockstep.events import COLUMN_NAMES, SCHEMA, to_columns


def format_named(format: str) -> Format:
    """The registered format called `format`; PipelineError naming the formats otherwise."""
    fmt = FORMATS.get(format)
    if fmt is None:
        raise PipelineError(f"unknown format {format!r}; formats are {', '.join(FORMATS)}")
    return fmt


def decode(format: str, paths: Sequence[str], settings: Mapping[str, Any]) -> DecodeRun:
    """The decode run of FORMAT over `paths` (one stream, in order) with its `settings`. Raw
    captures are read as lines with their damage marked (CaptureDecodeRun); a capture whose file
    header is not valid is refused here, before anything is decoded."""
    fmt = format_named(format)
    captures = [CaptureLines(p) if is_raw_capture(p) else None for p in paths]
    if not any(captures) or fmt.reads_capture_files:
        return fmt.decode(list(paths), settings)
    if not fmt.reads_raw_captures:
        readers = " or ".join(f.name for f in FORMATS.values() if f.reads_raw_captures)
        raise PipelineError(f"raw captures hold websocket text frames; import them as {readers}, not {format}")
    for capture in captures:
        if capture is not None:
            read_header(capture.path)
    # The decoder reads the captures' line streams as the file objects they are.
    inputs = [p if capture is None else capture.open() for p, capture in zip(paths, captures)]
    return CaptureDecodeRun(fmt.decode(inputs, settings), captures)


NORMALIZED_RECORD_SCHEMA = pa.schema([
    ("record", pa.int64()), ("file", pa.int32()), ("line", pa.int64()), ("offset", pa.int64()),
    ("length", pa.int64()), ("problem", pa.uint8()), ("reason", pa.string()),
])


class NormalizedWriter:
    """normalized/<name>/<id>/: events.parquet (canonical columns + record) and records.parquet."""

    def __init__(self, loc: Location) -> None:
        self.loc = loc
        self._ev = self._rec = None
        self._events_schema = SCHEMA.append(pa.field("record", pa.int64(), nullable=False))
        self._open()

    @naming_its_location
    def _open(self) -> None:
        loc = self.loc
        loc.mkdir()
        self._ev = pq.ParquetWriter(loc.fs.open_output_stream(loc.join("events.parquet").path),
                                    self._events_schema, compression="lz4")
        self._rec = pq.ParquetWriter(loc.fs.open_output_stream(loc.join("records.parquet").path),
                                     NORMALIZED_RECORD_SCHEMA, compression="lz4")

    @naming_its_location
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
        ], schema=NORMALIZED_RECORD_SCHEMA))

    @naming_its_location
    def finish(self) -> None:
        if self._ev is not None:
            self._ev.close()
            self._rec.close()
            self._ev = self._rec = None

    @naming_its_location
    def close(self, meta: Mapping[str, Any]) -> None:
        self.finish()
        self.loc.join("normalized.json").write_bytes((json.dumps(meta, indent=2, default=str) + "\n").encode())

    def abort(self) -> None:
        """Closes the files after a failure, quietly (on a full disk closing fails too); the
        caller removes the folder."""
        for writer in (self._ev, self._rec):
            try:
                if writer is not None:
                    writer.close()
            except OSError:
                pass
        self._ev = self._rec = None


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

