"""UDP over loopback through lockstep.net: sendmmsg batches out, recvmmsg batches in, counted.

The sender runs here; the receiver (`udp_receiver.py`) runs in its own process, so each has a
core of this 2-core machine. Datagrams are MoldUDP64-framed (20-byte header: session, first
sequence number, message count) with their messages behind it; the receiver checks every
datagram's sequence number against the previous one's and counts gaps, missing messages and
duplicates, then reports its CPU time. Two shapes:

- `itch`: 1,340-byte datagrams carrying 40 ITCH 5.0 Order Executed messages (31 bytes, 2-byte
  length prefix) each, the shape of a busy MoldUDP64 feed (20M messages);
- `small`: 64-byte datagrams of one message each, for the datagram rate alone (1M).

The sender goes as fast as sendmmsg takes the batches (64 datagrams per call, the sequence
numbers rewritten per batch in numpy); the rate is messages (and datagrams) sent per second of
the send loop. The receiver must get all of them: the benchmark fails on a gap. CPU seconds per
million messages are reported for each side (process CPU time; on loopback the kernel's delivery
into the receiver's socket is charged to the sender's system time). LOCKSTEP_BENCH_SCALE scales
both message counts.
"""
from __future__ import annotations

import json
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import report_rate, scaled

from lockstep.net import UdpSocket

RECEIVER = Path(__file__).with_name("udp_receiver.py")
BATCH = 64
END_OF_SESSION = 0xFFFF
SESSION = b"BENCH00001"
HEADER = np.dtype([("session", "S10"), ("seq", ">u8"), ("count", ">u2")])
# ITCH 5.0 Order Executed: type, locate, tracking, timestamp (6), reference, shares, match number.
EXECUTED = struct.pack(">cHH6sQIQ", b"E", 1, 0, b"\0" * 6, 42, 100, 7)

SHAPES = {
    "itch": (40, EXECUTED),
    "small": (1, EXECUTED + b"\0" * (64 - 20 - 2 - len(EXECUTED))),
}


def _packet(per_datagram: int, message: bytes) -> bytes:
    body = (struct.pack(">H", len(message)) + message) * per_datagram
    return SESSION + struct.pack(">QH", 0, per_datagram) + body


def _start_receiver() -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen([sys.executable, str(RECEIVER)], stdout=subprocess.PIPE, text=True)
    return proc, json.loads(proc.stdout.readline())


def _send_all(proc, hello, *, per_datagram, message, total_messages, result):
    packet = _packet(per_datagram, message)
    frames = np.frombuffer(packet * BATCH, np.uint8).reshape(BATCH, len(packet)).copy()
    headers = frames[:, :HEADER.itemsize].view(HEADER)[:, 0]
    flat = frames.reshape(-1)
    lengths = np.full(BATCH, len(packet), np.uint32)
    step = np.arange(BATCH, dtype=np.uint64) * np.uint64(per_datagram)
    datagrams = -(-total_messages // per_datagram)
    with UdpSocket(destination=hello["address"], batch=BATCH, send_buffer=4 << 20) as tx:
        cpu0, t0 = time.process_time(), time.perf_counter()
        seq = 1
        retries = 0
        for first in range(0, datagrams, BATCH):
            k = min(BATCH, datagrams - first)
            headers["seq"] = np.uint64(seq) + step
            sent = 0
            while sent < k:
                got = tx.send(flat[sent * len(packet):k * len(packet)], lengths[sent:k])
                sent += got
                retries += got == 0
            seq += k * per_datagram
        seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        end = np.frombuffer(SESSION + struct.pack(">QH", seq, END_OF_SESSION), np.uint8)
        for _ in range(3):  # the end marker itself may meet a full buffer
            tx.send(end, np.array([len(end)], np.uint32))
            time.sleep(0.05)
        stats = tx.stats
    out, _ = proc.communicate(timeout=120)
    result.update(sent_messages=(seq - 1), sent_datagrams=datagrams, send_seconds=seconds,
                  send_cpu=cpu, send_blocked=stats["send_blocked"], retries=retries,
                  receiver=json.loads(out.strip().splitlines()[-1]),
                  receive_buffer=hello["receive_buffer"])


@pytest.mark.parametrize("shape", list(SHAPES))
def test_udp_loopback_batches(benchmark, shape):
    per_datagram, message = SHAPES[shape]
    total = scaled(20_000_000 if shape == "itch" else 1_000_000)
    result: dict = {}
    arguments = dict(per_datagram=per_datagram, message=message, total_messages=total,
                     result=result)
    benchmark.pedantic(_send_all, setup=lambda: (_start_receiver(), arguments), rounds=1,
                       iterations=1)
    rx = result["receiver"]
    sent = result["sent_messages"]
    per_million = 1e6 / sent
    benchmark.extra_info.update(
        datagrams_per_second=result["sent_datagrams"] / result["send_seconds"],
        send_cpu_s_per_million_messages=result["send_cpu"] * per_million,
        receive_cpu_s_per_million_messages=rx["cpu_seconds"] * per_million,
        receiver=rx, send_blocked=result["send_blocked"])
    report_rate(benchmark, sent, "messages")
    print(f"  {result['sent_datagrams'] / result['send_seconds']:,.0f} datagrams/s sent; "
          f"received {rx['messages']:,} messages in {rx['datagrams']:,} datagrams over "
          f"{rx['seconds']:.3f} s, gaps {rx['gaps']} (missing {rx['missing']}), "
          f"kernel drops {rx['kernel_drops']}; CPU s per million messages: send "
          f"{result['send_cpu'] * per_million:.3f}, receive {rx['cpu_seconds'] * per_million:.3f}; "
          f"send buffer full {result['send_blocked']}x, receive buffer {result['receive_buffer']:,} B")
    assert rx["gaps"] == 0 and rx["duplicates"] == 0 and rx["messages"] == sent
