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
import test_live_node
from live_util import (
    ANSWER_NS,
    EXAMPLES,
    ScriptedVenue,
    day_start,
    deliver,
    drive,
    feed_packets,
    live_config,
    open_in_records,
    session_for,
)
from test_live_node import LOCKSTEP, PASSWORD, Venue, _env, live_cmd, replay

from lockstep.backtest.artifacts import read_artifact
from lockstep.data.synth import generate
from lockstep.enums import RiskReason
from lockstep.events import EventKind
from lockstep.live.control import send_command
from lockstep.live.journal import (
    DECISION,
    DECISION_FIELDS,
    EXECUTION,
    EXECUTION_FIELDS,
    SEQUENCE,
    read_journal,
)
from lockstep.live.replay import replay_journal
from lockstep.protocols import ouch42 as ouch

START = 10**12
DEADLINE_S = 90
#: The venue's pace: its 20,000 events last about 20 s, time for a node started on a busy
#: machine to join and trade before the replay ends (each test stops it as soon as it can).
SPEED = 0.25


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
    assert replay_journal(tmp_path / "journal").digest == result.digest


def test_submits_while_order_entry_is_down_are_denied_and_nothing_leaves(ds, packets, tmp_path):
    """Down from the start: the market maker's quotes are denied ORDER_ENTRY_DOWN (it asks again
    only retry_after later, not on every book update), nothing is written; back up, it quotes."""
    session, writer = session_for(EXAMPLES / "market_maker.toml", ds, tmp_path / "journal")
    venue = ScriptedVenue(day_start(ds), fill_every=10**9)
    start = day_start(ds) + START
    assert session.on_order_entry(False, start) == []
    stamp = start
    for k, (sequence, blocks) in enumerate(packets[:120]):
        stamp = start + (k + 1) * 20_000
        assert session.on_itch(blocks, sequence, stamp) == []
    assert session.ctx.open_orders(0) == 0
    writer.flush()  # the journal's thread writes behind: what was written so far, in the file
    denied = [d for d in decisions(tmp_path / "journal")
              if d["reason"] == RiskReason.ORDER_ENTRY_DOWN]
    assert denied and all(d["intent"] in (1, 2, 4) for d in denied)  # submits, replaces
    assert all(start < d["ts_recv"] <= stamp for d in denied)
    assert len(denied) < 120  # not one per book update
    assert session.on_order_entry(True, stamp + 1) == []  # nothing was open: nothing to reconcile
    end = drive(session, venue, packets[120:200], stamp + 200_000_000)  # past retry_after
    assert session.ctx.open_orders(0) == 2 == len(venue.orders)
    result = session.close()
    writer.close()
    assert replay_journal(tmp_path / "journal").digest == result.digest
    assert end > stamp


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


@pytest.mark.parametrize("joined", ["from its first message", "late"])
def test_a_feed_session_change_clears_the_books_and_the_new_session_from_1_rebuilds_them(
        ds, packets, tmp_path, joined):
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
    new_session = packets[5:40] if joined == "late" else packets[:40]
    drive(session, venue, new_session, end + ANSWER_NS)
    live = session.counters["live"]
    assert live["itch_messages"] > before and live["itch_duplicates"] == 0
    assert live["feed_sessions"] == 1
    if joined == "late":
        # its messages before the first taken are lost: no book can be rebuilt, none is traded
        assert not session.ctx.book_valid(0) and venue.received[received:] == []
    else:
        # the new day rebuilt from empty: the book of a session that only ever saw it, quoted
        fresh, _ = session_for(EXAMPLES / "market_maker.toml", ds, None)
        drive(fresh, ScriptedVenue(day_start(ds), fill_every=10**9), new_session,
              day_start(ds) + START)
        assert session.ctx.book_valid(0)
        assert [a.tolist() for a in session.ctx.book(0)] == [a.tolist() for a in fresh.ctx.book(0)]
        assert any(isinstance(m, ouch.EnterOrder) for m in venue.received[received:])
        assert session.ctx.open_orders(0) > 0
    result = session.close()
    writer.close()
    assert replay_journal(tmp_path / "journal").digest == result.digest


# ------------------------------------------------------------------------------------------
# end to end: relays between the venue and the node


def _host_port(address: str) -> tuple[str, int]:
    host, port = address.split("://", 1)[1].rsplit(":", 1)
    return host, int(port)


class TcpRelay:
    """Forwards each TCP connection made to `address` to `target`, on a thread. cut() closes
    every connection and refuses new ones for `refuse_s`; silent(True) stops forwarding (the
    connections stay open) until silent(False). With `cut_on_fills=N` the first N SoupBinTCP
    packets from the target carrying an OUCH Executed are not forwarded: the connection is cut
    right there (the fill was in flight), and new ones are refused for `refuse_s`."""

    def __init__(self, target: str, *, cut_on_fills: int = 0, refuse_s: float = 0.5) -> None:
        self.target = _host_port(target)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.setblocking(False)
        self.address = f"tcp://127.0.0.1:{self.listener.getsockname()[1]}"
        self.cuts = self.accepted = 0
        self._cut = threading.Event()
        self._silent = threading.Event()
        self._stop = threading.Event()
        self._refuse_until = 0.0
        self._refuse_s = refuse_s
        self.cut_on_fills = cut_on_fills
        self.fills_cut = 0
        self.fills_seen: set[bytes] = set()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def cut(self, refuse_s: float = 0.5) -> None:
        self._refuse_s = refuse_s
        self._cut.set()

    def silent(self, on: bool) -> None:
        (self._silent.set if on else self._silent.clear)()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.listener.close()

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self.listener, selectors.EVENT_READ, None)
        peers: dict[socket.socket, socket.socket] = {}
        framing: dict[socket.socket, bytearray] = {}  # what the target sent, not yet forwarded

        def drop(sock: socket.socket) -> None:
            for s in (sock, peers.pop(sock, None)):
                if s is not None:
                    peers.pop(s, None)
                    sel.unregister(s)
                    s.close()

        while not self._stop.is_set():
            if self._cut.is_set():
                self._cut.clear()
                for sock in list(peers):
                    if sock in peers:
                        drop(sock)
                self.cuts += 1
                self._refuse_until = time.monotonic() + self._refuse_s
            for key, _ in sel.select(0.01):
                sock = key.fileobj
                if key.data is None:
                    try:
                        conn, _ = self.listener.accept()
                    except BlockingIOError:
                        continue
                    if time.monotonic() < self._refuse_until:
                        conn.close()
                        continue
                    upstream = socket.create_connection(self.target, timeout=5)
                    self.accepted += 1
                    for a, b in ((conn, upstream), (upstream, conn)):
                        a.setblocking(True)
                        peers[a] = b
                        sel.register(a, selectors.EVENT_READ, "peer")
                    framing[upstream] = bytearray()
                elif sock in peers and not self._silent.is_set():
                    try:
                        data = sock.recv(1 << 16)
                    except OSError:
                        data = b""
                    if not data:
                        drop(sock)
                        continue
                    cut = False
                    if sock in framing:
                        data, cut = self._forwardable(framing[sock], data)
                    if data:
                        peers[sock].sendall(data)
                    if cut:
                        self.fills_cut += 1
                        self._cut.set()
            if self._silent.is_set():
                time.sleep(0.01)  # the peers stay readable: wait without spinning
        for sock in list(peers):
            if sock in peers:
                drop(sock)

    def _forwardable(self, pending: bytearray, data: bytes) -> tuple[bytes, bool]:
        """The whole SoupBinTCP packets of pending + data up to a fill not cut on before (the
        rest stays pending), and whether to cut there. The same fill replayed after the
        re-login goes through."""
        pending += data
        pos = 0
        while pos + 2 <= len(pending):
            end = pos + 2 + int.from_bytes(pending[pos:pos + 2], "big")
            if end > len(pending):
                break
            packet = bytes(pending[pos:end])
            if self.fills_cut < self.cut_on_fills and packet[2:4] == b"SE" \
                    and packet not in self.fills_seen:
                self.fills_seen.add(packet)
                return bytes(pending[:pos]), True
            pos = end
        out = bytes(pending[:pos])
        del pending[:pos]
        return out, False


def _run_node(config: Path, ds, root: Path, venue: Venue, *extra: str,
              during=None) -> tuple[dict, dict, str]:
    """`lockstep live` against `venue` (extra --set options given last win) until it stops by
    itself or `during(proc)` returns and SIGTERM stops it; (summary, the venue's summary, the
    node's stderr)."""
    cmd = live_cmd(config, ds.path, root, venue, *extra)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=config.parent, env=_env(LOCKSTEP_PASSWORD=PASSWORD))
    try:
        if during is not None:
            during(proc)
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=DEADLINE_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        served = venue.stop()
    assert proc.returncode == 0, err
    return json.loads(out), served, err


@pytest.fixture(scope="module")
def l3(tmp_path_factory):
    root = tmp_path_factory.mktemp("node") / "data"
    return generate(20_000, seed=3, data=str(root), book="l3"), root


def test_order_entry_cut_with_fills_in_flight_gets_each_fill_once_and_state_equals_the_venues(
        l3, tmp_path):
    ds, root = l3
    venue = Venue(tmp_path, ds.path, speed=SPEED)
    relay = TcpRelay(venue.ports["order_entry"], cut_on_fills=3, refuse_s=0.3)
    config = live_config(tmp_path, "market_maker.toml")

    def cut_three_times(proc) -> None:
        deadline = time.monotonic() + 30
        while relay.fills_cut < 3 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(1.0)

    try:
        summary, served, err = _run_node(
            config, ds, root, venue, f"--set=live.order_entry={relay.address}",
            "--set=live.reconnect_backoff=50ms", during=cut_three_times)
    finally:
        relay.close()
    assert summary["stopped_by"] == "SIGTERM" and summary["complete"], err
    live = summary["counters"]["live"]
    assert relay.fills_cut == relay.cuts == 3 and summary["reconnects"] >= 3
    # a cut right after a re-login's Login Accepted falls in the same down (never seen up)
    assert 1 <= live["order_entry_downs"] == live["order_entry_ups"] <= 3
    assert served["logins"] == relay.accepted >= 4 and served["replayed"] > 0
    # every fill the venue made reached us exactly once; every order it holds, we hold
    assert summary["fills"] == served["fills"] > 0
    assert summary["orders"] == served["orders"] - served["duplicate_tokens"]
    assert summary["open_orders_at_stop"] == 0 and served["expired"] == 0
    assert live["ouch_unknown_order"] == 0
    assert read_artifact(summary["run_dir"], "fills").num_rows == summary["fills"]
    # each fill cut in flight reached the core exactly once, after the drop: the re-login's replay
    stream = [(r.stream, r.payload) for r in read_journal(summary["journal"])
              if r.stream == "ouch" or (r.stream == "control" and r.payload[:1] == b"O")]
    assert [p for s, p in stream if s == "control"] == [b"O\x00", b"O\x01"] * live["order_entry_ups"]
    for packet in relay.fills_seen:
        fill = ("ouch", packet[3:])
        assert stream.count(fill) == 1
        assert stream.index(fill) > stream.index(("control", b"O\x00"))
    assert {k: v for k, v in replay(summary["journal"]).items() if k in ("digest", "fills")} == \
        {"digest": summary["digest"], "fills": summary["fills"]}


class UdpRelay:
    """Receives the venue's feed on `listen` and forwards each datagram to a port of its own
    choosing (`address`, for the node's live.feed), on a thread; once armed, it leaves out the
    next `drop` MoldUDP64 data datagrams, and while `silent` every datagram."""

    def __init__(self, listen: str, target: str | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(_host_port(listen))
        self.sock.settimeout(0.02)
        if target is None:
            probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            probe.bind(("127.0.0.1", 0))
            target = f"udp://127.0.0.1:{probe.getsockname()[1]}"
            probe.close()  # the node binds it
        self.target = _host_port(target)
        self.address = f"udp://127.0.0.1:{self.target[1]}"
        self.drop = 0
        self.silent = False
        self.dropped: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        while not self._stop.is_set():
            try:
                data = self.sock.recv(1 << 16)
            except TimeoutError:
                continue
            sequence, count = int.from_bytes(data[10:18], "big"), int.from_bytes(data[18:20], "big")
            if self.silent:
                continue
            if len(self.dropped) < self.drop and 0 < count < 0xFFFF:
                self.dropped.append(sequence)
                continue
            out.sendto(data, self.target)
        out.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


class RequestRelay:
    """Forwards MoldUDP64 retransmission requests to `target` and its answers back, on a
    thread, until `answering` is cleared: then both are dropped."""

    def __init__(self, target: str) -> None:
        self.target = _host_port(target)
        self.near = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.near.bind(("127.0.0.1", 0))
        self.far = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.far.bind(("127.0.0.1", 0))
        self.address = f"udp://127.0.0.1:{self.near.getsockname()[1]}"
        self.answering = True
        self._client = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self.near, selectors.EVENT_READ)
        sel.register(self.far, selectors.EVENT_READ)
        while not self._stop.is_set():
            for key, _ in sel.select(0.02):
                data, peer = key.fileobj.recvfrom(1 << 16)
                if not self.answering:
                    continue
                if key.fileobj is self.near:
                    self._client = peer
                    self.far.sendto(data, self.target)
                elif self._client is not None:
                    self.near.sendto(data, self._client)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.near.close()
        self.far.close()


def _wait_for_open_orders(sock: Path, proc: subprocess.Popen) -> dict:
    """The node's status once it has open orders (bounded; the last status in the error)."""
    deadline = time.monotonic() + 40
    status: dict = {}
    while time.monotonic() < deadline and proc.poll() is None:
        if sock.exists():
            ctl = subprocess.run([LOCKSTEP, "live", "ctl", "status", "--socket", str(sock), "--json"],
                                 capture_output=True, text=True, timeout=DEADLINE_S, env=_env(),
                                 check=False)
            if ctl.returncode == 0:
                status = json.loads(ctl.stdout)
                if status["open_orders"] > 0:
                    return status
        time.sleep(0.1)
    raise AssertionError(f"no open orders in time; last status {status}")


def _wait_for_order_entry(sock: Path, proc: subprocess.Popen, state: str) -> None:
    """Returns once the node's status says order entry is `state` (bounded; asked in process,
    so each look takes milliseconds, not a CLI start)."""
    deadline = time.monotonic() + 20
    seen = None
    while time.monotonic() < deadline and proc.poll() is None:
        seen = send_command(str(sock), "status")["order_entry"]
        if seen == state:
            return
        time.sleep(0.01)
    raise AssertionError(f"order entry never {state}; last seen {seen}")


def _after_first(records, stream: str) -> list:
    k = next(i for i, r in enumerate(records) if r.stream == stream)
    return records[k + 1:]


@pytest.mark.parametrize("retransmission", ["answers", "silent", "silent-snapshot"])
def test_a_feed_gap_on_the_sockets_is_retransmitted_or_the_books_are_invalid(l3, tmp_path, retransmission):
    ds, root = l3
    snapshots = retransmission == "silent-snapshot"
    venue = Venue(tmp_path, ds.path, speed=SPEED,
                  extra='snapshot = "tcp://127.0.0.1:0"\n' if snapshots else "")
    requests = RequestRelay(venue.ports["retransmit"])  # fills the node's late join
    feed = UdpRelay(venue.ports["feed"])

    def until_dropped(proc) -> None:
        _wait_for_open_orders(tmp_path / "node.sock", proc)  # trading, books valid
        requests.answering = retransmission == "answers"
        feed.drop = 3
        deadline = time.monotonic() + 30
        while len(feed.dropped) < feed.drop and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        # With snapshots the retransmission server stays silent for good: the node continues the
        # snapshot with the feed it held since the gap and asks it for nothing more.
        time.sleep(2.0)  # past live.gap_timeout, and some trading after it

    config = live_config(tmp_path, "market_maker.toml")
    try:
        summary, served, err = _run_node(
            config, ds, root, venue, f"--set=live.feed={feed.address}",
            f"--set=live.retransmit={requests.address}",  # live.gap_timeout 1 s: the join's gap fills
            f"--set=live.control={tmp_path / 'node.sock'}",
            *([f"--set=live.snapshot={venue.ports['snapshot']}"] if snapshots else []),
            during=until_dropped)
    finally:
        feed.close()
        requests.close()
    assert len(feed.dropped) == 3 and summary["gaps"] >= 1, err
    live = summary["counters"]["live"]
    records = list(read_journal(summary["journal"]))
    if retransmission == "answers":
        assert summary["gaps_recovered"] == summary["gaps"] and summary["gaps_abandoned"] == 0
        assert live["gaps"] == live["itch_skipped"] == live["itch_duplicates"] == 0
        assert summary["feed_messages"] == live["itch_messages"] > 3000
        assert not any(r.stream == "gap" for r in records)
    elif snapshots:
        # One gap, one snapshot: nothing the books had was asked for again of the dead server
        # (which would have been a second gap given up, and a second snapshot).
        assert summary["gaps_abandoned"] == live["gaps"] == 1, err
        assert summary["snapshots"] == live["snapshots"] == 1, err
        # Between the gap and the snapshot nothing new was asked; after it, quoting again.
        gap = next(k for k, r in enumerate(records) if r.stream == "gap")
        snap = next(k for k, r in enumerate(records) if r.stream == "snapshot")
        assert gap < snap
        assert {r.payload[:1] for r in records[gap:snap] if r.stream == "dispatch"} <= {b"X"}
        assert any(r.stream == "dispatch" and r.payload[:1] == b"O" for r in records[snap:])
        assert live["snapshot_messages"] > 10
    else:
        assert summary["gaps_abandoned"] >= 1 and live["gaps"] >= 1
        after = _after_first(records, "gap")
        sent = [r.payload[:1] for r in after if r.stream == "dispatch"]
        # the strategy was told: it pulled what quotes it had (both may just have been filled)
        # and put no order on a level it cannot see
        assert set(sent) <= {b"X"}
        assert not any(r.stream == "decision" and DECISION.unpack(r.payload)[2] in (1, 2, 4)
                       and DECISION.unpack(r.payload)[9] == 0 for r in after)
    assert summary["open_orders_at_stop"] == 0 and served["expired"] == 0
    assert replay(summary["journal"])["digest"] == summary["digest"]


RAISES_LIVE = '''
from lockstep.examples.market_maker import MarketMaker


class RaisesLive(MarketMaker):
    """The example market maker, raising on its first book update from the 300th on with an
    order open."""

    calls = 0

    def on_book(self, ctx, instrument):
        super().on_book(ctx, instrument)
        RaisesLive.calls += 1
        if RaisesLive.calls >= 300 and ctx.open_orders(instrument):
            raise RuntimeError("boom live")
'''


def _ctl(command: str, sock: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([LOCKSTEP, "live", "ctl", command, "--socket", str(sock), *extra],
                          capture_output=True, text=True, timeout=DEADLINE_S, env=_env(), check=False)


def test_a_strategy_that_raises_live_halts_cancels_records_and_keeps_its_session(l3, tmp_path):
    ds, root = l3
    venue = Venue(tmp_path, ds.path, speed=SPEED)
    (tmp_path / "raises_live.py").write_text(RAISES_LIVE)
    config = live_config(tmp_path, "market_maker.toml")
    config.write_text(config.read_text().replace("lockstep.examples.market_maker:MarketMaker",
                                                 f"{tmp_path / 'raises_live.py'}:RaisesLive"))
    sock = tmp_path / "node.sock"
    refused = []
    statuses: list[dict] = []

    def until_failed(proc) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            if sock.exists():
                ctl = _ctl("halt", sock)
                if ctl.returncode == 1 and "after a failure" in ctl.stderr:
                    refused.append(ctl.stderr)
                    break
            time.sleep(0.1)
        time.sleep(1.0)
        status = _ctl("status", sock)  # still serving its sessions, and says why it stopped
        refused.append(status.returncode == 0 and "the strategy raised" in status.stdout)
        # the venue answered the halt's cancels: no order left open in State
        statuses.append(json.loads(_ctl("status", sock, "--json").stdout))

    summary, served, err = _run_node(config, ds, root, venue, f"--set=live.control={sock}",
                                     during=until_failed)
    assert refused and refused[-1] is True, err
    assert summary["stopped_by"] == "SIGTERM" and not summary["complete"]
    assert summary["error"]["reason"] == "the strategy raised"
    assert "boom live" in summary["error"]["exception"] and "raises_live.py" in summary["error"]["traceback"]
    assert summary["counters"]["refused"] > 0  # inputs after the failure journaled, not applied
    # every order the venue held was cancelled by the halt, none left to expire at its end
    assert served["orders"] > 0 and served["expired"] == 0 and served["logouts"] == 1
    records = list(read_journal(summary["journal"]))
    failure = [k for k, r in enumerate(records) if r.stream == "failure"]
    assert len(failure) == 1
    assert json.loads(records[failure[0]].payload)["exception"] == summary["error"]["exception"]
    assert records[failure[0] - 1].stream == "dispatch" and records[failure[0] - 1].payload[:1] == b"X"
    after = records[failure[0] + 1:]
    assert {r.payload[:1] for r in after if r.stream == "dispatch"} <= {b"X"}
    # the venue's answers to the halt's cancels were applied: every order ended, in State (the
    # status, the stop), in the records and in the journal
    assert statuses and statuses[-1]["open_orders"] == 0 and summary["open_orders_at_stop"] == 0
    ended = [EXECUTION.unpack(r.payload)[EXECUTION_FIELDS.index("kind")] for r in after
             if r.stream == "execution"]
    # (cancelled by the halt, or filled or rejected by the venue before its cancel arrived)
    assert set(ended) & {EventKind.ORDER_CANCELED, EventKind.ORDER_FILLED, EventKind.ORDER_REJECTED}
    run_dir = Path(summary["run_dir"])
    assert (run_dir / "INCOMPLETE").exists() and (run_dir / "report.html").is_file()
    assert json.loads((run_dir / "summary.json").read_text())["error"]["reason"] == "the strategy raised"
    assert read_artifact(str(run_dir), "orders").num_rows > 0
    assert open_in_records(run_dir) == set()
    replayed = subprocess.run([LOCKSTEP, "replay", "--journal", summary["journal"], "--json"],
                              capture_output=True, text=True, timeout=DEADLINE_S, env=_env(), check=False)
    assert replayed.returncode == 0, replayed.stderr
    assert json.loads(replayed.stdout)["digest"] == summary["digest"]


def test_a_venue_gone_silent_times_out_on_both_protocols_and_the_node_comes_back(l3, tmp_path):
    ds, root = l3
    venue = Venue(tmp_path, ds.path, speed=SPEED)
    orders = TcpRelay(venue.ports["order_entry"])
    feed = UdpRelay(venue.ports["feed"])
    sock = tmp_path / "node.sock"
    seen = []

    def silence(proc) -> None:
        _wait_for_open_orders(sock, proc)
        feed.silent = True
        orders.silent(True)
        time.sleep(1.6)  # past live.session_timeout and live.feed_timeout
        seen.append(json.loads(_ctl("status", sock, "--json").stdout)["order_entry"])
        orders.silent(False)
        feed.silent = False
        time.sleep(1.5)

    try:
        summary, served, err = _run_node(
            live_config(tmp_path, "market_maker.toml"), ds, root, venue,
            f"--set=live.feed={feed.address}", f"--set=live.order_entry={orders.address}",
            "--set=live.session_timeout=1s", "--set=live.feed_timeout=1s",
            "--set=live.heartbeat_interval=200ms", "--set=live.reconnect_backoff=50ms",
            f"--set=live.control={sock}", during=silence)
    finally:
        orders.close()
        feed.close()
    live = summary["counters"]["live"]
    assert summary["stopped_by"] == "SIGTERM" and summary["complete"], err
    assert seen == ["down"] and summary["feed_timeouts"] >= 1 and "nothing received" in err
    assert summary["reconnects"] >= 1 and live["order_entry_downs"] == live["order_entry_ups"] >= 1
    assert summary["gaps_abandoned"] == 0  # what the silence hid came back by retransmission
    assert summary["fills"] == served["fills"] and summary["open_orders_at_stop"] == 0
    assert served["expired"] == 0
    assert replay(summary["journal"])["digest"] == summary["digest"]


def test_orders_the_venue_leaves_unanswered_are_reported_until_their_answers_come(l3, tmp_path):
    """Order entry goes silent while the feed goes on: the market maker's cancels get no
    answer; past live.answer_timeout, ctl status counts them (with the oldest one's wait) and
    the node warns once; the answers come when order entry speaks again, and the count is 0."""
    ds, root = l3
    venue = Venue(tmp_path, ds.path, speed=SPEED)
    orders = TcpRelay(venue.ports["order_entry"])
    sock = tmp_path / "node.sock"
    seen: list[dict] = []

    def status() -> dict:
        return send_command(str(sock), "status")

    def silence(proc) -> None:
        _wait_for_open_orders(sock, proc)
        orders.silent(True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and status()["unanswered_orders"] == 0:
            time.sleep(0.05)
        seen.append(status())
        orders.silent(False)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and status()["unanswered_orders"] > 0:
            time.sleep(0.05)
        seen.append(status())

    try:
        summary, _, err = _run_node(
            live_config(tmp_path, "market_maker.toml"), ds, root, venue,
            f"--set=live.order_entry={orders.address}", "--set=live.answer_timeout=300ms",
            f"--set=live.control={sock}", during=silence)
    finally:
        orders.close()
    silent, spoken = seen
    assert silent["order_entry"] == "up"  # no session timeout: only the answers are missing
    assert silent["unanswered_orders"] >= 1 and silent["oldest_unanswered_s"] >= 0.3
    assert spoken["unanswered_orders"] == 0 and spoken["oldest_unanswered_s"] is None
    assert err.count("without the venue's answer for over 0.3 s") == summary["unanswered_warnings"] >= 1
    assert summary["complete"] and replay(summary["journal"])["digest"] == summary["digest"]


def test_sigterm_while_order_entry_is_down_cancels_at_the_relogin(l3, tmp_path):
    ds, root = l3
    venue = Venue(tmp_path, ds.path, speed=SPEED)
    orders = TcpRelay(venue.ports["order_entry"], refuse_s=0.8)
    sock = tmp_path / "node.sock"

    def cut_then_stop(proc) -> None:
        assert _wait_for_open_orders(sock, proc)["open_orders"] > 0
        orders.cut(refuse_s=1.5)  # the venue lets no one in for long enough to stop meanwhile
        _wait_for_order_entry(sock, proc, "down")  # the stop comes after the node saw the drop
        os.kill(proc.pid, signal.SIGTERM)

    try:
        summary, served, err = _run_node(
            live_config(tmp_path, "market_maker.toml"), ds, root, venue,
            f"--set=live.order_entry={orders.address}", "--set=live.cancel_timeout=5s",
            "--set=live.reconnect_backoff=50ms", f"--set=live.control={sock}",
            during=cut_then_stop)
    finally:
        orders.close()
    assert summary["stopped_by"] == "SIGTERM" and summary["complete"], err
    # the stop's kill came while order entry was down; its cancels (those the re-login's replay
    # did not settle) left at the re-login: nothing left at the venue
    controls = [r.payload for r in read_journal(summary["journal"]) if r.stream == "control"]
    assert controls == [b"O\x00", b"K\x01", b"O\x01"]
    assert summary["open_orders_at_stop"] == 0 and served["expired"] == 0
    assert summary["fills"] == served["fills"]
    assert not (Path(summary["run_dir"]) / "INCOMPLETE").exists()
    assert replay(summary["journal"])["digest"] == summary["digest"]


def test_a_venue_restarted_with_a_new_feed_session_is_followed_and_rebuilds_the_books(
        l3, tmp_path, monkeypatch):
    ds, root = l3
    (tmp_path / "first").mkdir()
    (tmp_path / "restarted").mkdir()
    venue = Venue(tmp_path / "first", ds.path, speed=SPEED)
    requests = RequestRelay(venue.ports["retransmit"])
    feed = UdpRelay(venue.ports["feed"])
    sock = tmp_path / "node.sock"
    relays: list[UdpRelay | RequestRelay] = [feed, requests]
    restarted: list[Venue] = []
    before: list[dict] = []

    def restart(proc) -> None:
        _wait_for_open_orders(sock, proc)
        monkeypatch.setattr(test_live_node, "VENUE", test_live_node.VENUE + 'session = "RESTARTED"\n')
        second = Venue(tmp_path / "restarted", ds.path, speed=SPEED)
        restarted.append(second)
        before.append(json.loads(_ctl("status", sock, "--json").stdout)["counters"])
        requests.target = _host_port(second.ports["retransmit"])
        feed.silent = True  # the old session's stragglers would be ignored anyway
        relays.append(UdpRelay(second.ports["feed"], feed.address))
        time.sleep(2.5)

    try:
        summary, _served, err = _run_node(
            live_config(tmp_path, "market_maker.toml"), ds, root, venue,
            f"--set=live.feed={feed.address}", f"--set=live.retransmit={requests.address}",
            f"--set=live.control={sock}", during=restart)
    finally:
        for relay in relays:
            relay.close()
        for second in restarted:
            second.stop()
    live = summary["counters"]["live"]
    assert live["feed_sessions"] == 1 and "session changed" in err, err
    # the new session's messages, numbered from 1 again, were taken: none dropped as duplicates
    assert summary["feed_messages"] > before[0]["feed_messages"]
    assert live["itch_messages"] + live["itch_empty_blocks"] == summary["feed_messages"]
    assert live["itch_duplicates"] == 0
    records = list(read_journal(summary["journal"]))
    changes = [k for k, r in enumerate(records) if r.stream == "control" and r.payload[:1] == b"S"]
    assert [records[k].payload for k in changes] == [b"S\x00"]
    after = records[changes[0] + 1:]
    # the new session's messages from its first (retransmitted if the node missed them) rebuilt
    # the books: no order until then, on books it cannot trust; quoting again on the new ones
    restart = next(k for k, r in enumerate(after) if r.stream == "itch")
    assert SEQUENCE.unpack_from(after[restart].payload)[0] == 1
    assert {r.payload[:1] for r in after[:restart] if r.stream == "dispatch"} <= {b"X"}
    assert b"O" in {r.payload[:1] for r in after[restart:] if r.stream == "dispatch"}
    assert replay(summary["journal"])["digest"] == summary["digest"]
