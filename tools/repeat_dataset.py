"""Repeat a canonical dataset in time: a longer dataset for benchmarks, made of one real capture.

    python tools/repeat_dataset.py SOURCE TIMES NAME [--data ROOT] [--gap-ns NS] [--json]

Repetition k (0-based) is the source with ``ts_event`` and ``ts_recv`` shifted by
``k * (span + gap_ns)``, where ``span`` is the source's last ``ts_recv`` minus its first, and its
non-zero ``seq`` values shifted by ``k * (seq_max - seq_min + 1)`` (computed over the non-zero
values) so that sequence ranges of successive repetitions never overlap; ``seq = 0`` ("none")
stays 0. Every other column is copied unchanged, batch by batch: the source is streamed once up front (to learn its seq range
and how each instrument begins) and once per repetition, never loaded whole.

Clean seams: an instrument whose first event in the source is not a ``BOOK_CLEAR`` (the source
does not begin with a snapshot of it) would carry the previous repetition's levels into the next
one. Every repetition after the first therefore starts with one ``BOOK_CLEAR`` per such
instrument, flagged ``SNAPSHOT | LAST`` (an empty snapshot that is a venue message of its own, so
the empty book is observable and the clear never merges into the repetition's first message),
with ``seq = 0`` and the timestamps of the repetition's first row. Its first ``ts_recv`` equals
that row's, and rows with equal ``ts_recv`` are processed in row order, so it comes first.

The Binance captures begin with bookTicker and trade messages before their REST snapshot, so they
get one inserted clear per repetition: the book of every repetition then evolves exactly as the
first repetition's did (tests/test_repeat_dataset.py checks this on the top of book).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from lockstep.data.dataset import Dataset, DatasetWriter
from lockstep.errors import DatasetError
from lockstep.events import EventKind, Flag, empty_columns

__all__ = ["repeat_dataset", "scan_source"]

_BOOK_KINDS = np.array(
    [EventKind.L2_SET, EventKind.L3_ADD, EventKind.L3_MODIFY, EventKind.L3_DELETE, EventKind.L3_EXECUTE,
     EventKind.BOOK_CLEAR],
    dtype=np.uint8,
)


def scan_source(ds: Dataset) -> dict[str, Any]:
    """One streaming pass: first/last ts_recv and ts_event of the first row, the non-zero seq range,
    and for each instrument whether its first event is a BOOK_CLEAR."""
    n_inst = len(ds.instruments)
    first_kind = np.full(n_inst, -1, dtype=np.int16)  # -1: no event of that instrument seen yet
    seq_min: int | None = None
    seq_max: int | None = None
    first_recv = first_event = last_recv = None
    rows = 0
    for cols in ds.iter_columns():
        n = len(cols["ts_recv"])
        if n == 0:
            continue
        if first_recv is None:
            first_recv = int(cols["ts_recv"][0])
            first_event = int(cols["ts_event"][0])
        last_recv = int(cols["ts_recv"][-1])
        rows += n
        seq = cols["seq"]
        nz = seq[seq != 0]
        if nz.size:
            lo, hi = int(nz.min()), int(nz.max())
            seq_min = lo if seq_min is None else min(seq_min, lo)
            seq_max = hi if seq_max is None else max(seq_max, hi)
        missing = np.flatnonzero(first_kind < 0)
        if missing.size:
            inst = cols["instrument"]
            # index of each instrument's first row in this batch (n where absent)
            order = np.full(n_inst, n, dtype=np.int64)
            idx = np.arange(n, dtype=np.int64)
            in_table = inst < n_inst
            np.minimum.at(order, inst[in_table].astype(np.int64), idx[in_table])
            for i in missing:
                if order[i] < n:
                    first_kind[i] = int(cols["kind"][order[i]])
    if rows == 0 or first_recv is None:
        raise DatasetError(f"{ds.path}: empty dataset, nothing to repeat")
    needs_clear = [i for i in range(n_inst) if first_kind[i] >= 0 and first_kind[i] != EventKind.BOOK_CLEAR]
    return {
        "rows": rows,
        "first_ts_recv": first_recv,
        "first_ts_event": first_event,
        "last_ts_recv": last_recv,
        "seq_min": seq_min,
        "seq_max": seq_max,
        "needs_clear": needs_clear,
    }


def _clear_columns(instruments: list[int], ts_event: int, ts_recv: int) -> dict[str, np.ndarray]:
    n = len(instruments)
    cols = empty_columns(n)
    cols["ts_event"][:] = ts_event
    cols["ts_recv"][:] = ts_recv
    cols["seq"][:] = 0
    cols["instrument"][:] = np.asarray(instruments, dtype=np.uint32)
    cols["kind"][:] = EventKind.BOOK_CLEAR
    cols["side"][:] = 0
    cols["flags"][:] = Flag.SNAPSHOT | Flag.LAST
    cols["price"][:] = 0
    cols["qty"][:] = 0
    cols["order_id"][:] = 0
    return cols


def _shifted(cols: Mapping[str, np.ndarray], dt: int, dseq: int) -> dict[str, np.ndarray]:
    out = dict(cols)
    if dt:
        out["ts_event"] = cols["ts_event"] + np.int64(dt)
        out["ts_recv"] = cols["ts_recv"] + np.int64(dt)
    if dseq:
        seq = cols["seq"]
        out["seq"] = np.where(seq != 0, seq + np.uint64(dseq), seq)
    return out


def repeat_dataset(
    source: Dataset | str,
    times: int,
    name: str,
    *,
    data: str | None = None,
    gap_ns: int = 1_000_000,
) -> Dataset:
    """Writes ``DATA/canonical/<name>``: `source` repeated `times` times in time (module docstring)."""
    if times < 1:
        raise ValueError(f"times must be >= 1, got {times}")
    if gap_ns < 1:
        raise ValueError(f"gap_ns must be >= 1 (repetitions must not overlap in time), got {gap_ns}")
    ds = source if isinstance(source, Dataset) else Dataset.open(source, data=data)
    scan = scan_source(ds)
    span = scan["last_ts_recv"] - scan["first_ts_recv"]
    period = span + int(gap_ns)
    seq_period = 0 if scan["seq_min"] is None else scan["seq_max"] - scan["seq_min"] + 1
    if scan["seq_max"] is not None and scan["seq_max"] + (times - 1) * seq_period >= 1 << 64:
        raise DatasetError(f"repeating {times} times would overflow seq (uint64)")
    needs_clear = scan["needs_clear"]
    meta = {
        "tool": "tools/repeat_dataset.py",
        "repeat_of": {"name": ds.name, "version": ds.manifest.get("version"), "path": ds.path,
                      "rows": scan["rows"]},
        "times": times,
        "gap_ns": int(gap_ns),
        "period_ns": period,
        "seq_period": seq_period,
        "inserted_book_clears": {
            "instruments": [ds.instruments[i].symbol for i in needs_clear],
            "per_repetition": len(needs_clear),
            "total": len(needs_clear) * (times - 1),
        },
        "source_manifest_source": ds.manifest.get("source", {}),
    }
    writer = DatasetWriter(name, ds.instruments, data=data, source=meta)
    with writer:
        for k in range(times):
            dt = k * period
            if k > 0 and needs_clear:
                writer.write(_clear_columns(needs_clear, scan["first_ts_event"] + dt, scan["first_ts_recv"] + dt))
            for cols in ds.iter_columns():
                writer.write(_shifted(cols, dt, k * seq_period))
    return writer.dataset


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("source", metavar="SOURCE", help="dataset path, or a dataset name under ROOT/canonical")
    p.add_argument("times", metavar="TIMES", type=int, help="number of repetitions (>= 1)")
    p.add_argument("name", metavar="NAME", help="name of the new dataset under ROOT/canonical")
    p.add_argument("--data", metavar="ROOT", default=None, help="storage root (default: $LOCKSTEP_DATA, else ./data)")
    p.add_argument("--gap-ns", type=int, default=1_000_000, help="time between repetitions (default 1 ms)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    start = time.perf_counter()
    try:
        out = repeat_dataset(args.source, args.times, args.name, data=args.data, gap_ns=args.gap_ns)
    except (DatasetError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - start
    report = {"dataset": out.path, "name": out.name, "version": out.manifest["version"], "events": out.rows,
              "seconds": seconds, **{k: out.manifest["source"][k] for k in ("times", "period_ns", "inserted_book_clears")}}
    if args.json:
        print(json.dumps(report))
    else:
        clears = report["inserted_book_clears"]["total"]
        print(f"{out.rows:,} events ({args.times} repetitions, {clears} inserted book clears) -> {out.path} "
              f"in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
