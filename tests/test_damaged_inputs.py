"""Damaged inputs are read up to the damage, not refused whole: raw captures with corrupt frames,
garbage, torn or zero-filled tails, unknown stream ids (every good frame imported, each damaged
stretch quarantined with its byte range), and compressed inputs of every format cut short (every
whole record imported, one truncated_record where the stream ends). Driven through the CLI."""
from __future__ import annotations

import gzip
import io
import json
import random
import shutil
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from shared_data import shared_file

from lockstep.data.importers.dbn import decode_dbn
from lockstep.data.importers.normalized import decompressed
from lockstep.data.raw_capture import RawWriter, crc32c
from lockstep.enums import Rule

LOCKSTEP = shutil.which("lockstep") or "lockstep"
USDM = "binance/usdm/btcusdt_20240808.gz"
FRAMES = 3000


def data_import(fmt: str, path: Path, root: Path, *extra: str) -> tuple[int, dict | None, str]:
    """(exit code, the --json summary or None, stderr) of `lockstep data import`."""
    proc = subprocess.run([LOCKSTEP, "data", "import", fmt, str(path), "--data", str(root), "--json",
                           *extra], capture_output=True, text=True, timeout=600)
    summary = json.loads(proc.stdout) if proc.stdout.strip() else None
    return proc.returncode, summary, proc.stderr


def quarantined(summary: dict) -> list[dict]:
    return pq.read_table(f"{summary['paths']['quarantine']}/records.parquet").to_pylist()


# ---------------------------------------------------------------------------------------------
# raw captures


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    """A one-file capture of the first 3,000 messages of the USD-M fixture, the frames' file
    offsets (from the format's own layout, not the reader) and the index of a bookTicker frame
    past the snapshot (losing it breaks no update-id chain)."""
    lines = gzip.decompress(shared_file(USDM).read_bytes()).splitlines()[:FRAMES]
    folder = tmp_path_factory.mktemp("cap")
    with RawWriter(folder, "usdm", streams=["binance-usdm"]) as w:
        for line in lines:
            recv, _, body = line.partition(b" ")
            w.write(int(recv), 0, body)
    data = w.paths[0].read_bytes()
    meta_len = int.from_bytes(data[8:12], "little")
    offsets = [28 + meta_len]
    for line in lines:
        offsets.append(offsets[-1] + 24 + len(line.partition(b" ")[2]))
    assert offsets[-1] == len(data)
    victim = next(i for i in range(1000, FRAMES) if b"bookTicker" in lines[i])
    return data, offsets, victim


def payload_length(data: bytes, frame_at: int) -> int:
    return int.from_bytes(data[frame_at + 12:frame_at + 16], "little")


def frame(receive_ns: int, stream_id: int, payload: bytes) -> bytes:
    """A frame as docs/raw-format.md lays it out."""
    head = struct.pack("<qII", receive_ns, stream_id, len(payload))
    header_crc = crc32c(head)
    return head + struct.pack("<II", header_crc, crc32c(payload, header_crc)) + payload


def damaged(capture, kind: str) -> tuple[bytes, list[tuple[int, int, str]], int]:
    """(file bytes, the damaged stretches (start, end, rule) expected, good frames)."""
    data, offsets, k = capture
    start, end = offsets[k], offsets[k + 1]
    body = bytearray(data)
    if kind == "payload byte":
        body[start + 30] ^= 0xFF
        return bytes(body), [(start, end, "malformed_record")], FRAMES - 1
    if kind == "length":
        body[start + 12] ^= 0x01  # the header checksum fails: resync at the next frame
        return bytes(body), [(start, end, "malformed_record")], FRAMES - 1
    garbage = random.Random(10).randbytes(100)
    if kind == "garbage inside":
        return data[:start] + garbage + data[start:], [(start, start + 100, "malformed_record")], FRAMES
    if kind == "garbage appended":
        return data + garbage, [(len(data), len(data) + 100, "malformed_record")], FRAMES
    if kind == "zero-filled tail":
        return data + bytes(4096), [(len(data), len(data) + 4096, "truncated_record")], FRAMES
    if kind == "torn tail":
        return data[:-7], [(offsets[-2], len(data) - 7, "truncated_record")], FRAMES - 1
    if kind == "unknown stream":
        extra = frame(struct.unpack_from("<q", data, start)[0], 5, b'{"not":"named"}')
        return data[:start] + extra + data[start:], [(start, start + len(extra), "malformed_record")], FRAMES
    raise AssertionError(kind)


KINDS = ["payload byte", "length", "garbage inside", "garbage appended", "zero-filled tail",
         "torn tail", "unknown stream"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_damaged_capture_keeps_every_good_frame(capture, tmp_path, kind):
    body, stretches, good = damaged(capture, kind)
    path = tmp_path / "usdm-000001.lsraw"
    path.write_bytes(body)
    code, summary, err = data_import("binance", path, tmp_path / "root")
    assert code == 4, err
    assert summary["verdict"] == "partial"
    assert summary["records_read"] == good + len(stretches)
    assert summary["records_canonical"] == good  # every good frame, nothing else
    rules: dict[str, int] = {}
    for _, _, rule in stretches:
        rules[rule] = rules.get(rule, 0) + 1
    assert summary["quarantined_by_rule"] == rules
    rows = quarantined(summary)
    assert [(r["rule"], r["reason"].split(":")[0]) for r in rows] == [
        (rule, f"{path}, bytes {a}..{b}") for a, b, rule in stretches]
    files = summary["decoder_counts"]["raw_capture"]["files"]
    assert files[0]["frames"] - files[0]["unknown_stream_frames"] == good


def test_every_other_frame_corrupt(capture, tmp_path):
    """Damage everywhere is still accounted frame by frame (and in one pass over the file)."""
    data, offsets, _ = capture
    body = bytearray(data)
    for k in range(1, FRAMES, 2):
        body[offsets[k] + 24] ^= 0xFF
    path = tmp_path / "usdm-000001.lsraw"
    path.write_bytes(bytes(body))
    code, summary, err = data_import("binance", path, tmp_path / "root")
    assert code in (4, 5), err
    assert summary["records_read"] == FRAMES
    counts = summary["decoder_counts"]["raw_capture"]
    assert counts["damage_records"] == {"malformed_record": FRAMES // 2}
    assert counts["files"][0]["frames"] == FRAMES // 2
    assert summary["quarantined_by_rule"]["malformed_record"] == FRAMES // 2


def test_damage_in_one_file_of_a_rotated_capture(tmp_path):
    """Several files are one stream: damage in the second is placed in that file, at its bytes."""
    lines = gzip.decompress(shared_file(USDM).read_bytes()).splitlines()[:FRAMES]
    with RawWriter(tmp_path, "usdm", streams=["binance-usdm"], max_bytes=300_000) as w:
        for line in lines:
            recv, _, body = line.partition(b" ")
            w.write(int(recv), 0, body)
    files = list(w.paths)
    second = bytearray(files[1].read_bytes())
    start = 28 + int.from_bytes(second[8:12], "little")  # its first frame; on to a bookTicker
    while b"bookTicker" not in second[start + 24:start + 24 + payload_length(second, start)]:
        start += 24 + payload_length(second, start)
    length = payload_length(second, start)
    second[start + 24] ^= 0xFF  # a payload byte
    files[1].write_bytes(bytes(second))
    proc = subprocess.run([LOCKSTEP, "data", "import", "binance", *map(str, files), "--data",
                           str(tmp_path / "root"), "--json"], capture_output=True, text=True, timeout=600)
    summary = json.loads(proc.stdout)
    assert len(files) > 2 and proc.returncode == 4, proc.stderr
    assert summary["records_read"] == FRAMES
    assert summary["quarantined_by_rule"] == {"malformed_record": 1}
    (row,) = [r for r in quarantined(summary) if r["rule"] == "malformed_record"]
    assert row["file"] == 1 and row["reason"].startswith(f"{files[1]}, bytes {start}..{start + 24 + length}: ")


def test_what_each_damage_says(capture, tmp_path):
    """The reason of each stretch says what was wrong (the checksums, the stream id, zeros)."""
    said = {}
    for kind in ("payload byte", "length", "unknown stream", "zero-filled tail"):
        body, _, _ = damaged(capture, kind)
        path = tmp_path / kind.replace(" ", "-") / "c-000001.lsraw"
        path.parent.mkdir()
        path.write_bytes(body)
        _, summary, _ = data_import("binance", path, tmp_path / "root")
        said[kind] = quarantined(summary)[0]["reason"]
    assert "frame checksum stored 0x" in said["payload byte"]
    assert "header checksum stored 0x" in said["length"]
    assert "stream id 5" in said["unknown stream"]
    assert "4096 zero bytes" in said["zero-filled tail"]


@pytest.mark.parametrize("where", [3, 0])
def test_a_capture_with_a_damaged_magic_is_refused_as_a_capture(capture, tmp_path, where):
    """Not read as text (garbage records, exit 0): refused in one line naming the magic, with
    nothing written, whatever the file is called."""
    data, _, _ = capture
    body = bytearray(data)
    body[where] ^= 0xFF
    for name in ("usdm-000001.lsraw", "capture.bin"):
        path = tmp_path / name
        path.write_bytes(bytes(body))
        root = tmp_path / f"root-{name}"
        code, summary, err = data_import("binance", path, root)
        assert code == 1 and summary is None
        assert err.count("\n") == 1 and "Traceback" not in err
        assert f"{path}, offset 0" in err and "magic" in err
        assert not list(root.glob("*/*/*"))


def test_a_clean_capture_still_passes(capture, tmp_path):
    data, _, _ = capture
    path = tmp_path / "usdm-000001.lsraw"
    path.write_bytes(data)
    code, summary, _ = data_import("binance", path, tmp_path / "root")
    assert code == 0 and summary["records_read"] == summary["records_canonical"] == FRAMES


# ---------------------------------------------------------------------------------------------
# compressed inputs cut short


def whole_lines(text: bytes) -> int:
    """Non-blank lines ended by a newline."""
    return sum(1 for line in text.split(b"\n")[:-1] if line.strip())


def gunzip_present(blob: bytes) -> bytes:
    return zlib.decompressobj(31).decompress(blob)


def check_cut(code: int, summary: dict, err: str, path: Path, whole: int, present: int) -> None:
    """Every whole record imported, exactly one truncated_record ending where the content does."""
    assert code == 4, err
    assert summary["verdict"] == "partial" and summary["records_read"] == whole + 1
    assert summary["quarantined_by_rule"].get("truncated_record") == 1
    (row,) = [r for r in quarantined(summary) if r["rule"] == "truncated_record"]
    assert row["record"] == whole  # the last record
    assert row["offset"] + row["length"] == present
    assert str(path) in row["reason"] and "cut" in row["reason"]


@pytest.mark.parametrize("keep", [0.5, -4], ids=["middle", "trailer"])
def test_cut_binance_gzip(tmp_path, keep):
    blob = shared_file(USDM).read_bytes()
    blob = blob[:int(len(blob) * keep)] if keep > 0 else blob[:keep]
    path = tmp_path / "usdm.gz"
    path.write_bytes(blob)
    present = gunzip_present(blob)
    code, summary, err = data_import("binance", path, tmp_path / "root")
    check_cut(code, summary, err, path, whole_lines(present), len(present))


def test_cut_binance_zstd(tmp_path):
    zstandard = pytest.importorskip("zstandard")
    text = gzip.decompress(shared_file(USDM).read_bytes())[:3_000_000]
    blob = zstandard.ZstdCompressor().compress(text)
    path = tmp_path / "usdm.zst"
    path.write_bytes(blob[:len(blob) // 2])
    present = zstandard.ZstdDecompressor().decompressobj().decompress(blob[:len(blob) // 2])
    code, summary, err = data_import("binance", path, tmp_path / "root")
    check_cut(code, summary, err, path, whole_lines(present), len(present))


def zip_present(blob: bytes, keep: int) -> bytes:
    """What a zip's one member (stored or deflated) holds up to byte `keep` of the file."""
    info = zipfile.ZipFile(io.BytesIO(blob)).infolist()[0]
    head = blob[info.header_offset:info.header_offset + 30]
    start = info.header_offset + 30 + int.from_bytes(head[26:28], "little") + int.from_bytes(head[28:30], "little")
    if info.compress_type == zipfile.ZIP_STORED:
        return blob[start:min(keep, start + info.file_size)]
    return zlib.decompressobj(-15).decompress(blob[start:keep])


@pytest.mark.parametrize("keep", [0.6, -30], ids=["middle", "directory"])
def test_cut_bybit_zip(tmp_path, keep):
    blob = shared_file("bybit/xrpusdt_ob500_20241201.data.zip").read_bytes()
    n = int(len(blob) * keep) if keep > 0 else len(blob) + keep
    path = tmp_path / "xrpusdt.zip"
    path.write_bytes(blob[:n])
    present = zip_present(blob, n)
    code, summary, err = data_import("bybit", path, tmp_path / "root")
    check_cut(code, summary, err, path, whole_lines(present), len(present))


def test_cut_tardis_gzip(tmp_path):
    text = shared_file("tardis/deribit_incremental_book_L2_BTC-PERPETUAL.csv").read_bytes()
    blob = gzip.compress(text, mtime=0)
    path = tmp_path / "deribit_incremental_book_L2.csv.gz"
    path.write_bytes(blob[:len(blob) * 3 // 4])
    present = gunzip_present(blob[:len(blob) * 3 // 4])
    code, summary, err = data_import("tardis", path, tmp_path / "root")
    check_cut(code, summary, err, path, whole_lines(present) - 1, len(present))  # less the header


def dbn_whole_records(content: bytes) -> int:
    """Whole records after the metadata (DBN: 'DBN', version, u32 metadata length; a record's
    first byte is its length in 4-byte words)."""
    pos = 8 + int.from_bytes(content[4:8], "little")
    n = 0
    while pos < len(content) and pos + content[pos] * 4 <= len(content):
        pos += content[pos] * 4
        n += 1
    return n


@pytest.mark.parametrize("keep", [0.5, -2], ids=["middle", "end"])
def test_cut_dbn_zstd(tmp_path, keep):
    zstandard = pytest.importorskip("zstandard")
    blob = shared_file("databento/esh4-glbx-mdp3-20231224.mbo.dbn.zst").read_bytes()
    n = int(len(blob) * keep) if keep > 0 else len(blob) + keep
    path = tmp_path / "esh4.mbo.dbn.zst"
    path.write_bytes(blob[:n])
    present, rest = b"", blob[:n]
    while rest:  # frame by frame, as the file is written
        d = zstandard.ZstdDecompressor().decompressobj()
        present += d.decompress(rest)
        rest = d.unused_data if d.eof else b""
    code, summary, err = data_import("dbn", path, tmp_path / "root")
    check_cut(code, summary, err, path, dbn_whole_records(present), len(present))


ITCH_LENGTHS = {  # ITCH 5.0 message lengths after the 2-byte prefix, by type
    b"S": 12, b"R": 39, b"H": 25, b"Y": 20, b"L": 26, b"V": 35, b"W": 12, b"K": 28, b"J": 35,
    b"h": 21, b"A": 36, b"F": 40, b"E": 31, b"C": 36, b"X": 23, b"D": 19, b"U": 35, b"P": 44,
    b"Q": 40, b"B": 19, b"I": 50, b"N": 20,
}


def itch_whole_messages(content: bytes) -> tuple[int, int]:
    """(whole messages, where they end); the fixture's prefixes are zero: the type gives the length."""
    pos = n = 0
    while pos + 3 <= len(content):
        size = 2 + (int.from_bytes(content[pos:pos + 2], "big") or ITCH_LENGTHS[content[pos + 2:pos + 3]])
        if pos + size > len(content):
            break
        pos += size
        n += 1
    return n, pos


@pytest.mark.parametrize("keep", [0.5, -4], ids=["middle", "trailer"])
def test_cut_itch_gzip(tmp_path, keep):
    blob = shared_file("itch/ex20101224.TEST_ITCH_50.gz").read_bytes()
    blob = blob[:int(len(blob) * keep)] if keep > 0 else blob[:keep]
    path = tmp_path / "ex20101224.TEST_ITCH_50.gz"
    path.write_bytes(blob)
    present = gunzip_present(blob)
    whole, end = itch_whole_messages(present)
    code, summary, err = data_import("itch", path, tmp_path / "root")  # its books cross: more quarantined
    check_cut(code, summary, err, path, whole, len(present))
    assert (end == len(present)) == (keep < 0)  # the trailer cut leaves no partial message


def test_cut_zstd_without_zstandard_still_ends_in_one_truncated_record(tmp_path, monkeypatch):
    """pyarrow (the fallback when the optional zstandard is absent) reports a cut zstd stream
    only by an error, after keeping back its last block: the records before that block are
    imported, and the one truncated_record says that installing zstandard would read more."""
    monkeypatch.setitem(sys.modules, "zstandard", None)  # `import zstandard` now fails
    blob = shared_file("databento/esh4-glbx-mdp3-20231224.mbo.dbn.zst").read_bytes()
    path = tmp_path / "esh4.mbo.dbn.zst"
    path.write_bytes(blob[:len(blob) // 2])
    chunks = list(decode_dbn([path]))
    problems = np.concatenate([c.rec_problem[:c.n_records] for c in chunks])
    assert len(problems) > 1 and not problems[:-1].any() and problems[-1] == Rule.TRUNCATED_RECORD
    reason = chunks[-1].problem_reasons[len(problems) - 1]
    assert str(path) in reason and "zstd stream is cut" in reason and "zstandard" in reason


def zip_of(text: bytes, method: int) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=method) as z:
        z.writestr("member.txt", text)
    return out.getvalue()


@pytest.mark.parametrize("codec", ["gzip members", "zstd frames", "zip deflated", "zip stored"])
def test_the_one_opener_reads_up_to_the_cut(codec):
    """What a cut stream of each codec still holds is read, and the cut is said with its offset;
    the whole stream is read whole with no cut."""
    text = b"".join(b"line %d of the content\n" % i for i in range(20_000))
    head = text[:100_000]  # the first gzip member or zstd frame
    if codec == "gzip members":
        first = gzip.compress(head, mtime=0)
        blob = first + gzip.compress(text[100_000:], mtime=0)
        cut = blob[:len(blob) * 3 // 4]
        expected = head + gunzip_present(cut[len(first):])
    elif codec == "zstd frames":
        zstandard = pytest.importorskip("zstandard")
        first = zstandard.ZstdCompressor().compress(head)
        blob = first + zstandard.ZstdCompressor().compress(text[100_000:])
        cut = blob[:len(blob) * 3 // 4]
        expected = head + zstandard.ZstdDecompressor().decompressobj().decompress(cut[len(first):])
    else:
        blob = zip_of(text, zipfile.ZIP_DEFLATED if codec == "zip deflated" else zipfile.ZIP_STORED)
        cut = blob[:len(blob) * 3 // 4]
        expected = zip_present(blob, len(cut))
    with decompressed(io.BytesIO(blob), codec) as f:
        assert f.read() == text and f.cut is None
    with decompressed(io.BytesIO(cut), codec) as f:
        got = f.read()
        assert got == expected and text.startswith(got) and 100_000 < len(got) < len(text)
        assert f.cut is not None and f.cut.offset == len(got) and not f.cut.withheld
