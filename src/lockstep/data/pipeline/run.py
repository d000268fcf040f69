"""The run that strings the steps together: `import_data` goes raw -> normalize -> validate ->
promote in one streaming pass, memory bounded by a chunk; `run_chunks` is the pass itself, shared
with the steps run alone on stored sources (lockstep.data.pipeline.stored)."""
from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from lockstep.data.dataset import Dataset, Instrument, check_name
from lockstep.data.importers import FORMATS
from lockstep.data.importers.normalized import NormalizedChunk
from lockstep.data.pipeline.normalize import NormalizedWriter, decode, format_named
from lockstep.data.pipeline.promote import Promoter
from lockstep.data.pipeline.quarantine import Quarantine
from lockstep.data.pipeline.raw import copy_raw, existing_raw, import_id_of, open_source
from lockstep.data.pipeline.report import POSITIONS_KEPT, ImportResult
from lockstep.data.pipeline.rules import ValidationConfig
from lockstep.data.pipeline.validate import GrowingValidator
from lockstep.data.pipeline.write_behind import WriteBehind
from lockstep.data.storage import LAYOUT, Location, ensure_layout, remove_created, root_location
from lockstep.enums import Rule, TradingPhase
from lockstep.errors import DecodeRestart, LockstepError, PipelineError

STEPS = ("raw", "normalize", "validate", "promote")


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
    """Runs the data path on SOURCES (one stream, in order) of FORMAT (lockstep.data.pipeline).

    `run` replaces the format's decoder with a DecodeRun over the same sources (tests, and
    formats decoded elsewhere)."""
    start = time.perf_counter()
    if name is not None:
        check_name(name)  # before anything is written: a bad name leaves nothing behind
    format_named(format)
    if stop_after not in STEPS:
        raise PipelineError(f"unknown step {stop_after!r}; steps are {', '.join(STEPS)}")
    paths = [os.fspath(s) for s in sources]
    for p in paths:
        if not os.path.isfile(p):
            raise PipelineError(f"{p}: no such file")
    cfg = validation or ValidationConfig()
    options = dict(options or {})
    import_id = import_id_of(paths)
    if run is None:
        run = decode(format, paths, options)
    root = root_location(data)
    created = [(folder, False) for folder in (*(root.join(area) for area in LAYOUT), root) if not folder.exists()]
    # Without a name, the instruments name the import, known once decoded: until then the
    # areas sit under a provisional name and are moved at the end.
    provisional = name or f"import-{import_id}"
    result = ImportResult(name=provisional, import_id=import_id, format=format, stopped_after=stop_after)
    own: list[str] = []  # the areas this import writes for the first time: its own to take away
    norm = None
    try:
        ensure_layout(data)
        # The same bytes were imported before: their raw copy is reused, not copied again.
        raw_loc = root.join("raw", name or existing_raw(root, import_id) or provisional, import_id)
        own = [area for area, loc in (("raw", raw_loc), ("normalized", root.join("normalized", provisional, import_id)),
                                      ("quarantine", root.join("quarantine", provisional, import_id)))
               if not loc.exists()]
        result.inputs = copy_raw(paths, raw_loc)
        result.paths["raw"] = raw_loc.uri
        while stop_after != "raw":
            norm = NormalizedWriter(root.join("normalized", provisional, import_id))
            allow_restart = getattr(run, "allow_restart", None)
            if allow_restart is not None:
                allow_restart()
            try:
                run_chunks(iter(run), run, result, cfg, root, provisional, import_id, data, paths,
                           normalized=norm, stop_after=stop_after, rename=name is None)
                break
            except DecodeRestart as restart:
                # The decoder met data finer than an increment it trusted: what was written from
                # its chunks is void, and the import runs again from the raw copy's inputs.
                norm.abort()
                for area in ("normalized", "quarantine"):
                    loc = root.join(area, provisional, import_id)
                    if loc.exists():
                        loc.fs.delete_dir(loc.path)
                run = restart.restarted()
                result = ImportResult(name=provisional, import_id=import_id, format=format,
                                      stopped_after=stop_after, inputs=result.inputs, paths=result.paths)
    except BaseException:
        # A failed or interrupted import leaves the root as it found it: no half-written area,
        # no empty folder; what another import wrote meanwhile stays.
        if norm is not None:
            norm.abort()
        names = sorted({provisional, result.name})
        remove_created([*((root.join(area, n, import_id), True) for area in own for n in names),
                        *((root.join(area, n), False) for area in own for n in names), *created])
        raise
    result.seconds = time.perf_counter() - start
    return result


def default_name(instruments: Sequence[Instrument], format: str, import_id: str) -> str:
    """<venue>-<symbol>[_<symbol>...] (up to three symbols), else <venue>-<first>-and-<k>; an
    import that found no instrument is named after its own inputs, <format>-import-<import id>,
    so unrelated failed imports never share one name."""
    if not instruments:
        return f"{format}-import-{import_id}"
    venue = instruments[0].venue
    symbols = sorted({i.symbol.lower() for i in instruments})
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


def run_chunks(chunks: Iterator[NormalizedChunk], run: Any, result: ImportResult, cfg: ValidationConfig,
                root: Location, name: str, import_id: str, data: str | None, sources: Sequence[str],
                *, normalized: NormalizedWriter | None, stop_after: str,
                instruments: Sequence[Instrument] | None = None, rename: bool = False) -> None:
    """Normalize (when `normalized` is given), validate and promote the chunks of `run` into
    `result`, up to the step `stop_after`."""
    validator = None
    behind = WriteBehind()
    quarantine = Quarantine(root.join("quarantine", name, import_id), result.inputs,
                             write=stop_after == "promote")
    promoter = Promoter(name, data, behind) if stop_after == "promote" else None
    requires_snapshot = bool(getattr(run, "requires_snapshot", False))
    fmt = FORMATS.get(result.format)
    default_book = fmt.book if fmt is not None else "l2"
    session_phase = TradingPhase.from_label(fmt.session_phase) if fmt is not None else TradingPhase.UNKNOWN
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
                validator = GrowingValidator(cfg, requires_snapshot, session_phase)
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
                for k in rows[: max(0, POSITIONS_KEPT - len(firsts))]:
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
        name = _settle_name(root, name, default_name(table, result.format, import_id), import_id, result, normalized,
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
                                       "headers": {} if FORMATS[result.format].reads_capture_files
                                       else _headers(sources, first_offset)}, symbols)
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
                 normalized: NormalizedWriter | None, quarantine: Quarantine) -> str:
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
    return i.to_dict()


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))

