"""Backtest configuration: a TOML file, `--set key=value` overrides, frozen typed settings.

    cfg = load_config("mm.toml", overrides=["risk.max_position=0.5", 'venue.queue_model="probabilistic"'])
    cfg.risk.limits_for("BTCUSDT").max_position      # Decimal("0.5")
    (run_dir / "config.toml").write_text(dump_toml(cfg.to_dict()))   # lockstep.tomlconfig
    load_config(run_dir / "config.toml") == cfg      # the resolved config reloads to an equal one

Reading the file, the overrides and writing TOML back are lockstep.tomlconfig's (shared by every
config); this module is the backtest schema. Every unknown key, wrong type or out-of-range value raises ConfigError naming the full dotted key,
e.g. `mm.toml: venue.latency.entry: must be a duration like "1ms" or an int of ns, not list`.
Real quantities (risk limits, fees) are Decimals and durations int nanoseconds (lockstep.checks
holds the one duration grammar). Each settings class's `to_core()` gives the core's typed config
(lockstep.core.risk.RiskConfig with limits in each instrument's ticks and lots,
lockstep.core.queue.QueueConfig, lockstep.venue.matching.SimulatedVenueConfig), which the
Engine packs into the C++ structs. The strategy class and custom risk rules a config names are
loaded here too (load_strategy_class, load_risk_rules), and its params checked (validate_params).

Schema (defaults shown; only `dataset` and `strategy.path` are required):

    name = "<config file stem>"     # run name: letters, digits, '.', '_', '-'
    dataset = "synthetic-l2"        # canonical dataset name under DATA/canonical, or a path/URI;
                                    # a relative path is resolved against the config file's
                                    # directory only if it exists there, else kept as given
    instruments = []                # symbols to trade; [] = every instrument of the dataset
    seed = 0                        # int >= 0
    [strategy]
    path = "pkg.module:Class"       # or "file.py:Class" (relative to the config file's directory)
    [strategy.params]               # free-form; validated by the strategy's Params (validate_params)
    [risk]                          # real units; 0 = no limit
    max_order_qty = "0"             # base units (int, float or decimal string)
    max_order_notional = "0"        # quote units
    max_position = "0"              # base units, absolute
    max_open_orders = 0
    price_band_bps = 0
    max_open_orders_total = 0
    rate_per_second = 0
    burst = 0                       # >= 1 when rate_per_second > 0
    mode = "active"                 # active | reduce_only | halted
    kill_switch = false
    custom_rules = []               # "module:function" / "file.py:function" Python rules
    [risk.instruments.BTCUSDT]      # per-symbol overrides of the five limits above
    [queue]
    rate_per_second = 0
    burst = 0                       # >= 1 when rate_per_second > 0
    max_in_flight_per_instrument = 0
    capacity = 4096                 # >= 1
    [venue]
    queue_model = "conservative"    # conservative | probabilistic
    queue_power = 2.0               # probabilistic model exponent, > 0
    maker_fee_bps = "0"             # may be negative (a rebate); a whole number of ppm
    taker_fee_bps = "0"
    [venue.order_rules.BTCUSDT]     # the venue's order-entry rules of a symbol, real units, over
    tick_size = "0.01"              # the dataset's (docs/encoding.md); "0" removes one; an
    lot_size = "0.00001"            # instrument with none is not checked; Risk denies and the
    min_qty = "0.00001"             # simulated venue rejects an order that breaks one
    min_notional = "5"
    [venue.latency]
    model = "constant"              # constant | lognormal | feed
    entry = "1ms"                   # int ns, or a number with a unit ns | us | ms | s | m | h
    response = "1ms"
    sigma = 0.0                     # lognormal only, >= 0
    feed_multiplier = 1.0           # feed only, >= 0
    [output]
    sample_interval = "1s"          # > 0
    report = true
"""
from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.util
import math
import os
import re
import sys
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from lockstep.checks import (
    INT64_MAX,
    UINT32_MAX,
    UINT64_MAX,
    config_int,
    config_label,
    format_duration,
    kind_of,
    parse_duration,
    unknown_keys,
)
from lockstep.core.queue import QueueConfig
from lockstep.core.risk import RiskConfig, RiskLimits
from lockstep.data.dataset import ORDER_RULE_FIELDS, Instrument
from lockstep.enums import LatencyKind, QueueModel, TradingMode
from lockstep.errors import ConfigError
from lockstep.tomlconfig import (
    FrozenMap,
    apply_overrides,
    dotted_key,
    freeze,
    read_toml,
    thaw,
)
from lockstep.venue.matching import LatencyConfig, SimulatedVenueConfig

# --------------------------------------------------------------------------------------------
# Value parsers (the shared checks and the duration grammar are lockstep.checks)


def parse_decimal(key: str, value: object, *, non_negative: bool = False) -> Decimal:
    """A finite Decimal from an int, a float (via its shortest repr: 0.1 -> Decimal("0.1")) or a
    decimal string."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise ConfigError(key, f"must be a number or a decimal string, not {kind_of(value)}")
    try:
        d = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        raise ConfigError(key, f"{value!r} is not a decimal number") from None
    if not d.is_finite():
        raise ConfigError(key, f"must be finite, not {value!r}")
    if non_negative and d < 0:
        raise ConfigError(key, f"must be >= 0, not {value!r}")
    return d


def _float(key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(key, f"must be a number, not {kind_of(value)}")
    f = float(value)
    if not math.isfinite(f):
        raise ConfigError(key, f"must be finite, not {value!r}")
    return f


def _bool(key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(key, f"must be true or false, not {kind_of(value)}")
    return value


def _str(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError(key, f"must be a string, not {kind_of(value)}")
    return value


def _table(key: str, value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(key, f"must be a table, not {kind_of(value)}")
    return value


# --------------------------------------------------------------------------------------------
# Settings


@dataclasses.dataclass(frozen=True, slots=True)
class StrategyConfig:
    """`path` is "package.module:Class" or "/abs/file.py:Class" (file paths made absolute at
    load); `params` the free-form [strategy.params] table, checked by validate_params()."""

    path: str
    params: Mapping[str, Any] = dataclasses.field(default_factory=FrozenMap)

    @property
    def is_file(self) -> bool:
        """True when the strategy is named by a .py file rather than a module."""
        return _is_file_target(self.path.rpartition(":")[0])

    @property
    def target(self) -> tuple[str, str]:
        """(module or file, class name)."""
        module, _, cls = self.path.rpartition(":")
        return module, cls


_LIMIT_DECIMALS = ("max_order_qty", "max_order_notional", "max_position")
_LIMIT_INTS = ("max_open_orders", "price_band_bps")
_LIMIT_KEYS = (*_LIMIT_DECIMALS, *_LIMIT_INTS)


@dataclasses.dataclass(frozen=True, slots=True)
class LimitSettings:
    """Per-instrument risk limits in real units; 0 means no limit."""

    max_order_qty: Decimal = Decimal(0)  # base units
    max_order_notional: Decimal = Decimal(0)  # quote units
    max_position: Decimal = Decimal(0)  # base units, absolute
    max_open_orders: int = 0
    price_band_bps: int = 0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, prefix: str,
                  base: LimitSettings | None = None) -> LimitSettings:
        """Limits from the five keys of `data` (others are not looked at); missing keys come
        from `base`, else the defaults."""
        kw = {f: getattr(base, f) for f in _LIMIT_KEYS} if base is not None else {}
        for f in _LIMIT_DECIMALS:
            if f in data:
                kw[f] = parse_decimal(prefix + f, data[f], non_negative=True)
        for f in _LIMIT_INTS:
            if f in data:
                kw[f] = config_int(prefix + f, data[f], UINT32_MAX)
        return cls(**kw)

    def to_core(self, inst: Instrument, *, key: str = "risk") -> RiskLimits:
        """These limits in the core's units for `inst`: quantities in lots, the notional in
        price ticks x lots (rounded down: never more than asked, at most int64). A quantity that
        is not a whole number of lots is a ConfigError on `key`.<field>."""
        notional_unit = Decimal(inst.price_increment) * Decimal(inst.size_increment)
        notional = int(self.max_order_notional / notional_unit)
        with _core_keys(f"{key}."):
            return RiskLimits(
                max_order_qty=_lots(f"{key}.max_order_qty", self.max_order_qty, inst),
                max_order_notional=min(notional, INT64_MAX),
                max_position=_lots(f"{key}.max_position", self.max_position, inst),
                max_open_orders=self.max_open_orders,
                price_band_bps=self.price_band_bps,
            )


def _lots(key: str, value: Decimal, inst: Instrument) -> int:
    try:
        return inst.to_lots(value)
    except ValueError as e:
        raise ConfigError(key, str(e), source="config") from None


@contextlib.contextmanager
def _core_keys(prefix: str) -> Iterator[None]:
    """A ConfigError of a core config built inside (keyed by its own field names, from the
    source "risk config") re-keyed under this config's `prefix`."""
    try:
        yield
    except ConfigError as e:
        if e.source != "risk config":
            raise
        raise ConfigError(prefix + e.key, e.reason, source="config") from None


_RISK_INTS = ("max_open_orders_total", "rate_per_second", "burst")
_RISK_KEYS = (*_LIMIT_KEYS, *_RISK_INTS, "mode", "kill_switch", "custom_rules", "instruments")


@dataclasses.dataclass(frozen=True, slots=True)
class RiskSettings:
    """[risk]: the default per-instrument limits, the global settings and per-symbol limits
    (already merged over the defaults). `mode` is a lowercase TradingMode name."""

    max_order_qty: Decimal = Decimal(0)
    max_order_notional: Decimal = Decimal(0)
    max_position: Decimal = Decimal(0)
    max_open_orders: int = 0
    price_band_bps: int = 0
    max_open_orders_total: int = 0
    rate_per_second: int = 0
    burst: int = 0
    mode: str = "active"
    kill_switch: bool = False
    # "module:function" or "file.py:function" rules, each (Intent, RiskView) -> RiskReason|None;
    # asked about submits/replaces the built-in checks allowed (docs/risk.md, custom rules).
    custom_rules: tuple[str, ...] = ()
    instruments: Mapping[str, LimitSettings] = dataclasses.field(default_factory=FrozenMap)

    @property
    def default_limits(self) -> LimitSettings:
        """The [risk] limits that apply to an instrument without its own table."""
        return LimitSettings(**{f: getattr(self, f) for f in _LIMIT_KEYS})

    def limits_for(self, symbol: str) -> LimitSettings:
        """The limits of `symbol`: its [risk.instruments.<symbol>] overrides over the defaults."""
        limits = self.instruments.get(symbol)
        return limits if limits is not None else self.default_limits

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, prefix: str = "risk.") -> RiskSettings:
        unknown_keys(prefix, data, _RISK_KEYS)
        base = LimitSettings.from_dict(data, prefix=prefix)
        kw: dict[str, Any] = {f: getattr(base, f) for f in _LIMIT_KEYS}
        for f in _RISK_INTS:
            if f in data:
                kw[f] = config_int(prefix + f, data[f], UINT32_MAX)
        if kw.get("rate_per_second", 0) > 0 and kw.get("burst", 0) == 0:
            raise ConfigError(prefix + "burst", "must be >= 1 when rate_per_second > 0")
        if "mode" in data:
            kw["mode"] = config_label(prefix + "mode", data["mode"], TradingMode).label
        if "kill_switch" in data:
            kw["kill_switch"] = _bool(prefix + "kill_switch", data["kill_switch"])
        if "custom_rules" in data:
            rules = data["custom_rules"]
            if not isinstance(rules, (list, tuple)):
                raise ConfigError(prefix + "custom_rules", f"must be a list of 'module:function' strings, not {kind_of(rules)}")
            for k, r in enumerate(rules):
                if not isinstance(r, str) or r.count(":") < 1 or not r.rpartition(":")[2]:
                    raise ConfigError(f"{prefix}custom_rules[{k}]", f"must be 'module:function', got {r!r}")
            kw["custom_rules"] = tuple(rules)
        per = _table(prefix + "instruments", data.get("instruments", {}))
        out = {}
        for symbol, table in per.items():
            p = f"{prefix}instruments.{dotted_key(symbol)}."
            unknown_keys(p, table, _LIMIT_KEYS)
            out[symbol] = LimitSettings.from_dict(table, prefix=p, base=base)
        kw["instruments"] = FrozenMap(sorted(out.items()))
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        """This section as a TOML-serialisable table (what the resolved config.toml holds)."""
        d = {f: thaw(getattr(self, f)) for f in (*_LIMIT_KEYS, *_RISK_INTS, "mode", "kill_switch")}
        d["custom_rules"] = list(self.custom_rules)
        d["instruments"] = {
            s: {f: thaw(getattr(lim, f)) for f in _LIMIT_KEYS} for s, lim in self.instruments.items()
        }
        return d

    def to_core(self, instruments: Sequence[Instrument], traded: Sequence[int]) -> RiskConfig:
        """The core's risk config: these global settings, and the limits of each traded
        instrument (an index into `instruments`) in its ticks and lots."""
        limits = {i: self.limits_for(instruments[i].symbol).to_core(instruments[i]) for i in traded}
        with _core_keys("risk."):
            return RiskConfig(
                max_open_orders_total=self.max_open_orders_total,
                rate_per_second=self.rate_per_second,
                burst=self.burst,
                mode=TradingMode.from_label(self.mode),
                kill_switch=self.kill_switch,
                instruments=limits,
            )


_QUEUE_KEYS = {"rate_per_second": 0, "burst": 0, "max_in_flight_per_instrument": 0, "capacity": 1}


@dataclasses.dataclass(frozen=True, slots=True)
class QueueSettings:
    """[queue]: the intent queue (to_core() gives the lockstep.core.queue.QueueConfig, which also
    holds it to the core's bounds). 0 disables the rate limit and the in-flight cap."""

    rate_per_second: int = 0
    burst: int = 0
    max_in_flight_per_instrument: int = 0
    capacity: int = 4096

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, prefix: str = "queue.") -> QueueSettings:
        unknown_keys(prefix, data, _QUEUE_KEYS)
        kw = {f: config_int(prefix + f, data[f], UINT32_MAX, lo) for f, lo in _QUEUE_KEYS.items()
              if f in data}
        if kw.get("rate_per_second", 0) > 0 and kw.get("burst", 0) == 0:
            raise ConfigError(prefix + "burst", "must be >= 1 when rate_per_second > 0")
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        """This section as a TOML-serialisable table (what the resolved config.toml holds)."""
        return {f: getattr(self, f) for f in _QUEUE_KEYS}

    def to_core(self, instruments: int) -> QueueConfig:
        """The core's queue config for a run over `instruments` instruments; a value beyond the
        core's bounds is a ConfigError on its queue.<field>."""
        with _core_keys("queue."):
            return QueueConfig(instruments=instruments, **self.to_dict())


_LATENCY_KEYS = ("model", "entry", "response", "sigma", "feed_multiplier")


@dataclasses.dataclass(frozen=True, slots=True)
class LatencySettings:
    """[venue.latency]: `entry` (our order to the venue) and `response` (the venue back to us)
    in ns. lognormal: each draw is the median times exp(sigma * N(0, 1)); feed: the median
    scaled by the event's feed latency (ts_recv - ts_event) times `feed_multiplier`."""

    model: str = "constant"
    entry: int = 1_000_000
    response: int = 1_000_000
    sigma: float = 0.0
    feed_multiplier: float = 1.0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, prefix: str = "venue.latency.") -> LatencySettings:
        unknown_keys(prefix, data, _LATENCY_KEYS)
        kw: dict[str, Any] = {}
        if "model" in data:
            kw["model"] = config_label(prefix + "model", data["model"], LatencyKind).label
        for f in ("entry", "response"):
            if f in data:
                kw[f] = parse_duration(prefix + f, data[f])
        for f in ("sigma", "feed_multiplier"):
            if f in data:
                kw[f] = _float(prefix + f, data[f])
                if kw[f] < 0:
                    raise ConfigError(prefix + f, f"must be >= 0, not {data[f]!r}")
        out = cls(**kw)
        for f, default, model in (("sigma", 0.0, LatencyKind.LOGNORMAL),
                                  ("feed_multiplier", 1.0, LatencyKind.FEED)):
            if getattr(out, f) != default and out.model != model.label:
                raise ConfigError(prefix + f, f"only applies to model \"{model.label}\", not {out.model!r}")
        return out

    def to_core(self, seed: int) -> LatencyConfig:
        """The core's latency config; `seed` starts the lognormal draws."""
        return LatencyConfig(kind=LatencyKind.from_label(self.model), entry_ns=self.entry,
                             response_ns=self.response, sigma=float(self.sigma),
                             feed_multiplier=float(self.feed_multiplier), seed=seed)

    def to_dict(self) -> dict[str, Any]:
        """This section as a TOML-serialisable table (what the resolved config.toml holds)."""
        return {"model": self.model, "entry": format_duration(self.entry),
                "response": format_duration(self.response), "sigma": self.sigma,
                "feed_multiplier": self.feed_multiplier}


_VENUE_KEYS = ("queue_model", "queue_power", "maker_fee_bps", "taker_fee_bps", "latency", "order_rules")
_MAX_FEE_BPS = 10_000


def _fee(key: str, value: object) -> Decimal:
    bps = parse_decimal(key, value)
    ppm = bps * 100
    if ppm != ppm.to_integral_value():
        raise ConfigError(key, f"{value!r} bps is not a whole number of ppm (0.01 bps)")
    if abs(bps) > _MAX_FEE_BPS:
        raise ConfigError(key, f"{value!r} is outside [-{_MAX_FEE_BPS}, {_MAX_FEE_BPS}] bps")
    return bps


@dataclasses.dataclass(frozen=True, slots=True)
class VenueSettings:
    """[venue]: the simulated venue. Fees in bps of notional, positive = paid, negative = rebate;
    always a whole number of ppm (maker_fee_ppm, taker_fee_ppm)."""

    queue_model: str = "conservative"
    queue_power: float = 2.0
    maker_fee_bps: Decimal = Decimal(0)
    taker_fee_bps: Decimal = Decimal(0)
    latency: LatencySettings = LatencySettings()
    # symbol -> {tick_size, lot_size, min_qty, min_notional}: overrides of the dataset's
    # order-entry rules, real units; 0 removes the rule.
    order_rules: Mapping[str, Mapping[str, Decimal]] = dataclasses.field(default_factory=FrozenMap)

    @property
    def maker_fee_ppm(self) -> int:
        """The maker fee in parts per million of notional (what the core takes)."""
        return int(self.maker_fee_bps * 100)

    @property
    def taker_fee_ppm(self) -> int:
        """The taker fee in parts per million of notional (what the core takes)."""
        return int(self.taker_fee_bps * 100)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, prefix: str = "venue.") -> VenueSettings:
        unknown_keys(prefix, data, _VENUE_KEYS)
        kw: dict[str, Any] = {}
        if "queue_model" in data:
            kw["queue_model"] = config_label(prefix + "queue_model", data["queue_model"],
                                             QueueModel).label
        if "queue_power" in data:
            kw["queue_power"] = _float(prefix + "queue_power", data["queue_power"])
            if kw["queue_power"] <= 0:
                raise ConfigError(prefix + "queue_power", f"must be > 0, not {data['queue_power']!r}")
        for f in ("maker_fee_bps", "taker_fee_bps"):
            if f in data:
                kw[f] = _fee(prefix + f, data[f])
        if "latency" in data:
            kw["latency"] = LatencySettings.from_dict(
                data["latency"], prefix=f"{prefix}latency.")
        rules = {}
        for symbol, table in _table(prefix + "order_rules", data.get("order_rules", {})).items():
            p = f"{prefix}order_rules.{dotted_key(symbol)}."
            table = _table(p[:-1], table)
            unknown_keys(p, table, ORDER_RULE_FIELDS)
            rules[symbol] = FrozenMap({f: parse_decimal(p + f, table[f], non_negative=True)
                                       for f in ORDER_RULE_FIELDS if f in table})
        kw["order_rules"] = FrozenMap(sorted(rules.items()))
        return cls(**kw)

    def instrument(self, inst: Instrument) -> Instrument:
        """`inst` with the order-entry rules this section sets for its symbol over its own."""
        given = self.order_rules.get(inst.symbol)
        if not given:
            return inst
        return inst.with_order_rules({f: None if v == 0 else format(v.normalize(), "f")
                                      for f, v in given.items()})

    def to_core(self, seed: int) -> SimulatedVenueConfig:
        """The core's simulated-venue config; `seed` starts the latency draws."""
        return SimulatedVenueConfig(
            queue_model=QueueModel.from_label(self.queue_model), queue_power=float(self.queue_power),
            maker_ppm=self.maker_fee_ppm, taker_ppm=self.taker_fee_ppm,
            latency=self.latency.to_core(seed))

    def to_dict(self) -> dict[str, Any]:
        """This section as a TOML-serialisable table (what the resolved config.toml holds)."""
        return {"queue_model": self.queue_model, "queue_power": self.queue_power,
                "maker_fee_bps": str(self.maker_fee_bps), "taker_fee_bps": str(self.taker_fee_bps),
                "latency": self.latency.to_dict(),
                "order_rules": {s: {f: str(v) for f, v in r.items()} for s, r in self.order_rules.items()}}


_OUTPUT_KEYS = ("sample_interval", "report")


@dataclasses.dataclass(frozen=True, slots=True)
class OutputSettings:
    """[output]: `sample_interval` (ns) of the PnL/position series; `report` writes report.html."""

    sample_interval: int = 1_000_000_000
    report: bool = True

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, prefix: str = "output.") -> OutputSettings:
        unknown_keys(prefix, data, _OUTPUT_KEYS)
        kw: dict[str, Any] = {}
        if "sample_interval" in data:
            kw["sample_interval"] = parse_duration(
                prefix + "sample_interval", data["sample_interval"], positive=True)
        if "report" in data:
            kw["report"] = _bool(prefix + "report", data["report"])
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        """This section as a TOML-serialisable table (what the resolved config.toml holds)."""
        return {"sample_interval": format_duration(self.sample_interval), "report": self.report}


_TOP_KEYS = ("name", "dataset", "instruments", "seed", "strategy", "risk", "queue", "venue",
             "output")
_STRATEGY_KEYS = ("path", "params")
# The schema as lockstep.tomlconfig.apply_overrides takes it (public for configs that extend it:
# lockstep.live.config). FREE_TABLES: keys an override may create beneath, though the schema
# does not list them.
FREE_TABLES = {("strategy", "params"), ("risk", "instruments"), ("venue", "order_rules")}
SCHEMA_TABLES = {
    (): _TOP_KEYS, ("strategy",): _STRATEGY_KEYS, ("risk",): _RISK_KEYS,
    ("queue",): tuple(_QUEUE_KEYS), ("venue",): _VENUE_KEYS, ("venue", "latency"): _LATENCY_KEYS,
    ("output",): _OUTPUT_KEYS,
}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


def _is_file_target(module: str) -> bool:
    return module.endswith(".py") or "/" in module or "\\" in module


def _default_name(stem: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._")[:100]
    return name or "backtest"


@dataclasses.dataclass(frozen=True, slots=True)
class BacktestConfig:
    """One backtest: what to run (dataset, instruments, strategy) and the rules it runs under."""

    name: str
    dataset: str
    strategy: StrategyConfig
    instruments: tuple[str, ...] = ()
    seed: int = 0
    risk: RiskSettings = RiskSettings()
    queue: QueueSettings = QueueSettings()
    venue: VenueSettings = VenueSettings()
    output: OutputSettings = OutputSettings()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, base_dir: str | os.PathLike[str],
                  default_name: str = "backtest", source: str = "config") -> BacktestConfig:
        """Validates a TOML-shaped table. `base_dir` resolves relative file paths (the config
        file's directory); `default_name` is the name when `data` has none; `source` leads error
        messages."""
        try:
            return cls._from_dict(data, Path(base_dir), default_name)
        except ConfigError as e:
            if type(e) is ConfigError and e.source == "risk config":  # raised by a shared helper
                raise ConfigError(e.key, e.reason, source=source) from None
            raise

    @classmethod
    def _from_dict(cls, data: Mapping[str, Any], base_dir: Path, default_name: str) -> BacktestConfig:
        unknown_keys("", data, _TOP_KEYS)
        name = _str("name", data.get("name", _default_name(default_name)))
        if not _NAME.fullmatch(name):
            raise ConfigError("name", f"{name!r} must be 1-100 of letters, digits, '.', '_', '-' "
                                      "and start with a letter or digit")
        if "dataset" not in data:
            raise ConfigError("dataset", "missing (a dataset name or path)")
        dataset = _str("dataset", data["dataset"]).strip()
        if not dataset:
            raise ConfigError("dataset", "must not be empty")
        if "://" not in dataset and not os.path.isabs(dataset):
            candidate = base_dir / dataset
            if candidate.exists():
                dataset = str(candidate.resolve())
        instruments = data.get("instruments", [])
        if not isinstance(instruments, (list, tuple)):
            raise ConfigError("instruments", f"must be a list of symbols, not {kind_of(instruments)}")
        seen: set[str] = set()
        for i, s in enumerate(instruments):
            if not isinstance(s, str) or not s:
                raise ConfigError(f"instruments.{i}", f"must be a non-empty string, not {s!r}")
            if s in seen:
                raise ConfigError(f"instruments.{i}", f"duplicate symbol {s!r}")
            seen.add(s)
        seed = config_int("seed", data.get("seed", 0), UINT64_MAX)
        if "strategy" not in data:
            raise ConfigError("strategy", "missing (a table with path = \"module:Class\")")
        strategy = _strategy(data["strategy"], base_dir)
        return cls(
            name=name, dataset=dataset, strategy=strategy, instruments=tuple(instruments),
            seed=seed,
            risk=RiskSettings.from_dict(data.get("risk", {})),
            queue=QueueSettings.from_dict(data.get("queue", {})),
            venue=VenueSettings.from_dict(data.get("venue", {})),
            output=OutputSettings.from_dict(data.get("output", {})),
        )

    def to_dict(self) -> dict[str, Any]:
        """The fully resolved config (defaults filled in, paths absolute, Decimals and durations
        as strings): dump_toml() of it reloads to an equal config."""
        return {
            "name": self.name,
            "dataset": self.dataset,
            "instruments": list(self.instruments),
            "seed": self.seed,
            "strategy": {"path": self.strategy.path, "params": thaw(self.strategy.params)},
            "risk": self.risk.to_dict(),
            "queue": self.queue.to_dict(),
            "venue": self.venue.to_dict(),
            "output": self.output.to_dict(),
        }

    def with_params(self, params: object) -> BacktestConfig:
        """This config with [strategy.params] replaced by a validated Params instance's fields
        (defaults filled in), e.g. before writing the resolved config of a run."""
        table = {} if params is None else params_to_dict(params)
        return dataclasses.replace(
            self, strategy=dataclasses.replace(self.strategy, params=freeze(table)))


def _strategy(data: object, base_dir: Path) -> StrategyConfig:
    unknown_keys("strategy.", data, _STRATEGY_KEYS)
    if "path" not in data:
        raise ConfigError("strategy.path", 'missing ("module:Class" or "file.py:Class")')
    path = _str("strategy.path", data["path"])
    module, sep, cls = path.rpartition(":")
    if not sep or not module or not _IDENT.fullmatch(cls):
        raise ConfigError("strategy.path", f'{path!r} is not "module:Class" or "file.py:Class"')
    if _is_file_target(module):
        file = Path(module)
        if not file.is_absolute():
            file = base_dir / file
        if not file.is_file():
            raise ConfigError("strategy.path", f"no such file: {file}")
        path = f"{file.resolve()}:{cls}"
    elif not _IDENT.fullmatch(module):
        raise ConfigError("strategy.path", f"{module!r} is not a module name or a .py file")
    params = _table("strategy.params", data.get("params", {}))
    return StrategyConfig(path=path, params=freeze(params))


# --------------------------------------------------------------------------------------------
# Loading, overrides


def load_config(path: str | os.PathLike[str], overrides: Sequence[str] = ()) -> BacktestConfig:
    """Reads a TOML backtest config, applies `--set key=value` overrides, validates."""
    p = Path(path)
    data = apply_overrides(read_toml(p), overrides, tables=SCHEMA_TABLES, free_tables=FREE_TABLES)
    return BacktestConfig.from_dict(data, base_dir=p.resolve().parent, default_name=p.stem,
                                    source=os.fspath(path))


# --------------------------------------------------------------------------------------------
# Loading the strategy and custom risk rules a config names


def load_object(target: str, *, key: str, base_dir: str | os.PathLike[str] = ".") -> Any:
    """"package.module:name" or "path/to/file.py:name" (relative to base_dir); errors name `key`."""
    module_name, sep, class_name = target.rpartition(":")
    if not sep or not module_name or not class_name:
        raise ConfigError(key, f"{target!r} must look like 'module:name' or 'file.py:name'", source="config")
    if module_name.endswith((".py", ".pyx")) or os.sep in module_name or "/" in module_name:
        path = Path(base_dir, module_name)
        if not path.is_file():
            raise ConfigError(key, f"{path}: no such file", source="config")
        spec = importlib.util.spec_from_file_location(f"lockstep_user_strategy_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        try:
            spec.loader.exec_module(module)
        except SyntaxError as e:
            del sys.modules[spec.name]
            text = f": {e.text.strip()}" if e.text and e.text.strip() else ""
            raise ConfigError(key, f"{e.filename or path}, line {e.lineno}: {e.msg}{text}",
                              source="config") from None
        except Exception as e:  # the user's module failed while loading: say where and what
            del sys.modules[spec.name]
            raise ConfigError(key, f"{path}: loading it raised {type(e).__name__}: {e}",
                              source="config") from None
    else:
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            raise ConfigError(key, f"cannot import {module_name!r}: {e}", source="config") from None
    obj = getattr(module, class_name, None)
    if obj is None:
        raise ConfigError(key, f"{module_name!r} has no {class_name!r}", source="config")
    return obj


def load_strategy_class(target: str, *, base_dir: str | os.PathLike[str] = ".") -> type:
    """"package.module:Class" or "path/to/file.py:Class" (relative to base_dir)."""
    cls = load_object(target, key="strategy.path", base_dir=base_dir)
    if not isinstance(cls, type):
        raise ConfigError("strategy.path", f"{target!r} is not a class", source="config")
    return cls


def load_risk_rules(risk: RiskSettings, *, base_dir: str | os.PathLike[str] = ".") -> list[Callable[..., Any]]:
    """The callables [risk] custom_rules names ("module:function" or "file.py:function")."""
    rules = [load_object(r, key=f"risk.custom_rules[{k}]", base_dir=base_dir)
             for k, r in enumerate(risk.custom_rules)]
    for k, r in enumerate(rules):
        if not callable(r):
            raise ConfigError(f"risk.custom_rules[{k}]", f"{risk.custom_rules[k]!r} is not callable",
                              source="config")
    return rules


# --------------------------------------------------------------------------------------------
# Strategy parameters


def validate_params(params_type: type | None, data: Mapping[str, Any],
                    prefix: str = "strategy.params", *, strategy: str | None = None) -> Any:
    """An instance of the dataclass `params_type` (a strategy's Params) built from `data`.

    Unknown keys, missing required fields and values not matching a field's annotation raise
    ConfigError naming `prefix.field`. Annotations understood: int, float (an int is accepted),
    bool, str, Decimal (int, float or decimal string), Literal[...], X | None, tuple[X, ...] and
    list[X], Any. A ValueError/TypeError from the dataclass's __post_init__ becomes a ConfigError
    on `prefix`. `params_type` None: the strategy takes no params, so `data` must be empty
    (returns None).
    """
    who = f"strategy {strategy}" if strategy else "the strategy"
    if params_type is None:
        if data:
            raise ConfigError(prefix, f"{who} takes no params", source="config")
        return None
    if not (isinstance(params_type, type) and dataclasses.is_dataclass(params_type)):
        raise TypeError(f"params type must be a dataclass, not {params_type!r}")
    if not isinstance(data, Mapping):
        raise ConfigError(prefix, f"must be a table, not {kind_of(data)}", source="config")
    hints = typing.get_type_hints(params_type)
    fields = {f.name: f for f in dataclasses.fields(params_type) if f.init}
    for k in data:
        if k not in fields:
            known = ", ".join(fields) or "none"
            raise ConfigError(f"{prefix}.{dotted_key(k)}", f"unknown key (known: {known})", source="config")
    kw = {}
    for name, f in fields.items():
        key = f"{prefix}.{name}"
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(key, "missing (required by the strategy)", source="config")
            continue
        try:
            kw[name] = _convert(key, hints.get(name, Any), data[name])
        except ConfigError as e:
            raise ConfigError(e.key, e.reason, source="config") from None
    try:
        return params_type(**kw)
    except (ValueError, TypeError) as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(prefix, f"rejected by {params_type.__name__}: {e}", source="config") from None


def _convert(key: str, tp: Any, value: Any) -> Any:
    if tp is Any or tp is object:
        return thaw(value) if isinstance(value, (Mapping, tuple)) else value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        errors = []
        for a in inner:
            try:
                return _convert(key, a, value)
            except ConfigError as e:
                errors.append(e.reason)
        raise ConfigError(key, "; ".join(errors))
    if origin is typing.Literal:
        if value not in args or type(value) not in {type(a) for a in args}:
            raise ConfigError(key, f"{value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(key, f"must be a list, not {kind_of(value)}")
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(args) != len(value):
                raise ConfigError(key, f"must have {len(args)} items, not {len(value)}")
            return tuple(_convert(f"{key}.{i}", a, v) for i, (a, v) in enumerate(zip(args, value)))
        elem = args[0] if args else Any
        items = [_convert(f"{key}.{i}", elem, v) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if tp is bool:
        return _bool(key, value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"must be an int, not {kind_of(value)}")
        return value
    if tp is float:
        return _float(key, value)
    if tp is str:
        return _str(key, value)
    if tp is Decimal:
        return parse_decimal(key, value)
    raise TypeError(f"{key}: unsupported Params annotation {tp!r}")


def params_to_dict(params: object) -> dict[str, Any]:
    """A Params instance as a TOML-serialisable table (Decimals as strings, tuples as lists).
    TOML has no null: fields that are None are left out (validate_params gives them their
    default again, so use None only as a default)."""
    return {f.name: thaw(getattr(params, f.name)) for f in dataclasses.fields(params)
            if getattr(params, f.name) is not None}


__all__ = [
    "FREE_TABLES",
    "SCHEMA_TABLES",
    "BacktestConfig",
    "LatencySettings",
    "LimitSettings",
    "OutputSettings",
    "QueueSettings",
    "RiskSettings",
    "StrategyConfig",
    "VenueSettings",
    "load_config",
    "load_object",
    "load_risk_rules",
    "load_strategy_class",
    "params_to_dict",
    "parse_decimal",
    "validate_params",
]
