"""Backtest summary metrics and the self-contained HTML report.

The input is the PnL/position series the runner samples, in real units, one row per sample per
instrument, sorted by ts_recv (a pyarrow Table or a dict of numpy arrays):

    ts_recv (int64 ns) | symbol (str) | position | mid (NaN if unknown) | realized | unrealized
    | fees (positive = paid) | equity (= realized + unrealized - fees)

Totals are over instruments per timestamp; an instrument without a row at some timestamp counts
with its last value (0 before its first row).

The report is one HTML file with inline CSS and inline SVG charts: no scripts, fonts or links, so
it renders offline and can be mailed or archived as is. Long series are downsampled per pixel
column (first, min, max, last of each column), so the file stays small for any run length.
"""
from __future__ import annotations

import datetime as _dt
import html
import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

SERIES_COLUMNS = ("ts_recv", "symbol", "position", "mid", "realized", "unrealized", "fees", "equity")
_NS_PER_YEAR = 365 * 86400 * 1_000_000_000


# --------------------------------------------------------------------------------------------
# Series


def _columns(series: pa.Table | Mapping[str, Any] | None) -> dict[str, np.ndarray]:
    """The series as numpy arrays (missing numeric columns as NaN, for robustness)."""
    if series is None:
        cols: Mapping[str, Any] = {}
    elif isinstance(series, (pa.Table, pa.RecordBatch)):
        cols = {name: series.column(name).to_numpy(zero_copy_only=False)
                for name in series.column_names}
    else:
        cols = series
    n = len(cols["ts_recv"]) if "ts_recv" in cols else 0
    out: dict[str, np.ndarray] = {
        "ts_recv": np.asarray(cols.get("ts_recv", np.empty(0)), dtype=np.int64),
        "symbol": np.asarray(cols.get("symbol", np.full(n, "")), dtype=object).astype(str),
    }
    for name in SERIES_COLUMNS[2:]:
        out[name] = np.asarray(cols[name], dtype=np.float64) if name in cols else np.full(n, np.nan)
    for name, arr in out.items():
        if len(arr) != n:
            raise ValueError(f"series column {name!r} has {len(arr)} rows, not {n}")
    if n > 1 and np.any(np.diff(out["ts_recv"]) < 0):
        raise ValueError("series must be sorted by ts_recv")
    return out


def _ffill(values: np.ndarray) -> np.ndarray:
    """NaNs replaced by the last non-NaN value before them (0 before the first)."""
    ok = ~np.isnan(values)
    idx = np.where(ok, np.arange(len(values)), -1)
    np.maximum.accumulate(idx, out=idx)
    out = np.where(idx >= 0, values[np.maximum(idx, 0)], 0.0)
    return out


class _Grid:
    """Timestamps x symbols of a series: each column pivoted onto it with _Grid.pivot()."""

    def __init__(self, cols: dict[str, np.ndarray]) -> None:
        self.cols = cols
        self.ts, self._row = np.unique(cols["ts_recv"], return_inverse=True)
        symbols, self._col = np.unique(cols["symbol"], return_inverse=True)
        self.symbols: list[str] = symbols.tolist()

    def pivot(self, name: str) -> np.ndarray:
        """matrix[ts, symbol] of column `name`, each symbol's values carried forward over
        timestamps where it has no row (the last row wins within a timestamp)."""
        mat = np.full((len(self.ts), len(self.symbols)), np.nan)
        mat[self._row, self._col] = self.cols[name]
        for j in range(len(self.symbols)):
            mat[:, j] = _ffill(mat[:, j])
        return mat


def totals(series: pa.Table | Mapping[str, Any] | None) -> dict[str, np.ndarray]:
    """Per-timestamp totals over instruments: {"ts_recv", "equity", "fees", "realized"}."""
    grid = _Grid(_columns(series))
    out: dict[str, np.ndarray] = {"ts_recv": grid.ts}
    for name in ("equity", "fees", "realized"):
        out[name] = grid.pivot(name).sum(axis=1)
    return out


def _drawdown(equity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(running peak, drawdown = peak - equity >= 0)."""
    peak = np.maximum.accumulate(equity) if len(equity) else equity
    return peak, peak - equity


def compute_metrics(series: pa.Table | Mapping[str, Any] | None, sample_interval_ns: int) -> dict[str, Any]:
    """Summary metrics of a run, totals over instruments per timestamp:

    - pnl, fees, realized: the final total equity, fees paid and realized PnL (quote currency);
    - max_drawdown: the largest peak-to-trough drop of total equity over the samples (>= 0, 0 if
      equity never fell), max_drawdown_start_ns / _end_ns: when that peak (its last sample at
      the peak level) and trough were (None without a drawdown);
    - sharpe: mean / std (population) of the per-sample changes of total equity, times
      sqrt(samples per year) with samples per year = 365 days / sample_interval_ns. It is a PnL
      Sharpe ratio: without a capital base there are no returns, so it measures how steady the
      PnL was, not the return on capital. 0.0 with fewer than 2 samples or no variation;
    - samples: timestamps sampled; by_symbol: final position, pnl, fees, realized per symbol.
    """
    if isinstance(sample_interval_ns, bool) or not isinstance(sample_interval_ns, int) or sample_interval_ns <= 0:
        raise ValueError(f"sample_interval_ns must be an int > 0, not {sample_interval_ns!r}")
    grid = _Grid(_columns(series))
    ts, symbols = grid.ts, grid.symbols
    eq, f_sym, r_sym = grid.pivot("equity"), grid.pivot("fees"), grid.pivot("realized")
    position = grid.pivot("position")
    total, fees, realized = eq.sum(axis=1), f_sym.sum(axis=1), r_sym.sum(axis=1)
    n = len(ts)
    out: dict[str, Any] = {
        "pnl": float(total[-1]) if n else 0.0,
        "fees": float(fees[-1]) if n else 0.0,
        "realized": float(realized[-1]) if n else 0.0,
        "max_drawdown": 0.0,
        "max_drawdown_start_ns": None,
        "max_drawdown_end_ns": None,
        "sharpe": 0.0,
        "samples": n,
    }
    if n:
        peak, dd = _drawdown(total)
        end = int(np.argmax(dd))
        if dd[end] > 0:
            at_peak = np.flatnonzero(total[: end + 1] == peak[end])
            out["max_drawdown"] = float(dd[end])
            out["max_drawdown_start_ns"] = int(ts[at_peak[-1]])
            out["max_drawdown_end_ns"] = int(ts[end])
    if n >= 2:
        changes = np.diff(total)
        mean, std = float(changes.mean()), float(changes.std())
        # Float noise on a constant step is no variation.
        if std > 1e-12 * max(1.0, float(np.abs(changes).mean())):
            out["sharpe"] = mean / std * math.sqrt(_NS_PER_YEAR / sample_interval_ns)
    out["by_symbol"] = {
        s: {"position": float(position[-1, j]), "pnl": float(eq[-1, j]),
            "fees": float(f_sym[-1, j]), "realized": float(r_sym[-1, j])}
        for j, s in enumerate(symbols)
    } if n else {}
    return out


# --------------------------------------------------------------------------------------------
# SVG charts

_W, _H = 960, 260
_ML, _MR, _MT, _MB = 78, 16, 14, 40  # margins: left (value labels), right, top, bottom (time)
_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
_MAX_LEGEND = 12
_TIME_STEPS_NS = [
    s * 1_000_000 for s in (1, 2, 5, 10, 20, 50, 100, 200, 500)
] + [s * 1_000_000_000 for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200,
                                  10800, 21600, 43200, 86400, 2 * 86400, 7 * 86400, 14 * 86400,
                                  30 * 86400, 91 * 86400, 182 * 86400, 365 * 86400)]


def downsample(ts: np.ndarray, values: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """At most 4 points per pixel column (first, min, max, last, in time order) of a series
    sorted by time: the plotted line keeps every extreme. NaNs are dropped."""
    ok = ~np.isnan(values)
    ts, values = ts[ok], values[ok]
    n = len(ts)
    if n <= 4 * columns:
        return ts, values
    t0, t1 = int(ts[0]), int(ts[-1])
    span = max(t1 - t0, 1)
    col = ((ts - t0).astype(np.float64) * (columns / span)).astype(np.int64)
    np.minimum(col, columns - 1, out=col)
    starts = np.flatnonzero(np.r_[True, col[1:] != col[:-1]])
    ends = np.r_[starts[1:], n]
    mins = starts + np.array([np.argmin(values[a:b]) for a, b in zip(starts, ends)], dtype=np.int64)
    maxs = starts + np.array([np.argmax(values[a:b]) for a, b in zip(starts, ends)], dtype=np.int64)
    idx = np.unique(np.concatenate([starts, ends - 1, mins, maxs]))
    return ts[idx], values[idx]


def _nice_step(span: float, target: int) -> float:
    raw = span / max(target, 1)
    if raw <= 0 or not math.isfinite(raw):
        return 1.0
    mag = 10.0 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def _value_ticks(lo: float, hi: float) -> tuple[list[float], int]:
    """Round tick values covering [lo, hi] and the decimals their labels need."""
    step = _nice_step(hi - lo, 5)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    v = first
    while v <= hi + step * 1e-9 and len(ticks) < 20:
        ticks.append(0.0 if abs(v) < step * 1e-9 else v)
        v += step
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step < 1 else 0
    if step == 2.5 * 10.0 ** math.floor(math.log10(step)) and step < 10:
        decimals += 1
    return ticks, min(decimals, 12)


def _fmt_value(v: float, decimals: int) -> str:
    if abs(v) >= 1e9:
        return f"{v:.3g}"
    return f"{v:,.{decimals}f}"


def _time_ticks(t0: int, t1: int) -> tuple[list[int], str]:
    span = max(t1 - t0, 1)
    step = next((s for s in _TIME_STEPS_NS if span / s <= 7), _TIME_STEPS_NS[-1])
    first = -(-t0 // step) * step
    ticks = list(range(first, t1 + 1, step))
    if step >= 86400 * 10**9:
        fmt = "%Y-%m-%d"
    elif span >= 20 * 3600 * 10**9 or _utc(t0).date() != _utc(t1).date():
        fmt = "%m-%d %H:%M"
    elif step < 10**9:
        fmt = "%H:%M:%S.%f"
    else:
        fmt = "%H:%M:%S"
    return ticks, fmt


def _utc(ns: int) -> _dt.datetime:
    return _dt.datetime(1970, 1, 1) + _dt.timedelta(microseconds=ns // 1000)


def _fmt_time(ns: int, fmt: str) -> str:
    s = _utc(ns).strftime(fmt)
    return s[:-3] if fmt.endswith("%f") else s


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def svg_chart(title: str, lines: Sequence[tuple[str, np.ndarray, np.ndarray]], *,
              fill_to_zero: bool = False, width: int = _W, height: int = _H) -> str:
    """An inline SVG line chart: `lines` are (label, ts ns, values); a legend when more than one.
    Time runs along x (UTC), values up y with round ticks."""
    pw, ph = width - _ML - _MR, height - _MT - _MB
    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
              f'viewBox="0 0 {width} {height}" role="img" aria-label="{_e(title)}">'),
             f"<title>{_e(title)}</title>",
             f'<rect x="{_ML}" y="{_MT}" width="{pw}" height="{ph}" fill="#fff" stroke="#ccc"/>']
    cols = pw if len(lines) <= 8 else max(120, pw * 8 // len(lines))
    data = [(label, *downsample(np.asarray(t, dtype=np.int64), np.asarray(v, dtype=np.float64), cols))
            for label, t, v in lines]
    data = [d for d in data if len(d[1])]
    if not data:
        parts.append(f'<text x="{_ML + pw / 2}" y="{_MT + ph / 2}" text-anchor="middle" '
                     f'fill="#888">no samples</text></svg>')
        return "".join(parts)
    t0 = min(int(d[1][0]) for d in data)
    t1 = max(int(d[1][-1]) for d in data)
    if t1 == t0:
        t0, t1 = t0 - 10**9, t1 + 10**9
    lo = min(float(d[2].min()) for d in data)
    hi = max(float(d[2].max()) for d in data)
    if fill_to_zero:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo <= 1e-12 * max(1.0, abs(hi)):
        pad = max(abs(hi) * 0.1, 1.0)
        lo, hi = lo - pad, hi + pad
    else:
        pad = (hi - lo) * 0.05
        if not (fill_to_zero and lo == 0):
            lo -= pad
        if not (fill_to_zero and hi == 0):
            hi += pad

    def x(t: np.ndarray | int) -> np.ndarray:
        return _ML + (np.asarray(t, dtype=np.float64) - t0) * (pw / (t1 - t0))

    def y(v: np.ndarray | float) -> np.ndarray:
        return _MT + ph - (np.asarray(v, dtype=np.float64) - lo) * (ph / (hi - lo))

    ticks, decimals = _value_ticks(lo, hi)
    for v in ticks:
        yy = float(y(v))
        parts.append(f'<line x1="{_ML}" y1="{yy:.1f}" x2="{_ML + pw}" y2="{yy:.1f}" stroke="#eee"/>'
                     f'<text x="{_ML - 6}" y="{yy + 4:.1f}" text-anchor="end" class="tick">'
                     f"{_e(_fmt_value(v, decimals))}</text>")
    tticks, fmt = _time_ticks(t0, t1)
    for t in tticks:
        xx = float(x(t))
        parts.append(f'<line x1="{xx:.1f}" y1="{_MT}" x2="{xx:.1f}" y2="{_MT + ph}" stroke="#eee"/>'
                     f'<text x="{xx:.1f}" y="{_MT + ph + 16}" text-anchor="middle" class="tick">'
                     f"{_e(_fmt_time(t, fmt))}</text>")
    start = _utc(t0).strftime("%Y-%m-%d %H:%M:%S UTC")
    parts.append(f'<text x="{_ML}" y="{height - 6}" class="tick">{_e(start)}</text>')
    if lo < 0 < hi:
        parts.append(f'<line x1="{_ML}" y1="{float(y(0)):.1f}" x2="{_ML + pw}" '
                     f'y2="{float(y(0)):.1f}" stroke="#999"/>')
    for i, (label, t, v) in enumerate(data):
        color = _COLORS[i % len(_COLORS)]
        xs, ys = x(t), y(v)
        pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(xs.tolist(), ys.tolist()))
        if fill_to_zero:
            y0 = float(y(0))
            parts.append(f'<polygon points="{xs[0]:.1f},{y0:.1f} {pts} {xs[-1]:.1f},{y0:.1f}" '
                         f'fill="{color}" fill-opacity="0.15" stroke="none"/>')
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="1.3" '
                     f'stroke-linejoin="round"><title>{_e(label)}</title></polyline>')
    if len(data) > 1:
        shown = data[:_MAX_LEGEND]
        rows = len(shown) + (len(data) > _MAX_LEGEND)
        parts.append(f'<rect x="{_ML + pw - 156}" y="{_MT + 4}" width="150" height="{rows * 16 + 4}" '
                     f'fill="#fff" fill-opacity="0.85"/>')
        for i, (label, _, _) in enumerate(shown):
            ly = _MT + 8 + i * 16
            parts.append(f'<rect x="{_ML + pw - 150}" y="{ly}" width="10" height="10" '
                         f'fill="{_COLORS[i % len(_COLORS)]}"/>'
                         f'<text x="{_ML + pw - 135}" y="{ly + 9}" class="legend">{_e(label)}</text>')
        if len(data) > _MAX_LEGEND:
            ly = _MT + 8 + _MAX_LEGEND * 16
            parts.append(f'<text x="{_ML + pw - 150}" y="{ly + 9}" class="legend">'
                         f"+{len(data) - _MAX_LEGEND} more</text>")
    parts.append("</svg>")
    return "".join(parts)


# --------------------------------------------------------------------------------------------
# HTML

_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1000px}
h1{font-size:22px;margin:0 0 12px} h2{font-size:16px;margin:24px 0 6px}
.kpis{display:flex;flex-wrap:wrap;gap:8px 24px;margin:8px 0 16px}
.kpi .v{font-size:18px;font-weight:600} .kpi .k{font-size:12px;color:#666}
.kpi .v.neg{color:#b00} .kpi .v.pos{color:#060}
table{border-collapse:collapse;font-size:13px} td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
pre{background:#f6f6f6;padding:10px;font-size:12px;overflow:auto}
svg text.tick{font-size:11px;fill:#555} svg text.legend{font-size:12px;fill:#222}
.digest{font-family:monospace;font-size:12px}
.incomplete{background:#fde8e8;border:2px solid #b00;color:#700;padding:10px 14px;margin:8px 0 16px;font-weight:600}
"""


def _fmt_number(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        if v != 0 and abs(v) < 1e-3:
            return f"{v:.4g}"
        return f"{v:,.4f}".rstrip("0").rstrip(".") if abs(v) < 1e12 else f"{v:.6g}"
    return str(v)


def _fmt_summary_value(key: str, v: Any) -> str:
    if key.endswith("_ns") and isinstance(v, int) and not isinstance(v, bool):
        return f"{_utc(v).strftime('%Y-%m-%d %H:%M:%S.%f')[:-3]} UTC"
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v, default=str, indent=1)
    return _fmt_number(v)


def _rows_of(fills: pa.Table | Mapping[str, Any] | None) -> tuple[list[str], list[list[Any]], int]:
    if fills is None:
        return [], [], 0
    if isinstance(fills, (pa.Table, pa.RecordBatch)):
        names = list(fills.column_names)
        n = fills.num_rows
        pick = list(range(min(n, 50))) + list(range(max(50, n - 50), n))
        cols = [fills.column(c).take(pa.array(pick, pa.int64())).to_pylist() for c in names]
    else:
        names = list(fills)
        n = len(next(iter(fills.values()))) if fills else 0
        pick = list(range(min(n, 50))) + list(range(max(50, n - 50), n))
        cols = [[np.asarray(fills[c])[i].item() if hasattr(np.asarray(fills[c])[i], "item")
                 else np.asarray(fills[c])[i] for i in pick] for c in names]
    rows = [list(r) for r in zip(*cols)] if cols else []
    return names, rows, n


def _incomplete_banner(summary: Mapping[str, Any]) -> list[str]:
    """A run that stopped early (failed or interrupted) says so above every figure: they cover
    only the events before it stopped."""
    if summary.get("complete", True):
        return []
    err = summary.get("error") or {}
    where = f" at event {err['position']:,}" if isinstance(err.get("position"), int) else ""
    banner = (f'<div class="incomplete">INCOMPLETE RUN: {_e(err.get("reason", "stopped early"))}{_e(where)}. '
              "Every figure below covers only the events before it stopped.</div>")
    return [banner]


def write_report(path: str | os.PathLike[str], *, title: str, summary: Mapping[str, Any],
                 series: pa.Table | Mapping[str, Any] | None, fills: pa.Table | Mapping[str, Any] | None = None,
                 config_text: str | None = None) -> None:
    """Writes the HTML report: a banner when the run is incomplete, key numbers (from `summary`:
    pnl, fees, fills, max_drawdown, sharpe, events, events_per_second, digest), charts of total equity, position per symbol and
    drawdown, the fills (first and last 50), the whole summary and the resolved config."""
    cols = _columns(series)
    n_fills = summary.get("fills")
    if n_fills is None and fills is not None:
        n_fills = _rows_of(fills)[2]
    kpis = [
        ("PnL", summary.get("pnl")), ("fees", summary.get("fees")), ("fills", n_fills),
        ("max drawdown", summary.get("max_drawdown")), ("Sharpe (PnL)", summary.get("sharpe")),
        ("events", summary.get("events")), ("events/s", summary.get("events_per_second")),
    ]
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{_e(title)}</title>", f"<style>{_CSS}</style></head><body>",
           f"<h1>{_e(title)}</h1>", *_incomplete_banner(summary), '<div class="kpis">']
    for label, value in kpis:
        cls = ""
        if label == "PnL" and isinstance(value, (int, float)) and value:
            cls = " neg" if value < 0 else " pos"
        if label == "events/s" and isinstance(value, float):
            value = round(value)
        out.append(f'<div class="kpi"><div class="v{cls}">{_e(_fmt_number(value))}</div>'
                   f'<div class="k">{_e(label)}</div></div>')
    out.append("</div>")
    if summary.get("digest") is not None:
        out.append(f'<div class="k">digest <span class="digest">{_e(summary["digest"])}</span></div>')

    grid = _Grid(cols)
    ts, symbols = grid.ts, grid.symbols
    total = grid.pivot("equity").sum(axis=1)
    _, dd = _drawdown(total)
    pos = grid.pivot("position")
    out.append("<h2>Equity (total, quote currency)</h2>")
    out.append(svg_chart("equity", [("equity", ts, total)]))
    out.append("<h2>Position</h2>")
    out.append(svg_chart("position", [(s, ts, pos[:, j]) for j, s in enumerate(symbols)]))
    out.append("<h2>Drawdown</h2>")
    out.append(svg_chart("drawdown", [("drawdown", ts, -dd)], fill_to_zero=True))

    names, rows, n = _rows_of(fills)
    if names:
        note = f" (first and last 50 of {n:,})" if n > 100 else ""
        out.append(f"<h2>Fills{_e(note)}</h2><table><tr>")
        out.extend(f"<th>{_e(c)}</th>" for c in names)
        out.append("</tr>")
        for i, r in enumerate(rows):
            if n > 100 and i == 50:
                out.append(f'<tr><td colspan="{len(names)}">...</td></tr>')
            out.append("<tr>" + "".join(
                f'<td class="n">{_e(_fmt_number(v))}</td>' if isinstance(v, (int, float))
                else f"<td>{_e(v)}</td>" for v in r) + "</tr>")
        out.append("</table>")

    out.append("<h2>Summary</h2><table>")
    for k, v in summary.items():
        text = _fmt_summary_value(k, v)
        cell = f"<pre>{_e(text)}</pre>" if "\n" in text else _e(text)
        out.append(f"<tr><th>{_e(k)}</th><td>{cell}</td></tr>")
    out.append("</table>")
    if config_text is not None:
        out.append(f"<h2>Configuration</h2><pre>{_e(config_text)}</pre>")
    out.append("</body></html>\n")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(out))


__all__ = ["SERIES_COLUMNS", "compute_metrics", "downsample", "svg_chart", "totals", "write_report"]
