"""The loopback venue's market data side, end to end on loopback: a receiver built on lockstep.net,
the MoldUDP64 reader and the one ITCH decoder rebuilds from the feed the books the canonical
dataset gives; retransmission fills an injected gap; bad requests are counted; pacing follows
ts_event; the command prints its listen line and its summary."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from shared_data import shared_file

from lockstep.data.dataset import Dataset, DatasetWriter, Instrument
from lockstep.data.importers.itch import decode_itch
from lockstep.data.pipeline import ValidationConfig, import_data
from lockstep.data.synth import generate
from lockstep.enums import SubmitOutcome, TimeInForce
from lockstep.events import EventKind, Side, empty_columns
from lockstep.net import UdpSocket
from lockstep.protocols import moldudp64
from lockstep.venue.loopback.config import VenueConfig, VenueSettings, load_venue_config
from lockstep.venue.loopback.serve import LoopbackVenue
from lockstep.venue.matching import ReplayedMarkets

LOCKSTEP = shutil.which("lockstep") or "lockstep"
SESSION = "TESTFEED"
DEADLINE_S = 30.0


class FeedReceiver:
    """Collects a MoldUDP64 feed by sequence number; drops the sequences in `drop` the first time
    they arrive (an injected gap) and can ask the venue for what it lacks."""

    def __init__(self, drop: range = range(0), local: str = "udp://127.0.0.1:0") -> None:
        self.sock = UdpSocket(local, batch=256, receive_buffer=32 << 20)
        self.drop = drop
        self.dropped: set[int] = set()
        self.messages: dict[int, bytes] = {}
        self.end_sequence: int | None = None
        self.arrivals: list[tuple[float, int]] = []  # (monotonic s, first sequence) per data packet

    @property
    def address(self) -> str:
        return self.sock.address

    def pump(self, seconds: float, idle: float = 0.3) -> None:
        """Reads for `seconds`, or until End of Session came and then nothing is missing or
        nothing arrived for `idle` seconds."""
        until = time.monotonic() + seconds
        last = time.monotonic()
        while time.monotonic() < until:
            n = self.sock.receive()
            if n == 0:
                quiet = time.monotonic() - last > idle
                if self.end_sequence is not None and (quiet or not self.missing()):
                    return
                time.sleep(0.002)
                continue
            now = last = time.monotonic()
            for i in range(n):
                packet = moldudp64.read_packet(self.sock.payload(i))
                assert packet.session == SESSION
                if packet.end_of_session:
                    self.end_sequence = packet.sequence
                    continue
                if packet.messages:
                    self.arrivals.append((now, packet.sequence))
                for j, message in enumerate(packet.messages):
                    seq = packet.sequence + j
                    if seq in self.drop and seq not in self.dropped:
                        self.dropped.add(seq)
                        continue
                    self.messages.setdefault(seq, message)

    def missing(self) -> list[int]:
        end = self.end_sequence or (max(self.messages, default=0) + 1)
        return [s for s in range(1, end) if s not in self.messages]

    def request(self, retransmit: str, sequence: int, count: int) -> None:
        self.sock.send_to(moldudp64.encode_request(
            moldudp64.RetransmissionRequest(SESSION, sequence, count)), retransmit)

    def itch_file(self, path: Path) -> Path:
        """The messages in sequence order, framed as an ITCH file ([u16 length][message])."""
        assert not self.missing()
        path.write_bytes(b"".join(len(m).to_bytes(2, "big") + m
                                  for _, m in sorted(self.messages.items())))
        return path

    def close(self) -> None:
        self.sock.close()


# ---------------------------------------------------------------------------------------------
# books from canonical events, in plain Python (the expected side never touches the feed's code)


def apply_events(books: dict, cols, n: int) -> None:
    kind, inst, side = cols["kind"][:n].tolist(), cols["instrument"][:n].tolist(), cols["side"][:n].tolist()
    price, qty, oid = cols["price"][:n].tolist(), cols["qty"][:n].tolist(), cols["order_id"][:n].tolist()
    for i in range(n):
        k = kind[i]
        b = books.setdefault(inst[i], ({}, {}))  # orders by id, L2 levels by (side, price)
        orders, levels = b
        if k == EventKind.L2_SET:
            if qty[i] == 0:
                levels.pop((side[i], price[i]), None)
            else:
                levels[(side[i], price[i])] = qty[i]
        elif k == EventKind.L3_ADD:
            orders[oid[i]] = (side[i], price[i], qty[i])
        elif k == EventKind.L3_MODIFY and oid[i] in orders:
            if qty[i] <= 0:
                del orders[oid[i]]
            else:
                orders[oid[i]] = (orders[oid[i]][0], price[i], qty[i])
        elif k == EventKind.L3_DELETE:
            orders.pop(oid[i], None)
        elif k == EventKind.L3_EXECUTE and oid[i] in orders:
            s, p, q = orders[oid[i]]
            if q - qty[i] <= 0:
                del orders[oid[i]]
            else:
                orders[oid[i]] = (s, p, q - qty[i])
        elif k == EventKind.BOOK_CLEAR:
            orders.clear()
            levels.clear()


def levels_of(book, multiplier: int = 1) -> dict[tuple[int, int], int]:
    orders, levels = book
    out = {(s, p * multiplier): q for (s, p), q in levels.items()}
    for s, p, q in orders.values():
        out[(s, p * multiplier)] = out.get((s, p * multiplier), 0) + q
    return out


def dataset_books(ds: Dataset, events: int | None = None) -> dict:
    books: dict = {}
    left = ds.rows if events is None else events
    for cols in ds.iter_columns(1 << 16):
        n = min(len(cols["ts_event"]), left)
        apply_events(books, cols, n)
        left -= n
        if left == 0:
            break
    return books


def received_books(path: Path) -> tuple[dict, list[str]]:
    run = decode_itch(path, date="2024-01-02")
    books: dict = {}
    for chunk in run:
        apply_events(books, chunk.events, chunk.n_events)
    return books, [i.symbol for i in run.instruments]


def assert_same_books(ds: Dataset, venue: LoopbackVenue, receiver: FeedReceiver, tmp_path: Path,
                      events: int | None = None) -> None:
    got, symbols = received_books(receiver.itch_file(tmp_path / "feed.itch"))
    want = dataset_books(ds, events)
    compared = 0
    for i, meta in enumerate(venue.feed.instruments):
        expected = levels_of(want.get(i, ({}, {})), meta["price_multiplier"])
        index = symbols.index(meta["stock"])
        assert levels_of(got.get(index, ({}, {}))) == expected, meta
        compared += len(expected)
    assert compared > 0


# ---------------------------------------------------------------------------------------------
# running a venue in this process


def venue_config(ds: Dataset, receiver: FeedReceiver, **venue) -> VenueConfig:
    settings = VenueSettings.from_dict({"feed": receiver.address, "session": SESSION,
                                        "speed": "max", "linger": "3s", **venue})
    return VenueConfig(ds.path, settings)


class Running:
    """A venue serving on a thread; `summary` once it ended."""

    def __init__(self, venue: LoopbackVenue, duration_s: float = DEADLINE_S) -> None:
        self.venue = venue
        self.summary: dict | None = None
        self.thread = threading.Thread(target=self._run, args=(duration_s,), daemon=True)
        self.thread.start()

    def _run(self, duration_s: float) -> None:
        self.summary = self.venue.run(duration_s=duration_s)

    def finish(self) -> dict:
        self.venue.stop("test")
        self.thread.join(DEADLINE_S)
        assert not self.thread.is_alive()
        self.venue.close()
        assert self.summary is not None
        return self.summary


def serve_and_receive(ds: Dataset, tmp_path: Path, *, max_messages: int | None = None,
                      drop: range = range(0), local: str = "udp://127.0.0.1:0",
                      **venue) -> tuple[LoopbackVenue, FeedReceiver, dict]:
    receiver = FeedReceiver(drop, local)
    v = LoopbackVenue(venue_config(ds, receiver, **venue), max_messages=max_messages)
    running = Running(v)
    receiver.pump(DEADLINE_S)
    for _ in range(5):  # what the socket lost (or the test dropped), asked for again
        missing = receiver.missing()
        if not missing:
            break
        receiver.request(v.addresses["retransmit"], missing[0], missing[-1] - missing[0] + 1)
        receiver.pump(2.0)
    return v, receiver, running.finish()


@pytest.fixture(scope="module")
def synth_l3(tmp_path_factory) -> Dataset:
    return generate(20_000, seed=3, book="l3", instruments=2, data=str(tmp_path_factory.mktemp("l3")))


@pytest.fixture(scope="module")
def synth_l2(tmp_path_factory) -> Dataset:
    return generate(20_000, seed=5, book="l2", instruments=2, data=str(tmp_path_factory.mktemp("l2")))


def test_l3_feed_rebuilds_the_datasets_books(synth_l3, tmp_path):
    v, receiver, summary = serve_and_receive(synth_l3, tmp_path)
    assert summary["events"] == synth_l3.rows
    assert receiver.end_sequence == summary["next_sequence"] == summary["messages"] + 1
    assert set(summary["skipped"]) <= {"execution_print"}
    assert_same_books(synth_l3, v, receiver, tmp_path)


@pytest.mark.parametrize("max_messages", [700, 6_000])
def test_l3_feed_cut_by_max_messages_shows_the_book_at_that_point(synth_l3, tmp_path, max_messages):
    v, receiver, summary = serve_and_receive(synth_l3, tmp_path, max_messages=max_messages)
    opening = 3 + len(synth_l3.instruments)
    assert summary["messages"] == opening + max_messages + 3  # + end of market, system hours, messages
    assert 0 < summary["events"] < synth_l3.rows
    assert_same_books(synth_l3, v, receiver, tmp_path, events=summary["events"])


def test_feed_to_a_multicast_group(synth_l2, tmp_path):
    v, receiver, summary = serve_and_receive(synth_l2, tmp_path, max_messages=2_000,
                                             local="udp://239.192.11.7:0")
    assert receiver.address.startswith("udp://239.192.11.7:")
    assert v.addresses["feed"] == receiver.address
    assert_same_books(synth_l2, v, receiver, tmp_path, events=summary["events"])


def test_l2_dataset_is_one_order_per_level(synth_l2, tmp_path):
    v, receiver, summary = serve_and_receive(synth_l2, tmp_path)
    assert summary["events"] == synth_l2.rows
    assert_same_books(synth_l2, v, receiver, tmp_path)
    got, _ = received_books(tmp_path / "feed.itch")
    for orders, _levels in got.values():  # never two venue orders at one level
        at = [(s, p) for s, p, _ in orders.values()]
        assert len(at) == len(set(at))


def test_shared_itch_capture_replayed_rebuilds_its_books(tmp_path):
    result = import_data("itch", [shared_file("itch/ex20101224.TEST_ITCH_50.gz")], data=str(tmp_path / "root"),
                         validation=ValidationConfig.from_options(["crossed_book=warn"]))
    ds = Dataset.open(result.paths["canonical"])
    v, receiver, summary = serve_and_receive(ds, tmp_path)
    assert summary["events"] == ds.rows
    assert_same_books(ds, v, receiver, tmp_path)


def test_shared_binance_capture_l2_replayed_rebuilds_its_levels(tmp_path):
    result = import_data("binance", [shared_file("binance/spot/btcusdt_20240808.gz")],
                         data=str(tmp_path / "root"))
    ds = Dataset.open(result.paths["canonical"])
    assert ds.instruments[0].book == "l2"
    v, receiver, summary = serve_and_receive(ds, tmp_path)
    assert summary["events"] == ds.rows and "out_of_range" not in summary["skipped"]
    assert_same_books(ds, v, receiver, tmp_path)


def test_retransmission_fills_an_injected_gap(synth_l3, tmp_path):
    v, receiver, summary = serve_and_receive(synth_l3, tmp_path, drop=range(100, 160))
    assert receiver.dropped == set(range(100, 160))
    assert not receiver.missing()
    r = summary["retransmit"]
    assert r["answered"] >= 1 and r["messages"] >= 60 and r["refused"] == 0
    assert_same_books(synth_l3, v, receiver, tmp_path)


def _no_reply(receiver: FeedReceiver, seconds: float = 0.5) -> bool:
    before = len(receiver.messages)
    receiver.pump(seconds)
    return len(receiver.messages) == before


def test_requests_outside_the_history_are_refused_and_counted(synth_l3, tmp_path):
    receiver = FeedReceiver()
    v = LoopbackVenue(venue_config(synth_l3, receiver, history=500, linger="10s"), max_messages=3_000)
    running = Running(v)
    receiver.pump(DEADLINE_S)
    assert receiver.end_sequence is not None
    end = receiver.end_sequence
    kept = dict(receiver.messages)
    receiver.messages.clear()
    receiver.request(v.addresses["retransmit"], 1, 10)  # long gone
    receiver.request(v.addresses["retransmit"], end, 5)  # not sent yet
    assert _no_reply(receiver)
    receiver.request(v.addresses["retransmit"], end - 20, 20)  # still held
    receiver.pump(2.0)
    assert {s: receiver.messages[s] for s in range(end - 20, end)} == {s: kept[s] for s in range(end - 20, end)}
    summary = running.finish()
    assert summary["retransmit"]["refused"] == 2
    assert summary["retransmit"]["answered"] == 1


def test_garbage_on_the_retransmit_port_is_counted_and_logged(synth_l3, tmp_path, caplog):
    receiver = FeedReceiver()
    v = LoopbackVenue(venue_config(synth_l3, receiver, linger="10s"), max_messages=1_000)
    running = Running(v)
    receiver.pump(DEADLINE_S)
    retransmit = v.addresses["retransmit"]
    with caplog.at_level("WARNING", logger="lockstep.venue"):
        for junk in (b"", b"x" * 7, b"\xff" * 25, moldudp64.encode_heartbeat(SESSION, 5)):
            receiver.sock.send_to(junk, retransmit)
        other = moldudp64.encode_request(moldudp64.RetransmissionRequest("OTHER", 5, 1))
        receiver.sock.send_to(other, retransmit)
        receiver.messages.clear()
        receiver.request(retransmit, 5, 3)  # the venue still answers
        receiver.pump(2.0)
        assert sorted(receiver.messages) == [5, 6, 7]
        summary = running.finish()
    r = summary["retransmit"]
    assert r["bad_requests"] == 4 and r["wrong_session"] == 1 and r["answered"] == 1
    assert sum(receiver.address in m for m in caplog.messages) >= 4


def test_a_flood_of_garbage_is_counted_not_logged_line_by_line(synth_l3, caplog):
    receiver = FeedReceiver()
    v = LoopbackVenue(venue_config(synth_l3, receiver, linger="10s"), max_messages=100)
    running = Running(v)
    receiver.pump(DEADLINE_S)
    with caplog.at_level("WARNING", logger="lockstep.venue"):
        for i in range(50):
            receiver.sock.send_to(bytes([i]) * 3, v.addresses["retransmit"])
        deadline = time.monotonic() + DEADLINE_S
        while v.feed.retransmit.bad_requests < 50 and time.monotonic() < deadline:
            time.sleep(0.01)
        summary = running.finish()
    assert summary["retransmit"]["bad_requests"] == 50
    assert sum("bad request" in m for m in caplog.messages) == 20


def _paced_dataset(root: Path, span_s: float, events: int = 41) -> Dataset:
    cols = empty_columns(events)
    ts = 1_700_000_000_000_000_000 + np.linspace(0, span_s * 1e9, events).astype(np.int64)
    cols["ts_event"][:] = ts
    cols["ts_recv"][:] = ts
    cols["seq"][:] = np.arange(1, events + 1)
    cols["instrument"][:] = 0
    cols["kind"][:] = EventKind.L2_SET
    cols["side"][:] = 1
    cols["flags"][:] = 1
    cols["price"][:] = 100 + np.arange(events) % 5
    cols["qty"][:] = 1 + np.arange(events)
    cols["order_id"][:] = 0
    with DatasetWriter("paced", [Instrument(symbol="PACE", venue="TEST", price_increment="0.01",
                                            size_increment="1", book="l2")], data=str(root)) as w:
        w.write(cols)
    return Dataset.open("paced", data=str(root))


def _l3_dataset(root: Path, rows: list[tuple[int, int, int, int, int]]) -> Dataset:
    """(kind, side, price, qty, order_id) rows, one venue message each, on instrument 0 (L3)."""
    cols = empty_columns(len(rows))
    ts = 1_700_000_000_000_000_000 + np.arange(len(rows), dtype=np.int64)
    cols["ts_event"][:] = ts
    cols["ts_recv"][:] = ts
    cols["seq"][:] = np.arange(1, len(rows) + 1)
    cols["instrument"][:] = 0
    cols["flags"][:] = 1
    for name, values in zip(("kind", "side", "price", "qty", "order_id"), zip(*rows)):
        cols[name][:] = values
    with DatasetWriter("l3rows", [Instrument(symbol="ROWS", venue="TEST", price_increment="0.01",
                                             size_increment="1", book="l3")], data=str(root)) as w:
        w.write(cols)
    return Dataset.open("l3rows", data=str(root))


def test_events_no_message_carries_are_counted_by_reason(tmp_path):
    add, modify, delete = EventKind.L3_ADD, EventKind.L3_MODIFY, EventKind.L3_DELETE
    ds = _l3_dataset(tmp_path / "root", [
        (add, 1, 100, 5, 7),
        (modify, 1, 100, 5, 7),        # changes nothing
        (modify, 1, 100, 3, 99),       # an order the feed never saw
        (delete, 1, 0, 0, 98),         # the same
        (add, 2, 1 << 40, 1, 8),       # a price beyond Price(4)'s 32 bits
        (EventKind.L2_SET, 1, 100, 1, 0),  # an L2 event on an L3 instrument
        (EventKind.ORDER_FILLED, 1, 100, 1, 5),  # our own execution: not market data
        (modify, 1, 101, 5, 7),        # a new price: replaced
    ])
    _, receiver, summary = serve_and_receive(ds, tmp_path)
    assert summary["skipped"] == {"no_change": 1, "unknown_order": 2, "out_of_range": 1,
                                  "wrong_book_kind": 1, "not_market_data": 1}
    types = [m[:1] for _, m in sorted(receiver.messages.items())]
    assert types == [b"S", b"S", b"S", b"R", b"A", b"U", b"S", b"S", b"S"]
    got, _ = received_books(receiver.itch_file(tmp_path / "feed.itch"))
    assert levels_of(got[0]) == {(1, 10100): 5}  # order 7 moved to 1.01 (Price(4) 10100)


def test_own_orders_are_shown_in_the_same_sequence(tmp_path):
    ds = _l3_dataset(tmp_path / "root", [(EventKind.L3_ADD, 1, 100, 5, 7)])
    receiver = FeedReceiver()
    with LoopbackVenue(venue_config(ds, receiver, speed=1.0)) as v:
        markets = ReplayedMarkets(["l3"])
        v.feed.attach_markets(markets)
        v.feed.start()
        # client order id 7, like the dataset's order 7: another order all the same
        assert markets.submit(0, 7, Side.ASK, TimeInForce.GTC, 105, 3).outcome is SubmitOutcome.RESTED
        v.feed.show_own_orders()
        assert v.feed.poll() is None  # the dataset's one event, then the end
        assert markets.cancel(0, 7)
        v.feed.show_own_orders()
        receiver.pump(2.0, idle=0.2)
    messages = [m for _, m in sorted(receiver.messages.items())]
    adds = [m for m in messages if m[:1] == b"A"]
    assert len(adds) == 2 and adds[0][19:20] == b"S" and adds[1][19:20] == b"B"
    assert messages[-1][:1] == b"D" and messages[-1][11:19] == adds[0][11:19]


@pytest.mark.parametrize("speed", [2.0, 8.0])
def test_pacing_follows_ts_event_times_the_speed(tmp_path, speed):
    ds = _paced_dataset(tmp_path / "root", span_s=2.0)
    receiver = FeedReceiver()
    v = LoopbackVenue(venue_config(ds, receiver, speed=speed, linger="0s"))
    running = Running(v)
    receiver.pump(DEADLINE_S)
    running.finish()
    data = [t for t, seq in receiver.arrivals if seq > 4]  # after the opening messages
    elapsed = data[-1] - data[0]
    assert 0.6 * 2.0 / speed <= elapsed <= 2.0 / speed + 0.5


def test_heartbeats_while_idle(tmp_path):
    ds = _paced_dataset(tmp_path / "root", span_s=2.0, events=2)
    receiver = FeedReceiver()
    v = LoopbackVenue(venue_config(ds, receiver, speed=1.0, heartbeat="200ms", linger="0s"))
    running = Running(v)
    receiver.pump(DEADLINE_S)
    summary = running.finish()
    assert 4 <= summary["heartbeats"] <= 12


# ---------------------------------------------------------------------------------------------
# the command


def _cli_env() -> dict:
    return {k: v for k, v in os.environ.items() if k != "LOCKSTEP_DATA"}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cli_prints_the_listen_line_then_the_summary(synth_l3, tmp_path, sig):
    cfg = tmp_path / "venue.toml"
    cfg.write_text('[venue]\nspeed = 1.0\nlinger = "60s"\n'
                   'users = [{username = "alice", password = "s3cretpw"}]\n')
    proc = subprocess.Popen([LOCKSTEP, "venue", "serve", str(cfg), "--dataset", synth_l3.path, "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_cli_env(),
                            cwd=tmp_path)
    try:
        listening = json.loads(proc.stdout.readline())
        assert set(listening) >= {"feed", "retransmit", "order_entry"}
        for key in ("feed", "retransmit"):
            assert listening[key].startswith("udp://127.0.0.1:") and not listening[key].endswith(":0")
        assert listening["order_entry"].startswith("tcp://127.0.0.1:")
        assert not listening["order_entry"].endswith(":0")  # the order-entry port, bound
        time.sleep(0.5)
        os.kill(proc.pid, sig)
        out, err = proc.communicate(timeout=DEADLINE_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(DEADLINE_S)
    assert proc.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["stopped_by"] == sig.name
    assert {"packets", "messages", "seconds", "orders", "fills", "retransmit"} <= set(summary)
    assert summary["orders"] == summary["fills"] == 0 and summary["messages"] > 0
    assert "s3cretpw" not in out + err


def test_cli_max_messages_ends_the_feed(synth_l3, tmp_path):
    cfg = tmp_path / "venue.toml"
    cfg.write_text(f'dataset = "{synth_l3.path}"\n[venue]\nspeed = "max"\nlinger = "0s"\n')
    written = tmp_path / "out" / "summary.json"
    written.parent.mkdir()
    proc = subprocess.run([LOCKSTEP, "venue", "serve", str(cfg), "--max-messages", "500", "--json",
                           "--summary", str(written)],
                          capture_output=True, text=True, env=_cli_env(), cwd=tmp_path, timeout=DEADLINE_S,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 2
    summary = json.loads(lines[1])
    assert summary["stopped_by"] == "end"
    assert summary["messages"] == 3 + len(synth_l3.instruments) + 500 + 3
    assert json.loads(written.read_text()) == summary


def test_cli_duration_ends_the_run(synth_l3, tmp_path):
    cfg = tmp_path / "venue.toml"
    cfg.write_text(f'dataset = "{synth_l3.path}"\n[venue]\nspeed = 1.0\nlinger = "60s"\n')
    proc = subprocess.run([LOCKSTEP, "venue", "serve", str(cfg), "--duration", "0.5", "--json"],
                          capture_output=True, text=True, env=_cli_env(), cwd=tmp_path, timeout=DEADLINE_S,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["stopped_by"] == "duration"
    assert 0.5 <= summary["seconds"] < 5.0
    assert 0 < summary["events"] < synth_l3.rows  # paced at speed 1, the dataset is far from done


@pytest.mark.parametrize("setting, named", [
    ("venue.spede=2", "venue.spede: unknown key"),
    ("venue.speed=0", "venue.speed: must be a number > 0"),
    ('venue.speed="fast"', "venue.speed: must be a number > 0"),
    ('venue.feed="tcp://127.0.0.1:5"', "venue.feed: 'tcp://127.0.0.1:5' must be a udp:// address"),
    ('venue.retransmit="udp://nowhere:1"', "venue.retransmit:"),
    ('venue.session="bad name!"', "venue.session: must be 1 to 10 letters or digits"),
    ('venue.users=[{username="toolongname", password="x"}]', "venue.users[0].username"),
    ('venue.users=[{username="bob"}]', "venue.users[0].password: missing"),
])
def test_config_errors_are_one_line(tmp_path, setting, named):
    cfg = tmp_path / "venue.toml"
    cfg.write_text('dataset = "nowhere"\n')
    proc = subprocess.run([LOCKSTEP, "venue", "serve", str(cfg), "--set", setting],
                          capture_output=True, text=True, env=_cli_env(), cwd=tmp_path, timeout=DEADLINE_S,
                          check=False)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], proc.stderr


def test_config_error_in_the_file_names_the_file(tmp_path):
    cfg = tmp_path / "venue.toml"
    cfg.write_text('dataset = "x"\n[venue]\nhistory = 0\n')
    proc = subprocess.run([LOCKSTEP, "venue", "serve", str(cfg)], capture_output=True, text=True,
                          env=_cli_env(), cwd=tmp_path, timeout=DEADLINE_S, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"error: {cfg}: venue.history: 0 is outside [1, {1 << 40}]"


def test_user_repr_hides_the_password():
    s = VenueSettings.from_dict({"users": [{"username": "alice", "password": "hunter22"}]})
    assert "hunter22" not in repr(s) and "hunter22" not in json.dumps(s.to_dict())
    assert s.users[0].password == "hunter22"


def test_the_example_venue_config_serves_the_quickstart_dataset():
    """examples/loopback_venue.toml, which the README names after quickstart, is a valid config
    for the dataset quickstart makes."""
    example = Path(__file__).resolve().parents[1] / "examples" / "loopback_venue.toml"
    config = load_venue_config(example)
    assert config.dataset == "synthetic-l2"
    assert [u.username for u in config.venue.users] == ["demo"]
    assert config.venue.speed is None  # "max": as fast as possible
