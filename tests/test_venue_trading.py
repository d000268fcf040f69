"""The loopback venue with its order-entry side: OUCH 4.2 orders over SoupBinTCP matched against
the replayed book, fills from replayed trades at their place in the stream with the replay's
timestamps, our resting orders in the feed, the summary's counts, and the command's listen line.
Every socket binds port 0; every loop is bounded in count and in time."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from test_order_entry import Client, enter
from test_venue_feed import LOCKSTEP, FeedReceiver, Running, _cli_env, venue_config

from lockstep.data.dataset import Dataset, DatasetWriter, Instrument
from lockstep.events import EventKind, Side, empty_columns
from lockstep.protocols import ouch42 as ouch
from lockstep.protocols import soupbintcp as soup
from lockstep.venue.loopback.serve import LoopbackVenue
from lockstep.venue.loopback.trading import OrderEntry

DEADLINE_S = 30.0
STOCK = "TEST"
PASSWORD = "s3cretpw"
USERS = [{"username": "ALICE", "password": PASSWORD}]
T0 = 1_700_000_000_000_000_000
NS_PER_DAY = 86_400 * 1_000_000_000
TRADE_AT_S = 2.0


class Remote:
    """What test_order_entry's Client asks of a server, for a venue serving on its own: the
    address, and a poll that only waits."""

    def __init__(self, address: str) -> None:
        self.address = address

    def poll(self, timeout: float) -> None:
        time.sleep(timeout)


def _dataset(root: Path, book: str, rows: list[tuple[float, int, int, int, int, int]]) -> Dataset:
    """(seconds after T0, kind, side, price ticks, qty, order_id) rows, one venue message each,
    on instrument TEST (tick 0.01)."""
    cols = empty_columns(len(rows))
    ts = T0 + np.array([int(r[0] * 1e9) for r in rows], dtype=np.int64)
    cols["ts_event"][:] = cols["ts_recv"][:] = ts
    cols["seq"][:] = np.arange(1, len(rows) + 1)
    cols["instrument"][:] = 0
    cols["flags"][:] = 1
    for name, values in zip(("kind", "side", "price", "qty", "order_id"),
                            zip(*(r[1:] for r in rows), strict=True), strict=True):
        cols[name][:] = values
    name = f"trading-{book}"
    with DatasetWriter(name, [Instrument(symbol=STOCK, venue="TEST", price_increment="0.01",
                                         size_increment="1", book=book)], data=str(root)) as w:
        w.write(cols)
    return Dataset.open(name, data=str(root))


def _l2_market(root: Path) -> Dataset:
    """Asks 100.00 x 300 and 100.01 x 500, bid 99.99 x 200; at TRADE_AT_S a sell of 450 prints at
    99.99; the last event a second later."""
    s = EventKind.L2_SET
    return _dataset(root, "l2", [
        (0.0, s, Side.ASK, 10_000, 300, 0), (0.0, s, Side.ASK, 10_001, 500, 0),
        (0.0, s, Side.BID, 9_999, 200, 0),
        (TRADE_AT_S, EventKind.TRADE, Side.ASK, 9_999, 450, 0),
        (TRADE_AT_S + 1.0, s, Side.ASK, 10_001, 400, 0),
    ])


def _sequenced(client: Client, count: int) -> list:
    """The next `count` packets that are not heartbeats (the venue heartbeats while idle)."""
    got: list = []
    for _ in range(count + 100):
        if len(got) == count:
            break
        (packet,) = client.receive(1)
        if not isinstance(packet, soup.ServerHeartbeat):
            got.append(packet)
    assert len(got) == count, got
    return got


def _messages(client: Client, count: int) -> list[ouch.Outbound]:
    packets = _sequenced(client, count)
    assert all(isinstance(p, soup.SequencedData) for p in packets), packets
    return [ouch.decode_outbound(p.payload) for p in packets]


def _login(address: str) -> Client:
    client = Client(Remote(address))
    assert isinstance(client.login("ALICE", PASSWORD, sequence=1), soup.LoginAccepted)
    (start,) = _messages(client, 1)
    assert isinstance(start, ouch.SystemEvent) and start.event_code == "S"
    return client


def test_orders_execute_against_the_replayed_book_and_fill_from_replayed_trades(tmp_path):
    ds = _l2_market(tmp_path / "root")
    receiver = FeedReceiver()
    venue = LoopbackVenue(venue_config(ds, receiver, speed=1.0, linger="0s", users=USERS))
    venue.attach(OrderEntry(venue.feed))
    running = Running(venue, DEADLINE_S)
    client = _login(venue.addresses["order_entry"])
    # Takes 100 of the 300 offered at 100.00.
    client.enter(enter("T1", side="B", shares=100, price="100.00", tif=0, stock=STOCK))
    accepted, executed = _messages(client, 2)
    assert isinstance(accepted, ouch.Accepted) and accepted.token == "T1"
    assert (executed.token, executed.executed_shares, executed.execution_price,
            executed.liquidity_flag) == ("T1", 100, 1_000_000, "R")
    assert executed.timestamp == T0 % NS_PER_DAY  # the replay's clock: only the t=0 events sent
    # Rests behind the 200 bid at 99.99: the print of 450 there fills all 250 of it.
    client.enter(enter("R1", side="B", shares=250, price="99.99", stock=STOCK))
    (rested,) = _messages(client, 1)
    assert isinstance(rested, ouch.Accepted) and rested.order_state == "L"
    (filled,) = _messages(client, 1)
    assert (filled.token, filled.executed_shares, filled.execution_price,
            filled.liquidity_flag) == ("R1", 250, 999_900, "A")
    assert filled.timestamp == (T0 + int(TRADE_AT_S * 1e9)) % NS_PER_DAY
    summary = running.finish()
    # End of the session: System Event E, then End of Session.
    end_event, end = _sequenced(client, 2)
    assert ouch.decode_outbound(end_event.payload).event_code == "E"
    assert isinstance(end, soup.EndOfSession)
    assert (summary["orders"], summary["fills"], summary["sessions"]) == (2, 2, 1)
    receiver.close()


@pytest.mark.parametrize("show", [True, False])
def test_a_resting_order_shows_in_the_feed_unless_turned_off(tmp_path, show):
    ds = _dataset(tmp_path / "root", "l3", [
        (0.0, EventKind.L3_ADD, Side.BID, 9_999, 200, 1),
        (0.0, EventKind.L3_ADD, Side.ASK, 10_000, 300, 2),
        (1.0, EventKind.L3_ADD, Side.ASK, 10_001, 500, 3),
    ])
    receiver = FeedReceiver()
    venue = LoopbackVenue(venue_config(ds, receiver, speed=1.0, linger="0s", users=USERS,
                                       show_own_orders=show))
    venue.attach(OrderEntry(venue.feed))
    running = Running(venue, DEADLINE_S)
    client = _login(venue.addresses["order_entry"])
    client.enter(enter("R1", side="B", shares=70, price="99.98", stock=STOCK))
    (accepted,) = _messages(client, 1)
    assert accepted.order_state == "L"
    client.enter(ouch.CancelOrder("R1", 0))
    (canceled,) = _messages(client, 1)
    assert isinstance(canceled, ouch.Canceled) and canceled.decrement_shares == 70
    receiver.pump(DEADLINE_S, idle=0.3)  # until the feed's End of Session (1 s of replay)
    summary = running.finish()
    receiver.close()
    messages = [m for _, m in sorted(receiver.messages.items())]
    # Add Order: reference [11:19], side [19], shares [20:24], price [32:36].
    ours = [m for m in messages if m[:1] == b"A" and m[19:20] == b"B"
            and int.from_bytes(m[20:24], "big") == 70 and int.from_bytes(m[32:36], "big") == 999_800]
    deletes = [m for m in messages if m[:1] == b"D"]
    if show:
        assert len(ours) == 1
        assert [d[11:19] for d in deletes] == [ours[0][11:19]]  # the cancel took it off
    else:
        assert ours == [] and deletes == []
    assert summary["skipped"] == {}
    assert (summary["orders"], summary["fills"]) == (1, 0)


def test_cli_reports_the_order_entry_address_and_trades(tmp_path):
    ds = _l2_market(tmp_path / "root")
    cfg = tmp_path / "venue.toml"
    cfg.write_text('[venue]\nspeed = 0.01\nlinger = "60s"\n'
                   f'users = [{{username = "ALICE", password = "{PASSWORD}"}}]\n')
    proc = subprocess.Popen([LOCKSTEP, "venue", "serve", str(cfg), "--dataset", ds.path, "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_cli_env(), cwd=tmp_path)
    try:
        listening = json.loads(proc.stdout.readline())
        address = listening["order_entry"]
        assert address.startswith("tcp://127.0.0.1:") and not address.endswith(":0")
        client = _login(address)
        client.enter(enter("T1", side="B", shares=120, price="100.01", tif=0, stock=STOCK))
        accepted, executed = _messages(client, 2)
        assert isinstance(accepted, ouch.Accepted)
        # The book's best ask is 100.00 x 300: all 120 there, none at 100.01.
        assert (executed.executed_shares, executed.execution_price) == (120, 1_000_000)
        os.kill(proc.pid, signal.SIGTERM)
        end_event, end = _sequenced(client, 2)
        assert ouch.decode_outbound(end_event.payload).event_code == "E"
        assert isinstance(end, soup.EndOfSession)
        out, err = proc.communicate(timeout=DEADLINE_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(DEADLINE_S)
    assert proc.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert (summary["orders"], summary["fills"], summary["sessions"]) == (1, 1, 1)


def test_a_fill_of_our_shown_order_goes_out_as_order_executed(tmp_path):
    """Like a real venue's: the fill is an 'E' of our order's reference, with a match number,
    not a cancel or delete of it."""
    ds = _dataset(tmp_path / "root", "l3", [
        (0.0, EventKind.L3_ADD, Side.BID, 9_999, 200, 1),
        (0.0, EventKind.L3_ADD, Side.ASK, 10_001, 300, 2),
        (1.0, EventKind.L3_ADD, Side.BID, 9_998, 50, 3),
        (2.0, EventKind.L3_EXECUTE, Side.BID, 9_998, 50, 3),  # a worse bid trades: we fill first
        (3.0, EventKind.L3_ADD, Side.ASK, 10_002, 10, 4),
    ])
    receiver = FeedReceiver()
    venue = LoopbackVenue(venue_config(ds, receiver, speed=1.0, linger="0s", users=USERS))
    venue.attach(OrderEntry(venue.feed))
    running = Running(venue, DEADLINE_S)
    client = _login(venue.addresses["order_entry"])
    client.enter(enter("R1", side="B", shares=70, price="99.99", stock=STOCK))
    (accepted,) = _messages(client, 1)
    assert accepted.order_state == "L"
    (executed,) = _messages(client, 1)
    assert (executed.token, executed.executed_shares, executed.liquidity_flag) == ("R1", 70, "A")
    receiver.pump(DEADLINE_S, idle=0.3)
    summary = running.finish()
    receiver.close()
    messages = [m for _, m in sorted(receiver.messages.items())]
    # Add Order: reference [11:19], side [19], shares [20:24]; Order Executed: reference [11:19],
    # shares [19:23], match number [23:31].
    (ours,) = [m for m in messages if m[:1] == b"A" and int.from_bytes(m[20:24], "big") == 70]
    about_ours = [m for m in messages if m[:1] in b"EXDU" and m[11:19] == ours[11:19]]
    assert [m[:1] for m in about_ours] == [b"E"]
    assert int.from_bytes(about_ours[0][19:23], "big") == 70
    executions = [m for m in messages if m[:1] == b"E"]
    # the dataset's execution of order 3 first (the event that filled us), then ours
    assert executions[-1] is about_ours[0] and len(executions) == 2
    assert int.from_bytes(executions[1][23:31], "big") == int.from_bytes(executions[0][23:31], "big") + 1
    assert (summary["orders"], summary["fills"]) == (1, 1)
