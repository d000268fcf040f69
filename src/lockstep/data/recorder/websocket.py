"""WebSocket market streams for the recorder: Binance-style combined streams with their REST depth
snapshots, written into one capture so that the Binance import rebuilds the book from it.

    feed = WebSocketFeed.from_dict({"name": "btc-usdm", "kind": "websocket",
                                    "url": "wss://fstream.binance.com/stream",
                                    "streams": ["btcusdt@depth@0ms", "btcusdt@trade"],
                                    "snapshot_url": "https://fapi.binance.com/fapi/v1/depth"})
    record_websocket(feed, sink, stop)  # until stop (a threading.Event) is set

What reaches the sink (`frame(receive_ns, payload)`, `history(record, **fields)`):

- every message as received, one frame each, stamped with one CLOCK_REALTIME read (time.time_ns)
  as the receive loop takes it from the connection: text as its UTF-8 bytes, a binary message as
  its bytes, JSON or not (what the venue sent is recorded; the importer judges it);
- the REST depth snapshot (``GET snapshot_url?symbol=SYMBOL&limit=N``), its body as one frame in
  the same stream: the bare ``{"lastUpdateId":...,"bids":[...],"asks":[...]}`` line the Binance
  import reads as a snapshot. It is fetched when a connection opens (the first and every
  reconnect: once its first diff has arrived, as Binance's procedure for a local book has it)
  and after every gap in the depth stream's update-id chain, in a thread of its own so the
  receive loop never waits for it, and written when it arrives, among the messages;
- history records: ``snapshot`` (symbol, last_update_id, bytes), ``gap`` (symbol, expected,
  found: the chain broke), ``reconnect`` (reason the last connection ended, attempts, the
  last_error of a failed attempt or None, peer). A failed snapshot request is counted and logged
  and asked again; the capture shows it as the gap that stays open until a snapshot arrives.

Gaps are found the way the import finds them: `DepthChain` is the update-id chain of
include/lockstep/codecs/binance/reconcile.hpp on ids alone (spot `U`/`u`, futures `pu`), fed the
same messages and snapshots in the same order, so a snapshot the import could not bridge (older
than diffs already recorded) is a gap here too and another snapshot is fetched.

Bad input never stops the recorder and is never silent: a message over `max_message_bytes` (the
library fails the connection with 1009), a connection the server closes or that breaks, a failed
handshake or snapshot, non-JSON text and binary messages are counted (`WebSocketRecorder.counts`)
and logged with the peer; a lost connection is reopened with exponential backoff.

One depth stream per feed: REST snapshots name no symbol, and the import gives them to the one
symbol of the feed (`WebSocketFeed.snapshot_symbol`, the import's `snapshot_symbol`).

The WebSocket protocol is the `websockets` library's (the `record` extra): RFC 6455 complete
(checked against the Autobahn suite), maintained since 2013, with a limit on message size. Its
Sans-I/O client protocol (handshake, framing, ping answers, closing) is driven here by one thread
over a plain socket, which costs less per message than its asyncio connection; TLS is the
standard ssl module's for wss:// (and the same context for an https snapshot URL).
"""
from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import logging
import os
import queue
import re
import select
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Mapping
from typing import Any, Protocol

from lockstep.checks import (
    config_int,
    format_duration,
    kind_of,
    parse_duration,
    unknown_keys,
)
from lockstep.data.raw_capture import MAX_PAYLOAD
from lockstep.errors import ConfigError, LockstepError

try:  # the `record` extra: without it feeds can be configured, not recorded
    from websockets.client import ClientProtocol
    from websockets.exceptions import InvalidHandshake, InvalidURI, PayloadTooBig
    from websockets.frames import Opcode
    from websockets.protocol import State
    from websockets.uri import parse_uri
except ImportError:
    ClientProtocol = None

__all__ = ["KEYS", "KIND", "DepthChain", "Sink", "WebSocketFeed", "WebSocketRecorder", "record_websocket"]

log = logging.getLogger("lockstep.recorder.websocket")

#: The `kind` of a WebSocket feed in `record.feeds`.
KIND = "websocket"

#: Every key a `record.feeds` table of kind "websocket" takes.
KEYS = ("name", "kind", "url", "streams", "snapshot_url", "snapshot_limit", "max_message_bytes",
         "reconnect_delay", "reconnect_max_delay", "snapshot_retry", "timeout", "ca_file")
# A diff depth stream: <symbol>@depth with an optional update speed; partial depth (@depth5) is not.
_DEPTH_STREAM = re.compile(r"([a-z0-9_]+)@depth(?:@[0-9]+ms)?")
_STREAM_NAME = re.compile(r"[!-~]+")
_FORBIDDEN_IN_STREAM = set("/?&#")
_MAX_SNAPSHOT_LIMIT = 5000  # Binance's largest depth limit
_STOP_POLL_S = 0.02  # how often the receive loop looks at `stop`
_CLOSE_TIMEOUT_S = 1.0
_RECV_BYTES = 1 << 18
_KEEPALIVE_S = 20.0  # a ping after this long without data; no answer within `timeout`: reconnect
_GOING_AWAY = 1001  # the close code a stopping recorder sends (RFC 6455, 7.4.1)
_USER_AGENT = "lockstep-recorder"
_MESSAGE_TOO_BIG = 1009  # the close code for a message over the limit (RFC 6455, 7.4.1)
_JSON = json.JSONDecoder()
_LOGGED_IN_FULL = 10  # occurrences of one kind of bad input logged one by one; then powers of 10


def _seconds(ns: int) -> float:
    return ns / 1e9


@dataclasses.dataclass(frozen=True)
class WebSocketFeed:
    """One `record.feeds` entry of kind "websocket".

    url: ws:// or wss:// address of the combined-stream endpoint (``.../stream``); the recorder
        appends ``?streams=a/b/c`` from `streams`.
    streams: the stream names (``btcusdt@depth@100ms``, ``btcusdt@trade``, ...), at most one diff
        depth stream.
    snapshot_url: http(s):// address of the REST depth endpoint (``/api/v3/depth`` on spot,
        ``/fapi/v1/depth`` on USD-M); required with a depth stream.
    snapshot_limit: levels per side asked of the snapshot (1..5000).
    max_message_bytes: the largest message or snapshot body accepted (up to the capture format's
        frame limit); a larger message fails the connection, which is counted and reopened.
    reconnect_delay_ns, reconnect_max_delay_ns: the first wait before reopening a lost
        connection, doubled per failed attempt up to the maximum; a connection that delivered a
        message starts over at the first.
    snapshot_retry_ns: the least time between two snapshot requests (a venue limits them).
    timeout_ns: opening a connection and fetching a snapshot give up after this long.
    ca_file: PEM file of the certificate authorities to trust for wss:// and https:// (default:
        the system's).
    """

    name: str
    url: str
    streams: tuple[str, ...]
    snapshot_url: str | None = None
    snapshot_limit: int = 1000
    max_message_bytes: int = 1 << 20
    reconnect_delay_ns: int = 500_000_000
    reconnect_max_delay_ns: int = 30_000_000_000
    snapshot_retry_ns: int = 1_000_000_000
    timeout_ns: int = 10_000_000_000
    ca_file: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], prefix: str = "") -> WebSocketFeed:
        """The feed from its config table; `prefix` is the table's dotted path with a trailing
        dot (``record.feeds[0].``), which every ConfigError names with the key."""
        unknown_keys(prefix, data, KEYS)
        for key in ("name", "kind", "url", "streams"):
            if key not in data:
                raise ConfigError(f"{prefix}{key}", "missing")
        name = _string(prefix + "name", data["name"])
        if data["kind"] != KIND:
            raise ConfigError(f"{prefix}kind", f"must be {KIND!r} for a WebSocket feed, not {data['kind']!r}")
        url = _url(prefix + "url", data["url"], ("ws", "wss"))
        if urllib.parse.urlsplit(url).query:
            raise ConfigError(f"{prefix}url", "takes no query: the streams go in `streams`")
        streams = _streams(prefix + "streams", data["streams"])
        snapshot_url = None
        if data.get("snapshot_url") is not None:
            snapshot_url = _url(prefix + "snapshot_url", data["snapshot_url"], ("http", "https"))
        depth = [s for s in streams if _DEPTH_STREAM.fullmatch(s)]
        if len(depth) > 1:
            raise ConfigError(f"{prefix}streams", f"has {len(depth)} depth streams ({', '.join(depth)}): "
                              "a REST snapshot names no symbol, so each depth stream needs a feed of its own")
        if depth and snapshot_url is None:
            raise ConfigError(f"{prefix}snapshot_url", f"missing: the depth stream {depth[0]} needs "
                              "its REST snapshots to rebuild the book")
        feed = cls(name=name, url=url, streams=streams, snapshot_url=snapshot_url)
        changes: dict[str, Any] = {}
        if "snapshot_limit" in data:
            changes["snapshot_limit"] = config_int(prefix + "snapshot_limit", data["snapshot_limit"],
                                                   _MAX_SNAPSHOT_LIMIT, 1)
        if "max_message_bytes" in data:
            changes["max_message_bytes"] = config_int(prefix + "max_message_bytes",
                                                      data["max_message_bytes"], MAX_PAYLOAD, 1)
        for key in ("reconnect_delay", "reconnect_max_delay", "snapshot_retry", "timeout"):
            if key in data:
                changes[f"{key}_ns"] = parse_duration(prefix + key, data[key], positive=True)
        if "ca_file" in data:
            changes["ca_file"] = _string(prefix + "ca_file", data["ca_file"])
        feed = dataclasses.replace(feed, **changes)
        if feed.reconnect_max_delay_ns < feed.reconnect_delay_ns:
            raise ConfigError(f"{prefix}reconnect_max_delay",
                              f"{format_duration(feed.reconnect_max_delay_ns)} is below reconnect_delay "
                              f"{format_duration(feed.reconnect_delay_ns)}")
        return feed

    @property
    def stream_url(self) -> str:
        """The address the recorder connects to: `url` with the streams as its query."""
        return f"{self.url}?streams={'/'.join(self.streams)}"

    @property
    def snapshot_symbol(self) -> str | None:
        """The symbol of the feed's depth stream (upper case, as the REST API and the import's
        `snapshot_symbol` take it); None without one."""
        for s in self.streams:
            m = _DEPTH_STREAM.fullmatch(s)
            if m:
                return m.group(1).upper()
        return None

    def snapshot_request(self) -> str:
        """The snapshot's REST address with its query."""
        query = urllib.parse.urlencode({"symbol": self.snapshot_symbol, "limit": self.snapshot_limit})
        return f"{self.snapshot_url}?{query}"


def _string(key: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(key, f"must be a non-empty string, not {value!r}" if isinstance(value, str)
                          else f"must be a string, not {kind_of(value)}")
    return value


def _url(key: str, value: object, schemes: tuple[str, ...]) -> str:
    text = _string(key, value)
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in schemes or not parts.hostname:
        raise ConfigError(key, f"{text!r} is not a {' or '.join(s + '://' for s in schemes)} address")
    try:
        parts.port  # noqa: B018 (raises on a port out of range)
    except ValueError as e:
        raise ConfigError(key, f"{text!r}: {e}") from None
    return text


def _streams(key: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(key, "must be a non-empty list of stream names")
    out = []
    for i, s in enumerate(value):
        if not isinstance(s, str) or not _STREAM_NAME.fullmatch(s) or _FORBIDDEN_IN_STREAM & set(s):
            raise ConfigError(f"{key}[{i}]", f"{s!r} is not a stream name (printable, no space, "
                              "'/', '?', '&' or '#')")
        if s in out:
            raise ConfigError(f"{key}[{i}]", f"{s!r} is given twice")
        out.append(s)
    return tuple(out)


class Sink(Protocol):
    """Where a feed's capture goes (the recorder's capture writer)."""

    def frame(self, receive_ns: int, payload: bytes) -> None: ...

    def history(self, record: str, **fields: Any) -> None: ...


# ---------------------------------------------------------------------------------------------
# the update-id chain


class DepthChain:
    """The update-id chain of one symbol's diff depth stream, on ids alone: the rules of
    include/lockstep/codecs/binance/reconcile.hpp (DepthSync), so that it finds a gap exactly
    where the import will.

    Before the first snapshot diffs are held (the `held` newest); a snapshot with id L restarts
    the chain: diffs it contains are dropped (spot u <= L, futures u < L), the first after it must
    bridge it (spot U <= L+1 <= u, futures U <= L <= u), every later one must continue the chain
    (spot U == last u + 1, futures pu == last u). `diff` and `snapshot` return the gap they found
    as (expected, found) or None."""

    def __init__(self, held: int = 1 << 14) -> None:
        self._held: deque[tuple[int, int, int | None]] = deque(maxlen=held)
        self._snapshot: int | None = None  # id of the snapshot the next diff must bridge
        self._synced = False  # a snapshot was met
        self._last_u = 0

    def diff(self, first: int, final: int, prev: int | None) -> tuple[int, int] | None:
        if not self._synced:
            self._held.append((first, final, prev))
            return None
        return self._step(first, final, prev)

    def snapshot(self, last_update_id: int) -> tuple[int, int] | None:
        """A snapshot arrived; the first gap among the held diffs it releases, if any."""
        self._synced = True
        self._snapshot = last_update_id
        found = None
        while self._held:
            gap = self._step(*self._held.popleft())
            found = found or gap
        return found

    def _step(self, first: int, final: int, prev: int | None) -> tuple[int, int] | None:
        spot = prev is None
        if self._snapshot is not None:
            anchor = self._snapshot
            if (final <= anchor) if spot else (final < anchor):
                return None  # inside the snapshot
            self._snapshot = None
            self._last_u = final
            bridged = first <= anchor + 1 <= final if spot else first <= anchor <= final
            return None if bridged else (anchor + 1 if spot else anchor, first)
        if final <= self._last_u:
            return None  # stale: the import drops it as a duplicate
        expected = self._last_u + 1 if spot else self._last_u
        found = first if spot else prev
        self._last_u = final
        return None if found == expected else (expected, found)


# ---------------------------------------------------------------------------------------------
# the recorder


_COUNTS = ("messages", "bytes", "not_json", "binary", "oversized", "connections", "reconnects",
           "connect_failures", "gaps", "snapshots", "snapshot_failures")


class WebSocketRecorder:
    """Records one WebSocket feed into `sink` until `run`'s stop event is set.

    One thread does everything that reaches the sink (the sink may be a single-producer ring):
    it reads the socket, feeds the library's protocol, stamps and hands on each message, and
    writes the snapshots that fetch threads hand back. `counts` (a dict, readable while it runs):
    messages and bytes recorded (messages and snapshots alike), not_json and binary messages
    (recorded, and counted as such), oversized messages (the connection failed on them),
    connections opened, reconnects, connect_failures, gaps in the depth chain, snapshots written
    and snapshot_failures.
    """

    def __init__(self, feed: WebSocketFeed, sink: Sink) -> None:
        if ClientProtocol is None:
            raise LockstepError(f"recording the WebSocket feed {feed.name!r} needs the websockets library: "
                                "pip install 'lockstep[record]'")
        self.feed = feed
        self.sink = sink
        self.counts: dict[str, int] = dict.fromkeys(_COUNTS, 0)
        self._symbol = feed.snapshot_symbol
        self._chain = DepthChain()
        self._ssl = _ssl_context(feed)
        self._snapshots: queue.SimpleQueue[tuple[bytes, str | None]] = queue.SimpleQueue()
        self._snapshot_wanted = False
        self._diff_seen = False  # a diff of the depth symbol arrived on this connection
        self._snapshot_in_flight = False
        self._snapshot_due = 0.0  # time.monotonic() before which no request goes out
        self._snapshot_failures = 0

    # -- connections --

    def run(self, stop: threading.Event) -> None:
        """Records until `stop` is set, then closes the connection and returns (within about
        _STOP_POLL_S, plus up to _CLOSE_TIMEOUT_S for the close handshake); a snapshot request
        under way is abandoned. An error of the sink ends the run and is raised."""
        lost: str | None = None  # why the last connection ended (None before the first)
        failed: str | None = None  # why the last attempt to connect failed
        attempts = 0
        while not stop.is_set():
            try:
                connection = _Connection.open(self.feed, self._ssl, stop)
            except _Stopped:
                break
            except (OSError, InvalidHandshake, InvalidURI) as e:
                self.counts["connect_failures"] += 1
                failed = f"cannot connect to {self.feed.url}: {_describe(e)}"
            else:
                self.counts["connections"] += 1
                if lost is not None:
                    self.counts["reconnects"] += 1
                    log.warning("%s: reconnected to %s after %d attempt(s); the last connection ended: %s",
                                self.feed.name, connection.peer, attempts, lost)
                    self.sink.history("reconnect", reason=lost, attempts=attempts,
                                      last_error=failed, peer=connection.peer)
                else:
                    log.info("%s: connected to %s after %d attempt(s)", self.feed.name, connection.peer, attempts + 1)
                failed = None
                self._diff_seen = False
                self._want_snapshot()
                messages = self.counts["messages"]
                with connection:
                    lost = self._receive(connection, stop)
                if lost is None:
                    break  # stopped
                if self.counts["messages"] > messages:
                    attempts = 0
            delay = min(self.feed.reconnect_delay_ns * 2 ** min(attempts, 62), self.feed.reconnect_max_delay_ns)
            attempts += 1
            log.warning("%s: %s; reconnecting in %s", self.feed.name, failed or lost, format_duration(delay))
            stop.wait(_seconds(delay))
        log.info("%s: stopped; %s", self.feed.name, ", ".join(f"{k} {v}" for k, v in self.counts.items()))

    def _receive(self, connection: _Connection, stop: threading.Event) -> str | None:
        """Records what arrives until the connection ends (why, in words) or `stop` (None)."""
        protocol, sock = connection.protocol, connection.sock
        quiet_since = time.monotonic()
        pinged = False
        self._events(connection, connection.early)
        while not stop.is_set():
            self._poll_snapshots()
            try:
                data = sock.recv(_RECV_BYTES)
            except TimeoutError:
                data = None
            except OSError as e:
                return f"the connection to {connection.peer} broke: {_describe(e)}"
            if data is None:
                quiet = time.monotonic() - quiet_since
                if quiet > _KEEPALIVE_S + _seconds(self.feed.timeout_ns):
                    return f"nothing from {connection.peer} for {quiet:.1f} s, not even a pong"
                if quiet > _KEEPALIVE_S and not pinged:
                    protocol.send_ping(b"lockstep")
                    pinged = True
            else:
                quiet_since = time.monotonic()
                pinged = False
                if data:
                    protocol.receive_data(data)
                else:
                    protocol.receive_eof()
                self._events(connection, protocol.events_received())
            try:
                connection.flush()
            except OSError as e:
                return f"the connection to {connection.peer} broke: {_describe(e)}"
            if data is None:
                continue
            if protocol.state is State.CLOSED or protocol.close_expected() or not data:
                return self._ended(connection)
        return None

    def _ended(self, connection: _Connection) -> str:
        protocol = connection.protocol
        if isinstance(protocol.parser_exc, PayloadTooBig):
            self.counts["oversized"] += 1
            return (f"a message over max_message_bytes ({self.feed.max_message_bytes}) arrived from "
                    f"{connection.peer}; the connection was failed with {_MESSAGE_TOO_BIG}")
        if protocol.parser_exc is not None:
            return f"{connection.peer} broke the protocol: {_describe(protocol.parser_exc)}"
        received = protocol.close_rcvd
        if received is not None:
            return f"closed by {connection.peer} with {received.code} {received.reason}".rstrip()
        return f"{connection.peer} closed the connection without a close frame"

    # -- messages --

    def _events(self, connection: _Connection, events: list[Any]) -> None:
        for event in events:
            opcode = getattr(event, "opcode", None)
            if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
                if event.fin:
                    self._message(event.data, opcode is Opcode.TEXT, connection.peer)
                else:
                    connection.fragments = [event.data]
                    connection.fragmented_text = opcode is Opcode.TEXT
            elif opcode is Opcode.CONT:
                connection.fragments.append(event.data)
                if event.fin:
                    data = b"".join(connection.fragments)
                    connection.fragments = []
                    self._message(data, connection.fragmented_text, connection.peer)

    def _message(self, payload: bytes, text: bool, peer: str) -> None:
        receive_ns = time.time_ns()
        self.sink.frame(receive_ns, payload)
        counts = self.counts
        counts["messages"] += 1
        counts["bytes"] += len(payload)
        if not text:
            self._bad("binary", f"a binary message of {len(payload)} bytes from {peer} (recorded as received)")
            return
        try:
            doc = _JSON.decode(payload.decode())
        except ValueError as e:  # UnicodeDecodeError included
            self._bad("not_json", f"a text message that is not JSON from {peer} ({e}; recorded as received)")
            return
        if self._symbol is None or not isinstance(doc, dict):
            return
        data = doc.get("data")
        if isinstance(data, dict) and data.get("e") == "depthUpdate" and data.get("s") == self._symbol:
            first, final, prev = data.get("U"), data.get("u"), data.get("pu")
            if isinstance(first, int) and isinstance(final, int) and (prev is None or isinstance(prev, int)):
                self._diff_seen = True
                self._gap(self._chain.diff(first, final, prev))

    def _bad(self, kind: str, what: str) -> None:
        n = self.counts[kind] = self.counts[kind] + 1
        if n <= _LOGGED_IN_FULL or _is_power_of_10(n):
            log.warning("%s: %s [%s #%d]", self.feed.name, what, kind, n)

    def _gap(self, gap: tuple[int, int] | None) -> None:
        if gap is None:
            return
        expected, found = gap
        self.counts["gaps"] += 1
        log.warning("%s: %s depth update ids broke: expected %d, found %d; fetching a snapshot",
                    self.feed.name, self._symbol, expected, found)
        self.sink.history("gap", symbol=self._symbol, expected=expected, found=found)
        self._want_snapshot()

    # -- snapshots --

    def _want_snapshot(self) -> None:
        """A snapshot is needed: requested at the next poll, or after the one under way (which
        may have been taken before what made this one necessary)."""
        if self._symbol is not None:
            self._snapshot_wanted = True

    def _poll_snapshots(self) -> None:
        """Writes a snapshot a fetch thread handed back; starts the next request when one is
        wanted, none is under way, snapshot_retry (or the failure backoff) has passed and a diff
        has arrived on this connection. That last is Binance's procedure for a local book (open
        the stream, buffer it, then ask for the snapshot), and it puts the symbol in the capture
        before its first snapshot, which the import needs to know whose snapshot it is."""
        while not self._snapshots.empty():
            body, error = self._snapshots.get()
            self._snapshot_in_flight = False
            self._snapshot_arrived(body, error)
        if (self._snapshot_wanted and self._diff_seen and not self._snapshot_in_flight
                and time.monotonic() >= self._snapshot_due):
            self._snapshot_wanted = False
            self._snapshot_in_flight = True
            self._snapshot_due = time.monotonic() + _seconds(self.feed.snapshot_retry_ns)
            args = (self.feed.snapshot_request(), self._ssl, _seconds(self.feed.timeout_ns),
                    self.feed.max_message_bytes)
            threading.Thread(target=lambda: self._snapshots.put(_fetch(*args)), name="snapshot",
                             daemon=True).start()

    def _snapshot_arrived(self, body: bytes, error: str | None) -> None:
        if error is None:
            error, last_update_id = _snapshot_id(body)
        if error is not None:
            self._snapshot_failures += 1
            self.counts["snapshot_failures"] += 1
            delay = min(self.feed.reconnect_delay_ns * 2 ** min(self._snapshot_failures - 1, 62),
                        self.feed.reconnect_max_delay_ns)
            log.warning("%s: %s snapshot from %s failed: %s; again in %s", self.feed.name, self._symbol,
                        self.feed.snapshot_url, error, format_duration(delay))
            self._snapshot_wanted = True
            self._snapshot_due = max(self._snapshot_due, time.monotonic() + _seconds(delay))
            return
        self._snapshot_failures = 0
        receive_ns = time.time_ns()
        self.sink.frame(receive_ns, body)
        self.counts["messages"] += 1
        self.counts["bytes"] += len(body)
        self.counts["snapshots"] += 1
        self.sink.history("snapshot", symbol=self._symbol, last_update_id=last_update_id, bytes=len(body))
        self._gap(self._chain.snapshot(last_update_id))


class _Connection:
    """One open WebSocket connection: a socket driven by the library's Sans-I/O client protocol
    (`websockets.client.ClientProtocol`: the handshake, framing, limits, ping answers, closing)."""

    def __init__(self, sock: socket.socket, protocol: Any, peer: str, early: list[Any]) -> None:
        self.sock = sock
        self.protocol = protocol
        self.peer = peer
        self.early = early  # frames that came with the handshake's response
        self.fragments: list[bytes] = []
        self.fragmented_text = False

    @classmethod
    def open(cls, feed: WebSocketFeed, context: ssl.SSLContext | None, stop: threading.Event) -> _Connection:
        """Connects and completes the opening handshake (TLS first for wss://) within
        feed.timeout; OSError (TLS and timeouts included) or the library's InvalidHandshake
        otherwise, _Stopped as soon as `stop` is set."""
        uri = parse_uri(feed.stream_url)
        deadline = time.monotonic() + _seconds(feed.timeout_ns)
        sock = _connect(uri.host, uri.port, deadline, stop)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if uri.secure:
                sock = (context or ssl.create_default_context()).wrap_socket(
                    sock, server_hostname=uri.host, do_handshake_on_connect=False)
                _tls_handshake(sock, deadline, stop)
            sock.settimeout(_STOP_POLL_S)
            peer = _peer(sock.getpeername())
            protocol = ClientProtocol(uri, max_size=feed.max_message_bytes)
            request = protocol.connect()
            request.headers["User-Agent"] = _USER_AGENT
            protocol.send_request(request)
            connection = cls(sock, protocol, peer, [])
            connection.flush()
            while protocol.state is State.CONNECTING:
                try:
                    data = sock.recv(_RECV_BYTES)
                except TimeoutError:
                    _check(deadline, stop)
                    continue
                if data:
                    protocol.receive_data(data)
                else:
                    protocol.receive_eof()
                events = protocol.events_received()
                if protocol.handshake_exc is not None:
                    raise protocol.handshake_exc
                if not data:
                    raise ConnectionError(f"{peer} closed the connection during the opening handshake")
                connection.early += [e for e in events if hasattr(e, "opcode")]
            return connection
        except BaseException:
            sock.close()
            raise

    def flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.sock.sendall(data)
            else:  # the protocol's end of stream: half-close
                with contextlib.suppress(OSError):
                    self.sock.shutdown(socket.SHUT_WR)

    def __enter__(self) -> _Connection:  # noqa: PYI034 (3.10 has no typing.Self)
        return self

    def __exit__(self, *exc) -> None:
        """Closes: the close handshake when the connection is still open (a stop), briefly."""
        try:
            if self.protocol.state is State.OPEN:
                self.protocol.send_close(_GOING_AWAY)
                self.flush()
                deadline = time.monotonic() + _CLOSE_TIMEOUT_S
                while self.protocol.state is not State.CLOSED and time.monotonic() < deadline:
                    data = self.sock.recv(_RECV_BYTES)
                    if not data:
                        break
                    self.protocol.receive_data(data)
                    self.protocol.events_received()  # after a stop nothing more is recorded
        except OSError:
            pass
        finally:
            self.sock.close()


class _Stopped(Exception):
    """`stop` was set while a connection was being opened."""


def _check(deadline: float, stop: threading.Event) -> None:
    if stop.is_set():
        raise _Stopped
    if time.monotonic() > deadline:
        raise TimeoutError("timed out")


def _wait(sock: socket.socket, deadline: float, stop: threading.Event, *, write: bool) -> None:
    """Until `sock` is writable (or readable), in slices short enough to see `stop`."""
    while True:
        _check(deadline, stop)
        readable, writable, _ = select.select([] if write else [sock], [sock] if write else [], [], _STOP_POLL_S)
        if readable or writable:
            return


def _connect(host: str, port: int, deadline: float, stop: threading.Event) -> socket.socket:
    """A connected TCP socket to the first of host's addresses that accepts, never blocking
    longer than _STOP_POLL_S at a time."""
    error: OSError = OSError(f"{host} has no address")
    for family, kind, proto, _, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            code = sock.connect_ex(address)
            if code not in (0, errno.EINPROGRESS):
                raise OSError(code, f"connecting to {_peer(address)}: {os.strerror(code)}")
            _wait(sock, deadline, stop, write=True)
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                raise OSError(code, f"connecting to {_peer(address)}: {os.strerror(code)}")
            return sock
        except OSError as e:
            sock.close()
            error = e
        except BaseException:
            sock.close()
            raise
    raise error


def _tls_handshake(sock: ssl.SSLSocket, deadline: float, stop: threading.Event) -> None:
    while True:
        try:
            sock.do_handshake()
            return
        except ssl.SSLWantReadError:
            _wait(sock, deadline, stop, write=False)
        except ssl.SSLWantWriteError:
            _wait(sock, deadline, stop, write=True)


def _fetch(url: str, context: ssl.SSLContext | None, timeout: float, limit: int) -> tuple[bytes, str | None]:
    """(body, None) or (b"", what went wrong); never raises."""
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(url, headers={"User-Agent": "lockstep-recorder"})
    try:
        with opener.open(request, timeout=timeout) as response:
            body = response.read(limit + 1)
    except urllib.error.HTTPError as e:
        detail = e.read(200).decode("utf-8", "replace")
        return b"", f"HTTP {e.code} {e.reason}: {detail}".rstrip(": ")
    except (OSError, ValueError) as e:  # URLError, timeouts, a broken connection, a bad response
        return b"", _describe(e)
    if len(body) > limit:
        return b"", f"the body is over max_message_bytes ({limit})"
    return body, None


def _snapshot_id(body: bytes) -> tuple[str | None, int]:
    """(None, lastUpdateId) of a depth snapshot body, or (what is wrong with it, 0)."""
    try:
        doc = json.loads(body)
    except ValueError as e:
        return f"the body is not JSON ({e})", 0
    if not isinstance(doc, dict) or not isinstance(doc.get("lastUpdateId"), int) \
            or not isinstance(doc.get("bids"), list) or not isinstance(doc.get("asks"), list):
        return f"the body is not a depth snapshot (lastUpdateId, bids, asks): {body[:120]!r}", 0
    return None, doc["lastUpdateId"]


def _ssl_context(feed: WebSocketFeed) -> ssl.SSLContext | None:
    secure = feed.url.startswith("wss://") or (feed.snapshot_url or "").startswith("https://")
    return ssl.create_default_context(cafile=feed.ca_file) if secure else None


def _peer(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address)


def _describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def _is_power_of_10(n: int) -> bool:
    while n % 10 == 0:
        n //= 10
    return n == 1


def record_websocket(feed: WebSocketFeed | Mapping[str, Any], sink: Sink, stop: threading.Event) -> None:
    """Records `feed` (a WebSocketFeed, or its config table, read with WebSocketFeed.from_dict)
    into `sink` until `stop` is set: the recorder's entry point for kind "websocket"; see
    WebSocketRecorder."""
    if isinstance(feed, Mapping):
        feed = WebSocketFeed.from_dict(feed)
    WebSocketRecorder(feed, sink).run(stop)
