"""Validation, or validation and promotion, alone on what the root stores: a normalized import, a
canonical dataset, or a quarantine entry (whose raw records are decoded again)."""
from __future__ import annotations

import contextlib
import json
import os
import posixpath
import re
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lockstep.data.dataset import Dataset, Instrument, check_name
from lockstep.data.importers import FORMATS
from lockstep.data.importers.normalized import NormalizedChunk
from lockstep.data.pipeline.normalize import read_normalized
from lockstep.data.pipeline.report import ImportResult
from lockstep.data.pipeline.rules import ValidationConfig
from lockstep.data.pipeline.run import import_data, run_chunks
from lockstep.data.storage import Location, locate, removed_on_failure, root_location
from lockstep.enums import Rule, RuleAction
from lockstep.errors import PipelineError
from lockstep.events import Flag


def _kind_of_source(loc: Location) -> str:
    if loc.join("normalized.json").exists():
        return "normalized"
    if loc.join("quarantine.json").exists():
        return "quarantine"
    if loc.join("manifest.json").exists():
        return "canonical"
    raise PipelineError(f"{loc.uri}: not a normalized import, a quarantine entry or a canonical dataset")


SOURCE_AREAS = ("canonical", "normalized", "quarantine")


def resolve_source(src: str, data: str | None = None) -> Location:
    """A place under the root, a path or a URI: ``canonical/<name>[/vK]``, ``normalized/<name>[/<id>]``,
    ``quarantine/<name>[/<id>]`` (the newest when the id or version is left out) or a bare ``<name>``
    name places under the root. A relative path is looked for under the root first, then (as
    before) relative to the working directory, so the documented forms work from any directory."""
    root = root_location(data)
    if "://" not in src and not os.path.isabs(src):
        area, _, rest = posixpath.normpath(src.replace(os.sep, "/")).partition("/")
        if area in SOURCE_AREAS and rest:
            found = _stored_in(root.join(area, *rest.split("/")), area)
            if found is not None:
                return found
    loc = locate(src)
    if loc.exists():
        return loc
    for area in SOURCE_AREAS:
        found = _stored_in(root.join(area, *src.split("/")), area)
        if found is not None:
            return found
    raise PipelineError(f"{src}: no such file, dataset, normalized import or quarantine entry under {root.uri}")


def _stored_in(base: Location, area: str) -> Location | None:
    """`base` itself when it is a version, import or entry of `area`, else its newest one, else None."""
    if not base.is_dir():
        return None
    if area == "canonical":
        if base.join("manifest.json").exists():
            return base
        versions = [d for d in base.list_dirs() if re.fullmatch(r"v\d+", d)]
        return base.join(max(versions, key=lambda v: int(v[1:]))) if versions else None
    if base.join(f"{area}.json").exists():
        return base
    ids = base.list_dirs()
    if not ids:
        return None
    newest = max(ids, key=lambda d: base.join(d).fs.get_file_info(base.join(d).path).mtime_ns or 0)
    return base.join(newest)


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
    if name is not None:
        check_name(name)  # before anything is written: a bad name leaves nothing behind
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
            actions = {**stored.get("actions", {}), Rule.SEQUENCE_GAP.label: RuleAction.WARN.label}
            cfg = ValidationConfig.from_dict({**stored, "actions": actions})
        else:
            cfg = validation
        run = _StoredRun(_chunks_from_canonical(ds), ds.manifest.get("source", {}).get("format", "canonical"),
                         ds.instruments, False)
        result = ImportResult(name=ds.name, import_id=f"v{ds.manifest['version']}", format=run.format,
                              stopped_after="validate")
        run_chunks(iter(run), run, result, cfg, root, ds.name, result.import_id, data, [],
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
    entry = root.join("quarantine", nm, meta["import_id"])
    created = [] if entry.exists() else [(entry, True), (root.join("quarantine", nm), False)]
    with removed_on_failure(created):  # a promotion that fails leaves no half-written quarantine entry
        run_chunks(iter(run), run, result, cfg, root, nm, meta["import_id"], data, sources, normalized=None,
                   stop_after=stop_after, instruments=instruments)
    result.paths["normalized"] = loc.uri
    result.seconds = time.perf_counter() - start
    return result


def _from_quarantine(loc: Location, *, data: str | None, validation: ValidationConfig | None,
                     options: Mapping[str, Any] | None, stop_after: str, name: str | None,
                     run_factory: Any = None) -> ImportResult:
    meta = json.loads(loc.join("quarantine.json").read_bytes())
    table = pq.read_table(loc.join("records.parquet").path, filesystem=loc.fs)
    files = table.column("file").to_numpy()
    raw = table.column("raw").to_pylist()
    binary = FORMATS[meta["format"]].binary
    headers = meta.get("headers", {})
    root = root_location(data)
    if stop_after == "promote" and isinstance(root.fs, pa.fs.LocalFileSystem):
        # Kept under derived/ so the positions the new import reports name files that exist.
        kept = root.join("derived", "requeued", meta["name"], meta["import_id"])
        created = [] if kept.exists() else [(kept, True), (root.join("derived", "requeued", meta["name"]), False)]
        kept.mkdir()
        place = contextlib.nullcontext(kept.path)
    else:  # validation writes nothing; a remote root cannot be read as local files
        created = []
        place = tempfile.TemporaryDirectory(prefix="lockstep-requeue-")
    with place as where, removed_on_failure(created):
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

