"""The recorder's SoupBinTCP feeds: the loopback venue's ITCH feed over SoupBinTCP recorded
through a connection cut in the middle (every sequence number once, the import equal to the ITCH
import of the same messages), a server we did not write (nasdaq-protocols), and bad servers: a
rejected login, garbage bytes, a closed connection, a sequence number that jumps."""
from __future__ import annotations

import itertools
import json
import os
import random
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from test_cli import LOCKSTEP
from test_recorder import itch_events, write_config

from lockstep.data.importers.capture import _Ordered, decode_capture
from lockstep.data.importers.itch import decode_itch
from lockstep.data.raw_capture import (
    HISTORY_STREAM,
    capture_files,
    read_frames,
    repair,
    scan,
)
from lockstep.data.recorder.capture import Capture, CaptureSettings, FeedCounts
from lockstep.data.recorder.config import load_record_config
from lockstep.data.recorder.metrics import serve_metrics
from lockstep.data.recorder.run import Recorder
from lockstep.data.recorder.soupbintcp import SoupFeed
from lockstep.data.synth import generate
from lockstep.enums import SoupNoticeKind
from lockstep.errors import ConfigError
from lockstep.events import EventKind
from lockstep.net import UdpSocket
from lockstep.protocols import moldudp64
from lockstep.protocols import soupbintcp as soup
from lockstep.protocols.soup_client import SoupNotice
from lockstep.venue.loopback.config import load_venue_config
from lockstep.venue.loopback.serve import LoopbackVenue
from lockstep.venue.loopback.soup_feed import sequenced_packets

DEADLINE_S = 60.0
PASSWORD = "s3cret!"
DATE = "2024-01-02"


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> str:
    ds = generate(30_000, seed=5, book="l3", instruments=3, data=str(tmp_path_factory.mktemp("syn")))
    return str(ds.path)


def soup_feed(url: str, **keys) -> dict:
    return {"name": "soup", "kind": "soupbintcp", "url": url, "username": "ALICE",
            "password_env": "SOUP_TEST_PASSWORD", "reconnect_backoff": "20ms", **keys}


def recorded(directory: Path, stream: str = "soup") -> list[tuple[int, bytes]]:
    """The stream's messages with the numbers the capture gives them: from each `login` record's
    `sequence` on, one by one; a `lost` record skips its numbers. Written here from the rule in
    docs/recorder.md, not with the importer's code."""
    out = []
    number = None
    for batch in read_frames(capture_files(directory, "cap")):
        for _, sid, payload in batch:
            name = batch.streams[sid]
            if name == HISTORY_STREAM:
                record = json.loads(payload)
                if record.get("stream") == stream and record["record"] == "login":
                    number = record["sequence"]
                if record.get("stream") == stream and record["record"] == "lost":
                    number = record["first"] + record["count"]
            elif name == stream:
                out.append((number, payload))
                number += 1
    return out


def history(directory: Path) -> list[dict]:
    out = []
    for batch in read_frames(capture_files(directory, "cap")):
        out += [json.loads(p) for _, sid, p in batch if batch.streams[sid] == HISTORY_STREAM]
    return out


# ---------------------------------------------------------------------------------------------
# the venue's side


def test_mold_packets_become_sequenced_data_packets():
    messages = [bytes([65 + i]) * (1 + i * 7 % 40) for i in range(60)]
    packets, lengths, counts = [], [], []
    seq = 1
    while messages[seq - 1:]:
        packet, took = moldudp64.encode_packet("S1", seq, messages[seq - 1:], 200)
        packets.append(packet)
        lengths.append(len(packet))
        counts.append(took)
        seq += took
    packets.append(moldudp64.encode_heartbeat("S1", seq))  # no messages: nothing out
    lengths.append(len(packets[-1]))
    counts.append(0)
    data, offsets = sequenced_packets(np.frombuffer(b"".join(packets), np.uint8),
                                      np.array(lengths, np.uint32), np.array(counts, np.int64))
    framer = soup.Framer()
    decoded = [soup.decode(p) for p in framer.feed(data)]
    assert framer.error is None
    assert [d.payload for d in decoded] == messages
    assert len(offsets) == len(messages) + 1 and offsets[-1] == len(data)
    assert [soup.decode(data[a:b]).payload for a, b in itertools.pairwise(offsets)] == messages


def test_venue_config_soup_feed_needs_users(tmp_path):
    config = tmp_path / "v.toml"
    config.write_text('dataset = "x"\n[venue]\nfeed_soupbintcp = "tcp://127.0.0.1:0"\n')
    with pytest.raises(ConfigError, match=r"venue.feed_soupbintcp: needs venue.users"):
        load_venue_config(config)
    config.write_text('dataset = "x"\n[venue]\nfeed_soupbintcp = "udp://127.0.0.1:0"\n'
                      'users = [{username = "ALICE", password = "x"}]\n')
    with pytest.raises(ConfigError, match=r"venue.feed_soupbintcp: .* must be a tcp:// address"):
        load_venue_config(config)


class Venue:
    """The loopback venue in a thread, its MoldUDP64 feed sent to a socket nobody reads and its
    ITCH feed served over SoupBinTCP; `messages` are the feed's messages in sequence order, read
    from its MoldUDP64 packets (the reference for what the SoupBinTCP side must deliver)."""

    def __init__(self, tmp_path: Path, dataset: str, *, linger: str = "3s", speed: str = '"max"') -> None:
        self.sink = UdpSocket("udp://127.0.0.1:0")
        config = tmp_path / "venue.toml"
        config.write_text(f'dataset = "{dataset}"\n[venue]\nfeed = "{self.sink.address}"\n'
                          f'feed_soupbintcp = "tcp://127.0.0.1:0"\nspeed = {speed}\n'
                          f'linger = "{linger}"\nsession = "SOUPTEST"\n'
                          f'users = [{{username = "ALICE", password = "{PASSWORD}"}}]\n')
        self.venue = LoopbackVenue(load_venue_config(config))
        self.messages: list[bytes] = []
        self.venue.feed.packet_listeners.append(self._packets)
        self.address = self.venue.addresses["feed_soupbintcp"]
        self.summary: dict = {}
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _packets(self, packed, lengths, first, counts) -> None:
        at = 0
        for n in lengths.tolist():
            packet = moldudp64.read_packet(packed[at:at + n].tobytes())
            assert packet.sequence == len(self.messages) + 1
            self.messages += packet.messages
            at += n

    def _run(self) -> None:
        self.summary = self.venue.run(duration_s=DEADLINE_S)

    def start(self) -> Venue:
        self.thread.start()
        return self

    def join(self) -> dict:
        self.thread.join(DEADLINE_S)
        assert not self.thread.is_alive()
        self.venue.close()
        self.sink.close()
        return self.summary


class CuttingRelay:
    """A TCP relay in front of a server that cuts its first connection once it has passed
    `cut_after` bytes to the client; later connections are relayed whole."""

    def __init__(self, upstream: str, cut_after: int) -> None:
        host, port = upstream.removeprefix("tcp://").split(":")
        self.upstream = (host, int(port))
        self.cut_after = cut_after
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.address = f"tcp://127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        until = time.monotonic() + DEADLINE_S
        while not self.stop.is_set() and time.monotonic() < until:
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            server = socket.create_connection(self.upstream)
            limit = self.cut_after if self.connections == 1 else None
            threading.Thread(target=self._pipe, args=(client, server, None), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, limit), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket, limit: int | None) -> None:
        passed = 0
        try:
            while True:
                data = src.recv(1 << 16 if limit is None else min(1 << 16, limit - passed))
                if not data:
                    break
                dst.sendall(data)
                passed += len(data)
                if limit is not None and passed >= limit:
                    break
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(DEADLINE_S)
        self.listener.close()


def record_cli(tmp_path: Path, feeds: list[dict], *args: str, password: str = PASSWORD,
               **record) -> subprocess.Popen:
    record.setdefault("out", str(tmp_path / "cap"))
    record.setdefault("prefix", "cap")
    config = write_config(tmp_path / "r.toml", feeds, **record)
    env = {**os.environ, "SOUP_TEST_PASSWORD": password}
    return subprocess.Popen([LOCKSTEP, "record", str(config), "--json", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_venue_soup_feed_recorded_through_a_cut_connection_every_number_once(tmp_path, synth):
    venue = Venue(tmp_path, synth)
    relay = CuttingRelay(venue.address, cut_after=300_000)
    proc = record_cli(tmp_path, [soup_feed(relay.address)])
    try:
        listen = json.loads(proc.stdout.readline())
        assert listen["feeds"] == {"soup": relay.address}
        venue.start()
        out, err = proc.communicate(timeout=DEADLINE_S)
    finally:
        if proc.poll() is None:
            proc.kill()
        relay.close()
        summary_venue = venue.join()
    assert proc.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    feed = summary["feeds"]["soup"]
    assert summary["stopped_by"] == "end" and feed["ended"]
    assert relay.connections == 2 and feed["reconnects"] == 1
    assert summary["gaps"] == summary["lost"] == summary["drops"] == 0
    n = len(venue.messages)
    assert n == summary_venue["messages"] > 20_000
    assert summary["messages"] == feed["messages"] == n  # each message recorded once
    # Every sequence number once, in order, with the venue's bytes.
    got = recorded(tmp_path / "cap")
    assert [s for s, _ in got] == list(range(1, n + 1))
    assert [m for _, m in got] == venue.messages
    logins = [r for r in history(tmp_path / "cap") if r["record"] == "login"]
    assert logins[0]["sequence"] == 1 and len(logins) == 2
    assert 1 < logins[1]["sequence"] < n  # the cut was in the middle; the re-login resumed there
    records = history(tmp_path / "cap")
    assert [r["record"] for r in records if r.get("stream") == "soup"] == ["login", "reconnect", "login"]
    assert [r["record"] for r in records if r.get("stream") != "soup"] == ["end"]
    assert summary_venue["feed_soupbintcp"]["logins"] == 2
    # The import is the ITCH import of the same messages.
    reference = tmp_path / "feed.itch"
    reference.write_bytes(b"".join(len(m).to_bytes(2, "big") + m for m in venue.messages))
    want = itch_events(decode_itch(reference, date=DATE))
    files = capture_files(tmp_path / "cap", "cap")
    have = itch_events(decode_capture(files, date=DATE))
    for k in want:
        assert np.array_equal(want[k], have[k]), k
    assert not (have["kind"] == int(EventKind.GAP)).any()
    # and through the data path, as the direct import of the same messages
    results = []
    for fmt, paths in (("capture", files), ("itch", [reference])):
        proc = subprocess.run([LOCKSTEP, "data", "import", fmt, *map(str, paths), "--date", DATE,
                               "--data", str(tmp_path / fmt), "--json"],
                              capture_output=True, text=True, timeout=DEADLINE_S, check=False)
        results.append((proc.returncode, json.loads(proc.stdout.strip().splitlines()[-1])))
    keys = ("verdict", "records_read", "records_canonical", "records_quarantined",
            "events_canonical", "quarantined_by_rule")
    (code, got), (code_itch, want) = results
    assert code == code_itch and {k: got[k] for k in keys} == {k: want[k] for k in keys}
    assert got["records_read"] == n and got["decoder_counts"]["capture"]["lost"] == 0
    # The password is nowhere: not in the capture, the output or the log.
    for f in files:
        assert PASSWORD.encode() not in f.read_bytes()
    assert PASSWORD not in out + err


def test_a_rejected_login_is_one_error_line_and_exit_1(tmp_path, synth):
    venue = Venue(tmp_path, synth, linger="1s", speed="0.001").start()
    try:
        proc = record_cli(tmp_path, [soup_feed(venue.address)], password="wrong!pw")
        out, err = proc.communicate(timeout=DEADLINE_S)
    finally:
        venue.venue.stop()
        venue.join()
    assert proc.returncode == 1, err
    assert err.strip().splitlines() == [
        f"error: soup: login as ALICE rejected by {venue.address}: not_authorized"]
    assert "wrong!pw" not in out + err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["stopped_by"] == "error" and summary["error"].startswith("soup: login as ALICE")


def test_kill_9_while_recording_then_a_restart_records_the_rest(tmp_path, synth):
    """`lockstep venue serve` at a third of the dataset's pace; the recorder killed (-9) at random
    moments, restarted each time: every file reads to its last whole frame, no older file is
    touched, and the capture, imported, holds every message once."""
    rng = random.Random(7)
    config = tmp_path / "venue.toml"
    config.write_text(f'dataset = "{synth}"\n[venue]\nfeed_soupbintcp = "tcp://127.0.0.1:0"\n'
                      f'speed = 0.33\nlinger = "4s"\n'
                      f'users = [{{username = "ALICE", password = "{PASSWORD}"}}]\n')
    venue = subprocess.Popen([LOCKSTEP, "venue", "serve", str(config), "--json", "--duration", "50"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        address = json.loads(venue.stdout.readline())["feed_soupbintcp"]
        seen: dict[Path, bytes] = {}
        for _ in range(3):
            rec = record_cli(tmp_path, [soup_feed(address)], max_bytes=50_000, fsync="rotation")
            json.loads(rec.stdout.readline())
            time.sleep(0.3 + rng.random() * 0.7)
            os.kill(rec.pid, signal.SIGKILL)
            rec.communicate(timeout=DEADLINE_S)
            files = capture_files(tmp_path / "cap", "cap")
            for path, before in seen.items():  # a restart never touches an older file
                assert path.read_bytes() == before, path
            for f in files:
                if f in seen:
                    continue
                report = scan(f)
                assert not report.corrupt, (f, report)
                assert report.torn_tail is None or \
                    report.torn_tail.offset + report.torn_tail.bytes == f.stat().st_size
                seen[f] = f.read_bytes()
        rec = record_cli(tmp_path, [soup_feed(address)], max_bytes=50_000, fsync="rotation")
        out, err = rec.communicate(timeout=DEADLINE_S)
        assert rec.returncode == 0, err
        assert json.loads(out.strip().splitlines()[-1])["stopped_by"] == "end"
        venue_out, _ = venue.communicate(timeout=DEADLINE_S)
    finally:
        if venue.poll() is None:
            venue.kill()
    messages = json.loads(venue_out.strip().splitlines()[-1])["messages"]
    files = capture_files(tmp_path / "cap", "cap")
    assert set(seen) < set(files)
    for f in files:
        repair(f)  # the killed runs' torn tails
    ordered = _Ordered([str(p) for p in files], "soup", "soupbintcp")
    buf = bytearray(1 << 20)
    total = 0
    while n := ordered.readinto(buf):
        total += n
    assert ordered.holes == [] and ordered.counts["duplicates"] > 0  # each restart asks from 1
    numbers = [s for s, _ in recorded(tmp_path / "cap")]
    assert set(numbers) == set(range(1, messages + 1))


# ---------------------------------------------------------------------------------------------
# scripted servers: a connection closed, garbage, a sequence number that jumps


class ScriptedServer:
    """A SoupBinTCP server that plays one script per connection: `script(i, login)` returns the
    bytes to send after the i-th Login Request (then, if `close`, the connection is closed)."""

    def __init__(self, scripts: list) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.address = f"tcp://127.0.0.1:{self.listener.getsockname()[1]}"
        self.scripts = scripts
        self.logins: list[soup.LoginRequest] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        until = time.monotonic() + DEADLINE_S
        conns = []
        while not self.stop.is_set() and time.monotonic() < until and self.scripts:
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            conns.append(conn)
            framer = soup.Framer()
            login = None
            conn.settimeout(5)
            while login is None:
                packets = framer.feed(conn.recv(4096))
                login = next((soup.decode(p) for p in packets), None)
            self.logins.append(login)
            data, close = self.scripts.pop(0)(login)
            conn.sendall(data)
            if close:
                conn.close()
        self.stop.wait(DEADLINE_S)
        for c in conns:
            c.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(DEADLINE_S)
        self.listener.close()


def sequenced(*numbers: int) -> bytes:
    return b"".join(soup.encode(soup.SequencedData(b"message %d" % n)) for n in numbers)


def accepted(sequence: int) -> bytes:
    return soup.encode(soup.LoginAccepted("SCRIPT", sequence))


def run_recorder(tmp_path: Path, feed: dict, duration_s: float = 20.0) -> tuple[dict, str]:
    """The summary of an in-process recording, and its Prometheus metrics scraped at the end."""
    pytest.importorskip("prometheus_client", reason="the record extra's prometheus-client")
    config = load_record_config(write_config(tmp_path / "r.toml", [feed], out=str(tmp_path / "cap"),
                                             prefix="cap"))
    recorder = Recorder(config, tmp_path / "cap")
    try:
        summary = recorder.run(duration_s=duration_s)
        url, server = serve_metrics(recorder, "127.0.0.1:0")
        try:
            return summary, urllib.request.urlopen(url, timeout=10).read().decode()
        finally:
            server.shutdown()
    finally:
        recorder.close_feeds()


def test_closed_garbage_and_jumping_servers_are_counted_reconnected_and_told(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("SOUP_TEST_PASSWORD", PASSWORD)
    server = ScriptedServer([
        lambda login: (accepted(1) + sequenced(1, 2, 3), True),          # closes the connection
        lambda login: (accepted(4) + sequenced(4, 5) + b"\x00\x00garbage", False),  # bad bytes
        lambda login: (accepted(9) + sequenced(9, 10) + soup.encode(soup.EndOfSession()), False),
    ])
    try:
        summary, metrics = run_recorder(tmp_path, soup_feed(server.address))
    finally:
        server.close()
    assert [login.sequence for login in server.logins] == [1, 4, 6]
    assert all(login.password == PASSWORD and login.username == "ALICE" for login in server.logins)
    feed = summary["feeds"]["soup"]
    assert summary["stopped_by"] == "end" and feed["ended"]
    assert feed["rejected"] == {"protocol_error": 1} and feed["reconnects"] == 2
    assert summary["gaps"] == 1 and summary["lost"] == 3 and summary["messages"] == 7
    assert recorded(tmp_path / "cap") == [(n, b"message %d" % n) for n in (1, 2, 3, 4, 5, 9, 10)]
    for family, value in (("messages", 7), ("gaps", 1), ("lost", 3), ("rejected", 1)):
        assert f'lockstep_record_{family}_total{{stream="soup"}} {value}.0' in metrics, family
    records = [r for r in history(tmp_path / "cap") if r.get("stream") == "soup"]
    assert [r["record"] for r in records] == ["login", "reconnect", "login", "reconnect", "gap",
                                              "lost", "login"]
    assert "bad_length at stream offset" in records[3]["reason"]
    assert (records[4]["first"], records[4]["count"]) == (6, 3)
    # The import's ordering: the numbers the server skipped are a hole, told lost.
    ordered = _Ordered([str(p) for p in capture_files(tmp_path / "cap", "cap")], "soup", "soupbintcp")
    buf = bytearray(1 << 16)
    data = bytearray()
    while n := ordered.readinto(buf):
        data += buf[:n]
    assert ordered.holes == [(5, 6, 3)] and ordered.counts["lost"] == 3
    assert data == b"".join(len(b"message %d" % n).to_bytes(2, "big") + b"message %d" % n
                            for n in (1, 2, 3, 4, 5, 9, 10))


def test_heartbeats_go_both_ways_and_a_silent_server_is_left(tmp_path, monkeypatch):
    """First connection: one message, then silence while the recorder's heartbeats (every 50 ms)
    are counted, until its 300 ms timeout drops the connection. Second: a server heartbeat every
    100 ms for 0.6 s keeps it alive, then End of Session."""
    monkeypatch.setenv("SOUP_TEST_PASSWORD", PASSWORD)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(DEADLINE_S)
    heartbeats: list[int] = []
    logins: list[int] = []

    def serve() -> None:
        for connection in range(2):
            conn, _ = listener.accept()
            conn.settimeout(0.05)
            framer = soup.Framer()
            beats = 0
            until = None  # how long this connection is served, once logged in
            while until is None or time.monotonic() < until:
                try:
                    chunk = conn.recv(4096)
                except TimeoutError:
                    if connection == 1 and until is not None:
                        conn.sendall(soup.encode(soup.ServerHeartbeat()))
                    continue
                if not chunk:
                    break  # the recorder left (the first connection: its timeout)
                for packet in framer.feed(chunk):
                    message = soup.decode(packet)
                    if isinstance(message, soup.LoginRequest):
                        logins.append(message.sequence)
                        conn.sendall(accepted(message.sequence) + sequenced(message.sequence))
                        until = time.monotonic() + (DEADLINE_S if connection == 0 else 0.6)
                    elif isinstance(message, soup.ClientHeartbeat):
                        beats += 1
            heartbeats.append(beats)
            if connection == 1:
                conn.sendall(soup.encode(soup.EndOfSession()))
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        summary, _ = run_recorder(tmp_path, soup_feed(f"tcp://127.0.0.1:{listener.getsockname()[1]}",
                                                      heartbeat="50ms", timeout="300ms"))
    finally:
        thread.join(DEADLINE_S)
        listener.close()
    assert logins == [1, 2]
    assert heartbeats[0] >= 4  # about 300 ms / 50 ms before the timeout
    feed = summary["feeds"]["soup"]
    assert feed["rejected"] == {"server_timeout": 1} and feed["reconnects"] == 1 and feed["ended"]
    assert recorded(tmp_path / "cap") == [(1, b"message 1"), (2, b"message 2")]


def test_messages_that_find_the_ring_full_are_told_lost_before_the_next_one(tmp_path, monkeypatch):
    """The writer is not running: the ring fills, the messages after are dropped, and so are the
    records of a reconnect; once there is room, the next message is preceded by a `lost` record
    and the reconnect's records, so its number is right."""
    monkeypatch.setenv("SOUP_TEST_PASSWORD", PASSWORD)
    config = load_record_config(write_config(tmp_path / "r.toml", [soup_feed("tcp://127.0.0.1:9")]))
    capture = Capture(tmp_path / "cap", "cap", ["soup"], CaptureSettings(ring_bytes=4096))
    feed = SoupFeed(config.feeds[0].name, config.feeds[0].url, config.feeds[0].soupbintcp,
                    capture.sink("soup"), FeedCounts())
    feed.on_notice(SoupNotice(SoupNoticeKind.LOGIN_ACCEPTED, 1, 0, 0), "tcp://server")
    feed._record([(n, b"%02d" % n * 450, 1_000 + n) for n in range(1, 11)], 0)
    kept = 10 - feed.counts.drops
    assert 1 <= kept < 10 and feed.counts.messages == kept
    feed.on_drop("closed by the peer", "tcp://server")
    feed.on_notice(SoupNotice(SoupNoticeKind.LOGIN_ACCEPTED, 11, 0, 0), "tcp://server")
    assert "reconnect" not in capture.sink("soup").records  # the ring had no room for it
    capture.start()
    deadline = time.monotonic() + DEADLINE_S
    while capture.feed_stats("soup")["ring_used"] and time.monotonic() < deadline:
        time.sleep(0.01)
    feed._record([(11, b"11" * 450, 2_000)], 0)
    capture.close()
    numbers = [(n, m[:2]) for n, m in recorded(tmp_path / "cap")]
    assert numbers == [(n, b"%02d" % n) for n in range(1, kept + 1)] + [(11, b"11")]
    records = [r for r in history(tmp_path / "cap") if r.get("stream") == "soup"]
    kinds = [r["record"] for r in records]
    assert kinds[0] == "login" and kinds[-2:] == ["reconnect", "login"]
    lost = [r for r in records if r["record"] == "lost"]
    assert kinds[1:-2] == ["lost"] * len(lost) and {r["reason"] for r in lost} == {"capture ring full"}
    assert [n for r in lost for n in range(r["first"], r["first"] + r["count"])] == list(range(kept + 1, 11))
    assert feed.counts.lost == 10 - kept and capture.sink("soup").records["reconnect"] == 1


def test_a_server_we_did_not_write(tmp_path, monkeypatch):
    """nasdaq-protocols' SoupServerSession: the recorder logs in, is dropped by it, logs in
    again from the next number and gets each message once; End of Session ends the run."""
    pytest.importorskip("nasdaq_protocols")
    from test_order_entry_client import PASSWORD as NQ_PASSWORD
    from test_order_entry_client import _NasdaqVenue

    monkeypatch.setenv("SOUP_TEST_PASSWORD", NQ_PASSWORD)
    nq = _NasdaqVenue(None)
    for i in range(1, 501):
        nq.publish(b"A" + i.to_bytes(4, "big"))
    address = nq.start()
    config = load_record_config(write_config(tmp_path / "r.toml", [soup_feed(address)],
                                             out=str(tmp_path / "cap"), prefix="cap"))
    recorder = Recorder(config, tmp_path / "cap")
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(recorder.run(duration_s=30)), daemon=True)
    try:
        thread.start()
        deadline = time.monotonic() + DEADLINE_S
        while recorder.feeds["soup"].counts.messages < 500 and time.monotonic() < deadline:
            time.sleep(0.01)

        def drop_publish():
            for session in nq.sessions:
                session.initiate_close()
            for i in range(501, 801):
                nq.publish(b"A" + i.to_bytes(4, "big"))
        nq.call(drop_publish)
        while recorder.feeds["soup"].counts.messages < 800 and time.monotonic() < deadline:
            time.sleep(0.01)

        def end():
            for session in nq.sessions:
                if not session.is_closed():
                    session.end_session()
        nq.call(end)
        thread.join(DEADLINE_S)
    finally:
        recorder.close_feeds()
        nq.stop()
    assert nq.logins == [1, 501]
    assert result["stopped_by"] == "end" and result["feeds"]["soup"]["reconnects"] == 1
    assert recorded(tmp_path / "cap") == [(i, b"A" + i.to_bytes(4, "big")) for i in range(1, 801)]


# ---------------------------------------------------------------------------------------------
# config


def test_soup_feed_config_is_checked_and_never_shows_the_password(tmp_path, monkeypatch):
    monkeypatch.setenv("SOUP_TEST_PASSWORD", PASSWORD)
    path = write_config(tmp_path / "r.toml", [soup_feed("tcp://127.0.0.1:9", first_sequence=0,
                                                        session="ABC", heartbeat="500ms")])
    cfg = load_record_config(path)
    s = cfg.feeds[0].soupbintcp
    assert (s.username, s.password.reveal(), s.first_sequence, s.session, s.heartbeat_ns) == (
        "ALICE", PASSWORD, 0, "ABC", 500_000_000)
    assert s.password_env == "SOUP_TEST_PASSWORD" and PASSWORD not in repr(cfg)
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    secret.chmod(0o600)
    inline = soup_feed("tcp://127.0.0.1:9", password_file="pw")
    del inline["password_env"]
    assert load_record_config(write_config(tmp_path / "f.toml", [inline])).feeds[0].soupbintcp \
        .password.reveal() == PASSWORD
    inline = {**soup_feed("tcp://127.0.0.1:9"), "password": PASSWORD}
    del inline["password_env"]
    cfg = load_record_config(write_config(tmp_path / "i.toml", [inline]))
    assert PASSWORD not in repr(cfg) and cfg.feeds[0].soupbintcp.password.reveal() == PASSWORD
    no_env = soup_feed("tcp://127.0.0.1:9", password_env="SOUP_TEST_UNSET")
    bad = [
        ({**soup_feed("tcp://127.0.0.1:0")}, "record.feeds[0].url: needs the server's port"),
        ({k: v for k, v in soup_feed("tcp://127.0.0.1:9").items() if k != "username"},
         "record.feeds[0].username: missing"),
        ({**soup_feed("tcp://127.0.0.1:9"), "password": "x"}, "exactly one of"),
        (no_env, "the environment variable SOUP_TEST_UNSET is not set"),
        (soup_feed("tcp://127.0.0.1:9", first_sequence=-1), "record.feeds[0].first_sequence"),
        (soup_feed("tcp://127.0.0.1:9", session="TOO-LONG-SESSION"), "record.feeds[0].session"),
        (soup_feed("tcp://127.0.0.1:9", retransmit="udp://1.2.3.4:5"),
         "record.feeds[0].retransmit: unknown key"),
    ]
    for feed, message in bad:
        with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")) as e:
            load_record_config(write_config(tmp_path / "bad.toml", [feed]))
        assert "bad.toml" in str(e.value)
