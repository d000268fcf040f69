"""lockstep vs hftbacktest: the same market maker on the same real data, events/s side by side.

    python benchmarks/hftbacktest_side_by_side.py [--data ROOT] [--events N]
        [--lockstep-config examples/market_maker_compiled.toml] [--json]

1. Data: the real Binance USD-M BTCUSDT capture (../shared/data/binance/usdm/btcusdt_20240808.gz,
   about 599k events), imported as ``binance-usdm-btcusdt`` if ROOT lacks it, then repeated in time
   with tools/repeat_dataset.py to at least N events (default 10M: 17 repetitions) as
   ``binance-usdm-btcusdt-x<times>``. Both are reused when present.
2. hftbacktest input: that dataset converted to hftbacktest's event array (rules in
   :func:`convert_dataset`), cached as ``ROOT/cache/hftbacktest/<name>-v<k>.npz``. Conversion is
   not part of any measured rate.
3. hftbacktest run: benchmarks/hftbacktest_mm.py (numba) with constant 1 ms order entry and
   response latency, the risk-averse (conservative) queue model, no partial fills, linear asset,
   tick and lot from the dataset's instrument table, no fees. A first run on a small prefix warms
   the numba JIT; only the second run, over the whole array, is timed (strategy loop only; building
   the backtester is reported apart).
4. lockstep run: ``lockstep backtest CONFIG --set dataset=<path> --json --data ROOT`` as a
   subprocess; its JSON gives events, events_per_second, fills, pnl.
5. Output: both rates, their ratio (lockstep / hftbacktest), fills and PnL of both.

Rates use one denominator, the lockstep dataset's event count (VENUE_BBO included, which
hftbacktest never sees), so the ratio compares wall time on the same input. hftbacktest's own
rate over the rows of its array is printed too.

hftbacktest is an optional benchmark dependency: ``pip install hftbacktest`` (2.4.4 measured
here; it pins numpy<2.3). Without it this script says so and exits 0.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_CAPTURE = REPO.parent / "shared" / "data" / "binance" / "usdm" / "btcusdt_20240808.gz"
SOURCE_NAME = "binance-usdm-btcusdt"
DEFAULT_CONFIG = "examples/market_maker_compiled.toml"
CONVERSION_VERSION = 1
MODEL_NOTE = (
    "fills and PnL differ between the engines because their venue models differ in detail "
    "(hftbacktest fills a resting order when the book's touch moves through its price and when a "
    "trade prints through it, and its risk-averse queue only advances on trades at the order's "
    "price; lockstep's L2 matcher fills on trades only; order/cancel timing and quote-refresh rules "
    "may differ slightly); the rates compare the same input"
)
INSTALL_HINT = "pip install hftbacktest   # optional benchmark dependency (measured with 2.4.4; pins numpy<2.3)"


def _load_tool(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def hftbacktest_version() -> str | None:
    try:
        import hftbacktest  # noqa: F401
    except ImportError:
        return None
    from importlib.metadata import version

    return version("hftbacktest")


# --------------------------------------------------------------------------------------------- data


def ensure_dataset(data: str | None, events: int, capture: Path, log) -> Any:
    """The real USD-M capture repeated to >= `events` events (built once, then reused)."""
    from lockstep.data.dataset import Dataset
    from lockstep.errors import DatasetError

    try:
        source = Dataset.open(SOURCE_NAME, data=data)
    except DatasetError:
        if not capture.exists():
            raise SystemExit(f"error: {capture} is absent and ROOT has no {SOURCE_NAME} dataset")
        from lockstep.data.pipeline import import_data

        log(f"importing {capture} ...")
        report = import_data("binance", [str(capture)], data=data)
        source = Dataset.open(report.dataset)
    times = max(1, math.ceil(events / source.rows))
    if times == 1:
        return source
    name = f"{SOURCE_NAME}-x{times}"
    try:
        ds = Dataset.open(name, data=data)
        meta = ds.manifest.get("source", {})
        rep = meta.get("repeat_of", {})
        if meta.get("times") == times and rep.get("rows") == source.rows and rep.get("name") == source.name:
            return ds
        log(f"{ds.path} does not match {source.path} x {times}: rebuilding")
    except DatasetError:
        pass
    repeat = _load_tool("repeat_dataset", REPO / "tools" / "repeat_dataset.py")
    log(f"repeating {source.path} ({source.rows:,} events) {times} times -> {name} ...")
    return repeat.repeat_dataset(source, times, name, data=data)


def _to_real(units: np.ndarray, increment: str) -> np.ndarray:
    """units * increment, correctly rounded (one multiplication by the mantissa, one division)."""
    _, digits, exponent = Decimal(increment).normalize().as_tuple()
    mantissa = float(int("".join(map(str, digits))))
    scaled = units.astype(np.float64) * mantissa
    return scaled / 10.0 ** (-exponent) if exponent < 0 else scaled * 10.0**exponent


def convert_dataset(ds) -> tuple[np.ndarray, dict[str, Any]]:
    """A one-instrument lockstep canonical dataset as hftbacktest's event array.

    Rules (per row, in Processing Order; exch_ts = ts_event, local_ts = ts_recv, both ns):
      L2_SET, side bid/ask -> DEPTH_EVENT | BUY_EVENT / SELL_EVENT, px = price * price_increment,
                              qty = qty * size_increment (absolute level quantity; 0 deletes);
                              DEPTH_SNAPSHOT_EVENT instead of DEPTH_EVENT when flagged SNAPSHOT
                              (hftbacktest applies both alike)
      BOOK_CLEAR           -> DEPTH_CLEAR_EVENT with no side: both sides cleared entirely
      TRADE                -> TRADE_EVENT | BUY_EVENT (aggressor bid) / SELL_EVENT (aggressor ask);
                              no side flag when the aggressor is unknown (then it fills nothing)
      VENUE_BBO            -> skipped (hftbacktest has no use for the venue's own touch)
      any other kind       -> refused (L3 kinds are not converted)
    Then hftbacktest's own correct_event_order(): rows are flagged EXCH_EVENT | LOCAL_EVENT, and a
    row whose ts_event goes backwards is split into an exchange-only copy placed in exch_ts order
    and a local-only copy kept in ts_recv order; validate_event_order() checks the result.
    order_id, ival, fval are 0.
    """
    from hftbacktest import (
        BUY_EVENT,
        DEPTH_CLEAR_EVENT,
        DEPTH_EVENT,
        DEPTH_SNAPSHOT_EVENT,
        SELL_EVENT,
        TRADE_EVENT,
    )
    from hftbacktest.binding import event_dtype
    from hftbacktest.data.validation import correct_event_order, validate_event_order

    from lockstep.events import EventKind, Flag, Side

    if len(ds.instruments) != 1:
        raise SystemExit(f"error: {ds.path} has {len(ds.instruments)} instruments; the side-by-side uses one")
    inst = ds.instruments[0]
    if inst.book != "l2":
        raise SystemExit(f"error: {inst.symbol} is an {inst.book} book; only L2 data is converted")
    out = np.zeros(ds.rows, dtype=event_dtype)
    pos = 0
    skipped_bbo = 0
    px_min, px_max = math.inf, -math.inf
    for cols in ds.iter_columns(1 << 20):
        kind = cols["kind"]
        side = cols["side"]
        known = np.isin(kind, [EventKind.L2_SET, EventKind.BOOK_CLEAR, EventKind.TRADE, EventKind.VENUE_BBO])
        if not known.all():
            bad = int(kind[~known][0])
            raise SystemExit(f"error: event kind {bad} cannot be converted for hftbacktest")
        keep = kind != EventKind.VENUE_BBO
        skipped_bbo += int((~keep).sum())
        k = kind[keep]
        s = side[keep]
        flags = cols["flags"][keep]
        n = len(k)
        ev = np.zeros(n, dtype=np.uint64)
        is_l2 = k == EventKind.L2_SET
        snap = (flags & Flag.SNAPSHOT) != 0
        ev[is_l2 & ~snap] = DEPTH_EVENT
        ev[is_l2 & snap] = DEPTH_SNAPSHOT_EVENT
        ev[k == EventKind.BOOK_CLEAR] = DEPTH_CLEAR_EVENT
        is_trade = k == EventKind.TRADE
        ev[is_trade] = TRADE_EVENT
        sided = is_l2 | is_trade
        ev[sided & (s == Side.BID)] |= np.uint64(BUY_EVENT)
        ev[sided & (s == Side.ASK)] |= np.uint64(SELL_EVENT)
        if (is_l2 & (s != Side.BID) & (s != Side.ASK)).any():
            raise SystemExit("error: an L2_SET without a side cannot be converted")
        dst = out[pos : pos + n]
        dst["ev"] = ev
        dst["exch_ts"] = cols["ts_event"][keep]
        dst["local_ts"] = cols["ts_recv"][keep]
        px = _to_real(cols["price"][keep], inst.price_increment)
        px[k == EventKind.BOOK_CLEAR] = 0.0
        dst["px"] = px
        dst["qty"] = _to_real(cols["qty"][keep], inst.size_increment)
        if is_trade.any():
            px_min = min(px_min, float(px[is_trade].min()))
            px_max = max(px_max, float(px[is_trade].max()))
        pos += n
    out = out[:pos]
    exch_order = np.argsort(out["exch_ts"], kind="stable")
    local_order = np.arange(pos)  # already in ts_recv order (Processing Order)
    fixed = correct_event_order(out, exch_order, local_order)
    validate_event_order(fixed)
    info = {
        "conversion_version": CONVERSION_VERSION,
        "dataset": ds.path,
        "dataset_rows": ds.rows,
        "venue_bbo_skipped": skipped_bbo,
        "converted_rows": pos,
        "rows": len(fixed),
        "split_rows": int(len(fixed) - pos),
        "tick_size": float(Decimal(inst.price_increment)),
        "lot_size": float(Decimal(inst.size_increment)),
        "trade_px_min": px_min,
        "trade_px_max": px_max,
        "min_feed_latency_ns": int((out["local_ts"] - out["exch_ts"]).min()) if pos else 0,
    }
    return fixed, info


def ensure_npz(ds, data: str | None, log) -> tuple[Path, dict[str, Any]]:
    from lockstep.data.storage import root_location

    root = root_location(data)
    cache_dir = Path(root.path) / "cache" / "hftbacktest"
    cache_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{ds.name}-v{ds.manifest['version']}"
    npz = cache_dir / f"{stem}.npz"
    meta_path = cache_dir / f"{stem}.json"
    if npz.exists() and meta_path.exists():
        info = json.loads(meta_path.read_text())
        if info.get("conversion_version") == CONVERSION_VERSION and info.get("dataset_rows") == ds.rows:
            return npz, info
    log(f"converting {ds.path} to hftbacktest events -> {npz} ...")
    t0 = time.perf_counter()
    arr, info = convert_dataset(ds)
    info["conversion_seconds"] = time.perf_counter() - t0
    tmp = npz.with_suffix(".tmp.npz")
    np.savez(tmp, data=arr)
    os.replace(tmp, npz)
    meta_path.write_text(json.dumps(info, indent=2) + "\n")
    return npz, info


# ------------------------------------------------------------------------------------- hftbacktest


def build_backtest(arr: np.ndarray, info: dict[str, Any], depth: str, latency_ns: int):
    from hftbacktest import (
        BacktestAsset,
        HashMapMarketDepthBacktest,
        ROIVectorMarketDepthBacktest,
    )

    asset = (
        BacktestAsset()
        .data([arr])
        .linear_asset(1.0)
        .constant_order_latency(latency_ns, latency_ns)
        .risk_adverse_queue_model()
        .no_partial_fill_exchange()
        .trading_value_fee_model(0.0, 0.0)
        .tick_size(info["tick_size"])
        .lot_size(info["lot_size"])
    )
    if depth == "roivec":
        tick = info["tick_size"]
        lo = math.floor(info["trade_px_min"] * 0.8 / tick) * tick
        hi = math.ceil(info["trade_px_max"] * 1.2 / tick) * tick
        asset = asset.roi_lb(lo).roi_ub(hi)
        return ROIVectorMarketDepthBacktest([asset])
    return HashMapMarketDepthBacktest([asset])


def run_hftbacktest(arr: np.ndarray, info: dict[str, Any], *, depth: str, latency_ns: int, order_qty: float,
                    max_position: float) -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    from hftbacktest_mm import (
        N_STATS,
        STAT_CALLS,
        STAT_CANCELS,
        STAT_LAST_MID,
        STAT_SUBMITTED,
        run_market_maker,
    )
    from numba import njit

    @njit
    def _state(hbt, out):
        sv = hbt.state_values(0)
        out[0] = sv.position
        out[1] = sv.balance
        out[2] = sv.fee
        out[3] = sv.num_trades
        out[4] = sv.trading_volume
        out[5] = sv.trading_value

    t0 = time.perf_counter()
    hbt = build_backtest(arr, info, depth, latency_ns)
    build_seconds = time.perf_counter() - t0
    stats = np.zeros(N_STATS)
    t0 = time.perf_counter()
    rc = run_market_maker(hbt, order_qty, max_position, stats)
    seconds = time.perf_counter() - t0
    state = np.zeros(6)
    _state(hbt, state)
    hbt.close()
    position, balance, fee, num_trades, volume, value = state
    mid = stats[STAT_LAST_MID]
    return {
        "rc": int(rc),
        "rows": len(arr),
        "seconds": seconds,
        "build_seconds": build_seconds,
        "strategy_calls": int(stats[STAT_CALLS]),
        "orders_submitted": int(stats[STAT_SUBMITTED]),
        "cancels": int(stats[STAT_CANCELS]),
        "fills": int(num_trades),
        "traded_qty": float(volume),
        "traded_value": float(value),
        "position": float(position),
        "balance": float(balance),
        "fees": float(fee),
        "last_mid": float(mid),
        "pnl": float(balance + position * mid - fee),
    }


# ---------------------------------------------------------------------------------------- lockstep


def _lockstep_cmd() -> list[str]:
    exe = shutil.which("lockstep")
    return [exe] if exe else [sys.executable, "-m", "lockstep"]


def run_lockstep(config: str, ds, data: str | None, extra_sets: list[str], log) -> dict[str, Any]:
    """``lockstep backtest`` as a subprocess; {"available": False, "reason": ...} when it cannot run."""
    base = _lockstep_cmd()
    probe = subprocess.run([*base, "backtest", "--help"], check=False, capture_output=True, text=True)
    if probe.returncode != 0:
        return {"available": False, "reason": "lockstep backtest not available (no `backtest` command yet)"}
    config_path = Path(config)
    if not config_path.is_absolute() and not config_path.exists():
        config_path = REPO / config
    if not config_path.exists():
        return {"available": False, "reason": f"lockstep backtest not available: no config {config}"}
    cmd = [*base, "backtest", str(config_path), "--set", f"dataset={ds.path}"]
    for extra in extra_sets:
        cmd += ["--set", extra]
    cmd.append("--json")
    if data is not None:
        cmd += ["--data", data]
    log("running " + " ".join(cmd))
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"available": False, "command": cmd,
                "reason": f"lockstep backtest failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}"}
    result = None
    for line in reversed(proc.stdout.strip().splitlines()):
        try:
            result = json.loads(line)
            break
        except json.JSONDecodeError:
            continue
    if not isinstance(result, dict):
        try:
            result = json.loads(proc.stdout)
        except json.JSONDecodeError:
            return {"available": False, "command": cmd, "reason": "lockstep backtest printed no JSON object"}
    return {"available": True, "command": cmd, "process_seconds": wall, **result}


def config_params(config: str) -> dict[str, float]:
    """order size and max position from the lockstep config, if it names them (any table)."""
    path = Path(config) if Path(config).exists() else REPO / config
    if not path.exists():
        return {}
    try:
        import tomllib
    except ModuleNotFoundError:  # Python < 3.11
        return {}
    found: dict[str, float] = {}

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, (int, float, str)) and not isinstance(value, bool):
                    try:
                        number = float(value)
                    except ValueError:
                        continue
                    if key in ("order_qty", "qty", "size", "quote_size", "order_size") and "order_qty" not in found:
                        found["order_qty"] = number
                    elif key == "max_position" and "max_position" not in found:
                        found["max_position"] = number
                else:
                    walk(value)

    walk(tomllib.loads(path.read_text()))
    return found


# ------------------------------------------------------------------------------------------ output


def _fmt_rate(x: float | None) -> str:
    return "-" if x is None else f"{x / 1e6:,.2f}M"


def print_table(report: dict[str, Any]) -> None:
    h = report["hftbacktest"]
    ls = report["lockstep"]
    ds = report["dataset"]
    print(f"dataset      {ds['path']}  ({ds['events']:,} events: {ds['repetitions']} x {ds['source']})")
    print(f"hftbacktest  {report['hftbacktest_version']} ({h['depth']} depth, wait_next_feed per feed "
          f"and order response, {h['rows']:,} event rows, JIT warmed on {h['warmup_rows']:,} rows)")
    print(f"strategy     quote {report['params']['order_qty']} at the touch, max |position| "
          f"{report['params']['max_position']}, latency {report['params']['latency_ns'] / 1e6:g} ms each way")
    rows = [("", "events/s", "seconds", "fills", "pnl")]
    rows.append(("hftbacktest", _fmt_rate(h["events_per_second"]), f"{h['seconds']:.2f}", f"{h['fills']:,}",
                 f"{h['pnl']:.4f}"))
    if ls.get("available"):
        eps = ls.get("events_per_second")
        secs = ls.get("seconds", (ls.get("events") or 0) / eps if eps else None)
        rows.append(("lockstep", _fmt_rate(eps), "-" if secs is None else f"{secs:.2f}",
                     f"{ls.get('fills', '-'):,}" if isinstance(ls.get("fills"), int) else str(ls.get("fills", "-")),
                     f"{ls['pnl']:.4f}" if isinstance(ls.get("pnl"), (int, float)) else str(ls.get("pnl", "-"))))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        print("  " + "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)))
    if report["conversion"]["min_feed_latency_ns"] < 0:
        lat = report["conversion"]["min_feed_latency_ns"] / 1e9
        shift = report["params"]["local_ts_shift_ns"]
        print(f"clock skew   ts_recv - ts_event reaches {lat:.3f} s in this capture: the strategy sees the book "
              f"before the simulated exchange does" + (f"; local_ts shifted by {shift / 1e9:.3f} s (--shift-local-ts)"
                                                        if shift else " (try --shift-local-ts)"))
    print(f"hftbacktest over its own rows: {_fmt_rate(h['rows_per_second'])} rows/s; "
          f"backtester build {h['build_seconds']:.2f} s (not timed)")
    if ls.get("available"):
        ratio = report.get("ratio_lockstep_over_hftbacktest")
        print(f"ratio        lockstep / hftbacktest = {ratio:.2f}x" if ratio else "ratio        -")
        if ls.get("run_dir"):
            print(f"lockstep run {ls['run_dir']}  digest {ls.get('digest', '-')}")
    else:
        print(ls["reason"])
    print(f"note         {MODEL_NOTE}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", metavar="ROOT", default=None, help="storage root (default: $LOCKSTEP_DATA, else ./data)")
    p.add_argument("--events", type=int, default=10_000_000, help="repeat the capture to at least N events")
    p.add_argument("--lockstep-config", default=DEFAULT_CONFIG, help="lockstep backtest config")
    p.add_argument("--lockstep-set", action="append", default=[], metavar="KEY=VALUE",
                   help="extra --set for lockstep backtest (repeatable)")
    p.add_argument("--no-lockstep", action="store_true", help="run hftbacktest only")
    p.add_argument("--capture", type=Path, default=DEFAULT_CAPTURE, help="Binance USD-M capture to import if needed")
    p.add_argument("--order-qty", type=float, default=None, help="quote size (default: from the config, else 0.001)")
    p.add_argument("--max-position", type=float, default=None,
                   help="max |position| (default: from the config, else 0.01)")
    p.add_argument("--latency-ns", type=int, default=1_000_000, help="order entry and response latency (1 ms)")
    p.add_argument("--depth", choices=("hashmap", "roivec"), default="roivec",
                   help="hftbacktest market depth (roivec measured faster here; ROI = trade prices -20%%/+20%%)")
    p.add_argument("--shift-local-ts", action="store_true",
                   help="raise every local_ts by the most negative feed latency (ts_recv - ts_event), as "
                        "hftbacktest's own converters do (correct_local_timestamp); default: local_ts = ts_recv")
    p.add_argument("--warmup-rows", type=int, default=200_000, help="rows of the JIT warm-up run")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr if args.json else sys.stdout, flush=True)

    version = hftbacktest_version()
    if version is None:
        message = f"hftbacktest is not installed; to run this side-by-side: {INSTALL_HINT}"
        if args.json:
            print(json.dumps({"hftbacktest_version": None, "message": message}))
        else:
            print(message)
        return 0

    from_config = config_params(args.lockstep_config)
    order_qty = args.order_qty if args.order_qty is not None else from_config.get("order_qty", 0.001)
    max_position = args.max_position if args.max_position is not None else from_config.get("max_position", 0.01)

    ds = ensure_dataset(args.data, args.events, args.capture, log)
    npz, info = ensure_npz(ds, args.data, log)
    arr = np.load(npz)["data"]
    shift = 0
    if args.shift_local_ts and info["min_feed_latency_ns"] < 0:
        shift = -info["min_feed_latency_ns"]
        arr["local_ts"] += shift  # a constant: local and exchange orders of the rows are unchanged

    warm = arr[: min(args.warmup_rows, len(arr))].copy()
    log(f"hftbacktest JIT warm-up on {len(warm):,} rows ...")
    run_hftbacktest(warm, info, depth=args.depth, latency_ns=args.latency_ns, order_qty=order_qty,
                    max_position=max_position)
    log(f"hftbacktest on {len(arr):,} rows ({ds.rows:,} dataset events) ...")
    h = run_hftbacktest(arr, info, depth=args.depth, latency_ns=args.latency_ns, order_qty=order_qty,
                        max_position=max_position)
    h.update(depth=args.depth, warmup_rows=len(warm), events=ds.rows,
             events_per_second=ds.rows / h["seconds"], rows_per_second=h["rows"] / h["seconds"])
    del arr, warm

    if args.no_lockstep:
        ls: dict[str, Any] = {"available": False, "reason": "lockstep run skipped (--no-lockstep)"}
    else:
        ls = run_lockstep(args.lockstep_config, ds, args.data, args.lockstep_set, log)
    ratio = None
    if ls.get("available") and ls.get("events_per_second"):
        ratio = float(ls["events_per_second"]) / h["events_per_second"]
    report = {
        "hftbacktest_version": version,
        "dataset": {"path": ds.path, "name": ds.name, "events": ds.rows,
                    "repetitions": ds.manifest["source"].get("times"), "source": SOURCE_NAME},
        "conversion": info,
        "params": {"order_qty": order_qty, "max_position": max_position, "latency_ns": args.latency_ns,
                   "local_ts_shift_ns": shift, "from_config": from_config},
        "hftbacktest": h,
        "lockstep": ls,
        "ratio_lockstep_over_hftbacktest": ratio,
        "note": MODEL_NOTE,
    }
    if args.json:
        print(json.dumps(report, default=str))
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
