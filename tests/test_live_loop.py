"""The live node's C++ loop (runtime/live_loop.hpp through lockstep._bindings.live_loop) on real
loopback sockets, in process: the venue's ITCH feed (live_util.feed_packets) sent as MoldUDP64
datagrams; its journal replayed to the same digest; the dispatches written to the order-entry
descriptor as SoupBinTCP Unsequenced Data in order, with what the kernel did not take handed
back whole and in order (a full send buffer, a partial write, a client not ready); each reason
to return to Python; the latency histogram against numpy over the same values."""
from __future__ import annotations

import fcntl
import math
import os
import signal
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from live_util import (
    EXAMPLES,
    SESSION,
    ScriptedVenue,
    day_start,
    feed_packets,
    session_for,
)
from lockstep._bindings.live_loop import LatencyHistogram, LiveLoop

from lockstep._bindings import live_loop as _live_loop
from lockstep.core.strategy import Context, Strategy
from lockstep.data.synth import generate
from lockstep.enums import LoopExit, MoldNoticeKind, SoupClientState, SoupNoticeKind
from lockstep.events import EventKind
from lockstep.live.control import ControlServer
from lockstep.live.journal import (
    EXECUTION,
    EXECUTION_FIELDS,
    STREAMS,
    read_journal,
    split_outbound,
)
from lockstep.live.replay import replay_journal
from lockstep.net import UdpSocket
from lockstep.protocols import moldudp64
from lockstep.protocols import soupbintcp as soup
from lockstep.protocols.mold_receiver import MoldReceiver, MoldReceiverConfig
from lockstep.protocols.soup_client import SoupClient, SoupClientConfig

SESSION_NAME = SESSION.decode().strip()
RUNS = 2000  # bound on every run loop here
NEVER_NS = 10**15  # a time budget no test reaches
MS = 1_000_000


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return generate(20_000, seed=3, data=str(tmp_path_factory.mktemp("loop") / "data"))


@pytest.fixture(scope="module")
def datagrams(ds):
    out = []
    for sequence, blocks in feed_packets(ds):
        messages, pos = [], 0
        while pos < len(blocks):
            n = int.from_bytes(blocks[pos:pos + 2], "big")
            messages.append(blocks[pos + 2:pos + 2 + n])
            pos += 2 + n
        packet, taken = moldudp64.encode_packet(SESSION_NAME, sequence, messages, 2048)
        assert taken == len(messages)
        out.append(packet)
    return out


class Rig:
    """A journaled session of `config` under a LiveLoop on loopback sockets, a sender for its
    feed, and a socket pair standing in for the order-entry connection (`venue` is the far
    end)."""

    def __init__(self, ds, tmp_path, config="market_maker_compiled.toml", *, direct=True,
                 budget_ns=NEVER_NS) -> None:
        self.journal_dir = tmp_path / "journal"
        self.session, self.journal = session_for(EXAMPLES / config, ds, self.journal_dir)
        self.receiver = MoldReceiver(MoldReceiverConfig(session=SESSION_NAME))
        self.feed = UdpSocket("udp://127.0.0.1:0", batch=64, slot_bytes=2048,
                              receive_buffer=8 << 20)
        self.retransmit = UdpSocket("udp://127.0.0.1:0")
        self.sender = UdpSocket("udp://127.0.0.1:0", destination=self.feed.address)
        held = self.receiver.config.hold_packets * self.receiver.config.hold_slot_bytes
        self.loop = LiveLoop(self.session.core, self.receiver, self.feed, self.retransmit,
                             self.journal.native, self.retransmit.address, tick_ns=NEVER_NS,
                             wait_ms=0, busy_poll=False, batch=64, slot_bytes=2048,
                             held_bytes=held)
        self.order_entry, self.venue = socket.socketpair()
        self.order_entry.setblocking(False)
        self.loop.set_order_entry(self.order_entry.fileno(), 1, direct)
        self.budget_ns = budget_ns
        self.exits: list[LoopExit] = []
        self.framed = bytearray()   # handed back already framed
        self.unsent: list[bytes] = []  # handed back as OUCH messages

    def send(self, packets) -> None:
        for p in packets:
            data = np.frombuffer(p, np.uint8)
            assert self.sender.send(data, np.array([len(p)], np.uint32)) == 1

    def run_until_read(self, datagrams: int) -> None:
        """Runs the loop (taking its outputs at each return, as the node does) until it has
        read `datagrams` datagrams."""
        for _ in range(RUNS):
            if self.loop.counters["datagrams"] >= datagrams:
                return
            self.turn(1 << 10)
        raise AssertionError(f"read {self.loop.counters['datagrams']} of {datagrams} datagrams")

    def turn(self, turns: int) -> LoopExit:
        why = LoopExit(self.loop.run(self.budget_ns, turns))
        self.exits.append(why)
        self.session.absorb(self.loop)
        framed, unsent = self.loop.take_unsent()
        self.framed += framed
        self.unsent += split_outbound(unsent)
        self.loop.take_notices()
        return why

    def finish(self):
        result = self.session.close()
        self.journal.close()
        return result

    def dispatched(self) -> list[bytes]:
        return [r.payload for r in read_journal(self.journal_dir) if r.stream == "dispatch"]

    def close(self) -> None:
        for s in (self.feed, self.retransmit, self.sender):
            s.close()
        self.order_entry.close()
        self.venue.close()


def unsequenced(messages: list[bytes]) -> bytes:
    """SoupBinTCP Unsequenced Data packets of `messages`, framed here from the spec."""
    return b"".join((len(m) + 1).to_bytes(2, "big") + b"U" + m for m in messages)


def read_all(sock: socket.socket) -> bytes:
    sock.setblocking(False)
    out = bytearray()
    while True:
        try:
            chunk = sock.recv(1 << 16)
        except BlockingIOError:
            return bytes(out)
        if not chunk:
            return bytes(out)
        out += chunk


@pytest.fixture
def rig_factory(ds, tmp_path):
    rigs = []

    def make(**kw) -> Rig:
        rig = Rig(ds, tmp_path / str(len(rigs)), **kw)
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        rig.close()


# ------------------------------------------------------------------------------------------


def test_the_loops_journal_replays_to_its_digest_and_its_orders_reach_the_socket_in_order(
        rig_factory, datagrams):
    rig = rig_factory()
    batch = datagrams[:300]
    for k in range(0, len(batch), 50):  # the socket's buffer holds each burst
        rig.send(batch[k:k + 50])
        rig.run_until_read(k + len(batch[k:k + 50]))
    result = rig.finish()
    assert replay_journal(rig.journal_dir).digest == result.digest
    dispatched = rig.dispatched()
    assert dispatched and result.orders > 0
    counters = rig.loop.counters
    # everything dispatched in response to the feed went straight to the socket
    assert counters["sent_direct"] == len(dispatched) and counters["handed_back"] == 0
    assert read_all(rig.venue) == unsequenced(dispatched)
    assert counters["datagrams"] == len(batch)
    # one itch input per datagram, journaled with the kernel's receive stamp
    itch = [r for r in read_journal(rig.journal_dir) if r.stream == "itch"]
    assert len(itch) == len(batch) and all(r.receive_ns > 10**18 for r in itch)
    t2t = rig.loop.tick_to_trade
    assert 0 < t2t["count"] <= counters["sent_direct"]
    assert 0 <= t2t["p50_ns"] <= t2t["p99_ns"] <= t2t["p99_9_ns"] <= t2t["max_ns"] < 10**10
    # the loop's part of each: from the read that took the datagram, after its receive stamp
    in_loop = rig.loop.read_to_trade
    assert in_loop["count"] == t2t["count"]
    for q in ("p50_ns", "p99_ns", "p99_9_ns", "max_ns"):
        assert 0 < in_loop[q] <= t2t[q]


def test_a_full_send_buffer_hands_the_rest_back_whole_and_in_order(rig_factory, datagrams):
    rig = rig_factory()
    rig.order_entry.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    junk = bytearray()
    while True:  # fill the connection: the loop's first write finds no room at all
        try:
            junk += b"j" * rig.order_entry.send(b"j" * 512)
        except BlockingIOError:
            break
    rig.send(datagrams[:1])  # the session's start (a notice), before any order
    rig.run_until_read(1)
    rig.exits.clear()
    rig.send(datagrams[1:300])
    for _ in range(RUNS):
        if rig.loop.counters["datagrams"] >= 300:
            break
        if rig.turn(1 << 10) is LoopExit.UNSENT and not rig.loop.counters["partial_writes"] > 1:
            # room for part of a later write: the venue reads a little
            rig.venue.recv(700)
            junk = junk[700:] if len(junk) >= 700 else junk
    rig.finish()
    counters = rig.loop.counters
    assert counters["partial_writes"] >= 1 and counters["handed_back"] >= 1
    assert LoopExit.UNSENT in rig.exits
    dispatched = rig.dispatched()
    # What reached the socket, then what was handed back framed, then the messages handed
    # back: every dispatch once, in order.
    got = read_all(rig.venue)
    stream = got + bytes(rig.framed) + unsequenced(rig.unsent)
    expected = unsequenced(dispatched)
    assert stream.endswith(expected)
    assert set(stream[:len(stream) - len(expected)]) <= {ord("j")}
    assert counters["sent_direct"] + counters["handed_back"] == len(dispatched)


def test_a_client_not_ready_gets_every_message_back_and_nothing_is_written(rig_factory, datagrams):
    rig = rig_factory(direct=False)
    rig.send(datagrams[:1])  # the session's start (a notice), before any order
    rig.run_until_read(1)
    rig.exits.clear()
    rig.send(datagrams[1:200])
    rig.run_until_read(200)
    rig.finish()
    dispatched = rig.dispatched()
    assert dispatched and rig.unsent == dispatched and not rig.framed
    assert read_all(rig.venue) == b""
    assert rig.loop.counters["sent_direct"] == 0 and rig.loop.tick_to_trade["count"] == 0
    assert LoopExit.UNSENT in rig.exits


def test_each_reason_to_return(rig_factory, datagrams, tmp_path):
    rig = rig_factory(budget_ns=2_000_000)
    assert rig.turn(1 << 20) is LoopExit.TIME  # nothing to do: the budget runs out
    rig.budget_ns = NEVER_NS
    assert rig.turn(3) is LoopExit.TURNS
    rig.send(datagrams[:1])  # the first datagram of a session is a notice
    for _ in range(RUNS):
        why = LoopExit(rig.loop.run(NEVER_NS, 1 << 10))
        if why is not LoopExit.TURNS:
            break
    assert why is LoopExit.NOTICE
    kinds = [MoldNoticeKind(k) for k, *_ in rig.loop.take_notices()]
    assert MoldNoticeKind.SESSION_STARTED in kinds
    rig.session.absorb(rig.loop)
    rig.loop.take_unsent()
    rig.venue.send(b"x")  # the venue wrote to order entry
    assert LoopExit(rig.loop.run(NEVER_NS, 1 << 10)) is LoopExit.ORDER_ENTRY
    rig.loop.set_order_entry(-1, 2, False)  # no connection: nothing of it is watched
    assert LoopExit(rig.loop.run(NEVER_NS, 3)) is LoopExit.TURNS
    reader, writer = os.pipe()
    try:
        fcntl.fcntl(reader, fcntl.F_SETFL, os.O_NONBLOCK)
        rig.loop.set_control(reader)
        assert LoopExit(rig.loop.run(NEVER_NS, 3)) is LoopExit.TURNS
        os.write(writer, b"c")
        assert LoopExit(rig.loop.run(NEVER_NS, 1 << 10)) is LoopExit.CONTROL
    finally:
        rig.loop.set_control(-1)
        os.close(reader)
        os.close(writer)
    rig.finish()


class RaisesTenBooksAfterQuoting(Strategy):
    """Bids once the book has both sides, then raises on its tenth call after that."""

    def setup(self, ctx: Context) -> None:
        self.calls = 0
        self.quoted_at: int | None = None
        ctx.subscribe(ctx.traded[0], book=True)

    def on_book(self, ctx: Context, instrument: int) -> None:
        self.calls += 1
        bid, bid_qty, _, ask_qty = ctx.touch(instrument)
        if self.quoted_at is None and bid_qty and ask_qty:
            ctx.submit_limit(instrument, 1, bid, 1, 2)
            self.quoted_at = self.calls
        if self.quoted_at is not None and self.calls == self.quoted_at + 10:
            raise RuntimeError("boom")


def test_a_strategy_that_raises_returns_failed_and_later_inputs_are_refused(
        rig_factory, ds, datagrams, tmp_path):
    config = tmp_path / "raises.toml"
    config.write_text(f'name = "t"\ndataset = "x"\n[strategy]\n'
                      f'path = "{Path(__file__).resolve()}:RaisesTenBooksAfterQuoting"\n')
    rig = rig_factory(config=config)
    # the loop reads the venue's answers itself, through the client's logged-in session (whose
    # times are the loop's clock: CLOCK_REALTIME ns)
    client = logged_in_client()
    rig.loop.set_order_session(client)
    rig.send(datagrams[:60])
    rig.run_until_read(60)
    assert LoopExit.FAILED in rig.exits
    refused = rig.session.refused
    assert refused > 0 and rig.loop.counters["refused"] == refused
    assert rig.session.ctx.open_orders(0) == 1
    # The venue answers the order and the halt's cancel. The loop applies the answers though
    # the strategy failed: the order ends in State, nothing is refused or dispatched.
    sent = [soup.decode(p).payload for p in soup.Framer().feed(read_all(rig.venue))]
    venue = ScriptedVenue(day_start(ds))
    answers = [a for m in sent for a in venue.answer(m, time.time_ns())]
    assert [type(m).__name__ for m in venue.received] == ["EnterOrder", "CancelOrder"]
    rig.venue.sendall(b"".join(soup.encode(soup.SequencedData(a)) for a in answers))
    for _ in range(RUNS):
        if rig.loop.counters["order_messages"] >= len(answers):
            break
        rig.turn(1 << 10)
    assert rig.loop.counters["order_messages"] == len(answers) == 2
    assert rig.session.ctx.open_orders(0) == 0
    assert rig.session.refused == refused == rig.loop.counters["refused"]
    assert read_all(rig.venue) == b""
    result = rig.finish()
    assert not result.complete and result.error["reason"] == "the strategy raised"
    assert "boom" in result.error["exception"]
    records = list(read_journal(rig.journal_dir))
    assert [r.stream for r in records].count("failure") == 1
    after = records[[r.stream for r in records].index("failure"):]
    assert [EventKind(EXECUTION.unpack(r.payload)[EXECUTION_FIELDS.index("kind")])
            for r in after if r.stream == "execution"] == [EventKind.ORDER_ACCEPTED,
                                                             EventKind.ORDER_CANCELED]
    assert replay_journal(rig.journal_dir).digest == result.digest


def logged_in_client(**config) -> SoupClient:
    """A SoupBinTCP client session logged in now, on the loop's clock (CLOCK_REALTIME ns)."""
    client = SoupClient(SoupClientConfig("ALICE", "secret", **config))
    client.connected(time.time_ns())
    client.receive(soup.encode(soup.LoginAccepted("S", 1)), time.time_ns())
    client.notices()
    return client


def test_owning_order_entry_the_loop_writes_the_heartbeats_itself(rig_factory, datagrams):
    rig = rig_factory(budget_ns=300 * MS)
    client = logged_in_client(heartbeat_interval_ns=20 * MS)
    rig.loop.set_order_session(client)
    start = time.monotonic()
    why = rig.turn(1 << 30)
    elapsed = time.monotonic() - start
    # nothing else to do: the loop ran its whole budget, and Python was not needed for the beats
    assert why is LoopExit.TIME and 0.29 < elapsed < 5
    assert rig.loop.away_time["count"] == 0  # one run, no return and run again yet
    beats = [soup.decode(p) for p in soup.Framer().feed(read_all(rig.venue))]
    assert beats and all(isinstance(b, soup.ClientHeartbeat) for b in beats)
    # one every 20 ms of the 300 at most (fewer if this machine holds the loop up)
    assert 5 <= len(beats) <= 300 // 20 + 1
    assert client.counters["heartbeats_out"] == len(beats)
    assert client.state is SoupClientState.LOGGED_IN


def test_the_loops_own_writes_put_the_next_heartbeat_off(rig_factory, datagrams):
    rig = rig_factory()
    client = logged_in_client(heartbeat_interval_ns=10 * 10**9)
    rig.loop.set_order_session(client)
    due = client.heartbeat_due_ns  # the login's time + 10 s
    rig.send(datagrams[:120])
    rig.run_until_read(120)
    assert rig.loop.counters["sent_direct"] > 0
    # the session knows the loop wrote: its next heartbeat is 10 s after that, not the login
    assert client.heartbeat_due_ns > due
    assert client.counters["heartbeats_out"] == 0


def test_each_return_to_python_is_timed_until_the_next_run(rig_factory):
    rig = rig_factory()
    for pause_s in (0.0, 0.05, 0.02):
        time.sleep(pause_s)  # Python's time between runs
        assert rig.turn(3) is LoopExit.TURNS
    away = rig.loop.away_time
    # the returns between the three runs; the longest at least the 50 ms slept, within a bucket
    assert away["count"] == 2
    assert 0.05 * 0.96e9 <= away["max_ns"] < 5e9 and away["p50_ns"] >= 0.02 * 0.96e9


def test_owning_order_entry_the_loop_gives_up_a_silent_server_and_returns(rig_factory):
    rig = rig_factory()
    client = logged_in_client(server_timeout_ns=50 * MS)
    rig.loop.set_order_session(client)
    start = time.monotonic()
    assert rig.turn(1 << 30) is LoopExit.ORDER_ENTRY
    assert 0.04 < time.monotonic() - start < 5
    assert client.state is SoupClientState.FAILED
    assert [n.kind for n in client.notices()] == [SoupNoticeKind.SERVER_TIMEOUT]


def test_a_signal_wakes_the_loop_through_the_control_socket(rig_factory, tmp_path):
    rig = rig_factory(budget_ns=20 * 10**9)
    stops: list[str] = []
    with ControlServer(object(), str(tmp_path / "ctl.sock"), on_stop=stops.append) as control, \
            control.signals():
        rig.loop.set_control(control.fileno())
        timer = threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGTERM))
        start = time.monotonic()
        timer.start()
        try:
            why = rig.turn(1 << 31)
        finally:
            timer.cancel()
        # the C++ loop returned for the signal, not after its 20 s budget
        assert why is LoopExit.CONTROL and time.monotonic() - start < 5
        control.poll(0)
        rig.loop.set_control(-1)
    assert stops == ["SIGTERM"]


def test_the_journal_stream_ids_are_the_python_streams():
    assert [_live_loop.JOURNAL_STREAMS[name] for name in STREAMS] == list(range(len(STREAMS)))


def test_the_histogram_quantiles_are_numpys_within_a_bucket():
    rng = np.random.default_rng(12)
    stamps = np.cumsum(rng.integers(1, 50_000, 20_001)).astype(np.int64) + 1_700_000_000 * 10**9
    sent = stamps[1:] + rng.lognormal(9, 1.5, 20_000).astype(np.int64)
    values = np.concatenate([sent - stamps[1:], [0, 1, 63, 64, 65, -5]]).astype(np.int64)
    h = LatencyHistogram()
    h.add(values)
    assert h.count == len(values) and h.max == int(values.max())
    ordered = np.sort(np.maximum(values, 0))
    for q in (0.5, 0.9, 0.99, 0.999, 1.0):
        exact = int(ordered[math.ceil(q * len(ordered)) - 1])
        got = h.quantile(q)
        assert exact <= got <= exact + exact // 32 + 1, (q, exact, got)
    with pytest.raises(ValueError):
        h.quantile(0)
    empty = LatencyHistogram()
    assert empty.quantile(0.5) == 0 and empty.count == 0


def test_a_run_with_nothing_to_do_sleeps_in_epoll_instead_of_spinning(rig_factory):
    rig = rig_factory(budget_ns=20_000_000)
    rig.loop = LiveLoop(rig.session.core, rig.receiver, rig.feed, rig.retransmit,
                        rig.journal.native, rig.retransmit.address, tick_ns=NEVER_NS,
                        wait_ms=5, busy_poll=False, batch=64, slot_bytes=2048, held_bytes=1 << 16)
    start = time.process_time()
    assert rig.turn(1 << 20) is LoopExit.TIME
    assert time.process_time() - start < 0.015
    rig.finish()
