"""Deterministic replay of a canonical dataset through the order books.

``replay(dataset)`` streams the dataset's batches (no Python object per event) into the compiled
Replayer, which applies them in Processing Order. The result carries the state digest: SHA-256 of
the canonical serialization of the final State (docs/encoding.md, "State digest"), identical across
runs, processes and machines for the same dataset.
"""
from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lockstep._bindings.replay import TOP_OF_BOOK_COLUMNS, Replayer
from lockstep.data.dataset import DEFAULT_READ_BATCH, Dataset, Instrument
from lockstep.data.storage import locate
from lockstep.events import Columns, EventKind, Side

TOP_OF_BOOK_SCHEMA = pa.schema(
    [
        pa.field("ts_recv", pa.int64(), nullable=False),
        pa.field("ts_event", pa.int64(), nullable=False),
        pa.field("symbol", pa.dictionary(pa.int32(), pa.string()), nullable=False),
        pa.field("bid_price", pa.float64()),
        pa.field("bid_qty", pa.float64()),
        pa.field("ask_price", pa.float64()),
        pa.field("ask_qty", pa.float64()),
        # False while the instrument's book is invalid (after a GAP, until a snapshot): its
        # prices are then null, never a stale book shown as valid.
        pa.field("book_valid", pa.bool_(), nullable=False),
    ]
)


def to_real(units: np.ndarray | int, increment: str) -> np.ndarray:
    """Fixed-point units to float64, correctly rounded (``units * increment`` as one division)."""
    sign, digits, exponent = Decimal(increment).normalize().as_tuple()
    mantissa = int("".join(map(str, digits)))
    scaled = np.asarray(units, dtype=np.int64).astype(np.float64) * float(mantissa)
    exponent = int(exponent)
    return scaled / 10.0 ** (-exponent) if exponent < 0 else scaled * 10.0**exponent


@dataclass(frozen=True)
class TopOfBook:
    symbol: str
    bid_price: float | None
    bid_qty: float | None
    ask_price: float | None
    ask_qty: float | None


@dataclass(frozen=True)
class Anomalies:
    """One data-quality anomaly kind: how many, and where the first ones were."""

    count: int
    first: list[dict[str, Any]] = field(default_factory=list)  # {"position", "symbol"}


@dataclass(frozen=True)
class ReplayResult:
    dataset: str
    events: int
    seconds: float
    events_per_second: float
    digest: str
    top_of_book: dict[str, TopOfBook]
    data_quality: dict[str, Anomalies]
    kinds: dict[str, int]
    top_of_book_path: str | None = None
    top_of_book_rows: int = 0
    # Where a book was invalid (a GAP until the BOOK_CLEAR that restored it; to_* None: until
    # the end), as {"symbol", "from_position", "from_ts_recv", "to_position", "to_ts_recv"}.
    invalid_stretches: list[dict[str, Any]] = field(default_factory=list)
    invalid_stretch_count: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-serialisable values (what `lockstep replay --json` prints)."""
        return {
            "dataset": self.dataset,
            "events": self.events,
            "seconds": self.seconds,
            "events_per_second": self.events_per_second,
            "digest": self.digest,
            "top_of_book": {s: vars(t) for s, t in self.top_of_book.items()},
            "data_quality": {k: {"count": a.count, "first": a.first} for k, a in self.data_quality.items()},
            "kinds": self.kinds,
            "top_of_book_path": self.top_of_book_path,
            "top_of_book_rows": self.top_of_book_rows,
            "invalid_stretches": self.invalid_stretches,
            "invalid_stretch_count": self.invalid_stretch_count,
        }


class _TopOfBookSink:
    """Writes replay top-of-book rows as Parquet in real units."""

    def __init__(self, path: str, instruments: Sequence[Instrument]) -> None:
        self.location = locate(path)
        parent = os.path.dirname(self.location.path)
        if parent:
            self.location.fs.create_dir(parent, recursive=True)
        self._sink = self.location.fs.open_output_stream(self.location.path)
        self._writer = pq.ParquetWriter(self._sink, TOP_OF_BOOK_SCHEMA, compression="zstd")
        self._instruments = instruments
        self._symbols = pa.array([i.symbol for i in instruments], pa.string())
        self.columns = {name: np.empty(0, dtype) for name, dtype in TOP_OF_BOOK_COLUMNS}
        self.rows = 0

    def ensure(self, capacity: int) -> None:
        if len(self.columns["ts_recv"]) < capacity:
            self.columns = {name: np.empty(capacity, dtype) for name, dtype in TOP_OF_BOOK_COLUMNS}

    def flush(self, n: int) -> None:
        if n == 0:
            return
        c = {k: v[:n] for k, v in self.columns.items()}
        inst = c["instrument"]
        bid_price = np.empty(n)
        ask_price = np.empty(n)
        bid_qty = np.empty(n)
        ask_qty = np.empty(n)
        for index, instrument in enumerate(self._instruments):
            rows = inst == index if len(self._instruments) > 1 else slice(None)
            bid_price[rows] = to_real(c["bid_price"][rows], instrument.price_increment)
            ask_price[rows] = to_real(c["ask_price"][rows], instrument.price_increment)
            bid_qty[rows] = to_real(c["bid_qty"][rows], instrument.size_increment)
            ask_qty[rows] = to_real(c["ask_qty"][rows], instrument.size_increment)
        valid = c["valid"] != 0
        no_bid = (c["bid_qty"] == 0) | ~valid
        no_ask = (c["ask_qty"] == 0) | ~valid
        batch = pa.RecordBatch.from_arrays(
            [
                pa.array(c["ts_recv"]),
                pa.array(c["ts_event"]),
                pa.DictionaryArray.from_arrays(pa.array(inst.astype(np.int32)), self._symbols),
                pa.array(bid_price, mask=no_bid),
                pa.array(bid_qty, mask=no_bid),
                pa.array(ask_price, mask=no_ask),
                pa.array(ask_qty, mask=no_ask),
                pa.array(valid),
            ],
            schema=TOP_OF_BOOK_SCHEMA,
        )
        self._writer.write_batch(batch)
        self.rows += n

    def close(self) -> None:
        self._writer.close()
        self._sink.close()


def replay_batches(
    batches: Iterable[tuple[Columns, int]],
    instruments: Sequence[Instrument],
    *,
    top_of_book: str | None = None,
    dataset_name: str = "",
) -> ReplayResult:
    """Replay (columns, size) batches already in Processing Order. The core of :func:`replay`,
    usable on in-memory or generated data."""
    replayer = Replayer([i.book for i in instruments])
    sink = _TopOfBookSink(top_of_book, instruments) if top_of_book else None
    start = time.perf_counter()
    try:
        for cols, size in batches:
            if sink is not None:
                sink.ensure(size)
                sink.flush(replayer.apply(cols, size, sink.columns))
            else:
                replayer.apply(cols, size)
    finally:
        if sink is not None:
            sink.close()
    seconds = time.perf_counter() - start
    return replay_result(replayer, instruments, seconds, dataset_name, sink)


def replay(
    dataset: Dataset | str,
    *,
    top_of_book: str | None = None,
    data: str | None = None,
    batch_size: int = DEFAULT_READ_BATCH,
) -> ReplayResult:
    """Replay a canonical dataset (a Dataset, a path, or a name under DATA/canonical)."""
    ds = dataset if isinstance(dataset, Dataset) else Dataset.open(dataset, data=data)
    start = time.perf_counter()
    batches = ((cols, len(cols["ts_event"])) for cols in ds.iter_columns(batch_size))
    result = replay_batches(batches, ds.instruments, top_of_book=top_of_book, dataset_name=ds.path)
    seconds = time.perf_counter() - start
    eps = result.events / seconds if seconds > 0 else 0.0
    return ReplayResult(**{**vars(result), "seconds": seconds, "events_per_second": eps})


def state_digest(replayer: Replayer) -> str:
    return hashlib.sha256(replayer.serialize_state()).hexdigest()


def replay_result(
    replayer: Replayer,
    instruments: Sequence[Instrument],
    seconds: float,
    dataset_name: str,
    sink: _TopOfBookSink | None,
) -> ReplayResult:
    """What `replayer` holds after replaying `dataset_name` in `seconds`: each instrument's top of
    book, counts and anomalies, and the state digest. A backtest reports its market this way."""
    tops = {}
    for index, inst in enumerate(instruments):
        bp, bq, ap, aq = replayer.touch(index)
        if not replayer.book_valid(index):
            bq = aq = 0  # an invalid book has no touch to show
        tops[inst.symbol] = TopOfBook(
            inst.symbol,
            float(to_real(bp, inst.price_increment)) if bq else None,
            float(to_real(bq, inst.size_increment)) if bq else None,
            float(to_real(ap, inst.price_increment)) if aq else None,
            float(to_real(aq, inst.size_increment)) if aq else None,
        )
    quality = {
        name: Anomalies(
            count,
            [
                {"position": pos, "symbol": instruments[i].symbol if i < len(instruments) else str(i)}
                for pos, i in first
            ],
        )
        for name, (count, first) in replayer.anomalies().items()
    }
    kinds = {
        (EventKind(k).name.lower() if k in EventKind._value2member_map_ else str(k)): v
        for k, v in sorted(replayer.kind_counts().items())
    }
    events = replayer.events_applied
    stretch_count, raw_stretches = replayer.invalid_stretches()
    stretches = [
        {"symbol": instruments[i].symbol if i < len(instruments) else str(i), "from_position": fp,
         "from_ts_recv": fts, "to_position": tp, "to_ts_recv": tts}
        for i, fp, fts, tp, tts in raw_stretches
    ]
    return ReplayResult(
        dataset=dataset_name,
        events=events,
        seconds=seconds,
        events_per_second=events / seconds if seconds > 0 else 0.0,
        digest=state_digest(replayer),
        top_of_book=tops,
        data_quality=quality,
        kinds=kinds,
        top_of_book_path=sink.location.uri if sink else None,
        top_of_book_rows=sink.rows if sink else 0,
        invalid_stretches=stretches,
        invalid_stretch_count=stretch_count,
    )


__all__ = ["Anomalies", "ReplayResult", "Side", "TopOfBook", "replay", "replay_batches", "to_real"]
