"""A live node's configuration: a backtest config with a `[live]` table.

    cfg = load_live_config("mm_live.toml", overrides=["live.cpu=1"])
    cfg.strategy, cfg.risk, cfg.queue          # the backtest schema's settings, as a backtest has them
    cfg.live.order_entry                       # Address("tcp", "127.0.0.1", 9001)
    cfg.live.password.reveal()                 # the one way to read the password
    dump_toml(cfg.to_dict())                   # the resolved config, the password left out

Everything a backtest config holds (name, dataset, instruments, strategy and its params, risk
limits, queue limits, output) means the same here and is read by lockstep.backtest.config, so
the file a strategy was backtested with runs it live once it gains a `[live]` table. The
dataset names the instruments traded (their symbols, increments and book type); `[venue]` may
stay: its `order_rules` are the venue's rules Risk checks, its fees (`maker_fee_bps`,
`taker_fee_bps`) are charged on live fills as the backtest charged them (OUCH reports none), and
its simulated-venue models (latency, queue position) have no meaning live and are ignored.

Schema of `[live]` (defaults shown; feed, retransmit, order_entry, username and one of the
password keys are required; same key names as the loopback venue's `[venue]`):

    [live]
    feed = "udp://233.1.1.1:9000"    # where the ITCH/MoldUDP64 feed arrives (a multicast group allowed)
    retransmit = "udp://127.0.0.1:9001"  # the MoldUDP64 re-request server (unicast)
    order_entry = "tcp://127.0.0.1:9002" # OUCH over SoupBinTCP
    username = "demo"                # SoupBinTCP login: 1-6 printable ASCII characters
    password_env = "LOCKSTEP_PASSWORD"   # exactly one of: password_env (an environment variable),
    # password_file = "secret.txt"   #   password_file (a file only its owner may read; relative
    # password = "..."               #   to the config file) or password (inline; avoid)
    session = ""                     # the MoldUDP64 / SoupBinTCP session; "" = the venue's current
    flush_interval = "1s"            # execution records reach disk at least this often (a crash
                                     # loses at most this much)
    cancel_on_shutdown = true        # SIGINT / SIGTERM cancel every open order before logging out
    cancel_timeout = "2s"            # how long to wait for those cancels to be acknowledged
    reconnect_backoff = "100ms"      # first wait before reconnecting a lost order-entry session,
    reconnect_backoff_max = "5s"     #   doubling up to this
    heartbeat_interval = "1s"        # our SoupBinTCP heartbeats when otherwise silent
    session_timeout = "15s"          # the order-entry session is lost after this long without a message
    feed_timeout = "5s"              # the feed is lost after this long without a packet (heartbeats count)
    gap_timeout = "1s"               # a feed gap not filled by retransmission within this: the book is invalid
    snapshot = ""                    # book snapshots over SoupBinTCP (the loopback venue's
                                     # venue.snapshot), which rebuild invalid books; "" = none: a
                                     # book a gap made invalid stays so
    snapshot_timeout = "5s"          # a snapshot not read whole within this is given up (and
                                     # asked again this long after)
    metrics = ""                     # Prometheus endpoint, HOST:PORT (port 0: any free one;
                                     # `ctl status` says which); "" = none
    answer_timeout = "5s"            # an order whose request the venue has not answered for this
                                     # long is reported (ctl status, a warning; never acted on)
    control = ""                     # control socket: a path (relative to the config file) or
                                     # tcp://127.0.0.1:PORT; "" = ROOT/live/<name>.sock
    busy_poll = false                # spin instead of sleeping in the event loop
    cpu = -1                         # pin the node's thread to this CPU; -1 = no pinning

Every unknown key, wrong type or bad value is a ConfigError naming the file and the dotted key,
raised by load_live_config before anything connects. The password is a Secret: it never
appears in a repr, str, error, log, the resolved config or a record; the resolved config says
where it came from (password_env or password_file), and an inline password is left out of it.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lockstep.backtest.config import (
    FREE_TABLES,
    SCHEMA_TABLES,
    BacktestConfig,
    LimitSettings,
    OutputSettings,
    QueueSettings,
    RiskSettings,
    StrategyConfig,
    load_strategy_class,
    validate_params,
)
from lockstep.checks import (
    config_int,
    format_duration,
    kind_of,
    parse_duration,
    unknown_keys,
)
from lockstep.core.strategy import params_type
from lockstep.enums import Transport
from lockstep.errors import ConfigError, ControlError
from lockstep.live.control import check_endpoint
from lockstep.logins import (
    PASSWORD_KEYS,
    USERNAME_WIDTH,
    Secret,
    address_setting,
    credential_setting,
    password_setting,
)
from lockstep.net import Address
from lockstep.tomlconfig import apply_overrides, read_toml

__all__ = ["LiveConfig", "LiveSettings", "load_live_config"]

_REQUIRED = ("feed", "retransmit", "order_entry", "username")
# Durations: key -> (default ns, must be > 0).
_DURATIONS = {
    "flush_interval": (1_000_000_000, True),
    "cancel_timeout": (2_000_000_000, False),
    "reconnect_backoff": (100_000_000, True),
    "reconnect_backoff_max": (5_000_000_000, True),
    "heartbeat_interval": (1_000_000_000, True),
    "session_timeout": (15_000_000_000, True),
    "feed_timeout": (5_000_000_000, True),
    "gap_timeout": (1_000_000_000, True),
    "answer_timeout": (5_000_000_000, True),
    "snapshot_timeout": (5_000_000_000, True),
}
_BOOLS = {"cancel_on_shutdown": True, "busy_poll": False}
_LIVE_KEYS = (*_REQUIRED, *PASSWORD_KEYS, "session", *_DURATIONS, *_BOOLS, "control", "cpu",
              "snapshot", "metrics")
_MAX_CPU = 4095  # CPU_SETSIZE - 1 on Linux
# SoupBinTCP login: the requested session's width.
_SESSION_WIDTH = 10

#: The live config's schema for apply_overrides: the backtest's tables and [live].
LIVE_TABLES = {**SCHEMA_TABLES, (): (*SCHEMA_TABLES[()], "live"), ("live",): _LIVE_KEYS}


@dataclasses.dataclass(frozen=True, slots=True)
class LiveSettings:
    """The `[live]` table, checked (durations in int ns; see the module docstring)."""

    feed: Address
    retransmit: Address
    order_entry: Address
    username: str
    password: Secret
    password_env: str = ""  #: the environment variable the password came from, if one
    password_file: str = ""  #: the file (absolute path) the password came from, if one
    session: str = ""
    flush_interval_ns: int = _DURATIONS["flush_interval"][0]
    cancel_on_shutdown: bool = True
    cancel_timeout_ns: int = _DURATIONS["cancel_timeout"][0]
    reconnect_backoff_ns: int = _DURATIONS["reconnect_backoff"][0]
    reconnect_backoff_max_ns: int = _DURATIONS["reconnect_backoff_max"][0]
    heartbeat_interval_ns: int = _DURATIONS["heartbeat_interval"][0]
    session_timeout_ns: int = _DURATIONS["session_timeout"][0]
    feed_timeout_ns: int = _DURATIONS["feed_timeout"][0]
    gap_timeout_ns: int = _DURATIONS["gap_timeout"][0]
    answer_timeout_ns: int = _DURATIONS["answer_timeout"][0]
    snapshot_timeout_ns: int = _DURATIONS["snapshot_timeout"][0]
    snapshot: Address | None = None  #: None: no snapshots
    metrics: Address | None = None  #: the Prometheus endpoint; None: none
    control: str = ""  #: an absolute socket path or tcp://127.x.x.x:PORT; "" = the default
    busy_poll: bool = False
    cpu: int = -1  #: -1: not pinned

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, base_dir: Path,
                  environ: Mapping[str, str], prefix: str = "live.") -> LiveSettings:
        unknown_keys(prefix, data, _LIVE_KEYS)
        for k in _REQUIRED:
            if k not in data:
                raise ConfigError(prefix + k, "missing")
        kw: dict[str, Any] = {}
        for k, transport in (("feed", Transport.UDP), ("retransmit", Transport.UDP),
                             ("order_entry", Transport.TCP)):
            kw[k] = address_setting(prefix + k, data[k], transport)
            if kw[k].port == 0:
                raise ConfigError(prefix + k, "needs the venue's port, not 0")
        if data.get("snapshot", "") != "":
            kw["snapshot"] = address_setting(prefix + "snapshot", data["snapshot"], Transport.TCP)
            if kw["snapshot"].port == 0:
                raise ConfigError(prefix + "snapshot", "needs the venue's port, not 0")
        if data.get("metrics", "") != "":
            value = data["metrics"]
            if isinstance(value, str) and "://" not in value:
                value = "tcp://" + value
            kw["metrics"] = address_setting(prefix + "metrics", value, Transport.TCP)
        if kw["retransmit"].is_multicast:
            raise ConfigError(prefix + "retransmit", "must be a unicast address (the server answers its sender)")
        kw["username"] = credential_setting(prefix + "username", data["username"], USERNAME_WIDTH)
        kw.update(password_setting(data, prefix, base_dir, environ))
        if "session" in data:
            session = data["session"]
            if not isinstance(session, str) or len(session) > _SESSION_WIDTH or \
                    not (session == "" or session.isascii() and session.isalnum()):
                raise ConfigError(prefix + "session", f"must be up to {_SESSION_WIDTH} letters or digits, not {session!r}")
            kw["session"] = session
        for k, (_, positive) in _DURATIONS.items():
            if k in data:
                kw[k + "_ns"] = parse_duration(prefix + k, data[k], positive=positive)
        if kw.get("reconnect_backoff_max_ns", _DURATIONS["reconnect_backoff_max"][0]) < \
                kw.get("reconnect_backoff_ns", _DURATIONS["reconnect_backoff"][0]):
            raise ConfigError(prefix + "reconnect_backoff_max", "must be >= live.reconnect_backoff")
        for k in _BOOLS:
            if k in data:
                if not isinstance(data[k], bool):
                    raise ConfigError(prefix + k, f"must be true or false, not {kind_of(data[k])}")
                kw[k] = data[k]
        if "control" in data:
            kw["control"] = _control(prefix + "control", data["control"], base_dir)
        if "cpu" in data:
            kw["cpu"] = config_int(prefix + "cpu", data["cpu"], _MAX_CPU, -1)
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        """The table as TOML values. The password itself is never in it: where it came from
        (password_env or password_file) is, and an inline password is left out."""
        out: dict[str, Any] = {
            "feed": str(self.feed), "retransmit": str(self.retransmit),
            "order_entry": str(self.order_entry), "username": self.username,
            "snapshot": "" if self.snapshot is None else str(self.snapshot),
            "metrics": "" if self.metrics is None else f"{self.metrics.host}:{self.metrics.port}",
        }
        if self.password_env:
            out["password_env"] = self.password_env
        if self.password_file:
            out["password_file"] = self.password_file
        out["session"] = self.session
        for k in _DURATIONS:
            out[k] = format_duration(getattr(self, k + "_ns"))
        for k in _BOOLS:
            out[k] = getattr(self, k)
        out["control"] = self.control
        out["cpu"] = self.cpu
        return out


def _control(key: str, value: object, base_dir: Path) -> str:
    if not isinstance(value, str):
        raise ConfigError(key, f"must be a socket path or tcp://127.0.0.1:PORT, not {kind_of(value)}")
    if not value:
        return ""
    if "://" not in value and not os.path.isabs(value):
        value = str(base_dir / value)
    try:
        return check_endpoint(value)
    except ControlError as e:
        raise ConfigError(key, str(e)) from None


@dataclasses.dataclass(frozen=True, slots=True)
class LiveConfig:
    """One live node: the backtest schema's settings (`backtest`) and the `[live]` table."""

    backtest: BacktestConfig
    live: LiveSettings

    @property
    def name(self) -> str:
        return self.backtest.name

    @property
    def dataset(self) -> str:
        return self.backtest.dataset

    @property
    def instruments(self) -> tuple[str, ...]:
        return self.backtest.instruments

    @property
    def strategy(self) -> StrategyConfig:
        return self.backtest.strategy

    @property
    def risk(self) -> RiskSettings:
        return self.backtest.risk

    def limits_for(self, symbol: str) -> LimitSettings:
        return self.backtest.risk.limits_for(symbol)

    @property
    def queue(self) -> QueueSettings:
        return self.backtest.queue

    @property
    def output(self) -> OutputSettings:
        return self.backtest.output

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, base_dir: str | os.PathLike[str],
                  default_name: str = "live", source: str = "config",
                  environ: Mapping[str, str] | None = None) -> LiveConfig:
        """Validates a TOML-shaped table (see BacktestConfig.from_dict); `environ` is where
        live.password_env is looked up (os.environ by default)."""
        if not isinstance(data, Mapping):
            raise ConfigError("", f"must be a table, not {kind_of(data)}", source=source)
        rest = {k: v for k, v in data.items() if k != "live"}
        backtest = BacktestConfig.from_dict(rest, base_dir=base_dir, default_name=default_name,
                                            source=source)
        if "live" not in data:
            raise ConfigError("live", "missing (the table of venue endpoints and credentials)", source=source)
        try:
            live = LiveSettings.from_dict(data["live"], base_dir=Path(base_dir),
                                          environ=os.environ if environ is None else environ)
        except ConfigError as e:
            if type(e) is ConfigError and e.source == "risk config":  # raised by a shared check
                raise ConfigError(e.key, e.reason, source=source) from None
            raise
        return cls(backtest, live)

    def to_dict(self) -> dict[str, Any]:
        """The resolved config (LiveSettings.to_dict says what happens to the password)."""
        return {**self.backtest.to_dict(), "live": self.live.to_dict()}

    def with_checked_strategy(self, base_dir: str | os.PathLike[str] = ".") -> LiveConfig:
        """This config with the strategy class loaded and [strategy.params] validated by its
        Params (defaults filled in): the checks a backtest makes before it runs, so that a
        bad strategy key is named before anything connects."""
        cls = load_strategy_class(self.strategy.path, base_dir=base_dir)
        params = validate_params(params_type(cls), self.strategy.params, strategy=cls.__name__)
        if params is None:
            return self
        return dataclasses.replace(self, backtest=self.backtest.with_params(params))


def load_live_config(path: str | os.PathLike[str], overrides: Sequence[str] = (), *,
                     environ: Mapping[str, str] | None = None) -> LiveConfig:
    """Reads a TOML live config, applies `--set key=value` overrides, validates."""
    p = Path(path)
    data = apply_overrides(read_toml(p), overrides, tables=LIVE_TABLES, free_tables=FREE_TABLES)
    return LiveConfig.from_dict(data, base_dir=p.resolve().parent, default_name=p.stem,
                                source=os.fspath(path), environ=environ)
