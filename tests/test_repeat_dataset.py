"""tools/repeat_dataset.py: a dataset repeated in time keeps Processing Order, copies every column
but the clocks and seq, and each repetition replays exactly like the source (clean seams)."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from shared_data import shared_file

from lockstep.backtest.replay import replay
from lockstep.data.dataset import Dataset, DatasetWriter
from lockstep.data.pipeline import import_data
from lockstep.data.synth import generate, instruments_for, iter_synthetic
from lockstep.events import COLUMN_NAMES, EventKind, Flag

TOOL = Path(__file__).resolve().parents[1] / "tools" / "repeat_dataset.py"
_spec = importlib.util.spec_from_file_location("repeat_dataset", TOOL)
repeat_tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(repeat_tool)
repeat_dataset = repeat_tool.repeat_dataset

TIMES = 3


def _columns(ds: Dataset) -> dict[str, np.ndarray]:
    table = ds.read_all()
    return {name: table.column(name).to_numpy() for name in COLUMN_NAMES}


def _without_clears(data_root: str, events: int, instruments: int) -> Dataset:
    """A synthetic market whose snapshots lost their BOOK_CLEAR: the source does not begin with a
    clear, so repeating it must insert one per instrument at every seam."""
    with DatasetWriter("no-clears", instruments_for(instruments), data=data_root) as w:
        for cols in iter_synthetic(events, seed=11, instruments=instruments):
            keep = cols["kind"] != EventKind.BOOK_CLEAR
            w.write({k: v[keep] for k, v in cols.items()})
    return w.dataset


def _tob_rows(path: Path) -> dict[str, np.ndarray]:
    t = pq.read_table(path).to_pydict()
    return {k: np.asarray(v, dtype=object if k == "symbol" else None) for k, v in t.items()}


def _check_repetitions(single: Dataset, repeated: Dataset, inserted_per_rep: int, tmp_path: Path) -> None:
    src = _columns(single)
    out = _columns(repeated)
    n = single.rows
    # event count
    assert repeated.rows == TIMES * n + (TIMES - 1) * inserted_per_rep == len(out["ts_recv"])
    # Processing Order holds across the seams
    assert np.all(np.diff(out["ts_recv"]) >= 0)
    assert repeated.manifest["time_range"]["ts_recv"][0] == single.manifest["time_range"]["ts_recv"][0]

    span = int(src["ts_recv"][-1] - src["ts_recv"][0])
    period = span + 1_000_000
    meta = repeated.manifest["source"]
    assert meta["times"] == TIMES and meta["period_ns"] == period
    seq_period = meta["seq_period"]
    nz = src["seq"][src["seq"] != 0]
    assert seq_period == int(nz.max()) - int(nz.min()) + 1

    pos = 0
    prev_seq_max = -1
    for k in range(TIMES):
        if k > 0 and inserted_per_rep:
            clears = {c: v[pos : pos + inserted_per_rep] for c, v in out.items()}
            assert np.all(clears["kind"] == EventKind.BOOK_CLEAR)
            assert np.all(clears["flags"] == Flag.SNAPSHOT | Flag.LAST)
            assert np.all(clears["ts_recv"] == src["ts_recv"][0] + k * period)
            assert sorted(clears["instrument"].tolist()) == list(range(inserted_per_rep))
            pos += inserted_per_rep
        rep = {c: v[pos : pos + n] for c, v in out.items()}
        pos += n
        # everything but the clocks and seq is identical; those are shifted
        for c in COLUMN_NAMES:
            if c in ("ts_event", "ts_recv"):
                np.testing.assert_array_equal(rep[c] - src[c], np.full(n, k * period, dtype=np.int64))
            elif c == "seq":
                shifted = np.where(src["seq"] != 0, src["seq"] + np.uint64(k * seq_period), src["seq"])
                np.testing.assert_array_equal(rep[c], shifted)
            else:
                np.testing.assert_array_equal(rep[c], src[c])
        rep_nz = rep["seq"][rep["seq"] != 0]
        assert int(rep_nz.min()) > prev_seq_max  # seq ranges of repetitions never overlap
        prev_seq_max = int(rep_nz.max())
    assert pos == repeated.rows

    # Replay: the last repetition ends in the single replay's state, and on the way every
    # repetition shows the single replay's top of book (nothing carried across a seam).
    one = replay(single, top_of_book=str(tmp_path / "one.parquet"))
    many = replay(repeated, top_of_book=str(tmp_path / "many.parquet"))
    assert many.events == repeated.rows
    assert many.top_of_book == one.top_of_book
    for name, a in one.data_quality.items():
        assert many.data_quality[name].count == TIMES * a.count, name
    tob1 = _tob_rows(tmp_path / "one.parquet")
    tobn = _tob_rows(tmp_path / "many.parquet")
    m = len(tob1["ts_recv"])
    # each inserted clear is a message of its own (LAST): one empty top-of-book row per clear
    assert len(tobn["ts_recv"]) == TIMES * m + (TIMES - 1) * inserted_per_rep
    last = {c: v[-m:] for c, v in tobn.items()}
    np.testing.assert_array_equal(last["ts_recv"] - tob1["ts_recv"], (TIMES - 1) * period)
    for c in ("symbol", "bid_price", "bid_qty", "ask_price", "ask_qty"):
        assert list(last[c]) == list(tob1[c]), c


def test_repeat_synthetic_begins_with_snapshots(data_root, tmp_path):
    """Synthetic markets begin each instrument with a snapshot (BOOK_CLEAR first): nothing inserted."""
    single = generate(20_000, seed=5, instruments=2, data=data_root)
    repeated = repeat_dataset(single, TIMES, "synth-x3", data=data_root)
    assert repeated.manifest["source"]["inserted_book_clears"]["total"] == 0
    _check_repetitions(single, repeated, 0, tmp_path)


def test_repeat_inserts_clears_when_source_lacks_snapshot(data_root, tmp_path):
    single = _without_clears(data_root, 20_000, 2)
    repeated = repeat_dataset(single.path, TIMES, "no-clears-x3", data=data_root)
    info = repeated.manifest["source"]["inserted_book_clears"]
    assert info == {"instruments": ["SYN0", "SYN1"], "per_repetition": 2, "total": 2 * (TIMES - 1)}
    _check_repetitions(single, repeated, 2, tmp_path)


def test_repeat_once_is_a_copy(data_root):
    single = generate(5_000, seed=2, data=data_root)
    copy = repeat_dataset(single, 1, "copy", data=data_root)
    assert copy.read_all().equals(single.read_all())


def test_cli_by_name(data_root):
    generate(3_000, seed=4, data=data_root, name="small")
    out = subprocess.run(
        [sys.executable, str(TOOL), "small", "2", "small-x2", "--data", data_root, "--json"],
        check=True, capture_output=True, text=True,
    )
    report = json.loads(out.stdout)
    assert report["events"] == 6_000 and report["times"] == 2
    assert Dataset.open("small-x2", data=data_root).rows == 6_000


def test_bad_arguments(data_root):
    single = generate(1_000, seed=2, data=data_root)
    with pytest.raises(ValueError):
        repeat_dataset(single, 0, "x", data=data_root)
    with pytest.raises(ValueError):
        repeat_dataset(single, 2, "x", data=data_root, gap_ns=0)


def test_real_usdm_capture_repeats_cleanly(data_root, tmp_path):
    """The real capture begins with bookTicker/trade messages before its snapshot: one clear per seam."""
    path = shared_file("binance/usdm/btcusdt_20240808.gz")
    single = Dataset.open(import_data("binance", [str(path)], data=data_root).dataset)
    repeated = repeat_dataset(single, 2, "usdm-x2", data=data_root)
    assert repeated.manifest["source"]["inserted_book_clears"]["per_repetition"] == 1
    assert repeated.rows == 2 * single.rows + 1
    one = replay(single)
    two = replay(repeated)
    assert two.top_of_book == one.top_of_book
    for name, a in one.data_quality.items():
        assert two.data_quality[name].count == 2 * a.count, name
