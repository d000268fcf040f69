"""The loopback venue's order entry on real loopback sockets: SoupBinTCP sessions (logins and
their refusals, replay on re-login, heartbeats, timeouts, peers that break the protocol) and
OUCH 4.2 orders matched against a book the test sets up. Every socket binds port 0; every loop
is bounded in count and in time."""
from __future__ import annotations

import asyncio
import importlib.util
import logging
import threading
import time

import pytest

from lockstep.core.books import L2Book, L3Book
from lockstep.data.dataset import Instrument
from lockstep.enums import LoginRejectReason
from lockstep.errors import PeerClosedError
from lockstep.events import Side
from lockstep.net import TcpConnection
from lockstep.protocols import ouch42 as ouch
from lockstep.protocols import soupbintcp as soup
from lockstep.venue.loopback.order_entry import Market, MatchingOrderHandler, OrderEntryServer
from lockstep.venue.loopback.sessions import Account, SequencedStream
from lockstep.venue.matching import L2Matcher, L3Matcher

DEADLINE_S = 5.0
PASSWORD = "s3cretpw"
USERS = [Account("ALICE", PASSWORD), Account("BOB", "hunter2")]
STOCK = "TEST"
# Price increment 0.01: 100.00 is 10_000 ticks in the book and 1_000_000 in OUCH's Price(4).
INSTRUMENT = Instrument(STOCK, "loopback", price_increment="0.01", size_increment="1")


def _ticks(price: str) -> int:
    return INSTRUMENT.to_ticks(price)


def _ouch_price(price: str) -> int:
    return int(float(price) * 10_000 + 0.5)


class Clock:
    """A session clock the test moves: ns since midnight for OUCH timestamps."""

    def __init__(self) -> None:
        self.ns = 34_200_000_000_000  # 09:30

    def __call__(self) -> int:
        self.ns += 1_000
        return self.ns


@pytest.fixture
def venue():
    book = L2Book()
    book.set(Side.ASK, _ticks("100.00"), 300)
    book.set(Side.ASK, _ticks("100.01"), 500)
    book.set(Side.BID, _ticks("99.99"), 200)
    market = Market(INSTRUMENT, book, L2Matcher())
    handler = MatchingOrderHandler([market], clock_ns=Clock())
    server = OrderEntryServer("tcp://127.0.0.1:0", USERS, handler, heartbeat_interval=30.0)
    yield server, market
    server.close()


class Client:
    """A SoupBinTCP client built on our socket layer and codecs; it drives the server's poll
    while it waits, so one thread runs both."""

    def __init__(self, server: OrderEntryServer) -> None:
        self.server = server
        self.conn = TcpConnection(server.address)
        self.framer = soup.Framer()
        self.buffer = bytearray(1 << 16)
        self.closed = False
        self.inbox: list[soup.SoupPacket] = []
        self._until(self.conn.finish_connect, "the connection")

    def _until(self, predicate, what: str, seconds: float = DEADLINE_S):
        end = time.monotonic() + seconds
        for _ in range(200_000):
            got = predicate()
            if got:
                return got
            if time.monotonic() > end:
                break
            self.server.poll(0.001)
        pytest.fail(f"timed out waiting for {what}")

    def send(self, packet: soup.SoupPacket) -> None:
        assert self.conn.write(soup.encode(packet))

    def enter(self, order: ouch.Inbound) -> None:
        self.send(soup.UnsequencedData(ouch.encode(order)))

    def login(self, username="ALICE", password=PASSWORD, session="", sequence=1):
        self.send(soup.LoginRequest(username, password, session, sequence))
        return self.receive(1)[0]

    def _pump(self) -> None:
        if self.closed:
            return
        try:
            n = self.conn.read_into(self.buffer)
        except PeerClosedError:
            self.closed = True
            return
        if n:
            self.inbox.extend(soup.decode(p) for p in self.framer.feed(bytes(self.buffer[:n])))

    def _take(self, count: int | None = None) -> list[soup.SoupPacket]:
        count = len(self.inbox) if count is None else count
        got, self.inbox = self.inbox[:count], self.inbox[count:]
        return got

    def receive(self, count: int, seconds: float = DEADLINE_S) -> list[soup.SoupPacket]:
        def step():
            self._pump()
            return len(self.inbox) >= count or self.closed
        self._until(step, f"{count} packets (got {self.inbox})", seconds)
        got = self._take(count)
        assert len(got) == count, got
        return got

    def messages(self, count: int) -> list[ouch.Outbound]:
        packets = self.receive(count)
        assert all(isinstance(p, soup.SequencedData) for p in packets), packets
        return [ouch.decode_outbound(p.payload) for p in packets]

    def quiet(self, seconds: float = 0.05) -> list[soup.SoupPacket]:
        """What arrives within `seconds` (the server polled meanwhile)."""
        end = time.monotonic() + seconds
        for _ in range(10_000):
            if time.monotonic() > end:
                break
            self.server.poll(0.001)
            self._pump()
        return self._take()

    def wait_closed(self, seconds: float = DEADLINE_S) -> list[soup.SoupPacket]:
        def step():
            self._pump()
            return self.closed
        self._until(step, "the server to close the connection", seconds)
        return self._take()

    def close(self) -> None:
        """Closes our end and lets the server notice."""
        self.conn.close()
        self.closed = True
        for _ in range(20):
            self.server.poll(0.001)


def enter(token: str, side="B", shares=100, price="100.00", tif=99999, stock=STOCK,
          display="Y", minimum_quantity=0) -> ouch.EnterOrder:
    return ouch.EnterOrder(token, side, shares, stock, _ouch_price(price), tif, "FIRM", display,
                           "A", "N", minimum_quantity, "N", "R")


def logged_in(server: OrderEntryServer, username="ALICE", password=PASSWORD) -> Client:
    """A client logged in from the next message on (the start-of-day event skipped)."""
    client = Client(server)
    assert isinstance(client.login(username, password, sequence=0), soup.LoginAccepted)
    return client


# ------------------------------------------------------------------------------------ logins


def test_login_accepted_replays_the_stream_from_the_sequence_asked(venue):
    server, _ = venue
    client = Client(server)
    accepted = client.login(sequence=1)
    assert accepted == soup.LoginAccepted("LOOPBACK", 1)
    (event,) = client.messages(1)
    assert isinstance(event, ouch.SystemEvent) and event.event_code == "S"
    assert server.soup.logged_in == ["ALICE"]


def test_login_with_sequence_zero_starts_at_the_next_message(venue):
    server, _ = venue
    client = Client(server)
    assert client.login(sequence=0) == soup.LoginAccepted("LOOPBACK", 2)
    assert client.quiet() == []


@pytest.mark.parametrize("username, password, session, reason", [
    ("ALICE", "wrong", "", LoginRejectReason.NOT_AUTHORIZED),
    ("MALLET", PASSWORD, "", LoginRejectReason.NOT_AUTHORIZED),
    ("ALICE", PASSWORD, "OTHERDAY", LoginRejectReason.SESSION_NOT_AVAILABLE),
])
def test_login_rejected_with_its_reason_and_the_connection_closed(venue, caplog, username,
                                                                  password, session, reason):
    server, _ = venue
    client = Client(server)
    with caplog.at_level(logging.WARNING, "lockstep.venue.loopback"):
        assert client.login(username, password, session) == soup.LoginRejected(reason)
        client.wait_closed()
    assert server.soup.logged_in == []
    assert server.summary()["login_rejects"] == 1
    assert PASSWORD not in caplog.text and "wrong" not in caplog.text
    assert "login rejected" in caplog.text


def test_a_second_connection_of_a_logged_in_account_gets_session_not_available(venue):
    server, _ = venue
    first = logged_in(server)
    second = Client(server)
    assert second.login() == soup.LoginRejected(LoginRejectReason.SESSION_NOT_AVAILABLE)
    second.wait_closed()
    first.enter(enter("T1", price="99.00"))
    assert isinstance(first.messages(1)[0], ouch.Accepted)


def test_passwords_stay_out_of_reprs():
    assert PASSWORD not in repr(USERS[0])
    with pytest.raises(ValueError, match="password"):
        Account("ALICE", "longer than ten")


# ------------------------------------------------------------------------------------ orders


def test_a_resting_order_is_accepted_live_with_its_fields_echoed(venue):
    server, market = venue
    client = logged_in(server)
    client.enter(enter("ORD1", side="B", shares=200, price="99.50"))
    (accepted,) = client.messages(1)
    assert isinstance(accepted, ouch.Accepted)
    assert (accepted.token, accepted.side, accepted.shares, accepted.stock, accepted.price,
            accepted.time_in_force, accepted.order_state) == (
        "ORD1", "B", 200, STOCK, 995_000, 99999, "L")
    (resting,) = market.matcher.orders()
    assert (resting.side, resting.price, resting.qty) == (Side.BID, _ticks("99.50"), 200)


def test_an_executable_ioc_takes_the_book_level_by_level_and_cancels_the_rest(venue):
    server, _ = venue
    client = logged_in(server)
    # Asks: 300 at 100.00, 500 at 100.01; an IOC buy of 1000 up to 100.01 takes both.
    client.enter(enter("IOC1", side="B", shares=1000, price="100.01", tif=0))
    accepted, first, second, canceled = client.messages(4)
    assert isinstance(accepted, ouch.Accepted) and accepted.order_state == "D"
    assert (first.token, first.executed_shares, first.execution_price, first.liquidity_flag) == (
        "IOC1", 300, 1_000_000, "R")
    assert (second.executed_shares, second.execution_price) == (500, 1_000_100)
    assert first.match_number != second.match_number
    assert isinstance(canceled, ouch.Canceled)
    assert (canceled.decrement_shares, canceled.reason) == (200, "I")
    summary = server.summary()
    assert (summary["orders"], summary["fills"], summary["rejects"]) == (1, 2, 0)


def test_a_sell_short_order_sells(venue):
    server, _ = venue
    client = logged_in(server)
    client.enter(enter("SS1", side="T", shares=50, price="99.99", tif=0))
    _, executed = client.messages(2)
    assert (executed.executed_shares, executed.execution_price) == (50, 999_900)


def test_cancel_whole_and_partial(venue):
    server, market = venue
    client = logged_in(server)
    client.enter(enter("A1", shares=300, price="99.00"))
    client.messages(1)
    client.enter(ouch.CancelOrder("A1", 100))  # leave 100 open
    (partial,) = client.messages(1)
    assert (partial.token, partial.decrement_shares, partial.reason) == ("A1", 200, "U")
    assert market.matcher.orders()[0].qty == 100
    client.enter(ouch.CancelOrder("A1", 0))
    (whole,) = client.messages(1)
    assert (whole.decrement_shares, whole.reason) == (100, "U")
    assert market.matcher.orders() == []


def test_replace_moves_the_order_under_its_new_token(venue):
    server, market = venue
    client = logged_in(server)
    client.enter(enter("R1", shares=100, price="99.00"))
    (accepted,) = client.messages(1)
    client.enter(ouch.ReplaceOrder("R1", "R2", 150, _ouch_price("99.50"), 99999, "Y", "N", 0))
    (replaced,) = client.messages(1)
    assert isinstance(replaced, ouch.Replaced)
    assert (replaced.token, replaced.previous_token, replaced.shares, replaced.price,
            replaced.order_state) == ("R2", "R1", 150, 995_000, "L")
    assert replaced.order_reference != accepted.order_reference
    (resting,) = market.matcher.orders()
    assert (resting.price, resting.qty) == (_ticks("99.50"), 150)
    # The old token is spent: cancelling it is ignored; the new one cancels.
    client.enter(ouch.CancelOrder("R1", 0))
    client.enter(ouch.CancelOrder("R2", 0))
    (canceled,) = client.messages(1)
    assert (canceled.token, canceled.decrement_shares) == ("R2", 150)


def test_a_replace_that_crosses_executes_under_the_new_token(venue):
    server, _ = venue
    client = logged_in(server)
    client.enter(enter("X1", shares=100, price="99.00"))
    client.messages(1)
    client.enter(ouch.ReplaceOrder("X1", "X2", 100, _ouch_price("100.00"), 99999, "Y", "N", 0))
    replaced, executed = client.messages(2)
    assert replaced.order_state == "D"
    assert (executed.token, executed.executed_shares, executed.execution_price) == (
        "X2", 100, 1_000_000)


@pytest.mark.parametrize("order, reason", [
    (enter("J1", price="100.005"), "X"),  # off the 0.01 increment
    (enter("J2", price="0"), "X"),
    (enter("J3", shares=0), "O"),  # OUCH 4.2 has no reason of its own; "Z" is above a threshold
    (enter("J4", stock="NOPE"), "S"),
    (enter("J5", display="Q"), "D"),
    (enter("J6", tif=30), "O"),  # timed orders are not modelled
    (enter("J7", side="W"), "O"),
    (enter("J8", minimum_quantity=10), "N"),
    (enter("J9", display="P", price="100.00"), "O"),  # post only that would cross
])
def test_rejects_name_the_reason(venue, order, reason):
    server, market = venue
    client = logged_in(server)
    client.enter(order)
    (rejected,) = client.messages(1)
    assert isinstance(rejected, ouch.Rejected)
    assert (rejected.token, rejected.reason) == (order.token, reason)
    assert market.matcher.orders() == []
    assert server.summary()["rejects"] == 1


def test_token_reuse_and_unknown_tokens_are_ignored_as_ouch_says(venue, caplog):
    server, market = venue
    client = logged_in(server)
    client.enter(enter("D1", price="99.00"))
    client.messages(1)
    with caplog.at_level(logging.WARNING, "lockstep.venue.loopback"):
        client.enter(enter("D1", price="98.00"))  # reused token
        client.enter(ouch.CancelOrder("NOSUCH", 0))
        client.enter(ouch.ReplaceOrder("NOSUCH", "D2", 100, 980_000, 99999, "Y", "N", 0))
        client.enter(enter("D3", price="97.00"))
        (accepted,) = client.messages(1)
    assert accepted.token == "D3"
    assert [o.price for o in market.matcher.orders()] == [_ticks("99.00"), _ticks("97.00")]
    summary = server.summary()
    assert (summary["ignored"], summary["duplicate_tokens"], summary["unknown_tokens"]) == (3, 1, 2)
    assert "reuses token 'D1'" in caplog.text


def test_a_replace_to_a_token_used_before_is_a_duplicate_token(venue):
    server, _ = venue
    client = logged_in(server)
    client.enter(enter("E1", price="99.00"))
    client.enter(enter("E2", price="98.00"))
    client.messages(2)
    client.enter(ouch.ReplaceOrder("E1", "E2", 100, 970_000, 99999, "Y", "N", 0))
    client.enter(ouch.CancelOrder("E1", 0))
    (canceled,) = client.messages(1)  # E1 was left as it was
    assert (canceled.token, canceled.decrement_shares) == ("E1", 100)
    assert (server.summary()["duplicate_tokens"], server.summary()["unknown_tokens"]) == (1, 0)


def _venue_with(instrument: Instrument) -> OrderEntryServer:
    book = L2Book()
    book.set(Side.ASK, _ticks("100.00"), 30)
    handler = MatchingOrderHandler([Market(instrument, book, L2Matcher())], clock_ns=Clock())
    return OrderEntryServer("tcp://127.0.0.1:0", USERS, handler)


def test_a_size_off_the_instruments_lot_rule_is_rejected_as_an_odd_lot():
    server = _venue_with(INSTRUMENT.with_order_rules({"lot_size": "10", "min_qty": "20"}))
    try:
        client = logged_in(server)
        client.enter(enter("L1", shares=15, price="99.00"))
        client.enter(enter("L2", shares=10, price="99.00"))
        client.enter(enter("L3", shares=20, price="99.00"))
        off_lot, below_minimum, accepted = client.messages(3)
    finally:
        server.close()
    # OUCH 4.2's "e": odd lot order restriction
    assert (off_lot.token, off_lot.reason) == ("L1", "e")
    assert (below_minimum.token, below_minimum.reason) == ("L2", "e")
    assert (accepted.token, accepted.shares) == ("L3", 20)


def test_prices_and_shares_are_in_the_feeds_units():
    """One share is one lot of the size increment and a price is ticks x the feed's multiplier
    (docs/loopback-venue.md), whatever the increments are in real units."""
    milli = Instrument(STOCK, "loopback", price_increment="0.05", size_increment="0.001",
                       tick_size="0.10")
    server = _venue_with(milli)
    try:
        client = logged_in(server)
        client.enter(enter("M1", shares=3, price="99.95"))   # off the 0.10 tick rule
        client.enter(enter("M2", shares=3, price="99.93"))   # off the 0.05 data increment
        client.enter(enter("M3", shares=3, price="99.90"))
        off_rule, off_increment, accepted = client.messages(3)
    finally:
        server.close()
    assert (off_rule.token, off_rule.reason) == ("M1", "X")
    assert (off_increment.token, off_increment.reason) == ("M2", "X")
    assert (accepted.token, accepted.shares, accepted.price) == ("M3", 3, 999_000)


def test_tokens_are_per_account(venue):
    server, market = venue
    alice = logged_in(server)
    bob = logged_in(server, "BOB", "hunter2")
    alice.enter(enter("SAME", price="99.00"))
    bob.enter(enter("SAME", price="98.00"))
    assert isinstance(alice.messages(1)[0], ouch.Accepted)
    assert isinstance(bob.messages(1)[0], ouch.Accepted)
    bob.enter(ouch.CancelOrder("SAME", 0))
    assert bob.messages(1)[0].decrement_shares == 100
    assert [o.price for o in market.matcher.orders()] == [_ticks("99.00")]


def test_the_market_filling_a_resting_order_sends_executed_as_maker(venue):
    server, market = venue
    client = logged_in(server)
    client.enter(enter("M1", side="S", shares=100, price="100.00"))
    client.messages(1)
    # 300 ahead of us at 100.00; a print of 350 there fills 50 of ours.
    market.matcher.on_trade(_ticks("100.00"), 350, Side.BID)
    (executed,) = client.messages(1)
    assert (executed.token, executed.executed_shares, executed.execution_price,
            executed.liquidity_flag) == ("M1", 50, 1_000_000, "A")


# ------------------------------------------------------------------------------------ sessions


def test_re_login_replays_exactly_the_missed_sequenced_messages(venue):
    server, market = venue
    client = Client(server)
    client.login(sequence=1)
    client.messages(1)  # start of day: sequence 1
    client.enter(enter("P1", side="S", shares=100, price="100.00"))
    client.messages(1)  # accepted: sequence 2
    client.close()
    assert server.soup.logged_in == []
    # While we are away the market fills us twice (sequences 3 and 4).
    market.matcher.on_trade(_ticks("100.00"), 330, Side.BID)
    server.poll(0)
    market.matcher.on_trade(_ticks("100.00"), 40, Side.BID)
    server.poll(0)
    again = Client(server)
    assert again.login(sequence=3) == soup.LoginAccepted("LOOPBACK", 3)
    first, second = again.messages(2)
    assert (first.executed_shares, second.executed_shares) == (30, 40)
    assert again.quiet() == []
    # And from the start, everything again, in order.
    again.close()
    third = Client(server)
    third.quiet()
    assert third.login(sequence=1) == soup.LoginAccepted("LOOPBACK", 1)
    kinds = [type(m).__name__ for m in third.messages(4)]
    assert kinds == ["SystemEvent", "Accepted", "Executed", "Executed"]
    assert server.summary()["replayed"] == 1 + 2 + 4  # each login from 1 or 3


def test_history_is_bounded_and_an_evicted_sequence_is_refused():
    stream = SequencedStream(3)
    for i in range(5):
        stream.append(bytes([i]))
    assert (stream.first_kept, stream.next_sequence) == (3, 6)
    assert stream.since(4) == [b"\x03", b"\x04"]
    server = OrderEntryServer("tcp://127.0.0.1:0", USERS,
                              MatchingOrderHandler([], clock_ns=Clock()), history=1)
    try:
        server.soup.send("ALICE", b"x")  # sequence 2 pushes out the start of day
        client = Client(server)
        assert client.login(sequence=1) == soup.LoginRejected(
            LoginRejectReason.SESSION_NOT_AVAILABLE)
        again = Client(server)
        assert again.login(sequence=2) == soup.LoginAccepted("LOOPBACK", 2)
    finally:
        server.close()


def test_server_heartbeats_when_idle_and_times_out_a_silent_client():
    server = OrderEntryServer("tcp://127.0.0.1:0", USERS,
                              MatchingOrderHandler([], clock_ns=Clock()),
                              heartbeat_interval=0.05, client_timeout=0.5)
    try:
        client = logged_in(server)
        beats = client.receive(2, seconds=2.0)
        assert beats == [soup.ServerHeartbeat(), soup.ServerHeartbeat()]
        # A client heartbeat keeps the session; silence then ends it.
        client.send(soup.ClientHeartbeat())
        client.wait_closed(seconds=3.0)
        summary = server.summary()
        assert summary["timeouts"] == 1 and summary["heartbeats"] >= 2
    finally:
        server.close()


def test_a_client_that_does_not_read_is_dropped_when_its_write_buffer_fills(caplog):
    server = OrderEntryServer("tcp://127.0.0.1:0", USERS,
                              MatchingOrderHandler([], clock_ns=Clock()), history=4,
                              write_capacity=4096)
    try:
        idle = logged_in(server)  # and never reads again
        payload = b"x" * 1000
        with caplog.at_level(logging.WARNING, "lockstep.venue.loopback"):
            for _ in range(100_000):  # the kernel's buffers take a few MB first
                server.soup.send("ALICE", payload)
                if not server.soup.logged_in:
                    break
        assert server.soup.logged_in == []
        assert "write buffer full (4096 bytes)" in caplog.text
        assert not idle.closed
        assert isinstance(logged_in(server), Client)  # the account can come back
    finally:
        server.close()


def test_an_l3_book_matches_too():
    book = L3Book()
    book.add(1, Side.ASK, _ticks("100.00"), 120)
    book.add(2, Side.ASK, _ticks("100.00"), 80)
    market = Market(INSTRUMENT, book, L3Matcher())
    server = OrderEntryServer("tcp://127.0.0.1:0", USERS,
                              MatchingOrderHandler([market], clock_ns=Clock()))
    try:
        client = logged_in(server)
        client.enter(enter("L3", shares=150, price="100.00", tif=0))
        accepted, executed = client.messages(2)
        assert isinstance(accepted, ouch.Accepted)
        assert (executed.executed_shares, executed.execution_price) == (150, 1_000_000)
    finally:
        server.close()


def test_a_client_that_never_logs_in_times_out():
    server = OrderEntryServer("tcp://127.0.0.1:0", USERS,
                              MatchingOrderHandler([], clock_ns=Clock()), client_timeout=0.2)
    try:
        client = Client(server)
        assert client.wait_closed(seconds=3.0) == []
        assert server.summary()["timeouts"] == 1
    finally:
        server.close()


@pytest.mark.parametrize("garbage, offset, what", [
    (b"\x00\x00", 0, "bad length"),  # a zero length prefix cannot be resynced past
    (b"\xff\xffQ", 0, "oversized"),
    (b"\x00\x01Q", 2, "unknown type"),  # the offset of the type byte
    (soup.encode(soup.UnsequencedData(b"O")), 0, "unsequenced_data before login"),
])
def test_a_garbage_peer_is_dropped_with_its_offset_and_others_keep_trading(
        venue, caplog, garbage, offset, what):
    server, _ = venue
    good = logged_in(server)
    bad = Client(server)
    with caplog.at_level(logging.WARNING, "lockstep.venue.loopback"):
        assert bad.conn.write(garbage)
        bad.wait_closed()
    assert f"at stream offset {offset}" in caplog.text and what in caplog.text
    assert f"peer {bad.conn.address} (not logged in)" in caplog.text
    good.enter(enter("G1", price="99.00"))
    assert isinstance(good.messages(1)[0], ouch.Accepted)
    assert server.summary()["protocol_errors"] == 1


@pytest.mark.parametrize("packet, what", [
    (soup.ServerHeartbeat(), "server_heartbeat from a client at stream offset 52"),
    (soup.LoginRequest("ALICE", PASSWORD, "", 0), "login_request from a client at stream offset 52"),
])
def test_a_logged_in_client_breaking_the_protocol_is_dropped(venue, caplog, packet, what):
    server, _ = venue
    client = logged_in(server)
    client.send(soup.ClientHeartbeat())  # 3 bytes after the 49-byte login
    with caplog.at_level(logging.WARNING, "lockstep.venue.loopback"):
        client.send(packet)
        client.wait_closed()
    assert f"peer {client.conn.address} (ALICE): {what}" in caplog.text
    assert server.soup.logged_in == []


def test_an_unreadable_ouch_message_drops_the_client_naming_the_offset(venue, caplog):
    server, _ = venue
    client = logged_in(server)
    client.send(soup.ClientHeartbeat())  # 3 bytes after the 49-byte login: the next packet at 52
    with caplog.at_level(logging.WARNING, "lockstep.venue.loopback"):
        client.send(soup.UnsequencedData(ouch.encode(enter("T1"))[:20]))
        client.wait_closed()
    # The OUCH message starts 3 bytes into its packet (length 2, type 1) and ends at its byte 20.
    assert "truncated at stream offset 75" in caplog.text


def test_logout_closes_and_the_account_can_log_in_again(venue):
    server, _ = venue
    client = logged_in(server)
    client.send(soup.LogoutRequest())
    client.wait_closed()
    assert server.soup.logged_in == []
    assert isinstance(logged_in(server).quiet(), list)
    assert server.summary()["logouts"] == 1


def test_end_of_session_sends_the_end_of_day_event_then_end_of_session(venue):
    server, _ = venue
    client = logged_in(server)
    client.quiet()
    server.end_session()
    got = client.wait_closed()
    assert [type(p) for p in got] == [soup.SequencedData, soup.EndOfSession]
    assert ouch.decode_outbound(got[0].payload).event_code == "E"


def test_orders_live_at_the_end_of_the_session_are_canceled_for_their_time_in_force(venue):
    server, _ = venue
    client = logged_in(server)
    client.enter(enter("R1", side="B", shares=100, price="99.98", tif=99998))
    client.enter(enter("R2", side="S", shares=40, price="100.05", tif=99999))
    assert [m.order_state for m in client.messages(2)] == ["L", "L"]
    server.end_session()
    got = client.wait_closed()
    assert [type(p) for p in got] == [soup.SequencedData] * 3 + [soup.EndOfSession]
    canceled = [ouch.decode_outbound(p.payload) for p in got[:2]]
    # OUCH 4.2's reason for an order whose time in force ended: T (timeout)
    assert [(c.token, c.decrement_shares, c.reason) for c in canceled] == [
        ("R1", 100, "T"), ("R2", 40, "T")]
    assert ouch.decode_outbound(got[2].payload).event_code == "E"
    assert server.summary()["expired"] == 2


def test_summary_counts_what_happened(venue):
    server, _ = venue
    client = logged_in(server)
    client.enter(enter("S1", shares=100, price="100.00", tif=0))
    client.messages(2)
    client.close()
    summary = server.summary()
    assert {k: summary[k] for k in ("sessions", "logins", "orders", "fills", "messages_in",
                                    "disconnects")} == {
        "sessions": 1, "logins": 1, "orders": 1, "fills": 1, "messages_in": 1, "disconnects": 1}
    # Start of day for each of two accounts, then ALICE's accepted and executed.
    assert summary["messages_out"] == 4


# ------------------------------------------------------------------- a client we did not write

OUCH_DEFINITIONS = """<root>
<messages-root>
  <message id="EnterOrder" message-id="O" direction="incoming"><fields>
    <field name="order_token" type="str_ascii_n" length="14"/>
    <field name="side" type="char_ascii"/>
    <field name="shares" type="uint_4_be"/>
    <field name="stock" type="str_ascii_n" length="8"/>
    <field name="price" type="uint_4_be"/>
    <field name="time_in_force" type="uint_4_be"/>
    <field name="firm" type="str_ascii_n" length="4"/>
    <field name="display" type="char_ascii"/>
    <field name="capacity" type="char_ascii"/>
    <field name="intermarket_sweep" type="char_ascii"/>
    <field name="minimum_quantity" type="uint_4_be"/>
    <field name="cross_type" type="char_ascii"/>
    <field name="customer_type" type="char_ascii"/>
  </fields></message>
  <message id="SystemEvent" message-id="S" direction="outgoing"><fields>
    <field name="timestamp" type="uint_8_be"/>
    <field name="event_code" type="char_ascii"/>
  </fields></message>
  <message id="Accepted" message-id="A" direction="outgoing"><fields>
    <field name="timestamp" type="uint_8_be"/>
    <field name="order_token" type="str_ascii_n" length="14"/>
    <field name="side" type="char_ascii"/>
    <field name="shares" type="uint_4_be"/>
    <field name="stock" type="str_ascii_n" length="8"/>
    <field name="price" type="uint_4_be"/>
    <field name="time_in_force" type="uint_4_be"/>
    <field name="firm" type="str_ascii_n" length="4"/>
    <field name="display" type="char_ascii"/>
    <field name="order_reference" type="uint_8_be"/>
    <field name="capacity" type="char_ascii"/>
    <field name="intermarket_sweep" type="char_ascii"/>
    <field name="minimum_quantity" type="uint_4_be"/>
    <field name="cross_type" type="char_ascii"/>
    <field name="order_state" type="char_ascii"/>
    <field name="bbo_weight" type="char_ascii"/>
  </fields></message>
  <message id="Executed" message-id="E" direction="outgoing"><fields>
    <field name="timestamp" type="uint_8_be"/>
    <field name="order_token" type="str_ascii_n" length="14"/>
    <field name="executed_shares" type="uint_4_be"/>
    <field name="execution_price" type="uint_4_be"/>
    <field name="liquidity_flag" type="char_ascii"/>
    <field name="match_number" type="uint_8_be"/>
  </fields></message>
</messages-root>
</root>
"""


_GENERATED: dict = {}  # nasdaq-protocols registers message classes per process: generate once


def _nasdaq_ouch(tmp_path):
    """OUCH message classes generated by nasdaq-protocols' own code generator from the
    definitions above (the fields of the specification's tables), once per process: a second
    generation of the same classes is refused by the library (DuplicateMessageException)."""
    pytest.importorskip("nasdaq_protocols")
    if "module" not in _GENERATED:
        _GENERATED["module"] = _generate_nasdaq_ouch(tmp_path)
    return _GENERATED["module"]


def _generate_nasdaq_ouch(tmp_path):
    from nasdaq_protocols.common.message import Generator, Parser  # optional test dependency

    spec = tmp_path / "ouch42.xml"
    spec.write_text(OUCH_DEFINITIONS)
    Generator(Parser.parse(str(spec)), "ouch", "lockstep_interop", str(tmp_path / "gen"),
              "message_soup_app.mustache").generate(extra_context={"record_type": "Record"})
    path = tmp_path / "gen" / "ouch_lockstep_interop.py"
    module_spec = importlib.util.spec_from_file_location("ouch_lockstep_interop", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def test_nasdaq_protocols_client_logs_in_and_trades(venue, tmp_path):
    generated = _nasdaq_ouch(tmp_path)
    server, _ = venue
    stop = threading.Event()

    def serve():
        for _ in range(100_000):
            if stop.is_set():
                return
            server.poll(0.005)
    thread = threading.Thread(target=serve, daemon=True)
    host, port = server.address.split("//")[1].split(":")

    async def trade():
        session = await generated.connect_async((host, int(port)), "ALICE", PASSWORD, "",
                                                sequence=1)
        try:
            event = await asyncio.wait_for(session.receive_message(), DEADLINE_S)
            order = generated.EnterOrder()
            for name, value in (("order_token", "NQ1"), ("side", "B"), ("shares", 350),
                                ("stock", STOCK), ("price", 1_000_100), ("time_in_force", 0),
                                ("firm", "NQ"), ("display", "Y"), ("capacity", "A"),
                                ("intermarket_sweep", "N"), ("minimum_quantity", 0),
                                ("cross_type", "N"), ("customer_type", "R")):
                setattr(order, name, value)
            session.send_message(order)
            replies = [await asyncio.wait_for(session.receive_message(), DEADLINE_S)
                       for _ in range(3)]
        finally:
            await asyncio.wait_for(session.close(), DEADLINE_S)
        return event, replies

    thread.start()
    try:
        event, (accepted, first, second) = asyncio.run(asyncio.wait_for(trade(), 20))
    finally:
        stop.set()
        thread.join(DEADLINE_S)
    assert type(event).__name__ == "SystemEvent" and event.event_code == "S"
    assert type(accepted).__name__ == "Accepted"
    assert (accepted.order_token, accepted.shares, accepted.price) == ("NQ1", 350, 1_000_100)
    assert [(e.executed_shares, e.execution_price, e.liquidity_flag) for e in (first, second)] \
        == [(300, 1_000_000, "R"), (50, 1_000_100, "R")]
