"""Backtests end to end on synthetic data: the order lifecycle, determinism (in process and in a
subprocess), the Python and compiled market makers against each other, counters against the
output files, a failing strategy and config errors through the CLI, quickstart.

The hand-built scenarios whose fills are reasoned out exactly are in test_engine.py.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from lockstep.backtest.runner import BacktestFailed, run_backtest
from lockstep.core.risk import IntentKind, RiskReason
from lockstep.core.strategy import Side
from lockstep.data.synth import generate
from lockstep.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
MM_PY = REPO / "examples" / "market_maker.toml"
MM_COMPILED = REPO / "examples" / "market_maker_compiled.toml"
MS = 1_000_000
OUTPUTS = ("orders", "fills", "denials", "pnl")
RESPONSES = {"order_accepted", "order_rejected", "order_filled", "order_canceled", "order_expired",
             "order_replaced", "cancel_rejected", "replace_rejected"}
SUBMITS = {"order_submitted", "cancel_submitted", "replace_submitted"}


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """A storage root with one 100k-event synthetic L2 dataset; returns (root, dataset path)."""
    root = tmp_path_factory.mktemp("bt") / "data"
    root.mkdir()
    ds = generate(100_000, seed=3, data=str(root))
    return str(root), ds.path


@pytest.fixture(scope="module")
def synth_l3(synth):
    """A 50k-event synthetic L3 dataset in the same root."""
    root, _ = synth
    return root, generate(50_000, seed=5, data=root, book="l3").path


def run_dir(result_or_summary) -> Path:
    d = result_or_summary.run_dir if hasattr(result_or_summary, "run_dir") else result_or_summary["run_dir"]
    return Path(d.removeprefix("file://"))


def read(result, name: str) -> dict[str, list]:
    """A run's output table as lists (NaN as the string "nan", so that equal tables compare equal)."""
    path = run_dir(result) / f"{name}.parquet"
    return {k: ["nan" if isinstance(v, float) and math.isnan(v) else v for v in col]
            for k, col in pq.read_table(path).to_pydict().items()}


def mm(synth, config=MM_PY, *extra: str):
    root, ds = synth
    return run_backtest(config, overrides=[f"dataset={ds}", "output.report=false", *extra], data=root)


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "LOCKSTEP_DATA"}
    return subprocess.run([sys.executable, "-m", "lockstep", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


# ---------------------------------------------------------------------------------------------
# 1. Order lifecycle


def test_every_order_starts_submitted_before_any_venue_response(synth):
    result = mm(synth)
    o = read(result, "orders")
    kinds, ids = o["kind"], o["order_id"]
    ts_recv, ts_event = np.array(o["ts_recv"]), np.array(o["ts_event"])
    assert len(kinds) > 1000 and result.summary["fills"] > 50  # the run did trade
    # processing order: the core clock never goes back along the log
    assert np.all(np.diff(ts_recv) >= 0)
    first: dict[int, int] = {}
    submitted_at: dict[int, int] = {}
    cancel_at: dict[int, int] = {}
    seen_kinds: dict[int, list[str]] = {}
    for i, (k, oid) in enumerate(zip(kinds, ids)):
        seen_kinds.setdefault(oid, []).append(k)
        if oid not in first:
            first[oid] = i
            assert k == "order_submitted", f"order {oid} begins with {k} at row {i}"
            submitted_at[oid] = ts_recv[i]
            # the submitted row is stamped with the dispatch time on both clocks
            assert ts_event[i] == ts_recv[i]
            continue
        assert k != "order_submitted", f"order {oid} submitted twice"
        if k == "cancel_submitted":
            cancel_at.setdefault(oid, ts_recv[i])
        if k in RESPONSES:
            # entry latency to the venue, response latency back: at least 2 ms after dispatch
            assert ts_recv[i] >= submitted_at[oid] + 2 * MS, (oid, k)
            assert ts_event[i] >= submitted_at[oid] + 1 * MS, (oid, k)
            assert ts_recv[i] >= ts_event[i] + 1 * MS, (oid, k)
        if k == "order_canceled":
            assert ts_recv[i] >= cancel_at[oid] + 2 * MS, oid
    # each order ends at most once, and nothing about it follows its end but a late cancel's
    # submission and rejection
    terminal = {"order_rejected", "order_canceled", "order_expired"}
    for oid, ks in seen_kinds.items():
        assert sum(k in terminal for k in ks) <= 1, (oid, ks)
        if "order_canceled" in ks:
            assert "cancel_submitted" in ks
    assert result.summary["counters"]["state_errors"] == 0


# ---------------------------------------------------------------------------------------------
# 9. Counters against the files


def test_counters_match_the_output_files(synth):
    result = mm(synth)
    s = result.summary
    c = s["counters"]
    o = read(result, "orders")
    kinds = Counter(o["kind"])
    assert c["orders"] == s["orders"] == kinds["order_submitted"]
    assert c["cancels"] == s["cancels"] == kinds["cancel_submitted"]
    assert c["responses"] == sum(kinds[k] for k in RESPONSES)
    assert c["fills"] == s["fills"] == kinds["order_filled"] == result.fills
    fills = read(result, "fills")
    assert len(fills["order_id"]) == s["fills"]
    assert c["venue"]["messages"] == c["orders"] + c["cancels"] + c["replaces"]
    # every venue answer either reached the core or is still in flight at the end
    venue_answers = sum(c["venue"][k] for k in ("accepted", "rejected", "fills", "canceled", "expired",
                                                "replaced", "cancel_rejected", "replace_rejected"))
    assert venue_answers == c["responses"] + c["venue"]["responses_in_flight_at_end"]
    # denials: file rows, summary by reason, engine counter
    den = read(result, "denials")
    assert s["denials"] == dict(Counter(den["reason"])) and sum(s["denials"].values()) == s["denied"]
    assert s["denied"] == c["denied"] == len(den["reason"])
    # the position at the end is the signed sum of the fills, in lots and in real units
    signed_lots = sum(q if side == 1 else -q for side, q in zip(fills["side"], fills["qty_lots"]))
    pnl = read(result, "pnl")
    assert pnl["position"][-1] == pytest.approx(signed_lots * 0.001, abs=1e-12)
    signed = np.cumsum([q if side == 1 else -q for side, q in zip(fills["side"], fills["qty_lots"])])
    # Risk's max_position (0.02, projected over open orders) is never exceeded
    assert np.abs(signed).max() <= 20
    assert s["events"] == s["dataset_events"] == 100_000 and s["complete"] is True


# ---------------------------------------------------------------------------------------------
# 4. Determinism


LOGNORMAL = ['venue.latency.model="lognormal"', "venue.latency.sigma=0.5"]


def test_same_config_and_data_give_identical_outputs_in_and_out_of_process(synth, tmp_path):
    root, ds = synth
    a = mm(synth, MM_PY, *LOGNORMAL)
    b = mm(synth, MM_PY, *LOGNORMAL)
    proc = cli("backtest", str(MM_PY), "--set", f"dataset={ds}", "--set", "output.report=false",
               *(x for o in LOGNORMAL for x in ("--set", o)), "--data", root, "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    c = json.loads(proc.stdout)
    dirs = [run_dir(a), run_dir(b), run_dir(c)]
    assert len(set(dirs)) == 3  # three distinct runs
    assert a.digest == b.digest == c["digest"]
    for name in OUTPUTS:
        blobs = [(d / f"{name}.parquet").read_bytes() for d in dirs]
        assert blobs[0] == blobs[1] == blobs[2], name
    assert a.summary["denials"] == c["denials"] and a.fills == c["fills"] > 0
    # latency draws really vary: with lognormal latency another seed gives another run
    other = mm(synth, MM_PY, *LOGNORMAL, "seed=8")
    assert other.digest != a.digest
    assert (run_dir(other) / "orders.parquet").read_bytes() != (dirs[0] / "orders.parquet").read_bytes()


# ---------------------------------------------------------------------------------------------
# 5. Python and compiled market makers


@pytest.mark.parametrize("book, touch_only", [("l2", False), ("l2", True), ("l3", False)])
def test_python_and_compiled_market_makers_agree(request, book, touch_only):
    synth = request.getfixturevalue("synth" if book == "l2" else "synth_l3")
    flag = f"strategy.params.touch_only={'true' if touch_only else 'false'}"
    py = mm(synth, MM_PY, flag)
    cc = mm(synth, MM_COMPILED, flag)
    assert py.summary["name"] != cc.summary["name"]
    for name in OUTPUTS:
        assert read(py, name) == read(cc, name), name
        # same contents, and the config is in none of them: the same bytes
        assert (run_dir(py) / f"{name}.parquet").read_bytes() == (run_dir(cc) / f"{name}.parquet").read_bytes()
    assert py.fills > 0 and py.fills == cc.fills
    pc, cc_c = py.summary["counters"], cc.summary["counters"]
    assert pc == cc_c
    # the digest covers records and State, not the config: equal too
    assert py.digest == cc.digest


@pytest.mark.parametrize("config", [MM_PY, MM_COMPILED], ids=["python", "compiled"])
@pytest.mark.parametrize("latency", ["1ms", "20ms"])
def test_market_makers_wait_for_their_cancels_and_are_never_denied(synth, config, latency):
    """An order lives until the venue ends it: a market maker that re-quoted while its cancels
    were in flight piled up open orders whenever the touch moved faster than the venue answered,
    then asked Risk on every book update (thousands of max_open_orders denials)."""
    result = mm(synth, config, f"venue.latency.entry={latency}", f"venue.latency.response={latency}")
    assert result.summary["denials"] == {} and result.fills > 10
    o = read(result, "orders")
    ended = {"order_rejected", "order_canceled", "order_expired"}
    side_of: dict[int, int] = {}
    left: dict[int, int] = {}
    open_by_side = Counter()
    for kind, oid, side, lots in zip(o["kind"], o["order_id"], o["side"], o["qty_lots"]):
        if kind == "order_submitted":
            assert open_by_side[side] == 0, f"order {oid} submitted with another open on side {side}"
            side_of[oid], left[oid] = side, lots
            open_by_side[side] += 1
        elif kind in ended or (kind == "order_filled" and left[oid] == lots):
            open_by_side[side_of[oid]] -= 1
        elif kind == "order_filled":
            left[oid] -= lots
    assert sum(k == "cancel_submitted" for k in o["kind"]) > 100


@pytest.mark.parametrize("retry_after, gap_ns", [("100ms", 100 * MS), ("2s", 2000 * MS)])
def test_a_denied_side_asks_again_only_after_retry_after(synth, retry_after, gap_ns):
    """Halted, every submit is denied: each side asks once per retry_after, not at every book
    update; Python and compiled alike."""
    runs = [mm(synth, config, 'risk.mode="halted"', f'strategy.params.retry_after="{retry_after}"')
            for config in (MM_PY, MM_COMPILED)]
    den = read(runs[0], "denials")
    assert den == read(runs[1], "denials") and set(den["reason"]) == {"halted"}
    for side in (int(Side.BID), int(Side.ASK)):
        stamps = np.array([t for t, s in zip(den["ts_recv"], den["side"]) if s == side])
        assert len(stamps) > 5 and np.diff(stamps).min() >= gap_ns
    span = runs[0].summary["counters"]["events"]  # (a bound: far fewer than one per event)
    assert len(den["side"]) < span / 100


def test_a_market_maker_retry_after_beyond_a_day_is_refused_naming_the_key(synth):
    with pytest.raises(ConfigError, match="strategy: strategy.params.retry_after: must be at most a day"):
        mm(synth, MM_PY, 'strategy.params.retry_after="25h"')


def test_touch_subscription_calls_the_strategy_less_than_book(synth):
    book = mm(synth, MM_PY, "strategy.params.touch_only=false").summary["counters"]
    touch = mm(synth, MM_PY, "strategy.params.touch_only=true").summary["counters"]
    book_only_calls = book["strategy_calls"] - book["responses"]  # on_order calls aside
    touch_only_calls = touch["strategy_calls"] - touch["responses"]
    assert 0 < touch_only_calls < book_only_calls
    assert touch["events"] == book["events"]


def test_custom_risk_rule_denials_are_recorded_and_counted(synth):
    root, ds = synth
    asked = []

    def no_asks(intent, view):
        asked.append(intent.kind)
        return RiskReason.CUSTOM if intent.side == Side.ASK else None

    result = run_backtest(MM_PY, overrides=[f"dataset={ds}", "output.report=false"], data=root,
                          risk_rules=[no_asks])
    den = read(result, "denials")
    custom = [i for i, r in enumerate(den["reason"]) if r == "custom"]
    assert custom and all(den["side"][i] == int(Side.ASK) for i in custom)
    assert result.summary["denials"]["custom"] == len(custom)
    o = read(result, "orders")
    submitted_sides = {sd for k, sd in zip(o["kind"], o["side"]) if k == "order_submitted"}
    assert submitted_sides == {int(Side.BID)}
    # rules are asked about submits/replaces the built-in checks allowed, never about cancels
    assert int(IntentKind.CANCEL) not in asked and result.summary["cancels"] > 0


NO_ASKS_RULE = '''
from lockstep.events import Side
from lockstep.core.risk import RiskReason

def no_asks(intent, view):
    return RiskReason.CUSTOM if intent.side == Side.ASK else None
'''


def test_custom_risk_rules_named_in_the_config(synth, tmp_path):
    root, ds = synth
    (tmp_path / "rules.py").write_text(NO_ASKS_RULE)
    config = tmp_path / "mm.toml"
    config.write_text(MM_PY.read_text().replace("[risk]\n", '[risk]\ncustom_rules = ["rules.py:no_asks"]\n'))
    result = run_backtest(config, overrides=[f"dataset={ds}", "output.report=false"], data=root)
    den = read(result, "denials")
    assert result.summary["denials"]["custom"] == den["reason"].count("custom") > 0
    o = read(result, "orders")
    assert {sd for k, sd in zip(o["kind"], o["side"]) if k == "order_submitted"} == {int(Side.BID)}
    # a rule that does not exist names its key, before anything runs
    proc = cli("backtest", str(config), "--set", 'risk.custom_rules=["rules.py:nope"]', "--set",
               f"dataset={ds}", "--data", str(tmp_path / "other"))
    assert proc.returncode == 1 and "risk.custom_rules[0]" in proc.stderr
    assert not (tmp_path / "other" / "experiments").exists()


# ---------------------------------------------------------------------------------------------
# 6. A strategy that raises, through the CLI


FAILING_STRATEGY = '''
from lockstep.core.strategy import Strategy

class Failing(Strategy):
    def on_book(self, ctx, instrument):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == 3:
            bid, _, ask, _ = ctx.touch(instrument)
            ctx.submit_limit(instrument, 1, bid, 1, 2)
        if self.calls == 500:
            raise ZeroDivisionError("strategy-went-wrong-here")
'''


def failing_config(tmp_path: Path, ds: str) -> Path:
    (tmp_path / "failing.py").write_text(FAILING_STRATEGY)
    cfg = tmp_path / "failing.toml"
    cfg.write_text(f'name = "failing"\ndataset = "{ds}"\n[strategy]\npath = "failing.py:Failing"\n'
                   "[output]\nreport = false\n")
    return cfg


def test_failing_strategy_in_process(synth, tmp_path):
    root, ds = synth
    with pytest.raises(BacktestFailed) as info:
        run_backtest(failing_config(tmp_path, ds), overrides=["output.report=true"], data=root)
    res = info.value.result
    err = res.summary["error"]
    assert f"stopped at event {err['position']}" in str(info.value)
    assert "strategy-went-wrong-here" in str(info.value)
    d = run_dir(res)
    assert (d / "INCOMPLETE").exists()
    summary = json.loads((d / "summary.json").read_text())
    assert summary["complete"] is False
    assert "ZeroDivisionError: strategy-went-wrong-here" in summary["error"]["traceback"]
    assert 0 < summary["events"] < 100_000
    orders = read(res, "orders")
    assert orders["kind"][:2] == ["order_submitted", "order_accepted"]
    report = (d / "report.html").read_text()
    assert 'class="incomplete"' in report and "INCOMPLETE RUN: the strategy raised" in report


def test_failing_strategy_via_cli_exits_1_with_traceback(synth, tmp_path):
    root, ds = synth
    proc = cli("backtest", str(failing_config(tmp_path, ds)), "--data", root, cwd=tmp_path)
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr
    assert "ZeroDivisionError: strategy-went-wrong-here" in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: backtest stopped at event") and "INCOMPLETE" in last


# ---------------------------------------------------------------------------------------------
# 7. Config errors through the CLI


@pytest.mark.parametrize("override, key", [
    ("venue.bogus=1", "venue.bogus"),
    ('seed="seven"', "seed"),
    ("venue.latency.entry=[1]", "venue.latency.entry"),
    ('instruments=["NOPE"]', "instruments"),
    ("strategy.params.nonsense=1", "strategy.params.nonsense"),
    ("dataset=/no/such/dataset/anywhere", "/no/such/dataset/anywhere"),
])
def test_config_errors_are_one_line_naming_the_key(synth, tmp_path, override, key):
    _, ds = synth
    root = tmp_path / "fresh"  # a root of its own: nothing may be created in it
    args = ["backtest", str(MM_PY), "--set", f"dataset={ds}", "--set", override, "--data", str(root)]
    proc = cli(*args, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert key in lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not (root / "experiments").exists()


def test_an_override_error_is_named_by_the_flag_that_gave_it(synth, tmp_path):
    """The config layer names an override's source in its own words; the CLI says --set."""
    _, ds = synth
    proc = cli("backtest", str(MM_PY), "--set", f"dataset={ds}", "--set", "venue.bogus=1", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "error: --set: venue.bogus: unknown key"
    with pytest.raises(ConfigError) as e:
        run_backtest(MM_PY, overrides=[f"dataset={ds}", "venue.bogus=1"])
    assert str(e.value) == "override: venue.bogus: unknown key"


# ---------------------------------------------------------------------------------------------
# 8. quickstart


def test_quickstart_end_to_end_small(tmp_path):
    data = tmp_path / "qs"
    proc = cli("quickstart", "--data", str(data), "--events", "200000", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    report_line = next(line for line in proc.stdout.splitlines() if line.startswith("report"))
    report = Path(report_line.split()[-1])
    assert report.is_file() and report.is_relative_to(data)
    assert "<svg" in report.read_text()
    summary = json.loads((report.parent / "summary.json").read_text())
    assert summary["complete"] is True and summary["events"] == 200_000
    assert "200,000" in proc.stdout
