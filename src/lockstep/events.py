"""Canonical events: kinds, sides, flags, the Arrow schema and column buffers.

The encoding is described normatively in docs/encoding.md; this module and
include/lockstep/core/events.hpp are its two implementations and must agree.
"""
from __future__ import annotations

import enum
from collections.abc import Mapping

import numpy as np
import pyarrow as pa

#: Version of the canonical event schema written into every manifest.
SCHEMA_VERSION = 1


class EventKind(enum.IntEnum):
    """The `kind` column. Values are part of the on-disk format."""

    NONE = 0
    L2_SET = 1
    L3_ADD = 2
    L3_MODIFY = 3
    L3_DELETE = 4
    L3_EXECUTE = 5
    BOOK_CLEAR = 6
    TRADE = 7
    VENUE_BBO = 8
    # Execution events of our own orders (order_id = client order id; see docs/encoding.md).
    ORDER_SUBMITTED = 32
    ORDER_ACCEPTED = 33
    ORDER_REJECTED = 34
    ORDER_FILLED = 35
    ORDER_CANCELED = 36
    ORDER_EXPIRED = 37
    ORDER_REPLACED = 38
    CANCEL_REJECTED = 39
    REPLACE_REJECTED = 40
    CANCEL_SUBMITTED = 41
    REPLACE_SUBMITTED = 42
    TRADE_BROKEN = 43  # the venue broke one of our fills: its price and qty
    TRADE_CORRECTED = 44  # the venue corrected one of our fills' price: the new price, its qty
    # Control events.
    GAP = 64  # the feed lost messages: the instrument's book is invalid until a BOOK_CLEAR
    TRADING_PHASE = 65  # the venue announces a trading phase (side = lockstep.enums.TradingPhase)


#: The `order_id` of a TRADING_PHASE event: the phase is the instrument's own, or the session's
#: (every instrument of the stream; docs/encoding.md).
PHASE_SCOPE_INSTRUMENT = 0
PHASE_SCOPE_SESSION = 1

#: Kinds 32..63 are reserved for execution events, 64..95 for control events.
EXECUTION_KIND_BEGIN = 32
CONTROL_KIND_BEGIN = 64


class Side(enum.IntEnum):
    NONE = 0
    BID = 1
    ASK = 2


class Flag(enum.IntFlag):
    LAST = 1  # last event of one venue message
    SNAPSHOT = 2  # part of a snapshot
    BAD_TS_RECV = 4  # ts_recv was raised to keep Processing Order monotone
    MAKER = 8  # execution: the fill was passive


#: Column names and dtypes, in schema order.
COLUMNS: tuple[tuple[str, np.dtype], ...] = (
    ("ts_event", np.dtype(np.int64)),
    ("ts_recv", np.dtype(np.int64)),
    ("seq", np.dtype(np.uint64)),
    ("instrument", np.dtype(np.uint32)),
    ("kind", np.dtype(np.uint8)),
    ("side", np.dtype(np.uint8)),
    ("flags", np.dtype(np.uint8)),
    ("price", np.dtype(np.int64)),
    ("qty", np.dtype(np.int64)),
    ("order_id", np.dtype(np.uint64)),
)
COLUMN_NAMES: tuple[str, ...] = tuple(name for name, _ in COLUMNS)

SCHEMA = pa.schema(
    [pa.field(name, pa.from_numpy_dtype(dtype), nullable=False) for name, dtype in COLUMNS],
    metadata={b"lockstep.schema_version": str(SCHEMA_VERSION).encode()},
)

Columns = dict[str, np.ndarray]


def empty_columns(capacity: int) -> Columns:
    """Freshly allocated, uninitialised column arrays for `capacity` events."""
    return {name: np.empty(capacity, dtype=dtype) for name, dtype in COLUMNS}


def to_record_batch(cols: Mapping[str, np.ndarray], size: int | None = None) -> pa.RecordBatch:
    """A RecordBatch over the first `size` events of `cols` (zero-copy)."""
    n = len(cols["ts_event"]) if size is None else size
    arrays = [pa.array(cols[name][:n], type=SCHEMA.field(name).type) for name in COLUMN_NAMES]
    return pa.RecordBatch.from_arrays(arrays, schema=SCHEMA)


def to_columns(batch: pa.RecordBatch | pa.Table) -> Columns:
    """Numpy views of a batch's columns (zero-copy when each column is one contiguous chunk)."""
    if batch.schema.names[: len(COLUMN_NAMES)] != list(COLUMN_NAMES):
        missing = [n for n in COLUMN_NAMES if n not in batch.schema.names]
        if missing:
            raise ValueError(f"not a canonical event batch: missing columns {missing}")
    out: Columns = {}
    for name, dtype in COLUMNS:
        col = batch.column(name)
        if isinstance(col, pa.ChunkedArray):
            col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
        if col.null_count:
            raise ValueError(f"column {name!r} has {col.null_count} nulls; canonical events have none")
        arr = col.to_numpy(zero_copy_only=True)
        if arr.dtype != dtype:
            raise ValueError(f"column {name!r} is {arr.dtype}, expected {dtype}")
        out[name] = arr
    return out
