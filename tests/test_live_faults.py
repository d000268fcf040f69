"""The live node's faults. In the live core (deterministic, from protocol bytes): orders while
order entry is down, the reconcile after the re-login, a feed session change. End to end on
loopback (`lockstep venue serve` and `lockstep live` as subprocesses, relays in this process
between them on port 0): the order-entry session cut with fills in flight, feed gaps recovered
and not, a strategy that raises, a venue gone silent; each session's journal replayed."""
from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from live_util import ANSWER_NS, EXAMPLES, ScriptedVenue, day_start, deliver, drive, feed_packets, session_for
from test_live_node import LOCKSTEP, PASSWORD, Venue, _config, _env, live_cmd, replay

from lockstep.backtest.artifacts import read_artifact
from lockstep.data.synth import generate
from lockstep.enums import RiskReason
from lockstep.live.journal import DECISION, DECISION_FIELDS, read_journal
from lockstep.live.replay import replay_journal
from lockstep.protocols import ouch42 as ouch

START = 10**12
DEADLINE_S = 90


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return generate(20_000, seed=3, data=str(tmp_path_factory.mktemp("faults") / "data"))


@pytest.fixture(scope="module")
def packets(ds):
    return list(feed_packets(ds))


def decisions(journal) -> list[dict]:
    return [dict(zip(DECISION_FIELDS, DECISION.unpack(r.payload), strict=True))
            for r in read_journal(journal) if r.stream == "decision"]


def kinds(messages) -> list[str]:
    return [type(ouch.decode_inbound(m)).__name__ for m in messages]


# ------------------------------------------------------------------------------------------
# the live core


def test_while_order_entry_is_down_orders_are_denied_cancels_wait_and_the_relogin_sends_them(
        ds, packets, tmp_path):
    session, writer = session_for(EXAMPLES / "market_maker.toml", ds, tmp_path / "journal")
    venue = ScriptedVenue(day_start(ds), fill_every=10**9)
    end = drive(session, venue, packets[:30], day_start(ds) + START)
    assert session.ctx.open_orders(0) == 2
    assert session.on_order_entry(False, end) == []
    # the market moves on: the strategy cancels its quotes and quotes anew; nothing may leave
    stamp = end
    for k, (sequence, blocks) in enumerate(packets[30:120]):
        stamp = end + (k + 1) * 20_000
        assert session.on_itch(blocks, sequence, stamp) == []
    assert session.on_kill(True, stamp) == []  # the kill switch's cancels wait too
    assert session.ctx.open_orders(0) == 2  # still open at the venue: no answer came
    sent = session.on_order_entry(True, stamp + 1)
    assert kinds(sent) == ["CancelOrder", "CancelOrder"]
    deliver(session, venue, sent, stamp + 1)
    assert session.ctx.open_orders(0) == 0 == len(venue.orders)
    result = session.close()
    writer.close()
    live = session.counters["live"]
    assert live["order_entry_downs"] == live["order_entry_ups"] == 1 and live["resent"] == 2
    denied = [d for d in decisions(tmp_path / "journal")
              if d["reason"] == RiskReason.ORDER_ENTRY_DOWN]
    assert denied and all(d["intent"] in (1, 2, 4) for d in denied)  # submits, replaces
    assert all(end < d["ts_recv"] <= stamp for d in denied)
    assert replay_journal(tmp_path / "journal").digest == result.digest


def test_the_relogin_sends_again_what_the_venue_may_have_missed_and_nothing_is_doubled(
        ds, packets, tmp_path):
    """Two Enter Orders left just before the drop: the venue got the first (its Accepted was
    lost with the connection and comes back in the re-login's replay), not the second."""
    session, writer = session_for(EXAMPLES / "market_maker.toml", ds, tmp_path / "journal")
    venue = ScriptedVenue(day_start(ds), fill_every=1)
    start = day_start(ds) + START
    stamp = start
    lost: list[bytes] = []
    for k, (sequence, blocks) in enumerate(packets[:30]):
        stamp = start + k * 20_000
        lost += session.on_itch(blocks, sequence, stamp)
        if len(kinds(lost)) >= 2:
            break
    enters = [m for m in lost if kinds([m]) == ["EnterOrder"]]
    assert len(enters) == 2
    replayed = venue.answer(enters[0], stamp)  # received; the answer missed
    assert session.on_order_entry(False, stamp + 1) == []
    for answer in replayed:  # the replay of the new login
        assert session.on_ouch(answer, stamp + 2) == []
    again = session.on_order_entry(True, stamp + 3)
    assert again == [enters[1]]  # only the one without an answer, under its own token
    answers = venue.answer(enters[0], stamp + 3) + venue.answer(again[0], stamp + 3)
    assert len(answers) == 1  # the venue ignored the first's token as used
    for answer in answers:
        session.on_ouch(answer, stamp + 4)
    fills = venue.fills(stamp + 5)
    assert len(fills) == 2
    for fill in fills:
        deliver(session, venue, session.on_ouch(fill, stamp + 5), stamp + 5)
    result = session.close()
    writer.close()
    assert result.fills == 2 and result.orders == len({m.token for m in venue.received
                                                       if isinstance(m, ouch.EnterOrder)})
    assert replay_journal(tmp_path / "journal").digest == result.digest


def test_a_feed_session_change_invalidates_the_books_and_takes_the_new_sessions_numbers(
        ds, packets, tmp_path):
    session, writer = session_for(EXAMPLES / "market_maker.toml", ds, tmp_path / "journal")
    venue = ScriptedVenue(day_start(ds), fill_every=10**9)
    end = drive(session, venue, packets[:30], day_start(ds) + START)
    assert session.ctx.book_valid(0) and session.ctx.open_orders(0) == 2
    sent = session.on_feed_session(end)
    assert kinds(sent) == ["CancelOrder", "CancelOrder"]  # the strategy pulled its quotes
    deliver(session, venue, sent, end)
    assert not session.ctx.book_valid(0)
    # the restarted venue numbers from 1 again: taken, not dropped as duplicates
    before = session.counters["live"]["itch_messages"]
    received = len(venue.received)
    drive(session, venue, packets[:40], end + ANSWER_NS)
    live = session.counters["live"]
    assert live["itch_messages"] > before and live["itch_duplicates"] == 0
    assert live["feed_sessions"] == 1 and not session.ctx.book_valid(0)
    assert venue.received[received:] == []  # no order on levels it cannot see
    result = session.close()
    writer.close()
    assert replay_journal(tmp_path / "journal").digest == result.digest
