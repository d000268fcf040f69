"""Venue fee and latency models: fees exact (and saturating) against Python ints, latency draws
identical between the compiled model and the pure-Python reference, deterministic per seed and
call order, and distributed as configured."""
from __future__ import annotations

import math
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lockstep.enums import LatencyKind
from lockstep.reference import venue_models as reference
from lockstep.venue import matching as compiled
from lockstep.venue.matching import MAX_LATENCY_NS, LatencyConfig

_i64 = st.integers(-(2**63), 2**63 - 1)


@pytest.fixture(params=[compiled, reference], ids=["compiled", "reference"])
def impl(request):
    return request.param


def test_fee_is_exact_and_signed(impl):
    f = impl.FeeModel(maker_ppm=-25, taker_ppm=400)
    assert f.fee(123_456, 7, True) == -25 * 123_456 * 7
    assert f.fee(123_456, 7, False) == 400 * 123_456 * 7
    big = 2**62 - 1
    assert f.fee(big, 2**40, False) == big * 2**40 * 400  # far beyond int64, exact
    assert impl.FeeModel().fee(10, 10, True) == 0


@settings(max_examples=500, deadline=None)
@given(price=_i64, qty=_i64, maker=_i64, taker=_i64, is_maker=st.booleans())
def test_fee_compiled_and_reference_agree(price, qty, maker, taker, is_maker):
    a = compiled.FeeModel(maker, taker).fee(price, qty, is_maker)
    b = reference.FeeModel(maker, taker).fee(price, qty, is_maker)
    assert a == b
    exact = price * qty * (maker if is_maker else taker)
    assert a == max(-(2**127), min(2**127 - 1, exact))


def test_constant_and_feed(impl):
    m = impl.LatencyModel(LatencyConfig(LatencyKind.CONSTANT, 1_000, 2_000))
    assert [m.entry(5), m.response(5), m.entry(-5)] == [1_000, 2_000, 1_000]
    m.configure(LatencyConfig(LatencyKind.FEED, 1_000, 2_000, feed_multiplier=1.5))
    assert m.entry(10) == 1_015
    assert m.response(10) == 2_015
    assert m.entry(-300) == 1_000  # clocks disagree: no negative feed latency
    assert m.entry(3) == 1_004  # 4.5 rounds half to even
    assert m.entry(1) == 1_002  # 1.5 -> 2
    assert m.entry(2**63 - 1) == MAX_LATENCY_NS


@pytest.mark.parametrize("bad", [
    LatencyConfig(LatencyKind.CONSTANT, -1, 0),
    LatencyConfig(LatencyKind.CONSTANT, 0, -1),
    LatencyConfig(LatencyKind.LOGNORMAL, 1, 1, sigma=-0.1),
    LatencyConfig(LatencyKind.LOGNORMAL, 1, 1, sigma=math.nan),
    LatencyConfig(LatencyKind.FEED, 1, 1, feed_multiplier=math.inf),
    LatencyConfig(7, 1, 1),
    LatencyConfig(LatencyKind.CONSTANT, MAX_LATENCY_NS + 1, 0),
])
def test_bad_config_is_refused_and_changes_nothing(impl, bad):
    good = LatencyConfig(LatencyKind.CONSTANT, 5, 6)
    m = impl.LatencyModel(good)
    with pytest.raises(ValueError):
        m.configure(bad)
    assert m.config == good and m.entry(0) == 5


def test_raw_generator_is_splitmix64():
    # Reference values of splitmix64 seeded with 0 (Vigna's reference implementation).
    expected = [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    for impl in (compiled, reference):
        m = impl.LatencyModel(LatencyConfig(seed=0))
        assert [m.next_u64() for _ in range(3)] == expected


@pytest.mark.parametrize("seed", [0, 1, 42, 2**64 - 1])
def test_lognormal_compiled_and_reference_draw_identical_integers(seed):
    cfg = LatencyConfig(LatencyKind.LOGNORMAL, 250_000, 40_000, sigma=0.8, seed=seed)
    a, b = compiled.LatencyModel(cfg), reference.LatencyModel(cfg)
    calls = [(k % 3 == 0, k * 7919 % 10_000 - 100) for k in range(5_000)]  # entry/response mix
    xa = [a.response(f) if r else a.entry(f) for r, f in calls]
    xb = [b.response(f) if r else b.entry(f) for r, f in calls]
    assert xa == xb
    assert all(0 <= x <= MAX_LATENCY_NS for x in xa)


def test_lognormal_is_a_pure_function_of_seed_and_call_order(impl):
    cfg = LatencyConfig(LatencyKind.LOGNORMAL, 1_000_000, 1_000_000, sigma=0.5, seed=7)
    m1, m2 = impl.LatencyModel(cfg), impl.LatencyModel(cfg)
    first = [m1.entry(0) for _ in range(100)]
    assert first == [m2.entry(0) for _ in range(100)]
    m1.configure(cfg)  # reconfiguring restarts the sequence
    assert [m1.entry(0) for _ in range(100)] == first
    other = impl.LatencyModel(LatencyConfig(LatencyKind.LOGNORMAL, 1_000_000, 1_000_000,
                                            sigma=0.5, seed=8))
    assert [other.entry(0) for _ in range(100)] != first


def test_lognormal_distribution():
    median, sigma = 1_000_000, 0.5
    m = compiled.LatencyModel(LatencyConfig(LatencyKind.LOGNORMAL, median, median, sigma=sigma,
                                            seed=12345))
    xs = [m.entry(0) for _ in range(10_000)]
    # Median of 10k draws: within 3% (the standard error is about 0.6%).
    assert abs(statistics.median(xs) / median - 1) < 0.03
    logs = [math.log(x / median) for x in xs]
    assert abs(statistics.fmean(logs)) < 0.03
    assert abs(statistics.pstdev(logs) / sigma - 1) < 0.05
    assert min(xs) > 0
    zero = compiled.LatencyModel(LatencyConfig(LatencyKind.LOGNORMAL, median, 0, sigma=0.0))
    assert {zero.entry(0) for _ in range(10)} == {median} and zero.response(0) == 0
