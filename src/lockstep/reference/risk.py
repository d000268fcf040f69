"""Reference Risk engine: lockstep.core.risk's API and results, in plain Python integers.

Python ints never overflow, so the fixed-point products and the token bucket are stated without
the 128-bit care the C++ needs. Each check is one `if`, in the order of docs/risk.md.
"""
from __future__ import annotations

from collections.abc import Iterable

from lockstep.checks import INT64_MAX, INT64_MIN, int_in
from lockstep.core.risk import (
    MAX_INSTRUMENTS,
    CustomRule,
    Intent,
    OrderRules,
    RiskConfig,
    RiskView,
    denial_names,
    rule_names,
)
from lockstep.enums import IntentKind, RiskReason, TimeInForce, TradingMode
from lockstep.errors import ConfigError
from lockstep.events import Side

_NS = 1_000_000_000  # token units per token: tokens are kept in token-nanoseconds
_KINDS = {k.value for k in IntentKind}
_TIFS = {t.value for t in TimeInForce}

R = RiskReason
_NO_RULES = OrderRules()


class RiskEngine:
    __slots__ = ("_config", "_counts", "_custom", "_custom_by_instrument", "_kill", "_last_ts",
                 "_mode", "_order_rules", "_rules", "_started", "_tokens")

    def __init__(self, config: RiskConfig, custom_rules: Iterable[CustomRule] = ()) -> None:
        if not isinstance(config, RiskConfig):
            raise TypeError(f"config must be a RiskConfig, not {type(config).__name__}")
        self._config = config
        self._rules = rule_names(custom_rules)
        self._mode = config.mode
        self._kill = config.kill_switch
        self._tokens = config.burst * _NS
        self._last_ts = 0
        self._started = False
        self._counts: dict[int | None, list[int]] = {}
        self._order_rules: dict[int, OrderRules] = {}
        self.reset_counts()

    @property
    def config(self) -> RiskConfig:
        return self._config

    # -- the verdict ---------------------------------------------------------------------------

    def _tokens_at(self, ts: int) -> int:
        if not self._started or ts <= self._last_ts:
            return self._tokens
        refilled = self._tokens + (ts - self._last_ts) * self._config.rate_per_second
        return min(self._config.burst * _NS, refilled)

    def _evaluate(self, i: Intent, v: RiskView, ts: int) -> RiskReason:
        if i.kind not in _KINDS:
            return R.UNKNOWN_INTENT_KIND
        limits = self._config.instruments.get(i.instrument)
        if limits is None:
            return R.UNKNOWN_INSTRUMENT
        if i.kind == IntentKind.CANCEL:
            return R.ALLOWED
        if self._kill:
            return R.KILL_SWITCH
        if self._mode == TradingMode.HALTED:
            return R.HALTED
        if i.side not in (Side.BID, Side.ASK):
            return R.BAD_SIDE
        if i.tif not in _TIFS:
            return R.BAD_TIME_IN_FORCE
        if i.qty <= 0:
            return R.NON_POSITIVE_QTY
        priced = i.kind != IntentKind.SUBMIT_MARKET
        if priced and i.price <= 0:
            return R.NON_POSITIVE_PRICE
        mid = v.mid if v.mid is not None and v.mid > 0 else None
        rules = self._order_rules.get(i.instrument, _NO_RULES)
        if rules.min_notional and not priced and mid is None:
            return R.NO_MID
        if priced and rules.price_tick and i.price % rules.price_tick:
            return R.OFF_TICK
        if rules.qty_lot and i.qty % rules.qty_lot:
            return R.OFF_LOT
        if i.qty < rules.min_qty:
            return R.BELOW_MIN_QTY
        if rules.min_notional and (i.price if priced else mid) * i.qty < rules.min_notional:
            return R.BELOW_MIN_NOTIONAL
        buy = i.side == Side.BID
        delta = (v.open_buy_qty if buy else v.open_sell_qty) + i.qty
        projected = v.position + delta if buy else v.position - delta
        if self._mode == TradingMode.REDUCE_ONLY:
            opposite = v.position < 0 if buy else v.position > 0
            if not opposite or delta > abs(v.position):
                return R.REDUCE_ONLY
        if limits.max_order_qty and i.qty > limits.max_order_qty:
            return R.MAX_ORDER_QTY
        needs_mid = limits.price_band_bps > 0 or (not priced and limits.max_order_notional > 0)
        if needs_mid and mid is None:
            return R.NO_MID
        notional = (i.price if priced else (mid or 0)) * i.qty
        if limits.max_order_notional and notional > limits.max_order_notional:
            return R.MAX_ORDER_NOTIONAL
        band = limits.price_band_bps
        if priced and band and abs(i.price - mid) * 10000 > mid * band:
            return R.PRICE_BAND
        after = abs(projected)
        if limits.max_position and after > limits.max_position and after > abs(v.position):
            return R.MAX_POSITION
        if i.kind != IntentKind.REPLACE:
            if limits.max_open_orders and v.open_orders >= limits.max_open_orders:
                return R.MAX_OPEN_ORDERS
            total = self._config.max_open_orders_total
            if total and v.open_orders_total >= total:
                return R.MAX_OPEN_ORDERS_TOTAL
        if self._config.rate_per_second and self._tokens_at(ts) < _NS:
            return R.RATE_LIMIT
        return R.ALLOWED

    def _record(self, i: Intent, r: RiskReason, ts: int) -> None:
        self._counts[None][r] += 1
        if i.instrument in self._config.instruments:
            self._counts[i.instrument][r] += 1
        if r == R.ALLOWED and i.kind != IntentKind.CANCEL and self._config.rate_per_second:
            self._tokens = self._tokens_at(ts) - _NS
            if not self._started or ts > self._last_ts:
                self._last_ts = ts
            self._started = True

    def check(self, intent: Intent, view: RiskView, ts_recv: int) -> RiskReason:
        int_in("ts_recv", ts_recv, INT64_MIN, INT64_MAX)
        r = self._evaluate(intent, view, ts_recv)
        if r == R.ALLOWED and intent.kind != IntentKind.CANCEL:
            for name, rule in self._rules:
                out = rule(intent, view)
                if out is not None and out != R.ALLOWED:
                    r = R.CUSTOM
                    self._custom[name] += 1
                    key = (intent.instrument, name)
                    self._custom_by_instrument[key] = self._custom_by_instrument.get(key, 0) + 1
                    break
        self._record(intent, r, ts_recv)
        return r

    # -- control state and reports -------------------------------------------------------------

    def set_order_rules(self, instrument: int, rules: OrderRules) -> None:
        int_in("instrument", instrument, 0, MAX_INSTRUMENTS - 1)
        if not isinstance(rules, OrderRules):
            raise TypeError(f"rules must be OrderRules, not {type(rules).__name__}")
        self._order_rules[instrument] = rules

    def set_mode(self, mode: TradingMode | int) -> None:
        self._mode = TradingMode(mode)

    def set_kill_switch(self, on: bool) -> None:
        self._kill = bool(on)

    @property
    def mode(self) -> TradingMode:
        return self._mode

    @property
    def kill_switch(self) -> bool:
        return self._kill

    def tokens(self, ts_recv: int) -> int:
        return self._tokens_at(ts_recv) // _NS if self._config.rate_per_second else 0

    def denials(self, instrument: int | None = None) -> dict[str, int]:
        counts = self._by(instrument)
        out = {name: counts[i + 1] for i, name in enumerate(denial_names())}
        for name, _ in self._rules:
            if instrument is None:
                out[f"custom:{name}"] = self._custom[name]
            else:
                out[f"custom:{name}"] = self._custom_by_instrument.get((instrument, name), 0)
        return out

    def allowed(self, instrument: int | None = None) -> int:
        return self._by(instrument)[R.ALLOWED]

    def reset_counts(self) -> None:
        self._counts = {None: [0] * len(R)}
        for i in self._config.instruments:
            self._counts[i] = [0] * len(R)
        self._custom = {name: 0 for name, _ in self._rules}
        self._custom_by_instrument = {}

    def _by(self, instrument: int | None) -> list[int]:
        if instrument is None:
            return self._counts[None]
        if isinstance(instrument, bool) or instrument not in self._counts:
            raise KeyError(instrument)
        return self._counts[instrument]


__all__ = ["ConfigError", "RiskEngine"]
