"""Backtests: a config and a canonical dataset in, an experiment directory out.

    result = run_backtest("examples/market_maker.toml", overrides=["dataset=synthetic-l2"])

The dataset streams through the compiled Engine (include/lockstep/runtime/engine.hpp) batch by batch;
after each batch the engine's records are drained and appended to Parquet, so memory does not
grow with the length of the data. ``ROOT/experiments/<run id>/`` receives:

    config.toml      the resolved config (defaults filled in, params validated)
    orders.parquet   every execution event of our orders, in Processing Order (submitted,
                     accepted, filled, canceled, ...), real units and raw ticks/lots
    fills.parquet    the ORDER_FILLED rows of orders, with fees
    denials.parquet  every denied intent with its reason
    pnl.parquet      position, mid, realized/unrealized PnL, fees, equity per instrument, sampled
                     every output.sample_interval of core time
    summary.json     the summary metrics, counters, digest, and whether the run completed
    report.html      equity, position and drawdown plots (output.report)

Determinism: the same config and dataset give byte-identical orders/fills/denials/pnl Parquet
files and the same digest. The digest is SHA-256 over the Market State serialization, the
execution-side State serialization and every record drained, in order (docs/backtest.md). Only
the run id and the timing figures (seconds, events per second) use the wall clock.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from lockstep._bindings import engine as _engine
from lockstep.backtest.artifacts import SCHEMAS, RecordTables, read_artifact
from lockstep.backtest.config import (
    BacktestConfig,
    load_config,
    load_risk_rules,
    load_strategy_class,
    validate_params,
)
from lockstep.backtest.replay import replay_result
from lockstep.backtest.report import compute_metrics, write_report
from lockstep.core.risk import Intent, RiskView
from lockstep.core.strategy import overridden, params_type
from lockstep.data.dataset import DEFAULT_READ_BATCH, Dataset, Instrument
from lockstep.data.storage import Location, naming, remove_created, root_location
from lockstep.enums import IntentKind, RiskReason, RunStatus, TimeInForce
from lockstep.errors import ConfigError, LockstepError, OrderRulesWarning, check_status
from lockstep.events import Side
from lockstep.progress import Progress
from lockstep.tomlconfig import dump_toml

# Larger than replay's batches: every batch costs a drain and a few Python calls.
BACKTEST_READ_BATCH = 4 * DEFAULT_READ_BATCH


class BacktestFailed(LockstepError):
    """The run stopped early (a strategy raised, a custom risk rule raised, a livelock). The
    outputs produced so far were written and marked incomplete; `result` describes them."""

    def __init__(self, message: str, result: BacktestResult) -> None:
        super().__init__(message)
        self.result = result


class BacktestInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) stopped the run. The outputs produced so far were written and marked
    incomplete, as for BacktestFailed; still a KeyboardInterrupt, so it stops the caller as
    Ctrl-C does. `result` describes the outputs."""

    def __init__(self, message: str, result: BacktestResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class BacktestResult:
    run_dir: str
    digest: str
    events: int
    seconds: float
    events_per_second: float
    fills: int
    pnl: float
    complete: bool
    summary: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The run's summary.json as a dict."""
        return dict(self.summary)

    def orders_table(self) -> pa.Table:
        """Every execution event of our orders, in Processing Order (ORDERS_SCHEMA)."""
        return read_artifact(self.run_dir, "orders")

    def fills_table(self) -> pa.Table:
        """The fills, with fees and the maker flag (FILLS_SCHEMA)."""
        return read_artifact(self.run_dir, "fills")

    def denials_table(self) -> pa.Table:
        """Every intent Risk or the engine denied, with its reason (DENIALS_SCHEMA)."""
        return read_artifact(self.run_dir, "denials")

    def pnl_table(self) -> pa.Table:
        """Position, mid, PnL, fees and equity per instrument, sampled (PNL_SCHEMA)."""
        return read_artifact(self.run_dir, "pnl")


# ---------------------------------------------------------------------------------------------
# Loading the pieces


def traded_instruments(cfg: BacktestConfig, ds: Dataset) -> list[int]:
    """The indices in `ds` of the instruments `cfg` trades (all of them when it names none);
    ConfigError for a symbol the dataset does not have."""
    return traded_of(cfg, ds.instruments, f"dataset {ds.path}")


def traded_of(cfg: BacktestConfig, instruments: Sequence[Instrument], where: str) -> list[int]:
    """traded_instruments for an instrument table; `where` names it in errors."""
    symbols = [i.symbol for i in instruments]
    wanted = list(cfg.instruments) or symbols
    out = []
    for s in wanted:
        if s not in symbols:
            raise ConfigError("instruments", f"{s!r} is not in {where} (it has {', '.join(symbols)})",
                              source="config")
        out.append(symbols.index(s))
    for s in cfg.risk.instruments:
        if s not in symbols:
            raise ConfigError(f"risk.instruments.{s}", f"{s!r} is not in {where}", source="config")
    for s in cfg.venue.order_rules:
        if s not in symbols:
            raise ConfigError(f"venue.order_rules.{s}", f"{s!r} is not in {where}", source="config")
    return out


def configure_engine(engine: _engine.Engine, cfg: BacktestConfig, instruments: Sequence[Instrument],
                     traded: Sequence[int], simulated: bool = True) -> None:
    """Hands `engine` the core form of every setting of `cfg` (risk, per-instrument limits,
    queue, venue, sampling) and tracks the traded instruments. `simulated` False (live): no
    simulated venue; the venue enforces its own rules."""
    risk = cfg.risk.to_core(instruments, traded)
    check_status(engine.configure_risk(risk), "risk config")
    for index, limits in risk.instruments.items():
        check_status(engine.set_limits(index, limits), f"risk limits of {instruments[index].symbol}")
    check_status(engine.configure_queue(cfg.queue.to_core(len(instruments))), "queue config")
    if simulated:
        check_status(engine.configure_venue(cfg.venue.to_core(cfg.seed)), "venue config")
    for index in traded:
        inst = cfg.venue.instrument(instruments[index])
        rules, notes = inst.order_rules()
        for note in notes:
            warnings.warn(note, OrderRulesWarning, stacklevel=2)
        # The same rules for Risk and for the venue, which enforces them whatever Risk decides.
        check_status(engine.set_order_rules(index, rules), f"order-entry rules of {inst.symbol}")
        if simulated:
            check_status(engine.set_venue_order_rules(index, rules), f"order-entry rules of {inst.symbol}")
    engine.set_sample_interval(cfg.output.sample_interval)
    for index in traded:
        engine.track(index)


def strategy_engine(cfg: BacktestConfig, instruments: Sequence[Instrument], traded: Sequence[int], *,
                    book_types: Sequence[str], base_dir: str, simulated: bool = True,
                    risk_rules: Iterable[Callable[[Intent, RiskView], Any]] = ()) -> tuple[BacktestConfig, Any, Any, Any]:
    """The Engine of one run, configured by `cfg`, with its strategy set up and bound (and the
    custom risk rules): (cfg with its params resolved, engine, the strategy's Context, the
    strategy). Backtests and live sessions build theirs here, so both run the same chain."""
    cls = load_strategy_class(cfg.strategy.path, base_dir=base_dir)
    params = validate_params(params_type(cls), cfg.strategy.params, strategy=cls.__name__)
    if params is not None:
        cfg = cfg.with_params(params)
    engine = _engine.Engine(list(book_types))
    configure_engine(engine, cfg, instruments, traded, simulated)
    ctx = _engine.Context(engine, instruments, traded)
    strategy = cls(params) if params is not None else cls()
    strategy.setup(ctx)
    engine.bind_strategy(strategy, ctx, overridden(strategy))
    rules = load_risk_rules(cfg.risk, base_dir=base_dir) + list(risk_rules)
    if rules:
        engine.bind_risk_rule(_custom_rule(rules))
    return cfg, engine, ctx, strategy


def _custom_rule(rules: Sequence[Callable[[Intent, RiskView], Any]]) -> Callable[[tuple, tuple], bool]:
    def rule(intent_fields: tuple, view_fields: tuple) -> bool:
        instrument, kind, side, tif, price, qty, cid, target = intent_fields
        intent = Intent(instrument=instrument, kind=IntentKind(kind), side=Side(side),
                        tif=TimeInForce(tif), price=price, qty=qty, client_order_id=cid,
                        target_order_id=target)
        position, open_orders, open_buy, open_sell, mid, open_total = view_fields
        view = RiskView(position=position, open_orders=open_orders, open_buy_qty=open_buy,
                        open_sell_qty=open_sell, mid=mid, open_orders_total=open_total)
        for r in rules:
            out = r(intent, view)
            if out is not None and out != RiskReason.ALLOWED:
                return True
        return False

    return rule


# ---------------------------------------------------------------------------------------------
# Output


class _Outputs(RecordTables):
    """Appends the drained records' tables to the run's Parquet files."""

    def __init__(self, run_dir: Location, instruments: Sequence[Instrument]) -> None:
        super().__init__(instruments)
        self.dir = run_dir
        self.writers: dict[str, tuple[Any, pq.ParquetWriter]] = {}
        self.pending: dict[str, list[pa.Table]] = {}
        self.pending_rows: dict[str, int] = {}

    # Parquet costs per write call (a row group each, compressor start-up): buffer the drained
    # records and write them in large groups. The buffer bounds memory, not the run's length.
    _FLUSH_ROWS = 1 << 16

    def _write(self, name: str, table: pa.Table) -> None:
        pending = self.pending.setdefault(name, [])
        pending.append(table)
        self.pending_rows[name] = self.pending_rows.get(name, 0) + len(table)
        if self.pending_rows[name] >= self._FLUSH_ROWS:
            self._flush(name)

    def _flush(self, name: str) -> None:
        tables = self.pending.pop(name, [])
        self.pending_rows[name] = 0
        if not tables:
            return
        table = pa.concat_tables(tables).combine_chunks()
        file = self.dir.join(f"{name}.parquet")
        with naming(file.uri):
            if name not in self.writers:
                sink = file.fs.open_output_stream(file.path)
                writer = pq.ParquetWriter(sink, table.schema, compression="zstd", compression_level=1)
                self.writers[name] = (sink, writer)
            self.writers[name][1].write_table(table, row_group_size=self._FLUSH_ROWS)

    def close(self) -> None:
        for name in list(self.pending):
            self._flush(name)
        # A table with no rows (a run without a denial) is still a file: the run's outputs are
        # always the same four.
        for name, schema in SCHEMAS.items():
            if name not in self.writers:
                self._write(name, schema.empty_table())
                self._flush(name)
        for name, (sink, writer) in self.writers.items():
            with naming(self.dir.join(f"{name}.parquet").uri):
                writer.close()
                sink.close()

    def abort(self) -> None:
        """Closes the files after a failure, quietly: on a full disk closing fails too."""
        for sink, writer in self.writers.values():
            try:
                writer.close()
                sink.close()
            except OSError:
                pass


def new_run_dir(parent: Location, name: str, cfg_text: str) -> Location:
    """A new directory under `parent` (created with it) named after the run, the time (naming
    only, never State) and the config's hash: <name>-<UTC stamp>-<8 hex>, -1, -2, ... if taken."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    tag = hashlib.sha256(cfg_text.encode()).hexdigest()[:8]
    base = f"{name}-{stamp}-{tag}"
    parent.mkdir()
    for k in range(1000):
        candidate = parent.join(base if k == 0 else f"{base}-{k}")
        if not candidate.exists():
            candidate.mkdir()
            return candidate
    raise LockstepError(f"{parent.uri}: cannot find a free run directory for {base}")


# ---------------------------------------------------------------------------------------------
# The run

#: summary.json's error reason for a run stopped by Ctrl-C (SIGINT).
INTERRUPTED = "interrupted (Ctrl-C)"

_FAILURES = {
    RunStatus.STRATEGY_FAILED: "the strategy raised",
    RunStatus.RISK_HOOK_FAILED: "a custom risk rule raised",
    RunStatus.LIVELOCK: "livelock: too many venue round trips between two market events",
}


@contextmanager
def _ctrl_c_between_batches() -> Iterator[list[bool]]:
    """A first Ctrl-C only marks the list it yields, which the run loop checks after each batch:
    landing anywhere else, say between draining a batch's records and writing them, it would lose
    them. A second Ctrl-C raises at once, through a Python hook's trampoline or as the compiled
    loop returns (a strategy stuck in a hook stays stoppable). Signal handlers belong to the main
    thread; elsewhere, or when SIGINT is not Python's default, nothing changes."""
    pressed: list[bool] = []
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield pressed
        return

    def on_sigint(signum: int, frame: Any) -> None:
        if pressed:
            raise KeyboardInterrupt
        pressed.append(True)

    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield pressed
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def run_backtest(
    config: BacktestConfig | str | os.PathLike[str],
    *,
    overrides: Sequence[str] = (),
    data: str | None = None,
    progress: bool = False,
    risk_rules: Iterable[Callable[[Intent, RiskView], Any]] = (),
    batch_size: int = BACKTEST_READ_BATCH,
) -> BacktestResult:
    """Run one backtest; see the module docstring for what is written where.

    Raises ConfigError (before anything runs) for a bad config, DatasetError for a missing
    dataset, BacktestFailed (after writing what was produced) when the run stops early, and
    BacktestInterrupted (likewise) when Ctrl-C stops it."""
    if isinstance(config, BacktestConfig):
        cfg, base_dir = config, "."
    else:
        cfg = load_config(config, overrides)
        base_dir = str(Path(config).resolve().parent)
    ds = Dataset.open(cfg.dataset, data=data)
    traded = traded_instruments(cfg, ds)
    cfg, engine, ctx, _ = strategy_engine(cfg, ds.instruments, traded,
                                       book_types=[i.book for i in ds.instruments],
                                       base_dir=base_dir, risk_rules=risk_rules)

    cfg_text = dump_toml(cfg.to_dict())
    root = root_location(data)
    experiments = root.join("experiments")
    created = [(experiments, False), (root, False)]
    created = [(f, own) for f, own in created if not f.exists()]
    run_dir = new_run_dir(experiments, cfg.name, cfg_text)
    try:
        return _run(engine, ctx, cfg, ds, run_dir, cfg_text, progress, batch_size)
    except OSError:
        # Outputs cut short by the operating system (a full disk, a folder gone read-only) are
        # not a run anyone can read: they go, with the folders this run created.
        remove_created([(run_dir, True), *created])
        raise


def _run(engine: Any, ctx: Any, cfg: BacktestConfig, ds: Dataset, run_dir: Location, cfg_text: str,
         progress: bool, batch_size: int) -> BacktestResult:
    """Runs the engine over the dataset and writes the run's outputs into `run_dir`."""
    run_dir.join("config.toml").write_bytes(cfg_text.encode())
    out = _Outputs(run_dir, ds.instruments)

    status = RunStatus.OK
    interrupted = False
    start = time.perf_counter()
    bar = Progress(ds.rows, enabled=progress)
    done = 0
    try:
        with bar:
            try:
                with _ctrl_c_between_batches() as pressed:
                    for cols in ds.iter_columns(batch_size):
                        n = len(cols["ts_event"])
                        status = engine.run(cols, n)
                        out.add(*engine.drain())
                        done += n
                        bar.update(done, int(cols["ts_recv"][n - 1]) if n else None)
                        if pressed:
                            raise KeyboardInterrupt
                        if status != RunStatus.OK:
                            break
                    if status == RunStatus.OK:
                        status = engine.finish()
            except KeyboardInterrupt:
                # Ctrl-C: what the engine ran is kept and written like a failed run's outputs.
                interrupted = True
            out.add(*engine.drain())
    except BaseException:
        out.abort()
        raise
    out.close()
    seconds = time.perf_counter() - start

    counters = engine.counters()
    market = replay_result(engine.market, ds.instruments, seconds, ds.path, None)
    digest = hashlib.sha256(
        engine.market.serialize_state() + engine.serialize_state() + out.hash.digest()
    ).hexdigest()
    series = out.series_table()
    metrics = compute_metrics(series, cfg.output.sample_interval)
    events = counters["events"]
    denials = {RiskReason(r).label: c for r, c in engine.risk_counts().items()
               if r != RiskReason.ALLOWED and c}
    status_value, position, ts, error = engine.failure
    complete = status == RunStatus.OK and not interrupted
    summary: dict[str, Any] = {
        "run_dir": run_dir.uri,
        "name": cfg.name,
        "dataset": ds.path,
        "strategy": cfg.strategy.path,
        "complete": complete,
        "digest": digest,
        "events": events,
        "dataset_events": ds.rows,
        "seconds": seconds,
        "events_per_second": events / seconds if seconds > 0 else 0.0,
        "fills": out.counts["fills"],
        "orders": counters["orders"],
        "cancels": counters["cancels"],
        "replaces": counters["replaces"],
        "denied": counters["denied"],
        "denials": denials,
        **{k: metrics[k] for k in ("pnl", "fees", "realized", "max_drawdown", "sharpe", "samples")},
        "by_symbol": metrics.get("by_symbol", {}),
        "counters": counters,
        "data_quality": {k: a.count for k, a in market.data_quality.items() if a.count},
    }
    if interrupted:
        # Stopped between events, not at a failing one: where it stopped is how far it got.
        position, ts = events, ctx.now
        summary["error"] = {"reason": INTERRUPTED, "position": position, "ts_recv": ts,
                            "exception": None, "traceback": None}
    elif not complete:
        summary["error"] = {
            "reason": _FAILURES[RunStatus(status_value)],
            "position": position,
            "ts_recv": ts,
            "exception": repr(error[0]) if error else None,
            "traceback": error[1] if error else None,
        }
    if not complete:
        run_dir.join("INCOMPLETE").write_bytes(b"this run stopped early: see summary.json 'error'\n")
    run_dir.join("summary.json").write_bytes(json.dumps(summary, indent=2, default=str).encode())
    if cfg.output.report:
        write_report(run_dir.join("report.html").path, title=f"{cfg.name} on {ds.name}", summary=summary,
                     series=series, config_text=cfg_text)
    result = BacktestResult(run_dir.uri, digest, events, seconds, summary["events_per_second"],
                            out.counts["fills"], float(metrics["pnl"]), complete, summary)
    if not complete:
        err = summary["error"]
        stopped = (f"backtest stopped at event {position} (ts_recv {ts}): {err['reason']}"
                   + (f": {err['exception']}" if err["exception"] else "")
                   + f"; partial outputs in {run_dir.uri} (marked INCOMPLETE)")
        raise (BacktestInterrupted if interrupted else BacktestFailed)(stopped, result)
    return result


__all__ = ["INTERRUPTED", "BacktestFailed", "BacktestInterrupted", "BacktestResult", "configure_engine", "new_run_dir",
           "run_backtest", "strategy_engine", "traded_instruments", "traded_of"]
