"""Whole backtests of the example market makers: events per second, and peak memory vs length.

Data: the synthetic L2 market (10M events) and the real Binance USD-M BTCUSDT capture, imported
and repeated in time to at least 10M events (tools/repeat_dataset.py). The timed part is
run_backtest() end to end: Parquet read-ahead, the compiled event loop with the strategy, record
draining and the Parquet outputs, summary and digest (the HTML report is switched off: it is
not per-event work). Built before timing: the datasets.

The side-by-side with hftbacktest is benchmarks/hftbacktest_side_by_side.py (optional dependency).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import report_rate, scaled
from shared_data import shared_file

from lockstep.backtest.runner import run_backtest
from lockstep.data.dataset import Dataset
from lockstep.data.synth import generate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

CONFIGS = {
    "python": ROOT / "examples" / "market_maker.toml",
    "compiled": ROOT / "examples" / "market_maker_compiled.toml",
}


@pytest.fixture(scope="module")
def synthetic(bench_root) -> str:
    return generate(scaled(10_000_000), seed=11, data=bench_root, name="bench-mm-synthetic").path


@pytest.fixture(scope="module")
def real_repeated(bench_root) -> str:
    from repeat_dataset import repeat_dataset

    from lockstep.data.pipeline import import_data

    report = import_data("binance", [shared_file("binance/usdm/btcusdt_20240808.gz")], data=bench_root,
                         name="bench-usdm")
    one = Dataset.open(report.dataset)
    times = max(1, -(-scaled(10_000_000) // one.rows))
    return repeat_dataset(one, times, "bench-usdm-repeated", data=bench_root).path


def _backtest(which: str, dataset: str, root: str):
    return run_backtest(CONFIGS[which], overrides=[f"dataset={dataset}", "output.report=false"],
                        data=root)


@pytest.mark.parametrize("which", ["compiled", "python"])
@pytest.mark.parametrize("data", ["synthetic", "real_repeated"])
def test_market_maker_backtest(benchmark, request, bench_root, which, data):
    dataset = request.getfixturevalue(data)
    result = benchmark.pedantic(_backtest, args=(which, dataset, bench_root), rounds=2, iterations=1)
    report_rate(benchmark, result.events, "events")
    benchmark.extra_info["fills"] = result.fills
    benchmark.extra_info["strategy_calls"] = result.summary["counters"]["strategy_calls"]
    print(f"  fills {result.fills:,}  orders {result.summary['orders']:,}  "
          f"strategy calls {result.summary['counters']['strategy_calls']:,}  pnl {result.pnl:.6g}")
    assert result.complete and result.events == Dataset.open(dataset).rows


# The child reports its own high-water mark, so only the backtest's own process is measured.
_CHILD = (
    "import json, sys\n"
    "from lockstep.backtest.runner import run_backtest\n"
    "r = run_backtest(sys.argv[1], overrides=['dataset=' + sys.argv[2], 'output.report=false'], data=sys.argv[3])\n"
    "hwm = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:'))\n"
    "print(json.dumps({'events': r.events, 'hwm_kib': hwm}))\n"
)


def test_memory_flat_in_length(benchmark, bench_root):
    """Peak memory of the compiled market maker on a dataset 10x longer than another. The short
    one is 2M events: below about 2M the run has not reached its steady state yet (books,
    buffers and allocator pools still growing), which a shorter baseline would mistake for
    growth with length."""
    short = generate(scaled(2_000_000), seed=12, data=bench_root, name="bench-mm-short").path
    long = generate(scaled(20_000_000), seed=12, data=bench_root, name="bench-mm-long").path

    def child(path: str) -> dict:
        out = subprocess.run([sys.executable, "-c", _CHILD, str(CONFIGS["compiled"]), path, bench_root],
                             capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    small = child(short)
    big = benchmark.pedantic(child, args=(long,), rounds=1, iterations=1)
    ratio = big["hwm_kib"] / small["hwm_kib"]
    benchmark.extra_info.update(short_hwm_kib=small["hwm_kib"], long_hwm_kib=big["hwm_kib"], ratio=ratio)
    print(f"\npeak memory: {small['events']:,} events {small['hwm_kib'] / 1024:.0f} MiB, "
          f"{big['events']:,} events {big['hwm_kib'] / 1024:.0f} MiB, ratio {ratio:.3f}")
    assert big["events"] == 10 * small["events"] or big["events"] > small["events"]


@pytest.mark.parametrize("which", ["compiled", "python"])
def test_event_loop_in_memory(benchmark, real_repeated, which):
    """The engine loop alone (strategy, risk, queue, venue, records drained each batch) on the
    repeated real capture already decoded into memory: what the core does once Parquet decoding
    is out of the way."""
    from lockstep.backtest.config import load_config
    from lockstep.backtest.runner import strategy_engine, traded_instruments

    ds = Dataset.open(real_repeated)
    batches = [{k: v.copy() for k, v in c.items()} for c in ds.iter_columns(1 << 18)]
    cfg = load_config(CONFIGS[which], [f"dataset={ds.path}"])

    def run():
        traded = traded_instruments(cfg, ds)
        _, engine, _, _ = strategy_engine(cfg, ds.instruments, traded,
                                          book_types=[i.book for i in ds.instruments], base_dir=".")
        for c in batches:
            engine.run(c, len(c["kind"]))
            engine.drain()
        engine.finish()
        return engine.counters()

    counters = benchmark.pedantic(run, rounds=3, iterations=1)
    report_rate(benchmark, counters["events"], "events")
    assert counters["events"] == ds.rows
