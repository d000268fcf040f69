"""Every importer driven through the command line with seeded corruptions of the real captures in
../shared/data: byte flips, truncations, inserted garbage, duplicated and deleted lines (or chunks
of a binary stream), zero-filled stretches. Whatever the bytes, an import ends in a verdict or a
one-line error, never a traceback; its exit status says its verdict (0 pass, 4 partial, 5 fail,
1 a diagnosed error); its report accounts for every record it read (canonical + quarantined),
and for every line or record of its input; a failed import leaves nothing behind.

The default run is one seed per corruption and input (about a minute here);
LOCKSTEP_FUZZ_SEEDS=N runs N seeds each (marked slow).
"""
from __future__ import annotations

import gzip
import io
import json
import os
import random
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest
from shared_data import shared_file
from test_cli import cli

from lockstep.data.raw_capture import FRAME_HEADER, RawWriter


EXIT_BY_VERDICT = {"pass": 0, "partial": 4, "fail": 5}


def _lines(relative: str, count: int) -> bytes:
    with gzip.open(shared_file(relative), "rb") as f:
        return b"".join(f.readline() for _ in range(count))


def _unzipped(relative: str) -> bytes:
    with zipfile.ZipFile(shared_file(relative)) as z:
        (member,) = z.namelist()
        return z.read(member)


def _unzstd(relative: str) -> bytes:
    return pa.CompressedInputStream(pa.OSFile(str(shared_file(relative))), "zstd").read()


@dataclass(frozen=True)
class Input:
    """One importer's input: its uncompressed bytes, the file name it is imported under, whether
    its records are lines, and the flags the import needs."""

    format: str
    name: str
    load: Callable[[], bytes]
    lines: bool
    flags: tuple[str, ...] = ()


INPUTS = {
    # 2,000 lines of the spot capture: the REST snapshot (line 8), depth diffs, trades, tickers
    "binance": Input("binance", "btcusdt_20240808.txt", lambda: _lines("binance/spot/btcusdt_20240808.gz", 2000), True),
    # the bybit file's name gives the session date
    "bybit": Input("bybit", "2024-12-01_XRPUSDT_ob500.data",
                   lambda: _unzipped("bybit/xrpusdt_ob500_20241201.data.zip"), True),
    "tardis": Input("tardis", "deribit_incremental_book_L2_BTC-PERPETUAL.csv",
                    lambda: shared_file("tardis/deribit_incremental_book_L2_BTC-PERPETUAL.csv").read_bytes(), True),
    "dbn": Input("dbn", "esh4-glbx-mdp3-20231224.mbo.dbn",
                 lambda: _unzstd("databento/esh4-glbx-mdp3-20231224.mbo.dbn.zst"), False),
    "itch": Input("itch", "ex20101224.TEST_ITCH_50", lambda: gzip.decompress(
        shared_file("itch/ex20101224.TEST_ITCH_50.gz").read_bytes()), False),
}


# ---------------------------------------------------------------------------------------------
# Corruptions: each takes the bytes, the record boundaries (start offsets) and a seeded Random and
# returns the corrupted bytes and the byte ranges of the original it damaged.

Damage = list[tuple[int, int]]


def flip(data: bytes, starts: list[int], rng: random.Random) -> tuple[bytes, Damage]:
    out = bytearray(data)
    hit = sorted(rng.randrange(len(out)) for _ in range(rng.randint(1, 8)))
    for at in hit:
        out[at] ^= rng.randint(1, 255)
    return bytes(out), [(at, at + 1) for at in hit]


def truncate(data: bytes, starts: list[int], rng: random.Random) -> tuple[bytes, Damage]:
    cut = rng.randrange(len(data) // 4, len(data))
    return data[:cut], [(cut, len(data))]


def insert_garbage(data: bytes, starts: list[int], rng: random.Random) -> tuple[bytes, Damage]:
    at = rng.randrange(len(data))
    garbage = bytes(rng.randrange(256) for _ in range(rng.randint(1, 200)))
    return data[:at] + garbage + data[at:], [(at, at)]


def _stretch(starts: list[int], size: int, rng: random.Random) -> tuple[int, int]:
    """A run of 1 to 20 whole records (lines, messages)."""
    first = rng.randrange(len(starts))
    last = min(len(starts), first + rng.randint(1, 20))
    return starts[first], starts[last] if last < len(starts) else size


def duplicate_records(data: bytes, starts: list[int], rng: random.Random) -> tuple[bytes, Damage]:
    a, b = _stretch(starts, len(data), rng)
    return data[:b] + data[a:b] + data[b:], [(b, b)]


def delete_records(data: bytes, starts: list[int], rng: random.Random) -> tuple[bytes, Damage]:
    a, b = _stretch(starts, len(data), rng)
    return data[:a] + data[b:], [(a, b)]


def zero_fill(data: bytes, starts: list[int], rng: random.Random) -> tuple[bytes, Damage]:
    at = rng.randrange(len(data))
    end = min(len(data), at + rng.randint(1, 4096))
    return data[:at] + bytes(end - at) + data[end:], [(at, end)]


CORRUPTIONS = {f.__name__: f for f in (flip, truncate, insert_garbage, duplicate_records, delete_records, zero_fill)}


def line_starts(data: bytes) -> list[int]:
    starts = [0]
    at = data.find(b"\n")
    while at != -1 and at + 1 < len(data):
        starts.append(at + 1)
        at = data.find(b"\n", at + 1)
    return starts


def chunk_starts(data: bytes) -> list[int]:
    """Binary inputs: boundaries every 64 bytes (not the records': the corruption need not know them)."""
    return list(range(0, len(data), 64))


# ---------------------------------------------------------------------------------------------
# Checks

def run_import(tmp_path: Path, fmt: str, path: Path, *flags: str) -> tuple[int, dict | None, str]:
    root = tmp_path / "root"
    proc = cli("data", "import", fmt, str(path), *flags, "--data", str(root), "--json", cwd=tmp_path, check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    if proc.returncode == 1:  # a diagnosed error: one line, and nothing left behind
        (line,) = proc.stderr.strip().splitlines()
        assert line.startswith("error: ") and proc.stdout == ""
        assert not root.exists() or list(root.rglob("*")) == [], sorted(root.rglob("*"))
        return 1, None, line
    report = json.loads(proc.stdout)
    assert proc.returncode == EXIT_BY_VERDICT[report["verdict"]], (proc.returncode, report["verdict"])
    # every record read is canonical or quarantined, and the rules' counts add up
    assert report["records_read"] == report["records_canonical"] + report["records_quarantined"]
    assert sum(report["quarantined_by_rule"].values()) == report["records_quarantined"]
    assert report["decoder_counts"].get("records", report["records_read"]) == report["records_read"]
    # what the root holds says the same: one version of the events promoted, the quarantined records
    manifests = [json.loads(m.read_text()) for m in root.glob("canonical/*/v*/manifest.json")]
    assert [m["rows"] for m in manifests] == ([report["events_canonical"]] if report["events_canonical"] else [])
    entries = [json.loads(q.read_text()) for q in root.glob("quarantine/*/*/quarantine.json")]
    assert sum(e["records"] for e in entries) == report["records_quarantined"]
    assert not list(root.glob("canonical/.writing-*"))
    return proc.returncode, report, ""


def lines_of(data: bytes) -> int:
    """Lines a reader finds: a last line without its newline counts."""
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def check_line_accounting(report: dict, data: bytes, fmt: str) -> None:
    """Every line of the input is a record, or a skip the decoder counted."""
    counts = report["decoder_counts"]
    skipped = counts.get("blank_lines", 0) + counts.get("repeated_headers", 0)
    header = 1 if fmt == "tardis" else 0
    assert report["records_read"] + skipped + header == lines_of(data), counts


# ---------------------------------------------------------------------------------------------
# Cases

#: The seeds of each case: 1 by default, 1..N with LOCKSTEP_FUZZ_SEEDS=N (the seeds past the first are slow).
SEEDS = range(1, 1 + max(1, int(os.environ.get("LOCKSTEP_FUZZ_SEEDS") or 1)))


def _marks(seed: int) -> list:
    return [pytest.mark.slow] if seed > 1 else []


def _cases():
    for fmt in INPUTS:
        for kind in CORRUPTIONS:
            for seed in SEEDS:
                yield pytest.param(fmt, kind, seed, id=f"{fmt}-{kind}-{seed}", marks=_marks(seed))


@pytest.mark.parametrize("fmt, kind, seed", list(_cases()))
def test_a_corrupted_input_ends_in_a_verdict_or_one_line(tmp_path, fmt, kind, seed):
    spec = INPUTS[fmt]
    data = spec.load()
    rng = random.Random(f"{fmt}-{kind}-{seed}")
    bad, _ = CORRUPTIONS[kind](data, line_starts(data) if spec.lines else chunk_starts(data), rng)
    path = tmp_path / spec.name
    path.write_bytes(bad)
    _, report, _ = run_import(tmp_path, spec.format, path, *spec.flags)
    if report is not None and spec.lines:
        check_line_accounting(report, bad, fmt)


# ---------------------------------------------------------------------------------------------
# Raw captures (docs/raw-format.md): the binance lines above as frames of one capture file. The
# corruptions hit the frames, not the file header; damage to the header's magic is a case of its
# own. What the import must do is issue 10 item 5's: every frame the corruption did not touch is
# read, the damaged stretches are quarantined, and the file is not refused whole.

def raw_capture(folder: Path) -> tuple[bytes, int, list[int]]:
    """The capture's bytes, where its frames begin and each frame's start."""
    bodies = []
    folder.mkdir()
    with RawWriter(folder, "spot", streams=["binance-spot"]) as w:
        for line in INPUTS["binance"].load().splitlines():
            recv, _, body = line.partition(b" ")
            w.write(int(recv), 0, body)
            bodies.append(body)
    (path,) = w.paths
    data = Path(path).read_bytes()
    sizes = [FRAME_HEADER + len(b) for b in bodies]
    at = len(data) - sum(sizes)
    frames_at, starts = at, []
    for size in sizes:
        starts.append(at)
        at += size
    return data, frames_at, starts


def untouched(starts: list[int], end: int, damage: Damage) -> int:
    """Frames no damaged byte range overlaps (an insertion at `a` damages the frame around it)."""
    bounds = list(zip(starts, [*starts[1:], end]))
    return sum(1 for s, e in bounds if not any((a < e and b > s) if a < b else s < a < e for a, b in damage))


def _raw_cases():
    for kind in CORRUPTIONS:
        for seed in SEEDS:
            yield pytest.param(kind, seed, id=f"raw-{kind}-{seed}", marks=_marks(seed))


@pytest.mark.parametrize("kind, seed", list(_raw_cases()))
def test_a_corrupted_raw_capture_is_read_past_the_damage(tmp_path, kind, seed):
    data, frames_at, starts = raw_capture(tmp_path / "cap")
    rng = random.Random(f"raw-{kind}-{seed}")
    frames, damage = CORRUPTIONS[kind](data[frames_at:], [s - frames_at for s in starts], rng)
    damage = [(a + frames_at, b + frames_at) for a, b in damage]
    path = tmp_path / "spot-000001.lsraw"
    path.write_bytes(data[:frames_at] + frames)
    _, report, line = run_import(tmp_path, "binance", path)
    assert report is not None, f"refused whole: {line}"
    assert report["records_read"] >= untouched(starts, len(data), damage)


def test_a_raw_capture_with_a_damaged_magic_is_refused_as_one(tmp_path):
    data, _, _ = raw_capture(tmp_path / "cap")
    path = tmp_path / "spot-000001.lsraw"
    path.write_bytes(data[:2] + bytes([data[2] ^ 0x20]) + data[3:])
    code, _, line = run_import(tmp_path, "binance", path)
    assert code == 1 and str(path) in line


# ---------------------------------------------------------------------------------------------
# Truncated compressed inputs: read up to the cut (issue 10 item 6). At least every line the
# compressed bytes before the cut decode to is read, and at most one record is cut short.

def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def _zip(name: str, data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo(name, date_time=(2024, 12, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
    return out.getvalue()


def _recoverable(compressed: bytes, wbits: int, skip: int = 0) -> bytes:
    """What a streaming inflater makes of the bytes before the cut."""
    return zlib.decompressobj(wbits).decompress(compressed[skip:])


COMPRESSED = {
    # format: (file name suffix, compress(name, data), the inflated prefix of truncated bytes or None)
    "binance": (".gz", lambda name, data: _gzip(data), lambda c: _recoverable(c, 31)),
    "bybit": (".zip", _zip, lambda c: _recoverable(c, -15, 30 + len(INPUTS["bybit"].name))),
    "dbn": (".zst", None, None),
    "itch": (".gz", lambda name, data: _gzip(data), None),
}


def _truncated_cases():
    for fmt in COMPRESSED:
        for seed in SEEDS:
            yield pytest.param(fmt, seed, id=f"{fmt}-compressed-truncated-{seed}", marks=_marks(seed))


@pytest.mark.parametrize("fmt, seed", list(_truncated_cases()))
def test_a_truncated_compressed_input_is_read_up_to_the_cut(tmp_path, fmt, seed):
    spec = INPUTS[fmt]
    suffix, compress, recoverable = COMPRESSED[fmt]
    whole = (shared_file("databento/esh4-glbx-mdp3-20231224.mbo.dbn.zst").read_bytes() if compress is None
             else compress(spec.name, spec.load()))
    rng = random.Random(f"{fmt}-truncated-{seed}")
    cut = whole[: rng.randrange(len(whole) // 4, len(whole) * 3 // 4)]
    path = tmp_path / (spec.name + suffix)
    path.write_bytes(cut)
    _, report, line = run_import(tmp_path, spec.format, path, *spec.flags)
    assert report is not None, f"refused whole: {line}"
    assert report["records_read"] > 0
    assert report["quarantined_by_rule"].get("truncated_record", 0) <= 1
    if recoverable is not None:
        assert report["records_read"] >= recoverable(cut).count(b"\n") - (1 if fmt == "tardis" else 0)
