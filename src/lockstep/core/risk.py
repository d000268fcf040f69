"""Risk: allows or denies each Intent with one reason code, and never changes an Intent.

The built-in checks are the C++ lockstep::RiskEngine (include/lockstep/core/risk.hpp) behind a thin
wrapper; docs/risk.md lists every reason and the fixed check order (the first failing check is
the reason). lockstep.reference.risk is a pure-Python twin with the same API and results.

Determinism: the only clock is the `ts_recv` passed to check() (int64 ns of the event that caused
the step). The order-rate token bucket refills from those timestamps, never from a wall clock, and
is spent only by allowed submits and replaces.

Custom rules (the slow path): `RiskEngine(config, custom_rules=[rule, ...])`, each rule a callable
`rule(intent, view) -> RiskReason | None`. Rules run in order, in Python, after every built-in
check has passed, and never for cancels. A rule returning None or RiskReason.ALLOWED lets the
intent through; anything else denies it with RiskReason.CUSTOM, counted under "custom" and under
"custom:<rule name>" (the rule's `name` attribute, else its `__name__`). A custom denial spends no
rate token. Every check then costs a Python call per rule: keep such rules for research.
"""
from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from lockstep._bindings import risk as _risk
from lockstep.checks import INT64_MAX, INT64_MIN, UINT32_MAX, UINT64_MAX, config_int, int_in, unknown_keys
from lockstep.enums import IntentKind, RiskReason, TimeInForce, TradingMode
from lockstep.errors import ConfigError, check_status

_UINT8_MAX = 255

#: Instrument ids are dense table indices below this bound.
MAX_INSTRUMENTS: int = _risk.MAX_INSTRUMENTS


_REASONS = tuple(RiskReason)


# --------------------------------------------------------------------------------------------
# Intents and views (range-checked here so both engines see the same, valid C++ field values)


@dataclasses.dataclass(frozen=True, slots=True)
class Intent:
    """lockstep::Intent. `kind`, `side` and `tif` take any uint8 so invalid intents can be judged
    (and denied) rather than refused at construction."""

    instrument: int
    kind: int
    side: int = 0
    tif: int = TimeInForce.GTC
    price: int = 0
    qty: int = 0
    client_order_id: int = 0
    target_order_id: int = 0

    def __post_init__(self) -> None:
        int_in("instrument", self.instrument, 0, UINT32_MAX)
        for name in ("kind", "side", "tif"):
            int_in(name, getattr(self, name), 0, _UINT8_MAX)
        int_in("price", self.price, INT64_MIN, INT64_MAX)
        int_in("qty", self.qty, INT64_MIN, INT64_MAX)
        int_in("client_order_id", self.client_order_id, 0, UINT64_MAX)
        int_in("target_order_id", self.target_order_id, 0, UINT64_MAX)


@dataclasses.dataclass(frozen=True, slots=True)
class RiskView:
    """lockstep::RiskView: what Risk reads of State for the intent's instrument, filled by the
    caller for each check. `mid` None means no mid is known (as does a mid <= 0)."""

    position: int = 0
    open_orders: int = 0
    open_buy_qty: int = 0
    open_sell_qty: int = 0
    mid: int | None = None
    open_orders_total: int = 0

    def __post_init__(self) -> None:
        for name in ("position", "open_buy_qty", "open_sell_qty"):
            int_in(name, getattr(self, name), INT64_MIN, INT64_MAX)
        int_in("open_orders", self.open_orders, 0, UINT32_MAX)
        int_in("open_orders_total", self.open_orders_total, 0, UINT32_MAX)
        if self.mid is not None:
            int_in("mid", self.mid, INT64_MIN, INT64_MAX)


# --------------------------------------------------------------------------------------------
# Configuration


@dataclasses.dataclass(frozen=True, slots=True)
class RiskLimits:
    """Per-instrument limits (lockstep::RiskLimits). 0 means no limit, for every field."""

    max_order_qty: int = 0  # lots
    max_order_notional: int = 0  # price ticks x lots
    max_position: int = 0  # lots, absolute
    max_open_orders: int = 0
    price_band_bps: int = 0  # limit price within mid +- mid * bps / 10000

    def __post_init__(self) -> None:
        for f, hi in _LIMIT_FIELDS.items():
            config_int(f, getattr(self, f), hi)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, prefix: str = "") -> RiskLimits:
        """Builds limits from a table; unknown keys and bad values raise ConfigError naming the
        key (under `prefix`, e.g. "instruments.3.")."""
        unknown_keys(prefix, data, _LIMIT_FIELDS)
        for f, hi in _LIMIT_FIELDS.items():
            if f in data:
                config_int(prefix + f, data[f], hi)
        return cls(**data)


@dataclasses.dataclass(frozen=True, slots=True)
class OrderRules:
    """A venue's order-entry rules for one instrument (lockstep::OrderRules), in the units of its
    data: a priced order's price is a multiple of `price_tick` price increments, its qty a
    multiple of `qty_lot` size increments and at least `min_qty` of them, and price x qty at
    least `min_notional` (price increments x size increments). 0 means no rule, for every field.
    Instrument.order_rules() converts the rules a table or config gives in real units."""

    price_tick: int = 0
    qty_lot: int = 0
    min_qty: int = 0
    min_notional: int = 0

    def __post_init__(self) -> None:
        for f in ("price_tick", "qty_lot", "min_qty", "min_notional"):
            config_int(f, getattr(self, f), INT64_MAX)


_LIMIT_FIELDS = {
    "max_order_qty": INT64_MAX,
    "max_order_notional": INT64_MAX,
    "max_position": INT64_MAX,
    "max_open_orders": UINT32_MAX,
    "price_band_bps": UINT32_MAX,
}
_CONFIG_INTS = ("max_open_orders_total", "rate_per_second", "burst")
_CONFIG_KEYS = (*_CONFIG_INTS, "mode", "kill_switch", "instruments")


def _mode(key: str, value: object) -> TradingMode:
    if isinstance(value, TradingMode):
        return value
    if isinstance(value, str):
        try:
            return TradingMode[value.upper()]
        except KeyError:
            names = ", ".join(TradingMode.labels())
            raise ConfigError(key, f"unknown mode {value!r} (one of {names})") from None
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return TradingMode(value)
        except ValueError:
            raise ConfigError(key, f"unknown mode {value}") from None
    raise ConfigError(key, f"must be a mode name, not {type(value).__name__}")


def _instrument_id(key: str, value: object) -> int:
    if isinstance(value, str) and value.isdigit():  # TOML/JSON table keys are strings
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(key, "instrument ids must be ints")
    if not 0 <= value < MAX_INSTRUMENTS:
        raise ConfigError(key, f"instrument id {value} is outside [0, {MAX_INSTRUMENTS})")
    return value


@dataclasses.dataclass(frozen=True, slots=True)
class RiskConfig:
    """Global risk settings (lockstep::RiskConfig) plus the limits of each known instrument.

    An instrument without limits is unknown to Risk: every intent for it is denied.
    `rate_per_second` 0 disables the order-rate limit; otherwise `burst` (>= 1) is the bucket size.
    """

    max_open_orders_total: int = 0
    rate_per_second: int = 0
    burst: int = 0
    mode: TradingMode = TradingMode.ACTIVE
    kill_switch: bool = False
    instruments: Mapping[int, RiskLimits] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        for f in _CONFIG_INTS:
            config_int(f, getattr(self, f), UINT32_MAX)
        object.__setattr__(self, "mode", _mode("mode", self.mode))
        if not isinstance(self.kill_switch, bool):
            kind = type(self.kill_switch).__name__
            raise ConfigError("kill_switch", f"must be a bool, not {kind}")
        if self.rate_per_second > 0 and self.burst == 0:
            raise ConfigError("burst", "must be >= 1 when rate_per_second > 0")
        if not isinstance(self.instruments, Mapping):
            raise ConfigError("instruments", "must be a table of instrument id -> limits")
        limits = {}
        for k, v in self.instruments.items():
            i = _instrument_id(f"instruments.{k}", k)
            if not isinstance(v, RiskLimits):
                raise ConfigError(f"instruments.{k}", "must be RiskLimits")
            limits[i] = v
        frozen = types.MappingProxyType(dict(sorted(limits.items())))
        object.__setattr__(self, "instruments", frozen)

    def __reduce__(self):  # the read-only mapping does not pickle; its dict does
        return (
            type(self),
            (self.max_open_orders_total, self.rate_per_second, self.burst, self.mode,
             self.kill_switch, dict(self.instruments)),
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RiskConfig:
        """Builds a config from a (TOML/JSON-shaped) table, e.g.

            {"rate_per_second": 50, "burst": 10, "mode": "active",
             "instruments": {"0": {"max_order_qty": 100, "price_band_bps": 50}}}

        Unknown keys, wrong types and out-of-range values raise ConfigError naming the key path.
        """
        unknown_keys("", data, _CONFIG_KEYS)
        for f in _CONFIG_INTS:
            if f in data:
                config_int(f, data[f], UINT32_MAX)
        kw = {k: data[k] for k in _CONFIG_INTS if k in data}
        if "mode" in data:
            kw["mode"] = _mode("mode", data["mode"])
        if "kill_switch" in data:
            kw["kill_switch"] = data["kill_switch"]
        instruments = data.get("instruments", {})
        if not isinstance(instruments, Mapping):
            raise ConfigError("instruments", "must be a table of instrument id -> limits")
        kw["instruments"] = {
            _instrument_id(f"instruments.{k}", k): RiskLimits.from_dict(
                v, prefix=f"instruments.{k}."
            )
            for k, v in instruments.items()
        }
        return cls(**kw)


# --------------------------------------------------------------------------------------------
# Engine

CustomRule = Callable[[Intent, RiskView], "RiskReason | None"]


def rule_names(custom_rules: Iterable[CustomRule]) -> list[tuple[str, CustomRule]]:
    """(name, rule) pairs; names must be unique since they key the denial counts."""
    out: list[tuple[str, CustomRule]] = []
    seen: set[str] = set()
    for i, rule in enumerate(custom_rules):
        if not callable(rule):
            raise ConfigError(f"custom_rules.{i}", "must be callable")
        name = getattr(rule, "name", None) or getattr(rule, "__name__", None) or type(rule).__name__
        if not isinstance(name, str):
            raise ConfigError(f"custom_rules.{i}", "name must be a str")
        if name in seen:
            raise ConfigError(f"custom_rules.{i}", f"duplicate rule name {name!r}")
        seen.add(name)
        out.append((name, rule))
    return out


def denial_names() -> list[str]:
    """The built-in keys of denials(), in reason order."""
    return [r.label for r in RiskReason if r is not RiskReason.ALLOWED]


class RiskEngine:
    """Judges Intents against a RiskConfig; see the module docstring for custom rules."""

    __slots__ = ("_config", "_core", "_custom", "_custom_by_instrument", "_rules")

    def __init__(self, config: RiskConfig, custom_rules: Iterable[CustomRule] = ()) -> None:
        if not isinstance(config, RiskConfig):
            raise TypeError(f"config must be a RiskConfig, not {type(config).__name__}")
        self._config = config
        self._rules = rule_names(custom_rules)
        self._core = _risk.RiskEngine()
        # RiskConfig validated every field already: a refusal here is a bug.
        check_status(self._core.set_config(config), "risk config")
        for i, lim in config.instruments.items():
            check_status(self._core.set_limits(i, lim), f"risk limits of instrument {i}")
        self._custom = {name: 0 for name, _ in self._rules}
        self._custom_by_instrument: dict[tuple[int, str], int] = {}

    @property
    def config(self) -> RiskConfig:
        """The configuration the engine was built with (mode and kill switch may since differ)."""
        return self._config

    def check(self, intent: Intent, view: RiskView, ts_recv: int) -> RiskReason:
        """The verdict for `intent` at `ts_recv`; counts it and, if an allowed submit/replace,
        spends a rate token."""
        if not self._rules:
            return _REASONS[self._core.check(intent, view, ts_recv)]
        r = self._core.evaluate(intent, view, ts_recv)
        if r == 0 and intent.kind != IntentKind.CANCEL:
            for name, rule in self._rules:
                out = rule(intent, view)
                if out is not None and out != RiskReason.ALLOWED:
                    self._core.record(intent, RiskReason.CUSTOM, ts_recv)
                    self._custom[name] += 1
                    key = (intent.instrument, name)
                    self._custom_by_instrument[key] = self._custom_by_instrument.get(key, 0) + 1
                    return RiskReason.CUSTOM
        self._core.record(intent, r, ts_recv)
        return _REASONS[r]

    def set_order_rules(self, instrument: int, rules: OrderRules) -> None:
        """The venue's order-entry rules of `instrument` (docs/risk.md: off_tick, off_lot,
        below_min_qty, below_min_notional); they apply whether or not it has limits."""
        int_in("instrument", instrument, 0, MAX_INSTRUMENTS - 1)
        if not isinstance(rules, OrderRules):
            raise TypeError(f"rules must be OrderRules, not {type(rules).__name__}")
        check_status(self._core.set_order_rules(instrument, rules), f"order rules of instrument {instrument}")

    def set_mode(self, mode: TradingMode | int) -> None:
        self._core.set_mode(int(TradingMode(mode)))

    def set_kill_switch(self, on: bool) -> None:
        self._core.set_kill_switch(bool(on))

    @property
    def mode(self) -> TradingMode:
        return TradingMode(self._core.mode)

    @property
    def kill_switch(self) -> bool:
        return self._core.kill_switch

    def tokens(self, ts_recv: int) -> int:
        """Whole rate tokens available at ts_recv (0 when there is no rate limit)."""
        return self._core.tokens(ts_recv)

    def denials(self, instrument: int | None = None) -> dict[str, int]:
        """Denials per reason name (every reason, zeros included), plus "custom:<rule>" per custom
        rule; over all instruments, or for one known instrument (KeyError otherwise). Denials for
        unknown instruments appear only in the totals."""
        counts = self._counts(instrument)
        out = {name: counts[i + 1] for i, name in enumerate(denial_names())}
        for name, _ in self._rules:
            if instrument is None:
                out[f"custom:{name}"] = self._custom[name]
            else:
                out[f"custom:{name}"] = self._custom_by_instrument.get((instrument, name), 0)
        return out

    def allowed(self, instrument: int | None = None) -> int:
        """Intents allowed, over all instruments or for one known instrument."""
        return self._counts(instrument)[0]

    def reset_counts(self) -> None:
        self._core.reset_counts()
        self._custom = dict.fromkeys(self._custom, 0)
        self._custom_by_instrument.clear()

    def _counts(self, instrument: int | None) -> list[int]:
        if instrument is None:
            return self._core.counts()
        if isinstance(instrument, bool) or not isinstance(instrument, int) or not (
            0 <= instrument <= UINT32_MAX and self._core.known(instrument)
        ):
            raise KeyError(instrument)
        return self._core.counts(instrument)


__all__ = [
    "MAX_INSTRUMENTS",
    "ConfigError",
    "Intent",
    "IntentKind",
    "OrderRules",
    "RiskConfig",
    "RiskEngine",
    "RiskLimits",
    "RiskReason",
    "RiskView",
    "TimeInForce",
    "TradingMode",
]
