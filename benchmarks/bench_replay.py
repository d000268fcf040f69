"""Replay throughput in memory: L2 and L3 synthetic markets, and the real USD-M BTCUSDT capture.

Data is generated (or decoded) before timing; the timed part is the compiled replay of in-memory
column batches, including the final state digest.
"""
from __future__ import annotations

import pytest
from conftest import report_rate, scaled
from shared_data import shared_file

from lockstep.backtest.replay import replay_batches
from lockstep.data.dataset import Instrument
from lockstep.data.synth import iter_synthetic


def _synthetic(book: str, events: int):
    batches = [(cols, len(cols["ts_event"])) for cols in iter_synthetic(events, seed=7, book=book)]
    instruments = [Instrument("SYN0", "SYNTH", "0.01", "0.001", book=book)]
    return batches, instruments


@pytest.mark.parametrize("book,events", [("l2", 20_000_000), ("l3", 10_000_000)])
def test_replay_in_memory(benchmark, book, events):
    batches, instruments = _synthetic(book, scaled(events))
    result = benchmark.pedantic(replay_batches, args=(batches, instruments), rounds=3, iterations=1)
    report_rate(benchmark, result.events, "events")
    assert result.events == sum(n for _, n in batches)


def test_replay_real_usdm_capture(benchmark):
    """The real capture (decoded once), replayed repeatedly to reach a measurable length."""
    from lockstep.data.importers import decode_binance

    run = decode_binance([shared_file("binance/usdm/btcusdt_20240808.gz")])
    batches = [(chunk.events, chunk.n_events) for chunk in run]
    instruments = run.instruments
    one_pass = sum(n for _, n in batches)
    repeats = max(1, scaled(10_000_000) // one_pass)
    replay_all = batches * repeats
    result = benchmark.pedantic(replay_batches, args=(replay_all, instruments), rounds=3, iterations=1)
    report_rate(benchmark, result.events, "events")
