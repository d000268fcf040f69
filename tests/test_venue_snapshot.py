"""Book snapshots at the loopback venue (GLIMPSE-style, over SoupBinTCP): the snapshot decoded by
the project's ITCH importer is the book a receiver of the MoldUDP64 feed holds after every message
numbered below the End of Snapshot's sequence number, order by order and in queue order, at many
points of a synthetic L3 day and with our own orders shown; the compiled snapshot and its twin
write the same bytes; end to end over a socket the messages come in the contract's order; a wrong
password is refused; config errors name the key."""
from __future__ import annotations

import logging
import socket
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from lockstep._bindings.itch_feed import ItchFeed as CompiledFeed
from test_itch_feed import FAST, _columns, _feed, event, own_order
from test_venue_feed import FeedReceiver, Running, venue_config

from lockstep.data.dataset import Dataset
from lockstep.data.importers.itch import decode_itch
from lockstep.data.synth import generate
from lockstep.enums import LoginRejectReason, Status, TimeInForce
from lockstep.errors import ConfigError
from lockstep.events import EventKind, Side
from lockstep.protocols import glimpse, moldudp64
from lockstep.protocols import soupbintcp as soup
from lockstep.reference.itch_feed import ItchFeed as ReferenceFeed
from lockstep.reference.replayed_markets import ReplayedMarkets as ReferenceMarkets
from lockstep.venue.loopback.config import VenueSettings, load_venue_config
from lockstep.venue.loopback.serve import LoopbackVenue
from lockstep.venue.loopback.sessions import Account
from lockstep.venue.loopback.snapshot import SnapshotServer, snapshot_packets
from lockstep.venue.matching import ReplayedMarkets as CompiledMarkets

DEADLINE_S = 30.0
PASSWORD = "pw-1"
DATE = "2024-01-02"


def blocks_of(messages: list[bytes]) -> bytes:
    return b"".join(len(m).to_bytes(2, "big") + m for m in messages)


def split_blocks(blocks: bytes) -> list[bytes]:
    out, at = [], 0
    while at < len(blocks):
        n = int.from_bytes(blocks[at:at + 2], "big")
        out.append(blocks[at + 2:at + 2 + n])
        at += 2 + n
    assert at == len(blocks)
    return out


# ---------------------------------------------------------------------------------------------
# an L3 book with queue order, from the events the project's ITCH importer decodes


def queue_books(path: Path) -> dict[str, dict[tuple[int, int], list[tuple[int, int]]]]:
    """Per stock: (side, price) -> [(order reference, shares)] in queue order (oldest first)."""
    run = decode_itch(path, date=DATE)
    orders: dict[int, dict[int, tuple[int, int]]] = {}  # instrument -> ref -> (side, price)
    levels: dict[int, dict[tuple[int, int], OrderedDict]] = {}
    for chunk in run:
        ev, n = chunk.events, chunk.n_events
        cols = [ev[k][:n].tolist() for k in ("kind", "instrument", "side", "price", "qty", "order_id")]
        for kind, inst, side, price, qty, ref in zip(*cols):
            live, book = orders.setdefault(inst, {}), levels.setdefault(inst, {})
            if kind == EventKind.L3_ADD:
                assert ref not in live
                live[ref] = (side, price)
                book.setdefault((side, price), OrderedDict())[ref] = qty
            elif kind in (EventKind.L3_MODIFY, EventKind.L3_DELETE, EventKind.L3_EXECUTE):
                key = live[ref]
                left = 0 if kind == EventKind.L3_DELETE else \
                    qty if kind == EventKind.L3_MODIFY else book[key][ref] - qty
                assert kind != EventKind.L3_MODIFY or price == key[1]  # 'X' keeps its price
                if left > 0:
                    book[key][ref] = left
                else:
                    del live[ref], book[key][ref]
                    if not book[key]:
                        del book[key]
    names = [i.symbol for i in run.instruments]
    return {names[i]: {k: list(q.items()) for k, q in b.items()} for i, b in levels.items()}


def assert_snapshot_is_the_feed_before_it(blocks: bytes, next_sequence: int,
                                          feed_messages: list[bytes], stocks: list[str],
                                          tmp_path: Path) -> int:
    """The snapshot's books equal the feed's after messages 1 .. next_sequence - 1 (and its
    messages are the directories, then adds); the number of orders compared."""
    messages = split_blocks(blocks)
    assert len(feed_messages) == next_sequence - 1
    kinds = [m[:1] for m in messages]
    assert kinds[:len(stocks)] == [b"R"] * len(stocks)
    assert set(kinds[len(stocks):]) <= {b"A"}
    directories = [m for m in feed_messages if m[:1] == b"R"]
    assert [m[11:] for m in messages[:len(stocks)]] == [m[11:] for m in directories]  # but the time
    (tmp_path / "snap.itch").write_bytes(blocks)
    (tmp_path / "feed.itch").write_bytes(blocks_of(feed_messages))
    got, want = queue_books(tmp_path / "snap.itch"), queue_books(tmp_path / "feed.itch")
    assert sorted(got) == sorted(want) == sorted(stocks)
    assert got == want
    return sum(len(q) for b in want.values() for q in b.values())


def run_feed_in_steps(ds: Dataset, tmp_path: Path, *, step: int, own_at: tuple[int, ...] = ()):
    """Feeds the dataset through the compiled feed `step` messages a call (our orders submitted
    and shown after the calls in `own_at`), checking a snapshot after every call."""
    feed = CompiledFeed(b"SNAPTEST  ", 1400, 0, 1, 1024)
    markets = CompiledMarkets(["l3"] * len(ds.instruments))
    feed.attach(markets.core)
    stocks = []
    for i, ins in enumerate(ds.instruments):
        stocks.append(f"S{i}")
        feed.add_instrument(i, f"S{i}".encode().ljust(8), 1, ins.book == "l2")
    cols = next(ds.iter_columns(ds.rows))
    n = len(cols["ts_event"])
    received: list[bytes] = []
    out, lengths = np.zeros(1 << 21, np.uint8), np.zeros(1 << 14, np.uint32)

    def collect():
        k = feed.finish()
        data, at = out[:int(lengths[:k].sum())].tobytes(), 0
        for length in lengths[:k].tolist():
            packet = moldudp64.read_packet(data[at:at + length])
            assert packet.sequence == len(received) + 1
            received.extend(packet.messages)
            at += length

    feed.begin(out, lengths)
    feed.system_event(ord("O"), int(cols["ts_event"][0]))
    blocks, next_sequence = feed.snapshot()  # before any event: the directories alone
    assert next_sequence == 2 and len(split_blocks(blocks)) == len(stocks)
    for i in range(len(stocks)):
        feed.stock_directory(i, int(cols["ts_event"][0]))
    collect()
    pos, calls, compared, own_id, most_shown = 0, 0, 0, 0, 0
    for _ in range(4 * n // step + 10):
        if pos == n:
            break
        feed.begin(out, lengths)
        _, pos, _ = feed.encode(cols, n, pos, 1 << 62, step)
        collect()
        for inst in range(len(stocks)):
            markets.drain(inst)
        calls += 1
        if calls in own_at:  # orders of ours where the book's last add went: they queue, may fill
            ts = int(cols["ts_event"][pos - 1])
            for inst in range(len(stocks)):
                adds = np.flatnonzero((cols["kind"][:pos] == EventKind.L3_ADD) &
                                      (cols["instrument"][:pos] == inst))
                side, price = Side(int(cols["side"][adds[-1]])), int(cols["price"][adds[-1]])
                for away in (0, 1):
                    own_id += 1
                    markets.submit(inst, own_id, side, TimeInForce.GTC,
                                   price - away if side == Side.BID else price + away, 3)
                markets.drain(inst)
            feed.begin(out, lengths)
            assert feed.show_own_orders(ts) == Status.OK
            collect()
            most_shown = max(most_shown, feed.own_shown)
        blocks, next_sequence = feed.snapshot()
        compared += assert_snapshot_is_the_feed_before_it(blocks, next_sequence, received, stocks,
                                                          tmp_path)
        # stamped with the last event consumed
        stamp = int.from_bytes(split_blocks(blocks)[0][5:11], "big")
        assert stamp == int(cols["ts_event"][pos - 1]) & ((1 << 48) - 1)
    assert pos == n
    return calls, compared, most_shown


@pytest.fixture(scope="module")
def synth_l3(tmp_path_factory) -> Dataset:
    return generate(20_000, seed=3, book="l3", instruments=2, data=str(tmp_path_factory.mktemp("l3")))


def test_snapshot_is_the_feeds_book_before_its_sequence_number(synth_l3, tmp_path):
    calls, compared, _ = run_feed_in_steps(synth_l3, tmp_path, step=2_500)
    assert calls >= 8 and compared > 100


def test_snapshot_with_our_orders_shown(synth_l3, tmp_path):
    calls, compared, most_shown = run_feed_in_steps(synth_l3, tmp_path, step=4_000, own_at=(1, 2, 4))
    assert calls >= 5 and compared > 100 and most_shown >= 2


def test_snapshot_queue_order_follows_replaced_orders():
    """An order replaced ('U') goes to the back of its level for a receiver: the snapshot puts it
    after an order added at that price since (the feed's list keeps its old place)."""
    events = [(EventKind.L3_ADD, 1, 1, 2, 5, 1, True, 0),  # order 1: bid 2
              (EventKind.L3_ADD, 1, 1, 3, 5, 2, True, 0),  # order 2: bid 3
              (EventKind.L3_MODIFY, 1, 1, 3, 5, 1, True, 0),  # order 1 -> 3: behind order 2
              (EventKind.L3_ADD, 1, 1, 3, 5, 3, True, 0)]  # order 3: behind both
    for cls in (CompiledFeed, ReferenceFeed):
        feed = _feed(cls)
        feed.begin(np.zeros(1 << 16, np.uint8), np.zeros(64, np.uint32))
        cols = _columns(events)
        assert feed.encode(cols, 4, 0, 1 << 62, 1 << 20)[:2] == (Status.OK, 4)
        adds = [m for m in split_blocks(feed.snapshot()[0]) if m[:1] == b"A"]
        # references: 1, 2 the adds, 3 the replacement of order 1, 4 order 3
        assert [int.from_bytes(m[11:19], "big") for m in adds] == [2, 3, 4]


# ---------------------------------------------------------------------------------------------
# the compiled snapshot and its twin


@FAST
@given(st.lists(event, min_size=1, max_size=120), st.lists(own_order, max_size=4),
       st.integers(1, 150))
def test_compiled_snapshot_matches_its_twin(events, orders, stop):
    cols = _columns(events)
    n = len(events)
    stop = min(stop, n)
    got = []
    for compiled in (True, False):
        feed = _feed(CompiledFeed if compiled else ReferenceFeed)
        markets = CompiledMarkets(["l2", "l3"]) if compiled else ReferenceMarkets(["l2", "l3"])
        feed.attach(markets.core if compiled else markets)
        feed.begin(np.zeros(1 << 20, np.uint8), np.zeros(1024, np.uint32))
        snaps = [feed.snapshot()]
        for k, (inst, side, price, qty) in enumerate(orders, start=1):
            markets.submit(inst, k, side, TimeInForce.GTC, price, qty)
        assert feed.show_own_orders(int(cols["ts_event"][0])) == Status.OK
        pos = 0
        for _ in range(2 * n + 2):
            _, pos, _ = feed.encode(cols, stop, pos, 1 << 62, 1 << 40)
            for inst in (0, 1):
                markets.drain(inst)
            if pos == stop:
                break
        snaps.append(feed.snapshot())
        got.append(snaps)
    assert got[0] == got[1]


# ---------------------------------------------------------------------------------------------
# over a socket


class SnapshotClient:
    """A blocking SoupBinTCP client on a plain socket: every wait bounded by DEADLINE_S."""

    def __init__(self, address: str) -> None:
        host, port = address.removeprefix("tcp://").rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=DEADLINE_S)
        self.framer = soup.Framer()
        self.closed = False

    def login(self, username: str = "ALICE", password: str = PASSWORD, session: str = "",
              sequence: int = 0) -> None:
        self.sock.sendall(soup.encode(soup.LoginRequest(username, password, session, sequence)))

    def read_all(self) -> list[soup.SoupPacket]:
        """Every packet until the server closes the connection."""
        packets: list[soup.SoupPacket] = []
        end = time.monotonic() + DEADLINE_S
        for _ in range(1_000_000):
            assert time.monotonic() < end, "the server did not close the connection"
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                self.closed = True
                break
            packets.extend(soup.decode(p) for p in self.framer.feed(chunk))
            assert self.framer.error is None
        assert self.closed
        return packets

    def close(self) -> None:
        self.sock.close()


def check_contract(packets: list[soup.SoupPacket], session: str, stocks: int) -> tuple[list[bytes], int]:
    """Login Accepted (session, 1), directories, adds, End of Snapshot, End of Session: the ITCH
    messages and the End of Snapshot's sequence number."""
    assert packets[0] == soup.LoginAccepted(session, 1)
    assert isinstance(packets[-1], soup.EndOfSession)
    data = [p for p in packets[1:-1] if not isinstance(p, soup.ServerHeartbeat)]
    assert all(isinstance(p, soup.SequencedData) for p in data)
    messages = [p.payload for p in data]
    next_sequence = glimpse.read_end_of_snapshot(messages[-1])
    itch = messages[:-1]
    assert [m[:1] for m in itch[:stocks]] == [b"R"] * stocks
    assert [int.from_bytes(m[1:3], "big") for m in itch[:stocks]] == list(range(1, stocks + 1))
    assert all(m[:1] == b"A" for m in itch[stocks:])
    return itch, next_sequence


@pytest.mark.parametrize("speed, login_after", [("max", None), (0.5, 1.0)])
def test_end_to_end_over_a_socket(synth_l3, tmp_path, speed, login_after):
    """Logged in once the feed has ended, or while it runs (the synthetic day's 1.6 s replayed
    at half speed, the login after 1 s): the snapshot is the feed before its End of Snapshot."""
    receiver = FeedReceiver()
    session = "TESTFEED"
    cfg = venue_config(synth_l3, receiver, snapshot="tcp://127.0.0.1:0", linger="20s", speed=speed,
                       users=[{"username": "ALICE", "password": PASSWORD}])
    v = LoopbackVenue(cfg)
    address = v.addresses["snapshot"]
    assert address.startswith("tcp://127.0.0.1:") and not address.endswith(":0")
    running = Running(v)
    try:
        if login_after is None:
            receiver.pump(DEADLINE_S)  # the whole feed, then End of Session
            assert receiver.end_sequence is not None
        else:
            receiver.pump(login_after)
            assert receiver.end_sequence is None
        client = SnapshotClient(address)
        client.login(session=session, sequence=0)
        packets = client.read_all()
        client.close()
        receiver.pump(DEADLINE_S)
        for _ in range(5):  # what the socket lost, asked for again
            missing = receiver.missing()
            if not missing:
                break
            receiver.request(v.addresses["retransmit"], missing[0], missing[-1] - missing[0] + 1)
            receiver.pump(2.0)
        assert receiver.end_sequence is not None and not receiver.missing()
    finally:
        summary = running.finish()
        receiver.close()
    itch, next_sequence = check_contract(packets, session, len(synth_l3.instruments))
    if login_after is None:
        assert next_sequence == receiver.end_sequence  # taken after the feed's last message
    else:
        assert 100 < next_sequence < receiver.end_sequence - 100  # taken while it ran
    feed = [m for s, m in sorted(receiver.messages.items()) if s < next_sequence]
    stocks = [m[11:19].decode().strip() for m in itch[:len(synth_l3.instruments)]]
    compared = assert_snapshot_is_the_feed_before_it(blocks_of(itch), next_sequence, feed, stocks,
                                                     tmp_path)
    assert compared > 0
    snap = summary["snapshot"]
    assert snap["snapshots"] == snap["logins"] == snap["completed"] == 1
    assert snap["snapshot_messages"] == len(itch)


# ---------------------------------------------------------------------------------------------
# a server of its own (a stand-in feed), served from this thread


class _Feed:
    class settings:  # what SnapshotServer reads of MarketDataFeed.settings
        session = "SNAPSESS"

    def __init__(self, blocks: bytes = b"", next_sequence: int = 1) -> None:
        self.taken = (blocks, next_sequence)

    def snapshot(self) -> tuple[bytes, int]:
        return self.taken


def _serve_until(server: SnapshotServer, client: SnapshotClient, seconds: float = DEADLINE_S, *,
                 end_of_session: bool = False) -> list:
    """The packets the client reads while the server runs, until the server closes the
    connection (or, with `end_of_session`, until End of Session, the connection still open)."""
    client.sock.settimeout(0.005)
    packets: list = []
    end = time.monotonic() + seconds
    for _ in range(1_000_000):
        if end_of_session and packets and isinstance(packets[-1], soup.EndOfSession):
            return packets
        assert time.monotonic() < end, "the server did not close the connection"
        server.tick()
        try:
            chunk = client.sock.recv(1 << 16)
        except TimeoutError:
            continue
        if not chunk:
            assert not end_of_session, "closed before End of Session"
            return packets
        packets.extend(soup.decode(p) for p in client.framer.feed(chunk))
    raise AssertionError("unreachable")


@pytest.mark.parametrize("username, password, session, reason", [
    ("ALICE", "wrong", "", LoginRejectReason.NOT_AUTHORIZED),
    ("MALLET", PASSWORD, "", LoginRejectReason.NOT_AUTHORIZED),
    ("ALICE", PASSWORD, "OTHERDAY", LoginRejectReason.SESSION_NOT_AVAILABLE),
])
def test_login_refused_like_order_entry(caplog, username, password, session, reason):
    server = SnapshotServer(_Feed(), "tcp://127.0.0.1:0", [Account("ALICE", PASSWORD)])
    client = SnapshotClient(server.address)
    try:
        with caplog.at_level(logging.WARNING, "lockstep.venue.loopback"):
            client.login(username, password, session)
            assert _serve_until(server, client) == [soup.LoginRejected(reason)]
        assert server.counts["login_rejects"] == 1 and server.counts["snapshots"] == 0
        assert PASSWORD not in caplog.text and "wrong" not in caplog.text
        assert "login rejected" in caplog.text
    finally:
        client.close()
        server.close()


def test_a_large_snapshot_goes_out_as_the_client_reads():
    """More than the write buffer holds (1 MB): sent in whole packets as it drains."""
    adds = [bytes([ord("A")]) + bytes(10) + k.to_bytes(8, "big") + b"B" + bytes(16) for k in range(40_000)]
    server = SnapshotServer(_Feed(blocks_of(adds), 123_456), "tcp://127.0.0.1:0",
                            [Account("ALICE", PASSWORD)], heartbeat_interval=0.05, linger=0)
    client = SnapshotClient(server.address)
    try:
        client.login(sequence=7)  # the number asked for does not matter: Login Accepted at 1
        packets = _serve_until(server, client)
    finally:
        client.close()
        server.close()
    itch, next_sequence = check_contract(packets, "SNAPSESS", 0)
    assert itch == adds and next_sequence == 123_456
    assert server.counts["completed"] == 1 and server.counts["disconnects"] == 1


def test_a_client_that_logs_out_midway_is_let_go():
    """Logged out before it read anything of a snapshot larger than the socket buffers and the
    write buffer together hold: the rest is never sent."""
    adds = [bytes([ord("A")]) + bytes(10) + k.to_bytes(8, "big") + b"S" + bytes(16) for k in range(400_000)]
    server = SnapshotServer(_Feed(blocks_of(adds), 5), "tcp://127.0.0.1:0", [Account("ALICE", PASSWORD)])
    client = SnapshotClient(server.address)
    try:
        client.login()
        client.sock.sendall(soup.encode(soup.LogoutRequest()))
        packets = _serve_until(server, client)
    finally:
        client.close()
        server.close()
    assert packets[0] == soup.LoginAccepted("SNAPSESS", 1)
    assert not isinstance(packets[-1], soup.EndOfSession)  # closed before the end
    assert server.counts["logouts"] == 1 and server.counts["completed"] == 0
    assert server.logged_in == []


def test_after_end_of_session_the_server_waits_for_the_client_to_close(caplog):
    """The client's bytes after End of Session are read, not left for a reset to answer: the
    connection stays until the client closes it."""
    adds = [b"A" + bytes(10) + k.to_bytes(8, "big") + b"B" + bytes(16) for k in range(100)]
    server = SnapshotServer(_Feed(blocks_of(adds), 42), "tcp://127.0.0.1:0",
                            [Account("ALICE", PASSWORD)], linger=DEADLINE_S)
    client = SnapshotClient(server.address)
    try:
        with caplog.at_level(logging.WARNING, "lockstep.venue.loopback"):
            client.login()
            itch, next_sequence = check_contract(_serve_until(server, client, end_of_session=True),
                                                 "SNAPSESS", 0)
            assert itch == adds and next_sequence == 42
            client.sock.sendall(soup.encode(soup.ClientHeartbeat()))
            end = time.monotonic() + 0.3
            while time.monotonic() < end:  # still open: nothing to read, no end of stream
                server.tick()
                with pytest.raises(TimeoutError):
                    client.sock.recv(1 << 16)
            assert server.counts["completed"] == 1 and server.counts["disconnects"] == 0
            client.close()
            end = time.monotonic() + DEADLINE_S
            while server.counts["disconnects"] == 0:
                assert time.monotonic() < end, "the server kept the closed connection"
                server.tick()
                time.sleep(0.001)
        assert server.logged_in == [] and "disconnected" not in caplog.text
    finally:
        client.close()
        server.close()


def test_a_client_that_keeps_the_connection_gets_a_clean_close_after_the_linger():
    server = SnapshotServer(_Feed(blocks_of([b"A" + bytes(35)]), 2), "tcp://127.0.0.1:0",
                            [Account("ALICE", PASSWORD)], linger=0.2)
    client = SnapshotClient(server.address)
    try:
        client.login()
        _serve_until(server, client, end_of_session=True)
        drained = time.monotonic()
        client.sock.sendall(soup.encode(soup.ClientHeartbeat()))
        assert _serve_until(server, client) == []  # an end of stream, not ConnectionResetError
        assert time.monotonic() - drained >= 0.2 - 0.05  # the server's clock started a bit earlier
        assert server.counts["completed"] == 1 and server.counts["disconnects"] == 1
    finally:
        client.close()
        server.close()


def test_snapshot_packets_layout():
    data, offsets = snapshot_packets(blocks_of([b"R" + bytes(38), b"A" + bytes(35)]), 9)
    assert offsets == [0, 42, 81, 81 + 3 + 21, 81 + 24 + 3]
    assert data[:3] == b"\x00\x28S" and data[42:45] == b"\x00\x25S"
    assert soup.decode(data[81:105]) == soup.SequencedData(glimpse.end_of_snapshot(9))
    assert data[105:] == soup.encode(soup.EndOfSession())
    with pytest.raises(ValueError, match="inside a block"):
        snapshot_packets(b"\x00\x05AB", 1)


# ---------------------------------------------------------------------------------------------
# configuration


@pytest.mark.parametrize("value, match", [
    ("udp://127.0.0.1:0", r"venue\.snapshot: .*must be a tcp:// address"),
    ("tcp://10.1.2.3:9000", r"venue\.snapshot: must be a loopback address"),
    ("nonsense", r"venue\.snapshot: "),
    (5, r"venue\.snapshot: must be a tcp://HOST:PORT string"),
])
def test_config_errors_name_the_key(tmp_path, value, match):
    config = tmp_path / "venue.toml"
    shown = f'"{value}"' if isinstance(value, str) else str(value)
    config.write_text(f'dataset = "x"\n[venue]\nsnapshot = {shown}\n'
                      f'users = [{{username = "ALICE", password = "{PASSWORD}"}}]\n')
    with pytest.raises(ConfigError, match=match) as info:
        load_venue_config(config)
    assert "\n" not in str(info.value)


def test_config_snapshot_needs_users_and_round_trips(tmp_path):
    config = tmp_path / "venue.toml"
    config.write_text('dataset = "x"\n[venue]\nsnapshot = "tcp://127.0.0.1:0"\n')
    with pytest.raises(ConfigError, match=r"venue\.snapshot: needs venue\.users"):
        load_venue_config(config)
    assert VenueSettings().snapshot is None and VenueSettings().to_dict()["snapshot"] == ""
    settings = VenueSettings.from_dict({"snapshot": "tcp://127.0.0.1:0",
                                        "users": [{"username": "ALICE", "password": PASSWORD}]})
    assert settings.to_dict()["snapshot"] == "tcp://127.0.0.1:0"
    assert VenueSettings.from_dict({"snapshot": ""}).snapshot is None
