"""How records are judged: each validation rule's action (off, warn, quarantine) and the feed-latency bounds."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lockstep.checks import parse_duration
from lockstep.enums import Rule, RuleAction
from lockstep.errors import ConfigError, SettingError

ACTIONS = RuleAction.labels()

#: What each rule does unless configured otherwise. Feed latency and raised receive stamps are
#: facts about the capture a user should see, not reasons to discard it: the real Binance spot
#: capture runs 1.27 s behind the venue on every message. A crossed book while the venue has not
#: said which phase it is in may be a real pre-open book (CME rests crossed orders before the
#: open): quarantining it would lose the rest of the day to a book that was right.
DEFAULT_ACTIONS: Mapping[str, str] = {
    **{rule.label: RuleAction.QUARANTINE.label for rule in Rule if rule != Rule.OK},
    Rule.FEED_LATENCY.label: RuleAction.WARN.label,
    Rule.TS_RECV_BACKWARDS.label: RuleAction.WARN.label,
    Rule.CROSSED_BOOK_PHASE_UNKNOWN.label: RuleAction.WARN.label,
}
DEFAULT_MAX_FEED_LATENCY_NS = 60 * 10**9
DEFAULT_MIN_FEED_LATENCY_NS = 0


def parse_duration_ns(text: str | int) -> int:
    """'250ms', '-2s', '1500000' (ns) -> int ns, in the one duration grammar
    (lockstep.checks.parse_duration), negatives allowed: a feed-latency bound may be below 0.
    ValueError naming the text otherwise."""
    try:
        return parse_duration("duration", text, allow_negative=True)
    except ConfigError as e:
        raise ValueError(f"{text!r} is not a duration (examples: 500ms, 2s, -1.5s, 1000ns): "
                         f"{e.reason}") from None


@dataclass(frozen=True)
class ValidationConfig:
    """Rule actions (off, warn, quarantine) and the feed-latency bounds."""

    actions: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ACTIONS))
    min_feed_latency_ns: int = DEFAULT_MIN_FEED_LATENCY_NS
    max_feed_latency_ns: int = DEFAULT_MAX_FEED_LATENCY_NS

    def __post_init__(self) -> None:
        merged = dict(DEFAULT_ACTIONS)
        for rule, action in self.actions.items():
            if rule not in DEFAULT_ACTIONS:
                raise ValueError(f"unknown rule {rule!r}; rules are {', '.join(DEFAULT_ACTIONS)}")
            if action not in ACTIONS:
                raise ValueError(f"rule {rule}: action {action!r} is not one of {', '.join(ACTIONS)}")
            merged[rule] = action
        object.__setattr__(self, "actions", merged)
        if self.min_feed_latency_ns > self.max_feed_latency_ns:
            raise ValueError("min feed latency is above the max")

    @classmethod
    def from_options(cls, rules: Sequence[str] = (), min_latency: str | None = None,
                     max_latency: str | None = None) -> ValidationConfig:
        """`rules` as 'name=action' strings."""
        actions = {}
        for item in rules:
            name, sep, action = item.partition("=")
            if not sep:
                raise SettingError("{rules} {item}: expected RULE=ACTION (e.g. feed_latency=quarantine)", ["rules"],
                                   item=repr(item))
            actions[name.strip()] = action.strip()
        return cls(
            actions=actions,
            min_feed_latency_ns=DEFAULT_MIN_FEED_LATENCY_NS if min_latency is None else parse_duration_ns(min_latency),
            max_feed_latency_ns=DEFAULT_MAX_FEED_LATENCY_NS if max_latency is None else parse_duration_ns(max_latency),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"actions": dict(self.actions), "min_feed_latency_ns": self.min_feed_latency_ns,
                "max_feed_latency_ns": self.max_feed_latency_ns}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ValidationConfig:
        return cls(actions=dict(d.get("actions", {})),
                   min_feed_latency_ns=int(d.get("min_feed_latency_ns", DEFAULT_MIN_FEED_LATENCY_NS)),
                   max_feed_latency_ns=int(d.get("max_feed_latency_ns", DEFAULT_MAX_FEED_LATENCY_NS)))

