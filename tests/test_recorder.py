"""The market data recorder: capture files with their history, `lockstep record` against the
loopback venue (real subprocesses), gaps filled or lost, kill -9, and the import of captures."""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import pty
import random
import resource
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

import lockstep.data.importers.capture as capture_import
from lockstep.data.importers.capture import _Ordered, decode_capture
from lockstep.data.importers.itch import NEW_YORK, decode_itch
from lockstep.data.raw_capture import (
    STALE_STAGING_S,
    CaptureLines,
    capture_files,
    lines_from_frames,
    read_frames,
    read_header,
    scan,
)
from lockstep.data.recorder import websocket
from lockstep.data.recorder.capture import (
    HISTORY_STREAM,
    Capture,
    CaptureSettings,
    read_history,
)
from lockstep.data.recorder.config import load_record_config
from lockstep.data.recorder.metrics import venue_lag_ns
from lockstep.data.recorder.run import Recorder
from lockstep.data.synth import generate
from lockstep.enums import FsyncPolicy
from lockstep.errors import ConfigError
from lockstep.events import EventKind
from lockstep.live.journal import PREFIX as JOURNAL_PREFIX
from lockstep.live.journal import JournalWriter
from lockstep.net import UdpSocket
from lockstep.protocols import moldudp64

SESSION = "RECTEST"
DEADLINE_S = 60.0


# ---------------------------------------------------------------------------------------------
# capture files


def frames_of(directory: Path, prefix: str = "cap") -> list[tuple[int, str, bytes]]:
    files = capture_files(directory, prefix)
    out = []
    for batch in read_frames(files):
        out += [(ns, batch.streams[sid], p) for ns, sid, p in batch]
    return out


def test_sink_frames_and_history_read_back_in_order(tmp_path):
    cap = Capture(tmp_path, "cap", ["a", "b"])
    cap.start()
    a, b = cap.sink("a"), cap.sink("b")
    assert a.frame(10, b"one") and b.frame(11, b"two")
    assert a.history("gap", first=5, count=2, receive_ns=12)
    assert a.frame(13, b"three")
    cap.close()
    got = frames_of(tmp_path)
    # Each feed's frames in the order pushed (feeds' rings interleave in the file as drained).
    assert [(ns, p) for ns, s, p in got if s == "a"] == [(10, b"one"), (13, b"three")]
    assert [(ns, p) for ns, s, p in got if s == "b"] == [(11, b"two")]
    history = [r for _, r in read_history(capture_files(tmp_path, "cap"))]
    assert history == [{"record": "gap", "stream": "a", "first": 5, "count": 2}]
    assert read_header(capture_files(tmp_path, "cap")[0]).streams == ("a", "b", HISTORY_STREAM)


def test_a_file_appears_with_its_header_and_a_killed_writers_staging_file_is_stepped_over(tmp_path):
    """A capture file is written under a hidden name and linked in once its header is there (a
    kill never leaves an empty file); a hidden file a killed writer left is never reused."""
    stale = tmp_path / ".cap-000001.lsraw.new"
    stale.write_bytes(b"LSRAW")  # a writer killed mid-header
    cap = Capture(tmp_path, "cap", ["a"])
    cap.start()
    assert cap.sink("a").frame(10, b"one")
    cap.close()
    files = capture_files(tmp_path, "cap")
    assert [f.name for f in files] == ["cap-000002.lsraw"]
    assert stale.read_bytes() == b"LSRAW"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".cap-000001.lsraw.new", "cap-000002.lsraw"]
    assert [(ns, p) for ns, _, p in frames_of(tmp_path)] == [(10, b"one")]


def test_hidden_files_of_killed_writers_are_removed_when_a_writer_starts(tmp_path):
    """Killed before its link, a writer leaves a hidden header; killed after it, a second name
    of its published file. Both go when the next writer of the prefix starts; a young hidden file
    (a running writer's, for all anyone knows) and other prefixes' files stay."""
    before_link = tmp_path / ".cap-000003.lsraw.new"
    before_link.write_bytes(b"LSRAW")
    old = time.time() - 2 * STALE_STAGING_S
    os.utime(before_link, (old, old))
    published = tmp_path / "cap-000004.lsraw"
    first = Capture(tmp_path / "src", "cap", ["a"])
    first.start()
    assert first.sink("a").frame(1, b"x")
    first.close()
    published.write_bytes(capture_files(tmp_path / "src", "cap")[0].read_bytes())
    after_link = tmp_path / ".cap-000004.lsraw.new"
    os.link(published, after_link)
    young = tmp_path / ".cap-000005.lsraw.new"
    young.write_bytes(b"LSRAW")
    other = tmp_path / ".dog-000001.lsraw.new"
    other.write_bytes(b"LSRAW")
    os.utime(other, (old, old))
    cap = Capture(tmp_path, "cap", ["a"])
    assert cap.stale_removed == [".cap-000003.lsraw.new", ".cap-000004.lsraw.new"]
    cap.start()
    assert cap.sink("a").frame(2, b"y")
    cap.close()
    assert published.exists() and read_header(published).sequence == 1
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == [
        ".cap-000005.lsraw.new", ".dog-000001.lsraw.new", "cap-000004.lsraw", "cap-000006.lsraw"]
    journal = JournalWriter(tmp_path / "journal", {})
    journal.close()
    stale = tmp_path / "journal" / f".{JOURNAL_PREFIX}-000009.lsraw.new"
    stale.write_bytes(b"LSRAW")
    os.utime(stale, (old, old))
    journal = JournalWriter(tmp_path / "journal", {})
    assert journal.stale_removed == [stale.name] and not stale.exists()
    journal.close()


def test_unknown_history_record_is_refused(tmp_path):
    cap = Capture(tmp_path, "cap", ["a"])
    with pytest.raises(ValueError, match="unknown history record 'oops'"):
        cap.sink("a").history("oops")


def test_rotation_by_size_and_by_receive_window(tmp_path):
    settings = CaptureSettings(max_bytes=1000, window_ns=1_000)
    cap = Capture(tmp_path, "cap", ["a"], settings)
    cap.start()
    sink = cap.sink("a")
    for i in range(30):  # 100-byte payloads, 124-byte frames: 7 fit after a header of ~80 bytes
        sink.frame(100 + i, bytes([i]) * 100)
    sink.frame(1_000, b"next window")  # 1000 // 1000 = 1 > 0: a new file though it has room
    sink.frame(999, b"backwards in time: stays")
    cap.close()
    files = capture_files(tmp_path, "cap")
    names = [f.name for f in files]
    assert names == sorted(names) and names[0] == "cap-000001.lsraw"
    assert all(f.stat().st_size <= 1000 for f in files)
    sizes = [[p for _, _, p in frames_of_file(f)] for f in files]
    assert sizes[-1] == [b"next window", b"backwards in time: stays"]
    assert sum(len(s) for s in sizes) == 32
    assert cap.writer_stats()["files"] == len(files) >= 5


def frames_of_file(path: Path) -> list[tuple[int, int, bytes]]:
    return [f for batch in read_frames([path]) for f in batch]


def test_full_ring_drops_are_counted_and_written_as_a_drop_record(tmp_path):
    cap = Capture(tmp_path, "cap", ["a"], CaptureSettings(ring_bytes=4096))
    sink = cap.sink("a")
    # The writer is not running yet: the ring fills and stays full.
    results = [sink.frame(i, b"x" * 1000) for i in range(10)]
    assert results[:4] == [True] * 4 and not any(results[4:])
    cap.start()
    deadline = time.monotonic() + 10
    while cap.feed_stats("a")["ring_used"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sink.frame(100, b"after")  # the drop record goes in first, then this frame
    cap.close()
    stats = cap.feed_stats("a")
    assert stats["dropped"] == 6 and stats["dropped_bytes"] == 6000 and stats["drop_records"] == 1
    got = frames_of(tmp_path)
    assert [p for _, s, p in got if s == "a"] == [b"x" * 1000] * 4 + [b"after"]
    drop = json.loads(next(p for _, s, p in got if s == HISTORY_STREAM))
    assert drop == {"record": "drop", "stream_id": 0, "frames": 6, "bytes": 6000,
                    "first_ns": 4, "last_ns": 9}


@pytest.mark.parametrize("policy", [FsyncPolicy.FRAME, FsyncPolicy.ROTATION])
def test_fsync_policy(tmp_path, policy):
    cap = Capture(tmp_path, "cap", ["a"], CaptureSettings(fsync=policy))
    cap.start()
    for i in range(50):
        cap.sink("a").frame(i, b"p")
    cap.close()
    fsyncs = cap.writer_stats()["fsyncs"]
    # frame: one per frame (and the close); rotation: only the close
    assert fsyncs >= 50 if policy == FsyncPolicy.FRAME else fsyncs == 1


def test_a_second_writer_continues_in_a_new_file_and_leaves_the_old_ones(tmp_path):
    for round_ in range(3):
        before = {f: f.read_bytes() for f in tmp_path.iterdir()}
        cap = Capture(tmp_path, "cap", ["a"])
        cap.start()
        cap.sink("a").frame(round_, b"round %d" % round_)
        cap.close()
        assert {f: f.read_bytes() for f in before} == before
        assert [f.name for f in cap.files()] == [f"cap-{round_ + 1:06d}.lsraw"]
    assert [p for _, _, p in frames_of(tmp_path)] == [b"round 0", b"round 1", b"round 2"]


def test_a_file_in_the_way_of_the_directory_is_one_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError, match="Not a directory"):
        Capture(tmp_path / "file" / "sub", "cap", ["a"])


def _full_disk_child() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def test_full_disk_stops_the_writer_with_the_file_whole_to_its_last_frame(tmp_path):
    code = (
        "import sys, time\n"
        "from lockstep.data.recorder.capture import Capture\n"
        "cap = Capture(sys.argv[1], 'cap', ['a'])\n"
        "cap.start()\n"
        "for i in range(100):\n"
        "    cap.sink('a').frame(i, bytes([i]) * 999)\n"
        "    time.sleep(0.002)\n"
        "cap.close()\n"
        "print(cap.failure())\n")
    proc = subprocess.run([os.sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                          text=True, timeout=60, check=False, preexec_fn=_full_disk_child)
    assert proc.returncode == 0, proc.stderr
    assert "'write'" in proc.stdout and "27," in proc.stdout  # EFBIG: the file size limit
    (path,) = capture_files(tmp_path, "cap")
    report = scan(path)
    assert report.clean and report.torn_tail is None
    payloads = [p for _, _, p in frames_of_file(path)]
    assert 10 <= len(payloads) < 100 and payloads == [bytes([i]) * 999 for i in range(len(payloads))]


# ---------------------------------------------------------------------------------------------
# config


def write_config(path: Path, feeds: list[dict], **record) -> Path:
    lines = ["[record]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in record.items()]
    for feed in feeds:
        lines.append("[[record.feeds]]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in feed.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_config_is_frozen_and_checked(tmp_path):
    cfg = load_record_config(write_config(tmp_path / "r.toml", [
        {"name": "itch", "kind": "moldudp64", "url": "udp://127.0.0.1:0",
         "retransmit": "udp://127.0.0.1:9"}], fsync="rotation", window="1h"))
    assert cfg.capture.fsync == FsyncPolicy.ROTATION and cfg.capture.window_ns == 3_600_000_000_000
    assert cfg.feeds[0].retransmit.port == 9
    assert (cfg.feeds[0].date, cfg.feeds[0].timezone) == (None, "America/New_York")
    dated = load_record_config(write_config(tmp_path / "d.toml", [
        {"name": "itch", "kind": "moldudp64", "url": "udp://127.0.0.1:0", "date": "2024-01-02",
         "timezone": "UTC", "heartbeat_timeout": "500ms"}])).feeds[0]
    assert (dated.date, dated.timezone, dated.heartbeat_timeout_ns) == (
        datetime.date(2024, 1, 2), "UTC", 500_000_000)
    with pytest.raises(AttributeError):
        cfg.prefix = "x"
    bad = [
        ({"name": "x", "kind": "moldudp64", "url": "udp://127.0.0.1:0", "colour": 1},
         {}, "record.feeds[0].colour: unknown key"),
        ({"name": "x", "kind": "fix", "url": "udp://127.0.0.1:0"}, {}, "record.feeds[0].kind"),
        ({"name": "x", "kind": "moldudp64", "url": "tcp://127.0.0.1:0"}, {}, "record.feeds[0].url"),
        ({"name": "x", "kind": "moldudp64", "url": "udp://127.0.0.1:0"}, {"fsync": "often"}, "record.fsync"),
        ({"name": "x", "kind": "moldudp64", "url": "udp://127.0.0.1:0"}, {"ring_bytes": 5000},
         "record.ring_bytes: 5000 is not a power of two"),
        ({"name": "x", "kind": "moldudp64", "url": "udp://127.0.0.1:0", "date": "2024-13-01"}, {},
         "record.feeds[0].date: '2024-13-01' is not a date"),
        ({"name": "x", "kind": "moldudp64", "url": "udp://127.0.0.1:0", "timezone": "Mars/Base"}, {},
         "record.feeds[0].timezone: 'Mars/Base' is not a time zone"),
        ({"name": "x", "kind": "moldudp64", "url": "udp://127.0.0.1:0", "heartbeat_timeout": "0s"},
         {}, "record.feeds[0].heartbeat_timeout"),
    ]
    for feed, record, message in bad:
        with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")) as e:
            load_record_config(write_config(tmp_path / "bad.toml", [feed], **record))
        assert "bad.toml" in str(e.value)


def test_cli_bad_config_is_one_line_exit_1(tmp_path):
    config = write_config(tmp_path / "r.toml", [{"name": "x", "kind": "moldudp64",
                                                  "url": "udp://127.0.0.1:0", "colour": 1}])
    proc = subprocess.run([LOCKSTEP, "record", str(config)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == ["error: " + str(tmp_path / "r.toml")
                                                + ": record.feeds[0].colour: unknown key"]
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    with taken:
        for feed, says in (
                ({"kind": "moldudp64", "url": f"udp://127.0.0.1:{taken.getsockname()[1]}"},
                 "Address already in use"),
                ({"kind": "soupbintcp", "url": "tcp://127.0.0.1:1", "username": "ALICE"},
                 str(tmp_path / "r.toml") + ": record.feeds[0].password: exactly one of")):
            config = write_config(tmp_path / "r.toml", [{"name": "x", **feed}], out=str(tmp_path / "cap"))
            proc = subprocess.run([LOCKSTEP, "record", str(config)], capture_output=True, text=True,
                                  timeout=60, check=False)
            assert proc.returncode == 1
            (line,) = proc.stderr.strip().splitlines()
            assert line.startswith("error: ") and says in line


# ---------------------------------------------------------------------------------------------
# lockstep record against the loopback venue


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RecordProcess:
    """`lockstep record --json` as a subprocess: its listen line, then its summary."""

    def __init__(self, tmp_path: Path, feed: dict, *args: str, name: str = "r.toml", **record) -> None:
        record.setdefault("out", str(tmp_path / "cap"))
        record.setdefault("prefix", "cap")
        config = write_config(tmp_path / name, [{"name": "itch", "kind": "moldudp64", **feed}], **record)
        self.proc = subprocess.Popen([LOCKSTEP, "record", str(config), "--json", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.listen = json.loads(self.proc.stdout.readline())
        self.feed = self.listen["feeds"]["itch"]

    def finish(self, timeout: float = DEADLINE_S) -> tuple[int, dict, str]:
        out, err = self.proc.communicate(timeout=timeout)
        lines = out.strip().splitlines()
        return self.proc.returncode, json.loads(lines[-1]) if lines else {}, err


def serve_venue(tmp_path: Path, dataset: str, feed: str, retransmit_port: int, *args: str) -> dict:
    config = tmp_path / "venue.toml"
    config.write_text(f'dataset = "{dataset}"\n[venue]\nfeed = "{feed}"\n'
                      f'retransmit = "udp://127.0.0.1:{retransmit_port}"\nspeed = "max"\n'
                      f'session = "{SESSION}"\nlinger = "2s"\n')
    proc = subprocess.run([LOCKSTEP, "venue", "serve", str(config), "--json", *args],
                          capture_output=True, text=True, timeout=DEADLINE_S, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> str:
    ds = generate(30_000, seed=11, book="l3", instruments=2, data=str(tmp_path_factory.mktemp("syn")))
    return str(ds.path)


def ordered_messages(directory: Path, prefix: str = "cap") -> tuple[bytes, dict, list]:
    ordered = _Ordered([str(p) for p in capture_files(directory, prefix)], "itch")
    data = bytearray()
    buf = bytearray(1 << 20)
    while n := ordered.readinto(buf):
        data += buf[:n]
    return bytes(data), ordered.counts, ordered.holes


def itch_events(run) -> dict[str, np.ndarray]:
    chunks = list(run)
    return {k: np.concatenate([c.events[k][:c.n_events] for c in chunks]) for k in ("kind", "seq", "instrument", "price", "qty", "order_id", "ts_event")}


def test_venue_at_full_speed_recorded_with_every_sequence_number(tmp_path, synth):
    retransmit = free_udp_port()
    rec = RecordProcess(tmp_path, {"url": "udp://127.0.0.1:0",
                                   "retransmit": f"udp://127.0.0.1:{retransmit}"})
    venue = serve_venue(tmp_path, synth, rec.feed, retransmit)
    code, summary, err = rec.finish()
    assert code == 0, err
    assert summary["stopped_by"] == "end" and summary["lost"] == 0 and summary["drops"] == 0
    assert summary["messages"] - summary["retransmitted"] <= venue["messages"] <= summary["messages"]
    stream, counts, holes = ordered_messages(tmp_path / "cap")
    assert holes == [] and counts["lost"] == 0
    n = 0
    at = 0
    while at < len(stream):  # every sequence number 1..messages, once, in order
        at += 2 + int.from_bytes(stream[at:at + 2], "big")
        n += 1
    assert n == venue["messages"]
    history = [r["record"] for _, r in read_history(capture_files(tmp_path / "cap", "cap"))]
    assert history[0] == "start" and history[-1] == "end"


class Relay:
    """Forwards datagrams from the venue to the recorder, leaving out the `drop`-th ones."""

    def __init__(self, to: str, drop: set[int]) -> None:
        self.sock = UdpSocket("udp://127.0.0.1:0", batch=256, receive_buffer=32 << 20)
        self.to = to
        self.drop = drop
        self.seen = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        until = time.monotonic() + DEADLINE_S
        while not self.stop.is_set() and time.monotonic() < until:
            n = self.sock.receive()
            if not n:
                time.sleep(0.0005)
                continue
            for i in range(n):
                self.seen += 1
                if self.seen not in self.drop:
                    self.sock.send_to(self.sock.payload(i), self.to)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(DEADLINE_S)
        self.sock.close()


def test_a_gap_is_filled_by_retransmission_and_the_import_matches_the_feed(tmp_path, synth):
    retransmit = free_udp_port()
    rec = RecordProcess(tmp_path, {"url": "udp://127.0.0.1:0", "session": SESSION,
                                   "retransmit": f"udp://127.0.0.1:{retransmit}"})
    relay = Relay(rec.feed, drop={20, 21, 22, 100})
    try:
        venue = serve_venue(tmp_path, synth, relay.sock.address, retransmit)
    finally:
        code, summary, err = rec.finish()
        relay.close()
    assert code == 0, err
    # Two holes: one gap each, or one when the second opens while the first is still asked for
    assert summary["gaps"] >= 1 and summary["lost"] == 0 and summary["retransmitted"] >= 4
    assert venue["retransmit"]["answered"] >= summary["gaps"]
    stream, _, holes = ordered_messages(tmp_path / "cap")
    assert holes == []
    history = [r["record"] for _, r in read_history(capture_files(tmp_path / "cap", "cap"))]
    assert history.count("gap") == summary["gaps"] == history.count("retransmission")
    # The capture import is the ITCH import of the messages in sequence order: one decoder.
    reference = tmp_path / "feed.itch"
    reference.write_bytes(stream)
    want = itch_events(decode_itch(reference, date="2024-01-02"))
    got = itch_events(decode_capture(capture_files(tmp_path / "cap", "cap"), date="2024-01-02"))
    for k in want:
        assert np.array_equal(want[k], got[k]), k
    assert not (got["kind"] == int(EventKind.GAP)).any()


def test_without_retransmission_the_gap_is_lost_and_imported_as_gap(tmp_path, synth):
    rec = RecordProcess(tmp_path, {"url": "udp://127.0.0.1:0", "session": SESSION})
    relay = Relay(rec.feed, drop={30, 31})
    try:
        serve_venue(tmp_path, synth, relay.sock.address, free_udp_port())
    finally:
        code, summary, err = rec.finish()
        relay.close()
    assert code == 0, err
    assert summary["gaps"] >= 1 and summary["lost"] > 0 and summary["retransmitted"] == 0
    files = capture_files(tmp_path / "cap", "cap")
    lost = [r for _, r in read_history(files) if r["record"] == "lost"]
    assert sum(r["count"] for r in lost) == summary["lost"]
    events = itch_events(decode_capture(files, date="2024-01-02"))
    gaps = np.flatnonzero(events["kind"] == int(EventKind.GAP))
    assert len(gaps) >= 2  # one per instrument seen before the hole
    assert set(events["seq"][gaps].tolist()) == {r["first"] for r in lost}
    # and through the data path: the GAP makes the books invalid from there (no snapshot in ITCH)
    proc = subprocess.run([LOCKSTEP, "data", "import", "capture", *map(str, files), "--date",
                           "2024-01-02", "--data", str(tmp_path / "root"), "--json"],
                          capture_output=True, text=True, timeout=DEADLINE_S, check=False)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["decoder_counts"]["capture"]["lost"] == summary["lost"]
    assert result["decoder_counts"]["events"]["gap"] == len(gaps)
    assert proc.returncode == 4 and result["verdict"] == "partial"
    assert result["quarantined_by_rule"]["sequence_gap"] > 0
    stretches = result["invalid_stretches"]
    assert {s["rule"] for s in stretches} == {"sequence_gap"} and len(stretches) == len(gaps)


def test_garbage_wrong_session_and_wrong_source_are_counted_not_recorded(tmp_path):
    rec = RecordProcess(tmp_path, {"url": "udp://127.0.0.1:0", "session": SESSION}, "--duration", "1.5")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        host, port = rec.feed.removeprefix("udp://").split(":")
        to = (host, int(port))
        s.sendto(b"garbage", to)
        s.sendto(moldudp64.encode_heartbeat("OTHER", 1), to)
        good, _ = moldudp64.encode_packet(SESSION, 1, [b"S" + bytes(11)], 1400)
        s.sendto(good, to)
    code, summary, err = rec.finish()
    assert code == 0, err
    assert summary["feeds"]["itch"]["rejected"] == {"malformed": 1, "wrong_session": 1}
    assert summary["messages"] == 1 and summary["stopped_by"] == "duration"
    assert "rejected: malformed" in err and "wrong session" in err
    payloads = [p for _, s, p in frames_of(tmp_path / "cap") if s == "itch"]
    assert payloads == [good]


def test_sigint_is_130_and_the_end_record_says_incomplete_sigterm_is_0(tmp_path):
    for sig, expected in ((signal.SIGINT, 130), (signal.SIGTERM, 0)):
        rec = RecordProcess(tmp_path, {"url": "udp://127.0.0.1:0"}, name=f"{sig.name}.toml")
        time.sleep(0.5)
        rec.proc.send_signal(sig)
        code, summary, err = rec.finish()
        assert code == expected, err
        assert summary["stopped_by"] == sig.name
    ends = [r for _, r in read_history(capture_files(tmp_path / "cap", "cap")) if r["record"] == "end"]
    assert [(r["stopped_by"], r["complete"]) for r in ends] == [("SIGINT", False), ("SIGTERM", False)]


def test_metrics_endpoint_on_port_0(tmp_path):
    pytest.importorskip("prometheus_client", reason="the record extra's prometheus-client")
    rec = RecordProcess(tmp_path, {"url": "udp://127.0.0.1:0"}, "--metrics", "127.0.0.1:0",
                        "--duration", "3")
    url = rec.listen["metrics"]
    assert url.startswith("http://127.0.0.1:") and not url.startswith("http://127.0.0.1:0/")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        host, port = rec.feed.removeprefix("udp://").split(":")
        packet, _ = moldudp64.encode_packet("M", 1, [b"S" + bytes(11)] * 3, 1400)
        s.sendto(packet, (host, int(port)))
    time.sleep(0.5)
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    code, summary, err = rec.finish()
    assert code == 0, err
    assert summary["messages"] == 3
    assert 'lockstep_record_messages_total{stream="itch"} 3.0' in text
    for name in ("gaps_total", "retransmitted_total", "drops_total", "ring_fill_ratio", "lag_seconds",
                 "disk_write_seconds_total", "written_bytes_total"):
        assert f"lockstep_record_{name}" in text


# ---------------------------------------------------------------------------------------------
# kill -9


class Sender:
    """Sends numbered MoldUDP64 packets to `to` until stopped."""

    def __init__(self, to: str) -> None:
        self.to = to
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        host, port = self.to.removeprefix("udp://").split(":")
        seq = 1
        until = time.monotonic() + DEADLINE_S
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            while not self.stop.is_set() and time.monotonic() < until:
                packet, took = moldudp64.encode_packet(SESSION, seq, [b"S" + bytes(60)] * 20, 1400)
                try:
                    s.sendto(packet, (host, int(port)))
                except OSError:
                    pass
                seq += took
                time.sleep(0.0001)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(DEADLINE_S)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_kill_9_rounds_leave_whole_files_and_restarts_append_new_ones(tmp_path):
    rng = random.Random(13)
    seen: dict[Path, str] = {}
    for round_ in range(4):
        rec = RecordProcess(tmp_path, {"url": "udp://127.0.0.1:0"}, max_bytes=200_000,
                            fsync="rotation")
        sender = Sender(rec.feed)
        time.sleep(0.3 + rng.random() * 1.2)
        os.kill(rec.proc.pid, signal.SIGKILL)
        rec.proc.communicate(timeout=DEADLINE_S)
        sender.close()
        files = capture_files(tmp_path / "cap", "cap")
        for path, before in seen.items():  # a restart never touches an older file
            assert digest(path) == before, path
        new = [f for f in files if f not in seen]
        assert new and min(int(f.name[4:10]) for f in new) > max((int(f.name[4:10]) for f in seen), default=0)
        for f in new:
            report = scan(f)
            # the kill may land between a new file's header (and its directory's fsync) and
            # its first frames: only the newest file may hold none
            assert not report.corrupt and (report.frames > 0 or f == new[-1]), (round_, f, report)
            # what is there reads to its last whole frame; a cut frame would be a torn tail
            assert report.torn_tail is None or report.torn_tail.offset + report.torn_tail.bytes == f.stat().st_size
            seen[f] = digest(f)
    assert len(seen) >= 4


# ---------------------------------------------------------------------------------------------
# the import's ordering, on a capture written here


def mold(seq: int, messages: list[bytes], session: str = SESSION) -> bytes:
    packet, took = moldudp64.encode_packet(session, seq, messages, 1400)
    assert took == len(messages)
    return packet


def message(seq: int) -> bytes:
    return b"S" + seq.to_bytes(4, "big") + bytes(7)  # a System Event's length, numbered


def test_import_orders_late_and_repeated_datagrams_and_marks_what_is_lost(tmp_path):
    cap = Capture(tmp_path, "cap", ["itch"])
    cap.start()
    sink = cap.sink("itch")
    sends = [
        mold(1, [message(1), message(2)]),
        mold(5, [message(5)]),                 # 3, 4 missing
        mold(3, [message(3), message(4)]),     # ... and here they come, late
        mold(5, [message(5)]),                 # a repeat
        mold(9, [message(9), message(10)]),    # 6..8 missing
        moldudp64.encode_heartbeat(SESSION, 11),
    ]
    for i, packet in enumerate(sends):
        sink.frame(1_000 + i, packet)
    sink.history("gap", first=6, count=3)
    sink.history("lost", first=6, count=2, reason="test")  # 8 is simply never there
    sink.frame(2_000, mold(11, [message(11)]))
    cap.close()
    stream, counts, holes = ordered_messages(tmp_path)
    got, at = [], 0
    while at < len(stream):
        n = int.from_bytes(stream[at:at + 2], "big")
        got.append(int.from_bytes(stream[at + 3:at + 7], "big"))
        at += 2 + n
    assert got == [1, 2, 3, 4, 5, 9, 10, 11]
    assert counts["duplicates"] == 1 and counts["lost"] == 3
    # (record index after the hole, first missing, count): 6-7 told lost, 8 never seen
    assert holes == [(5, 6, 2), (5, 8, 1)]


def test_two_feeds_one_of_them_multicast(tmp_path):
    group = f"udp://239.255.42.{random.Random(5).randint(1, 250)}:0"
    config = write_config(tmp_path / "r.toml", [
        {"name": "uni", "kind": "moldudp64", "url": "udp://127.0.0.1:0"},
        {"name": "multi", "kind": "moldudp64", "url": group, "interface": "127.0.0.1"},
    ], out=str(tmp_path / "cap"), prefix="cap")
    proc = subprocess.Popen([LOCKSTEP, "record", str(config), "--json", "--duration", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    feeds = json.loads(proc.stdout.readline())["feeds"]
    assert feeds["multi"].startswith(group[:-1]) and not feeds["multi"].endswith(":0")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
        for name, n in (("uni", 3), ("multi", 5)):
            host, port = feeds[name].removeprefix("udp://").split(":")
            for k in range(n):
                s.sendto(mold(1 + k, [message(1 + k)]), (host, int(port)))
    out, err = proc.communicate(timeout=DEADLINE_S)
    summary = json.loads(out.strip().splitlines()[-1])
    assert proc.returncode == 0, err
    assert summary["feeds"]["uni"]["messages"] == 3 and summary["feeds"]["multi"]["messages"] == 5
    assert summary["messages"] == 8 and summary["gaps"] == 0
    streams = [s for _, s, _ in frames_of(tmp_path / "cap") if s != HISTORY_STREAM]
    assert sorted(streams) == ["multi"] * 5 + ["uni"] * 3


def test_cli_full_disk_ends_with_the_summary_one_error_line_and_whole_files(tmp_path):
    config = write_config(tmp_path / "r.toml", [
        {"name": "itch", "kind": "moldudp64", "url": "udp://127.0.0.1:0"}],
        out=str(tmp_path / "cap"), prefix="cap")
    proc = subprocess.Popen([LOCKSTEP, "record", str(config), "--json", "--duration", "30"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_full_disk_child)  # noqa: PLW1509 (the Sender starts after)
    feed = json.loads(proc.stdout.readline())["feeds"]["itch"]
    sender = Sender(feed)
    try:
        out, err = proc.communicate(timeout=DEADLINE_S)
    finally:
        sender.close()
    summary = json.loads(out.strip().splitlines()[-1])
    assert proc.returncode == 1
    assert summary["stopped_by"] == "error" and "File too large (write)" in summary["error"]
    assert err.strip().splitlines()[-1].startswith("error: " + str(tmp_path / "cap"))
    for f in capture_files(tmp_path / "cap", "cap"):
        report = scan(f)
        assert report.clean and report.torn_tail is None and report.frames > 0


def test_import_gives_up_on_a_hole_nobody_fills_once_too_much_waits_behind_it(tmp_path, monkeypatch):
    held = len(message(1)) + capture_import._PENDING_OVERHEAD
    monkeypatch.setattr(capture_import, "MAX_PENDING_BYTES", 3 * held)
    cap = Capture(tmp_path, "cap", ["itch"])
    cap.start()
    for seq in [1, *range(3, 10)]:  # 2 never comes and nothing says it is lost
        cap.sink("itch").frame(seq, mold(seq, [message(seq)]))
    cap.close()
    stream, counts, holes = ordered_messages(tmp_path)
    # held: 3, 4, 5, 6 (more than 3) -> 2 is a hole after record 1, and the rest flows
    assert holes == [(1, 2, 1)] and counts["lost"] == 1 and counts["holes_given_up"] == 1
    assert len(stream) == 8 * (2 + len(message(1)))


def test_a_feed_module_records_through_its_sink(tmp_path, monkeypatch):
    """The shape a feed kind's own module has (`record_websocket(feed, sink, stop)`): what it
    gives its sink is in the capture and in the summary."""
    def record_websocket(feed, sink, stop):
        assert feed.url == "wss://example.invalid/stream" and feed.streams == ("btcusdt@trade",)
        sink.frame(1, b'{"e":"depthUpdate"}')
        sink.history("reconnect", after="test")
        sink.history("snapshot", id=7, receive_ns=3)
        sink.frame(4, b'{"e":"trade"}')

    monkeypatch.setattr(websocket, "record_websocket", record_websocket)
    config = load_record_config(write_config(tmp_path / "r.toml", [
        {"name": "ws", "kind": "websocket", "url": "wss://example.invalid/stream",
         "streams": ["btcusdt@trade"]}]))
    summary = Recorder(config, tmp_path / "cap").run(duration_s=10)
    assert summary["stopped_by"] == "end"
    ws = summary["feeds"]["ws"]
    assert (ws["messages"], ws["reconnects"], ws["snapshots"]) == (2, 1, 1)
    assert ws["bytes"] == len(b'{"e":"depthUpdate"}{"e":"trade"}')
    got = frames_of(tmp_path / "cap", "capture")
    assert [p for _, s, p in got if s == "ws"] == [b'{"e":"depthUpdate"}', b'{"e":"trade"}']
    records = [r for _, r in read_history(capture_files(tmp_path / "cap", "capture"))]
    assert [r["record"] for r in records] == ["reconnect", "snapshot", "end"]
    assert records[2]["complete"] is True


def test_status_line_on_a_terminal(tmp_path):
    master, slave = pty.openpty()
    config = write_config(tmp_path / "r.toml", [
        {"name": "itch", "kind": "moldudp64", "url": "udp://127.0.0.1:0"}], out=str(tmp_path / "cap"))
    proc = subprocess.Popen([LOCKSTEP, "record", str(config), "--duration", "2.5"],
                            stdout=subprocess.PIPE, stderr=slave, text=True)
    os.close(slave)
    host, port = proc.stdout.readline().split()[1].removeprefix("udp://").split(":")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(mold(1, [message(1), message(2)]), (host, int(port)))
    out, _ = proc.communicate(timeout=DEADLINE_S)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert proc.returncode == 0
    assert b"\r2 msgs" in seen and b"gaps 0" in seen and b"ring 0%" in seen
    assert "recorded     2 messages" in out


def test_ring_wraps_pads_and_drops_under_a_running_writer(tmp_path):
    """Frames of every size through a ring a few frames long while the writer drains it: each
    accepted frame is in the files once, in order; each refused one is counted and told."""
    rng = random.Random(21)
    cap = Capture(tmp_path, "cap", ["a"], CaptureSettings(ring_bytes=4096, max_bytes=50_000))
    cap.start()
    sink = cap.sink("a")
    accepted = []
    for i in range(20_000):
        payload = i.to_bytes(4, "little") * (rng.randrange(0, 400))
        if sink.frame(i, payload):
            accepted.append((i, payload))
    cap.close()
    stats = cap.feed_stats("a")
    assert stats["frames"] == len(accepted) and stats["dropped"] == 20_000 - len(accepted)
    assert len(accepted) > 100 and stats["dropped"] > 100  # both paths, many times round the ring
    assert len(capture_files(tmp_path, "cap")) > 1
    got = frames_of(tmp_path)
    assert [(ns, p) for ns, s, p in got if s == "a"] == accepted
    drops = [json.loads(p) for _, s, p in got if s == HISTORY_STREAM]
    told = sum(d["frames"] for d in drops)
    # the last run of drops is told only if a frame was accepted after it
    assert stats["dropped"] - told >= 0 and len(drops) == stats["drop_records"]
    for f in capture_files(tmp_path, "cap"):
        assert scan(f).clean


def test_default_out_is_the_storage_roots_raw(tmp_path):
    config = write_config(tmp_path / "r.toml", [
        {"name": "itch", "kind": "moldudp64", "url": "udp://127.0.0.1:0"}])
    proc = subprocess.run([LOCKSTEP, "record", str(config), "--data", str(tmp_path / "root"),
                           "--duration", "0.3", "--json"], capture_output=True, text=True,
                          timeout=DEADLINE_S, check=False)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["directory"] == str(tmp_path / "root" / "raw")
    assert summary["paths"] == ["capture-000001.lsraw"]
    assert (tmp_path / "root" / "raw" / "capture-000001.lsraw").is_file()


def test_history_records_are_not_read_as_a_feeds_lines(tmp_path):
    cap = Capture(tmp_path, "cap", ["ws"])
    cap.start()
    sink = cap.sink("ws")
    sink.frame(1, b'{"stream":"btcusdt@trade","data":{}}')
    sink.history("reconnect", reason="test")
    sink.frame(2, b'{"lastUpdateId":5,"bids":[],"asks":[]}')
    cap.close()
    files = capture_files(tmp_path, "cap")
    lines = b"".join(lines_from_frames(files))
    assert lines == b'1 {"stream":"btcusdt@trade","data":{}}\n2 {"lastUpdateId":5,"bids":[],"asks":[]}\n'
    (path,) = files
    capture = CaptureLines(path)
    with capture.open() as f:
        assert f.read() == lines
    assert capture.damage == {}


# ---------------------------------------------------------------------------------------------
# the session layer's decisions, through the recorder


def send_all(to: str, packets: list[bytes], pause_s: float = 0.0) -> None:
    host, port = to.removeprefix("udp://").split(":")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for packet in packets:
            s.sendto(packet, (host, int(port)))
            time.sleep(pause_s)


def test_duplicates_and_a_session_change_are_the_receivers_decisions(tmp_path):
    rec = RecordProcess(tmp_path, {"url": "udp://127.0.0.1:0"}, "--duration", "1.5")
    sends = [
        mold(1, [message(1), message(2)], "A"),
        mold(1, [message(1), message(2)], "A"),  # seen twice: recorded twice, one duplicate
        mold(3, [message(3)], "A"),
        mold(1, [message(1)], "B"),              # the venue started a new session
        mold(2, [message(2)], "B"),
        mold(4, [message(4)], "A"),              # a straggler of the old one: not followed
    ]
    send_all(rec.feed, sends, 0.01)
    code, summary, err = rec.finish()
    assert code == 0, err
    feed = summary["feeds"]["itch"]
    assert feed["duplicates"] == 1 and feed["session_changes"] == 1
    assert feed["rejected"] == {"wrong_session": 1} and feed["gaps"] == 0 and feed["lost"] == 0
    assert feed["packets"] == 5 and feed["messages"] == 7
    payloads = [p for _, s, p in frames_of(tmp_path / "cap") if s == "itch"]
    assert payloads == sends[:5]
    history = [r for _, r in read_history(capture_files(tmp_path / "cap", "cap"))]
    assert [(r["record"], r.get("session"), r.get("previous")) for r in history[:2]] == [
        ("start", "A", None), ("session", "B", "A")]


def test_heartbeat_timeout_and_resume_are_in_the_history(tmp_path):
    rec = RecordProcess(tmp_path, {"url": "udp://127.0.0.1:0", "heartbeat_timeout": "300ms"},
                        "--duration", "2")
    send_all(rec.feed, [mold(1, [message(1)])])
    time.sleep(0.9)
    send_all(rec.feed, [mold(2, [message(2)])])
    code, summary, err = rec.finish()
    assert code == 0, err
    stamps = [ns for ns, s, _ in frames_of(tmp_path / "cap") if s == "itch"]
    assert len(stamps) == 2 and summary["feeds"]["itch"]["heartbeat_timeouts"] >= 1
    history = list(read_history(capture_files(tmp_path / "cap", "cap")))
    silent = [(ns, r) for ns, r in history if r["record"] == "heartbeat_timeout"]
    between = [r for ns, r in silent if stamps[0] < ns < stamps[1]]
    assert len(between) == 1 and 300_000_000 <= between[0]["silent_ns"] < stamps[1] - stamps[0]
    assert next(ns for ns, r in history if r["record"] == "feed_resumed") == stamps[1]
    assert "nothing received for" in err


def itch_at(ts_ns: int) -> bytes:
    """An ITCH System Event stamped ts_ns after the venue's midnight."""
    return b"S" + bytes(4) + ts_ns.to_bytes(6, "big") + b"O"


def ns_of(moment: datetime.datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def test_lag_is_receive_time_minus_venue_time_in_the_venues_day(tmp_path):
    """The venue's ITCH timestamps count from New York midnight (the default timezone): a
    message stamped 1.5 s ago there has a lag of 1.5 s and change, not the hours between New
    York's time of day and UTC's."""
    pytest.importorskip("prometheus_client", reason="the record extra's prometheus-client")
    rec = RecordProcess(tmp_path, {"url": "udp://127.0.0.1:0"}, "--metrics", "127.0.0.1:0",
                        "--duration", "2")
    now = datetime.datetime.now(NEW_YORK)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    sent = ns_of(now) - 1_500_000_000 - ns_of(midnight)
    send_all(rec.feed, [mold(1, [itch_at(sent)])])
    time.sleep(0.5)
    text = urllib.request.urlopen(rec.listen["metrics"], timeout=10).read().decode()
    code, summary, err = rec.finish()
    assert code == 0, err
    assert 1.5e9 <= summary["feeds"]["itch"]["lag_ns"] < 3e9
    (line,) = [x for x in text.splitlines() if x.startswith('lockstep_record_lag_seconds{stream="itch"}')]
    assert 1.5 <= float(line.split()[-1]) < 3


def test_venue_lag_crosses_midnight_and_takes_a_given_date():
    zone = "America/New_York"
    just_after = datetime.datetime(2024, 3, 5, 0, 0, 0, 100_000, tzinfo=NEW_YORK)
    day = 86_400_000_000_000
    # sent at 23:59:59.9 on the 4th (New York), received at 00:00:00.1 on the 5th
    assert venue_lag_ns(ns_of(just_after), day - 100_000_000, zone) == 200_000_000
    # and the other way round: a receive clock 0.3 s behind the venue's, just before midnight
    before = datetime.datetime(2024, 3, 4, 23, 59, 59, 800_000, tzinfo=NEW_YORK)
    assert venue_lag_ns(ns_of(before), 100_000_000, zone) == -300_000_000
    # the loopback venue counts from UTC midnight of its dataset's day, days ago: the date says so
    then = datetime.datetime(2024, 1, 2, 14, 0, tzinfo=datetime.timezone.utc)
    received = ns_of(then) + 3 * day + 250
    assert venue_lag_ns(received, 14 * 3600 * 10**9, "UTC", datetime.date(2024, 1, 2)) == 3 * day + 250
    # a New York day across a DST change is 23 hours long: midnight is where New York says
    spring = datetime.datetime(2024, 3, 10, 12, 0, tzinfo=NEW_YORK)
    assert venue_lag_ns(ns_of(spring), 11 * 3600 * 10**9, zone) == 0


def test_import_reads_a_new_session_from_1_and_skips_the_old_ones_stragglers(tmp_path):
    cap = Capture(tmp_path, "cap", ["itch"])
    cap.start()
    sends = [mold(1, [message(1), message(2)], "A"), mold(4, [message(4)], "A"),  # 3 never comes
             mold(1, [message(101)], "B"), mold(3, [message(3)], "A"),  # a straggler of A
             mold(2, [message(102)], "B")]
    for i, packet in enumerate(sends):
        cap.sink("itch").frame(1_000 + i, packet)
    cap.close()
    stream, counts, holes = ordered_messages(tmp_path)
    got, at = [], 0
    while at < len(stream):
        got.append(int.from_bytes(stream[at + 3:at + 7], "big"))
        at += 2 + int.from_bytes(stream[at:at + 2], "big")
    assert got == [1, 2, 4, 101, 102]
    assert holes == [(2, 3, 1)] and counts["sessions"] == 2 and counts["other_session"] == 1
    assert counts["duplicates"] == 0 and counts["lost"] == 1


def test_import_of_a_capture_with_two_feeds_makes_a_dataset_of_each(tmp_path, synth):
    retransmit = free_udp_port()
    rec = RecordProcess(tmp_path, {"url": "udp://127.0.0.1:0",
                                   "retransmit": f"udp://127.0.0.1:{retransmit}"})
    serve_venue(tmp_path, synth, rec.feed, retransmit)
    code, _, err = rec.finish()
    assert code == 0, err
    datagrams = [(ns, p) for ns, s, p in frames_of(tmp_path / "cap") if s == "itch"]
    missed = next(i for i, (_, p) in enumerate(datagrams) if i >= 40 and 0 < int.from_bytes(p[18:20], "big") < 0xFFFF)
    names = ["nasdaq.a", "b"]
    cap = Capture(tmp_path / "two", "two", names,
                  info={"feeds": [{"name": n, "kind": "moldudp64", "url": ""} for n in names]})
    cap.start()
    for i, (ns, p) in enumerate(datagrams):
        cap.sink("nasdaq.a").frame(ns, p)
        if i != missed:  # b never had this datagram, and nothing says so: a GAP in its dataset
            cap.sink("b").frame(ns, p)
    cap.close()
    files = [str(p) for p in capture_files(tmp_path / "two", "two")]
    proc = subprocess.run([LOCKSTEP, "data", "import", "capture", *files, "--date", "2024-01-02",
                           "--name", "day", "--data", str(tmp_path / "root"), "--json"],
                          capture_output=True, text=True, timeout=DEADLINE_S, check=False)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    a, b = result["feeds"]["nasdaq.a"], result["feeds"]["b"]
    assert list(result["feeds"]) == names and (a["name"], b["name"]) == ("day-nasdaq.a", "day-b")
    # (the venue's synthetic ITCH has timestamps going backwards across instruments, which the
    # validator quarantines in both; only b has the hole)
    assert "sequence_gap" not in a["quarantined_by_rule"] and b["quarantined_by_rule"]["sequence_gap"] > 0
    assert proc.returncode == 4 and b["verdict"] == "partial", proc.stderr
    assert a["decoder_counts"]["capture"]["lost"] == 0
    assert b["decoder_counts"]["capture"]["lost"] == int.from_bytes(datagrams[missed][1][18:20], "big")
    # one feed picked by --stream: one dataset, as for a capture of one feed
    one = subprocess.run([LOCKSTEP, "data", "import", "capture", *files, "--date", "2024-01-02",
                          "--stream", "nasdaq.a", "--name", "only", "--data", str(tmp_path / "root"),
                          "--json"], capture_output=True, text=True, timeout=DEADLINE_S, check=False)
    single = json.loads(one.stdout.strip().splitlines()[-1])
    assert single["name"] == "only" and single["verdict"] == a["verdict"], one.stderr
    assert single["records_canonical"] == a["records_canonical"]


def test_an_implausible_sequence_is_refused_and_holes_open_at_the_stop_are_lost_one_by_one(tmp_path):
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # a server that never answers
    server.bind(("127.0.0.1", 0))
    server.settimeout(DEADLINE_S)
    rec = RecordProcess(tmp_path, {"url": "udp://127.0.0.1:0", "request_timeout": "2s",
                                   "retransmit": f"udp://127.0.0.1:{server.getsockname()[1]}"},
                        "--duration", "1")
    sends = [mold(1, [message(1)]), mold(5, [message(5)]), mold(8, [message(8)]),
             mold(5_000_000, [message(9)])]  # a forged jump: must not open a gap of millions
    send_all(rec.feed, sends, 0.01)
    code, summary, err = rec.finish()
    with server:
        request = moldudp64.decode_request(server.recv(64))
    assert code == 0, err
    # the first hole is asked for first, in the session followed
    assert (request.session, request.sequence, request.count) == (SESSION, 2, 3)
    feed = summary["feeds"]["itch"]
    assert feed["rejected"] == {"implausible": 1} and feed["packets"] == 3
    assert feed["gaps"] == 1 and feed["requests"] >= 1 and feed["lost"] == 5
    lost = [r for _, r in read_history(capture_files(tmp_path / "cap", "cap")) if r["record"] == "lost"]
    assert [(r["first"], r["count"], r["reason"]) for r in lost] == [
        (2, 3, "recorder stopped"), (6, 2, "recorder stopped")]


def test_a_recorder_joining_late_starts_at_the_first_datagram_and_imports_without_a_hole(tmp_path):
    rec = RecordProcess(tmp_path, {"url": "udp://127.0.0.1:0", "first_sequence": 0}, "--duration", "1")
    late = 2_000_000  # past what the receiver takes as plausible from 1
    sends = [moldudp64.encode_heartbeat(SESSION, late), mold(late, [message(1), message(2)]),
             mold(late + 2, [message(3)])]
    send_all(rec.feed, sends, 0.01)
    code, summary, err = rec.finish()
    assert code == 0, err
    feed = summary["feeds"]["itch"]
    assert feed["packets"] == 3 and feed["rejected"] == {} and feed["gaps"] == 0
    start = next(r for _, r in read_history(capture_files(tmp_path / "cap", "cap")) if r["record"] == "start")
    assert start["first_sequence"] == 0
    stream, counts, holes = ordered_messages(tmp_path / "cap")
    assert holes == [] and counts["lost"] == 0 and len(stream) == 3 * (2 + len(message(1)))
