"""Risk engine: every reason code is reached on the compiled engine and on the pure-Python
reference, and a property test drives both with the same random intents, views, timestamps and
control changes, demanding identical verdicts, counts and rate tokens."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lockstep.core import risk as compiled
from lockstep.core.risk import (
    ConfigError,
    Intent,
    IntentKind,
    OrderRules,
    RiskConfig,
    RiskLimits,
    RiskReason,
    RiskView,
    TimeInForce,
    TradingMode,
)
from lockstep.errors import LockstepError
from lockstep.events import Side
from lockstep.reference import risk as reference

BID, ASK = Side.BID, Side.ASK
LIMIT, MARKET, CANCEL, REPLACE = (IntentKind.SUBMIT_LIMIT, IntentKind.SUBMIT_MARKET,
                                  IntentKind.CANCEL, IntentKind.REPLACE)
INT64_MAX = 2**63 - 1
NS = 1_000_000_000
R = RiskReason


@pytest.fixture(params=[compiled, reference], ids=["compiled", "reference"])
def impl(request):
    return request.param


def engine(impl, custom_rules=(), **cfg):
    limits = cfg.pop("limits", {})
    rules = cfg.pop("rules", None)
    e = impl.RiskEngine(RiskConfig(instruments={0: RiskLimits(**limits), 1: RiskLimits()}, **cfg),
                        custom_rules)
    if rules is not None:
        e.set_order_rules(0, OrderRules(**rules))
    return e


def buy(qty=1, price=100, kind=LIMIT, **kw):
    return Intent(0, kind, BID, price=price, qty=qty, **kw)


def sell(qty=1, price=100, kind=LIMIT, **kw):
    return Intent(0, kind, ASK, price=price, qty=qty, **kw)


MID = RiskView(mid=100)

# (config, intent, view, expected): one or more rows per reason; config keys go to engine().
CASES = [
    ({}, buy(), MID, R.ALLOWED),
    ({}, Intent(0, 0, BID, price=100, qty=1), MID, R.UNKNOWN_INTENT_KIND),
    ({}, Intent(0, 9, BID, price=100, qty=1), MID, R.UNKNOWN_INTENT_KIND),
    ({}, Intent(7, LIMIT, BID, price=100, qty=1), MID, R.UNKNOWN_INSTRUMENT),
    ({}, Intent(7, CANCEL, target_order_id=5), MID, R.UNKNOWN_INSTRUMENT),
    ({"kill_switch": True}, buy(), MID, R.KILL_SWITCH),
    ({"kill_switch": True, "mode": TradingMode.HALTED}, buy(), MID, R.KILL_SWITCH),
    ({"mode": TradingMode.HALTED}, buy(), MID, R.HALTED),
    ({"mode": TradingMode.HALTED}, Intent(0, REPLACE, BID, price=1, qty=1), MID, R.HALTED),
    ({}, Intent(0, LIMIT, Side.NONE, price=100, qty=1), MID, R.BAD_SIDE),
    ({}, Intent(0, REPLACE, 3, price=100, qty=1), MID, R.BAD_SIDE),
    ({}, Intent(0, LIMIT, BID, tif=3, price=100, qty=1), MID, R.BAD_TIME_IN_FORCE),
    ({}, buy(qty=0), MID, R.NON_POSITIVE_QTY),
    ({}, sell(qty=-5, kind=MARKET), MID, R.NON_POSITIVE_QTY),
    ({}, buy(price=0), MID, R.NON_POSITIVE_PRICE),
    ({}, Intent(0, REPLACE, ASK, price=-3, qty=1), MID, R.NON_POSITIVE_PRICE),
    ({}, buy(price=0, kind=MARKET), MID, R.ALLOWED),  # market orders carry no price
    ({"mode": TradingMode.REDUCE_ONLY}, buy(), MID, R.REDUCE_ONLY),  # flat: nothing reduces
    ({"mode": TradingMode.REDUCE_ONLY}, buy(), RiskView(position=5), R.REDUCE_ONLY),
    ({"mode": TradingMode.REDUCE_ONLY}, sell(6), RiskView(position=5), R.REDUCE_ONLY),  # flips
    ({"mode": TradingMode.REDUCE_ONLY}, sell(3), RiskView(position=5, open_sell_qty=3), R.REDUCE_ONLY),
    ({"mode": TradingMode.REDUCE_ONLY}, sell(5), RiskView(position=5), R.ALLOWED),
    ({"mode": TradingMode.REDUCE_ONLY}, buy(2, kind=MARKET), RiskView(position=-5, open_buy_qty=3), R.ALLOWED),
    ({"limits": {"max_order_qty": 10}}, buy(11), MID, R.MAX_ORDER_QTY),
    ({"limits": {"max_order_qty": 10}}, buy(10), MID, R.ALLOWED),
    ({"limits": {"price_band_bps": 100}}, buy(), RiskView(), R.NO_MID),
    ({"limits": {"price_band_bps": 100}}, buy(), RiskView(mid=0), R.NO_MID),
    ({"limits": {"price_band_bps": 100}}, buy(kind=MARKET), RiskView(mid=-1), R.NO_MID),
    ({"limits": {"max_order_notional": 1000}}, buy(kind=MARKET), RiskView(), R.NO_MID),
    ({"limits": {"max_order_notional": 1000}}, buy(qty=10, price=100), RiskView(), R.ALLOWED),
    ({"limits": {"max_order_notional": 1000}}, buy(qty=11, price=100), RiskView(), R.MAX_ORDER_NOTIONAL),
    ({"limits": {"max_order_notional": 1000}}, buy(qty=11, kind=MARKET), RiskView(mid=100), R.MAX_ORDER_NOTIONAL),
    # price x qty far beyond int64: must not wrap into an allowed small or negative number
    ({"limits": {"max_order_notional": INT64_MAX}}, buy(qty=2**62, price=2**62), MID, R.MAX_ORDER_NOTIONAL),
    ({"limits": {"price_band_bps": 100}}, buy(price=102), MID, R.PRICE_BAND),
    ({"limits": {"price_band_bps": 100}}, sell(price=99), MID, R.ALLOWED),  # exactly on the band
    ({"limits": {"price_band_bps": 100}}, sell(price=98), MID, R.PRICE_BAND),
    ({"limits": {"price_band_bps": 100}}, sell(price=INT64_MAX), RiskView(mid=INT64_MAX - 1), R.ALLOWED),
    ({"limits": {"price_band_bps": 100}}, buy(2**40, kind=MARKET), MID, R.ALLOWED),  # no price to band
    ({"limits": {"max_position": 10}}, buy(11), MID, R.MAX_POSITION),
    ({"limits": {"max_position": 10}}, buy(4), RiskView(position=3, open_buy_qty=4), R.MAX_POSITION),
    ({"limits": {"max_position": 10}}, sell(4), RiskView(position=-3, open_sell_qty=4), R.MAX_POSITION),
    ({"limits": {"max_position": 10}}, sell(4), RiskView(position=20), R.ALLOWED),  # toward flat
    ({"limits": {"max_position": 10}}, buy(INT64_MAX), RiskView(position=INT64_MAX, open_buy_qty=INT64_MAX), R.MAX_POSITION),
    ({"limits": {"max_open_orders": 2}}, buy(), RiskView(open_orders=2), R.MAX_OPEN_ORDERS),
    ({"limits": {"max_open_orders": 2}}, Intent(0, REPLACE, BID, price=100, qty=1), RiskView(open_orders=2), R.ALLOWED),
    ({"max_open_orders_total": 3}, buy(), RiskView(open_orders_total=3), R.MAX_OPEN_ORDERS_TOTAL),
    ({"max_open_orders_total": 3}, buy(), RiskView(open_orders_total=2), R.ALLOWED),
    # the venue's order-entry rules, in data units
    ({"rules": {"price_tick": 5}}, buy(price=102), MID, R.OFF_TICK),
    ({"rules": {"price_tick": 5}}, Intent(0, REPLACE, ASK, price=101, qty=1), MID, R.OFF_TICK),
    ({"rules": {"price_tick": 5}}, buy(price=105), MID, R.ALLOWED),
    ({"rules": {"price_tick": 5}}, buy(price=0, kind=MARKET), MID, R.ALLOWED),  # no price to tick
    ({"rules": {"qty_lot": 10}}, buy(15), MID, R.OFF_LOT),
    ({"rules": {"qty_lot": 10}}, sell(20, kind=MARKET), MID, R.ALLOWED),
    ({"rules": {"min_qty": 3}}, buy(2), MID, R.BELOW_MIN_QTY),
    ({"rules": {"min_qty": 3}}, buy(3), MID, R.ALLOWED),
    ({"rules": {"min_notional": 500}}, buy(4, price=100), MID, R.BELOW_MIN_NOTIONAL),
    ({"rules": {"min_notional": 500}}, buy(5, price=100), MID, R.ALLOWED),
    ({"rules": {"min_notional": 500}}, buy(4, kind=MARKET), MID, R.BELOW_MIN_NOTIONAL),  # at the mid
    ({"rules": {"min_notional": 500}}, buy(5, kind=MARKET), RiskView(), R.NO_MID),
    # checked in the order tick, lot, minimum quantity, minimum notional; after the order's own checks
    ({"rules": {"price_tick": 5, "qty_lot": 10, "min_qty": 20, "min_notional": 10**6}}, buy(15, price=101), MID, R.OFF_TICK),
    ({"rules": {"qty_lot": 10, "min_qty": 20, "min_notional": 10**6}}, buy(15), MID, R.OFF_LOT),
    ({"rules": {"qty_lot": 10, "min_qty": 20, "min_notional": 10**6}}, buy(10), MID, R.BELOW_MIN_QTY),
    ({"rules": {"price_tick": 5}}, buy(price=0), MID, R.NON_POSITIVE_PRICE),
    ({"rules": {"min_qty": 3}, "limits": {"max_order_qty": 1}}, buy(2), MID, R.BELOW_MIN_QTY),
    ({"rules": {"price_tick": 5}}, Intent(0, CANCEL, target_order_id=1), RiskView(), R.ALLOWED),
    # control states never block cancels
    ({"kill_switch": True}, Intent(0, CANCEL, target_order_id=1), RiskView(), R.ALLOWED),
    ({"mode": TradingMode.HALTED}, Intent(0, CANCEL, target_order_id=1), RiskView(), R.ALLOWED),
    ({"mode": TradingMode.REDUCE_ONLY}, Intent(0, CANCEL, target_order_id=1), RiskView(), R.ALLOWED),
]


@pytest.mark.parametrize("cfg,intent,view,expected", CASES)
def test_reason(impl, cfg, intent, view, expected):
    e = engine(impl, **dict(cfg))
    assert e.check(intent, view, 0) is expected
    if expected is not R.ALLOWED:
        assert e.denials()[expected.name.lower()] == 1
        assert e.allowed() == 0


def test_every_reason_reached():
    reached = {c[3] for c in CASES} | {R.RATE_LIMIT, R.CUSTOM}  # the last two: tests below
    # Decided by the engine, which has the State they need: tests/test_engine.py reaches them.
    engine_reasons = {R.UNKNOWN_ORDER, R.DUPLICATE_ORDER_ID, R.QUEUE_FULL, R.ORDER_ENTRY_DOWN}
    assert reached | engine_reasons == set(RiskReason)


def test_first_failing_check_is_the_reason(impl):
    e = engine(impl, limits={"max_order_qty": 1, "max_position": 1, "price_band_bps": 1})
    assert e.check(buy(5, price=500), RiskView(), 0) is R.MAX_ORDER_QTY
    assert e.check(buy(1, price=500), RiskView(), 0) is R.NO_MID
    assert e.check(buy(1, price=500), RiskView(mid=100), 0) is R.PRICE_BAND
    assert e.check(buy(1, price=100), RiskView(mid=100, position=1), 0) is R.MAX_POSITION


def test_rate_limit_token_bucket(impl):
    e = engine(impl, rate_per_second=2, burst=3)
    t0 = 10 * NS
    assert [e.check(buy(), MID, t0) for _ in range(4)] == [R.ALLOWED] * 3 + [R.RATE_LIMIT]
    assert e.tokens(t0) == 0
    assert e.check(buy(), MID, t0 + NS // 2 - 1) is R.RATE_LIMIT  # refill is exact, not rounded up
    assert e.check(buy(), MID, t0 + NS // 2) is R.ALLOWED
    # denials and cancels spend nothing
    assert e.check(buy(0), MID, t0 + NS) is R.NON_POSITIVE_QTY
    assert e.check(Intent(0, CANCEL, target_order_id=1), MID, t0 + NS) is R.ALLOWED
    assert e.tokens(t0 + NS) == 1
    # a long idle refills to burst, never beyond
    assert e.tokens(t0 + 1000 * NS) == 3
    # time going backwards refills nothing and does not move the bucket's clock back
    assert [e.check(buy(), MID, t0 + 100 * NS) for _ in range(3)] == [R.ALLOWED] * 3
    assert e.check(buy(), MID, t0) is R.RATE_LIMIT
    assert e.check(buy(), MID, t0 + 100 * NS + NS // 2) is R.ALLOWED
    assert e.denials()["rate_limit"] == 3


def test_replace_spends_a_token(impl):
    e = engine(impl, rate_per_second=1, burst=1)
    assert e.check(Intent(0, REPLACE, BID, price=5, qty=1, target_order_id=1), MID, 0) is R.ALLOWED
    assert e.check(Intent(0, REPLACE, BID, price=5, qty=1, target_order_id=1), MID, 1) is R.RATE_LIMIT


def test_no_rate_limit_means_no_tokens(impl):
    e = engine(impl)
    assert all(e.check(buy(), MID, 0) is R.ALLOWED for _ in range(100))
    assert e.tokens(0) == 0


def test_mode_and_kill_switch_change_between_checks(impl):
    e = engine(impl)
    e.set_kill_switch(True)
    assert e.kill_switch and e.check(buy(), MID, 0) is R.KILL_SWITCH
    e.set_kill_switch(False)
    e.set_mode(TradingMode.REDUCE_ONLY)
    assert e.mode is TradingMode.REDUCE_ONLY
    assert e.check(buy(), RiskView(position=-1), 0) is R.ALLOWED
    assert e.check(buy(), RiskView(position=1), 0) is R.REDUCE_ONLY
    e.set_mode(2)
    assert e.mode is TradingMode.HALTED and e.check(buy(), MID, 0) is R.HALTED
    with pytest.raises(ValueError):
        e.set_mode(7)


def test_counts_per_instrument_and_total(impl):
    e = engine(impl, limits={"max_order_qty": 1})
    e.check(buy(2), MID, 0)
    e.check(Intent(1, LIMIT, BID, price=1, qty=0), MID, 0)
    e.check(Intent(9, LIMIT, BID, price=1, qty=1), MID, 0)
    e.check(buy(1), MID, 0)
    total, one, zero = e.denials(), e.denials(1), e.denials(0)
    assert total["max_order_qty"] == 1 and total["non_positive_qty"] == 1
    assert total["unknown_instrument"] == 1 and sum(total.values()) == 3
    assert zero["max_order_qty"] == 1 and sum(zero.values()) == 1
    assert one["non_positive_qty"] == 1 and sum(one.values()) == 1
    assert e.allowed() == 1 and e.allowed(0) == 1 and e.allowed(1) == 0
    assert set(total) == {r.name.lower() for r in RiskReason if r is not R.ALLOWED}
    with pytest.raises(KeyError):
        e.denials(9)  # unknown instruments only appear in the totals
    e.reset_counts()
    assert sum(e.denials().values()) == 0 and e.allowed() == 0


def test_custom_rules(impl):
    def no_odd_qty(intent, view):
        return RiskReason.CUSTOM if intent.qty % 2 else None

    class Cap:
        name = "cap_price"

        def __call__(self, intent, view):
            return RiskReason.PRICE_BAND if intent.price > 1000 else RiskReason.ALLOWED

    calls = []

    def spy(intent, view):
        calls.append(intent.kind)

    e = engine(impl, [no_odd_qty, Cap(), spy], rate_per_second=1, burst=1)
    assert e.check(buy(3), MID, 0) is R.CUSTOM
    assert e.check(buy(2, price=5000), MID, 0) is R.CUSTOM
    assert e.check(buy(0), MID, 0) is R.NON_POSITIVE_QTY  # built-ins first, rules not run
    assert e.check(Intent(0, CANCEL, target_order_id=1), MID, 0) is R.ALLOWED  # never for cancels
    assert calls == []
    assert e.check(buy(2), MID, 0) is R.ALLOWED  # custom denials spent no token
    assert calls == [LIMIT]
    assert e.check(buy(2), MID, 0) is R.RATE_LIMIT
    d = e.denials()
    assert d["custom"] == 2 and d["custom:no_odd_qty"] == 1 and d["custom:cap_price"] == 1
    assert d["custom:spy"] == 0 and e.denials(0)["custom:no_odd_qty"] == 1
    assert e.denials(1)["custom:no_odd_qty"] == 0


def test_custom_rule_names_unique(impl):
    def r(intent, view):
        return None

    with pytest.raises(ConfigError) as err:
        engine(impl, [r, r])
    assert err.value.key == "custom_rules.1"
    with pytest.raises(ConfigError):
        engine(impl, [42])


def test_intent_and_view_fields_are_range_checked():
    with pytest.raises(OverflowError):
        Intent(0, LIMIT, BID, price=2**63, qty=1)
    with pytest.raises(OverflowError):
        Intent(-1, LIMIT, BID)
    with pytest.raises(TypeError):
        Intent(0, LIMIT, BID, price=1.5, qty=1)
    with pytest.raises(OverflowError):
        RiskView(open_orders=-1)
    with pytest.raises(TypeError):
        RiskView(mid=100.0)


# --------------------------------------------------------------------------------------------
# Configuration


def test_config_from_dict():
    cfg = RiskConfig.from_dict({
        "max_open_orders_total": 50, "rate_per_second": 20, "burst": 5, "mode": "reduce_only",
        "kill_switch": False,
        "instruments": {"0": {"max_order_qty": 10, "price_band_bps": 25}, 3: {}},
    })
    assert cfg.mode is TradingMode.REDUCE_ONLY and cfg.burst == 5
    assert dict(cfg.instruments) == {0: RiskLimits(max_order_qty=10, price_band_bps=25), 3: RiskLimits()}
    assert RiskConfig.from_dict({}) == RiskConfig()
    assert RiskConfig.from_dict({"mode": 2}).mode is TradingMode.HALTED


@pytest.mark.parametrize("data,key", [
    ({"max_orders": 1}, "max_orders"),
    ({"burst": "5"}, "burst"),
    ({"burst": 1.0}, "burst"),
    ({"burst": True}, "burst"),
    ({"burst": -1}, "burst"),
    ({"burst": 2**32}, "burst"),
    ({"rate_per_second": 10}, "burst"),
    ({"rate_per_second": 10, "burst": 0}, "burst"),
    ({"mode": "paused"}, "mode"),
    ({"mode": 9}, "mode"),
    ({"mode": 1.0}, "mode"),
    ({"kill_switch": 1}, "kill_switch"),
    ({"instruments": [1, 2]}, "instruments"),
    ({"instruments": {"abc": {}}}, "instruments.abc"),
    ({"instruments": {-1: {}}}, "instruments.-1"),
    ({"instruments": {2**20: {}}}, f"instruments.{2**20}"),
    ({"instruments": {"0": 5}}, "instruments.0"),
    ({"instruments": {"0": {"max_qty": 1}}}, "instruments.0.max_qty"),
    ({"instruments": {"4": {"max_order_qty": "10"}}}, "instruments.4.max_order_qty"),
    ({"instruments": {"4": {"max_position": -1}}}, "instruments.4.max_position"),
    ({"instruments": {"4": {"price_band_bps": 2**32}}}, "instruments.4.price_band_bps"),
    ({"instruments": {"4": {"max_order_notional": 2**63}}}, "instruments.4.max_order_notional"),
])
def test_config_errors_name_the_key(data, key):
    with pytest.raises(ConfigError) as err:
        RiskConfig.from_dict(data)
    assert err.value.key == key
    assert key in str(err.value)
    assert isinstance(err.value, LockstepError)


def test_config_constructed_directly_is_validated():
    with pytest.raises(ConfigError) as err:
        RiskLimits(max_open_orders=-1)
    assert err.value.key == "max_open_orders"
    with pytest.raises(ConfigError) as err:
        RiskConfig(instruments={0: {"max_order_qty": 1}})
    assert err.value.key == "instruments.0"


# --------------------------------------------------------------------------------------------
# Compiled and reference agree on random sequences

def mostly(common, rare):
    """`common` about four times in five."""
    return st.one_of(common, common, common, common, rare)


INT64 = st.integers(-(2**63), 2**63 - 1)
limit_values = st.one_of(st.just(0), st.integers(1, 30))
rules_st = st.builds(
    OrderRules,
    price_tick=st.sampled_from([0, 0, 1, 2, 5]),
    qty_lot=st.sampled_from([0, 0, 1, 3]),
    min_qty=st.sampled_from([0, 0, 2, 6]),
    min_notional=st.sampled_from([0, 0, 150, 900]),
)
limits_st = st.builds(
    RiskLimits,
    max_order_qty=limit_values,
    max_order_notional=st.one_of(st.just(0), st.integers(1, 3000)),
    max_position=limit_values,
    max_open_orders=st.integers(0, 4),
    price_band_bps=st.sampled_from([0, 0, 1, 50, 500, 20000]),
)
config_st = st.builds(
    RiskConfig,
    max_open_orders_total=st.integers(0, 6),
    rate_per_second=st.sampled_from([0, 1, 3, 1000]),
    burst=st.integers(1, 4),
    mode=st.sampled_from([TradingMode.ACTIVE] * 4 + list(TradingMode)),
    kill_switch=st.sampled_from([False] * 5 + [True]),
    instruments=st.dictionaries(st.integers(0, 3), limits_st, min_size=1, max_size=4),
)
intent_st = st.builds(
    Intent,
    instrument=st.sampled_from([0, 0, 0, 1, 2, 3, 5]),
    kind=mostly(st.sampled_from(list(IntentKind)), st.integers(0, 255)),
    side=mostly(st.sampled_from([BID, ASK]), st.integers(0, 3)),
    tif=mostly(st.sampled_from(list(TimeInForce)), st.integers(0, 4)),
    price=mostly(st.integers(80, 120), st.one_of(st.integers(-2, 2), INT64)),
    qty=mostly(st.integers(1, 15), st.one_of(st.integers(-2, 0), INT64)),
    target_order_id=st.integers(0, 10),
)
view_st = st.builds(
    RiskView,
    position=mostly(st.integers(-20, 20), INT64),
    open_orders=st.integers(0, 5),
    open_buy_qty=st.integers(0, 20),
    open_sell_qty=st.integers(0, 20),
    mid=mostly(st.integers(95, 105), st.one_of(st.none(), st.integers(-1, 1), INT64)),
    open_orders_total=st.integers(0, 7),
)
step_st = mostly(
    # mostly forward in time, sometimes backward: the bucket must agree on both
    st.tuples(st.just("check"), intent_st, view_st,
              mostly(st.integers(0, NS // 2), st.integers(-NS, 3 * NS))),
    st.one_of(st.tuples(st.just("mode"), st.sampled_from(list(TradingMode))),
              st.tuples(st.just("kill"), st.booleans())),
)


def _odd_price(intent, view):
    return RiskReason.CUSTOM if intent.price % 7 == 3 else None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=config_st, steps=st.lists(step_st, max_size=60), rules=st.booleans(),
       t0=st.integers(-(2**62), 2**62),
       order_rules=st.dictionaries(st.integers(0, 5), rules_st, max_size=3))
def test_compiled_and_reference_agree(config, steps, rules, t0, order_rules):
    custom = [_odd_price] if rules else []
    a = compiled.RiskEngine(config, custom)
    b = reference.RiskEngine(config, custom)
    for i, r in order_rules.items():
        a.set_order_rules(i, r)
        b.set_order_rules(i, r)
    ts = t0
    for step in steps:
        if step[0] == "mode":
            a.set_mode(step[1])
            b.set_mode(step[1])
        elif step[0] == "kill":
            a.set_kill_switch(step[1])
            b.set_kill_switch(step[1])
        else:
            _, intent, view, dt = step
            ts += dt
            ra, rb = a.check(intent, view, ts), b.check(intent, view, ts)
            assert ra is rb, (intent, view, ts)
            assert a.tokens(ts) == b.tokens(ts)
    assert a.denials() == b.denials()
    assert a.allowed() == b.allowed()
    for i in config.instruments:
        assert a.denials(i) == b.denials(i) and a.allowed(i) == b.allowed(i)
    assert a.mode is b.mode and a.kill_switch == b.kill_switch


def _random_config(rng):
    def lim(hi):
        return 0 if rng.random() < 0.4 else rng.randint(1, hi)

    instruments = {
        i: RiskLimits(max_order_qty=lim(12), max_order_notional=lim(1500), max_position=lim(25),
                      max_open_orders=lim(4), price_band_bps=rng.choice([0, 0, 50, 300, 1000]))
        for i in range(4) if rng.random() < 0.85
    }
    return RiskConfig(max_open_orders_total=lim(6), rate_per_second=rng.choice([0, 1, 5, 50]),
                      burst=rng.randint(1, 5), instruments=instruments)


def _random_order_rules(rng, *engines):
    for i in range(4):
        if rng.random() < 0.5:
            rules = OrderRules(price_tick=rng.choice([0, 2, 5]), qty_lot=rng.choice([0, 2, 3]),
                               min_qty=rng.choice([0, 2, 4]), min_notional=rng.choice([0, 200, 600]))
            for e in engines:
                e.set_order_rules(i, rules)


def _random_step(rng):
    u = rng.random()
    if u < 0.03:
        return ("mode", rng.choice([0, 0, 1, 2]))
    if u < 0.05:
        return ("kill", rng.random() < 0.3)
    wild = rng.random() < 0.1
    int64 = lambda: rng.randint(-(2**63), 2**63 - 1)
    intent = Intent(
        instrument=rng.choice([0, 0, 1, 2, 3, 7]),
        kind=rng.randint(0, 255) if wild and rng.random() < 0.3 else rng.choice([1, 1, 1, 2, 3, 4, 4]),
        side=rng.randint(0, 3) if wild and rng.random() < 0.3 else rng.choice([1, 2]),
        tif=rng.randint(0, 4) if wild and rng.random() < 0.3 else rng.randint(0, 2),
        price=int64() if wild and rng.random() < 0.5 else rng.randint(-1, 130),
        qty=int64() if wild and rng.random() < 0.5 else rng.randint(0, 15),
        target_order_id=rng.randint(0, 5),
    )
    view = RiskView(
        position=int64() if wild and rng.random() < 0.3 else rng.randint(-25, 25),
        open_orders=rng.randint(0, 5), open_buy_qty=rng.randint(0, 15),
        open_sell_qty=rng.randint(0, 15),
        mid=rng.choice([None, 0, int64() if wild else 100]) if rng.random() < 0.1 else rng.randint(90, 110),
        open_orders_total=rng.randint(0, 7),
    )
    dt = rng.randint(-NS, 3 * NS) if rng.random() < 0.05 else rng.randint(0, NS // 3)
    return ("check", intent, view, dt)


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 300), rules=st.booleans())
def test_compiled_and_reference_agree_weighted(seed, n, rules):
    """Same comparison with hand-weighted draws, so every check (not only the early ones) fails
    often enough to be compared."""
    import random

    rng = random.Random(seed)
    config = _random_config(rng)
    custom = [_odd_price] if rules else []
    a = compiled.RiskEngine(config, custom)
    b = reference.RiskEngine(config, custom)
    _random_order_rules(rng, a, b)
    ts = rng.randint(0, 2**40)
    for _ in range(n):
        step = _random_step(rng)
        if step[0] == "mode":
            a.set_mode(step[1])
            b.set_mode(step[1])
        elif step[0] == "kill":
            a.set_kill_switch(step[1])
            b.set_kill_switch(step[1])
        else:
            _, intent, view, dt = step
            ts += dt
            ra, rb = a.check(intent, view, ts), b.check(intent, view, ts)
            assert ra is rb, (intent, view, ts)
            assert a.tokens(ts) == b.tokens(ts)
    assert a.denials() == b.denials() and a.allowed() == b.allowed()
    for i in config.instruments:
        assert a.denials(i) == b.denials(i) and a.allowed(i) == b.allowed(i)


def test_weighted_draws_reach_every_reason():
    """Guards the usefulness of the property test above: its draws reach every reason."""
    import random

    seen = set()
    for seed in range(20):
        rng = random.Random(seed)
        e = compiled.RiskEngine(_random_config(rng), [_odd_price])
        _random_order_rules(rng, e)
        ts = 0
        for _ in range(300):
            step = _random_step(rng)
            if step[0] == "mode":
                e.set_mode(step[1])
            elif step[0] == "kill":
                e.set_kill_switch(step[1])
            else:
                ts += step[3]
                seen.add(e.check(step[1], step[2], ts))
    # need State (test_engine.py) or a live core (test_live_faults.py)
    engine_reasons = {R.UNKNOWN_ORDER, R.DUPLICATE_ORDER_ID, R.QUEUE_FULL, R.ORDER_ENTRY_DOWN}
    assert seen == set(RiskReason) - engine_reasons


def test_config_pickles():
    import pickle

    cfg = RiskConfig.from_dict({"rate_per_second": 3, "burst": 2, "mode": "halted",
                                "instruments": {"1": {"max_position": 9}}})
    again = pickle.loads(pickle.dumps(cfg))
    assert again == cfg and again.instruments[1].max_position == 9
    err = pickle.loads(pickle.dumps(ConfigError("instruments.1.x", "unknown key")))
    assert err.key == "instruments.1.x" and str(err) == "risk config: instruments.1.x: unknown key"
