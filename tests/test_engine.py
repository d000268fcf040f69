"""The Engine's processing chain on hand-built datasets, where every fill, timestamp and denial can
be worked out by hand from the documented rules (docs/backtest.md, docs/venue.md, docs/risk.md).

The datasets are a few events of one L2 instrument (price increment 0.01, size increment 0.001):
a book with one bid and one ask level, then trades and level updates at chosen times. Every event
has a feed latency (ts_recv - ts_event) of FEED, so venue time and core time differ and the tests
can tell them apart. Latency is the default constant 1 ms each way.

Strategies are module-level classes named in the config as "<this module>:<Class>"; what they
saw goes to class-level lists the tests read after the run.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from lockstep.backtest.config import BacktestConfig
from lockstep.backtest.runner import BacktestFailed, run_backtest
from lockstep.core.strategy import OrderStatus, RiskReason, Side, Strategy, TimeInForce
from lockstep.data.dataset import DatasetWriter, Instrument
from lockstep.enums import MatchReject
from lockstep.errors import OrderRulesWarning
from lockstep.events import COLUMN_NAMES, EventKind, empty_columns

T0 = 1_700_000_000_000_000_000
MS = 1_000_000
FEED = 100_000  # ts_recv - ts_event of every hand-built event (0.1 ms)
LAT = 1 * MS  # default entry and response latency

BID, ASK = int(Side.BID), int(Side.ASK)
GTC, IOC, POST_ONLY = int(TimeInForce.GTC), int(TimeInForce.IOC), int(TimeInForce.POST_ONLY)
L2_SET, TRADE = int(EventKind.L2_SET), int(EventKind.TRADE)
LAST = 1


def ev(t_ms: float, kind: int, side: int, price: int, qty: int, last: bool = True) -> dict:
    """One market event at venue time T0 + t_ms, received FEED later."""
    ts_event = T0 + int(round(t_ms * MS))
    return dict(ts_event=ts_event, ts_recv=ts_event + FEED, kind=kind, side=side, price=price,
                qty=qty, flags=LAST if last else 0)


def book(t_ms: float = 0.0, bid=(10000, 5), ask=(10010, 5)) -> list[dict]:
    """A one-level book as one venue message: bid then ask (LAST on the ask)."""
    return [ev(t_ms, L2_SET, BID, *bid, last=False), ev(t_ms, L2_SET, ASK, *ask)]


def write_dataset(data_root: str, rows: list[dict], *, symbols=("TST",), name="hand", order_rules=None):
    cols = empty_columns(len(rows))
    for n in COLUMN_NAMES:
        cols[n][:] = 0
    for i, r in enumerate(rows):
        for k, v in r.items():
            cols[k][i] = v
    instruments = [Instrument(s, "SIM", "0.01", "0.001", **(order_rules or {})) for s in symbols]
    with DatasetWriter(name, instruments, data=data_root) as w:
        w.write(cols)
    return w.dataset


def run(data_root: str, ds, strategy: str, **extra):
    """run_backtest of `strategy` (a class of this module) on `ds`; `extra` are config tables."""
    cfg = {"name": "t", "dataset": ds.path, "strategy": {"path": f"{__name__}:{strategy}"},
           "output": {"report": False}}
    for k, v in extra.items():
        cfg[k] = v
    return run_backtest(BacktestConfig.from_dict(cfg, base_dir="."), data=data_root)


def run_dir(result) -> Path:
    d = result.run_dir
    return Path(d.removeprefix("file://"))


def table(result, name: str):
    path = run_dir(result) / f"{name}.parquet"
    return pq.read_table(path).to_pylist() if path.exists() else []


def by_order(rows: list[dict]) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for r in rows:
        out.setdefault(r["order_id"], []).append(r)
    return out


# ---------------------------------------------------------------------------------------------
# Strategies


class MakerTakerScenario(Strategy):
    """At the first book: a post-only bid at the best bid (rests behind 5 lots), a post-only bid
    at the best ask (would cross: rejected), an IOC buy of 8 at the best ask (takes the 5 shown,
    the other 3 expire)."""

    ids: dict = {}
    updates: list = []

    def on_book(self, ctx, instrument):
        if MakerTakerScenario.ids:
            return
        bid, _, ask, _ = ctx.touch(instrument)
        MakerTakerScenario.ids = {
            "maker": ctx.submit_limit(instrument, BID, bid, 3, POST_ONLY),
            "crossing": ctx.submit_limit(instrument, BID, ask, 1, POST_ONLY),
            "ioc": ctx.submit_limit(instrument, BID, ask, 8, IOC),
            "now": ctx.now,
        }

    def on_order(self, ctx, update):
        MakerTakerScenario.updates.append(
            (update.order_id, update.kind, update.qty, update.price, update.filled_qty,
             update.leaves_qty, update.status, update.maker, update.ts_event, update.ts_recv,
             ctx.now))


def test_maker_fill_post_only_reject_and_ioc_expiry(data_root):
    MakerTakerScenario.ids, MakerTakerScenario.updates = {}, []
    rows = book(0.0) + [
        ev(5.0, TRADE, ASK, 10000, 7),  # sell aggressor at our bid: 7 - 5 ahead = 2 fill us
        ev(10.0, L2_SET, BID, 10000, 3),  # the feed shows the trade; lets the fill response land
    ]
    ds = write_dataset(data_root, rows)
    result = run(data_root, ds, "MakerTakerScenario",
                 venue={"maker_fee_bps": "-1", "taker_fee_bps": "5"})
    ids = MakerTakerScenario.ids
    sent = T0 + FEED  # core time of the first on_book: the book message's ts_recv
    assert ids["now"] == sent
    arrive = sent + LAT  # venue time of the three messages
    back = arrive + LAT  # core time their answers land
    orders = by_order(table(result, "orders"))
    assert set(orders) == {ids["maker"], ids["crossing"], ids["ioc"]}

    def shape(rows):
        return [(r["kind"], r["ts_event"], r["ts_recv"], r["price_ticks"], r["qty_lots"], r["maker"])
                for r in rows]

    assert shape(orders[ids["maker"]]) == [
        ("order_submitted", sent, sent, 10000, 3, False),
        ("order_accepted", arrive, back, 10000, 3, False),
        # the trade at venue time 5 ms fills the excess over queue-ahead, at our price, as maker;
        # the core learns of it one response latency later
        ("order_filled", T0 + 5 * MS, T0 + 5 * MS + LAT, 10000, 2, True),
    ]
    assert shape(orders[ids["crossing"]]) == [
        ("order_submitted", sent, sent, 10010, 1, False),
        ("order_rejected", arrive, back, 10010, 1, False),
    ]
    assert orders[ids["crossing"]][1]["reason"] == 1  # MatchReject::PostOnlyWouldCross
    assert shape(orders[ids["ioc"]]) == [
        ("order_submitted", sent, sent, 10010, 8, False),
        ("order_accepted", arrive, back, 10010, 8, False),
        ("order_filled", arrive, back, 10010, 5, False),  # taker, at the level's price
        ("order_expired", arrive, back, 10010, 3, False),  # the IOC's unfilled rest
    ]
    # fees: taker 5 bps of 100.10 x 0.005; maker rebate 1 bp of 100.00 x 0.002
    fills = table(result, "fills")
    assert [(f["order_id"], f["maker"]) for f in fills] == [(ids["ioc"], False), (ids["maker"], True)]
    assert fills[0]["fee"] == pytest.approx(100.10 * 0.005 * 5e-4, rel=1e-12)
    assert fills[1]["fee"] == pytest.approx(-100.00 * 0.002 * 1e-4, rel=1e-12)
    assert fills[0]["price"] == pytest.approx(100.10) and fills[0]["qty"] == pytest.approx(0.005)
    # on_order saw each response at its core time, with the order's state after it
    fill_update = [u for u in MakerTakerScenario.updates
                   if u[0] == ids["maker"] and u[1] == int(EventKind.ORDER_FILLED)]
    assert fill_update == [(ids["maker"], int(EventKind.ORDER_FILLED), 2, 10000, 2, 1,
                            int(OrderStatus.PARTIALLY_FILLED), True, T0 + 5 * MS,
                            T0 + 5 * MS + LAT, T0 + 5 * MS + LAT)]
    statuses = {u[0]: u[6] for u in MakerTakerScenario.updates}
    assert statuses[ids["crossing"]] == int(OrderStatus.REJECTED)
    assert statuses[ids["ioc"]] == int(OrderStatus.EXPIRED)
    # position: +5 taken +2 made = 0.007 long
    pnl = table(result, "pnl")
    assert pnl[-1]["position"] == pytest.approx(0.007)
    s = result.summary
    assert s["complete"] and s["fills"] == 2 and s["orders"] == 3
    assert s["counters"]["venue"]["rejected"] == 1 and s["counters"]["venue"]["expired"] == 1


def test_trade_smaller_than_queue_ahead_does_not_fill_and_print_through_fills_all(data_root):
    """Conservative queue: a print at our price not exceeding queue-ahead fills nothing; a print
    strictly through our price fills the whole remainder, whatever its qty."""
    MakerTakerScenario.ids, MakerTakerScenario.updates = {}, []
    rows = book(0.0) + [
        ev(4.0, TRADE, ASK, 10000, 5),  # exactly the 5 ahead of us: no fill
        ev(6.0, TRADE, ASK, 9990, 1),  # through our price: our 3 fill at our price
        ev(10.0, L2_SET, BID, 9990, 1),
    ]
    ds = write_dataset(data_root, rows)
    result = run(data_root, ds, "MakerTakerScenario")
    ids = MakerTakerScenario.ids
    maker_fills = [f for f in table(result, "fills") if f["order_id"] == ids["maker"]]
    assert [(f["ts_event"], f["ts_recv"], f["price_ticks"], f["qty_lots"], f["maker"])
            for f in maker_fills] == [(T0 + 6 * MS, T0 + 6 * MS + LAT, 10000, 3, True)]


class ArrivalTie(Strategy):
    """Submits an IOC buy at the ask at the first book; the dataset moves the ask at exactly the
    venue time the order arrives."""

    def on_book(self, ctx, instrument):
        if getattr(self, "sent", False):
            return
        self.sent = True
        ctx.submit_limit(instrument, BID, 10010, 1, IOC)


@pytest.mark.parametrize("ask_moves_at_ms, fills", [(1.1, True), (1.2, True), (1.0, False)])
def test_arrival_is_matched_before_events_with_equal_or_later_ts_event(data_root, ask_moves_at_ms, fills):
    # dispatched at core time T0 + 0.1 ms -> arrives at venue time T0 + 1.1 ms; docs/backtest.md:
    # matched against the book before the first market event with ts_event >= arrival.
    rows = book(0.0) + [ev(ask_moves_at_ms, L2_SET, ASK, 10010, 0, last=False),
                        ev(ask_moves_at_ms, L2_SET, ASK, 10020, 5), ev(20.0, L2_SET, BID, 9990, 1)]
    ds = write_dataset(data_root, rows)
    result = run(data_root, ds, "ArrivalTie")
    kinds = [r["kind"] for r in table(result, "orders")]
    if fills:
        assert kinds == ["order_submitted", "order_accepted", "order_filled"]
    else:
        assert kinds == ["order_submitted", "order_accepted", "order_expired"]


# ---------------------------------------------------------------------------------------------
# Denials


class DenialTour(Strategy):
    """Every engine-decided denial plus the limit checks, in one callback (queue capacity 1),
    then a duplicate of a live order in a later callback."""

    results: list = []

    def on_book(self, ctx, instrument):
        self.calls = getattr(self, "calls", 0) + 1
        r = DenialTour.results
        if self.calls == 1:
            r.append(("cancel_unknown", ctx.cancel(987654), ctx.last_denial))
            r.append(("first", ctx.submit_limit(0, BID, 9000, 1, GTC, 500), ctx.last_denial))
            r.append(("dup_pending", ctx.submit_limit(0, BID, 9000, 1, GTC, 500), ctx.last_denial))
            r.append(("queue_full", ctx.submit_limit(0, BID, 9000, 1, GTC), ctx.last_denial))
            r.append(("beyond", ctx.submit_limit(7, BID, 9000, 1, GTC), ctx.last_denial))
            r.append(("excluded", ctx.submit_limit(1, BID, 9000, 1, GTC), ctx.last_denial))
            r.append(("qty0", ctx.submit_limit(0, BID, 9000, 0, GTC), ctx.last_denial))
            r.append(("qty_neg", ctx.submit_limit(0, ASK, 9000, -3, GTC), ctx.last_denial))
            r.append(("too_big", ctx.submit_limit(0, BID, 9000, 11, GTC), ctx.last_denial))
            r.append(("too_long", ctx.submit_limit(0, BID, 9000, 6, GTC), ctx.last_denial))
        elif self.calls == 2:
            r.append(("dup_live", ctx.submit_limit(0, ASK, 20000, 1, GTC, 500), ctx.last_denial))
            r.append(("status_500", ctx.order(500)))


def test_every_engine_reason_is_recorded_with_its_name(data_root):
    DenialTour.results = []
    rows = book(0.0) + [ev(10.0, L2_SET, BID, 10000, 4)]
    ds = write_dataset(data_root, rows, symbols=("TST", "OTH"))
    result = run(data_root, ds, "DenialTour", instruments=["TST"], queue={"capacity": 1},
                 risk={"max_order_qty": "0.010", "max_position": "0.005"})
    R = RiskReason
    got = {name: rest for name, *rest in DenialTour.results}
    assert got["cancel_unknown"] == [False, int(R.UNKNOWN_ORDER)]
    assert got["first"][0] == 500
    assert got["dup_pending"] == [0, int(R.DUPLICATE_ORDER_ID)]
    assert got["queue_full"] == [0, int(R.QUEUE_FULL)]
    assert got["beyond"] == [0, int(R.UNKNOWN_INSTRUMENT)]
    assert got["excluded"] == [0, int(R.UNKNOWN_INSTRUMENT)]
    assert got["qty0"] == [0, int(R.NON_POSITIVE_QTY)]
    assert got["qty_neg"] == [0, int(R.NON_POSITIVE_QTY)]
    assert got["too_big"] == [0, int(R.MAX_ORDER_QTY)]
    assert got["too_long"] == [0, int(R.MAX_POSITION)]
    assert got["dup_live"] == [0, int(R.DUPLICATE_ORDER_ID)]
    assert got["status_500"][0][5] == int(OrderStatus.ACCEPTED)  # id 500 was live meanwhile

    denials = table(result, "denials")
    first_t, second_t = T0 + FEED, T0 + 10 * MS + FEED
    assert [(d["reason"], d["symbol"], d["intent"], d["qty_lots"], d["ts_recv"]) for d in denials] == [
        ("unknown_order", "TST", "cancel", 0, first_t),
        ("duplicate_order_id", "TST", "submit_limit", 1, first_t),
        ("queue_full", "TST", "submit_limit", 1, first_t),
        ("unknown_instrument", "#7", "submit_limit", 1, first_t),
        ("unknown_instrument", "OTH", "submit_limit", 1, first_t),
        ("non_positive_qty", "TST", "submit_limit", 0, first_t),
        ("non_positive_qty", "TST", "submit_limit", -3, first_t),
        ("max_order_qty", "TST", "submit_limit", 11, first_t),
        ("max_position", "TST", "submit_limit", 6, first_t),
        ("duplicate_order_id", "TST", "submit_limit", 1, second_t),
    ]
    assert denials[0]["target_order_id"] == 987654
    assert denials[1]["client_order_id"] == 500 and denials[-1]["client_order_id"] == 500
    s = result.summary
    assert s["denials"] == dict(Counter(d["reason"] for d in denials))
    assert s["denied"] == len(denials) == s["counters"]["denied"]
    # only the one allowed order was ever dispatched
    assert s["orders"] == 1
    assert [r["order_id"] for r in table(result, "orders")] == [500, 500]


class QueueFullThenLater(Strategy):
    """Two submits in one callback with queue capacity 1 (the second is queue_full), then one more
    in a later callback. Rate limit: burst 2, 1 per second."""

    results: list = []

    def on_book(self, ctx, instrument):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == 1:
            for _ in range(2):
                QueueFullThenLater.results.append(
                    (ctx.submit_limit(instrument, BID, 9000, 1, GTC), ctx.last_denial))
        elif self.calls == 2:
            QueueFullThenLater.results.append(
                (ctx.submit_limit(instrument, BID, 9000, 1, GTC), ctx.last_denial))


def test_queue_full_denial_spends_no_rate_token(data_root):
    QueueFullThenLater.results = []
    rows = book(0.0) + [ev(10.0, L2_SET, BID, 10000, 4)]
    ds = write_dataset(data_root, rows)
    result = run(data_root, ds, "QueueFullThenLater", queue={"capacity": 1},
                 risk={"rate_per_second": 1, "burst": 2})
    r = QueueFullThenLater.results
    assert r[0][0] != 0 and r[1] == (0, int(RiskReason.QUEUE_FULL))
    # 10 ms later: the bucket (burst 2) has spent one token on the one order that went out
    assert r[2][0] != 0, f"third submit denied: {RiskReason(r[2][1]).name}"
    assert result.summary["denials"] == {"queue_full": 1}


# ---------------------------------------------------------------------------------------------
# Timers and subscriptions


class Timers(Strategy):
    log: list = []

    def on_start(self, ctx):
        start = ctx.now
        Timers.log.append(("start", start))
        ctx.set_timer(start + 3 * MS, 11)
        ctx.set_timer(start + 3 * MS, 12)  # same time: creation order
        ctx.set_timer(start + 1 * MS, 10)
        ctx.set_timer(0, 9)  # in the past: at once
        # at exactly the core time the answer to the order below lands: responses go first
        ctx.set_timer(start + 2 * LAT, 13)

    def on_book(self, ctx, instrument):
        if not getattr(self, "sent", False):
            self.sent = True
            Timers.log.append(("book", ctx.now))
            ctx.submit_limit(instrument, BID, 9000, 1, GTC)

    def on_order(self, ctx, update):
        Timers.log.append(("order", ctx.now))

    def on_timer(self, ctx, timer_id):
        Timers.log.append((timer_id, ctx.now))
        if timer_id == 11:
            ctx.set_timer(ctx.now + 4 * MS, 14)  # set from a timer: fires at 7 ms


def test_timers_fire_at_their_time_in_order(data_root):
    Timers.log = []
    rows = book(0.0) + [ev(20.0, L2_SET, BID, 10000, 4)]
    ds = write_dataset(data_root, rows)
    result = run(data_root, ds, "Timers")
    s = T0 + FEED
    assert Timers.log == [
        ("start", s),
        (9, s),
        ("book", s),
        (10, s + 1 * MS),
        ("order", s + 2 * MS),  # accepted; a response and a timer due together: response first
        (13, s + 2 * MS),
        (11, s + 3 * MS),
        (12, s + 3 * MS),
        (14, s + 7 * MS),
    ]
    assert result.summary["counters"]["timers"] == 6


class CountCalls(Strategy):
    """Subscribes with the flags in MODE (a class attribute set by the test)."""

    mode: dict = {}
    trades: list = []

    def setup(self, ctx):
        for i in ctx.traded:
            ctx.subscribe(i, **CountCalls.mode)

    def on_book(self, ctx, instrument):
        pass

    def on_trade(self, ctx, instrument, price, qty, aggressor):
        CountCalls.trades.append((ctx.now, price, qty, aggressor))


def test_touch_subscription_is_called_only_when_the_touch_changes(data_root):
    rows = book(0.0) + [
        ev(1.0, L2_SET, BID, 9990, 2),  # deeper level: book changed, touch did not
        ev(2.0, L2_SET, ASK, 10020, 1),  # deeper level
        ev(3.0, TRADE, ASK, 10000, 1),  # a print changes no book
        ev(4.0, L2_SET, BID, 10000, 6),  # touch qty changed
        ev(5.0, L2_SET, BID, 9990, 3, last=False),  # a message without LAST is not complete...
        ev(5.0, L2_SET, BID, 9980, 3),  # ...until its LAST event: one call
        ev(6.0, L2_SET, ASK, 10010, 0),  # best ask leaves: touch changed
    ]
    ds = write_dataset(data_root, rows)
    calls = {}
    for label, mode in [("book", {"book": True}), ("touch", {"touch": True}),
                        ("trades", {"trades": True}), ("none", {})]:
        CountCalls.mode, CountCalls.trades = mode, []
        calls[label] = run(data_root, ds, "CountCalls").summary["counters"]["strategy_calls"]
        if label == "trades":
            assert CountCalls.trades == [(T0 + 3 * MS + FEED, 10000, 1, ASK)]
    assert calls == {"book": 6, "touch": 3, "trades": 1, "none": 0}


# ---------------------------------------------------------------------------------------------
# A strategy that raises


class RaisesOnThirdBook(Strategy):
    def on_book(self, ctx, instrument):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == 1:
            ctx.submit_limit(instrument, BID, 9000, 1, GTC)
        if self.calls == 3:
            raise ValueError("boom-on-third-book")


class RaisesOnAccept(Strategy):
    def on_book(self, ctx, instrument):
        if not getattr(self, "sent", False):
            self.sent = True
            ctx.submit_limit(instrument, BID, 9000, 1, GTC)

    def on_order(self, ctx, update):
        raise RuntimeError("boom-on-order")


def raising_rows():
    # rows 0-1: book (on_book #1, submits); row 2 at 1 ms (on_book #2); row 3 at 5 ms (on_book
    # #3 raises: the accept landed at 2.1 ms, before it); rows 4-5 never processed.
    return book(0.0) + [ev(1.0, L2_SET, BID, 10000, 4), ev(5.0, L2_SET, BID, 10000, 3),
                        ev(6.0, L2_SET, BID, 10000, 2), ev(7.0, L2_SET, BID, 10000, 1)]


def test_strategy_exception_stops_the_run_and_keeps_partial_outputs(data_root):
    ds = write_dataset(data_root, raising_rows())
    with pytest.raises(BacktestFailed) as info:
        run(data_root, ds, "RaisesOnThirdBook")
    msg = str(info.value)
    assert "stopped at event" in msg and "boom-on-third-book" in msg and "INCOMPLETE" in msg
    res = info.value.result
    d = run_dir(res)
    assert (d / "INCOMPLETE").is_file()
    summary = json.loads((d / "summary.json").read_text())
    assert summary["complete"] is False and res.complete is False
    err = summary["error"]
    assert "boom-on-third-book" in err["traceback"] and "ValueError" in err["traceback"]
    assert "RaisesOnThirdBook" in err["traceback"] or "on_book" in err["traceback"]
    assert err["ts_recv"] == T0 + 5 * MS + FEED
    assert f"event {err['position']}" in msg
    assert summary["events"] == 4  # the failing event was applied, nothing after it
    # what was produced before: the order and its accept
    assert [r["kind"] for r in table(res, "orders")] == ["order_submitted", "order_accepted"]


def test_failed_position_names_the_event_being_processed(data_root):
    ds = write_dataset(data_root, raising_rows())
    with pytest.raises(BacktestFailed) as on_order_info:
        run(data_root, ds, "RaisesOnAccept")
    # the accept lands at core time 2.1 ms, while the pump before row 3 (5 ms) works off what is due
    assert on_order_info.value.result.summary["error"]["position"] == 3
    with pytest.raises(BacktestFailed) as on_book_info:
        run(data_root, ds, "RaisesOnThirdBook")
    # on_book of row 3 raised: the event being processed is row 3 too
    assert on_book_info.value.result.summary["error"]["position"] == 3
    assert "stopped at event 3 " in str(on_book_info.value)


# ---------------------------------------------------------------------------------------------
# State sanity on a hand-built run


class FlipFlop(Strategy):
    """Buys 2 with an IOC at the first book, sells 5 with an IOC at the second."""

    def on_book(self, ctx, instrument):
        self.calls = getattr(self, "calls", 0) + 1
        bid, _, ask, _ = ctx.touch(instrument)
        if self.calls == 1:
            ctx.submit_limit(instrument, BID, ask, 2, IOC)
        elif self.calls == 2:
            ctx.submit_market(instrument, ASK, 5)


def test_position_and_realized_pnl_follow_the_fills(data_root):
    rows = book(0.0) + [ev(5.0, L2_SET, BID, 10002, 9), ev(10.0, L2_SET, ASK, 10012, 5, last=False),
                        ev(10.0, L2_SET, ASK, 10010, 0)]
    ds = write_dataset(data_root, rows)
    result = run(data_root, ds, "FlipFlop")
    fills = table(result, "fills")
    # bought 2 at 100.10; sold 5 at the best bid of the time the market order arrived (100.02)
    assert [(f["side"], f["price_ticks"], f["qty_lots"], f["maker"]) for f in fills] == [
        (BID, 10010, 2, False), (ASK, 10002, 5, False)]
    pnl = table(result, "pnl")
    last = pnl[-1]
    assert last["position"] == pytest.approx(-0.003)
    # 2 lots round trip: (100.02 - 100.10) x 0.002
    assert last["realized"] == pytest.approx((100.02 - 100.10) * 0.002)
    # short 0.003 marked at the final mid (100.02 + 100.12) / 2 = 100.07
    assert last["mid"] == pytest.approx(100.07)
    assert last["unrealized"] == pytest.approx((100.02 - 100.07) * 0.003)
    assert last["equity"] == pytest.approx(last["realized"] + last["unrealized"] - last["fees"])


# ---------------------------------------------------------------------------------------------
# Replace, cancel before dispatch, sampling


class ReplaceAfterPartialFill(Strategy):
    """A GTC bid of 3 at the best bid; when 2 fill, replace it to 99.90 with total qty 4."""

    updates: list = []

    def on_book(self, ctx, instrument):
        if not getattr(self, "sent", False):
            self.sent = True
            self.id = ctx.submit_limit(instrument, BID, 10000, 3, GTC)

    def on_order(self, ctx, update):
        ReplaceAfterPartialFill.updates.append(
            (update.kind, update.qty, update.filled_qty, update.leaves_qty, update.status))
        if update.kind == int(EventKind.ORDER_FILLED) and update.filled_qty == 2:
            assert ctx.replace(self.id, 9990, 4)


def test_replace_keeps_filled_lots_in_the_total(data_root):
    ReplaceAfterPartialFill.updates = []
    rows = book(0.0) + [
        ev(5.0, TRADE, ASK, 10000, 7),  # 7 - 5 ahead: 2 of our 3 fill (core learns at 6 ms)
        ev(8.0, L2_SET, BID, 10000, 3),  # the replace sent at 6 ms arrived at 7 ms, before this
        ev(10.0, TRADE, ASK, 9980, 1),  # through our new price: the remaining 2 fill
        ev(15.0, L2_SET, BID, 9980, 1),
    ]
    ds = write_dataset(data_root, rows)
    result = run(data_root, ds, "ReplaceAfterPartialFill")
    s = T0 + FEED
    got = [(r["kind"], r["ts_event"], r["ts_recv"], r["price_ticks"], r["qty_lots"], r["maker"])
           for r in table(result, "orders")]
    assert got == [
        ("order_submitted", s, s, 10000, 3, False),
        ("order_accepted", s + LAT, s + 2 * LAT, 10000, 3, False),
        ("order_filled", T0 + 5 * MS, T0 + 6 * MS, 10000, 2, True),
        ("replace_submitted", T0 + 6 * MS, T0 + 6 * MS, 9990, 4, False),
        ("order_replaced", T0 + 7 * MS, T0 + 8 * MS, 9990, 4, False),  # new total, fills included
        ("order_filled", T0 + 10 * MS, T0 + 11 * MS, 9990, 2, True),
    ]
    F, R = int(EventKind.ORDER_FILLED), int(EventKind.ORDER_REPLACED)
    assert ReplaceAfterPartialFill.updates[-2:] == [
        (R, 4, 2, 2, int(OrderStatus.PARTIALLY_FILLED)),
        (F, 2, 4, 0, int(OrderStatus.FILLED)),
    ]
    assert table(result, "pnl")[-1]["position"] == pytest.approx(0.004)
    assert result.summary["replaces"] == 1


class CancelBeforeDispatch(Strategy):
    seen: list = []

    def on_book(self, ctx, instrument):
        if not getattr(self, "sent", False):
            self.sent = True
            oid = ctx.submit_limit(instrument, BID, 9000, 1, GTC)
            CancelBeforeDispatch.seen.append((oid, ctx.cancel(oid), ctx.order(oid)))


def test_cancel_of_an_undispatched_submit_removes_it(data_root):
    CancelBeforeDispatch.seen = []
    ds = write_dataset(data_root, book(0.0) + [ev(10.0, L2_SET, BID, 10000, 4)])
    result = run(data_root, ds, "CancelBeforeDispatch")
    (oid, queued, state), = CancelBeforeDispatch.seen
    assert oid != 0 and queued is True and state is None  # never dispatched: no Order yet
    c = result.summary["counters"]
    assert c["queue"]["canceled_before_dispatch"] == 1
    assert c["orders"] == 0 and c["cancels"] == 0 and c["venue"]["messages"] == 0
    assert table(result, "orders") == []


class IocAtFirstBook(Strategy):
    def on_book(self, ctx, instrument):
        if not getattr(self, "sent", False):
            self.sent = True
            ctx.submit_limit(instrument, BID, 10010, 2, IOC)


def test_pnl_sample_at_a_boundary_shows_state_at_that_time(data_root):
    # IOC sent at 0.1 ms fills; the core learns of it at 2.1 ms. Sample interval 2 ms: the
    # boundary at 2 ms is crossed by the event at 3 ms, and at 2 ms the core did not know the fill.
    ds = write_dataset(data_root, book(0.0) + [ev(3.0, L2_SET, BID, 10000, 4)])
    result = run(data_root, ds, "IocAtFirstBook", output={"report": False, "sample_interval": "2ms"})
    pnl = [(r["ts_recv"] - T0, r["position"]) for r in table(result, "pnl")]
    fill_at = table(result, "fills")[0]["ts_recv"] - T0
    assert fill_at == FEED + 2 * LAT
    assert pnl[0] == (FEED, 0.0) and pnl[-1][1] == pytest.approx(0.002)
    at_2ms = [p for t, p in pnl if t == 2 * MS]
    assert at_2ms == [0.0]


class RaisesOnStop(Strategy):
    def on_book(self, ctx, instrument):
        if not getattr(self, "sent", False):
            self.sent = True
            ctx.submit_market(instrument, BID, 2)

    def on_stop(self, ctx):
        ctx.submit_limit(0, BID, 9000, 1, GTC)  # dispatched? no: the hook fails
        raise KeyError("stop-failed")


def test_exception_in_on_stop_marks_the_run_incomplete(data_root):
    ds = write_dataset(data_root, book(0.0) + [ev(10.0, L2_SET, BID, 10000, 4)])
    with pytest.raises(BacktestFailed, match="stop-failed") as info:
        run(data_root, ds, "RaisesOnStop")
    res = info.value.result
    assert (run_dir(res) / "INCOMPLETE").is_file()
    assert res.summary["events"] == 3 and res.summary["complete"] is False
    rows = table(res, "orders")
    # the market order: submitted without a price, filled at the ask as taker
    assert [(r["kind"], r["price_ticks"], r["qty_lots"]) for r in rows] == [
        ("order_submitted", 0, 2), ("order_accepted", 0, 2), ("order_filled", 10010, 2),
    ]
    assert res.summary["orders"] == 1


# ---------------------------------------------------------------------------------------------
# The venue's order-entry rules: Risk denies, and the simulated venue rejects on its own

# Data grid 0.01 / 0.001; order entry: tick 0.05, lot 0.002, min qty 0.004, min notional 3
# (in data units: tick 5, lot 2, min qty 4, min notional 3 / 0.00001 = 300000 ticks x lots).
RULES = {"tick_size": "0.05", "lot_size": "0.002", "min_qty": "0.004", "min_notional": "3"}
ORDERS = {"ok": (9995, 40), "off_tick": (9999, 40), "off_lot": (9995, 41),
          "below_min_qty": (9995, 2), "below_min_notional": (5000, 40)}


class RuleBreaker(Strategy):
    """At the first book, one resting bid per ORDERS entry, in that order."""

    results: dict = {}

    def on_book(self, ctx, instrument):
        if not RuleBreaker.results:
            for name, (price, qty) in ORDERS.items():
                RuleBreaker.results[name] = (ctx.submit_limit(instrument, BID, price, qty, GTC),
                                             ctx.last_denial)


def rules_dataset(data_root, rules=RULES):
    rows = book(0.0) + [ev(10.0, L2_SET, BID, 10000, 4)]  # a later event lets the answers land
    return write_dataset(data_root, rows, name="rules", order_rules=rules)


def test_risk_denies_orders_that_break_the_order_entry_rules(data_root):
    RuleBreaker.results = {}
    result = run(data_root, rules_dataset(data_root), "RuleBreaker")
    got = RuleBreaker.results
    assert got["ok"][0] != 0 and got["ok"][1] == 0
    for name in ORDERS:
        if name != "ok":
            assert got[name] == (0, int(RiskReason[name.upper()])), name
    assert [d["reason"] for d in table(result, "denials")] == [n for n in ORDERS if n != "ok"]
    assert [r["kind"] for r in table(result, "orders")] == ["order_submitted", "order_accepted"]


def test_the_venue_rejects_orders_that_break_its_rules_when_risk_lets_them_through(data_root, monkeypatch):
    """Risk told no rules (as if its checks were off): every order reaches the simulated venue,
    which rejects each breach with its own reason and accepts the good order."""
    from lockstep.backtest import runner
    from lockstep.core.risk import OrderRules

    configure = runner.configure_engine

    def without_risk_rules(engine, *args):
        configure(engine, *args)
        engine.set_order_rules(0, OrderRules())

    monkeypatch.setattr(runner, "configure_engine", without_risk_rules)
    RuleBreaker.results = {}
    result = run(data_root, rules_dataset(data_root), "RuleBreaker")
    assert all(oid != 0 for oid, _ in RuleBreaker.results.values())
    answers = {r["order_id"]: r for r in table(result, "orders") if r["kind"] != "order_submitted"}
    got = {name: (answers[oid]["kind"], answers[oid]["reason"]) for name, (oid, _) in RuleBreaker.results.items()}
    assert got == {"ok": ("order_accepted", 0),
                   "off_tick": ("order_rejected", int(MatchReject.OFF_TICK)),
                   "off_lot": ("order_rejected", int(MatchReject.OFF_LOT)),
                   "below_min_qty": ("order_rejected", int(MatchReject.BELOW_MIN_QTY)),
                   "below_min_notional": ("order_rejected", int(MatchReject.BELOW_MIN_NOTIONAL))}
    assert result.summary["counters"]["venue"]["rejected"] == 4


def test_config_overrides_and_removes_rules_and_a_dataset_without_rules_is_not_checked(data_root):
    RuleBreaker.results = {}
    # the config lifts the tick and the minimum notional: those two orders now pass
    run(data_root, rules_dataset(data_root), "RuleBreaker",
        venue={"order_rules": {"TST": {"tick_size": "0", "min_notional": 0}}})
    assert {n for n, (oid, _) in RuleBreaker.results.items() if oid} == {"ok", "off_tick", "below_min_notional"}
    RuleBreaker.results = {}
    run(data_root, rules_dataset(data_root, rules={}), "RuleBreaker")
    assert all(oid != 0 for oid, _ in RuleBreaker.results.values())


def test_a_rule_off_the_data_grid_is_checked_exactly_and_said_so(data_root):
    RuleBreaker.results = {}
    # tick 0.015 on a 0.01 grid: prices must be multiples of 0.03 (3 data ticks)
    with pytest.warns(OrderRulesWarning, match=r"tick_size 0.015 .* multiples of 0.03"):
        run(data_root, rules_dataset(data_root, rules={"tick_size": "0.015"}), "RuleBreaker")
    assert {n for n, (oid, _) in RuleBreaker.results.items() if not oid} == {"ok", "off_lot", "below_min_qty", "below_min_notional"}


class OwnLiquidity(Strategy):
    """Rests one bid, then reads how much of each level is ours once the venue has it."""

    seen: list = []

    def on_book(self, ctx, instrument):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == 1:
            ctx.submit_limit(0, BID, 9000, 3, GTC, 700)
            OwnLiquidity.seen.append(ctx.own_qty(0, BID, 9000))  # not dispatched yet
        elif self.calls == 2:
            OwnLiquidity.seen.append((ctx.own_qty(0, BID, 9000), ctx.own_qty(0, ASK, 9000),
                                      ctx.own_qty(0, BID, 9001), ctx.order(700)[5]))
            with pytest.raises(ValueError, match="side"):
                ctx.own_qty(0, 0, 9000)


def test_context_tells_our_liquidity_at_a_level(data_root):
    OwnLiquidity.seen = []
    rows = book(0.0) + [ev(10.0, L2_SET, BID, 10000, 4)]
    ds = write_dataset(data_root, rows, symbols=("TST",))
    run(data_root, ds, "OwnLiquidity", instruments=["TST"])
    assert OwnLiquidity.seen == [0, (3, 0, 0, int(OrderStatus.ACCEPTED))]
