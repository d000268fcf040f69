"""Step 4, the canonical side of promotion: promoted records' events, plus a GAP marker wherever a
book became invalid, written to a new version of ROOT/canonical/<name>; segments and invalid stretches."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lockstep.data.dataset import DatasetWriter
from lockstep.data.importers.normalized import NormalizedChunk
from lockstep.data.pipeline.write_behind import WriteBehind
from lockstep.events import COLUMN_NAMES, COLUMNS, EventKind, Flag


class Promoter:
    """Canonical side of promotion: kept events plus GAP markers; segments and invalid stretches."""

    def __init__(self, name: str, data: str | None, behind: WriteBehind) -> None:
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

