"""The recorder (`lockstep record`).

- test_capture_to_disk: frames to capture files through the recorder's ring and writer thread
  with the default fsync policy (every 1 s), pushed a receive batch (256 datagrams of 1,400 bytes)
  per call as the MoldUDP64 feed does; MB/s of frame bytes from the first push until every byte
  is written and the file closed (fsynced). Target >= 300 MB/s. The files go under pytest's
  tmp_path, or under $LOCKSTEP_BENCH_CAPTURE_DIR (say /dev/shm, to measure the writer rather than
  the disk: this machine's disk takes ~75 MB/s, `dd bs=1M` with or without fsync).
- test_record_venue_at_full_speed: the loopback venue at `speed = "max"` (in this process) recorded
  by `lockstep record` (a subprocess) for at least 30 s at scale 1 (a synthetic market of 160 M
  events; LOCKSTEP_BENCH_SCALE scales it, the test suite's smoke run is a fraction of a second).
  Measured from the capture itself: every sequence number 1..N of the venue's messages is in it
  (the union of its datagrams' ranges), ITCH messages per second over the span of their receive
  stamps, the recorder's CPU seconds per million messages, ring and kernel drops, and the load
  average around the run (the machine is shared). Target >= 1 M messages/s for >= 30 s with zero
  loss. The capture goes under pytest's tmp_path, or $LOCKSTEP_BENCH_CAPTURE_DIR.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
from conftest import SCALE, report_rate, scaled
from test_cli import LOCKSTEP

from lockstep.data.raw_capture import FrameReader, capture_files
from lockstep.data.recorder.capture import Capture, CaptureSettings
from lockstep.data.synth import generate
from lockstep.venue.loopback.config import VenueConfig, VenueSettings
from lockstep.venue.loopback.serve import LoopbackVenue

BATCH = 256
DATAGRAM = 1400
SUSTAINED_S = 30  # the target's duration, asserted at scale 1
_END_OF_SESSION = 0xFFFF


def _to_disk(directory: Path, batches: int) -> int:
    cap = Capture(directory, "bench", ["feed"], CaptureSettings(max_bytes=256 << 20))
    sink = cap.sink("feed")
    rng = np.random.default_rng(7)
    data = rng.integers(0, 256, (BATCH, 2048), dtype=np.uint8)
    length = np.full(BATCH, DATAGRAM, np.uint32)
    stamps = np.arange(BATCH, dtype=np.int64) + 1_700_000_000_000_000_000
    cap.start()
    dropped = 0
    for _ in range(batches):
        waited = time.monotonic()
        while cap.feed_stats("feed")["ring_used"] > (cap.ring_bytes * 3) // 4:
            time.sleep(0.0002)  # a receive loop this fast would outrun any disk: pace it
            assert time.monotonic() - waited < 60, "the capture writer stopped draining its ring"
        dropped += sink.datagrams(data, length, stamps, BATCH)
    cap.close()
    assert dropped == 0 and cap.failure() is None
    return cap.writer_stats()["bytes"]


def test_capture_to_disk(benchmark, tmp_path):
    batches = max(2, scaled(1_500_000) // 1000)  # x 256 x 1,424 bytes = ~550 MB at scale 1
    root = Path(os.environ.get("LOCKSTEP_BENCH_CAPTURE_DIR") or tmp_path) / f"bench-{os.getpid()}"
    written = {}

    def once():
        shutil.rmtree(root, ignore_errors=True)
        written["bytes"] = _to_disk(root, batches)

    try:
        benchmark.pedantic(once, rounds=2, iterations=1)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    report_rate(benchmark, written["bytes"] / 1e6, "MB")


def _cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, clock ticks of 10 ms


def _sequence_coverage(directory: Path, stream: str) -> dict[str, int]:
    """What the capture's datagrams of `stream` cover: `through` (every number 1..through is in
    some datagram), `holes` (ranges missing below the highest number), `messages` (the highest
    number), and the first and last receive stamps of data datagrams. Vectorised over frames."""
    starts, ends, first_ns, last_ns = [], [], None, None
    for batch in FrameReader(capture_files(directory, "bench"), corrupt="raise"):
        if stream not in batch.streams:
            continue
        rows = np.flatnonzero((batch.stream_id == batch.streams.index(stream)) & (batch.length >= 20))
        if not len(rows):
            continue
        data = np.frombuffer(batch.data, np.uint8)
        head = data[batch.offset[rows].astype(np.int64)[:, None] + np.arange(10, 20)]
        seq = head[:, :8].astype(np.uint64)
        seq = (seq << (np.uint64(8) * np.arange(7, -1, -1, dtype=np.uint64))).sum(axis=1, dtype=np.uint64)
        count = (head[:, 8].astype(np.int64) << 8) | head[:, 9]
        data_rows = (count > 0) & (count != _END_OF_SESSION)
        starts.append(seq[data_rows].astype(np.int64))
        ends.append(seq[data_rows].astype(np.int64) + count[data_rows])
        stamps = batch.receive_ns[rows][data_rows]
        if len(stamps):
            first_ns = int(stamps.min()) if first_ns is None else min(first_ns, int(stamps.min()))
            last_ns = int(stamps.max()) if last_ns is None else max(last_ns, int(stamps.max()))
    start, end = np.concatenate(starts), np.concatenate(ends)
    order = np.argsort(start, kind="stable")
    start, end = start[order], end[order]
    reach = np.maximum.accumulate(np.concatenate(([1], end)))[:-1]  # covered below each start
    holes = int((start > reach).sum())
    through = int(reach[np.argmax(start > reach)]) - 1 if holes else int(end.max()) - 1
    return {"through": through, "holes": holes, "messages": int(end.max()) - 1,
            "first_ns": first_ns or 0, "last_ns": last_ns or 0}


def test_record_venue_at_full_speed(benchmark, bench_root, tmp_path):
    dataset = generate(scaled(160_000_000), seed=11, book="l3", instruments=2, data=bench_root)
    root = Path(os.environ.get("LOCKSTEP_BENCH_CAPTURE_DIR") or tmp_path) / f"rec-{os.getpid()}"
    result: dict = {}

    def once():
        shutil.rmtree(root, ignore_errors=True)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            retransmit = s.getsockname()[1]
        config = tmp_path / "record.toml"
        config.write_text(f'[record]\nout = "{root}"\nprefix = "bench"\n[[record.feeds]]\n'
                          f'name = "itch"\nkind = "moldudp64"\nurl = "udp://127.0.0.1:0"\n'
                          f'retransmit = "udp://127.0.0.1:{retransmit}"\nreceive_buffer = 67108864\n')
        rec = subprocess.Popen([LOCKSTEP, "record", str(config), "--json"], stdout=subprocess.PIPE,
                               text=True)
        feed = json.loads(rec.stdout.readline())["feeds"]["itch"]
        cpu0 = _cpu(rec.pid)
        result["load_before"] = os.getloadavg()
        settings = VenueSettings.from_dict({"feed": feed, "speed": "max", "linger": "2s",
                                            "retransmit": f"udp://127.0.0.1:{retransmit}"})
        with LoopbackVenue(VenueConfig(dataset.path, settings)) as venue:
            result["venue"] = venue.run(duration_s=600)
        result["cpu"] = _cpu(rec.pid) - cpu0
        result["load_after"] = os.getloadavg()
        stdout, _ = rec.communicate(timeout=120)
        result["record"] = json.loads(stdout.strip().splitlines()[-1])
        result["coverage"] = _sequence_coverage(root, "itch")
        result["capture_bytes"] = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())

    try:
        benchmark.pedantic(once, rounds=1, iterations=1)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    venue, rec, cover = result["venue"], result["record"], result["coverage"]
    span_s = (cover["last_ns"] - cover["first_ns"]) / 1e9
    rate = venue["messages"] / span_s if span_s > 0 else float("nan")
    cpu_per_million = result["cpu"] / (rec["messages"] / 1e6)
    benchmark.extra_info.update(venue=venue, record={k: v for k, v in rec.items() if k != "feeds"},
                                coverage=cover, seconds=span_s, messages_per_second=rate,
                                cpu_seconds_per_million=cpu_per_million,
                                load_before=result["load_before"], load_after=result["load_after"])
    print(f"\n  venue sent {venue['messages']:,} messages, received over {span_s:.3f} s "
          f"({rate:,.0f}/s); capture has every number through {cover['through']:,} "
          f"(holes {cover['holes']}); recorded {rec['messages']:,} messages (gaps {rec['gaps']}, "
          f"retransmitted {rec['retransmitted']}, lost {rec['lost']}, drops {rec['drops']}, "
          f"kernel drops {rec['kernel_drops']}); recorder CPU {result['cpu']:.2f} s = "
          f"{cpu_per_million:.3f} s per million messages; load average "
          f"{result['load_before'][0]:.2f} -> {result['load_after'][0]:.2f}")
    written_mb_s = result["capture_bytes"] / 1e6 / span_s if span_s > 0 else float("nan")
    print(f"  capture {result['capture_bytes'] / 1e9:.2f} GB, {written_mb_s:,.0f} MB/s into {root.parent}")
    # Ring drops are the writer falling behind the feed, most often the disk under the capture.
    assert rec["drops"] == 0, (
        f"{rec['drops']:,} ring drops: the capture needed {written_mb_s:,.0f} MB/s into "
        f"{root.parent}; on a slower disk set LOCKSTEP_BENCH_CAPTURE_DIR to a tmpfs (/dev/shm)")
    assert rec["lost"] == 0 and rec["stopped_by"] == "end"
    assert cover["holes"] == 0 and cover["through"] == venue["messages"] == cover["messages"]
    if SCALE >= 1:
        assert span_s >= SUSTAINED_S, f"the venue's feed lasted only {span_s:.1f} s"
