"""Value checks shared by every layer: config keys, C++ field ranges, the one duration grammar.

Two families, by who is at fault:

* config checks (`config_int`, `unknown_keys`, `config_label`, `parse_duration`) judge what a
  user wrote and raise lockstep.errors.ConfigError naming the dotted key;
* field checks (`int_in`, `i64`, `u8`, `u32`, `u64`, `order_id_and_ts`, `non_negative_int`,
  `non_negative_float`, `queue_model`) guard values handed to the C++ core by code and raise
  TypeError / OverflowError (ValueError where no fixed range applies) naming the field, as a
  wrong argument to any Python call would. The compiled-side API and its pure-Python reference
  twin call the same ones, so both refuse a bad argument alike.

Depends only on the ground floor (errors, enums) and the standard library.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

from lockstep.enums import LabeledEnum, QueueModel
from lockstep.errors import ConfigError

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UINT8_MAX = 2**8 - 1
UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1

E = TypeVar("E", bound=LabeledEnum)


def kind_of(value: object) -> str:
    """The type name used in messages ("must be an int, not str")."""
    return type(value).__name__


# --------------------------------------------------------------------------------------------
# Config checks (ConfigError naming the key)


def config_int(key: str, value: object, hi: int, lo: int = 0) -> int:
    """`value` as an int in [lo, hi] (bool is not an int), else ConfigError naming `key`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(key, f"must be an int, not {kind_of(value)}")
    if not lo <= value <= hi:
        raise ConfigError(key, f"{value} is outside [{lo}, {hi}]")
    return value


def unknown_keys(prefix: str, data: Mapping[str, Any], known: Iterable[str]) -> None:
    """ConfigError unless `data` is a table whose keys are all in `known`. `prefix` is the dotted
    path of the table with a trailing dot ("" for the root)."""
    if not isinstance(data, Mapping):
        where = prefix.rstrip(".") or "<root>"
        raise ConfigError(where, f"must be a table, not {kind_of(data)}")
    known = set(known)
    for k in data:
        if k not in known:
            raise ConfigError(f"{prefix}{k}", "unknown key")


def config_label(key: str, value: object, enum_type: type[E]) -> E:
    """The member of `enum_type` a config names by its label ("lognormal", "reduce_only"),
    else ConfigError listing the labels."""
    if not isinstance(value, str):
        raise ConfigError(key, f"must be a string, not {kind_of(value)}")
    if value not in enum_type.labels():
        raise ConfigError(key, f"{value!r} is not one of {', '.join(enum_type.labels())}")
    return enum_type.from_label(value)


# --------------------------------------------------------------------------------------------
# Durations: the one grammar

_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
            "m": 60_000_000_000, "h": 3_600_000_000_000}
_DURATION = re.compile(r"\s*(-?[0-9][0-9_]*(?:\.[0-9_]*)?)\s*(ns|us|µs|ms|s|m|h)?\s*")
_DURATION_HELP = 'must be a duration like "1ms" or an int of ns'


def parse_duration(key: str, value: object, *, positive: bool = False,
                   allow_negative: bool = False) -> int:
    """A duration in int nanoseconds. The one grammar, for configs and the command line alike:

    * an int: nanoseconds;
    * a string: a decimal number (digits, optional fraction, `_` separators allowed) and an
      optional unit ns, us (or µs), ms, s, m (minutes) or h; no unit means ns. "250us",
      "1.5ms", " 2 s ", "1_000ns", "1500".
    * the result is a whole number of nanoseconds within int64 ("1.5ns" is refused, never
      rounded), >= 0 unless `allow_negative` (a leading "-"; the validator's feed-latency bounds
      may be negative, a clock skew between venue and receiver), > 0 if `positive`.

    Anything else raises ConfigError naming `key`.
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ConfigError(key, f"{_DURATION_HELP}, not {kind_of(value)}")
    if isinstance(value, int):
        ns = value
    else:
        m = _DURATION.fullmatch(value)
        if m is None:
            raise ConfigError(key, f"{_DURATION_HELP}, not {value!r}")
        exact = Decimal(m.group(1).replace("_", "")) * _UNIT_NS[m.group(2) or "ns"]
        if exact != exact.to_integral_value():
            raise ConfigError(key, f"{value!r} is not a whole number of nanoseconds")
        ns = int(exact)
    lo = INT64_MIN if allow_negative else 0
    if not lo <= ns <= INT64_MAX:
        raise ConfigError(key, f"{value!r} is outside [{lo}, {INT64_MAX}] ns")
    if positive and ns <= 0:
        raise ConfigError(key, "must be > 0")
    return ns


def format_duration(ns: int) -> str:
    """The shortest exact spelling of `ns` with one of the units s, ms, us, ns: 1_000_000 ->
    "1ms", 1_500 -> "1500ns". parse_duration reads it back to `ns`."""
    for unit in ("s", "ms", "us"):
        if ns and ns % _UNIT_NS[unit] == 0:
            return f"{ns // _UNIT_NS[unit]}{unit}"
    return f"{ns}ns"


# --------------------------------------------------------------------------------------------
# Field checks (TypeError / OverflowError naming the field)


def int_in(name: str, value: object, lo: int, hi: int) -> int:
    """`value` as an int in [lo, hi]: TypeError if it is not an int (bool is not), OverflowError
    if it is outside, as the C++ field it is bound for could not hold it."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {kind_of(value)}")
    if not lo <= value <= hi:
        raise OverflowError(f"{name}={value} is outside [{lo}, {hi}]")
    return value


def i64(name: str, value: object) -> int:
    """int_in over int64."""
    return int_in(name, value, INT64_MIN, INT64_MAX)


def u8(name: str, value: object) -> int:
    """int_in over uint8 (sides, kinds, time in force)."""
    return int_in(name, value, 0, UINT8_MAX)


def u32(name: str, value: object) -> int:
    """int_in over uint32 (instrument ids)."""
    return int_in(name, value, 0, UINT32_MAX)


def u64(name: str, value: object) -> int:
    """int_in over uint64 (client order ids)."""
    return int_in(name, value, 0, UINT64_MAX)


def order_id_and_ts(client_order_id: object, ts: object) -> tuple[int, int]:
    """The arguments of an order event: a uint64 client order id and an int64 ts."""
    return u64("client_order_id", client_order_id), i64("ts", ts)


def non_negative_int(name: str, value: object) -> int:
    """`value` as an int >= 0 of any size: TypeError if it is not an int (bool is not),
    ValueError if it is negative."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {kind_of(value)}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, not {value}")
    return value


def non_negative_float(name: str, value: object) -> float:
    """`value` (an int or a float; bool is not) as a finite float >= 0: TypeError if it is not a
    number, ValueError if it is negative, infinite or NaN."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, not {kind_of(value)}")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{name} must be finite and >= 0, not {value!r}")
    return number


def queue_model(value: object) -> QueueModel:
    """`value` (a QueueModel or its int) as a QueueModel: u8's errors for the field "model",
    ValueError for a value no model has."""
    try:
        return QueueModel(u8("model", value))
    except ValueError:
        raise ValueError(f"unknown queue model {value!r}") from None


__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "UINT32_MAX",
    "UINT64_MAX",
    "UINT8_MAX",
    "config_int",
    "config_label",
    "format_duration",
    "i64",
    "int_in",
    "kind_of",
    "non_negative_float",
    "non_negative_int",
    "order_id_and_ts",
    "parse_duration",
    "queue_model",
    "u32",
    "u64",
    "u8",
    "unknown_keys",
]
