"""Queue + Queue Processing: holds allowed Intents and decides, inside the same step, which are
dispatched to the Venue Adapter now.

The rules live in the C++ lockstep::IntentQueue (include/lockstep/core/queue.hpp) behind a thin
wrapper; lockstep.reference.queue is a pure-Python twin with the same API and results.

    q = IntentQueue(QueueConfig(rate_per_second=10, burst=5, max_in_flight_per_instrument=2,
                                capacity=1024, instruments=4))
    q.push(intent, ts)          # -> QueueResult
    sent = q.dispatch(ts)       # -> list[Intent], in dispatch order
    q.on_response(instrument)   # a venue response frees one in-flight slot

* Cancels go before everything else; submits and replaces keep arrival order (a replace must not
  overtake the pending submit it amends). Within a lane: FIFO by arrival.
* An instrument with `max_in_flight_per_instrument` messages awaiting a response is skipped (not
  blocking other instruments) until on_response().
* Every dispatched message, cancels included, takes one token of a bucket of `burst` tokens
  refilled at `rate_per_second` from the `ts` passed to dispatch(), in exact integer arithmetic.
* A cancel whose target (same instrument, target_order_id == client_order_id) is still pending
  as a submit removes it: push returns CANCELED_BEFORE_DISPATCH and nothing reaches the venue.
  Pending replaces of the cancel's target are dropped in either case (counted).
* A full queue returns FULL; storage is fixed when the queue is built.

0 disables `rate_per_second` and `max_in_flight_per_instrument`. Time is only ever the `ts`
argument; nothing reads a wall clock.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from lockstep._bindings import queue as _queue
from lockstep.checks import UINT32_MAX, config_int, i64, non_negative_int, u32, unknown_keys
from lockstep.core.risk import Intent
from lockstep.enums import QueueResult
from lockstep.errors import ConfigError, check_status

#: Bounds of QueueConfig fields (the C++ limits).
MAX_BURST: int = _queue.MAX_BURST
MAX_RATE: int = _queue.MAX_RATE
MAX_CAPACITY: int = _queue.MAX_CAPACITY
MAX_INSTRUMENTS: int = _queue.MAX_INSTRUMENTS

COUNTER_NAMES = (
    "pushed",
    "dispatched",
    "canceled_before_dispatch",
    "replaces_dropped",
    "rejected_full",
    "rejected_bad_instrument",
    "deferred_by_rate",
    "deferred_by_in_flight",
)


_RESULTS = tuple(QueueResult)

# field -> (lowest, highest)
_CONFIG_FIELDS = {
    "rate_per_second": (0, MAX_RATE),
    "burst": (0, MAX_BURST),
    "max_in_flight_per_instrument": (0, UINT32_MAX),
    "capacity": (1, MAX_CAPACITY),
    "instruments": (0, MAX_INSTRUMENTS),
}


@dataclasses.dataclass(frozen=True, slots=True)
class QueueConfig:
    """lockstep::QueueConfig. Instruments are dense ids [0, instruments)."""

    rate_per_second: int = 0  # venue messages per second; 0: no rate limit
    burst: int = 0  # bucket size in messages; >= 1 when rate_per_second > 0
    max_in_flight_per_instrument: int = 0  # 0: no cap
    capacity: int = 1024  # pending intents
    instruments: int = 1

    def __post_init__(self) -> None:
        for f, (lo, hi) in _CONFIG_FIELDS.items():
            config_int(f, getattr(self, f), hi, lo)
        if self.rate_per_second > 0 and self.burst == 0:
            raise ConfigError("burst", "must be >= 1 when rate_per_second > 0")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QueueConfig:
        """Builds a config from a (TOML/JSON-shaped) table, e.g.

            {"rate_per_second": 10, "burst": 5, "max_in_flight_per_instrument": 2,
             "capacity": 1024, "instruments": 4}

        Unknown keys, wrong types and out-of-range values raise ConfigError naming the key.
        """
        unknown_keys("", data, _CONFIG_FIELDS)
        for f, (lo, hi) in _CONFIG_FIELDS.items():
            if f in data:
                config_int(f, data[f], hi, lo)
        return cls(**data)


class IntentQueue:
    """Pending work between Risk and the Venue Adapter; see the module docstring for the rules."""

    __slots__ = ("_config", "_core")

    def __init__(self, config: QueueConfig) -> None:
        if not isinstance(config, QueueConfig):
            raise TypeError(f"config must be a QueueConfig, not {type(config).__name__}")
        self._config = config
        self._core = _queue.IntentQueue()
        # QueueConfig validated every field already: a refusal here is a bug.
        check_status(self._core.configure(config), "queue config")

    @property
    def config(self) -> QueueConfig:
        return self._config

    def push(self, intent: Intent, ts: int) -> QueueResult:
        """Queues an allowed intent arriving at `ts` (or, for a cancel of pending work, removes
        that work)."""
        if not isinstance(intent, Intent):
            raise TypeError(f"intent must be a lockstep.core.risk.Intent, not {type(intent).__name__}")
        return _RESULTS[self._core.push(intent, i64("ts", ts))]

    def dispatch(self, ts: int, max_out: int = 64) -> list[Intent]:
        """The intents to send to the venue now, at most `max_out`, in order."""
        return [Intent(*t) for t in self._core.dispatch(i64("ts", ts),
                                                        non_negative_int("max_out", max_out))]

    def withdraw(self, take: Callable[[Intent], bool] | None = None) -> list[Intent]:
        """Removes every pending submit and replace, oldest first (cancels stay): what must not
        leave once the kill switch is on or trading halted. With `take`, only those it says yes
        to (reduce-only: what could grow a position); it is asked of each before any is
        removed, so an exception it raises leaves the queue as it was."""
        if take is None:
            return [Intent(*t) for t in self._core.withdraw()]
        return [Intent(*t) for t in self._core.withdraw(lambda row: take(Intent(*row)))]

    def on_response(self, instrument: int) -> None:
        """A venue response for one message on `instrument` frees one in-flight slot (ignored
        when nothing is in flight there)."""
        self._core.on_response(u32("instrument", instrument))

    def pending(self) -> int:
        """Intents waiting in the queue."""
        return self._core.pending()

    def in_flight(self, instrument: int) -> int:
        """Dispatched messages on `instrument` awaiting a venue response."""
        return self._core.in_flight(u32("instrument", instrument))

    def tokens(self, ts: int) -> int:
        """Whole rate tokens available at `ts`, spending none (0 when there is no rate limit)."""
        return self._core.tokens(i64("ts", ts))

    def counters(self) -> dict[str, int]:
        """Counts since construction, keyed by COUNTER_NAMES (see queue.hpp QueueCounters)."""
        return self._core.counters()


__all__ = [
    "COUNTER_NAMES",
    "MAX_BURST",
    "MAX_CAPACITY",
    "MAX_INSTRUMENTS",
    "MAX_RATE",
    "IntentQueue",
    "QueueConfig",
    "QueueResult",
]
