"""The receiving end of bench_net.py, in its own process: counts MoldUDP64-framed datagrams by
sequence number on a lockstep.net UdpSocket and prints one JSON line when the sender ends.

    python benchmarks/udp_receiver.py [--pin CPU] [--idle SECONDS] [--busy-poll]

Prints {"address": ...} once bound (the sender reads it), then, after the sender's End of Session
datagram (message count 0xFFFF) or `--idle` seconds without data, {"datagrams", "messages",
"gaps", "missing", "duplicates", "kernel_drops", "seconds", "cpu_seconds", "user_stamped"}. A gap
is a datagram whose first sequence number is past the next expected one; `missing` counts the
messages skipped. Between batches it sleeps in epoll until the socket is readable, so its CPU
time is the work of receiving; `--busy-poll` spins instead (CPU time is then wall time).
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import numpy as np

from lockstep.net import READABLE, EventLoop, UdpSocket, pin_to_cpu

END_OF_SESSION = 0xFFFF
# MoldUDP64 downstream header: session (10 bytes), sequence number (8, big-endian), count (2).
HEADER = np.dtype([("session", "S10"), ("seq", ">u8"), ("count", ">u2")])


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pin", type=int, default=None)
    parser.add_argument("--idle", type=float, default=5.0)
    parser.add_argument("--receive-buffer", type=int, default=32 << 20)
    parser.add_argument("--busy-poll", action="store_true")
    args = parser.parse_args()
    if args.pin is not None:
        pin_to_cpu(args.pin)
    sock = UdpSocket(receive_buffer=args.receive_buffer, batch=256, slot_bytes=2048)
    loop = EventLoop(1, busy_poll=args.busy_poll)
    loop.add(sock.fileno(), READABLE, 0)
    print(json.dumps({"address": sock.address, "receive_buffer": sock.buffer_sizes[0]}), flush=True)
    expected = 1
    datagrams = messages = gaps = missing = duplicates = 0
    first = last = 0.0
    cpu_start = 0.0
    idle_since = time.monotonic()
    ended = False
    while not ended:
        n = sock.receive()
        if n == 0:
            if time.monotonic() - idle_since > args.idle:
                break
            loop.wait(100)
            continue
        now = time.monotonic()
        if datagrams == 0:
            first, cpu_start = now, _cpu_seconds()
        last = idle_since = now
        headers = sock.data[:n, :HEADER.itemsize].view(HEADER)[:, 0]
        seqs = headers["seq"].astype(np.int64)
        counts = headers["count"].astype(np.int64)
        ended = bool(counts[-1] == END_OF_SESSION)
        if ended:
            n -= 1
            seqs, counts = seqs[:n], counts[:n]
        if n == 0:
            continue
        chain = np.empty(n, np.int64)  # each datagram's expected first sequence number
        chain[0] = expected
        np.add(seqs[:-1], counts[:-1], out=chain[1:])
        ahead = seqs > chain
        gaps += int(ahead.sum())
        missing += int((seqs - chain)[ahead].sum())
        duplicates += int((seqs < chain).sum())
        expected = int(seqs[-1] + counts[-1])
        datagrams += n
        messages += int(counts.sum())
    print(json.dumps({
        "datagrams": datagrams, "messages": messages, "gaps": gaps, "missing": missing,
        "duplicates": duplicates, "kernel_drops": sock.stats["kernel_drops"],
        "user_stamped": sock.stats["user_stamped"], "seconds": last - first,
        "cpu_seconds": _cpu_seconds() - cpu_start,
    }), flush=True)


if __name__ == "__main__":
    sys.exit(main())
