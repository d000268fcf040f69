"""lockstep.protocols.order_entry.OrderEntryClient on loopback sockets: against the loopback venue's
order entry, against a SoupBinTCP server we did not write (Nasdaq's nasdaq-protocols, with OUCH
message classes its own generator builds), and against scripted peers that drop, reject, stay
silent or send garbage. Every socket binds port 0; every loop is bounded in count and time."""
from __future__ import annotations

import asyncio
import importlib.util
import logging
import threading
import time

import pytest
from test_order_entry import OUCH_DEFINITIONS, PASSWORD, enter, venue  # noqa: F401 (fixture)

from lockstep.enums import LoginRejectReason, SoupClientState
from lockstep.errors import PeerClosedError
from lockstep.net import TcpListener
from lockstep.protocols import ouch42 as ouch
from lockstep.protocols import soupbintcp as soup
from lockstep.protocols.order_entry import OrderEntryClient
from lockstep.protocols.soup_client import SoupClientConfig

DEADLINE_S = 5.0
CONFIG = SoupClientConfig("ALICE", PASSWORD)


def pump(client, until, what, *others, seconds=DEADLINE_S):
    """Polls the client (and whatever else must run: a server's poll) until `until()` is true;
    returns every message the client received meanwhile."""
    got = []
    end = time.monotonic() + seconds
    for _ in range(200_000):
        got += client.poll(0.001)
        for poll in others:
            poll()
        if until(got):
            return got
        if time.monotonic() > end:
            break
    pytest.fail(f"timed out waiting for {what}; received {got}, state {client.state.label}")


def test_our_client_trades_at_the_loopback_venue(venue):  # noqa: F811 (the fixture)
    server, _ = venue
    client = OrderEntryClient(server.address, SoupClientConfig("ALICE", PASSWORD,
                                                               first_sequence=0))
    client.start()
    pump(client, lambda got: client.logged_in, "the login", lambda: server.poll(0))
    assert client.enter(enter("C1", shares=350, price="100.01", tif=0))
    got = pump(client, lambda got: len(got) >= 3, "accepted and two fills",
               lambda: server.poll(0))
    messages = [m for _, m, _ in got]
    assert [type(m) for m in messages] == [ouch.Accepted, ouch.Executed, ouch.Executed]
    assert [(m.executed_shares, m.execution_price) for m in messages[1:]] == [
        (300, 1_000_000), (50, 1_000_100)]
    sequences = [s for s, _, _ in got]
    assert sequences == list(range(sequences[0], sequences[0] + 3))
    assert client.summary()["orders_sent"] == 1
    client.close()


# ------------------------------------------------------------------- a server we did not write

class _NasdaqVenue:
    """A SoupBinTCP server built from nasdaq-protocols' SoupServerSession, answering OUCH Enter
    Orders with Accepted messages of nasdaq-protocols' generated classes; one sequenced stream
    per account, replayed from the sequence number a login asks for."""

    def __init__(self, generated):
        from nasdaq_protocols import soup as nq_soup  # optional test dependency
        from nasdaq_protocols.common import utils as nq_utils
        self.generated = generated
        self.stream: list[bytes] = []
        self.sessions = []
        self.logins: list[int] = []
        self._start_server = nq_utils.start_server
        owner = self

        class Session(nq_soup.SoupServerSession):
            async def on_login(self, msg):
                if msg.user.strip() != "ALICE" or msg.password.strip() != PASSWORD:
                    return nq_soup.LoginRejected(nq_soup.LoginRejectReason.NOT_AUTHORIZED)
                start = int(msg.sequence) or len(owner.stream) + 1
                owner.logins.append(start)
                asyncio.get_running_loop().call_soon(self._replay, start)
                return nq_soup.LoginAccepted("NQ", start)

            def _replay(self, start):
                for payload in owner.stream[start - 1:]:
                    self.send_seq_msg(payload)

            async def on_unsequenced(self, msg):
                # Inbound is "incoming" to this server: read with the class itself.
                order = owner.generated.EnterOrder(
                    owner.generated.EnterOrder.BodyRecord.from_bytes(msg.data[1:])[1])
                accepted = owner.generated.Accepted()
                for name in ("order_token", "side", "shares", "stock", "price", "time_in_force",
                             "firm", "display", "capacity", "intermarket_sweep",
                             "minimum_quantity", "cross_type"):
                    setattr(accepted, name, getattr(order, name))
                for name, value in (("timestamp", 1), ("order_reference", 77),
                                    ("order_state", "L"), ("bbo_weight", " ")):
                    setattr(accepted, name, value)
                self.send_seq_msg(owner.publish(accepted.to_bytes()[1]))

        self.session_class = Session
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def publish(self, payload: bytes) -> bytes:
        self.stream.append(payload)
        return payload

    def _factory(self):
        session = self.session_class()
        self.sessions.append(session)
        return session

    def _run(self):
        asyncio.set_event_loop(self.loop)

        async def main():
            self.server, _ = await self._start_server(("127.0.0.1", 0), self._factory)
            self.port = self.server.sockets[0].getsockname()[1]
            self.ready.set()
        self.loop.run_until_complete(main())
        self.loop.run_forever()

    def start(self):
        self.thread.start()
        assert self.ready.wait(DEADLINE_S)
        return f"tcp://127.0.0.1:{self.port}"

    def call(self, fn):
        """Runs fn() on the server's loop and waits for it."""
        done = threading.Event()

        def run():
            fn()
            done.set()
        self.loop.call_soon_threadsafe(run)
        assert done.wait(DEADLINE_S)

    def stop(self):
        """Closes every session and the server and ends every task of this loop, so that
        nothing of it outlives the test."""
        async def shutdown():
            for session in self.sessions:
                await session.close()
            self.server.close()
            await self.server.wait_closed()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(DEADLINE_S)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(DEADLINE_S)
        self.loop.close()


@pytest.fixture(scope="session")
def nasdaq_ouch(tmp_path_factory):
    """OUCH message classes generated by nasdaq-protocols' own code generator from
    test_order_entry's definitions, under an application name of their own: the generator
    registers classes per process by name, once."""
    pytest.importorskip("nasdaq_protocols")
    from nasdaq_protocols.common.message import (  # optional test dependency
        Generator,
        Parser,
    )

    root = tmp_path_factory.mktemp("nasdaq_ouch")
    (root / "ouch42.xml").write_text(OUCH_DEFINITIONS)
    Generator(Parser.parse(str(root / "ouch42.xml")), "ouch", "lockstep_client", str(root / "gen"),
              "message_soup_app.mustache").generate(extra_context={"record_type": "Record"})
    spec = importlib.util.spec_from_file_location("ouch_lockstep_client",
                                                  root / "gen" / "ouch_lockstep_client.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_our_client_against_a_nasdaq_protocols_server_with_replay_after_a_drop(nasdaq_ouch):
    generated = nasdaq_ouch
    nq = _NasdaqVenue(generated)
    address = nq.start()
    client = OrderEntryClient(address, CONFIG, backoff_initial_s=0.01)
    try:
        client.start()
        pump(client, lambda got: client.logged_in, "the login")
        assert client.enter(enter("NQ1", shares=200, price="99.50"))
        got = pump(client, lambda got: len(got) >= 1, "the Accepted")
        (sequence, accepted, _), = got
        assert sequence == 1 and isinstance(accepted, ouch.Accepted)
        assert (accepted.token, accepted.shares, accepted.price, accepted.order_reference) == (
            "NQ1", 200, 995_000, 77)

        # The venue drops us; two fills happen while we are away.
        def drop_and_fill():
            for session in nq.sessions:
                session.initiate_close()
            for shares, match in ((120, 9001), (80, 9002)):
                executed = generated.Executed()
                for name, value in (("timestamp", 2), ("order_token", "NQ1"),
                                    ("executed_shares", shares), ("execution_price", 995_000),
                                    ("liquidity_flag", "A"), ("match_number", match)):
                    setattr(executed, name, value)
                nq.publish(executed.to_bytes()[1])
        nq.call(drop_and_fill)
        got = pump(client, lambda got: len(got) >= 2, "the fills replayed after re-login")
        assert [(s, m.executed_shares, m.match_number) for s, m, _ in got] == [
            (2, 120, 9001), (3, 80, 9002)]
        assert nq.logins == [1, 2]  # the second login asked for what it had not seen
        assert client.summary()["duplicates"] == 0 and client.summary()["connects"] == 2
        assert pump(client, lambda got: True, "a quiet moment") == []
    finally:
        client.close()
        nq.stop()


# ------------------------------------------------------------------- scripted peers

class Scripted:
    """One-connection SoupBinTCP server on our socket layer; the test says what it sends."""

    def __init__(self):
        self.listener = TcpListener("tcp://127.0.0.1:0")
        self.conn = None
        self.framer = soup.Framer()
        self.received: list[soup.SoupPacket] = []
        self.buffer = bytearray(1 << 16)

    @property
    def address(self):
        return self.listener.address

    def poll(self):
        if self.conn is None:
            self.conn = self.listener.accept()
            if self.conn is None:
                return
            self.framer = soup.Framer()
        try:
            n = self.conn.read_into(self.buffer)
        except PeerClosedError:
            self.conn.close()
            self.conn = None
            return
        if n:
            self.received += [soup.decode(p) for p in self.framer.feed(bytes(self.buffer[:n]))]

    def send(self, data: bytes):
        assert self.conn.write(data)

    def close(self):
        if self.conn is not None:
            self.conn.close()
        self.listener.close()


@pytest.fixture
def scripted():
    server = Scripted()
    yield server
    server.close()


def _login(client, server):
    client.start()
    pump(client, lambda got: server.received, "the login request", server.poll)
    assert isinstance(server.received[-1], soup.LoginRequest)
    server.send(soup.encode(soup.LoginAccepted("S1", 1)))
    pump(client, lambda got: client.logged_in, "logged in", server.poll)


def test_garbage_from_the_venue_is_logged_with_its_offset_then_we_reconnect(scripted, caplog):
    client = OrderEntryClient(scripted.address, CONFIG, backoff_initial_s=0.01)
    _login(client, scripted)
    first = scripted.conn
    scripted.send(b"\x00\x00garbage")  # a zero length prefix at stream offset 33
    with caplog.at_level(logging.WARNING, "lockstep.protocols.order_entry"):
        pump(client, lambda got: scripted.conn is not None and scripted.conn is not first
             and len(scripted.received) >= 2, "the reconnect", scripted.poll)
    assert "bad_length at stream offset 33" in caplog.text
    assert scripted.address.split("//")[1].split(":")[0] in caplog.text
    assert isinstance(scripted.received[-1], soup.LoginRequest)
    assert scripted.received[-1].sequence == 1
    client.close(logout=False)


def test_an_unreadable_ouch_message_is_counted_and_skipped(scripted, caplog):
    client = OrderEntryClient(scripted.address, CONFIG)
    _login(client, scripted)
    good = ouch.encode(ouch.SystemEvent(1, "S"))
    scripted.send(soup.encode(soup.SequencedData(b"S\x00\x01")) +
                  soup.encode(soup.SequencedData(good)))
    with caplog.at_level(logging.WARNING, "lockstep.protocols.order_entry"):
        got = pump(client, lambda got: got, "the good message", scripted.poll)
    assert [(s, m) for s, m, _ in got] == [(2, ouch.SystemEvent(1, "S"))]
    assert "sequenced message 1: truncated" in caplog.text
    assert client.summary()["bad_messages"] == 1 and client.next_sequence == 3
    client.close()


def test_a_rejected_login_is_final_and_says_why(scripted):
    client = OrderEntryClient(scripted.address, CONFIG, backoff_initial_s=0.01)
    client.start()
    pump(client, lambda got: scripted.received, "the login request", scripted.poll)
    scripted.send(soup.encode(soup.LoginRejected(LoginRejectReason.NOT_AUTHORIZED)))
    pump(client, lambda got: client.state is SoupClientState.REJECTED, "the rejection",
         scripted.poll)
    assert client.reject_reason is LoginRejectReason.NOT_AUTHORIZED
    assert client.reconnect_due_ns is None and client.fileno() == -1
    assert not client.enter(enter("X1")) and client.summary()["not_sent"] == 1
    assert PASSWORD not in repr(client)


def test_heartbeats_go_out_and_a_silent_venue_is_left(scripted, caplog):
    client = OrderEntryClient(scripted.address, SoupClientConfig(
        "ALICE", PASSWORD, heartbeat_interval_ns=20_000_000, server_timeout_ns=200_000_000),
        backoff_initial_s=10.0, backoff_max_s=10.0)
    _login(client, scripted)
    with caplog.at_level(logging.WARNING, "lockstep.protocols.order_entry"):
        pump(client, lambda got: client.fileno() == -1, "the timeout", scripted.poll)
    heartbeats = [p for p in scripted.received if isinstance(p, soup.ClientHeartbeat)]
    assert len(heartbeats) >= 3
    assert "nothing received for" in caplog.text
    assert client.reconnect_due_ns is not None
    client.close()


def test_a_refused_connection_is_retried_with_backoff(caplog):
    listener = TcpListener("tcp://127.0.0.1:0")
    address = listener.address
    listener.close()  # nothing listens there now
    client = OrderEntryClient(address, CONFIG, backoff_initial_s=0.005, backoff_max_s=0.02)
    with caplog.at_level(logging.WARNING, "lockstep.protocols.order_entry"):
        client.start()
        pump(client, lambda got: client.summary()["connect_failures"] >= 3, "three refusals")
    assert "connect failed" in caplog.text and not client.logged_in
    client.close()
