"""Fuzzing the Binance decoder: hostile input may only ever produce our exceptions.

Properties: no crash, no hang, no exception but DecodeError/LockstepError; the record accounting
of lockstep.data.importers.normalized holds for any input (every non-empty line is exactly one record,
at its offset and length, records contiguous across chunks, problem records without events,
event_record non-decreasing); any prefix of a valid capture decodes without error (the cut line is
a TRUNCATED_RECORD); how the text is split across feed calls and how small the batches are never
changes the outcome.
"""
from __future__ import annotations

import gzip
import io
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shared_data import SHARED_DATA

from lockstep._bindings import binance as _binance
from lockstep.data.importers import decode_binance
from lockstep.data.importers.binance import _Buffers
from lockstep.data.importers.normalized import Rule
from lockstep.enums import Status
from lockstep.errors import DecodeError, LockstepError
from lockstep.events import COLUMN_NAMES, empty_columns

DATA = SHARED_DATA / "binance"
TS = 1723161255000000000
E0 = 1723161256000


def _synthetic() -> list[bytes]:
    lines = []
    for i in range(1, 40):
        ts = TS + i * 1000
        lines.append(f'{ts} {{"stream":"btcusdt@depth@0ms","data":{{"e":"depthUpdate","E":{E0 + i},'
                     f'"T":{E0 + i},"s":"BTCUSDT","U":{10 * i},"u":{10 * i + 9},"pu":{10 * i - 1},'
                     f'"b":[["61800.{i % 10}","1.{i:03d}"]],"a":[["61900.0","0.000"]]}}}}'.encode())
        lines.append(f'{ts} {{"stream":"btcusdt@trade","data":{{"e":"trade","E":{E0},"T":{E0},'
                     f'"s":"BTCUSDT","t":{i},"p":"61800.3","q":"0.0{i:02d}","X":"MARKET",'
                     f'"m":{"true" if i % 2 else "false"}}}}}'.encode())
        lines.append(f'{ts} {{"stream":"btcusdt@bookTicker","data":{{"e":"bookTicker","u":{10 * i},'
                     f'"s":"BTCUSDT","b":"61800.2","B":"2.507","a":"61800.3","A":"2.510",'
                     f'"T":{E0},"E":{E0}}}}}'.encode())
        if i == 5:
            lines.append(f'{ts} {{"lastUpdateId":45,"E":{E0},"T":{E0},"bids":[["61800.1","1.000"]],'
                         f'"asks":[["61800.4","2.000"],["61800.5","0.5"]]}}'.encode())
    return lines


def _real() -> list[bytes]:
    path = DATA / "usdm" / "btcusdt_20240808.gz"
    if not path.exists():
        return []
    out = []
    with gzip.open(path, "rb") as f:
        for i, line in enumerate(f):
            if i >= 120:
                break
            out.append(line.rstrip(b"\n"))
    return out


SAMPLE = _real() or _synthetic()
SAMPLE_TEXT = b"\n".join(SAMPLE) + b"\n"
INC = dict(price_increment="0.1", size_increment="0.001")

fuzz = settings(max_examples=400, deadline=3000,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _lines(data: bytes) -> list[tuple[int, bytes]]:
    """(offset, line) of every non-empty line of plain text: the records, independently."""
    out = []
    pos = 0
    for line in data.split(b"\n"):
        if line.strip(b" \t\r"):
            out.append((pos, line))
        pos += len(line) + 1
    return out


def decode(data: bytes, *, batch_size: int = 1 << 16, **kw):
    """Decodes in-memory text, checking the record accounting; returns (events, error) where
    error is a DecodeError or None. events.problems: the Rule of each record."""
    if not kw:
        kw = INC
    run = decode_binance([io.BytesIO(data)], batch_size=batch_size, **kw)
    parts = []
    recs = []
    error = None
    next_first = 0
    last = -1
    try:
        for c in run:
            assert c.first_record == next_first and c.n_records >= 1
            next_first += c.n_records
            assert c.n_records <= batch_size and (c.n_events <= batch_size or c.n_records == 1)
            er = c.event_record[: c.n_events]
            if c.n_events:
                assert er[0] >= max(last, c.first_record) and np.all(np.diff(er) >= 0)
                assert er[-1] < c.first_record + c.n_records
                assert not np.any(c.rec_problem[er - c.first_record]), "problem record with events"
                last = int(er[-1])
            for r in c.problem_reasons:
                assert c.rec_problem[r - c.first_record] != 0
            parts.append({k: c.events[k][: c.n_events].copy() for k in COLUMN_NAMES})
            recs.extend(zip(c.rec_offset[: c.n_records].tolist(), c.rec_length[: c.n_records].tolist(),
                            c.rec_problem[: c.n_records].tolist()))
    except DecodeError as e:
        assert e.reason and (e.line is None or e.line >= 1) and e.path
        error = e
    except LockstepError as e:  # e.g. an increment that cannot be inferred
        error = e
    events = ({k: np.concatenate([p[k] for p in parts]) for k in COLUMN_NAMES}
              if parts else {k: v[:0] for k, v in empty_columns(0).items()})
    assert np.all(np.diff(events["ts_recv"].astype(np.int64)) >= 0)
    kinds = events["kind"]
    assert np.all((kinds <= 8) | (kinds == 64)) and np.all(events["side"] <= 2)
    if error is None and data[:2] != b"\x1f\x8b":
        # Every non-empty line is exactly one record, where it is.
        assert [(o, len(line)) for o, line in _lines(data)] == [(o, n) for o, n, _ in recs]
        assert run.counts["records"] == len(recs)
        assert all(p <= int(Rule.TRUNCATED_RECORD) for _, _, p in recs)
        assert all(p != int(Rule.TRUNCATED_RECORD) for _, _, p in recs[:-1])
    events = _Events(events)
    events.problems = [p for _, _, p in recs]
    return events, error


class _Events(dict):
    problems: list[int]


@fuzz
@given(st.binary(max_size=3000))
def test_random_bytes(data):
    decode(data)


@fuzz
@given(st.lists(st.sampled_from(SAMPLE), max_size=30).map(b"\n".join), st.binary(max_size=200),
       st.integers(0, 10**6))
def test_random_bytes_after_valid_lines(prefix, junk, seed):
    decode(prefix + b"\n" + junk)


_mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**9), st.integers(1, 255)),
    st.tuples(st.just("delete"), st.integers(0, 10**9), st.integers(1, 40)),
    st.tuples(st.just("insert"), st.integers(0, 10**9), st.binary(min_size=1, max_size=20)),
    st.tuples(st.just("dup"), st.integers(0, 10**9), st.integers(1, 200)),
    st.tuples(st.just("digits"), st.integers(0, 10**9), st.integers(15, 60)),
)


def _mutate(data: bytes, ops) -> bytes:
    b = bytearray(data)
    for op, pos, arg in ops:
        if not b:
            break
        i = pos % len(b)
        if op == "flip":
            b[i] ^= arg
        elif op == "delete":
            del b[i:i + arg]
        elif op == "insert":
            b[i:i] = arg
        elif op == "dup":
            b[i:i] = b[i:i + arg]
        else:
            b[i:i] = b"9" * arg  # huge numbers wherever they land
    return bytes(b)


@fuzz
@given(st.lists(st.sampled_from(SAMPLE), min_size=1, max_size=25), st.lists(_mutation, max_size=6),
       st.integers(1, 64))
def test_mutated_real_lines(lines, ops, batch_size):
    data = _mutate(b"\n".join(lines) + b"\n", ops)
    small, e1 = decode(data, batch_size=batch_size)
    big, e2 = decode(data)
    assert (e1 is None) == (e2 is None)
    if e1 is None:  # chunking never changes events or dispositions
        assert small.problems == big.problems
        for c in COLUMN_NAMES:
            assert np.array_equal(small[c], big[c]), c


@fuzz
@given(st.lists(st.sampled_from(SAMPLE), min_size=1, max_size=15), st.lists(_mutation, max_size=4))
def test_mutated_lines_with_inference(lines, ops):
    # Scan pass and decode pass must agree on what is an error.
    decode(_mutate(b"\n".join(lines) + b"\n", ops), infer=True)


WHOLE = None


@fuzz
@given(st.integers(0, len(SAMPLE_TEXT)))
def test_every_prefix_decodes(cut):
    """A capture cut anywhere decodes without error into a head of the whole's events: the cut
    line is a counted skip, and diffs waiting for a snapshot surface only with it."""
    global WHOLE
    if WHOLE is None:
        WHOLE, _ = decode(SAMPLE_TEXT)
    events, error = decode(SAMPLE_TEXT[:cut])
    assert error is None, error
    n = len(events["kind"])
    for c in COLUMN_NAMES:
        assert np.array_equal(events[c], WHOLE[c][:n]), c


@fuzz
@given(st.integers(0, len(SAMPLE_TEXT)), st.integers(1, 17))
def test_prefix_in_gzip_members(cut, batch_size):
    text = SAMPLE_TEXT[:cut]
    blob = gzip.compress(text[: cut // 2]) + gzip.compress(text[cut // 2:])
    a, ea = decode(blob, batch_size=batch_size)
    b, eb = decode(text)
    assert ea is None and eb is None
    for c in COLUMN_NAMES:
        assert np.array_equal(a[c], b[c])


@fuzz
@given(st.integers(1, 10**40), st.integers(1, 10**40), st.text("0123456789.", min_size=1, max_size=60))
def test_huge_numbers(big_id, big_time, price):
    line = (f'{TS} {{"stream":"btcusdt@trade","data":{{"e":"trade","E":{big_time},"T":{big_time},'
            f'"s":"BTCUSDT","t":{big_id},"p":"{price}","q":"1","X":"MARKET","m":true}}}}\n')
    events, error = decode(line.encode())
    assert error is None
    if events.problems == [int(Rule.OK)]:
        assert big_time * 1_000_000 < 2**63 and big_id < 2**64 and len(events["kind"]) == 1
    else:
        assert events.problems == [int(Rule.MALFORMED_RECORD)] and len(events["kind"]) == 0


@fuzz
@given(st.integers(1, 3000), st.sampled_from(["[", "{\"a\":"]), st.booleans())
def test_deep_nesting(depth, opener, known_stream):
    closer = "]" if opener == "[" else "}"
    stream = "btcusdt@trade" if known_stream else "btcusdt@kline_1m"
    nested = opener * depth + "1" + closer * depth
    limit = 64  # json::Scanner::kMaxDepth
    wrapped, _ = f'{TS} {{"stream":"{stream}","data":{nested}}}', None
    for line, levels in ((wrapped, depth + 1), (f"{TS} {nested}", depth)):
        events, error = decode(line.encode() + b"\n")
        assert error is None and len(events["kind"]) == 0
        if levels > limit or (known_stream and line is wrapped):  # too deep; a trade without fields
            assert events.problems == [int(Rule.MALFORMED_RECORD)]
        elif line is wrapped:
            assert events.problems == [int(Rule.UNSUPPORTED_MESSAGE)]
        else:  # valid JSON that is not market data
            assert events.problems == [int(Rule.OK)]


@fuzz
@given(st.lists(st.sampled_from(SAMPLE), min_size=1, max_size=20), st.lists(_mutation, max_size=3),
       st.lists(st.integers(1, 300), min_size=1, max_size=40), st.integers(1, 40))
def test_splits_and_batches_do_not_change_the_outcome(lines, ops, splits, batch):
    """Feeding the same text whole or in arbitrary pieces, into big or tiny batches, gives the
    same events and the same error at the same place."""
    data = _mutate(b"\n".join(lines) + b"\n", ops)

    def run(pieces, capacity):
        dec = _binance.BinanceDecoder()
        dec.set_default_increments("0.1", "0.001")
        dec.begin_file(0, "f")
        out = _Buffers._make(capacity, capacity)
        got = []
        size = nrec = 0
        err = None
        names = list(COLUMN_NAMES) + ["event_record"]
        rnames = [n for n, _ in _binance.RECORD_COLUMNS]

        def flush():
            nonlocal size, nrec, out
            got.append(({k: out[k][:size].copy() for k in names},
                        {k: out[k][:nrec].copy() for k in rnames}))
            size = nrec = 0

        def full():
            nonlocal out
            if nrec:
                flush()
            else:  # one record with more events than the buffers hold
                assert dec.needed_events > capacity
                out = _Buffers._make(dec.needed_events, capacity)

        def step(call):
            nonlocal size, nrec, err
            while err is None:
                size, nrec, status = call()
                if status == Status.OK:
                    return
                if status == Status.OUTPUT_FULL:
                    full()
                    continue
                err = dec.exception(status)

        for piece in pieces:
            view = memoryview(piece)
            pos = 0
            while err is None:
                consumed, size, nrec, status = dec.feed(view[pos:], out, size, nrec)
                pos += consumed
                if status == Status.OK:
                    break
                if status == Status.OUTPUT_FULL:
                    full()
                    continue
                err = dec.exception(status)
            if err:
                break
        step(lambda: dec.finish(out, size, nrec))
        step(lambda: dec.end_stream(out, size, nrec))
        flush()
        events = {k: np.concatenate([g[0][k] for g in got]) for k in names}
        records = {k: np.concatenate([g[1][k] for g in got]) for k in rnames}
        return (events, records), (None if err is None else (err.line, err.offset, err.reason)), \
            dec.counts()

    pieces = []
    pos = 0
    for n in splits * (len(data) // max(1, sum(splits)) + 1):
        if pos >= len(data):
            break
        pieces.append(data[pos:pos + n])
        pos += n
    whole = run([data], 1 << 16)
    split = run(pieces, batch)
    assert whole[1] == split[1]
    for part in (0, 1):
        for c in whole[0][part]:
            assert np.array_equal(whole[0][part][c], split[0][part][c]), c
    assert whole[2] == split[2]


TRADE_LINE = (f'{TS} {{"stream":"btcusdt@trade","data":{{"e":"trade","E":{E0},"T":{E0},'
              f'"s":"BTCUSDT","t":1,"p":"61800.3","q":"1","X":"MARKET","m":true}}}}').encode()


@pytest.mark.parametrize("split", [False, True])
def test_giant_line_is_bounded(split):
    """A line longer than the limit is not assembled (bounded memory): it becomes a malformed
    record of its full length, and decoding goes on."""
    dec = _binance.BinanceDecoder()
    dec.set_default_increments("0.1", "0.001")
    dec.set_max_line(1000)
    dec.begin_file(0, "big")
    out = _Buffers._make(100, 10)
    big = b"1 " + b"x" * 600 + b"y" * 600
    text = big + b"\n" + TRADE_LINE + b"\n" + b"2 " + b"z" * 1500
    pieces = [text[:602], text[602:1500], text[1500:]] if split else [text]
    ev = nrec = 0
    for piece in pieces:
        consumed, ev, nrec, status = dec.feed(piece, out, ev, nrec)
        assert status == Status.OK and consumed == len(piece)
        assert dec.carried_bytes <= 1502
    ev, nrec, status = dec.finish(out, ev, nrec)
    assert status == Status.OK
    assert list(out["rec_length"][:nrec]) == [1202, len(TRADE_LINE), 1502]
    assert list(out["rec_offset"][:nrec]) == [0, 1203, 1204 + len(TRADE_LINE)]
    # the last one ends without newline: still too long, so malformed rather than truncated
    assert list(out["rec_problem"][:nrec]) == [int(Rule.MALFORMED_RECORD), 0,
                                              int(Rule.MALFORMED_RECORD)]
    assert ev == 1 and out["event_record"][0] == 1
    reasons = dec.new_reasons()
    assert [r[0] for r in reasons] == [0, 2] and "longer than 1000 bytes" in reasons[0][5]


def test_snapshot_larger_than_a_batch_is_staged():
    bids = json.dumps([[f"{60000 + i}.0", "1.000"] for i in range(500)])
    text = (f'{TS} {{"stream":"btcusdt@trade","data":{{"e":"trade","E":{E0},"T":{E0},"s":"BTCUSDT",'
            f'"t":1,"p":"61800.3","q":"1","X":"MARKET","m":true}}}}\n'
            f'{TS} {{"lastUpdateId":1,"bids":{bids},"asks":[]}}\n').encode()
    a, ea = decode(text, batch_size=3)
    b, eb = decode(text)
    assert ea is None and eb is None and len(a["kind"]) == 502
    for c in COLUMN_NAMES:
        assert np.array_equal(a[c], b[c])
