"""Every Python enum whose values cross the C++ boundary against its C++ enum, one test per enum.

The bindings expose the C++ enumerators by their C++ names (ENUMERATORS, values read from the
compiled core) and the C++ *_name() text of each value where C++ has such a function
(ENUM_NAMES). A C++ enumerator `PostOnly` is the Python member POST_ONLY; a constant `kBadTsRecv`
is BAD_TS_RECV.
"""
from __future__ import annotations

import enum
import re

import pytest

import lockstep.enums
from lockstep._bindings import (
    binance,
    books,
    capture,
    engine,
    execution,
    itch_feed,
    live_loop,
    matching,
    net,
    protocols,
    queue,
    raw_capture,
    replay,
    risk,
    sessions,
    synth,
    validate,
    venue_models,
)
from lockstep.enums import LabeledEnum, Status
from lockstep.errors import STATUS_TEXT
from lockstep.events import EventKind, Flag, Side

_BINDINGS = (binance, books, capture, engine, execution, itch_feed, live_loop, matching, net,
             protocols, queue, raw_capture, replay, risk, sessions, synth, validate, venue_models)

# Where the Python name is not the C++ one in upper snake case: the config label comes from the
# Python name ("lognormal"), so the spelling differs on purpose.
_SPELLING = {
    ("LatencyKind", "LogNormal"): "LOGNORMAL",
    ("MarketType", "UsdM"): "USDM",
    ("MarketType", "CoinM"): "COINM",
    ("IncrementSource", "BuiltIn"): "BUILTIN",
}

# The *_name() texts that are the member's label; Status's are messages (lockstep.errors).
_LABELED_NAMES = {"Anomaly", "BinanceSkip", "MarketType", "RiskReason", "Rule", "WireProblem"}

ENUMS = sorted(
    (obj for obj in vars(lockstep.enums).values()
     if isinstance(obj, type) and issubclass(obj, enum.Enum) and obj is not LabeledEnum),
    key=lambda e: e.__name__,
) + [EventKind, Flag, Side]


def _python_name(enum_name: str, cpp_name: str) -> str:
    spelled = _SPELLING.get((enum_name, cpp_name))
    if spelled is not None:
        return spelled
    bare = re.sub(r"^k(?=[A-Z])", "", cpp_name)  # constants: kLast
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", bare).upper()


def _cpp_enumerators(name: str) -> list[dict[str, int]]:
    """Each binding's view of the C++ enum(s) mirrored by `name` (BookKind has two)."""
    return [b.ENUMERATORS[name] for b in _BINDINGS if name in getattr(b, "ENUMERATORS", {})]


def _cpp_names(name: str) -> dict[int, str] | None:
    found = [b.ENUM_NAMES[name] for b in _BINDINGS if name in getattr(b, "ENUM_NAMES", {})]
    assert len(found) <= 1
    return found[0] if found else None


@pytest.mark.parametrize("py_enum", ENUMS, ids=lambda e: e.__name__)
def test_enum_matches_its_cpp_enum(py_enum):
    name = py_enum.__name__
    members = {m.name: m.value for m in py_enum}
    enumerators = _cpp_enumerators(name)
    names = _cpp_names(name)
    assert enumerators or names, f"{name}: no binding exposes its C++ enum"
    for cpp in enumerators:
        assert {_python_name(name, k): v for k, v in cpp.items()} == members
    if names is not None:
        assert len(names) == len(py_enum)
        if name in _LABELED_NAMES:
            assert names == {m.value: m.label for m in py_enum}
        else:
            assert name == "Status"
            assert names == {m.value: STATUS_TEXT[m] for m in Status}


def test_every_binding_enum_has_a_python_enum():
    exposed = {n for b in _BINDINGS for n in (*getattr(b, "ENUMERATORS", {}), *getattr(b, "ENUM_NAMES", {}))}
    assert exposed == {e.__name__ for e in ENUMS}


def test_labels_round_trip():
    for py_enum in ENUMS:
        if issubclass(py_enum, LabeledEnum):
            assert [py_enum.from_label(m.label) for m in py_enum] == list(py_enum)
    assert lockstep.enums.LatencyKind.labels() == ("constant", "lognormal", "feed")
    with pytest.raises(ValueError, match="one of l2, l3"):
        lockstep.enums.BookKind.from_label("L2")
