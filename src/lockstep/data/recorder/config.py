"""The recorder's configuration: a TOML file, `--set key=value` overrides, frozen settings.

    cfg = load_record_config("record.toml", overrides=['record.fsync="frame"'])

Schema (defaults shown; `record.feeds` is required):

    [record]
    out = ""                     # capture directory; "" = the storage root's raw/
    prefix = "capture"           # file names <prefix>-NNNNNN.lsraw
    max_bytes = 1073741824       # rotation by size (bytes per file)
    window = "0s"                # rotation by receive time ("1h": a file per hour); 0 = none
    fsync = "1s"                 # "rotation", "frame", or a duration: fsync that often
    ring_bytes = 67108864        # each feed's ring between its receive loop and the disk (2^k)
    metrics = ""                 # Prometheus endpoint, "HOST:PORT" (port 0: any free one)

    [[record.feeds]]             # one table per feed, each a stream of the capture
    name = "itch"
    kind = "moldudp64"           # "moldudp64" | "soupbintcp" | "websocket"
    url = "udp://127.0.0.1:26400"  # moldudp64: where to listen (a multicast group is joined)
    interface = "127.0.0.1"      # moldudp64: the interface a multicast group is joined on
    retransmit = ""              # moldudp64: udp://HOST:PORT of the re-request server; "" = none
    session = ""                 # moldudp64: the expected session; "" = the first packet's
    source = ""                  # moldudp64: only datagrams from this host; "" = any
    receive_buffer = 33554432    # moldudp64: SO_RCVBUF bytes asked for
    request_timeout = "200ms"    # moldudp64: a gap is asked for again after this long
    request_attempts = 5         # moldudp64: ... this many times, then recorded as lost
    heartbeat_timeout = "3s"     # moldudp64: silence for this long is a heartbeat_timeout record
    first_sequence = 1           # moldudp64: where a session starts; 0 = at the first datagram
                                 #   received (a recorder joining a session late)
    date = ""                    # moldudp64: the venue's session date (YYYY-MM-DD) its ITCH
                                 #   timestamps count from; "" = taken from the receive time
    timezone = "America/New_York"  # moldudp64: where the venue's midnight is (ITCH: New York)
    username = "ALICE"           # soupbintcp: the login (url = "tcp://HOST:PORT"), and exactly
    password_env = "SOUP_PASS"   #   one of password_env, password_file or password (and session,
                                 #   heartbeat, timeout, reconnect_backoff[_max]; first_sequence:
                                 #   what the first login asks for, 0 = the newest)

Unknown keys, wrong types and bad values are one-line ConfigErrors naming the file (or --set)
and the dotted key.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lockstep.checks import config_int, kind_of, parse_duration, unknown_keys
from lockstep.data.recorder import soupbintcp, websocket
from lockstep.data.recorder.capture import HISTORY_STREAM, CaptureSettings
from lockstep.enums import FsyncPolicy, Transport
from lockstep.errors import AddressError, ConfigError
from lockstep.net import Address, parse_address
from lockstep.tomlconfig import apply_overrides, read_toml

__all__ = ["FEED_KINDS", "FeedSettings", "RecordConfig", "load_record_config"]

FEED_KINDS = ("moldudp64", "soupbintcp", "websocket")
_RECORD_KEYS = ("out", "prefix", "max_bytes", "window", "fsync", "ring_bytes", "metrics", "feeds")
_COMMON_FEED_KEYS = ("name", "kind", "url")
#: The keys each feed kind takes besides name, kind and url.
FEED_KEYS = {
    "moldudp64": ("interface", "retransmit", "session", "source", "receive_buffer",
                  "request_timeout", "request_attempts", "heartbeat_timeout", "date", "timezone",
                  "first_sequence"),
    "soupbintcp": soupbintcp.KEYS,
    "websocket": tuple(k for k in websocket.KEYS if k not in _COMMON_FEED_KEYS),
}
_TABLES = {(): ("record",), ("record",): _RECORD_KEYS}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@/-]{0,63}")
_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_URL_SCHEMES = {"moldudp64": ("udp",), "soupbintcp": ("tcp",), "websocket": ("ws", "wss")}


def _string(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError(key, f"must be a string, not {kind_of(value)}")
    return value


def _udp(key: str, value: object) -> Address | None:
    text = _string(key, value)
    if not text:
        return None
    try:
        address = parse_address(text)
    except AddressError as e:
        raise ConfigError(key, str(e)) from None
    if address.transport != Transport.UDP:
        raise ConfigError(key, f"{text!r} must be a udp:// address")
    return address


@dataclasses.dataclass(frozen=True, slots=True)
class FeedSettings:
    """One `[[record.feeds]]` table, checked. `options` holds the kind's own keys as given
    (frozen: a tuple of (key, value) pairs; an inline password left out), `retransmit` and
    `address` the parsed addresses of a moldudp64 feed, `websocket` and `soupbintcp` the settings
    of those kinds (checked by their own modules)."""

    name: str
    kind: str
    url: str
    options: tuple[tuple[str, Any], ...] = ()
    address: Address | None = None
    retransmit: Address | None = None
    request_timeout_ns: int = 200_000_000
    request_attempts: int = 5
    receive_buffer: int = 32 << 20
    websocket: websocket.WebSocketFeed | None = None
    soupbintcp: soupbintcp.SoupFeedSettings | None = None
    heartbeat_timeout_ns: int = 3_000_000_000
    date: _dt.date | None = None  #: the venue's session date; None: from the receive time
    timezone: str = "America/New_York"  #: the zone of the venue's midnight
    first_sequence: int = 1  #: where a MoldUDP64 session starts; 0: at the first datagram

    def option(self, key: str, default: Any = None) -> Any:
        return dict(self.options).get(key, default)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], prefix: str, *,
                  base_dir: Path = Path()) -> FeedSettings:
        if not isinstance(data, Mapping):
            raise ConfigError(prefix.rstrip("."), f"must be a table, not {kind_of(data)}")
        kind = data.get("kind")
        if kind not in FEED_KINDS:
            raise ConfigError(prefix + "kind", f"must be one of {', '.join(FEED_KINDS)}, not {kind!r}")
        unknown_keys(prefix, data, (*_COMMON_FEED_KEYS, *FEED_KEYS[kind]))
        for k in ("name", "url"):
            if k not in data:
                raise ConfigError(prefix + k, "missing")
        name = _string(prefix + "name", data["name"])
        if not _NAME.fullmatch(name) or name == HISTORY_STREAM:
            raise ConfigError(prefix + "name", f"{name!r} must be 1 to 64 letters, digits or _.@/- "
                                               f"(and not {HISTORY_STREAM!r})")
        url = _string(prefix + "url", data["url"])
        scheme = url.partition("://")[0]
        if scheme not in _URL_SCHEMES[kind]:
            raise ConfigError(prefix + "url", f"{url!r}: a {kind} feed takes "
                                              f"{' or '.join(s + '://' for s in _URL_SCHEMES[kind])}")
        kw: dict[str, Any] = {}
        if kind == "websocket":
            kw["websocket"] = websocket.WebSocketFeed.from_dict(data, prefix)
        if kind == "soupbintcp":
            kw["soupbintcp"] = soupbintcp.SoupFeedSettings.from_dict(data, prefix, base_dir=base_dir)
        if kind == "moldudp64":
            kw["address"] = _udp(prefix + "url", url)
            if "retransmit" in data:
                kw["retransmit"] = _udp(prefix + "retransmit", data["retransmit"])
            for k in ("interface", "session", "source"):
                if k in data:
                    _string(prefix + k, data[k])
            if len(data.get("session", "")) > 10:
                raise ConfigError(prefix + "session", "a MoldUDP64 session is at most 10 characters")
            if "request_timeout" in data:
                kw["request_timeout_ns"] = parse_duration(prefix + "request_timeout",
                                                          data["request_timeout"], positive=True)
            if "request_attempts" in data:
                kw["request_attempts"] = config_int(prefix + "request_attempts",
                                                    data["request_attempts"], 1000, 1)
            if "receive_buffer" in data:
                kw["receive_buffer"] = config_int(prefix + "receive_buffer", data["receive_buffer"],
                                                  1 << 31, 0)
            if "heartbeat_timeout" in data:
                kw["heartbeat_timeout_ns"] = parse_duration(prefix + "heartbeat_timeout",
                                                            data["heartbeat_timeout"], positive=True)
            kw.update(_venue_day(prefix, data))
            if "first_sequence" in data:
                kw["first_sequence"] = config_int(prefix + "first_sequence", data["first_sequence"],
                                                  1 << 62, 0)
        options = tuple(sorted((k, v) for k, v in data.items() if k in FEED_KEYS[kind]
                               and k != "password"))  # a soupbintcp password stays a Secret
        return cls(name=name, kind=kind, url=url, options=options, **kw)


def _venue_day(prefix: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """A moldudp64 feed's `date` and `timezone`: where its venue's ITCH timestamps count from."""
    kw: dict[str, Any] = {}
    date = _string(prefix + "date", data.get("date", ""))
    if date:
        try:
            kw["date"] = _dt.date.fromisoformat(date)
        except ValueError:
            raise ConfigError(prefix + "date", f"{date!r} is not a date like 2024-01-02") from None
    if "timezone" in data:
        zone = _string(prefix + "timezone", data["timezone"])
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(prefix + "timezone", f"{zone!r} is not a time zone name like "
                                                   f"America/New_York or UTC") from None
        kw["timezone"] = zone
    return kw


def _fsync(key: str, value: object) -> tuple[FsyncPolicy, int]:
    if value == "rotation":
        return FsyncPolicy.ROTATION, 1_000_000_000
    if value == "frame":
        return FsyncPolicy.FRAME, 1_000_000_000
    if isinstance(value, str) and value.strip() and value.strip()[0].isalpha():
        raise ConfigError(key, f'must be "rotation", "frame" or a duration like "1s", not {value!r}')
    return FsyncPolicy.INTERVAL, parse_duration(key, value, positive=True)


@dataclasses.dataclass(frozen=True, slots=True)
class RecordConfig:
    """The `[record]` table, checked: the feeds, where the capture goes and how it is written."""

    feeds: tuple[FeedSettings, ...]
    out: str = ""
    prefix: str = "capture"
    capture: CaptureSettings = dataclasses.field(default_factory=CaptureSettings)
    metrics: str = ""
    source: str = "record config"  #: the file it was read from, which errors about it name

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, base_dir: Path = Path()) -> RecordConfig:
        unknown_keys("", data, ("record",))
        rec = data.get("record")
        if rec is None:
            raise ConfigError("record", "missing (a [record] table with record.feeds)")
        unknown_keys("record.", rec, _RECORD_KEYS)
        raw_feeds = rec.get("feeds")
        if not isinstance(raw_feeds, (list, tuple)) or not raw_feeds:
            raise ConfigError("record.feeds", "must be a non-empty list of feed tables")
        feeds = tuple(FeedSettings.from_dict(f, f"record.feeds[{i}].", base_dir=base_dir)
                      for i, f in enumerate(raw_feeds))
        seen: set[str] = set()
        for i, f in enumerate(feeds):
            if f.name in seen:
                raise ConfigError(f"record.feeds[{i}].name", f"{f.name!r} is used twice")
            seen.add(f.name)
        kw: dict[str, Any] = {}
        if "out" in rec:
            kw["out"] = _string("record.out", rec["out"])
        if "prefix" in rec:
            prefix = _string("record.prefix", rec["prefix"])
            if not _PREFIX.fullmatch(prefix):
                raise ConfigError("record.prefix", f"{prefix!r} must be 1 to 64 letters, digits or _.-")
            kw["prefix"] = prefix
        if "metrics" in rec:
            kw["metrics"] = _string("record.metrics", rec["metrics"])
        cap: dict[str, Any] = {}
        if "max_bytes" in rec:
            cap["max_bytes"] = config_int("record.max_bytes", rec["max_bytes"], 1 << 62, 1)
        if "window" in rec:
            cap["window_ns"] = parse_duration("record.window", rec["window"])
        if "fsync" in rec:
            cap["fsync"], cap["fsync_interval_ns"] = _fsync("record.fsync", rec["fsync"])
        if "ring_bytes" in rec:
            ring = config_int("record.ring_bytes", rec["ring_bytes"], 1 << 34, 1 << 12)
            if ring & (ring - 1):
                raise ConfigError("record.ring_bytes", f"{ring} is not a power of two")
            cap["ring_bytes"] = ring
        return cls(feeds=feeds, capture=CaptureSettings(**cap), **kw)


def load_record_config(path: str | os.PathLike[str], overrides: Sequence[str] = ()) -> RecordConfig:
    """Reads a TOML recorder config and applies overrides."""
    source = os.fspath(path)
    data = apply_overrides(read_toml(Path(path)), overrides, tables=_TABLES)
    try:
        return dataclasses.replace(RecordConfig.from_dict(data, base_dir=Path(path).parent),
                                   source=source)
    except ConfigError as e:
        if type(e) is ConfigError and e.source == "risk config":  # raised by a shared check
            raise ConfigError(e.key, e.reason, source=source) from None
        raise
