"""The loopback venue's configuration: a TOML file, `--set key=value` overrides, frozen settings.

    cfg = load_venue_config("venue.toml", overrides=['venue.speed="max"'])

Schema (defaults shown; only `dataset` is required, and `--dataset` gives it too):

    dataset = "synth-l3-100000-s1"   # canonical dataset name under DATA/canonical, or a path/URI
    [venue]
    feed = "udp://127.0.0.1:0"       # where the ITCH/MoldUDP64 feed goes (a multicast group allowed)
    retransmit = "udp://127.0.0.1:0" # where the MoldUDP64 re-request server listens
    order_entry = "tcp://127.0.0.1:0"  # where OUCH over SoupBinTCP listens
    feed_soupbintcp = ""             # where the ITCH feed is also served over SoupBinTCP to
                                     # venue.users ("tcp://127.0.0.1:0"); "" = not served
    snapshot = ""                    # where book snapshots are served over SoupBinTCP to
                                     # venue.users (a loopback "tcp://127.0.0.1:0"); "" = not served
    users = []                       # [{username = "...", password = "..."}]: order-entry accounts
    speed = 1.0                      # ts_event pacing factor (> 0; 2.0 = twice as fast), or "max"
    history = 1_000_000              # messages kept for retransmission requests (>= 1)
    session = "LOCKSTEP"             # MoldUDP64 session: 1-10 letters or digits
    heartbeat = "1s"                 # a heartbeat after this long without a packet
    linger = "1s"                    # serving on after the feed's End of Session (retransmission
                                     # requests, orders); --duration and a signal end it sooner
    show_own_orders = true           # the feed shows our resting orders like anyone's

Port 0 asks for any free port. Unknown keys, wrong types and bad values are one-line ConfigErrors
naming the file (or --set) and the dotted key. Passwords never appear in a repr, a log or output.
"""
from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lockstep.checks import (
    config_int,
    format_duration,
    kind_of,
    parse_duration,
    unknown_keys,
)
from lockstep.enums import Transport
from lockstep.errors import ConfigError
from lockstep.logins import (
    PASSWORD_WIDTH,
    USERNAME_WIDTH,
    address_setting,
    credential_setting,
)
from lockstep.net import LOOPBACK, Address
from lockstep.tomlconfig import apply_overrides, read_toml

__all__ = ["MAX_SPEED", "User", "VenueConfig", "VenueSettings", "load_venue_config"]

#: The `venue.speed` that sends as fast as possible.
MAX_SPEED = "max"

_TOP_KEYS = ("dataset", "venue")
_VENUE_KEYS = ("feed", "retransmit", "order_entry", "users", "speed", "history", "session",
               "heartbeat", "linger", "show_own_orders", "feed_soupbintcp", "snapshot")
_USER_KEYS = ("username", "password")
_TABLES = {(): _TOP_KEYS, ("venue",): _VENUE_KEYS}
_SESSION = re.compile(r"[A-Za-z0-9]{1,10}")


@dataclasses.dataclass(frozen=True, slots=True)
class User:
    """An order-entry account (SoupBinTCP login). The password is left out of repr."""

    username: str
    password: str = dataclasses.field(repr=False)


def _users(key: str, value: object) -> tuple[User, ...]:
    if not isinstance(value, (list, tuple)):
        raise ConfigError(key, f"must be a list of {{username, password}} tables, not {kind_of(value)}")
    users: list[User] = []
    for i, item in enumerate(value):
        at = f"{key}[{i}]"
        unknown_keys(at + ".", item, _USER_KEYS)
        for k in _USER_KEYS:
            if k not in item:
                raise ConfigError(f"{at}.{k}", "missing")
        name = credential_setting(f"{at}.username", item["username"], USERNAME_WIDTH)
        if any(u.username == name for u in users):
            raise ConfigError(f"{at}.username", f"{name!r} is listed twice")
        users.append(User(name, credential_setting(f"{at}.password", item["password"], PASSWORD_WIDTH)))
    return tuple(users)


def _speed(key: str, value: object) -> float | None:
    if value == MAX_SPEED:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(key, f'must be a number > 0 or "max", not {value!r}')
    if not 0 < value < float("inf"):
        raise ConfigError(key, f'must be a number > 0 or "max", not {value!r}')
    return float(value)


_ANY_UDP = Address(Transport.UDP, LOOPBACK, 0)
_ANY_TCP = Address(Transport.TCP, LOOPBACK, 0)


@dataclasses.dataclass(frozen=True, slots=True)
class VenueSettings:
    """The `[venue]` table, checked."""

    feed: Address = _ANY_UDP
    retransmit: Address = _ANY_UDP
    order_entry: Address = _ANY_TCP
    users: tuple[User, ...] = ()
    speed: float | None = 1.0  #: None: as fast as possible ("max")
    history: int = 1_000_000
    session: str = "LOCKSTEP"
    heartbeat_ns: int = 1_000_000_000
    linger_ns: int = 1_000_000_000
    show_own_orders: bool = True
    feed_soupbintcp: Address | None = None  #: None: the feed is not served over SoupBinTCP
    snapshot: Address | None = None  #: None: no book snapshots are served

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], prefix: str = "venue.") -> VenueSettings:
        unknown_keys(prefix, data, _VENUE_KEYS)
        kw: dict[str, Any] = {}
        for k, transport in (("feed", Transport.UDP), ("retransmit", Transport.UDP),
                             ("order_entry", Transport.TCP)):
            if k in data:
                kw[k] = address_setting(prefix + k, data[k], transport)
        if "retransmit" in kw and kw["retransmit"].is_multicast:
            raise ConfigError(prefix + "retransmit", "must be a unicast address (requests are answered to their sender)")
        if "users" in data:
            kw["users"] = _users(prefix + "users", data["users"])
        if "speed" in data:
            kw["speed"] = _speed(prefix + "speed", data["speed"])
        if "history" in data:
            kw["history"] = config_int(prefix + "history", data["history"], 1 << 40, 1)
        if "session" in data:
            session = data["session"]
            if not isinstance(session, str) or not _SESSION.fullmatch(session):
                raise ConfigError(prefix + "session", f"must be 1 to 10 letters or digits, not {session!r}")
            kw["session"] = session
        if "heartbeat" in data:
            kw["heartbeat_ns"] = parse_duration(prefix + "heartbeat", data["heartbeat"], positive=True)
        if "linger" in data:
            kw["linger_ns"] = parse_duration(prefix + "linger", data["linger"])
        if "show_own_orders" in data:
            if not isinstance(data["show_own_orders"], bool):
                raise ConfigError(prefix + "show_own_orders", f"must be true or false, not {kind_of(data['show_own_orders'])}")
            kw["show_own_orders"] = data["show_own_orders"]
        for k in ("feed_soupbintcp", "snapshot"):
            if data.get(k, "") == "":
                continue
            kw[k] = address_setting(prefix + k, data[k], Transport.TCP)
            if not kw.get("users"):
                raise ConfigError(prefix + k, f"needs {prefix}users: the accounts that may log in to it")
        if "snapshot" in kw and not kw["snapshot"].host.startswith("127."):
            raise ConfigError(prefix + "snapshot", f"must be a loopback address (127.x.x.x), not "
                                                   f"{kw['snapshot'].host}")
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        """The table as TOML values, passwords left out."""
        return {"feed": str(self.feed), "retransmit": str(self.retransmit),
                "order_entry": str(self.order_entry),
                "users": [{"username": u.username} for u in self.users],
                "speed": MAX_SPEED if self.speed is None else self.speed, "history": self.history,
                "session": self.session, "heartbeat": format_duration(self.heartbeat_ns),
                "linger": format_duration(self.linger_ns),
                "show_own_orders": self.show_own_orders,
                "feed_soupbintcp": "" if self.feed_soupbintcp is None else str(self.feed_soupbintcp),
                "snapshot": "" if self.snapshot is None else str(self.snapshot)}


@dataclasses.dataclass(frozen=True, slots=True)
class VenueConfig:
    """One loopback venue run: the dataset it replays and how it serves it."""

    dataset: str
    venue: VenueSettings = VenueSettings()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VenueConfig:
        unknown_keys("", data, _TOP_KEYS)
        dataset = data.get("dataset")
        if dataset is None:
            raise ConfigError("dataset", "missing (give it in the file, with --set or --dataset)")
        if not isinstance(dataset, str) or not dataset:
            raise ConfigError("dataset", f"must be a dataset name or path, not {dataset!r}")
        return cls(dataset, VenueSettings.from_dict(data.get("venue", {})))


def load_venue_config(path: str | os.PathLike[str], overrides: Sequence[str] = (), *,
                      dataset: str | None = None) -> VenueConfig:
    """Reads a TOML venue config and applies overrides (then `dataset`, if given)."""
    source = os.fspath(path)
    data = apply_overrides(read_toml(Path(path)), overrides, tables=_TABLES)
    if dataset is not None:
        data["dataset"] = dataset
    try:
        return VenueConfig.from_dict(data)
    except ConfigError as e:
        if type(e) is ConfigError and e.source == "risk config":  # raised by a shared check
            raise ConfigError(e.key, e.reason, source=source) from None
        raise
