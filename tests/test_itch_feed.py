"""The loopback venue's ITCH feed encoder (venue/itch_feed.hpp) against its pure-Python twin
(lockstep.reference.itch_feed) on arbitrary event streams: the same datagrams byte for byte, the
same sequence numbers, counts, pacing stops and message budgets; and every datagram read back by
the MoldUDP64 reader and the one ITCH decoder. With the trading side attached
(venue/replayed_markets.hpp and lockstep.reference.replayed_markets), the same stops at fills,
the same fills reported and the same own-order messages."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lockstep._bindings.itch_feed import ItchFeed as CompiledFeed

from lockstep.enums import Status, TimeInForce
from lockstep.events import EventKind, Side, empty_columns
from lockstep.protocols import moldudp64
from lockstep.reference.itch_feed import ItchFeed as ReferenceFeed
from lockstep.reference.replayed_markets import ReplayedMarkets as ReferenceMarkets
from lockstep.venue.matching import ReplayedMarkets as CompiledMarkets

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SESSION = b"TWINFEED  "
DAY = 1_700_000_000_000_000_000 - 1_700_000_000_000_000_000 % 86_400_000_000_000
KINDS = [EventKind.L2_SET, EventKind.L3_ADD, EventKind.L3_MODIFY, EventKind.L3_DELETE,
         EventKind.L3_EXECUTE, EventKind.TRADE, EventKind.BOOK_CLEAR, EventKind.ORDER_FILLED,
         EventKind.VENUE_BBO]

event = st.tuples(
    st.sampled_from(KINDS),
    st.sampled_from([0, 1, 1, 2]),  # instrument: 0 L2, 1 L3, 2 not declared
    st.sampled_from([0, 1, 1, 2, 2]),  # side
    # few prices, quantities and ids, so that events meet the same orders and levels again
    st.one_of(st.integers(1, 3), st.integers(1, 3), st.integers(-5, 1 << 45)),  # price in ticks
    st.one_of(st.integers(0, 3), st.integers(0, 3), st.integers(-3, 1 << 33)),  # qty
    st.integers(1, 4),  # order id
    st.booleans(),  # last event of its venue message
    st.integers(0, 3_000),  # ts step
)


def _columns(events):
    cols = empty_columns(len(events))
    ts = DAY + 34_200_000_000_000 + np.cumsum([e[7] for e in events], dtype=np.int64)
    cols["ts_event"][:] = ts
    cols["ts_recv"][:] = ts
    cols["seq"][:] = np.arange(1, len(events) + 1)
    for name, j in (("kind", 0), ("instrument", 1), ("side", 2), ("price", 3), ("qty", 4),
                    ("order_id", 5)):
        cols[name][:] = [e[j] for e in events]
    cols["flags"][:] = [int(e[6]) for e in events]
    return cols


def _feed(cls):
    feed = cls(SESSION, 1400, DAY, 1, 16)
    feed.add_instrument(0, b"LEVELS  ", 100, True)
    feed.add_instrument(1, b"ORDERS  ", 1, False)
    return feed


def _run(feed, cols, *, until: int, budget: int, out_bytes: int = 1 << 20):
    """Encodes in calls as a venue does; every call's datagrams and result."""
    n = len(cols["ts_event"])
    calls = []
    pos = 0
    for _ in range(n + 2):
        out = np.zeros(out_bytes, np.uint8)
        lengths = np.zeros(1024, np.uint32)
        feed.begin(out, lengths)
        if not calls:
            feed.system_event(ord("O"), int(cols["ts_event"][0]))
            feed.stock_directory(0, int(cols["ts_event"][0]))
            feed.stock_directory(1, int(cols["ts_event"][0]))
        status, pos, due = feed.encode(cols, n, pos, until, budget)
        k = feed.finish()
        calls.append((status, pos, due, out[:int(lengths[:k].sum())].tobytes(), lengths[:k].tolist()))
        budget = max(budget - 1000, 0)
        if status != Status.OUTPUT_FULL or budget == 0:
            break
    return calls


@FAST
@given(st.lists(event, min_size=1, max_size=200), st.integers(0, 400_000), st.integers(0, 300))
def test_compiled_feed_matches_its_twin(events, until_step, budget):
    cols = _columns(events)
    until = int(cols["ts_event"][0]) + until_step
    compiled, twin = _feed(CompiledFeed), _feed(ReferenceFeed)
    got = _run(compiled, cols, until=until, budget=budget)
    assert got == _run(twin, cols, until=until, budget=budget)
    assert compiled.counts() == twin.counts()
    assert compiled.next_sequence == twin.next_sequence
    assert compiled.live_orders == twin.live_orders
    expected = 1
    for *_, data, lengths in got:  # well-formed packets, sequences without a gap, within budget
        offset = 0
        for length in lengths:
            assert length <= 1400
            packet = moldudp64.read_packet(data[offset:offset + length])
            assert packet.problem.label == "none" and packet.sequence == expected
            expected += packet.count
            offset += length
    assert expected == compiled.next_sequence


def test_pacing_stops_at_a_venue_message_start():
    events = [(EventKind.L3_ADD, 1, 1, 10, 5, 1, False, 0), (EventKind.L3_ADD, 1, 1, 11, 5, 2, True, 500),
              (EventKind.L3_ADD, 1, 2, 12, 5, 3, True, 500)]
    cols = _columns(events)
    for cls in (CompiledFeed, ReferenceFeed):
        status, pos, due, *_ = _run(_feed(cls), cols, until=int(cols["ts_event"][0]), budget=100)[0]
        # the second event is later but belongs to the first's venue message: it goes too
        assert (status, pos, due) == (Status.WOULD_BLOCK, 2, int(cols["ts_event"][2]))


@pytest.mark.parametrize("cls", [CompiledFeed, ReferenceFeed])
def test_a_full_buffer_stops_between_events(cls):
    events = [(EventKind.L3_ADD, 1, 1, 10, 5, i, True, 1) for i in range(1, 200)]
    cols = _columns(events)
    feed = _feed(cls)
    calls = _run(feed, cols, until=1 << 62, budget=1 << 40, out_bytes=2000)
    assert [c[0] for c in calls[:-1]] == [Status.OUTPUT_FULL] * (len(calls) - 1)
    assert calls[-1][:2] == (Status.OK, 199)
    assert feed.counts()["messages"] == 3 + 199


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_compiled_feed_matches_its_twin_on_a_long_seeded_stream(seed):
    """Thousands of events over few ids, prices and sizes: every path of the mapping, many times
    (a pacing stop and a message budget included)."""
    rng = np.random.default_rng(seed)
    n = 5_000
    events = list(zip(
        rng.choice(KINDS, n, p=[0.2, 0.2, 0.25, 0.1, 0.1, 0.08, 0.01, 0.03, 0.03]).tolist(),
        rng.choice([0, 1, 1, 2], n).tolist(), rng.choice([0, 1, 1, 2, 2], n).tolist(),
        rng.integers(1, 5, n).tolist(), rng.integers(0, 5, n).tolist(), rng.integers(1, 9, n).tolist(),
        (rng.random(n) < 0.6).tolist(), rng.integers(0, 100, n).tolist()))
    cols = _columns(events)
    until = int(cols["ts_event"][n * 3 // 4])
    compiled, twin = _feed(CompiledFeed), _feed(ReferenceFeed)
    assert _run(compiled, cols, until=until, budget=3_000) == _run(twin, cols, until=until, budget=3_000)
    assert compiled.counts() == twin.counts()
    assert all(compiled.counts()["skipped"][:5])  # every reason met


# ------------------------------------------------------------------ with the trading side attached

own_order = st.tuples(st.sampled_from([0, 1]), st.sampled_from([1, 2]),  # instrument, side
                      st.integers(1, 3), st.integers(1, 4))  # price, qty: where the stream trades


def _trading(compiled: bool):
    feed = _feed(CompiledFeed if compiled else ReferenceFeed)
    markets = CompiledMarkets(["l2", "l3"]) if compiled else ReferenceMarkets(["l2", "l3"])
    feed.attach(markets.core if compiled else markets)
    return feed, markets


def _trade(compiled: bool, cols, orders, show: bool):
    """Our orders rest before the stream (shown if `show`), the first is canceled halfway; every
    call's datagrams, stop, and what the matchers reported at each stop."""
    feed, markets = _trading(compiled)
    n = len(cols["ts_event"])
    ts0 = int(cols["ts_event"][0])
    calls = []
    pos = 0
    for _ in range(2 * n + 4):
        out = np.zeros(1 << 20, np.uint8)
        lengths = np.zeros(1024, np.uint32)
        feed.begin(out, lengths)
        if not calls:
            for k, (inst, side, price, qty) in enumerate(orders, start=1):
                markets.submit(inst, k, side, TimeInForce.GTC, price, qty)
        if orders and pos >= n // 2 and markets.order(orders[0][0], 1) is not None:
            markets.cancel(orders[0][0], 1)
        reported = [markets.drain(inst) for inst in (0, 1)]
        if show:
            assert feed.show_own_orders(ts0) == Status.OK
        status, pos, _ = feed.encode(cols, n, pos, 1 << 62, 1 << 40)
        k = feed.finish()
        calls.append((status, pos, feed.filled, reported,
                      out[:int(lengths[:k].sum())].tobytes(), lengths[:k].tolist()))
        if pos == n:
            break
    return calls, feed.counts(), feed.own_shown, [markets.orders(inst) for inst in (0, 1)]


@FAST
@given(st.lists(event, min_size=1, max_size=120), st.lists(own_order, max_size=4), st.booleans())
def test_with_the_trading_side_the_compiled_feed_matches_its_twin(events, orders, show):
    cols = _columns(events)
    got = _trade(True, cols, orders, show)
    assert got == _trade(False, cols, orders, show)


def test_a_fill_of_a_shown_order_is_an_order_executed_and_ends_the_call():
    events = [(EventKind.L3_ADD, 1, 1, 2, 3, 1, True, 0),   # a bid at 2 before ours
              (EventKind.L3_ADD, 1, 1, 1, 3, 2, True, 10),  # a worse bid
              (EventKind.L3_EXECUTE, 1, 1, 1, 3, 2, True, 10),  # it trades: ours (at 2) first
              (EventKind.L3_ADD, 1, 2, 3, 3, 3, True, 10)]
    cols = _columns(events)
    for compiled in (True, False):
        feed, markets = _trading(compiled)
        out, lengths = np.zeros(1 << 16, np.uint8), np.zeros(64, np.uint32)
        feed.begin(out, lengths)
        status, pos, _ = feed.encode(cols, 1, 0, 1 << 62, 1 << 40)  # the first event only
        assert (status, pos, feed.filled) == (Status.OK, 1, False)
        markets.submit(1, 9, Side.BID, TimeInForce.GTC, 2, 2)
        assert feed.show_own_orders(int(cols["ts_event"][0])) == Status.OK and feed.own_shown == 1
        status, pos, _ = feed.encode(cols, 4, pos, 1 << 62, 1 << 40)
        assert (status, pos, feed.filled) == (Status.OK, 3, True)
        (fill,) = markets.drain(1)
        assert (fill.client_order_id, fill.qty, fill.maker) == (9, 2, True)
        k = feed.finish()
        packets = moldudp64.read_packet(out[:int(lengths[:k].sum())].tobytes()).messages
        # A (the dataset's bid at 2), A (ours), A (the worse bid), E of it, then E of ours
        assert [m[:1] for m in packets] == [b"A", b"A", b"A", b"E", b"E"]
        assert packets[4][11:19] == packets[1][11:19] and feed.own_shown == 0


@pytest.mark.parametrize("compiled", [True, False])
def test_our_orders_on_an_l2_instrument_are_not_shown(compiled):
    """An L2 book is shown one venue order per level, the dataset's size: ours has no place."""
    feed, markets = _trading(compiled)
    out, lengths = np.zeros(1 << 16, np.uint8), np.zeros(64, np.uint32)
    feed.begin(out, lengths)
    markets.submit(0, 1, Side.BID, TimeInForce.GTC, 2, 5)  # instrument 0 is the L2 one
    markets.submit(1, 2, Side.BID, TimeInForce.GTC, 2, 5)
    assert feed.show_own_orders(0) == Status.OK
    assert feed.own_shown == 1 and feed.counts()["messages"] == 1  # the L3 order's 'A' only
    assert feed.finish() == 1
