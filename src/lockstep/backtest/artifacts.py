"""The tables a backtest writes into its run directory, declared once: the runner writes them with
these schemas and `BacktestResult.orders_table()` and friends read them back as Arrow tables.
A live session writes the same tables (lockstep.live.records), so one analysis reads both.

`RecordTables` is the one conversion from the engine's drained records (execution events,
denials, PnL samples, as `Engine.drain()` hands them out) to these tables, with the digest's hash
over them; the backtest runner and the live records writer differ only in where the tables go.

A run that produced no row of a table writes no file for it (the run directory shows what
happened); reading such a table gives an empty table of the same schema, so analysis code needs no
special case. A live session that did not close its records (the process was killed) has each
table as an Arrow IPC stream, `<name>.arrows`, instead: `read_artifact` reads its complete
batches, everything flushed before the crash.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lockstep.backtest.replay import to_real
from lockstep.data.dataset import Instrument
from lockstep.data.storage import Location, locate
from lockstep.enums import IntentKind, RiskReason
from lockstep.events import EventKind, Flag

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


#: The suffix of a table a live session is still appending to (an Arrow IPC stream).
STREAM_SUFFIX = ".arrows"


def read_artifact(run_dir: str, name: str) -> pa.Table:
    """Table `name` (orders, fills, denials or pnl) of the run in `run_dir` (a path or URI): its
    Parquet file, else the complete batches of its stream (a live session not closed)."""
    schema = SCHEMAS[name]
    file = locate(run_dir).join(f"{name}.parquet")
    if file.exists():
        return pq.read_table(file.path, filesystem=file.fs, schema=schema)
    stream = locate(run_dir).join(name + STREAM_SUFFIX)
    if stream.exists():
        return pa.Table.from_batches(read_stream_batches(stream), schema=schema)
    return schema.empty_table()


def read_stream_batches(stream: Location) -> list[pa.RecordBatch]:
    """The record batches of an IPC stream up to the first one cut short (a writer killed while
    writing it leaves a torn tail; what precedes it is whole)."""
    return list(iter_stream_batches(stream))


def iter_stream_batches(stream: Location) -> Iterator[pa.RecordBatch]:
    """read_stream_batches one batch at a time: memory for one batch, however long the stream."""
    with stream.fs.open_input_stream(stream.path) as source:
        try:
            reader = pa.ipc.open_stream(source)
        except (pa.ArrowInvalid, OSError):  # killed before the schema was whole: nothing flushed
            return
        while True:
            try:
                batch = reader.read_next_batch()
            except (StopIteration, pa.ArrowInvalid, OSError):
                return
            yield batch


# ---------------------------------------------------------------------------------------------
# From drained records to tables


def _scale(values: np.ndarray, index: np.ndarray, instruments: Sequence[Instrument], attr: str) -> np.ndarray:
    out = np.empty(len(values))
    for i, inst in enumerate(instruments):
        rows = index == i
        if rows.any():
            out[rows] = to_real(values[rows], getattr(inst, attr))
    return out


def _names(enum_type) -> pa.Array:
    """A 256-entry dictionary of an enum's lowercase names, indexed by value."""
    names = [str(v) for v in range(256)]
    for member in enum_type:
        names[int(member)] = member.name.lower()
    return pa.array(names, pa.string())


_KIND_NAMES = _names(EventKind)
_REASON_NAMES = _names(RiskReason)
_INTENT_NAMES = _names(IntentKind)

#: The PnL series the report and the summary metrics read (lockstep.backtest.report).
SERIES_KEYS = ("ts_recv", "instrument", "position", "mid", "realized", "unrealized", "fees", "equity")


#: The tables RecordTables.counts counts, and under which key.
_COUNTED = {"orders": "orders_rows", "fills": "fills", "denials": "denials"}


def _named(values: np.ndarray, names: pa.Array) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(pa.array(values.astype(np.int32)), names)


class RecordTables:
    """Turns the engine's drained records into the artifact tables and hashes them for the digest.

    `add(executions, denials, samples)` takes one `Engine.drain()`; each table it makes goes to
    `_write(name, table)`, which a subclass defines (Parquet files for a backtest, flushed
    streams for a live session). `counts` says how many rows of orders, fills and denials were
    made, `hash` is the SHA-256 over every record in order, and `series_table()` the PnL
    series so far (for the report; kept in memory only with `keep_series`)."""

    def __init__(self, instruments: Sequence[Instrument], *, keep_series: bool = True) -> None:
        self.keep_series = keep_series
        self.instruments = list(instruments)
        self.symbols = pa.array([i.symbol for i in instruments], pa.string())
        # Quote currency per tick x lot, by instrument: PnL and (x 1e-6) fees in real units.
        self.money = np.array([float(Decimal(i.price_increment) * Decimal(i.size_increment))
                               for i in instruments])
        self.hash = hashlib.sha256()
        self.series: list[dict[str, np.ndarray]] = []
        self.counts = {"orders_rows": 0, "fills": 0, "denials": 0}

    def _write(self, name: str, table: pa.Table) -> None:
        raise NotImplementedError

    def _symbol(self, inst: np.ndarray) -> pa.Array:
        return pa.DictionaryArray.from_arrays(pa.array(inst.astype(np.int32)), self.symbols)

    def add(self, x: dict[str, np.ndarray], d: dict[str, np.ndarray], s: dict[str, np.ndarray]) -> None:
        for cols in (x, d, s):
            names = sorted(cols)
            if names and not len(cols[names[0]]):
                # The same bytes as the loop below, in one call: an empty drain (most of a live
                # session's) costs a microsecond, not one per column.
                self.hash.update("".join(names).encode())
                continue
            for name in names:
                self.hash.update(name.encode())
                self.hash.update(np.ascontiguousarray(cols[name]).tobytes())
        tables, series = self._tables(x, d, s)
        if series is not None and self.keep_series:
            self.series.append(series)
        for name, table in tables:
            if name in _COUNTED:
                self.counts[_COUNTED[name]] += len(table)
            self._write(name, table)

    def _tables(self, x: dict[str, np.ndarray], d: dict[str, np.ndarray], s: dict[str, np.ndarray]
                ) -> tuple[list[tuple[str, pa.Table]], dict[str, np.ndarray] | None]:
        """The tables one drain makes, in writing order, and its PnL series (None: no samples).
        Nothing is written, counted or kept here."""
        tables: list[tuple[str, pa.Table]] = []
        series = None
        if len(x["kind"]):
            tables += self._order_tables(x)
        if len(d["reason"]):
            tables.append(("denials", self._denials_table(d)))
        if len(s["ts_recv"]):
            series, pnl = self._series(s)
            tables.append(("pnl", pnl))
        return tables, series

    def _order_tables(self, x: dict[str, np.ndarray]) -> list[tuple[str, pa.Table]]:
        inst = x["instrument"]
        kinds = _named(x["kind"], _KIND_NAMES)
        price = _scale(x["price"], inst, self.instruments, "price_increment")
        qty = _scale(x["qty"], inst, self.instruments, "size_increment")
        fee = x["fee"] * self.money[inst] * 1e-6
        table = pa.table({
            "ts_event": x["ts_event"], "ts_recv": x["ts_recv"], "symbol": self._symbol(inst),
            "kind": kinds, "side": x["side"], "order_id": x["order_id"],
            "price": price, "qty": qty, "fee": fee, "maker": (x["flags"] & int(Flag.MAKER)) != 0,
            "reason": x["seq"].astype(np.uint8), "price_ticks": x["price"], "qty_lots": x["qty"],
        }, schema=ORDERS_SCHEMA)
        out = [("orders", table)]
        fills = table.filter(pa.array(x["kind"] == int(EventKind.ORDER_FILLED)))
        if len(fills):
            out.append(("fills", fills.drop_columns(["kind", "reason"])))
        return out

    def _denials_table(self, d: dict[str, np.ndarray]) -> pa.Table:
        inst = d["instrument"]
        # An intent may name an instrument the dataset does not have: that is why it was denied.
        known = inst < len(self.instruments)
        symbols = np.array([i.symbol for i in self.instruments] + [""], dtype=object)
        symbol = symbols[np.where(known, inst, len(self.instruments))]
        symbol[~known] = [f"#{i}" for i in inst[~known]]
        return pa.table({
            "ts_recv": d["ts_recv"], "symbol": pa.array(symbol, pa.string()),
            "intent": _named(d["intent"], _INTENT_NAMES),
            "side": d["side"], "tif": d["tif"], "price_ticks": d["price"], "qty_lots": d["qty"],
            "client_order_id": d["client_order_id"], "target_order_id": d["target_order_id"],
            "reason": _named(d["reason"], _REASON_NAMES),
        }, schema=DENIALS_SCHEMA)

    def _series(self, s: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], pa.Table]:
        inst = s["instrument"]
        money = self.money[inst]
        realized = s["realized"] * money
        unrealized = s["unrealized"] * money
        fees = s["fees"] * money * 1e-6
        mid = _scale(s["mid"], inst, self.instruments, "price_increment")
        mid[~s["mid_known"]] = np.nan
        series = {
            "ts_recv": s["ts_recv"], "instrument": inst,
            "position": _scale(s["position"], inst, self.instruments, "size_increment"),
            "mid": mid, "realized": realized, "unrealized": unrealized, "fees": fees,
            "equity": realized + unrealized - fees,
        }
        table = pa.table({
            "ts_recv": series["ts_recv"], "symbol": self._symbol(inst),
            **{k: series[k] for k in ("position", "mid", "realized", "unrealized", "fees", "equity")},
        }, schema=PNL_SCHEMA)
        return series, table

    def series_table(self) -> dict[str, np.ndarray]:
        if not self.series:
            out = {k: np.empty(0) for k in SERIES_KEYS}
            out["ts_recv"] = np.empty(0, np.int64)
            out["symbol"] = np.empty(0, object)
            return out
        out = {k: np.concatenate([p[k] for p in self.series]) for k in SERIES_KEYS}
        out["symbol"] = np.array([self.instruments[i].symbol for i in out["instrument"]], dtype=object)
        return out


__all__ = ["DENIALS_SCHEMA", "FILLS_SCHEMA", "ORDERS_SCHEMA", "PNL_SCHEMA", "SCHEMAS", "SERIES_KEYS",
           "STREAM_SUFFIX", "RecordTables", "iter_stream_batches", "read_artifact",
           "read_stream_batches"]
