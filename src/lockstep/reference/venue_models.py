"""Reference fee and latency models: lockstep.venue.matching's FeeModel / LatencyModel API and results.

Follows include/lockstep/venue/venue_models.hpp operation by operation: the same splitmix64, the same
Box-Muller (cosine branch, two outputs per normal) and the same IEEE double operations, so the
latencies are identical integers, not merely close ones.
"""
from __future__ import annotations

import math

from lockstep.checks import i64
from lockstep.enums import LatencyKind
from lockstep.venue.matching import MAX_LATENCY_NS, LatencyConfig, check_latency_config

_M64 = 2**64 - 1
_I128_MAX = 2**127 - 1
_I128_MIN = -(2**127)


class FeeModel:
    __slots__ = ("maker_ppm", "taker_ppm")

    def __init__(self, maker_ppm: int = 0, taker_ppm: int = 0) -> None:
        self.maker_ppm = i64("maker_ppm", maker_ppm)
        self.taker_ppm = i64("taker_ppm", taker_ppm)

    def fee(self, price: int, qty: int, maker: bool) -> int:
        f = i64("price", price) * i64("qty", qty) * (self.maker_ppm if maker else self.taker_ppm)
        return max(_I128_MIN, min(_I128_MAX, f))  # saturates as the __int128 product does


def _to_ns(x: float) -> int:
    if not x > 0.0:
        return 0
    if x >= float(MAX_LATENCY_NS):
        return MAX_LATENCY_NS
    return round(x)  # half to even, as std::nearbyint in the default rounding mode


class LatencyModel:
    __slots__ = ("_config", "_kind", "_entry", "_response", "_sigma", "_mult", "_state")

    def __init__(self, config: LatencyConfig | None = None) -> None:
        self._config = LatencyConfig()
        self._kind, self._entry, self._response = LatencyKind.CONSTANT, 0, 0
        self._sigma, self._mult, self._state = 0.0, 1.0, 0
        self.configure(config if config is not None else LatencyConfig())

    def configure(self, config: LatencyConfig) -> None:
        check_latency_config(config)
        kind, entry, response = config.kind, config.entry_ns, config.response_ns
        sigma, mult, seed = float(config.sigma), float(config.feed_multiplier), config.seed
        if (kind not in LatencyKind.__members__.values() or entry < 0 or response < 0 or entry > MAX_LATENCY_NS
                or response > MAX_LATENCY_NS or not math.isfinite(sigma) or sigma < 0
                or not math.isfinite(mult) or mult < 0):
            raise ValueError(f"invalid latency config {config!r}")
        self._config = config
        self._kind, self._entry, self._response = LatencyKind(kind), entry, response
        self._sigma, self._mult, self._state = sigma, mult, seed

    @property
    def config(self) -> LatencyConfig:
        return self._config

    def next_u64(self) -> int:
        self._state = (self._state + 0x9E3779B97F4A7C15) & _M64
        z = self._state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
        return z ^ (z >> 31)

    def next_normal(self) -> float:
        u1 = float((self.next_u64() >> 11) + 1) * 2.0**-53
        u2 = float(self.next_u64() >> 11) * 2.0**-53
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(6.283185307179586 * u2)

    def _draw(self, base: int, feed_latency_ns: int) -> int:
        feed = i64("feed_latency_ns", feed_latency_ns)
        if self._kind == LatencyKind.LOGNORMAL:
            return _to_ns(float(base) * math.exp(self._sigma * self.next_normal()))
        if self._kind == LatencyKind.FEED:
            extra = _to_ns(float(max(feed, 0)) * self._mult)
            return MAX_LATENCY_NS if extra > MAX_LATENCY_NS - base else base + extra
        return base

    def entry(self, feed_latency_ns: int = 0) -> int:
        return self._draw(self._entry, feed_latency_ns)

    def response(self, feed_latency_ns: int = 0) -> int:
        return self._draw(self._response, feed_latency_ns)
