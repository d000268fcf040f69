"""Raw capture format (docs/raw-format.md): CRC32C, writer, reader, damage handling, rotation.

Oracles are independent of the code under test: a bitwise CRC32C written from the definition, and
file bytes built with struct from the spec's byte tables.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shared_data import shared_file

from lockstep._bindings import raw_capture as _rc
from lockstep.data.raw_capture import (
    FrameReader,
    RawWriter,
    capture_files,
    lines_from_frames,
    open_lines,
    read_frames,
    read_header,
    repair,
    scan,
)
from lockstep.enums import Crc32cImpl
from lockstep.errors import DecodeError

HYP = settings(max_examples=60, deadline=None,
               suppress_health_check=[HealthCheck.function_scoped_fixture,
                                      HealthCheck.too_slow])


def ref_crc32c(data: bytes, crc: int = 0) -> int:
    """CRC32C from its definition: reflected, polynomial 0x82F63B78, pre/post inversion."""
    c = crc ^ 0xFFFFFFFF
    for byte in data:
        c ^= byte
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
    return c ^ 0xFFFFFFFF


def spec_header(sequence: int, streams: list[str], info: dict) -> bytes:
    meta = json.dumps({"info": info, "streams": streams}, sort_keys=True,
                      separators=(",", ":")).encode()
    head = b"LSRAW\x00" + struct.pack("<HIIQ", 1, len(meta), 0, sequence) + meta
    return head + struct.pack("<I", ref_crc32c(head))


def spec_frame(ns: int, sid: int, payload: bytes) -> bytes:
    fields = struct.pack("<qII", ns, sid, len(payload))
    return fields + struct.pack("<II", ref_crc32c(fields), ref_crc32c(fields + payload)) + payload


def frames_of(reader) -> list[tuple[int, int, bytes]]:
    return [t for batch in reader for t in batch]


def write_file(path: Path, frames, streams=("s0", "s1"), info=None, sequence=1) -> int:
    """A capture file built from the spec; returns the header size."""
    head = spec_header(sequence, list(streams), info or {})
    path.write_bytes(head + b"".join(spec_frame(*f) for f in frames))
    return len(head)


# --------------------------------------------------------------------------------------- CRC32C

IMPLS = [Crc32cImpl.PORTABLE, Crc32cImpl.SSE42, Crc32cImpl.AUTO]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("data,expected", [
    (bytes(32), 0x8A9136AA),
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (bytes(range(31, -1, -1)), 0x113FDB5C),
    (b"123456789", 0xE3069283),
    (b"", 0),
])
def test_crc32c_rfc3720_vectors(impl, data, expected):
    assert _rc.crc32c(data, 0, impl) == expected


def test_hardware_path_is_used_here():
    # The machine the suite runs on has SSE4.2; without it the SSE tests above would silently
    # exercise the fallback twice.
    if not _rc.hardware_crc32c():
        pytest.skip("CPU without SSE4.2")
    assert _rc.hardware_crc32c() is True


@HYP
@given(data=st.binary(max_size=600), seed=st.integers(0, 0xFFFFFFFF),
       split=st.integers(0, 600), offset=st.integers(0, 7))
def test_crc32c_matches_bitwise_reference(data, seed, split, offset):
    padded = bytes(offset) + data  # start at every alignment
    view = memoryview(padded)[offset:]
    want = ref_crc32c(data, seed)
    for impl in IMPLS:
        assert _rc.crc32c(view, seed, impl) == want
        k = min(split, len(data))
        assert _rc.crc32c(data[k:], _rc.crc32c(data[:k], seed, impl), impl) == want


def test_sha256_hardware_path_is_used_here():
    # As for CRC32C: without the SHA extensions the test below would compare the portable path
    # with itself twice.
    if not _rc.hardware_sha256():
        pytest.skip("CPU without the SHA extensions")
    assert _rc.hardware_sha256() is True


@HYP
@given(chunks=st.lists(st.binary(max_size=300), max_size=8))
def test_sha256_both_paths_match_hashlib_whatever_the_chunks(chunks):
    want = hashlib.sha256(b"".join(chunks)).digest()
    assert _rc.sha256(chunks, hardware=True) == want
    assert _rc.sha256(chunks, hardware=False) == want


def test_sha256_matches_hashlib_on_long_input():
    data = bytes((i * 131 + (i >> 7)) & 255 for i in range(100_003))
    for hardware in (True, False):
        assert _rc.sha256([data[:7], data[7:70_000], data[70_000:]], hardware=hardware) == \
            hashlib.sha256(data).digest()


def test_crc32c_rejects_unknown_impl():
    with pytest.raises(ValueError):
        _rc.crc32c(b"x", 0, 7)


# ------------------------------------------------------------------------------- writer layout


def test_writer_bytes_follow_the_spec(tmp_path):
    frames = [(1_700_000_000_000_000_000, 1, b'{"a":1}'), (-5, 0, b""), (2**63 - 1, 1, b"\x00\xff")]
    with RawWriter(tmp_path, "cap", streams=["btc@depth", "btc@trade"], info={"host": "n1"}) as w:
        for f in frames:
            w.write(*f)
    (path,) = capture_files(tmp_path, "cap")
    assert path.name == "cap-000001.lsraw"
    want = spec_header(1, ["btc@depth", "btc@trade"], {"host": "n1"})
    want += b"".join(spec_frame(*f) for f in frames)
    assert path.read_bytes() == want
    hdr = read_header(path)
    assert (hdr.version, hdr.sequence, hdr.streams, hdr.info) == (
        1, 1, ("btc@depth", "btc@trade"), {"host": "n1"})
    assert hdr.size == len(spec_header(1, ["btc@depth", "btc@trade"], {"host": "n1"}))


def test_writer_is_deterministic(tmp_path):
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        with RawWriter(tmp_path / d, "x", streams=["s"], max_bytes=200, max_seconds=1) as w:
            for i in range(50):
                w.write(i * 37_000_000, 0, bytes([i]) * (i % 13))
    a = [p.read_bytes() for p in capture_files(tmp_path / "a", "x")]
    b = [p.read_bytes() for p in capture_files(tmp_path / "b", "x")]
    assert a == b and len(a) > 1


def test_writer_validates_frames(tmp_path):
    with RawWriter(tmp_path, "v", streams=["only"]) as w:
        with pytest.raises(ValueError, match="stream table"):
            w.write(0, 1, b"")
        with pytest.raises(ValueError, match="int64"):
            w.write(2**63, 0, b"")
        with pytest.raises(ValueError, match="limit"):
            w.write(0, 0, bytes(_rc.MAX_PAYLOAD + 1))
        w.write(0, 0, b"ok")
    assert w.closed
    with pytest.raises(ValueError, match="closed"):
        w.write(1, 0, b"late")
    assert frames_of(read_frames(capture_files(tmp_path, "v"))) == [(0, 0, b"ok")]
    with pytest.raises(ValueError, match="unique"):
        RawWriter(tmp_path, "w", streams=["a", "a"])
    with pytest.raises(ValueError, match="prefix"):
        RawWriter(tmp_path, "a/b")


def test_writer_continues_the_sequence_and_never_overwrites(tmp_path):
    with RawWriter(tmp_path, "cap") as w:
        w.write(1, 0, b"first")
    first = (tmp_path / "cap-000001.lsraw").read_bytes()
    (tmp_path / "cap-000009.lsraw").write_bytes(b"someone else's")
    (tmp_path / "other-000001.lsraw").write_bytes(b"another prefix")
    with RawWriter(tmp_path, "cap") as w:
        w.write(2, 0, b"second")
    assert [p.name for p in capture_files(tmp_path, "cap")] == [
        "cap-000001.lsraw", "cap-000009.lsraw", "cap-000010.lsraw"]
    assert (tmp_path / "cap-000001.lsraw").read_bytes() == first
    assert read_header(tmp_path / "cap-000010.lsraw").sequence == 10


def test_capture_files_orders_numerically(tmp_path):
    for seq in (999999, 1000000, 2):
        (tmp_path / f"c-{seq:06d}.lsraw").write_bytes(b"")
    assert [p.name for p in capture_files(tmp_path, "c")] == [
        "c-000002.lsraw", "c-999999.lsraw", "c-1000000.lsraw"]


# ----------------------------------------------------------------------------------- rotation


def test_rotation_by_size(tmp_path):
    h = len(spec_header(1, [], {}))
    # Frames of 24 + 76 = 100 bytes; room for two after the header, not three.
    with RawWriter(tmp_path, "s", max_bytes=h + 250) as w:
        for i in range(5):
            w.write(i, 0, bytes([i]) * 76)
        w.write(5, 0, bytes(500))  # larger than max_bytes on its own: alone in its file
        w.write(6, 0, bytes(76))
    files = capture_files(tmp_path, "s")
    per_file = [[ns for ns, _, _ in frames_of(read_frames(p))] for p in files]
    assert per_file == [[0, 1], [2, 3], [4], [5], [6]]
    assert [p.stat().st_size for p in files] == [h + 200, h + 200, h + 100, h + 524, h + 100]
    # Exactly at the limit is allowed.
    with RawWriter(tmp_path, "t", max_bytes=h + 200) as w:
        for i in range(4):
            w.write(i, 0, bytes(76))
    assert len(capture_files(tmp_path, "t")) == 2


def test_rotation_by_time_uses_receive_ns(tmp_path):
    s = 1_000_000_000
    stamps = [s // 2, 9 * s // 10, s, 17 * s // 10, 8 * s // 10, 32 * s // 10, 32 * s // 10 + 1,
              -1]
    with RawWriter(tmp_path, "t", max_seconds=1) as w:
        for ns in stamps:
            w.write(ns, 0, b"m")
    per_file = [[ns for ns, _, _ in frames_of(read_frames(p))]
                for p in capture_files(tmp_path, "t")]
    # [0, 1 s) | [1 s, 2 s) plus a step back that stays | [3 s, 4 s) plus another step back
    assert per_file == [[s // 2, 9 * s // 10], [s, 17 * s // 10, 8 * s // 10],
                        [32 * s // 10, 32 * s // 10 + 1, -1]]
    rep = scan(capture_files(tmp_path, "t")[1])
    assert rep.receive_ns_backwards == 1 and rep.first_receive_ns == s
    assert rep.last_receive_ns == 8 * s // 10


def test_rotation_by_day_windows(tmp_path):
    day = 86_400 * 10**9
    with RawWriter(tmp_path, "d", max_seconds=86_400, max_bytes=10**9) as w:
        for ns in (day * 19_000 + 5, day * 19_001 - 1, day * 19_001, day * 19_003 + 7):
            w.write(ns, 0, b"x")
    assert [len(frames_of(read_frames(p))) for p in capture_files(tmp_path, "d")] == [2, 1, 1]


@HYP
@given(
    frames=st.lists(st.tuples(st.integers(-(2**40), 2**40), st.integers(0, 3),
                              st.binary(max_size=300)), max_size=40),
    max_bytes=st.integers(1, 2000), max_seconds=st.one_of(st.none(), st.integers(1, 1000)),
    batch_bytes=st.integers(1, 4096), batch_frames=st.integers(1, 8),
)
def test_round_trip_across_rotated_files(tmp_path_factory, frames, max_bytes, max_seconds,
                                         batch_bytes, batch_frames):
    d = tmp_path_factory.mktemp("rt")
    with RawWriter(d, "r", streams=["a", "b", "c", "d"], max_bytes=max_bytes,
                   max_seconds=None if max_seconds is None else max_seconds / 1e6) as w:
        for f in frames:
            w.write(*f)
    files = capture_files(d, "r")
    assert files == w.paths
    reader = read_frames(files, batch_bytes=batch_bytes, batch_frames=batch_frames)
    got = []
    for b in reader:
        assert 0 < len(b) <= batch_frames
        # bounded memory: one refill buffer, grown only to hold a single frame
        assert len(b.data) <= max(batch_bytes, 24 + 300 + 24)
        got.extend(b)
    assert got == frames
    for p, rep in zip(files, reader.reports):
        assert rep.clean and rep.file_bytes == p.stat().st_size
        n = rep.frames
        assert n >= 1
        assert rep.file_bytes <= max_bytes or n == 1  # size rule
    assert sum(r.frames for r in reader.reports) == len(frames)


def test_batch_file_offsets_and_payload_views(tmp_path):
    path = tmp_path / "o.lsraw"
    frames = [(10, 0, b"abc"), (11, 1, b""), (12, 0, b"defgh")]
    h = write_file(path, frames)
    (b,) = list(read_frames(path))
    assert b.file_offset.tolist() == [h, h + 27, h + 51]
    assert b.length.tolist() == [3, 0, 5]
    assert [b.payload(i) for i in range(3)] == [b"abc", b"", b"defgh"]
    assert b.receive_ns.dtype == np.int64 and b.stream_id.dtype == np.uint32
    assert b.streams == ("s0", "s1")
    with pytest.raises(TypeError):
        b.data[0] = 1  # read-only view


# --------------------------------------------------------------------------------- torn tails

SMALL = [(100, 0, b"alpha"), (200, 1, b""), (300, 0, b"x" * 40)]


def test_torn_tail_at_every_cut_point(tmp_path):
    full = tmp_path / "full.lsraw"
    h = write_file(full, SMALL)
    data = full.read_bytes()
    ends = [h]
    for _, _, p in SMALL:
        ends.append(ends[-1] + 24 + len(p))
    assert ends[-1] == len(data)
    for cut in range(h, len(data) + 1):
        path = tmp_path / f"cut{cut}.lsraw"
        path.write_bytes(data[:cut])
        whole = max(i for i, e in enumerate(ends) if e <= cut)
        rep = scan(path)
        assert rep.frames == whole and rep.corrupt_count == 0
        if cut == ends[whole]:
            assert rep.torn_tail is None
        else:
            assert (rep.torn_tail.offset, rep.torn_tail.bytes) == (ends[whole], cut - ends[whole])
        assert frames_of(read_frames(path)) == SMALL[:whole]  # torn tails never raise
        assert repair(path) == cut - ends[whole]
        assert path.stat().st_size == ends[whole]
        assert repair(path) == 0
        assert scan(path).clean and frames_of(read_frames(path)) == SMALL[:whole]


def test_zero_filled_tail_is_torn_not_corrupt(tmp_path):
    path = tmp_path / "z.lsraw"
    h = write_file(path, SMALL)
    size = path.stat().st_size
    with open(path, "ab") as f:
        f.write(bytes(4096))
    rep = scan(path)
    assert rep.frames == 3 and rep.corrupt_count == 0
    assert rep.torn_tail.offset == size and rep.torn_tail.bytes == 4096
    assert rep.torn_tail.zero_filled
    assert repair(path) == 4096 and scan(path).clean and h < size


def test_torn_frame_after_a_corrupt_header(tmp_path):
    path = tmp_path / "tc.lsraw"
    h = write_file(path, SMALL)
    data = bytearray(path.read_bytes())
    data[h] ^= 0x01  # first frame's header fails its CRC
    path.write_bytes(bytes(data[:-10]))  # and the last frame is torn
    rep = scan(path)
    second = h + 24 + 5
    third = second + 24
    assert rep.frames == 1
    assert [(c.offset, c.end, c.kind) for c in rep.corrupt] == [(h, second, "header")]
    assert (rep.torn_tail.offset, rep.torn_tail.bytes) == (third, 24 + 40 - 10)
    assert repair(path) == 54
    assert scan(path).torn_tail is None and scan(path).corrupt_count == 1


# ------------------------------------------------------------------------------ corrupt frames


def test_flipped_payload_bit_is_a_corrupt_frame(tmp_path):
    path = tmp_path / "f.lsraw"
    h = write_file(path, SMALL)
    data = bytearray(path.read_bytes())
    at = h + 24 + 2  # inside "alpha"
    data[at] ^= 0x10
    path.write_bytes(bytes(data))
    fields = struct.pack("<qII", 100, 0, 5)
    rep = scan(path)
    (c,) = rep.corrupt
    assert (c.offset, c.end, c.kind) == (h, h + 29, "frame")
    assert c.expected == ref_crc32c(fields + b"alpha")
    assert c.got == ref_crc32c(fields + bytes(data[h + 24:h + 29]))
    assert rep.frames == 2 and rep.unreadable_bytes == 29 and rep.torn_tail is None
    assert frames_of(read_frames(path, corrupt="skip")) == SMALL[1:]
    with pytest.raises(DecodeError) as ei:
        frames_of(read_frames(path))
    assert ei.value.path == str(path) and ei.value.offset == h
    assert f"0x{c.expected:08x}" in str(ei.value)
    # repair keeps corrupt frames unless told to drop them
    assert repair(path) == 0 and path.stat().st_size == len(data)
    assert repair(path, drop_corrupt=True) == len(data) - h
    assert scan(path).clean and scan(path).frames == 0


def test_every_single_bit_flip_loses_exactly_one_frame(tmp_path):
    frames = [(i * 1000, i % 2, bytes([65 + i]) * (3 + i)) for i in range(4)]
    path = tmp_path / "b.lsraw"
    h = write_file(path, frames)
    data = path.read_bytes()
    starts = [h]
    for _, _, p in frames:
        starts.append(starts[-1] + 24 + len(p))
    for pos in range(h, len(data)):
        k = max(i for i in range(len(frames)) if starts[i] <= pos)
        bad = bytearray(data)
        bad[pos] ^= 1 << (pos % 8)
        path.write_bytes(bytes(bad))
        rep = scan(path)
        assert rep.corrupt_count == 1 and rep.torn_tail is None, pos
        (c,) = rep.corrupt
        assert (c.offset, c.end) == (starts[k], starts[k + 1]), pos
        assert c.kind == ("frame" if pos - starts[k] >= 20 else "header"), pos
        assert frames_of(read_frames(path, corrupt="skip")) == frames[:k] + frames[k + 1:]
        with pytest.raises(DecodeError) as ei:
            frames_of(read_frames(path))
        assert ei.value.offset == starts[k]


def test_resync_across_refills(tmp_path):
    frames = [(i, 0, bytes([i % 251]) * 50) for i in range(40)]
    path = tmp_path / "r.lsraw"
    h = write_file(path, frames)
    data = bytearray(path.read_bytes())
    # Garbage over frames 5..9 (not a whole frame boundary on either side).
    lo, hi = h + 5 * 74 + 3, h + 10 * 74 - 7
    data[lo:hi] = bytes((i * 7 + 3) % 256 for i in range(hi - lo))
    path.write_bytes(bytes(data))
    for bb in (1, 30, 100, 1 << 20):
        rdr = FrameReader(path, corrupt="skip", batch_bytes=bb, batch_frames=3)
        got = frames_of(rdr)
        assert got == frames[:5] + frames[10:], bb
        (c,) = rdr.reports[0].corrupt
        assert (c.offset, c.end) == (h + 5 * 74, h + 10 * 74)


# ---------------------------------------------------------------------------------- bad files


@pytest.mark.parametrize("mutate,offset,match", [
    (lambda d: b"", 0, "empty"),
    (lambda d: b"GARBAGE!" + d[8:], 0, "not a lockstep raw capture"),
    (lambda d: d[:4], 4, "truncated file header"),
    (lambda d: d[:20], 20, "truncated file header"),
    (lambda d: d[:6] + b"\x02\x00" + d[8:], 6, "version 2"),
    (lambda d: d[:12] + b"\x01\x00\x00\x00" + d[16:], 12, "flags"),
    (lambda d: d[:8] + struct.pack("<I", 1 << 24) + d[12:], 8, "metadata length"),
    (lambda d: d[:30] + b"X" + d[31:], None, "header checksum"),
    (lambda d: d[:40], 40, "truncated file header"),
])
def test_bad_file_headers_name_file_and_offset(tmp_path, mutate, offset, match):
    good = tmp_path / "good.lsraw"
    h = write_file(good, SMALL)
    path = tmp_path / "bad.lsraw"
    path.write_bytes(mutate(good.read_bytes()))
    for call in (scan, read_header, lambda p: frames_of(read_frames(p)), repair):
        with pytest.raises(DecodeError, match=match) as ei:
            call(path)
        assert ei.value.path == str(path)
        assert ei.value.offset == (h - 4 if offset is None else offset)
    assert path.stat().st_size == len(mutate(good.read_bytes()))  # repair did not touch it


def test_invalid_metadata_json(tmp_path):
    meta = b'{"streams": 3}'
    head = b"LSRAW\x00" + struct.pack("<HIIQ", 1, len(meta), 0, 1) + meta
    path = tmp_path / "m.lsraw"
    path.write_bytes(head + struct.pack("<I", ref_crc32c(head)))
    with pytest.raises(DecodeError, match="metadata") as ei:
        scan(path)
    assert ei.value.offset == 24


@HYP
@given(tail=st.binary(max_size=3000), batch_bytes=st.integers(1, 512))
def test_random_bytes_after_a_valid_header(tmp_path_factory, tail, batch_bytes):
    path = tmp_path_factory.mktemp("fz") / "f.lsraw"
    h = write_file(path, [])
    with open(path, "ab") as f:
        f.write(tail)
    _check_accounting(path, h, batch_bytes)


@HYP
@given(edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255),
                                st.sampled_from(["set", "insert", "delete"])), max_size=6),
       cut=st.integers(0, 10_000), batch_bytes=st.integers(1, 700))
def test_mutated_capture_never_crashes_and_accounts_every_byte(tmp_path_factory, edits, cut,
                                                               batch_bytes):
    frames = [(i * 10, i % 3, bytes([i]) * (i * 7 % 60)) for i in range(30)]
    path = tmp_path_factory.mktemp("mut") / "m.lsraw"
    h = write_file(path, frames, streams=("a", "b"))
    data = bytearray(path.read_bytes())
    for pos, val, op in edits:
        p = h + pos % max(1, len(data) - h)
        if op == "set" and p < len(data):
            data[p] = val
        elif op == "insert":
            data[p:p] = bytes([val])
        elif op == "delete" and p < len(data):
            del data[p]
    data = data[:max(h, len(data) - cut % 200)]
    path.write_bytes(bytes(data))
    rep = _check_accounting(path, h, batch_bytes)
    valid = {f for f in frames}
    got = frames_of(read_frames(path, corrupt="skip"))
    # Every frame read back is one that was written (a forged frame would need two CRC matches).
    assert all(f in valid for f in got)
    assert rep.unknown_stream_frames == sum(1 for f in got if f[1] >= 2)
    if not edits and cut % 200 == 0:
        assert got == frames


def _check_accounting(path: Path, header_size: int, batch_bytes: int):
    rep = FrameReader(path, corrupt="skip", batch_bytes=batch_bytes)
    n = sum(len(b) for b in rep)
    (r,) = rep.reports
    assert r.frames == n and r.corrupt_count == len(r.corrupt)
    torn = r.torn_tail.bytes if r.torn_tail else 0
    # Every byte after the header is in exactly one of: a valid frame, a corrupt region, the tail.
    assert 24 * r.frames + r.payload_bytes + r.unreadable_bytes + torn == r.file_bytes - header_size
    assert r.file_bytes == path.stat().st_size
    regions = sorted([(c.offset, c.end) for c in r.corrupt]
                     + ([(r.torn_tail.offset, r.file_bytes)] if r.torn_tail else []))
    assert all(a < b for a, b in regions)
    assert all(regions[i][1] <= regions[i + 1][0] for i in range(len(regions) - 1))
    # After repair, only corrupt regions may remain, and repairing again changes nothing.
    cut = repair(path)
    # A first cut at the torn tail; more only when damage before it becomes the new tail.
    assert cut >= torn and (cut == torn or r.corrupt_count)
    assert repair(path) == 0 and scan(path).torn_tail is None
    return r


# ------------------------------------------------------------------------------ text lines


def test_lines_from_frames_format_and_stream_filter(tmp_path):
    with RawWriter(tmp_path, "l", streams=["depth", "trade"]) as w:
        w.write(1723161255030314667, 0, b'{"stream":"btcusdt@depth","data":{}}')
        w.write(1723161255030314668, 1, b'{"stream":"btcusdt@trade",\n"data":{}}')
        w.write(5, 0, b"")
    files = capture_files(tmp_path, "l")
    text = b"".join(lines_from_frames(files))
    assert text == (b'1723161255030314667 {"stream":"btcusdt@depth","data":{}}\n'
                    b'1723161255030314668 {"stream":"btcusdt@trade", "data":{}}\n'
                    b"5 \n")
    assert b"".join(lines_from_frames(files, stream_ids=[1])) == (
        b'1723161255030314668 {"stream":"btcusdt@trade", "data":{}}\n')
    assert b"".join(lines_from_frames(read_frames(files))) == text
    assert open_lines(files).read() == text


def test_binance_fixture_lines_survive_a_capture_round_trip(tmp_path):
    with gzip.open(shared_file("binance/usdm/btcusdt_20240808.gz"), "rb") as f:
        lines = [f.readline() for _ in range(2000)]
    lines = [ln for ln in lines if ln]
    with RawWriter(tmp_path, "bn", streams=["usdm"], max_bytes=200_000) as w:
        for ln in lines:
            ns, _, payload = ln.rstrip(b"\n").partition(b" ")
            w.write(int(ns), 0, payload)
    assert len(w.paths) > 1
    with open_lines(capture_files(tmp_path, "bn")) as f:
        assert f.read() == b"".join(lines)
