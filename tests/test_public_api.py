"""The public face: what a user embeds is importable from the package top, documented, typed for
checkers, and a backtest result hands its outputs over as Arrow tables."""
from __future__ import annotations

import ast
import math
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import lockstep
from lockstep._bindings import engine as engine_binding
from lockstep.backtest.runner import run_backtest
from lockstep.data.synth import generate

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
STUB = Path(engine_binding.__file__).parent / "engine.pyi"


def comparable(table: pa.Table) -> dict[str, list]:
    """Columns as lists with NaN spelled "nan" (NaN != NaN would make equal tables differ)."""
    return {k: ["nan" if isinstance(v, float) and math.isnan(v) else v for v in col]
            for k, col in table.to_pydict().items()}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("api") / "data"
    ds = generate(60_000, seed=11, data=str(root))
    # one open order at a time: the market maker's second quote is denied, so every table has rows
    result = run_backtest(EXAMPLES / "market_maker.toml",
                          overrides=[f"dataset={ds.path}", "output.report=false", "risk.max_open_orders=1"],
                          data=str(root))
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


def test_a_table_without_rows_is_an_empty_file_with_its_schema(tmp_path):
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
    for name in ("orders", "fills"):
        assert pq.read_table(f"{result.run_dir}/{name}.parquet").schema == getattr(result, f"{name}_table")().schema


# ---------------------------------------------------------------------------------------------
# What the package top offers


def public_members(cls: type, *, attributes: bool = True) -> dict[str, object]:
    """The public methods and properties `cls` defines itself; with `attributes`, also the
    compiled classes' fields (which cannot carry docstrings of their own)."""
    return {name: member for name, member in vars(cls).items()
            if not name.startswith("_") and (callable(member) or isinstance(member, property)
                                             or attributes and type(member).__name__ == "getset_descriptor")}


def test_everything_in_all_is_importable_from_the_top_and_is_the_one_definition():
    import importlib

    for name in lockstep.__all__:
        obj = getattr(lockstep, name)
        home = getattr(obj, "__module__", None)
        if home and home.startswith("lockstep.") and not name.startswith("__"):
            # the same object its home module defines, not a second copy
            assert getattr(importlib.import_module(home), obj.__name__) is obj, name


@pytest.mark.parametrize("cls", [c for c in (getattr(lockstep, n) for n in lockstep.__all__)
                                 if isinstance(c, type) and not issubclass(c, (int, BaseException))],
                         ids=lambda c: c.__name__)
def test_every_public_class_and_method_has_a_docstring(cls):
    assert (cls.__doc__ or "").strip(), cls.__name__
    undocumented = [name for name, member in public_members(cls, attributes=False).items()
                    if not (getattr(member, "__doc__", None) or "").strip()]
    assert undocumented == []


def test_the_stub_declares_exactly_what_the_compiled_context_offers():
    stub = ast.parse(STUB.read_text())
    declared = {}
    for node in stub.body:
        if isinstance(node, ast.ClassDef):
            declared[node.name] = {n.name for n in node.body if isinstance(n, ast.FunctionDef)
                                   and not n.name.startswith("_")} | {
                n.target.id for n in node.body if isinstance(n, ast.AnnAssign)}
    for cls in (lockstep.Context, lockstep.OrderUpdate, lockstep.CompiledStrategy):
        assert declared[cls.__name__] == set(public_members(cls)), cls.__name__


USER_STRATEGY = '''
import lockstep

class Quoter(lockstep.Strategy):
    def on_book(self, ctx: lockstep.Context, instrument: int) -> None:
        bid, bid_qty, ask, ask_qty = ctx.touch(instrument)
        lots: int = ctx.to_lots(instrument, "0.001")
        ctx.submit_limit(instrument, lockstep.Side.BID, bid, lots, lockstep.TimeInForce.POST_ONLY)
        {mistake}

result: lockstep.BacktestResult = lockstep.run_backtest("quoter.toml")
digest: str = result.digest
'''


@pytest.mark.parametrize("mistake, complaint", [
    ("", None),
    ('ctx.submit_limit(instrument, "buy", 1.5, lots)', "incompatible type"),
    ("ctx.no_such_call()", 'has no attribute "no_such_call"'),
])
def test_a_type_checker_sees_the_strategy_api(tmp_path, mistake, complaint):
    """With py.typed and the stub, mypy checks a user's strategy against our signatures (without
    them it could only say the package is untyped)."""
    user = tmp_path / "quoter.py"
    user.write_text(USER_STRATEGY.format(mistake=mistake))
    proc = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "--strict",
                           "--cache-dir", str(tmp_path / ".mypy"), str(user)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    if complaint is None:
        assert proc.returncode == 0, proc.stdout
    else:
        assert proc.returncode == 1 and complaint in proc.stdout, proc.stdout
        assert "missing library stubs or py.typed" not in proc.stdout


def test_the_names_type_checkers_see_are_the_names_loaded_at_run_time():
    """lockstep/__init__.py declares each export twice (imports under TYPE_CHECKING for checkers,
    _HOMES for loading on first use): the two must name the same object for every export."""
    tree = ast.parse(Path(lockstep.__file__).read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING")
    declared = {(alias.asname or alias.name): (node.module, alias.name)
                for node in block.body if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert declared == lockstep._HOMES
    assert set(lockstep.__all__) == set(declared) | {"__version__"}


def test_importing_the_package_loads_no_layer_until_a_name_is_used():
    code = ("import sys, lockstep; before = sorted(m for m in sys.modules if m.startswith('lockstep.'));"
            "lockstep.Strategy; print(before, 'lockstep._bindings.engine' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[] True"
