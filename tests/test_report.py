from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import numpy as np
import pyarrow as pa
import pytest

from lockstep.backtest.report import compute_metrics, downsample, totals, write_report

S = 1_000_000_000  # ns
YEAR_SAMPLES_1S = 365 * 86400


def series(rows):
    """rows: (ts_s, symbol, equity) or (ts_s, symbol, equity, fees, realized, position)."""
    rows = [r + (0.0, 0.0, 0.0)[len(r) - 3:] if len(r) < 6 else r for r in rows]
    ts = np.array([int(r[0] * S) for r in rows], dtype=np.int64)
    eq = np.array([r[2] for r in rows], dtype=np.float64)
    fees = np.array([r[3] for r in rows], dtype=np.float64)
    realized = np.array([r[4] for r in rows], dtype=np.float64)
    return {
        "ts_recv": ts,
        "symbol": np.array([r[1] for r in rows], dtype=object),
        "position": np.array([r[5] for r in rows], dtype=np.float64),
        "mid": np.full(len(rows), np.nan),
        "realized": realized,
        "unrealized": eq - realized + fees,
        "fees": fees,
        "equity": eq,
    }


def one(equity, symbol="BTCUSDT"):
    return series([(i, symbol, e) for i, e in enumerate(equity)])


# --------------------------------------------------------------------------------------------
# Metrics


def test_drawdown_of_a_known_path():
    # peak 12 at t=3s, trough 3 at t=4s: the drawdown is 9 (the 10 -> 4 dip is only 6)
    m = compute_metrics(one([0, 10, 4, 12, 3, 8]), S)
    assert m["max_drawdown"] == 9.0
    assert (m["max_drawdown_start_ns"], m["max_drawdown_end_ns"]) == (3 * S, 4 * S)
    assert m["pnl"] == 8.0 and m["samples"] == 6


def test_drawdown_starts_at_the_last_sample_at_the_peak():
    m = compute_metrics(one([0, 5, 5, 2, 4]), S)
    assert m["max_drawdown"] == 3.0
    assert (m["max_drawdown_start_ns"], m["max_drawdown_end_ns"]) == (2 * S, 3 * S)


def test_no_drawdown_when_equity_never_falls():
    m = compute_metrics(one([0, 1, 1, 2, 7]), S)
    assert m["max_drawdown"] == 0.0
    assert m["max_drawdown_start_ns"] is None and m["max_drawdown_end_ns"] is None


def test_sharpe_by_construction():
    # changes alternate +1, +3: mean 2, standard deviation 1 -> 2 per sample
    m = compute_metrics(one([0, 1, 4, 5, 8]), S)
    assert m["sharpe"] == pytest.approx(2 * math.sqrt(YEAR_SAMPLES_1S))
    # sampled every minute there are 60x fewer samples a year
    m = compute_metrics(one([0, 1, 4, 5, 8]), 60 * S)
    assert m["sharpe"] == pytest.approx(2 * math.sqrt(YEAR_SAMPLES_1S / 60))
    # losing the same way: the sign flips
    assert compute_metrics(one([0, -1, -4, -5, -8]), S)["sharpe"] == pytest.approx(
        -2 * math.sqrt(YEAR_SAMPLES_1S))


@pytest.mark.parametrize("equity", [[], [5.0], [0.0, 0.1, 0.2, 0.3, 0.4, 0.5], [3, 3, 3]])
def test_sharpe_is_zero_without_variation_or_samples(equity):
    assert compute_metrics(one(equity), S)["sharpe"] == 0.0


def test_totals_over_instruments_per_timestamp():
    s = series([
        (0, "A", 0.0, 0.0, 0.0, 1.0), (0, "B", 0.0, 0.0, 0.0, -1.0),
        (1, "A", 5.0, 1.0, 4.0, 2.0), (1, "B", -2.0, 0.5, -1.0, 0.0),
        (2, "A", 5.0, 1.5, 6.0, 0.0), (2, "B", 3.0, 0.5, 3.0, 3.0),
    ])
    t = totals(s)
    assert t["ts_recv"].tolist() == [0, S, 2 * S] and t["equity"].tolist() == [0.0, 3.0, 8.0]
    m = compute_metrics(s, S)
    assert (m["pnl"], m["fees"], m["realized"], m["samples"]) == (8.0, 2.0, 9.0, 3)
    assert m["by_symbol"]["B"] == {"position": 3.0, "pnl": 3.0, "fees": 0.5, "realized": 3.0}
    assert m["by_symbol"]["A"]["position"] == 0.0


def test_an_instrument_without_a_row_counts_with_its_last_value():
    # B has no sample at t=2: its equity stays 10 there, so the total never drops
    s = series([(0, "A", 0.0), (0, "B", 0.0), (1, "A", 1.0), (1, "B", 10.0), (2, "A", 2.0),
                (3, "A", 3.0), (3, "B", 10.0)])
    assert totals(s)["equity"].tolist() == [0.0, 11.0, 12.0, 13.0]
    assert compute_metrics(s, S)["max_drawdown"] == 0.0


def test_arrow_table_and_dict_agree():
    s = series([(i, "A" if i % 2 else "B", float((i * 7) % 5)) for i in range(20)])
    table = pa.table({k: pa.array(v.tolist() if v.dtype == object else v) for k, v in s.items()})
    assert compute_metrics(table, S) == compute_metrics(s, S)


def test_bad_inputs():
    with pytest.raises(ValueError):
        compute_metrics(one([1, 2]), 0)
    bad = one([1, 2, 3])
    bad["ts_recv"] = bad["ts_recv"][::-1].copy()
    with pytest.raises(ValueError, match="sorted"):
        compute_metrics(bad, S)


def test_empty_series():
    for empty in (None, one([])):
        m = compute_metrics(empty, S)
        assert m["pnl"] == 0.0 and m["samples"] == 0 and m["sharpe"] == 0.0 and m["by_symbol"] == {}


# --------------------------------------------------------------------------------------------
# Downsampling


def test_downsample_keeps_extremes_and_bounds_points():
    rng = np.random.default_rng(3)
    n = 200_000
    ts = np.arange(n, dtype=np.int64) * 1000
    v = np.cumsum(rng.normal(size=n))
    v[12345] = 1e6
    v[54321] = -1e6
    t2, v2 = downsample(ts, v, 500)
    assert len(t2) <= 4 * 500 and np.all(np.diff(t2) > 0)
    assert v2.max() == 1e6 and v2.min() == -1e6
    assert t2[0] == ts[0] and t2[-1] == ts[-1] and v2[-1] == v[-1]
    short_t, _ = downsample(ts[:100], v[:100], 500)
    assert short_t.tolist() == ts[:100].tolist()


# --------------------------------------------------------------------------------------------
# HTML


def svgs(text):
    return re.findall(r"<svg\b.*?</svg>", text, flags=re.DOTALL)


def summary_for(s, **extra):
    return {**compute_metrics(s, S), "fills": 3, "events": 1000, "events_per_second": 2.5e6,
            "digest": "0123abcd", **extra}


def test_report_has_three_charts_and_key_numbers(tmp_path):
    s = series([(i, sym, float(i * (1 if sym == "A" else -1)) % 7, 0.1 * i, 0.0, float(i % 3))
                for i in range(50) for sym in ("A", "B")])
    path = tmp_path / "report.html"
    write_report(path, title="mm-1 / 20240808", summary=summary_for(s), series=s,
                 fills={"ts_recv": np.array([1, 2, 3]), "symbol": np.array(["A", "B", "A"]),
                        "price": np.array([1.5, 2.5, 3.5])},
                 config_text='name = "mm-1"\n')
    text = path.read_text()
    assert text.startswith("<!DOCTYPE html>")
    charts = svgs(text)
    assert len(charts) == 3
    for c in charts:
        root = ET.fromstring(c)
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        assert root.findall(".//{http://www.w3.org/2000/svg}polyline")
    # a legend for the two symbols of the position chart
    assert ">A</text>" in charts[1] and ">B</text>" in charts[1]
    for needle in ("mm-1 / 20240808", "0123abcd", "2,500,000", "events/s", "Sharpe",
                   "max drawdown", "name = &quot;mm-1&quot;", "<pre>", "3.5"):
        assert needle in text, needle
    # self-contained: no scripts, no external resources
    assert "<script" not in text and "src=" not in text and "href=" not in text
    assert "@import" not in text and "url(" not in text


def test_report_escapes_text(tmp_path):
    s = series([(0, "<b>", 0.0), (0, "x&y", 0.0), (1, "<b>", 1.0), (1, "x&y", 2.0)])
    path = tmp_path / "r.html"
    write_report(path, title="<script>alert(1)</script>", summary={"note": "<i>"}, series=s,
                 config_text="a = '</pre><b>'")
    text = path.read_text()
    assert "<b>" not in text and "<i>" not in text and "<script>" not in text
    assert "&lt;b&gt;" in text and "x&amp;y" in text and "&lt;/pre&gt;" in text
    for c in svgs(text):
        ET.fromstring(c)


@pytest.mark.parametrize("empty", [None, "dict"])
def test_report_with_no_samples_and_no_fills(tmp_path, empty):
    s = None if empty is None else one([])
    path = tmp_path / "r.html"
    write_report(path, title="empty", summary=compute_metrics(s, S), series=s)
    text = path.read_text()
    charts = svgs(text)
    assert len(charts) == 3 and all("no samples" in c for c in charts)
    for c in charts:
        ET.fromstring(c)


def test_report_with_one_sample(tmp_path):
    path = tmp_path / "r.html"
    write_report(path, title="one", summary={}, series=one([5.0]))
    for c in svgs(path.read_text()):
        ET.fromstring(c)


def test_time_axis_labels(tmp_path):
    # a short run: HH:MM:SS labels; a long one: dates
    path = tmp_path / "r.html"
    t0 = 1_723_075_200  # 2024-08-08 00:00:00 UTC
    write_report(path, title="t", summary={}, series=series([(t0 + i, "A", float(i)) for i in range(60)]))
    text = path.read_text()
    assert re.search(r">00:00:[0-5]0<", text) and "2024-08-08 00:00:00 UTC" in text
    write_report(path, title="t", summary={},
                 series=series([(t0 + i * 86400, "A", float(i)) for i in range(30)]))
    assert re.search(r">2024-08-\d\d<", path.read_text())


def test_a_million_rows_give_a_small_file(tmp_path):
    n = 1_000_000
    rng = np.random.default_rng(7)
    eq = np.cumsum(rng.normal(size=n))
    sym = np.where(np.arange(n) % 2 == 0, "BTCUSDT", "ETHUSDT").astype(object)
    s = {"ts_recv": (np.arange(n, dtype=np.int64) // 2) * 100_000_000, "symbol": sym,
         "position": np.cumsum(rng.normal(size=n)), "mid": np.full(n, 1.0), "realized": eq,
         "unrealized": np.zeros(n), "fees": np.zeros(n), "equity": eq}
    path = tmp_path / "big.html"
    write_report(path, title="big", summary=compute_metrics(s, 100_000_000), series=s)
    assert path.stat().st_size < 2_000_000
    assert len(svgs(path.read_text())) == 3
