"""NASDAQ protocol codecs from memory (issue 11 targets: MoldUDP64 + ITCH decode at least 30M
messages/s; OUCH encode + decode under 50 ns per message).

MoldUDP64 + ITCH: bench_itch.py's input (the SIMULATED RITCH sample re-framed and repeated with
order references offset per repetition, ~6M messages by default) cut into MoldUDP64 packets of at
most 1,400 bytes (an Ethernet MTU less IP, UDP and some room), as a venue would send them. Timed:
what a feed handler does per batch of datagrams (64 KB of them, one recvmmsg batch), with buffers allocated
once: the packets' blocks gathered by the MoldUDP64 reader, then decoded by the one ITCH decoder
into canonical event columns.

The ITCH decoder alone on the same messages from one buffer, and the MoldUDP64 gathering alone,
are measured beside it, so that each side's share is seen on the same machine at the same moment.

OUCH: one Enter Order and one Executed message encoded into a buffer and decoded back, 10M times
each in a compiled loop (the shares changed every time so nothing is hoisted out of the loop).
"""
from __future__ import annotations


import numpy as np
import pytest
from bench_itch import write_bench_file
from conftest import report_rate, scaled

from lockstep._bindings import protocols as codec
from lockstep._bindings.itch import ItchDecoder
from lockstep.enums import Status
from lockstep.protocols import moldudp64, ouch42

PACKET_BYTES = 1400
BATCH_BYTES = 1 << 16  # about one recvmmsg batch of 48 datagrams


def packetize(stream: bytes) -> tuple[bytes, np.ndarray, int]:
    """The [u16 length][message] stream cut into MoldUDP64 packets: (datagrams back to back,
    their lengths, messages)."""
    parts, lengths = [], []
    pos, sequence, messages = 0, 1, 0
    budget = PACKET_BYTES - moldudp64.HEADER_LENGTH
    while pos < len(stream):
        start, count = pos, 0
        while pos < len(stream):
            size = 2 + int.from_bytes(stream[pos:pos + 2], "big")
            if pos - start + size > budget:
                break
            pos += size
            count += 1
        header = b"BENCH00001" + sequence.to_bytes(8, "big") + count.to_bytes(2, "big")
        parts += [header, stream[start:pos]]
        lengths.append(len(header) + pos - start)
        sequence += count
        messages += count
    return b"".join(parts), np.asarray(lengths, dtype=np.int64), messages


@pytest.fixture(scope="module")
def mold_feed(tmp_path_factory):
    path = tmp_path_factory.mktemp("mold") / "bench20101224.itch"
    write_bench_file(path, scaled(6_000_000))
    return packetize(path.read_bytes())


def _decode_all(decoder: ItchDecoder, stream: np.ndarray) -> int:
    """Feeds a [u16 length][message] stream to the ITCH decoder: records decoded (chunks taken
    as they fill, the last one left for the caller)."""
    records = pos = 0
    while True:
        consumed, status = decoder.feed(stream[pos:], True)
        pos += consumed
        if status == Status.OK:
            return records
        assert status == Status.OUTPUT_FULL
        records += decoder.take()[1]


def _finish(decoder: ItchDecoder, records: int) -> int:
    last = decoder.take()
    assert not any(decoder.counts()["problems"])
    return records + (last[1] if last else 0)


def test_moldudp64_itch_decode(benchmark, mold_feed):
    data, lengths, messages = mold_feed
    ends = np.cumsum(lengths)
    # Batches of whole packets of about BATCH_BYTES each.
    cuts = np.searchsorted(ends, np.arange(BATCH_BYTES, int(ends[-1]) + BATCH_BYTES, BATCH_BYTES))
    bounds = np.unique(np.r_[0, np.minimum(cuts + 1, len(lengths))])
    out = np.empty(BATCH_BYTES + PACKET_BYTES * 2, dtype=np.uint8)
    problem = np.zeros(len(lengths), dtype=np.uint8)
    offset = np.zeros(len(lengths), dtype=np.int64)
    view = memoryview(data)
    seen = []

    def once():
        decoder = ItchDecoder(1 << 16)
        decoder.begin_file(0, 0)
        records = gathered = 0
        for a, b in zip(bounds[:-1], bounds[1:]):
            start = int(ends[a - 1]) if a else 0
            written, count = codec.mold_gather(view[start:int(ends[b - 1])], lengths[a:b], out,
                                               problem[a:b], offset[a:b])
            gathered += count
            records += _decode_all(decoder, out[:written])
        seen.append((gathered, _finish(decoder, records)))

    benchmark.pedantic(once, rounds=3, iterations=1)
    assert seen[-1] == (messages, messages) and not problem.any()
    report_rate(benchmark, messages, "messages")


def test_itch_decode_alone_from_memory(benchmark, mold_feed):
    """The same messages already in one [u16 length][message] buffer, the same decode loop: the
    ITCH side alone, to set the MoldUDP64 + ITCH rate against on the same machine and moment."""
    data, lengths, messages = mold_feed
    stream = np.frombuffer(moldudp64.gather_blocks(data, lengths).stream, dtype=np.uint8)
    seen = []

    def once():
        decoder = ItchDecoder(1 << 16)
        decoder.begin_file(0, 0)
        seen.append(_finish(decoder, _decode_all(decoder, stream)))

    benchmark.pedantic(once, rounds=3, iterations=1)
    assert seen[-1] == messages
    report_rate(benchmark, messages, "messages")


def test_moldudp64_gather_alone(benchmark, mold_feed):
    """The MoldUDP64 side alone: every packet walked and its blocks copied out."""
    data, lengths, messages = mold_feed
    out = np.empty(len(data), dtype=np.uint8)
    problem = np.zeros(len(lengths), dtype=np.uint8)
    offset = np.zeros(len(lengths), dtype=np.int64)
    result = benchmark.pedantic(codec.mold_gather, args=(data, lengths, out, problem, offset),
                                rounds=3, iterations=1)
    assert result[1] == messages and not problem.any()
    report_rate(benchmark, messages, "messages")


@pytest.mark.parametrize("message", [
    ouch42.EnterOrder(token="ORD000000001", side="B", shares=100, stock="AAPL", price=1_234_500,
                      time_in_force=99998, firm="GSCO", display="Y", capacity="A",
                      intermarket_sweep="N", minimum_quantity=0, cross_type="N", customer_type="R"),
    ouch42.Executed(timestamp=34_200_000_000_000, token="ORD000000001", executed_shares=100,
                    execution_price=1_234_500, liquidity_flag="A", match_number=123456789),
], ids=["enter_order", "executed"])
def test_ouch_encode_decode(benchmark, message):
    n = scaled(10_000_000)
    template = ouch42.encode(message)
    benchmark.pedantic(codec.ouch_round_trips, args=(template, n), rounds=3, iterations=1)
    assert codec.ouch_round_trips(template, 4) == 0 + 1 + 2 + 3
    rate = report_rate(benchmark, n, "messages")
    benchmark.extra_info["ns_per_message"] = 1e9 / rate
    print(f"{benchmark.name}: {1e9 / rate:.1f} ns per message (encode + decode)")
