"""Canonical datasets: encoding round trips, manifests, versioning, bad datasets."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from lockstep.core.risk import OrderRules
from lockstep.data.dataset import Dataset, DatasetWriter, Instrument, list_datasets
from lockstep.errors import DatasetError
from lockstep.events import COLUMN_NAMES, COLUMNS, SCHEMA, to_columns, to_record_batch

INSTRUMENTS = [Instrument("AAA", "TEST", "0.01", "0.001"), Instrument("BBB", "TEST", "0.5", "1")]


@st.composite
def event_columns(draw, max_size=300):
    n = draw(st.integers(0, max_size))
    cols = {}
    for name, dtype in COLUMNS:
        cols[name] = draw(hnp.arrays(dtype, n))
    cols["ts_recv"] = np.sort(cols["ts_recv"])
    cols["instrument"] = cols["instrument"] % len(INSTRUMENTS)
    return cols


@settings(max_examples=40, deadline=None)
@given(cols=event_columns(), rows_per_file=st.integers(1, 120), row_group=st.integers(1, 64))
def test_parquet_round_trip_preserves_every_value(tmp_path_factory, cols, rows_per_file, row_group):
    root = str(tmp_path_factory.mktemp("data"))
    n = len(cols["ts_event"])
    with DatasetWriter("rt", INSTRUMENTS, data=root, rows_per_file=rows_per_file,
                       row_group_size=row_group) as w:
        half = n // 2
        w.write({k: v[:half] for k, v in cols.items()})
        w.write({k: v[half:] for k, v in cols.items()})
    ds = w.dataset
    assert ds.rows == n
    ds.verify()
    back = [to_columns(b) for b in ds.iter_batches(batch_size=37)]
    for name in COLUMN_NAMES:
        got = np.concatenate([b[name] for b in back]) if back else np.empty(0, cols[name].dtype)
        assert got.dtype == cols[name].dtype
        np.testing.assert_array_equal(got, cols[name])
    if n:
        assert ds.manifest["time_range"]["ts_recv"] == [int(cols["ts_recv"].min()), int(cols["ts_recv"].max())]


def test_numpy_and_arrow_views_share_memory():
    cols = {name: np.arange(10).astype(dtype) for name, dtype in COLUMNS}
    batch = to_record_batch(cols)
    assert batch.schema.equals(SCHEMA)
    again = to_columns(batch)
    for name in COLUMN_NAMES:
        assert np.shares_memory(again[name], cols[name]), name


def test_to_columns_rejects_wrong_types():
    cols = {name: np.arange(3).astype(dtype) for name, dtype in COLUMNS}
    batch = to_record_batch(cols)
    bad = batch.set_column(COLUMN_NAMES.index("price"), "price", pa.array([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="price"):
        to_columns(bad)
    with pytest.raises(ValueError, match="missing columns"):
        to_columns(batch.drop_columns(["qty"]))


def _cols(n, start=0):
    cols = {name: np.zeros(n, dtype) for name, dtype in COLUMNS}
    cols["ts_recv"] = np.arange(start, start + n, dtype=np.int64)
    return cols


def test_versions_are_never_overwritten(data_root):
    for k in range(2):
        with DatasetWriter("same", INSTRUMENTS, data=data_root) as w:
            w.write(_cols(5 + k))
    assert [d.manifest["version"] for d in list_datasets(data_root)] == [1, 2]
    assert Dataset.open("same", data=data_root).rows == 6  # newest by default
    assert Dataset.open(os.path.join(data_root, "canonical", "same", "v1")).rows == 5


def test_writer_refuses_ts_recv_going_backwards(data_root):
    with pytest.raises(DatasetError, match="row 3"):
        with DatasetWriter("bad", INSTRUMENTS, data=data_root) as w:
            c = _cols(5)
            c["ts_recv"][3] = -1
            w.write(c)
    with pytest.raises(DatasetError, match="row 5"):
        with DatasetWriter("bad", INSTRUMENTS, data=data_root) as w:
            w.write(_cols(5, start=100))
            w.write(_cols(5, start=0))
    # a failed write publishes nothing
    assert list_datasets(data_root) == []


def test_writer_refuses_instrument_outside_table(data_root):
    with pytest.raises(DatasetError, match="instrument index 7"):
        with DatasetWriter("bad", INSTRUMENTS, data=data_root) as w:
            c = _cols(4)
            c["instrument"][2] = 7
            w.write(c)


def test_open_reports_missing_and_corrupt_datasets(data_root):
    with pytest.raises(DatasetError, match="no such dataset"):
        Dataset.open("nope", data=data_root)
    with DatasetWriter("x", INSTRUMENTS, data=data_root) as w:
        w.write(_cols(50))
    ds = w.dataset
    manifest_path = os.path.join(ds.path, "manifest.json")
    part = os.path.join(ds.path, "part-00000.parquet")
    table = pq.read_table(part)
    pq.write_table(table.slice(0, 10), part)
    with pytest.raises(DatasetError, match="sha256"):
        Dataset.open(ds.path).verify()
    with pytest.raises(DatasetError, match="10 rows, manifest says 50"):
        list(Dataset.open(ds.path).iter_batches())
    with open(manifest_path, "w") as f:
        f.write("{not json")
    with pytest.raises(DatasetError, match="invalid JSON"):
        Dataset.open(ds.path)
    with open(manifest_path, "w") as f:
        json.dump({"format": "lockstep.canonical-dataset", "schema_version": 99}, f)
    with pytest.raises(DatasetError, match="schema version 99"):
        Dataset.open(ds.path)


def test_instrument_validation():
    with pytest.raises(ValueError, match="price_increment"):
        Instrument("X", "V", "0", "1")
    with pytest.raises(ValueError, match="book"):
        Instrument("X", "V", "1", "1", book="l4")
    with pytest.raises(ValueError, match="unknown keys"):
        Instrument.from_dict({"symbol": "X", "venue": "V", "price_increment": "1", "size_increment": "1", "tick": 1})


def test_order_entry_rules_are_kept_apart_from_the_data_increments(tmp_path):
    spot = Instrument("BTCUSDT", "binance-spot", "0.01", "0.000001", tick_size="0.01", lot_size="0.00001",
                      min_qty="0.00001", min_notional="5")
    plain = Instrument("ETHUSDT", "binance-spot", "0.01", "0.0001")
    with DatasetWriter("rules", [spot, plain], data=str(tmp_path)) as w:
        w.write(_cols(3))
    manifest = json.loads((tmp_path / "canonical" / "rules" / "v1" / "manifest.json").read_text())
    # rules are written where known and left out where unknown
    assert manifest["instruments"][0]["lot_size"] == "0.00001"
    assert not {"tick_size", "lot_size", "min_qty", "min_notional"} & set(manifest["instruments"][1])
    assert Dataset.open("rules", data=str(tmp_path)).instruments == [spot, plain]
    # in data units: tick 1 price increment, lot 10 size increments, min qty 10, min notional
    # 5 / (0.01 x 0.000001) = 500,000,000 ticks x lots
    rules, notes = spot.order_rules()
    assert (rules.price_tick, rules.qty_lot, rules.min_qty, rules.min_notional, notes) == (1, 10, 10, 500_000_000, [])
    assert plain.order_rules() == (OrderRules(), [])
    # minimums round up to whole data units; a lot off the data grid is said, and held exactly
    odd = Instrument("X", "V", "0.01", "0.002", lot_size="0.005", min_qty="0.003", min_notional="0.00001")
    rules, (note,) = odd.order_rules()
    assert (rules.qty_lot, rules.min_qty, rules.min_notional) == (5, 2, 1)
    assert "lot_size 0.005" in note and "multiples of 0.010" in note
    with pytest.raises(ValueError, match="min_notional"):
        Instrument("X", "V", "1", "1", min_notional="-1")


def test_a_manifest_without_order_entry_rules_still_loads(tmp_path):
    with DatasetWriter("old", INSTRUMENTS, data=str(tmp_path)) as w:
        w.write(_cols(2))
    path = tmp_path / "canonical" / "old" / "v1" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["instruments"] = [{k: i[k] for k in ("symbol", "venue", "price_increment", "size_increment")}
                               for i in manifest["instruments"]]  # as written before rules existed
    path.write_text(json.dumps(manifest))
    (inst, *_) = Dataset.open("old", data=str(tmp_path)).instruments
    assert (inst.tick_size, inst.lot_size, inst.min_qty, inst.min_notional) == (None, None, None, None)
    assert inst.order_rules() == (OrderRules(), [])


def test_storage_root_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCKSTEP_DATA", str(tmp_path / "envroot"))
    with DatasetWriter("env", INSTRUMENTS) as w:
        w.write(_cols(3))
    assert w.dataset.path.startswith(str(tmp_path / "envroot" / "canonical" / "env"))


def test_uri_root_works_like_a_path(tmp_path):
    uri = "file://" + str(tmp_path / "uriroot")
    with DatasetWriter("u", INSTRUMENTS, data=uri) as w:
        w.write(_cols(7))
    ds = Dataset.open("u", data=uri)
    assert ds.rows == 7
    ds.verify()
    assert sum(b.num_rows for b in ds.iter_batches()) == 7


def test_a_killed_writers_staging_folder_is_removed_by_the_next_writer_and_no_other(tmp_path):
    """kill -9 in the middle of writing a dataset leaves its staging folder; the next writer on
    this host removes it, and leaves alone those of live writers and of other hosts."""
    root = tmp_path / "data"
    code = ("import os, sys, numpy as np\n"
            "from lockstep.data.dataset import DatasetWriter, Instrument\n"
            "w = DatasetWriter('victim', [Instrument('X', 'v', '0.01', '1')], data=sys.argv[1])\n"
            "print('staged', flush=True)\n"
            "os.kill(os.getpid(), 9)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -9 and "staged" in proc.stdout
    canonical = root / "canonical"
    (dead,) = [d.name for d in canonical.iterdir() if d.name.startswith(".writing-")]
    host = socket.gethostname()
    live = canonical / f".writing-{host}-{os.getpid()}-0000live"
    elsewhere = canonical / ".writing-some-other-host-1-0000away"
    for keep in (live, elsewhere):
        keep.mkdir()
        (keep / "part.parquet").write_bytes(b"being written")
    writer = DatasetWriter("next", [Instrument("X", "v", "0.01", "1")], data=str(root))
    writer.close()
    left = sorted(d.name for d in canonical.iterdir() if d.name.startswith(".writing-"))
    assert dead not in left
    assert left == sorted([live.name, elsewhere.name])
