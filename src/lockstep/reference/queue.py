"""Reference Intent queue: lockstep.core.queue's API and results, in plain Python lists and ints.

Two lists in arrival order (cancels; everything else) and a token bucket in token-nanoseconds.
No intrusive lists or free lists: removal is list.remove-by-index, which is all a twin needs.
"""
from __future__ import annotations

from collections.abc import Callable

from lockstep.checks import i64, non_negative_int, u32
from lockstep.core.queue import COUNTER_NAMES, QueueConfig
from lockstep.core.risk import Intent
from lockstep.enums import IntentKind, QueueResult

_NS = 1_000_000_000  # token units per token
_SUBMITS = (IntentKind.SUBMIT_LIMIT, IntentKind.SUBMIT_MARKET)


class IntentQueue:
    __slots__ = ("_cancels", "_config", "_counters", "_in_flight", "_last_ts", "_normal",
                 "_started", "_tokens")

    def __init__(self, config: QueueConfig) -> None:
        if not isinstance(config, QueueConfig):
            raise TypeError(f"config must be a QueueConfig, not {type(config).__name__}")
        self._config = config
        self._cancels: list[Intent] = []
        self._normal: list[Intent] = []
        self._in_flight = [0] * config.instruments
        self._counters = dict.fromkeys(COUNTER_NAMES, 0)
        self._tokens = config.burst * _NS
        self._last_ts = 0
        self._started = False

    @property
    def config(self) -> QueueConfig:
        return self._config

    def push(self, intent: Intent, ts: int) -> QueueResult:
        if not isinstance(intent, Intent):
            raise TypeError(f"intent must be a lockstep.core.risk.Intent, not {type(intent).__name__}")
        i64("ts", ts)
        c = self._counters
        if intent.instrument >= self._config.instruments:
            c["rejected_bad_instrument"] += 1
            return QueueResult.BAD_INSTRUMENT
        cancel = intent.kind == IntentKind.CANCEL
        if cancel:
            for k, x in enumerate(self._normal):
                if (x.kind in _SUBMITS and x.instrument == intent.instrument
                        and x.client_order_id == intent.target_order_id):
                    del self._normal[k]
                    c["canceled_before_dispatch"] += 1
                    self._drop_replaces(intent)
                    return QueueResult.CANCELED_BEFORE_DISPATCH
        if len(self._cancels) + len(self._normal) >= self._config.capacity:
            c["rejected_full"] += 1
            return QueueResult.FULL
        if cancel:
            self._drop_replaces(intent)
            self._cancels.append(intent)
        else:
            self._normal.append(intent)
        c["pushed"] += 1
        return QueueResult.QUEUED

    def _drop_replaces(self, cancel: Intent) -> None:
        keep = [x for x in self._normal
                if not (x.kind == IntentKind.REPLACE and x.instrument == cancel.instrument
                        and x.target_order_id == cancel.target_order_id)]
        self._counters["replaces_dropped"] += len(self._normal) - len(keep)
        self._normal = keep

    def _tokens_at(self, ts: int) -> int:
        if not self._started or ts <= self._last_ts:
            return self._tokens
        return min(self._config.burst * _NS,
                   self._tokens + (ts - self._last_ts) * self._config.rate_per_second)

    def dispatch(self, ts: int, max_out: int = 64) -> list[Intent]:
        i64("ts", ts)
        max_out = non_negative_int("max_out", max_out)
        self._tokens = self._tokens_at(ts)
        if not self._started or ts > self._last_ts:
            self._last_ts = ts
        self._started = True
        cap = self._config.max_in_flight_per_instrument
        limited = self._config.rate_per_second > 0
        c = self._counters
        out: list[Intent] = []
        for lane in (self._cancels, self._normal):
            kept: list[Intent] = []
            for k, x in enumerate(lane):
                if len(out) == max_out:
                    kept.extend(lane[k:])
                    break
                if cap > 0 and self._in_flight[x.instrument] >= cap:
                    c["deferred_by_in_flight"] += 1
                    kept.append(x)
                elif limited and self._tokens < _NS:
                    c["deferred_by_rate"] += 1
                    kept.append(x)
                else:
                    if limited:
                        self._tokens -= _NS
                    out.append(x)
                    self._in_flight[x.instrument] += 1
                    c["dispatched"] += 1
            lane[:] = kept
        return out

    def withdraw(self, take: Callable[[Intent], bool] | None = None) -> list[Intent]:
        if take is None:
            out, self._normal = self._normal, []
            return out
        answers = [bool(take(x)) for x in self._normal]
        out = [x for x, a in zip(self._normal, answers, strict=True) if a]
        self._normal = [x for x, a in zip(self._normal, answers, strict=True) if not a]
        return out

    def on_response(self, instrument: int) -> None:
        u32("instrument", instrument)
        if instrument < len(self._in_flight) and self._in_flight[instrument] > 0:
            self._in_flight[instrument] -= 1

    def pending(self) -> int:
        return len(self._cancels) + len(self._normal)

    def in_flight(self, instrument: int) -> int:
        u32("instrument", instrument)
        return self._in_flight[instrument] if instrument < len(self._in_flight) else 0

    def tokens(self, ts: int) -> int:
        i64("ts", ts)
        if self._config.rate_per_second == 0:
            return 0
        return self._tokens_at(ts) // _NS

    def counters(self) -> dict[str, int]:
        return dict(self._counters)
