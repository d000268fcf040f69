"""Config files: TOML in, `key=value` overrides on top, frozen values, TOML out.

The schema-free half of every lockstep config (backtest today, live and venue next): a config
module declares its tables and keys, and reads its file with

    data = apply_overrides(read_toml(path), overrides, tables=SCHEMA, free_tables=FREE)
    settings = Settings.from_dict(data)            # frozen, typed, checked
    (run_dir / "config.toml").write_text(dump_toml(settings.to_dict()))

Errors are ConfigError / ConfigSyntaxError naming the file (or OVERRIDE_SOURCE for an override),
the dotted key and, for syntax, the line and column.
"""
from __future__ import annotations

import json
import math
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from lockstep.checks import kind_of
from lockstep.errors import ConfigError, ConfigSyntaxError

#: The source a ConfigError names for a `key=value` override (the command line says --set).
OVERRIDE_SOURCE = "override"


# --------------------------------------------------------------------------------------------
# A read-only, hashable, picklable mapping (MappingProxyType does not pickle)


class FrozenMap(Mapping):
    """An immutable dict. Nested dicts and lists given to freeze() become FrozenMaps and tuples."""

    __slots__ = ("_d",)

    def __init__(self, data: Mapping[str, Any] | Iterable[tuple[str, Any]] = ()) -> None:
        self._d = dict(data)

    def __getitem__(self, key: str) -> Any:
        return self._d[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._d)

    def __len__(self) -> int:
        return len(self._d)

    def __hash__(self) -> int:
        return hash(tuple(self._d.items()))

    def __repr__(self) -> str:
        return f"FrozenMap({self._d!r})"

    def __reduce__(self):
        return (FrozenMap, (self._d,))


def freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return FrozenMap((k, freeze(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """freeze() undone, and Decimals as strings: a TOML/JSON-serialisable value."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    return value


# --------------------------------------------------------------------------------------------
# Reading, overrides


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The TOML document at `path` as a dict; ConfigError naming the file when it cannot be read,
    ConfigSyntaxError with line and column when it does not parse."""
    source = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError("", f"cannot read: {e.strerror or e}", source=source) from None
    except UnicodeDecodeError as e:
        raise ConfigError("", f"not UTF-8 text ({e.reason} at byte {e.start})", source=source) from None
    return parse_toml(text, source)


def parse_toml(text: str, source: str) -> dict[str, Any]:
    """TOML text as a dict; ConfigSyntaxError naming `source` when it does not parse."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise _toml_error(e, source) from None


def dotted_key(k: str) -> str:
    """A table key as written in a dotted path (quoted if not a bare TOML key)."""
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k, ensure_ascii=False)


def _toml_error(e: tomllib.TOMLDecodeError, source: str) -> ConfigSyntaxError:
    msg = str(e)
    m = re.search(r"\s*\(at line (\d+), column (\d+)\)$", msg)
    if m is None:
        m2 = re.search(r"\s*\(at end of document\)$", msg)
        reason = msg[: m2.start()] if m2 else msg
        return ConfigSyntaxError(f"invalid TOML: {reason}", source=source)
    return ConfigSyntaxError(f"invalid TOML: {msg[: m.start()]}", source=source,
                             line=int(m.group(1)), column=int(m.group(2)))


def parse_override(item: str) -> tuple[tuple[str, ...], Any]:
    """`key=value` -> (key path, value). The key is a TOML dotted key (quote parts that are not
    bare keys: risk.instruments."BTC.P".max_position); the value is a TOML value if it parses as
    one (0.5, true, "x", [1, 2], {a = 1}), else the text itself as a string."""
    if not isinstance(item, str) or "=" not in item:
        raise ConfigSyntaxError(f"{item!r} is not key=value", source=OVERRIDE_SOURCE)
    key, _, text = item.partition("=")
    key = key.strip()
    try:
        doc = tomllib.loads(f"{key} = 0")
    except tomllib.TOMLDecodeError:
        raise ConfigSyntaxError(f"{key!r} is not a dotted key", source=OVERRIDE_SOURCE) from None
    path: list[str] = []
    node: Any = doc
    while isinstance(node, dict):
        (k, node), = node.items()
        path.append(k)
    try:
        parsed = tomllib.loads(f"v = {text.strip()}")
        value = parsed["v"] if set(parsed) == {"v"} else text
    except tomllib.TOMLDecodeError:
        value = text
    return tuple(path), value


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str], *,
                    tables: Mapping[tuple[str, ...], Sequence[str]],
                    free_tables: Iterable[tuple[str, ...]] = ()) -> dict[str, Any]:
    """A deep copy of `data` with each `key=value` set (see parse_override). `tables` is the
    schema: the keys each table may hold, by the table's key path (() for the root). A key
    outside it is a ConfigError naming it; keys below a table of `free_tables` are free (what
    reads that table judges them, e.g. a strategy's Params)."""
    free = tuple(free_tables)
    out = _deep_copy(data)
    for item in overrides:
        path, value = parse_override(item)
        dotted = ".".join(dotted_key(p) for p in path)
        for depth in range(len(path)):
            parent = path[:depth]
            if any(parent[: len(f)] == f for f in free) and parent not in tables:
                break
            known = tables.get(parent)
            if known is None:
                where = ".".join(dotted_key(q) for q in parent)
                raise ConfigError(dotted, f"{where} is not a table", source=OVERRIDE_SOURCE)
            if path[depth] not in known:
                raise ConfigError(dotted, "unknown key", source=OVERRIDE_SOURCE)
        node = out
        for i, p in enumerate(path[:-1]):
            child = node.setdefault(p, {})
            if not isinstance(child, dict):
                where = ".".join(dotted_key(q) for q in path[: i + 1])
                raise ConfigError(dotted, f"{where} is not a table", source=OVERRIDE_SOURCE)
            node = child
        node[path[-1]] = value
    return out


def _deep_copy(data: Any) -> Any:
    if isinstance(data, Mapping):
        return {k: _deep_copy(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_deep_copy(v) for v in data]
    return data


# --------------------------------------------------------------------------------------------
# TOML writer


def _toml_string(s: str) -> str:
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _toml_key(k: object) -> str:
    if not isinstance(k, str):
        raise TypeError(f"TOML keys are strings, not {kind_of(k)}")
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else _toml_string(k)


def _toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return _toml_string(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {kind_of(v)} as TOML")


def dump_toml(data: Mapping[str, Any]) -> str:
    """`data` as a TOML document: nested tables become [a.b] sections, lists inline arrays.
    Values: str, int, float, bool, lists of these and tables (inline inside lists)."""
    lines: list[str] = []

    def table(prefix: tuple[str, ...], d: Mapping[str, Any]) -> None:
        scalars = [(k, v) for k, v in d.items() if not isinstance(v, Mapping)]
        subs = [(k, v) for k, v in d.items() if isinstance(v, Mapping)]
        if prefix and (scalars or not subs):
            if lines:
                lines.append("")
            lines.append("[" + ".".join(_toml_key(p) for p in prefix) + "]")
        for k, v in scalars:
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
        for k, v in subs:
            table((*prefix, k), v)

    if not isinstance(data, Mapping):
        raise TypeError(f"a TOML document is a table, not {kind_of(data)}")
    table((), data)
    return "\n".join(lines) + "\n"


__all__ = [
    "OVERRIDE_SOURCE",
    "FrozenMap",
    "apply_overrides",
    "dotted_key",
    "dump_toml",
    "freeze",
    "parse_override",
    "parse_toml",
    "read_toml",
    "thaw",
]
