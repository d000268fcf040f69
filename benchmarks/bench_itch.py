"""ITCH 5.0 decode throughput in messages/s, from an uncompressed file with real length prefixes.

The input is built in setup from the SIMULATED RITCH sample (../shared/data/itch): its 12,012
messages, re-framed with proper length prefixes, repeated with every order reference offset per
repetition (so adds never collide with live orders) and followed, in each repetition, by a delete
of every order still live at its end (so the decoder's order map stays at the size of one
repetition's book, as a real day's would, instead of growing without bound). Timestamps repeat per
repetition; the decoder does not care. Default size ~12M messages (LOCKSTEP_BENCH_SCALE scales it).
"""
from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
from conftest import report_rate, scaled
from shared_data import shared_file

from lockstep.data.importers.itch import decode_itch

FIXTURE = "itch/ex20101224.TEST_ITCH_50.gz"
# Fixed message lengths (type byte included) of the types in the fixture, from the ITCH 5.0 spec.
_LEN = {b"S": 12, b"R": 39, b"H": 25, b"A": 36, b"F": 40, b"E": 31, b"C": 36, b"X": 23,
        b"D": 19, b"U": 35, b"P": 44}


def _messages(raw: bytes) -> list[bytes]:
    out, p = [], 0
    while p < len(raw):
        assert raw[p:p + 2] == b"\0\0"
        n = _LEN[raw[p + 2:p + 3]]
        out.append(raw[p + 2:p + 2 + n])
        p += 2 + n
    return out


def _one_repetition(msgs: list[bytes]) -> tuple[bytes, np.ndarray, int, int, int]:
    """One repetition: framed bytes, byte positions of its order references, max ref, messages,
    messages naming a reference not live (the sample is an excerpt: it has some)."""
    live: dict[int, tuple[int, int]] = {}  # ref -> (locate, shares left)
    unknown = 0  # E/C/X/D/U on references the sample never added (it is an excerpt)
    out = bytearray()
    refs: list[int] = []
    last_ts = b"\0" * 6
    for m in msgs:
        t = m[:1]
        base = len(out) + 2
        out += struct.pack(">H", len(m)) + m
        last_ts = m[5:11]
        locate = struct.unpack(">H", m[1:3])[0]
        if t in (b"A", b"F"):
            ref, shares = struct.unpack(">Q", m[11:19])[0], struct.unpack(">I", m[20:24])[0]
            live[ref] = (locate, shares)
            refs.append(base + 11)
        elif t in (b"E", b"C", b"X"):
            ref, n = struct.unpack(">QI", m[11:23])
            refs.append(base + 11)
            unknown += ref not in live
            if ref in live:
                loc, left = live[ref]
                if left - n <= 0:
                    del live[ref]
                else:
                    live[ref] = (loc, left - n)
        elif t == b"D":
            unknown += live.pop(struct.unpack(">Q", m[11:19])[0], None) is None
            refs.append(base + 11)
        elif t == b"U":
            old, new, shares = struct.unpack(">QQI", m[11:31])
            refs += [base + 11, base + 19]
            unknown += old not in live
            if old in live:
                live[new] = (live.pop(old)[0], shares)
    for ref, (locate, _) in sorted(live.items()):
        base = len(out) + 2
        out += struct.pack(">HcHH", 19, b"D", locate, 0) + last_ts + struct.pack(">Q", ref)
        refs.append(base + 11)
    max_ref = 0
    for pos in refs:
        max_ref = max(max_ref, struct.unpack(">Q", out[pos:pos + 8])[0])
    return bytes(out), np.asarray(refs, dtype=np.int64), max_ref, len(msgs) + len(live), unknown


def write_bench_file(path, n_messages: int) -> tuple[int, int]:
    """Writes the input; returns (messages, messages naming a reference that is not live)."""
    msgs = _messages(gzip.decompress(shared_file(FIXTURE).read_bytes()))
    rep, ref_pos, max_ref, per_rep, unknown = _one_repetition(msgs)
    reps = max(1, -(-n_messages // per_rep))
    template = np.frombuffer(rep, dtype=np.uint8)
    gather = ref_pos[:, None] + np.arange(8)[None, :]
    ref_values = template[gather].copy().view(">u8").ravel()
    stride = np.uint64(max_ref + 1)
    buf = template.copy()
    with open(path, "wb") as f:
        for k in range(reps):
            shifted = (ref_values.astype(np.uint64) + np.uint64(k) * stride).astype(">u8")
            buf[gather] = shifted.view(np.uint8).reshape(-1, 8)
            f.write(buf.tobytes())
    return reps * per_rep, reps * unknown


@pytest.fixture(scope="module")
def itch_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("itch") / "bench20101224.itch"
    return (path, *write_bench_file(path, scaled(12_000_000)))


def test_itch_decode_uncompressed(benchmark, itch_file):
    path, n, unknown = itch_file
    seen = []

    def once():
        run = decode_itch([path])
        records = 0
        for chunk in run:
            records += chunk.n_records
        seen.append((records, run.counts))

    benchmark.pedantic(once, rounds=1, iterations=1)
    records, counts = seen[-1]
    assert records == n
    assert not counts["problems"] and counts["duplicate_add"] == 0
    assert sum(counts["unknown_order_ref"].values()) == unknown
    report_rate(benchmark, records, "messages")
