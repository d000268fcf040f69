"""Raw capture throughput in MB/s of frame bytes: RawWriter.write (one Python call per frame, CRC32C
in C++) and read_frames with every checksum verified (files in the page cache, so this is the
reader's CPU cost, not the disk's). ~200 MB of frames with payloads of 100-2000 bytes."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from conftest import report_rate, scaled

from lockstep._bindings import raw_capture as _raw_capture
from lockstep.data.raw_capture import RawWriter, capture_files, read_frames

FRAMES = 190_000  # x ~1050 bytes on average = ~200 MB


def _frames():
    rng = np.random.default_rng(20240808)
    n = scaled(FRAMES)
    sizes = rng.integers(100, 2001, n)
    pool = rng.integers(32, 127, int(sizes.max()) + 4096, dtype=np.uint8).tobytes()
    starts = rng.integers(0, 4096, n)
    ns = 1_723_161_255_000_000_000 + np.cumsum(rng.integers(1_000, 2_000_000, n))
    view = memoryview(pool)
    return [(int(t), int(i % 8), view[s:s + z])
            for i, (t, s, z) in enumerate(zip(ns.tolist(), starts.tolist(), sizes.tolist()))]


def _write(directory: Path, frames) -> int:
    with RawWriter(directory, "bench", streams=[f"s{i}" for i in range(8)],
                   max_bytes=64 << 20) as w:
        for t, sid, payload in frames:
            w.write(t, sid, payload)
    return w.bytes


def test_raw_write(benchmark, bench_root):
    frames = _frames()
    root = Path(bench_root) / "raw-write"
    sizes = []

    def fresh():
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)

    def once():
        sizes.append(_write(root, frames))

    benchmark.pedantic(once, setup=fresh, rounds=3, iterations=1)
    report_rate(benchmark, sizes[-1] / 1e6, "MB")
    shutil.rmtree(root, ignore_errors=True)


def test_raw_read_verify(benchmark, bench_root):
    root = Path(bench_root) / "raw-read"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    total = _write(root, _frames())
    files = capture_files(root, "bench")
    counts = []

    def once():
        reader = read_frames(files)
        n = 0
        for batch in reader:
            n += len(batch)
        assert all(r.clean for r in reader.reports)
        counts.append(n)

    benchmark.pedantic(once, rounds=3, iterations=1)
    assert counts[-1] == scaled(FRAMES)
    report_rate(benchmark, total / 1e6, "MB")
    shutil.rmtree(root, ignore_errors=True)


def test_crc32c_only(benchmark):
    data = np.random.default_rng(1).integers(0, 256, scaled(FRAMES) * 1050, dtype=np.uint8)
    buf = data.tobytes()
    benchmark.pedantic(lambda: _raw_capture.crc32c(buf), rounds=3, iterations=1)
    report_rate(benchmark, len(buf) / 1e6, "MB")
