"""The recorder's WebSocket feed (lockstep.data.recorder.websocket) on loopback: a sender process
(`ws_sender.py`, the websockets library) streams numbered Binance-shaped bookTicker messages
(~190 bytes) to `record_websocket`, whose sink writes every frame through RawWriter into a raw
capture here; the capture is then read back and every update id 1..N must be in it once, in
order (the benchmark fails on a loss). Two runs:

- `paced`: 50,000 messages/s for 10 s (the issue's target). The recorder keeps up when its lag
  (receive stamp minus the message's send time `E`, ms) stays small to the end: a recorder slower
  than the feed falls further behind every second (TCP loses nothing, so lag is the symptom). The
  benchmark reports the largest lag and the rate of the capture's receive stamps.
- `max`: 500,000 messages as fast as the sender goes; the rate is messages over the span of the
  capture's receive stamps, i.e. what one recorder thread sustains.

Both report the process CPU time per message while recording (the recorder thread and the
RawWriter sink; the sender is another process), which says what one free core sustains when the
machine is shared. LOCKSTEP_BENCH_SCALE scales the message counts (the paced rate stays 50,000/s).
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import report_rate, scaled

from lockstep.data.raw_capture import RawWriter, read_frames
from lockstep.data.recorder.websocket import WebSocketFeed, record_websocket

pytest.importorskip("websockets")

SENDER = Path(__file__).with_name("ws_sender.py")
PACED_RATE = 50_000
_IDS = re.compile(rb'"u":(\d+),.*"E":(\d+)')


class _CountingSink:
    def __init__(self, directory: Path) -> None:
        self.writer = RawWriter(directory, "ws", streams=["binance-spot/bookTicker"], max_bytes=256 << 20)
        self.frames = 0

    def frame(self, receive_ns: int, payload: bytes) -> None:
        self.writer.write(receive_ns, 0, payload)
        self.frames += 1

    def history(self, record: str, **fields) -> None:
        raise AssertionError(f"no {record} expected on a clean run: {fields}")


def _record(directory: Path, messages: int, rate: float) -> dict:
    proc = subprocess.Popen([sys.executable, str(SENDER), "--messages", str(messages), "--rate", str(rate)],
                            stdout=subprocess.PIPE, text=True)
    try:
        url = json.loads(proc.stdout.readline())["url"]
        feed = WebSocketFeed.from_dict({"name": "bench", "kind": "websocket", "url": url,
                                        "streams": ["btcusdt@bookTicker"]})
        sink = _CountingSink(directory)
        stop = threading.Event()
        worker = threading.Thread(target=record_websocket, args=(feed, sink, stop))
        cpu0 = time.process_time()
        worker.start()
        deadline = time.monotonic() + 60 + messages / 10_000
        while sink.frames < messages and time.monotonic() < deadline and worker.is_alive():
            time.sleep(0.01)
        cpu = time.process_time() - cpu0
        stop.set()
        worker.join(30)
        sender = json.loads(proc.stdout.readline())
    finally:
        proc.kill()
        proc.wait()
    sink.writer.close()
    ids, lags, first, last = [], [], None, None
    for b in read_frames(sink.writer.paths):
        for i in range(len(b)):
            m = _IDS.search(bytes(b.payload(i)))
            ns = int(b.receive_ns[i])
            ids.append(int(m.group(1)))
            lags.append(ns / 1e6 - int(m.group(2)))
            first = ns if first is None else first
            last = ns
    return {"recorded": len(ids), "in_order": ids == list(range(1, messages + 1)), "sent": sender["sent"],
            "send_seconds": sender["seconds"], "span_s": (last - first) / 1e9, "max_lag_ms": max(lags),
            "cpu_us_per_message": cpu / messages * 1e6}


@pytest.mark.parametrize("mode", ["paced", "max"])
def test_record_websocket_feed(benchmark, tmp_path, mode):
    messages = scaled(PACED_RATE * 10 if mode == "paced" else 500_000)
    rate = PACED_RATE if mode == "paced" else 0
    result: dict = {}
    benchmark.pedantic(lambda: result.update(_record(tmp_path, messages, rate)), rounds=1, iterations=1)
    benchmark.extra_info.update(result)
    rate_seen = messages / result["span_s"] if result["span_s"] > 0 else float("inf")
    report_rate(benchmark, messages, "messages")
    print(f"  {mode}: {result['recorded']:,} of {result['sent']:,} messages recorded in order: "
          f"{result['in_order']}; receive stamps span {result['span_s']:.3f} s = {rate_seen:,.0f} messages/s; "
          f"sender {result['sent'] / result['send_seconds']:,.0f}/s; largest lag {result['max_lag_ms']:.1f} ms; "
          f"recording CPU {result['cpu_us_per_message']:.1f} us per message "
          f"(= {1e6 / result['cpu_us_per_message']:,.0f} messages/s on a core of its own)")
    assert result["recorded"] == result["sent"] == messages and result["in_order"]
