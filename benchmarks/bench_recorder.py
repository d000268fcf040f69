"""The recorder (`lockstep record`).

- test_capture_to_disk: frames to capture files through the recorder's ring and writer thread
  with the default fsync policy (every 1 s), pushed a receive batch (256 datagrams of 1,400 bytes)
  per call as the MoldUDP64 feed does; MB/s of frame bytes from the first push until every byte
  is written and the file closed (fsynced). Target >= 300 MB/s. The files go under pytest's
  tmp_path, or under $LOCKSTEP_BENCH_CAPTURE_DIR (say /dev/shm, to measure the writer rather than
  the disk: this machine's disk takes ~75 MB/s, `dd bs=1M` with or without fsync).
- test_record_venue_at_full_speed: the loopback venue at `speed = "max"` (in this process) recorded
  by `lockstep record` (a subprocess): ITCH messages recorded per second of the venue's send, which
  must all be in the capture (zero gaps lost, zero ring drops), and the recorder's CPU seconds per
  million messages. Target >= 1 M messages/s with zero loss. LOCKSTEP_BENCH_SCALE scales both.
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
from conftest import report_rate, scaled
from test_cli import LOCKSTEP

from lockstep.data.recorder.capture import Capture, CaptureSettings
from lockstep.data.synth import generate
from lockstep.venue.loopback.config import VenueConfig, VenueSettings
from lockstep.venue.loopback.serve import LoopbackVenue

BATCH = 256
DATAGRAM = 1400


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


def test_record_venue_at_full_speed(benchmark, bench_root, tmp_path):
    dataset = generate(scaled(4_000_000), seed=11, book="l3", instruments=2, data=bench_root)
    result: dict = {}

    def once():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            retransmit = s.getsockname()[1]
        config = tmp_path / "record.toml"
        out = tmp_path / f"cap{time.monotonic_ns()}"
        config.write_text(f'[record]\nout = "{out}"\n[[record.feeds]]\nname = "itch"\n'
                          f'kind = "moldudp64"\nurl = "udp://127.0.0.1:0"\n'
                          f'retransmit = "udp://127.0.0.1:{retransmit}"\nreceive_buffer = 67108864\n')
        rec = subprocess.Popen([LOCKSTEP, "record", str(config), "--json"], stdout=subprocess.PIPE,
                               text=True)
        feed = json.loads(rec.stdout.readline())["feeds"]["itch"]
        cpu0 = _cpu(rec.pid)
        settings = VenueSettings.from_dict({"feed": feed, "speed": "max", "linger": "2s",
                                            "retransmit": f"udp://127.0.0.1:{retransmit}"})
        with LoopbackVenue(VenueConfig(dataset.path, settings)) as venue:
            result["venue"] = venue.run(duration_s=600)
        result["cpu"] = _cpu(rec.pid) - cpu0
        stdout, _ = rec.communicate(timeout=120)
        result["record"] = json.loads(stdout.strip().splitlines()[-1])

    benchmark.pedantic(once, rounds=1, iterations=1)
    venue, rec = result["venue"], result["record"]
    rate = venue["messages"] / venue["seconds"]
    cpu_per_million = result["cpu"] / (rec["messages"] / 1e6)
    benchmark.extra_info.update(venue=venue, record={k: v for k, v in rec.items() if k != "feeds"},
                                messages_per_second=rate, cpu_seconds_per_million=cpu_per_million)
    print(f"\n  venue sent {venue['messages']:,} messages in {venue['seconds']:.3f} s "
          f"({rate:,.0f}/s); recorded {rec['messages']:,} messages (gaps {rec['gaps']}, "
          f"retransmitted {rec['retransmitted']}, lost {rec['lost']}, drops {rec['drops']}, "
          f"kernel drops {rec['kernel_drops']}); recorder CPU {result['cpu']:.2f} s = "
          f"{cpu_per_million:.2f} s per million messages")
    assert rec["lost"] == 0 and rec["drops"] == 0 and rec["stopped_by"] == "end"
    assert rec["messages"] - rec["retransmitted"] <= venue["messages"] <= rec["messages"]
