"""What an import, a validation or a promotion reports."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lockstep.data.importers.increments import describe_refinement

#: Positions kept per quarantine entry, and per rule that warned: enough to find the records.
POSITIONS_KEPT = 20


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
        """Input bytes per second of the whole import, in MB (10^6 bytes)."""
        return self.bytes_read / 1e6 / self.seconds if self.seconds > 0 else 0.0

    @property
    def dataset(self) -> str | None:
        """The canonical dataset version this import wrote, None if it promoted nothing."""
        return self.paths.get("canonical")

    def verdict(self) -> str:
        """One word on the import as a whole: not validated, pass, partial or fail."""
        if self.stopped_after in ("raw", "normalize"):
            return "not validated"
        if self.records_quarantined == 0:
            return "pass"
        return "fail" if self.records_canonical == 0 else "partial"

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-serialisable values (what `lockstep data import --json` prints)."""
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
        """The report as the lines the command line prints."""
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
        for r in self.decoder_counts.get("increments_refined", []):
            lines.append(f"warning      {describe_refinement(r)}")
        for e in self.entries[:10]:
            lines.append(f"  {e['rule']}: {e['records']:,} record(s) from {where_text(e['first'])}: {e['reason']}")
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


def where_text(pos: Mapping[str, Any]) -> str:
    path = os.path.basename(str(pos.get("file", "?")))
    if pos.get("line"):
        return f"{path}:{pos['line']}"
    return f"{path}@{pos.get('offset')}"

