"""Intent queue: every rule (rate limit over time, in-flight cap, cancels first, cancel of pending
work, capacity) on the compiled queue and on the pure-Python reference, and a property test that
drives both with the same random pushes, dispatches and responses, demanding identical output."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lockstep.core import queue as compiled
from lockstep.core.queue import COUNTER_NAMES, QueueConfig, QueueResult
from lockstep.core.risk import ConfigError, Intent, IntentKind
from lockstep.events import Side
from lockstep.reference import queue as reference

LIMIT, MARKET, CANCEL, REPLACE = (IntentKind.SUBMIT_LIMIT, IntentKind.SUBMIT_MARKET,
                                  IntentKind.CANCEL, IntentKind.REPLACE)
NS = 1_000_000_000
Q = QueueResult


@pytest.fixture(params=[compiled, reference], ids=["compiled", "reference"])
def impl(request):
    return request.param


def make(impl, **cfg):
    cfg.setdefault("instruments", 2)
    return impl.IntentQueue(QueueConfig(**cfg))


def submit(coid, instrument=0, kind=LIMIT):
    return Intent(instrument, kind, Side.BID, price=100, qty=1, client_order_id=coid)


def cancel(target, instrument=0, coid=0):
    return Intent(instrument, CANCEL, client_order_id=coid, target_order_id=target)


def replace(target, instrument=0, price=101):
    return Intent(instrument, REPLACE, Side.BID, price=price, qty=1, target_order_id=target)


def ids(intents):
    return [(i.kind, i.client_order_id or i.target_order_id) for i in intents]


def test_no_limits_is_fifo(impl):
    q = make(impl)
    for k in range(5):
        assert q.push(submit(k + 1, instrument=k % 2), 0) is Q.QUEUED
    out = q.dispatch(0)
    assert [i.client_order_id for i in out] == [1, 2, 3, 4, 5]
    assert q.pending() == 0
    assert (q.in_flight(0), q.in_flight(1)) == (3, 2)
    assert q.tokens(0) == 0  # no rate limit
    assert out[0] == submit(1)  # every field survives the round trip


def test_rate_limit_over_time(impl):
    q = make(impl, rate_per_second=2, burst=3)
    for k in range(10):
        q.push(submit(k + 1), 0)
    assert len(q.dispatch(0)) == 3  # the burst
    assert q.counters()["deferred_by_rate"] == 7
    assert q.dispatch(NS // 2 - 1) == []  # not yet one whole token
    assert q.tokens(NS // 2) == 1
    assert [i.client_order_id for i in q.dispatch(NS // 2)] == [4]
    assert len(q.dispatch(NS // 2 + NS)) == 2  # 2 tokens refilled over 1 s
    # The bucket saturates at burst however long it idles.
    assert q.tokens(10**6 * NS) == 3
    assert len(q.dispatch(10**6 * NS)) == 3
    assert [i.client_order_id for i in q.dispatch(10**6 * NS + NS // 2)] == [10]
    assert q.pending() == 0
    c = q.counters()
    assert c["dispatched"] == 10 and c["pushed"] == 10


def test_rate_limit_time_backwards_does_not_refill(impl):
    q = make(impl, rate_per_second=1, burst=1)
    for k in range(3):
        q.push(submit(k + 1), 0)
    assert len(q.dispatch(5 * NS)) == 1
    assert q.dispatch(NS) == []  # earlier ts: no refill, no debt
    assert len(q.dispatch(6 * NS)) == 1


def test_withdraw_takes_what_waits_but_cancels(impl):
    q = make(impl, rate_per_second=1, burst=1)
    q.push(submit(1), 0)
    assert ids(q.dispatch(0)) == [(LIMIT, 1)]  # the burst
    for intent in (submit(2), replace(5), cancel(1), submit(3, instrument=1)):
        q.push(intent, 0)
    assert ids(q.withdraw()) == [(LIMIT, 2), (REPLACE, 5), (LIMIT, 3)]  # oldest first
    assert q.pending() == 1 and ids(q.dispatch(NS)) == [(CANCEL, 1)]
    assert q.withdraw() == [] and q.in_flight(0) == 2  # nothing withdrawn was ever in flight


def test_withdraw_with_take_takes_what_it_says_and_keeps_the_rest_in_place(impl):
    q = make(impl, rate_per_second=1, burst=1)
    q.push(submit(1), 0)
    q.dispatch(0)
    for intent in (submit(2), replace(5), cancel(1), submit(3, instrument=1), submit(4)):
        q.push(intent, 0)
    asked = []

    def take(intent):
        asked.append(intent.client_order_id or intent.target_order_id)
        return intent.instrument == 0 and intent.kind == LIMIT

    assert ids(q.withdraw(take)) == [(LIMIT, 2), (LIMIT, 4)]
    assert asked == [2, 5, 3, 4]  # each pending submit and replace, oldest first; no cancel
    # the rest leave as before, one a second: the cancel first, then in arrival order
    assert [ids(q.dispatch(k * NS)) for k in (1, 2, 3)] == [
        [(CANCEL, 1)], [(REPLACE, 5)], [(LIMIT, 3)]]


def test_withdraw_with_take_that_raises_leaves_the_queue_as_it_was(impl):
    q = make(impl, rate_per_second=1, burst=1)
    q.push(submit(1), 0)
    q.dispatch(0)
    for k in (2, 3, 4):
        q.push(submit(k), 0)

    def take(intent):
        if intent.client_order_id == 4:
            raise RuntimeError("no")
        return True

    with pytest.raises(RuntimeError, match="no"):
        q.withdraw(take)
    assert q.pending() == 3 and ids(q.withdraw()) == [(LIMIT, 2), (LIMIT, 3), (LIMIT, 4)]


def test_rate_limit_counts_cancels(impl):
    q = make(impl, rate_per_second=1, burst=1)
    q.push(cancel(99), 0)
    q.push(submit(1), 0)
    assert ids(q.dispatch(0)) == [(CANCEL, 99)]
    assert ids(q.dispatch(NS)) == [(LIMIT, 1)]


def test_in_flight_cap_and_release(impl):
    q = make(impl, max_in_flight_per_instrument=2)
    for k in range(4):
        q.push(submit(k + 1, instrument=0), 0)
    q.push(submit(10, instrument=1), 0)
    # Instrument 0 at its cap does not block instrument 1 behind it.
    assert [i.client_order_id for i in q.dispatch(0)] == [1, 2, 10]
    assert q.in_flight(0) == 2 and q.in_flight(1) == 1
    assert q.counters()["deferred_by_in_flight"] == 2
    assert q.dispatch(1) == []
    q.on_response(0)
    assert [i.client_order_id for i in q.dispatch(2)] == [3]
    q.on_response(0)
    q.on_response(0)
    assert [i.client_order_id for i in q.dispatch(3)] == [4]
    assert q.in_flight(0) == 1
    # Responses with nothing in flight open no slot.
    q.on_response(1)
    q.on_response(1)
    q.on_response(7)  # unknown instrument: ignored
    assert q.in_flight(1) == 0 and q.in_flight(7) == 0


def test_cancels_go_before_new_orders(impl):
    q = make(impl)
    q.push(submit(1), 0)
    q.push(replace(50), 0)
    q.push(cancel(51), 0)
    q.push(submit(2), 0)
    q.push(cancel(52), 0)
    # Cancels first (in arrival order), then submits and replaces in arrival order.
    assert ids(q.dispatch(0)) == [(CANCEL, 51), (CANCEL, 52), (LIMIT, 1), (REPLACE, 50),
                                  (LIMIT, 2)]


def test_cancels_first_under_rate_limit(impl):
    q = make(impl, rate_per_second=1, burst=1)
    q.push(submit(1), 0)
    q.push(submit(2), 0)
    q.push(cancel(77), 0)
    assert ids(q.dispatch(0)) == [(CANCEL, 77)]
    assert ids(q.dispatch(NS)) == [(LIMIT, 1)]


def test_max_out(impl):
    q = make(impl)
    for k in range(5):
        q.push(submit(k + 1), 0)
    q.push(cancel(9), 0)
    assert ids(q.dispatch(0, max_out=2)) == [(CANCEL, 9), (LIMIT, 1)]
    assert q.dispatch(0, max_out=0) == []
    assert [i.client_order_id for i in q.dispatch(0, max_out=2**62)] == [2, 3, 4, 5]
    with pytest.raises(ValueError):
        q.dispatch(0, max_out=-1)


def test_cancel_of_pending_submit_removes_both(impl):
    q = make(impl, rate_per_second=1, burst=1)
    q.push(submit(1), 0)
    q.push(submit(2), 0)
    q.push(replace(2, price=105), 0)
    assert q.push(cancel(2), 0) is Q.CANCELED_BEFORE_DISPATCH
    assert q.pending() == 1  # submit 2 and its replace are gone; the cancel never queued
    assert [i.client_order_id for i in q.dispatch(0)] == [1]
    assert q.dispatch(10 * NS) == []
    c = q.counters()
    assert c["canceled_before_dispatch"] == 1
    assert c["replaces_dropped"] == 1
    assert c["pushed"] == 3 and c["dispatched"] == 1


def test_cancel_of_dispatched_order_is_sent_and_drops_pending_replace(impl):
    q = make(impl)
    q.push(submit(1), 0)
    assert len(q.dispatch(0)) == 1
    q.push(replace(1), 0)
    q.push(submit(2), 0)
    assert q.push(cancel(1), 0) is Q.QUEUED
    assert ids(q.dispatch(1)) == [(CANCEL, 1), (LIMIT, 2)]
    assert q.counters()["replaces_dropped"] == 1


def test_cancel_matches_instrument_and_submits_only(impl):
    q = make(impl)
    q.push(submit(1, instrument=1), 0)
    q.push(replace(5), 0)  # a pending replace is not a submit to cancel
    assert q.push(cancel(1, instrument=0), 0) is Q.QUEUED
    assert q.push(Intent(0, CANCEL, target_order_id=0), 0) is Q.QUEUED
    assert q.pending() == 4


def test_full_queue(impl):
    q = make(impl, capacity=3)
    for k in range(3):
        assert q.push(submit(k + 1), 0) is Q.QUEUED
    assert q.push(submit(4), 0) is Q.FULL
    assert q.push(cancel(99), 0) is Q.FULL
    # Cancelling pending work needs no room.
    assert q.push(cancel(2), 0) is Q.CANCELED_BEFORE_DISPATCH
    assert q.push(submit(5), 0) is Q.QUEUED
    assert q.counters()["rejected_full"] == 2
    assert [i.client_order_id for i in q.dispatch(0)] == [1, 3, 5]
    # Dispatched slots are reusable.
    for k in range(3):
        assert q.push(submit(10 + k), 0) is Q.QUEUED
    assert q.pending() == 3


def test_bad_instrument(impl):
    q = make(impl, instruments=2)
    assert q.push(submit(1, instrument=2), 0) is Q.BAD_INSTRUMENT
    assert q.push(cancel(1, instrument=5), 0) is Q.BAD_INSTRUMENT
    assert q.counters()["rejected_bad_instrument"] == 2
    assert q.pending() == 0


def test_counter_names(impl):
    assert tuple(make(impl).counters()) == COUNTER_NAMES


def test_bad_arguments(impl):
    q = make(impl)
    with pytest.raises(TypeError):
        q.push((0, 1), 0)
    with pytest.raises(TypeError):
        q.push(submit(1), 1.5)
    with pytest.raises(OverflowError):
        q.dispatch(2**63)
    with pytest.raises(TypeError):
        q.on_response(True)
    with pytest.raises(TypeError):
        impl.IntentQueue({"capacity": 4})


def test_config_from_dict():
    c = QueueConfig.from_dict({"rate_per_second": 10, "burst": 5,
                               "max_in_flight_per_instrument": 2, "capacity": 8,
                               "instruments": 3})
    assert c == QueueConfig(10, 5, 2, 8, 3)
    assert QueueConfig.from_dict({}) == QueueConfig()


@pytest.mark.parametrize("data, key", [
    ({"rate": 1}, "rate"),
    ({"burst": "5"}, "burst"),
    ({"burst": True}, "burst"),
    ({"capacity": 0}, "capacity"),
    ({"capacity": 1.0}, "capacity"),
    ({"rate_per_second": -1}, "rate_per_second"),
    ({"rate_per_second": 5}, "burst"),  # a rate needs a bucket
    ({"max_in_flight_per_instrument": 2**32}, "max_in_flight_per_instrument"),
    ({"instruments": None}, "instruments"),
    ([], "<root>"),
])
def test_config_errors_name_the_key(data, key):
    with pytest.raises(ConfigError) as e:
        QueueConfig.from_dict(data)
    assert e.value.key == key


def test_determinism(impl):
    def run():
        q = make(impl, rate_per_second=3, burst=2, max_in_flight_per_instrument=2)
        log = []
        for step in range(40):
            ts = step * NS // 4
            q.push(submit(step + 1, instrument=step % 2), ts)
            if step % 5 == 0:
                log.append(q.push(cancel(step, instrument=(step - 1) % 2), ts))
            log.append(tuple(q.dispatch(ts)))
            if step % 3 == 0:
                q.on_response(step % 2)
        return log, q.counters()

    assert run() == run()


# --------------------------------------------------------------------------------------------
# Property: compiled and reference agree.

config_st = st.builds(
    QueueConfig,
    rate_per_second=st.sampled_from([0, 1, 3, 1000]),
    burst=st.integers(1, 4),
    max_in_flight_per_instrument=st.integers(0, 3),
    capacity=st.integers(1, 8),
    instruments=st.integers(1, 3),
)

_ids = st.integers(0, 6)
intent_st = st.one_of(
    st.builds(lambda i, k, c: Intent(i, k, Side.ASK, price=5, qty=2, client_order_id=c),
              st.integers(0, 3), st.sampled_from([LIMIT, MARKET]), _ids),
    st.builds(lambda i, t, c: Intent(i, CANCEL, client_order_id=c, target_order_id=t),
              st.integers(0, 3), _ids, _ids),
    st.builds(lambda i, t: Intent(i, REPLACE, Side.BID, price=7, qty=3, target_order_id=t),
              st.integers(0, 3), _ids),
)
step_st = st.one_of(
    st.tuples(st.just("push"), intent_st),
    st.tuples(st.just("dispatch"), st.integers(0, 4)),
    st.tuples(st.just("response"), st.integers(0, 3)),
    st.tuples(st.just("withdraw"), st.just(0)),
    st.tuples(st.just("withdraw_instrument"), st.integers(0, 3)),
)


@settings(max_examples=300, deadline=None)
@given(config=config_st, steps=st.lists(st.tuples(step_st, st.integers(-NS, 2 * NS)),
                                        max_size=60))
def test_compiled_and_reference_agree(config, steps):
    a, b = compiled.IntentQueue(config), reference.IntentQueue(config)
    ts = 0
    for (op, arg), dt in steps:
        ts += dt  # mostly forward, sometimes backwards
        if op == "push":
            assert a.push(arg, ts) == b.push(arg, ts)
        elif op == "dispatch":
            assert a.dispatch(ts, arg) == b.dispatch(ts, arg)
        elif op == "withdraw":
            assert a.withdraw() == b.withdraw()
        elif op == "withdraw_instrument":
            def on_instrument(x, instrument=arg):
                return x.instrument == instrument
            assert a.withdraw(on_instrument) == b.withdraw(on_instrument)
        else:
            a.on_response(arg)
            b.on_response(arg)
        assert a.pending() == b.pending()
        assert a.tokens(ts) == b.tokens(ts)
        for i in range(4):
            assert a.in_flight(i) == b.in_flight(i)
        assert a.counters() == b.counters()
    assert a.pending() <= config.capacity
