"""Importers into canonical datasets: decode venue captures and write them through DatasetWriter.

Shared by every format: a decode run yields (columns, size) batches and, once exhausted, knows its
instrument table and counts; this module streams the batches into a new dataset version and
records the run's report in the manifest.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lockstep.dataset import Dataset, DatasetWriter, Instrument
from lockstep.importers.binance import IncrementLike, Source, decode_binance


@dataclass(frozen=True)
class ImportReport:
    """What an import read, wrote and skipped (every skip and gap counted, first ones located)."""

    dataset: str
    events: int
    bytes_read: int
    files: list[dict[str, Any]]
    instruments: list[dict[str, Any]]
    counts: dict[str, Any]
    market_type: str
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def mb_per_second(self) -> float:
        return self.bytes_read / 1e6 / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "events": self.events,
            "bytes_read": self.bytes_read,
            "seconds": self.seconds,
            "mb_per_second": self.mb_per_second,
            "market_type": self.market_type,
            "files": self.files,
            "instruments": self.instruments,
            "counts": self.counts,
        }

    def describe(self) -> str:
        lines = [
            f"dataset      {self.dataset}",
            f"events       {self.events:,} from {len(self.files)} file(s), {self.bytes_read / 1e6:,.1f} MB "
            f"of text in {self.seconds:.2f} s ({self.mb_per_second:,.0f} MB/s)",
        ]
        for inst in self.instruments:
            lines.append(
                f"instrument   {inst['symbol']} on {inst['venue']}: tick {inst['price_increment']}, "
                f"lot {inst['size_increment']} ({inst['increment_source']})"
            )
        for reason, entry in sorted(self.counts.get("skipped", {}).items()):
            if entry["count"]:
                lines.append(f"skipped      {reason}: {entry['count']:,}{_first(entry)}")
        for key in ("sequence_gaps", "ts_recv_raised"):
            entry = self.counts.get(key) or {"count": 0}
            if entry["count"]:
                lines.append(f"{key:<12} {entry['count']:,}{_first(entry)}")
        return "\n".join(lines)


def _first(entry: dict[str, Any]) -> str:
    first = entry.get("first") or []
    if not first:
        return ""
    loc = first[0]
    return f" (first at {loc.get('path')}:{loc.get('line')})"


def load_instruments_file(path: str | os.PathLike[str]) -> dict[str, tuple[str, str]]:
    """A JSON list of {symbol, price_increment, size_increment[, venue]}: symbol -> increments."""
    try:
        rows = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read instruments: {e}") from None
    if not isinstance(rows, list):
        raise ValueError(f"{path}: expected a JSON list of instruments")
    out = {}
    for i, row in enumerate(rows):
        missing = {"symbol", "price_increment", "size_increment"} - set(row)
        if missing:
            raise ValueError(f"{path}: instrument {i} lacks {sorted(missing)}")
        out[str(row["symbol"])] = (str(row["price_increment"]), str(row["size_increment"]))
    return out


def instrument_table(decoded: Sequence[dict[str, Any]]) -> list[Instrument]:
    """A decode run's instruments (dicts with an index) as a dataset's instrument table."""
    ordered = sorted(decoded, key=lambda i: i["index"])
    if [i["index"] for i in ordered] != list(range(len(ordered))):
        raise ValueError(f"instrument indexes {[i['index'] for i in ordered]} leave gaps in the table")
    return [Instrument(i["symbol"], i["venue"], i["price_increment"], i["size_increment"], "l2")
            for i in ordered]


def _default_name(run_instruments: Sequence[dict[str, Any]]) -> str:
    venue = run_instruments[0]["venue"] if run_instruments else "binance"
    symbols = sorted({i["symbol"].lower() for i in run_instruments}) or ["empty"]
    name = f"{venue}-{'+'.join(symbols)}" if len(symbols) <= 3 else f"{venue}-{symbols[0]}-and-{len(symbols) - 1}"
    return re.sub(r"[^A-Za-z0-9._+-]", "_", name).replace("+", "_")


def import_binance(
    paths: Iterable[Source],
    *,
    data: str | None = None,
    name: str | None = None,
    price_increment: IncrementLike | None = None,
    size_increment: IncrementLike | None = None,
    instruments_file: str | os.PathLike[str] | None = None,
) -> ImportReport:
    """Decode Binance capture files (one stream, in order) into DATA/canonical/<name>/v<k>."""
    import time

    start = time.perf_counter()
    explicit = load_instruments_file(instruments_file) if instruments_file else None
    run = decode_binance(list(paths), instruments=explicit, price_increment=price_increment,
                         size_increment=size_increment)
    writer = DatasetWriter(name, None, data=data)
    try:
        for cols, n in run:
            writer.write(cols, n)
        table = instrument_table(run.instruments)
        source = {"importer": "binance", "market_type": run.market_type, "bytes_read": run.bytes_read,
                  "instruments": run.instruments, "counts": run.counts}
        dataset: Dataset = writer.close(name=name or _default_name(run.instruments), instruments=table,
                                        source=source)
    except BaseException:
        writer.abort()
        raise
    return ImportReport(
        dataset=dataset.path,
        events=dataset.rows,
        bytes_read=run.bytes_read,
        files=run.counts.get("files", []),
        instruments=run.instruments,
        counts=run.counts,
        market_type=run.market_type,
        seconds=time.perf_counter() - start,
    )
