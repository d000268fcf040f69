"""The tables a backtest writes into its run directory, declared once: the runner writes them with
these schemas and `BacktestResult.orders_table()` and friends read them back as Arrow tables.

A run that produced no row of a table writes no file for it (the run directory shows what
happened); reading such a table gives an empty table of the same schema, so analysis code needs no
special case.
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from lockstep.data.storage import locate

_NAMES = pa.dictionary(pa.int32(), pa.string())

ORDERS_SCHEMA = pa.schema([
    ("ts_event", pa.int64()), ("ts_recv", pa.int64()), ("symbol", _NAMES), ("kind", _NAMES),
    ("side", pa.uint8()), ("order_id", pa.uint64()), ("price", pa.float64()),
    ("qty", pa.float64()), ("fee", pa.float64()), ("maker", pa.bool_()), ("reason", pa.uint8()),
    ("price_ticks", pa.int64()), ("qty_lots", pa.int64()),
])
# The ORDER_FILLED rows of orders, without the columns that are constant there.
FILLS_SCHEMA = pa.schema([f for f in ORDERS_SCHEMA if f.name not in ("kind", "reason")])
DENIALS_SCHEMA = pa.schema([
    ("ts_recv", pa.int64()), ("symbol", pa.string()), ("intent", _NAMES), ("side", pa.uint8()),
    ("tif", pa.uint8()), ("price_ticks", pa.int64()), ("qty_lots", pa.int64()),
    ("client_order_id", pa.uint64()), ("target_order_id", pa.uint64()), ("reason", _NAMES),
])
PNL_SCHEMA = pa.schema([
    ("ts_recv", pa.int64()), ("symbol", _NAMES), ("position", pa.float64()), ("mid", pa.float64()),
    ("realized", pa.float64()), ("unrealized", pa.float64()), ("fees", pa.float64()),
    ("equity", pa.float64()),
])
SCHEMAS = {"orders": ORDERS_SCHEMA, "fills": FILLS_SCHEMA, "denials": DENIALS_SCHEMA,
           "pnl": PNL_SCHEMA}


def read_artifact(run_dir: str, name: str) -> pa.Table:
    """Table `name` (orders, fills, denials or pnl) of the run in `run_dir` (a path or URI)."""
    schema = SCHEMAS[name]
    file = locate(run_dir).join(f"{name}.parquet")
    if not file.exists():
        return schema.empty_table()
    return pq.read_table(file.path, filesystem=file.fs, schema=schema)


__all__ = ["DENIALS_SCHEMA", "FILLS_SCHEMA", "ORDERS_SCHEMA", "PNL_SCHEMA", "SCHEMAS", "read_artifact"]
