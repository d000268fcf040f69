"""The catalogue: what the storage root holds (ls) and what one dataset is (show)."""
from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from lockstep.data.dataset import ORDER_RULE_FIELDS, Dataset, list_datasets
from lockstep.data.storage import root_location
from lockstep.events import SCHEMA, EventKind


def _verdict_of(manifest: Mapping[str, Any]) -> str:
    report = manifest.get("source", {}).get("validation_report")
    if report is None:
        return "unvalidated"  # generated (synthetic) or written before the data platform
    return str(report.get("verdict") or "unknown")


def list_storage(data: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """Canonical datasets and quarantine entries under the root."""
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


def _utc_text(ns: int | None) -> str:
    if ns is None:
        return "-"
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def describe_dataset(info: Mapping[str, Any]) -> str:
    """show_dataset's answer as lines of text."""
    lines = [f"dataset      {info['name']}/v{info['version']}  {info['dataset']}",
             f"verdict      {info['verdict']}",
             f"rows         {info['rows']:,} in {len(info['files'])} file(s)"]
    tr = (info.get("time_range") or {}).get("ts_recv") or [None, None]
    lines.append(f"time range   {_utc_text(tr[0])} .. {_utc_text(tr[1])} (ts_recv)")
    lines.append("schema       " + ", ".join(f"{c['name']}:{c['type']}" for c in info["schema"]))
    for i in info["instruments"]:
        lines.append(f"instrument   {i['symbol']} on {i['venue']}: data increments price "
                     f"{i['price_increment']}, size {i['size_increment']}; book {i.get('book', 'l2')}")
        known = [(k, i[k]) for k in ORDER_RULE_FIELDS if i.get(k) is not None]
        lines.append("  order entry  " + (", ".join(f"{k.replace('_', ' ')} {v}" for k, v in known)
                                          if known else "rules unknown (not checked)"))
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
