"""The side-by-side market maker, written for hftbacktest (numba), used by hftbacktest_side_by_side.py.

Strategy (the same rules as lockstep's examples/market_maker_compiled.toml is meant to follow):

* one post-only (GTX) bid at the best bid and one post-only ask at the best ask, `order_qty` each;
* when the touch moves away from a quote, cancel it, and submit a new one at the touch once the
  cancel is answered: a side never has a new quote while its cancel is in flight (one open order
  per side at most);
* position cap: a side is quoted only while filling it cannot take |position| beyond
  `max_position` (no bid once position + order_qty > max_position, no ask once
  position - order_qty < -max_position); a quote on a side that became forbidden is canceled;
* no quotes while either side of the book is empty.

Driving: ``hbt.wait_next_feed(True, timeout)``; the strategy runs after every market-data update
and every order response. hftbacktest's wait_next_feed returns once all events of the next local
timestamp are applied, so the strategy sees the book after each whole venue message (all events of
one message share ``ts_recv``), as lockstep observes books only after a message's LAST event.

Everything runs inside one @njit function: no Python per event.
"""
from __future__ import annotations

import numpy as np
from hftbacktest.order import BUY, CANCELED, GTX, LIMIT, NEW, NONE, PARTIALLY_FILLED
from numba import njit

INT64_MIN = np.iinfo(np.int64).min
INT64_MAX = np.iinfo(np.int64).max
WAIT_TIMEOUT_NS = 3_600_000_000_000  # an hour: wake up only on feed or order response

# indices of the stats array run_market_maker returns
STAT_CALLS = 0
STAT_SUBMITTED = 1
STAT_CANCELS = 2
STAT_LAST_MID = 3
N_STATS = 4


@njit(cache=False)
def run_market_maker(hbt, order_qty: float, max_position: float, stats: np.ndarray) -> int:
    """Runs until the end of the data; fills `stats` (calls, orders submitted, cancels, last mid).
    Returns the last wait_next_feed result (1 = end of data)."""
    asset_no = 0
    eps = order_qty * 1e-6
    next_order_id = 1
    calls = 0
    submitted = 0
    cancels = 0
    last_mid = np.nan
    rc = 0
    while True:
        rc = hbt.wait_next_feed(True, WAIT_TIMEOUT_NS)
        if rc == 1 or rc < 0 or rc > 3:  # end of data, or an error
            break
        calls += 1
        depth = hbt.depth(asset_no)
        bid_tick = depth.best_bid_tick
        ask_tick = depth.best_ask_tick
        book_ok = bid_tick != INT64_MIN and ask_tick != INT64_MAX and bid_tick < ask_tick
        if book_ok:
            last_mid = (bid_tick + ask_tick) * 0.5 * depth.tick_size
        position = hbt.position(asset_no)
        want_bid = book_ok and position + order_qty <= max_position + eps
        want_ask = book_ok and position - order_qty >= -max_position - eps

        hbt.clear_inactive_orders(asset_no)
        have_bid = False
        have_ask = False
        bid_busy = False  # a cancel on that side is in flight: no new quote until it is answered
        ask_busy = False
        values = hbt.orders(asset_no).values()
        while values.has_next():
            order = values.get()
            if order.req == CANCELED:  # a cancel is in flight: the quote is going away
                if order.side == BUY:
                    bid_busy = True
                else:
                    ask_busy = True
                continue
            live = order.status == NEW or order.status == PARTIALLY_FILLED or (
                order.status == NONE and order.req == NEW
            )
            if not live:
                continue
            if order.side == BUY:
                if want_bid and order.price_tick == bid_tick and not have_bid:
                    have_bid = True
                elif order.cancellable:
                    hbt.cancel(asset_no, order.order_id, False)
                    cancels += 1
                    bid_busy = True
            else:
                if want_ask and order.price_tick == ask_tick and not have_ask:
                    have_ask = True
                elif order.cancellable:
                    hbt.cancel(asset_no, order.order_id, False)
                    cancels += 1
                    ask_busy = True
        tick = depth.tick_size
        if want_bid and not have_bid and not bid_busy:
            hbt.submit_buy_order(asset_no, next_order_id, bid_tick * tick, order_qty, GTX, LIMIT, False)
            next_order_id += 1
            submitted += 1
        if want_ask and not have_ask and not ask_busy:
            hbt.submit_sell_order(asset_no, next_order_id, ask_tick * tick, order_qty, GTX, LIMIT, False)
            next_order_id += 1
            submitted += 1
    stats[STAT_CALLS] = calls
    stats[STAT_SUBMITTED] = submitted
    stats[STAT_CANCELS] = cancels
    stats[STAT_LAST_MID] = last_mid
    return rc
