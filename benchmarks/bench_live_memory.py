"""A live node's memory over a session ten times longer, with each example market maker:
`lockstep live` against `lockstep venue serve` on a synthetic L2 market at 4x its pace, a short
session and one ten times longer, the node's VmRSS and VmHWM read from /proc as it runs.

At scale 1 the sessions last 3 s and 30 s (LOCKSTEP_BENCH_SCALE scales them; 0.6 s at least:
the node's first half second is its warm-up).
Reported: the long session's resident set while trading (VmRSS) in its first tenth (its
warm-up, WARM_UP_S at least) and its last, what the last tenth added per feed message and per order, and the peak
of each process (VmHWM, the stop included: records to Parquet, the report). The issue's target:
memory flat over a 10x longer session; the bounds are tests/test_live_memory.py's.
"""
from __future__ import annotations

import pytest
from conftest import SCALE, scaled
from test_live_memory import BOUND_BYTES, SPEED, TIMES, WARM_UP_S, run_node

from lockstep.data.synth import generate

SHORT_S = max(0.6, 3.0 * SCALE)
#: The smoke run (a tiny scale) keeps to one market maker: its two sessions take ~15 s.
EXAMPLES = ["market_maker.toml", "market_maker_compiled.toml"] if SCALE >= 0.1 else ["market_maker.toml"]


@pytest.fixture(scope="module")
def market(bench_root):
    """Long enough for the long session at SPEED (a 2M-event synthetic L2 market spans ~410 s)."""
    events = max(200_000, scaled(int(2_000_000 * SHORT_S * TIMES * SPEED / 300)))
    return generate(events, seed=5, data=bench_root, name="live-memory")


@pytest.mark.parametrize("example", EXAMPLES)
def test_live_node_memory_over_a_ten_times_longer_session(benchmark, market, bench_root, tmp_path,
                                                          example):
    runs = {}

    def sessions() -> None:
        for label, seconds in (("short", SHORT_S), ("long", SHORT_S * TIMES)):
            runs[label] = run_node(tmp_path, market.path, bench_root, example, seconds)

    benchmark.pedantic(sessions, rounds=1, iterations=1)
    short, long = runs["short"], runs["long"]
    whole = SHORT_S * TIMES
    grown = long.grown(whole)
    peak_grown = long.peak - short.peak
    messages = long.summary["feed_messages"] - short.summary["feed_messages"]
    orders = long.summary["orders"] - short.summary["orders"]
    benchmark.extra_info.update(
        short_s=SHORT_S, long_s=whole, short_peak=short.peak, long_peak=long.peak,
        grown=grown, peak_grown=peak_grown, messages=(short.summary["feed_messages"], long.summary["feed_messages"]),
        orders=(short.summary["orders"], long.summary["orders"]),
        denials=(short.summary["denials"], long.summary["denials"]))
    mb = 2**20
    print(f"\n{example}: {whole:g} s session ({long.summary['feed_messages']:,} messages, "
          f"{long.summary['orders']:,} orders, {long.summary['denials']} denials): RSS while "
          f"trading {long.trading(0, max(SHORT_S, WARM_UP_S)) / mb:.1f} MB in the first "
          f"{max(SHORT_S, WARM_UP_S):g} s, "
          f"{long.trading(whole - SHORT_S, whole) / mb:.1f} MB in the last ({grown / mb:+.1f} MB, "
          f"{grown / max(messages, 1):+.1f} B per message, {grown / max(orders, 1):+,.0f} B per "
          f"order, beyond the {SHORT_S:g} s session's); peak with the stop {short.peak / mb:.1f} MB "
          f"after {SHORT_S:g} s, {long.peak / mb:.1f} MB after {whole:g} s ({peak_grown / mb:+.1f} MB)")
    assert long.summary["gaps_abandoned"] == 0 and long.summary["stopped_by"] == "duration"
    assert long.served["orders"] == long.summary["orders"]
    assert grown <= BOUND_BYTES and peak_grown <= 2 * BOUND_BYTES
