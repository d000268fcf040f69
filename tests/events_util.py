"""Building small canonical event batches by hand for tests."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lockstep.events import COLUMN_NAMES, Columns, empty_columns


def make_columns(rows: Sequence[dict]) -> Columns:
    """Columns from dicts; missing fields are 0, ts_recv defaults to the row index."""
    cols = empty_columns(len(rows))
    for name in COLUMN_NAMES:
        cols[name][:] = 0
    for i, row in enumerate(rows):
        cols["ts_recv"][i] = i
        cols["ts_event"][i] = i
        for key, value in row.items():
            cols[key][i] = int(value)
    return cols


def concat(parts: Sequence[Columns]) -> Columns:
    return {name: np.concatenate([p[name] for p in parts]) for name in COLUMN_NAMES}
