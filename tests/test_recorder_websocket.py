"""The recorder's WebSocket feeds (lockstep.data.recorder.websocket) against a local venue: a
WebSocket server of the same library on loopback port 0 streaming what a test tells it, and an
HTTP server answering depth snapshot requests. What the recorder writes goes through RawWriter
into a real capture, which the Binance import reads."""
from __future__ import annotations

import asyncio
import gzip
import io
import json
import logging
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from shared_data import shared_file

from lockstep.data.dataset import Dataset
from lockstep.data.importers.binance import decode_binance
from lockstep.data.pipeline import import_data
from lockstep.data.raw_capture import RawWriter, read_frames
from lockstep.data.recorder.websocket import (
    DepthChain,
    WebSocketFeed,
    WebSocketRecorder,
    record_websocket,
)
from lockstep.errors import ConfigError
from lockstep.events import EventKind, Flag

websockets_server = pytest.importorskip("websockets.asyncio.server")

# The history records the recorder's capture takes from a WebSocket feed.
CONTRACT_RECORDS = ("gap", "reconnect", "snapshot")
DEADLINE_S = 60.0  # the most any wait of these tests takes before it fails


def until(condition: Callable[[], bool], what: str, timeout: float = DEADLINE_S) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


class CaptureSink:
    """The recorder's sink as the tests need it: frames into a raw capture, history in a list."""

    def __init__(self, directory: Path, stream: str = "binance") -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.writer = RawWriter(directory, "ws", streams=[stream])
        self.frames = 0
        self.records: list[tuple[str, dict]] = []
        self.lock = threading.Lock()

    def frame(self, receive_ns: int, payload: bytes) -> None:
        with self.lock:
            self.writer.write(receive_ns, 0, payload)
            self.frames += 1

    def history(self, record: str, **fields) -> None:
        assert record in CONTRACT_RECORDS, f"{record} is not a history record of the contract"
        with self.lock:
            self.records.append((record, fields))

    def named(self, record: str) -> list[dict]:
        with self.lock:
            return [f for r, f in self.records if r == record]

    def close(self) -> list[Path]:
        self.writer.close()
        return list(self.writer.paths)


class LocalVenue:
    """A WebSocket server running `stream(ws, venue)` per connection and an HTTP server answering
    every GET with `snapshot(query) -> (status, body)`, both on loopback port 0."""

    def __init__(self, stream, snapshot=None, tls=None) -> None:
        self.stream = stream
        self.tls = tls
        self.snapshot = snapshot or (lambda query: (404, b'{"code":-1121,"msg":"Invalid symbol."}'))
        self.connections = 0
        self.requests: list[str] = []
        self.loop = asyncio.new_event_loop()
        started = threading.Event()
        self.thread = threading.Thread(target=self._serve, args=(started,), daemon=True)
        self.thread.start()
        assert started.wait(DEADLINE_S)
        venue = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                venue.requests.append(self.path)
                status, body = venue.snapshot(self.path)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def _serve(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)

        async def handler(ws) -> None:
            self.connections += 1
            await self.stream(ws, self)

        async def main() -> None:
            self.stopping = asyncio.Event()
            async with websockets_server.serve(handler, "127.0.0.1", 0, max_size=None, ssl=self.tls) as server:
                self.port = server.sockets[0].getsockname()[1]
                started.set()
                await self.stopping.wait()

        self.loop.run_until_complete(main())

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/stream"

    @property
    def snapshot_url(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}/fapi/v1/depth"

    def feed(self, **keys) -> WebSocketFeed:
        table = {"name": "test", "kind": "websocket", "url": self.ws_url,
                 "streams": ["btcusdt@depth@0ms", "btcusdt@trade", "btcusdt@bookTicker"],
                 "snapshot_url": self.snapshot_url, "reconnect_delay": "20ms",
                 "reconnect_max_delay": "200ms", "snapshot_retry": "10ms", "timeout": "5s"}
        table.update(keys)
        return WebSocketFeed.from_dict(table)

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()
        self.loop.call_soon_threadsafe(self.stopping.set)
        self.thread.join(DEADLINE_S)


class Recording:
    """record_websocket(feed, sink, stop) in a thread, stopped (and checked to stop) on exit."""

    def __init__(self, feed: WebSocketFeed, sink: CaptureSink) -> None:
        self.recorder = WebSocketRecorder(feed, sink)
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.recorder.run(self.stop)
        except BaseException as e:  # noqa: BLE001 (handed to the test thread)
            self.error = e

    def __enter__(self) -> Recording:  # noqa: PYI034 (3.10 has no typing.Self)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive(), "the recorder did not return after stop"
        if self.error is not None:
            raise self.error


async def wait_for(condition: Callable[[], bool], what: str) -> None:
    end = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"the venue timed out waiting for {what}")
        await asyncio.sleep(0.002)


# ---------------------------------------------------------------------------------------------
# a real capture, streamed and recorded, imports like the original


def _book_after(snapshot: dict, diffs: list[dict]) -> dict[str, dict[Decimal, tuple[str, str]]]:
    """The book a snapshot and the diffs after it make, by Binance's rules (futures: diffs with
    u < lastUpdateId are inside the snapshot; a level's quantity replaces it, 0 removes it)."""
    book = {side: {Decimal(p): (p, q) for p, q in snapshot[side]} for side in ("bids", "asks")}
    for d in diffs:
        if d["u"] < snapshot["lastUpdateId"]:
            continue
        for side, key in (("bids", "b"), ("asks", "a")):
            for p, q in d[key]:
                if Decimal(q) == 0:
                    book[side].pop(Decimal(p), None)
                else:
                    book[side][Decimal(p)] = (p, q)
    return book


def test_a_streamed_capture_records_and_imports_like_the_original(tmp_path):
    """The USD-M fixture streamed over WebSocket as fast as it goes, its REST snapshot served
    where it was taken and the connection closed by the server part way: the recorder reconnects,
    fetches a second snapshot, and its capture imports (the Binance data path) to the events of
    the original file, plus that second snapshot, which is the book as the original has it then."""
    original = shared_file("binance/usdm/btcusdt_20240808.gz")
    with gzip.open(original, "rb") as f:
        lines = [ln.rstrip(b"\n").partition(b" ")[2] for ln in f]
    at_snapshot = next(i for i, ln in enumerate(lines) if ln.startswith(b'{"lastUpdateId"'))
    first_snapshot = lines[at_snapshot]
    def is_diff(ln: bytes) -> bool:
        return ln.startswith(b'{"stream":"btcusdt@depth')

    cut = len(lines) * 2 // 5  # the server closes the connection after line `cut` - 1
    # the second connection's snapshot is asked for once its first diff has arrived
    resume = next(i for i in range(cut, len(lines)) if is_diff(lines[i])) + 1
    diffs_before = [json.loads(ln)["data"] for ln in lines[at_snapshot + 1:resume] if is_diff(ln)]
    next_diff = next(json.loads(ln)["data"] for ln in lines[resume:] if is_diff(ln))
    book = _book_after(json.loads(first_snapshot), diffs_before)
    # Futures: the first diff after a snapshot L must have U <= L <= u; the book before that diff
    # is the book at any id of its range, as its levels are set, not added.
    second_id = next_diff["U"]
    second_snapshot = json.dumps({
        "lastUpdateId": second_id, "E": diffs_before[-1]["E"], "T": diffs_before[-1]["T"],
        "bids": [list(book["bids"][p]) for p in sorted(book["bids"], reverse=True)],
        "asks": [list(book["asks"][p]) for p in sorted(book["asks"])],
    }, separators=(",", ":")).encode()

    sink = CaptureSink(tmp_path / "capture")

    async def stream(ws, venue) -> None:
        if venue.connections == 1:
            for ln in lines[:at_snapshot]:
                await ws.send(ln.decode())
            await wait_for(lambda: sink.frames == at_snapshot + 1, "the first snapshot's frame")
            for ln in lines[at_snapshot + 1:cut]:
                await ws.send(ln.decode())
            await ws.close(1012, "service restart")
        else:
            for ln in lines[cut:resume]:
                await ws.send(ln.decode())
            await wait_for(lambda: sink.frames == resume + 1, "the second snapshot's frame")
            for ln in lines[resume:]:
                await ws.send(ln.decode())
            await ws.wait_closed()

    def snapshot(query: str) -> tuple[int, bytes]:
        assert "symbol=BTCUSDT" in query and "limit=1000" in query
        if len(venue.requests) == 1:
            until(lambda: sink.frames == at_snapshot, "the messages before the first snapshot")
            return 200, first_snapshot
        if len(venue.requests) == 2:
            return 200, second_snapshot
        return 500, b'{"msg":"a third snapshot was not expected"}'

    venue = LocalVenue(stream, snapshot)
    began = time.time_ns()
    try:
        with Recording(venue.feed(), sink) as rec:
            until(lambda: sink.frames == len(lines) + 1, "every line and two snapshots recorded")
    finally:
        venue.close()
    ended = time.time_ns()
    files = sink.close()

    counts = rec.recorder.counts
    assert (counts["messages"], counts["snapshots"], counts["reconnects"], counts["gaps"]) == (len(lines) + 1, 2, 1, 0)
    assert len(venue.requests) == 2 and venue.connections == 2
    assert [f["last_update_id"] for f in sink.named("snapshot")] == [json.loads(first_snapshot)["lastUpdateId"], second_id]
    (reconnect,) = sink.named("reconnect")
    assert "1012" in reconnect["reason"] and reconnect["peer"].startswith("127.0.0.1:")

    stamps = [int(t) for b in read_frames(files) for t in b.receive_ns]
    assert stamps == sorted(stamps) and began <= stamps[0] and stamps[-1] <= ended

    theirs = import_data("binance", [original], data=str(tmp_path / "a"))
    ours = import_data("binance", [str(f) for f in files], data=str(tmp_path / "b"))
    assert (ours.records_read, ours.records_quarantined, theirs.records_quarantined) == (len(lines) + 1, 0, 0)
    want = Dataset.open(theirs.dataset).read_all()
    got = Dataset.open(ours.dataset).read_all()
    second = [i for i, (seq, flags) in enumerate(zip(got["seq"].to_pylist(), got["flags"].to_pylist()))
              if seq == second_id and flags & Flag.SNAPSHOT]
    assert len(second) == 1 + len(book["bids"]) + len(book["asks"])  # BOOK_CLEAR and every level
    assert got["kind"][second[0]].as_py() == EventKind.BOOK_CLEAR
    mask = np.ones(len(got), bool)
    mask[second] = False
    kept = got.filter(mask)
    # ts_recv is each recorder's own clock; everything the venue said is the same
    assert kept.drop(["ts_recv"]).equals(want.drop(["ts_recv"]))
    assert kept["ts_recv"].to_pylist() == sorted(kept["ts_recv"].to_pylist())


# ---------------------------------------------------------------------------------------------
# bad input


def test_bad_messages_are_recorded_counted_and_logged_with_the_peer(tmp_path, caplog):
    """Non-JSON text and a binary message are recorded as received and counted; a message over
    max_message_bytes fails the connection (1009), which is counted and reopened with a new
    snapshot; the recorder keeps recording what follows."""
    snapshot_body = b'{"lastUpdateId":102,"E":1,"T":1,"bids":[["10.0","1.000"]],"asks":[["11.0","2.000"]]}'
    sink = CaptureSink(tmp_path / "capture")
    diffs = [('{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":101,'
              '"u":105,"pu":100,"b":[["10.0","1.500"]],"a":[]}}'),
             ('{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":2,"T":2,"s":"BTCUSDT","U":106,'
              '"u":110,"pu":105,"b":[],"a":[["11.0","1.000"]]}}')]
    after = '{"stream":"btcusdt@trade","data":{"e":"trade","E":5,"T":5,"s":"BTCUSDT","t":7,"p":"10.5","q":"0.001","X":"MARKET","m":false}}'

    async def stream(ws, venue) -> None:
        if venue.connections == 1:
            await ws.send(diffs[0])
            await wait_for(lambda: sink.frames == 2, "the first snapshot")
            await ws.send("not json {")
            await ws.send(b"\x00\x01binary\n")
            await ws.send("x" * 5000)
            await ws.wait_closed()
        else:
            await ws.send(diffs[1])
            await ws.send(after)
            await ws.wait_closed()

    venue = LocalVenue(stream, lambda query: (200, snapshot_body))
    caplog.set_level(logging.WARNING, logger="lockstep.recorder.websocket")
    try:
        with Recording(venue.feed(max_message_bytes=4096), sink) as rec:
            until(lambda: rec.recorder.counts["snapshots"] == 2 and sink.frames == 7, "two snapshots and the messages")
    finally:
        venue.close()
    files = sink.close()
    counts = rec.recorder.counts
    assert (counts["not_json"], counts["binary"], counts["oversized"], counts["reconnects"]) == (1, 1, 1, 1)
    payloads = sorted(bytes(b.payload(i)) for b in read_frames(files) for i in range(len(b)))
    assert payloads == sorted([diffs[0].encode(), b"not json {", b"\x00\x01binary\n", diffs[1].encode(),
                               after.encode(), snapshot_body, snapshot_body])
    assert rec.recorder.counts["gaps"] == 0
    (reconnect,) = sink.named("reconnect")
    assert "max_message_bytes (4096)" in reconnect["reason"] and "1009" in reconnect["reason"]
    logged = caplog.text
    assert "not JSON from 127.0.0.1:" in logged and "binary message of 9 bytes from 127.0.0.1:" in logged


def test_a_failed_snapshot_is_retried_and_a_stale_one_is_a_gap(tmp_path, caplog):
    """An HTTP error is counted, logged and asked again; a snapshot older than the
    diffs already recorded cannot be bridged (the import would find the same gap), so another
    one is fetched; the depth chain breaking mid-stream is a gap record and one more snapshot."""
    def diff(first: int, final: int, prev: int) -> str:
        return json.dumps({"stream": "btcusdt@depth@0ms", "data": {
            "e": "depthUpdate", "E": final, "T": final, "s": "BTCUSDT", "U": first, "u": final,
            "pu": prev, "b": [["10.0", str(final)]], "a": []}})

    sink = CaptureSink(tmp_path / "capture")
    answers = [(503, b'{"msg":"busy"}'), (200, b'{"lastUpdateId":5,"bids":[],"asks":[]}'),
               (200, b'{"lastUpdateId":33,"bids":[],"asks":[]}'),
               (200, b'{"lastUpdateId":45,"bids":[],"asks":[]}')]

    async def stream(ws, venue) -> None:
        for first, final, prev in ((10, 20, 9), (21, 30, 20)):
            await ws.send(diff(first, final, prev))
        await wait_for(lambda: len(sink.named("snapshot")) == 2, "the second snapshot")
        await ws.send(diff(31, 35, 30))
        await ws.send(diff(40, 50, 38))  # pu 38, not 35: a gap
        await ws.wait_closed()

    venue = LocalVenue(stream, lambda query: answers[min(len(venue.requests), len(answers)) - 1])
    caplog.set_level(logging.WARNING, logger="lockstep.recorder.websocket")
    try:
        with Recording(venue.feed(), sink) as rec:
            until(lambda: len(sink.named("snapshot")) == 3, "the third snapshot")
    finally:
        venue.close()
    sink.close()
    assert [r for r, _ in sink.records] == ["snapshot", "gap", "snapshot", "gap", "snapshot"]
    first_gap, second_gap = sink.named("gap")
    assert "snapshot from http://127.0.0.1:" in caplog.text and 'HTTP 503 Service Unavailable: {"msg":"busy"}' in caplog.text
    assert (first_gap["expected"], first_gap["found"]) == (5, 10)  # snapshot 5 is older than diff U=10
    assert (second_gap["expected"], second_gap["found"]) == (35, 38)
    assert rec.recorder.counts["gaps"] == 2 and rec.recorder.counts["snapshot_failures"] == 1


def test_an_unreachable_venue_is_retried_with_backoff_and_stop_is_prompt(tmp_path):
    """Nothing listens: every attempt fails and is counted, the waits grow to the maximum, and a
    stop returns at once."""
    venue = LocalVenue(lambda ws, venue: ws.close())
    port = venue.port
    venue.close()  # the port is free now: connections are refused
    feed = WebSocketFeed.from_dict({"name": "gone", "kind": "websocket", "url": f"ws://127.0.0.1:{port}/stream",
                                    "streams": ["btcusdt@trade"], "reconnect_delay": "10ms",
                                    "reconnect_max_delay": "40ms"})
    sink = CaptureSink(tmp_path / "capture")
    with Recording(feed, sink) as rec:
        until(lambda: rec.recorder.counts["connect_failures"] >= 4, "four failed attempts")
        stopped = time.monotonic()
    assert time.monotonic() - stopped < 2.0
    assert sink.frames == 0 and rec.recorder.counts["connections"] == 0
    sink.close()


def test_stop_returns_while_a_snapshot_request_hangs(tmp_path):
    sink = CaptureSink(tmp_path / "capture")
    release = threading.Event()

    def hang(query: str) -> tuple[int, bytes]:
        release.wait(DEADLINE_S)
        return 200, b'{"lastUpdateId":1,"bids":[],"asks":[]}'

    async def stream(ws, venue) -> None:
        await ws.send('{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT",'
                      '"U":1,"u":2,"pu":0,"b":[],"a":[]}}')
        await ws.wait_closed()

    venue = LocalVenue(stream, hang)
    try:
        with Recording(venue.feed(timeout="30s"), sink):
            until(lambda: len(venue.requests) == 1, "the snapshot request")
            stopped = time.monotonic()
        assert time.monotonic() - stopped < 3.0
    finally:
        release.set()
        venue.close()
    assert sink.frames == 1
    sink.close()


# ---------------------------------------------------------------------------------------------
# the update-id chain agrees with the import


@pytest.mark.parametrize("futures", [False, True])
def test_depth_chain_finds_the_gaps_the_import_finds(futures):
    """Diffs with holes and overlaps around snapshots at several places: DepthChain reports a gap
    exactly where the Binance decoder emits a GAP event, with the same ids."""
    symbol_stream = "btcusdt@depth@0ms" if futures else "btcusdt@depth@100ms"
    lines, chain, gaps = [], DepthChain(), []
    last_u, ts = 0, 1_700_000_000_000_000_000
    steps = [(1, 10), (11, 20), (25, 30), (31, 40), ("S", 35), (36, 45), (46, 50), ("S", 60), (52, 58),
             (59, 70), (75, 80), (81, 81), (85, 90, 83), ("S", 100), (95, 99), (101, 110), (112, 120)]
    for step in steps:
        ts += 1000
        if step[0] == "S":
            body = {"lastUpdateId": step[1], "bids": [["1.0", "1"]], "asks": [["2.0", "1"]]}
            if futures:
                body.update(E=1, T=1)
            lines.append(b"%d %s" % (ts, json.dumps(body).encode()))
            gaps.append(chain.snapshot(step[1]))
            continue
        first, final = step[:2]
        prev = step[2] if len(step) == 3 else last_u
        data = {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": first, "u": final, "b": [["1.0", str(final)]], "a": []}
        if futures:
            data.update(T=1, pu=prev)
        lines.append(b"%d %s" % (ts, json.dumps({"stream": symbol_stream, "data": data}).encode()))
        gaps.append(chain.diff(first, final, prev if futures else None))
        last_u = final
    run = decode_binance([io.BytesIO(b"\n".join(lines) + b"\n")], price_increment="0.1",
                         size_increment="1", snapshot_symbol="BTCUSDT", infer=False)
    expected = []
    for c in run:
        k = c.events["kind"][:c.n_events]
        for i in (k == EventKind.GAP).nonzero()[0]:
            expected.append((int(c.events["order_id"][i]), int(c.events["seq"][i])))
    found = [g for g in gaps if g is not None]
    assert len(expected) >= 2  # the scenario has gaps to find
    assert found == expected


# ---------------------------------------------------------------------------------------------
# config


def _table(**keys):
    t = {"name": "f", "kind": "websocket", "url": "wss://stream.binance.com:9443/stream",
         "streams": ["btcusdt@depth@100ms", "btcusdt@trade"], "snapshot_url": "https://api.binance.com/api/v3/depth"}
    t.update(keys)
    return {k: v for k, v in t.items() if v is not None}


def test_feed_from_a_config_table():
    feed = WebSocketFeed.from_dict(_table(snapshot_limit=500, reconnect_delay="250ms", max_message_bytes=65536))
    assert feed.stream_url == "wss://stream.binance.com:9443/stream?streams=btcusdt@depth@100ms/btcusdt@trade"
    assert feed.snapshot_symbol == "BTCUSDT"
    assert feed.snapshot_request() == "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=500"
    assert (feed.reconnect_delay_ns, feed.max_message_bytes, feed.timeout_ns) == (250_000_000, 65536, 10_000_000_000)
    trades = WebSocketFeed.from_dict(_table(streams=["btcusdt@trade", "ethusdt@depth5"], snapshot_url=None))
    assert trades.snapshot_symbol is None  # partial depth needs no snapshot


@pytest.mark.parametrize("keys, key, words", [
    ({"colour": "red"}, "feeds[2].colour", "unknown key"),
    ({"url": None}, "feeds[2].url", "missing"),
    ({"kind": "moldudp64"}, "feeds[2].kind", "'websocket'"),
    ({"url": "https://x/stream"}, "feeds[2].url", "ws:// or wss://"),
    ({"url": "wss://x/stream?streams=a"}, "feeds[2].url", "no query"),
    ({"streams": []}, "feeds[2].streams", "non-empty list"),
    ({"streams": ["a b"]}, "feeds[2].streams[0]", "not a stream name"),
    ({"streams": ["btcusdt@depth", "ethusdt@depth@100ms"]}, "feeds[2].streams", "feed of its own"),
    ({"snapshot_url": None}, "feeds[2].snapshot_url", "missing"),
    ({"snapshot_url": "ftp://x"}, "feeds[2].snapshot_url", "http:// or https://"),
    ({"snapshot_limit": 6000}, "feeds[2].snapshot_limit", "outside"),
    ({"max_message_bytes": 1 << 27}, "feeds[2].max_message_bytes", "outside"),
    ({"reconnect_delay": "soon"}, "feeds[2].reconnect_delay", "duration"),
    ({"reconnect_delay": "2s", "reconnect_max_delay": "1s"}, "feeds[2].reconnect_max_delay", "below"),
])
def test_feed_config_errors_name_the_key(keys, key, words):
    with pytest.raises(ConfigError, match=words) as e:
        WebSocketFeed.from_dict(_table(**keys), "feeds[2].")
    assert e.value.key == key


def test_record_websocket_is_the_entry_point(tmp_path):
    """The function the recorder calls, with the feed's config table: records into the sink
    until stop."""
    sink = CaptureSink(tmp_path / "capture")

    async def stream(ws, venue) -> None:
        await ws.send('{"stream":"btcusdt@trade","data":{}}')
        await ws.wait_closed()

    venue = LocalVenue(stream)
    stop = threading.Event()
    table = {"name": "entry", "kind": "websocket", "url": venue.ws_url, "streams": ["btcusdt@trade"]}
    worker = threading.Thread(target=record_websocket, args=(table, sink, stop), daemon=True)
    try:
        worker.start()
        until(lambda: sink.frames == 1, "the message")
        stop.set()
        worker.join(5)
        assert not worker.is_alive()
    finally:
        stop.set()
        venue.close()
    assert venue.requests == []  # no depth stream: no snapshot
    sink.close()


def test_a_fragmented_message_is_recorded_as_one_frame(tmp_path):
    sink = CaptureSink(tmp_path / "capture")
    parts = ['{"stream":"btcusdt@trade",', '"data":{"e":"trade"', ',"t":1}}']

    async def stream(ws, venue) -> None:
        await ws.send(iter(parts))  # one message in three frames
        await ws.send(iter([b"\x01\x02", b"\x03"]))
        await ws.wait_closed()

    venue = LocalVenue(stream)
    try:
        with Recording(venue.feed(streams=["btcusdt@trade"]), sink) as rec:
            until(lambda: sink.frames == 2, "both messages")
    finally:
        venue.close()
    files = sink.close()
    payloads = [bytes(b.payload(i)) for b in read_frames(files) for i in range(len(b))]
    assert payloads == ["".join(parts).encode(), b"\x01\x02\x03"]
    assert (rec.recorder.counts["not_json"], rec.recorder.counts["binary"]) == (0, 1)


def test_a_sink_that_fails_ends_the_run_with_its_error(tmp_path):
    """A full disk is the sink's to report: the recorder stops and raises it, it does not go on
    receiving what it cannot keep."""
    class FullDisk(CaptureSink):
        def frame(self, receive_ns: int, payload: bytes) -> None:
            raise OSError(28, "No space left on device")

    sink = FullDisk(tmp_path / "capture")

    async def stream(ws, venue) -> None:
        await ws.send('{"stream":"btcusdt@trade","data":{}}')
        await ws.wait_closed()

    venue = LocalVenue(stream)
    try:
        rec = Recording(venue.feed(streams=["btcusdt@trade"]), sink)
        rec.thread.start()
        rec.thread.join(10)
        assert not rec.thread.is_alive()
        assert isinstance(rec.error, OSError) and rec.error.errno == 28
    finally:
        rec.stop.set()
        venue.close()
    sink.close()


def test_wss_with_the_venues_certificate_authority(tmp_path):
    """wss:// is TLS, verified against `ca_file`; a server whose certificate the trust does not
    cover is a counted connect failure."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True)
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    sink = CaptureSink(tmp_path / "capture")
    message = '{"stream":"btcusdt@trade","data":{"e":"trade","t":1}}'

    async def stream(ws, venue) -> None:
        await ws.send(message)
        await ws.wait_closed()

    venue = LocalVenue(stream, tls=server_tls)
    try:
        with Recording(venue.feed(streams=["btcusdt@trade"], url=venue.ws_url.replace("ws:", "wss:"),
                                  ca_file=str(cert)), sink):
            until(lambda: sink.frames == 1, "the message over TLS")
        untrusted = CaptureSink(tmp_path / "untrusted")
        with Recording(venue.feed(streams=["btcusdt@trade"], url=venue.ws_url.replace("ws:", "wss:")),
                       untrusted) as rec:
            until(lambda: rec.recorder.counts["connect_failures"] >= 2, "refused connections")
        assert untrusted.frames == 0
        untrusted.close()
    finally:
        venue.close()
    files = sink.close()
    assert [bytes(b.payload(i)) for b in read_frames(files) for i in range(len(b))] == [message.encode()]


def test_stop_returns_while_a_venue_never_answers_the_handshake(tmp_path):
    """A listener that takes the connection and never answers: with a 30 s timeout, a stop still
    returns at once."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        feed = WebSocketFeed.from_dict({"name": "silent", "kind": "websocket", "streams": ["btcusdt@trade"],
                                        "url": f"ws://127.0.0.1:{silent.getsockname()[1]}/stream", "timeout": "30s"})
        sink = CaptureSink(tmp_path / "capture")
        with Recording(feed, sink) as rec:
            time.sleep(0.3)
            stopped = time.monotonic()
        assert time.monotonic() - stopped < 2.0
        assert rec.recorder.counts["connect_failures"] == 0 and sink.frames == 0
    sink.close()


def test_a_quiet_venue_is_pinged_and_one_that_never_answers_is_left(tmp_path, monkeypatch):
    """After the keepalive interval without data the recorder pings: a venue that answers keeps
    its connection; one whose answer does not come within `timeout` is reconnected."""
    from lockstep.data.recorder import websocket as ws_module

    monkeypatch.setattr(ws_module, "_KEEPALIVE_S", 0.2)
    sink = CaptureSink(tmp_path / "capture")

    async def stream(ws, venue) -> None:
        if venue.connections == 1:
            await asyncio.sleep(1.5)  # quiet, but answering pings
            time.sleep(2.0)  # noqa: ASYNC251 (the venue's loop frozen on purpose: no pong)
            await ws.wait_closed()
        else:
            await ws.send('{"stream":"btcusdt@trade","data":{}}')
            await ws.wait_closed()

    venue = LocalVenue(stream)
    try:
        with Recording(venue.feed(streams=["btcusdt@trade"], timeout="1s"), sink) as rec:
            time.sleep(1.3)
            assert rec.recorder.counts["reconnects"] == 0  # pings were answered
            until(lambda: sink.frames == 1, "the message after the reconnect")
    finally:
        venue.close()
    (reconnect,) = sink.named("reconnect")
    assert "not even a pong" in reconnect["reason"]
    sink.close()


def test_a_feed_of_several_symbols_imports_with_its_snapshot_symbol(tmp_path):
    """The snapshot is asked for once the depth stream's first diff has arrived, never before;
    a feed that also carries another symbol's trades imports with --snapshot-symbol (without it
    the import cannot tell whose snapshot it is, and says so)."""
    trade = ('{"stream":"%s@trade","data":{"e":"trade","E":%d,"T":%d,"s":"%s","t":%d,"p":"10.5",'
             '"q":"0.001","X":"MARKET","m":false}}')
    diff = ('{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":%d,"T":%d,"s":"BTCUSDT","U":%d,'
            '"u":%d,"pu":%d,"b":[["10.0","%d.000"]],"a":[["11.0","1.000"]]}}')
    snapshot_body = b'{"lastUpdateId":12,"E":3,"T":3,"bids":[["10.0","1.000"]],"asks":[["11.0","2.000"]]}'
    sink = CaptureSink(tmp_path / "capture")
    seen_before_diff: list[int] = []

    async def stream(ws, venue) -> None:
        await ws.send(trade % ("ethusdt", 1, 1, "ETHUSDT", 1))
        await ws.send(trade % ("btcusdt", 2, 2, "BTCUSDT", 2))
        await wait_for(lambda: sink.frames == 2, "the trades")
        await asyncio.sleep(0.2)
        seen_before_diff.append(len(venue.requests))
        await ws.send(diff % (4, 4, 10, 15, 9, 2))
        await wait_for(lambda: sink.frames == 4, "the snapshot")
        await ws.send(diff % (5, 5, 16, 20, 15, 3))
        await ws.wait_closed()

    venue = LocalVenue(stream, lambda query: (200, snapshot_body))
    try:
        with Recording(venue.feed(streams=["btcusdt@depth@0ms", "btcusdt@trade", "ethusdt@trade"]), sink):
            until(lambda: sink.frames == 5, "every message")
    finally:
        venue.close()
    files = [str(f) for f in sink.close()]
    assert seen_before_diff == [0] and len(venue.requests) == 1

    def data_import(*flags: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "lockstep", "data", "import", "binance", *files,
                               "--data", str(tmp_path / "data"), "--json", *flags],
                              capture_output=True, text=True, timeout=120, check=False)

    refused = data_import()
    assert refused.returncode == 1 and "configure the snapshot symbol" in refused.stdout + refused.stderr
    done = data_import("--snapshot-symbol", "BTCUSDT")
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert (result["records_read"], result["records_canonical"]) == (5, 5)
