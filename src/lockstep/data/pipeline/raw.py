"""Step 1, raw: the inputs copied byte for byte under ROOT/raw/<name>/<import id>/, and read back
as the bytes a decoder sees (record positions refer to these); raw captures are read as lines, with
their damage marked."""
from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from lockstep.data.importers.normalized import DecodeRun, NormalizedChunk, open_decompressed
from lockstep.data.raw_capture import CaptureLines, is_capture_file
from lockstep.data.storage import Location, naming
from lockstep.enums import Rule


def is_raw_capture(path: str) -> bool:
    """A lockstep raw capture file (docs/raw-format.md), or a file written as one whose header is
    damaged: it is read as a capture (and refused if its header is not valid), never as text."""
    return "://" not in path and is_capture_file(path)


def open_source(path: str, *, as_stored: bool = False) -> Any:
    """The bytes a decoder sees for one input: a raw capture's frames as "<receive ns> <payload>"
    lines with a damage line in place of each damaged stretch (CaptureLines), anything else
    decompressed. Record positions refer to these bytes. `as_stored`: the file's bytes as they
    are (a format that reads capture files itself, Format.reads_capture_files)."""
    if as_stored:
        return open(path, "rb")
    if is_raw_capture(path):
        return CaptureLines(path).open()
    return open_decompressed(path)


class CaptureDecodeRun:
    """A format's decode run over raw captures read as lines (CaptureLines), in which the record
    of each damage line says what was wrong: a torn tail is a TRUNCATED_RECORD, any other damaged
    stretch (a corrupt frame, bytes up to where reading resumed at the next valid frame, a frame
    of a stream id outside the stream table) a MALFORMED_RECORD, each with a reason naming the
    file and its byte range. `counts` gains "raw_capture": what each capture file held. Everything
    else is the inner run's."""

    def __init__(self, inner: DecodeRun, captures: Sequence[CaptureLines | None]) -> None:
        self._inner = inner
        self._captures = list(captures)  # per input: its CaptureLines, None for other inputs
        self._damaged: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # not set yet (a copy being made): never the inner run's
            raise AttributeError(name)
        return getattr(self._inner, name)

    def __iter__(self) -> Iterator[NormalizedChunk]:
        for chunk in self._inner:
            self._mark(chunk)
            yield chunk

    def _mark(self, chunk: NormalizedChunk) -> None:
        m = chunk.n_records
        for f, capture in enumerate(self._captures):
            if capture is None or not capture.damage:
                continue
            rows = np.flatnonzero(chunk.rec_file[:m] == f)
            marked = np.fromiter(capture.damage, np.int64, len(capture.damage))
            for r in rows[np.isin(chunk.rec_offset[rows], marked)].tolist():
                damage = capture.damage.pop(int(chunk.rec_offset[r]))
                rule = Rule.TRUNCATED_RECORD if damage.torn else Rule.MALFORMED_RECORD
                chunk.rec_problem[r] = rule
                chunk.problem_reasons[chunk.first_record + r] = damage.describe()
                self._damaged[rule.label] = self._damaged.get(rule.label, 0) + 1

    @property
    def counts(self) -> dict[str, Any]:
        files = []
        for capture in self._captures:
            rep = capture.report if capture is not None else None
            if rep is None:
                continue
            tail = rep.torn_tail
            files.append({"path": rep.path, "frames": rep.frames,
                          "unknown_stream_frames": rep.unknown_stream_frames,
                          "corrupt_regions": rep.corrupt_count, "unreadable_bytes": rep.unreadable_bytes,
                          "torn_tail": None if tail is None else {"offset": tail.offset, "bytes": tail.bytes,
                                                                  "zero_filled": tail.zero_filled}})
        return {**self._inner.counts, "raw_capture": {"files": files, "damage_records": dict(self._damaged)}}


def import_id_of(paths: Sequence[str]) -> str:
    """A digest of the inputs' names and bytes: importing the same bytes again gives the same id."""
    h = hashlib.sha256()
    for p in paths:
        h.update(os.path.basename(p).encode() + b"\0")
        with open(p, "rb") as f:
            while chunk := f.read(1 << 22):
                h.update(chunk)
        h.update(b"\1")
    return h.hexdigest()[:16]


def copy_raw(paths: Sequence[str], target: Location) -> list[dict[str, Any]]:
    """Byte-for-byte copies of the inputs under `target` (kept if already there)."""
    target.mkdir()
    local = isinstance(target.fs, pa.fs.LocalFileSystem)
    out = []
    for i, p in enumerate(paths):
        dest = target.join(f"{i:03d}-{os.path.basename(p)}")
        size = os.path.getsize(p)
        with naming(dest.uri):
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


def existing_raw(root: Location, import_id: str) -> str | None:
    """The name an earlier import of the same bytes (same import id) stored its raw copy under."""
    for name in root.join("raw").list_dirs():
        if root.join("raw", name, import_id).is_dir():
            return name
    return None

