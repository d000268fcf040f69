"""The loopback venue against the backtests' simulated venue: a scripted OUCH client trades with
the venue while it replays a dataset; the venue records where in the stream each order message
took effect (`OrderEntry.applied`); a backtest of the same dataset, whose scripted strategy sends
the same messages to arrive at those same places (zero latency, timers just after the event
before), must give exactly the same fills: the same orders, prices, quantities, maker flags, in
the same sequence and after the same events. The oracle is `lockstep.run_backtest`, not the
venue's code. Every socket binds port 0; every wait is bounded."""
from __future__ import annotations

import bisect
import json
import time
from pathlib import Path

import pytest
from test_order_entry import enter
from test_venue_feed import FeedReceiver, Running, venue_config
from test_venue_trading import (
    DEADLINE_S,
    NS_PER_DAY,
    STOCK,
    T0,
    USERS,
    _dataset,
    _login,
)

from lockstep.backtest.runner import run_backtest
from lockstep.enums import TimeInForce
from lockstep.events import EventKind, Side
from lockstep.protocols import ouch42 as ouch
from lockstep.protocols import soupbintcp as soup
from lockstep.venue.loopback.serve import LoopbackVenue
from lockstep.venue.loopback.trading import OrderEntry

STEP_S = 0.3  # between the dataset's events: room for the client to act between two of them
ADD, EXECUTE = EventKind.L3_ADD, EventKind.L3_EXECUTE
# (kind, side, price ticks, qty, order id), one event every STEP_S
L3_EVENTS = [
    (ADD, Side.BID, 9_999, 200, 1),
    (ADD, Side.ASK, 10_001, 300, 2),
    (ADD, Side.BID, 9_998, 100, 3),
    # our orders enter here (see SCRIPT)
    (EXECUTE, Side.BID, 9_999, 150, 1),
    (EXECUTE, Side.BID, 9_999, 50, 1),
    (ADD, Side.BID, 9_999, 40, 4),
    (EXECUTE, Side.BID, 9_999, 40, 4),
    # a cancel and a replace here
    (EXECUTE, Side.ASK, 10_001, 300, 2),
    (ADD, Side.ASK, 10_001, 60, 5),
    (EXECUTE, Side.ASK, 10_001, 60, 5),
    (ADD, Side.BID, 9_997, 10, 6),
]
SET, PRINT = EventKind.L2_SET, EventKind.TRADE
L2_EVENTS = [
    (SET, Side.BID, 9_999, 200, 0),
    (SET, Side.ASK, 10_001, 300, 0),
    (SET, Side.BID, 9_998, 100, 0),
    (PRINT, Side.ASK, 9_999, 150, 0),  # a sell of 150 prints at 99.99: the queue ahead shrinks
    (SET, Side.BID, 9_999, 50, 0),
    (SET, Side.BID, 9_999, 90, 0),
    (PRINT, Side.ASK, 9_999, 80, 0),  # 80 more: 50 ahead of us, then 30 of ours
    (SET, Side.BID, 9_999, 10, 0),
    (PRINT, Side.BID, 10_002, 100, 0),  # a buy through 100.01 fills a sell resting there
    (SET, Side.ASK, 10_001, 200, 0),
    (SET, Side.BID, 9_997, 10, 0),
]
# (position to act at, OUCH message); the script's tokens name the orders on both sides
SCRIPT = [
    (3, enter("B1", side="B", shares=50, price="99.99", stock=STOCK)),
    (3, enter("S1", side="S", shares=30, price="100.02", stock=STOCK)),
    (3, enter("T1", side="B", shares=100, price="100.01", tif=0, stock=STOCK)),
    (7, ouch.CancelOrder("B1", 0)),
    (7, ouch.ReplaceOrder("S1", "S2", 30, 1_000_100, 99999, "Y", "N", 0)),
]


def _venue_fills(ds, events: int) -> tuple[list, list]:
    """Runs the script against the venue: (where each message was applied, the fills)."""
    receiver = FeedReceiver()
    venue = LoopbackVenue(venue_config(ds, receiver, speed=1.0, linger="0s", users=USERS))
    order_entry = OrderEntry(venue.feed)
    venue.attach(order_entry)
    running = Running(venue, DEADLINE_S)
    client = _login(venue.addresses["order_entry"])
    deadline = time.monotonic() + DEADLINE_S
    for position, message in SCRIPT:
        while venue.feed.events_sent < position and time.monotonic() < deadline:
            time.sleep(0.002)
        client.enter(message)
    while venue.feed.events_sent < events and time.monotonic() < deadline:
        time.sleep(0.01)
    answers: list[ouch.Outbound] = []
    for _ in range(50):  # accepted, replaced, canceled and executed messages, then quiet
        got = client.quiet(0.2)
        if not got:
            break
        answers += [ouch.decode_outbound(p.payload) for p in got
                    if isinstance(p, soup.SequencedData)]
    summary = running.finish()
    receiver.close()
    assert summary["events"] == events
    return order_entry.applied, [a for a in answers if isinstance(a, ouch.Executed)]


def _backtest_fills(tmp_path: Path, ds, applied, times: list[int]):
    """The same messages in a backtest, each arriving just after the event before its position."""
    actions = []
    for a in applied:
        m = a.message
        at = times[a.position - 1] + 1
        if isinstance(m, ouch.EnterOrder):
            actions.append({"at_ns": at, "kind": "enter", "token": m.token,
                            "side": int(Side.BID if m.side == "B" else Side.ASK),
                            "price": m.price // 100, "qty": m.shares,
                            "tif": int(TimeInForce.IOC if m.time_in_force == 0 else TimeInForce.GTC)})
        elif isinstance(m, ouch.CancelOrder):
            assert m.shares == 0
            actions.append({"at_ns": at, "kind": "cancel", "token": m.token})
        else:
            actions.append({"at_ns": at, "kind": "replace", "token": m.existing_token,
                            "new_token": m.replacement_token, "price": m.price // 100,
                            "qty": m.shares})
    script, ids = tmp_path / "script.json", tmp_path / "ids.json"
    script.write_text(json.dumps({"actions": actions, "ids": str(ids)}))
    config = tmp_path / "oracle.toml"
    config.write_text(f"""
dataset = "{ds.path}"
[strategy]
path = "{Path(__file__).with_name('scripted_strategy.py')}:Scripted"
[strategy.params]
script = "{script}"
[venue]
queue_model = "conservative"
[venue.latency]
model = "constant"
entry = 0
response = 0
[output]
report = false
""")
    result = run_backtest(config, data=str(tmp_path / "runs"))
    names = {cid: token for token, cid in json.loads(ids.read_text()).items()}
    fills = result.fills_table().to_pydict()
    return [(names[cid], ts, price, qty, bool(maker)) for cid, ts, price, qty, maker in
            zip(fills["order_id"], fills["ts_event"], fills["price_ticks"], fills["qty_lots"],
                fills["maker"], strict=True)]


@pytest.mark.parametrize(("book", "events"), [("l3", L3_EVENTS), ("l2", L2_EVENTS)])
def test_scripted_orders_fill_as_the_backtest_fills_them_at_the_same_positions(tmp_path, book,
                                                                                 events):
    rows = [(k * STEP_S, *e) for k, e in enumerate(events)]
    ds = _dataset(tmp_path / "root", book, rows)
    times = [T0 + int(r[0] * 1e9) for r in rows]
    applied, executed = _venue_fills(ds, len(events))
    # every message applied once, in the order sent, each after the event the client waited for
    assert [a.message for a in applied] == [m for _, m in SCRIPT]
    assert all(a.position >= p for a, (p, _) in zip(applied, SCRIPT, strict=True))
    expected = _backtest_fills(tmp_path, ds, applied, times)
    assert expected, "the script fills nothing in the backtest: it tests nothing"

    def after(ts_ns: int) -> int:  # how many events the stream had shown at that time
        return bisect.bisect_right(times, ts_ns)

    day = T0 - T0 % NS_PER_DAY
    replaced = {m.replacement_token: m.existing_token for _, m in SCRIPT
                if isinstance(m, ouch.ReplaceOrder)}
    got = [(replaced.get(e.token, e.token), after(day + e.timestamp), e.execution_price // 100,
            e.executed_shares, e.liquidity_flag == "A") for e in executed]
    want = [(replaced.get(token, token), after(ts), price, qty, maker)
            for token, ts, price, qty, maker in expected]
    assert got == want
