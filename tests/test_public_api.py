"""The public face: what a user embeds is importable from the package top, documented, typed for
checkers, and a backtest result hands its outputs over as Arrow tables."""
from __future__ import annotations

import math
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from lockstep.backtest.runner import run_backtest
from lockstep.data.synth import generate

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def comparable(table: pa.Table) -> dict[str, list]:
    """Columns as lists with NaN spelled "nan" (NaN != NaN would make equal tables differ)."""
    return {k: ["nan" if isinstance(v, float) and math.isnan(v) else v for v in col]
            for k, col in table.to_pydict().items()}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("api") / "data"
    ds = generate(60_000, seed=11, data=str(root))
    result = run_backtest(EXAMPLES / "market_maker.toml",
                          overrides=[f"dataset={ds.path}", "output.report=false"], data=str(root))
    return result


@pytest.mark.parametrize("name", ["orders", "fills", "denials", "pnl"])
def test_result_tables_are_the_files_the_run_wrote(run, name):
    table = getattr(run, f"{name}_table")()
    assert isinstance(table, pa.Table) and table.num_rows > 0
    written = pq.read_table(f"{run.run_dir}/{name}.parquet")
    assert table.schema == written.schema
    assert comparable(table) == comparable(written)


def test_fills_table_is_the_filled_rows_of_orders(run):
    orders, fills = run.orders_table(), run.fills_table()
    filled = orders.filter(pc.equal(orders["kind"].cast(pa.string()), "order_filled"))
    assert fills.num_rows == filled.num_rows == run.fills
    for column in ("order_id", "price", "qty", "fee", "ts_recv"):
        assert fills[column].to_pylist() == filled[column].to_pylist()


def test_a_table_the_run_did_not_write_reads_empty_with_its_schema(tmp_path):
    root = tmp_path / "data"
    ds = generate(20_000, seed=2, data=str(root))
    # risk halted: every intent is denied, so no order ever exists
    result = run_backtest(EXAMPLES / "market_maker.toml", data=str(root),
                          overrides=[f"dataset={ds.path}", "output.report=false", 'risk.mode="halted"'])
    assert result.summary["orders"] == 0
    orders, fills = result.orders_table(), result.fills_table()
    assert orders.num_rows == fills.num_rows == 0
    assert "kind" in orders.schema.names and "kind" not in fills.schema.names
    assert result.denials_table().num_rows > 0
