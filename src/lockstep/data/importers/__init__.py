"""The formats the data path reads: THE registry of each format's name, its decoder and the
settings it takes. The data path (lockstep.data.pipeline) and the command line read formats from
here and keep no list of their own.

A decoder turns venue captures into NormalizedChunks (the contract: importers/normalized.py). A
format's settings are the keyword arguments of its decoder, with their types and defaults as the
decoder declares them; a setting a format does not take is refused by its key (SettingError).
"""
from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lockstep.data.importers.binance import (
    BinanceDecodeRun,
    builtin_instruments,
    decode_binance,
    load_instruments_file,
)
from lockstep.data.importers.bybit import decode_bybit
from lockstep.data.importers.capture import decode_capture
from lockstep.data.importers.dbn import decode_dbn
from lockstep.data.importers.itch import decode_itch
from lockstep.data.importers.normalized import DecodeRun
from lockstep.data.importers.tardis import decode_tardis
from lockstep.errors import SettingError

#: Events per Binance chunk on the data path: small enough that writing one chunk overlaps with
#: decoding the next.
DATA_PATH_CHUNK_EVENTS = 1 << 17

#: What the settings users are offered (the command line's flags) mean, in the order they are
#: named; the other settings are for Python callers.
OFFERED: Mapping[str, str] = {
    "venue": "venue name for the instrument table",
    "price_increment": "data price increment, exact decimal (refined if the data are finer)",
    "size_increment": "data size increment, exact decimal (refined if the data are finer)",
    "date": "session date YYYY-MM-DD (else from the file name)",
    "definitions": "a DBN file of instrument definitions",
    "instruments_file": "JSON file of instruments (symbol, price_increment, size_increment)",
    "snapshot_symbol": "the symbol of bare REST depth snapshot lines (default: the one symbol seen before)",
    "stream": "the feed of a recorder capture to import (default: each feed, a dataset apiece)",
}


@dataclass(frozen=True)
class Setting:
    """One keyword a format's decoder takes: its key, the type of its value (as the decoder
    annotates it), its default and, for settings offered to users, what it means."""

    key: str
    type: str
    default: Any
    meaning: str | None

    @property
    def is_path(self) -> bool:
        """The value names a file (the command line checks that it exists)."""
        return "PathLike" in self.type


@dataclass(frozen=True)
class Format:
    """A format the data path reads."""

    name: str
    decoder: Callable[..., DecodeRun]  # decoder(paths, **settings)
    settings: tuple[Setting, ...]
    book: str = "l2"  # the book of an instrument the decoder has not described (yet)
    binary: bool = False  # records are bytes, not lines
    reads_raw_captures: bool = False  # lockstep raw capture files are its input too (as lines)
    # Its decoder reads recorder capture files itself, and a record's position is a byte range
    # of the file as stored (not of the lines a capture is read as).
    reads_capture_files: bool = False
    # The trading phase (a lockstep.enums.TradingPhase label) its instruments are in until the
    # data announce one: "continuous" for venues that trade around the clock and never announce
    # phases (a crossed book there is an error), "unknown" for those that do (docs/data.md).
    session_phase: str = "unknown"

    def setting(self, key: str) -> Setting | None:
        return next((s for s in self.settings if s.key == key), None)

    def decode(self, paths: Sequence[Any], settings: Mapping[str, Any]) -> DecodeRun:
        """The decode run over `paths` (one stream, in order); settings given as None are left out,
        a setting the format does not take is a SettingError naming it."""
        given = {k: v for k, v in settings.items() if v is not None}
        order = list(OFFERED)
        refused = sorted((k for k in given if self.setting(k) is None),
                         key=lambda k: order.index(k) if k in order else len(order))
        if refused:
            raise SettingError(", ".join("{%s}" % k for k in refused) + " does not apply to {format} imports",
                               refused, format=self.name)
        return self.decoder(list(paths), **given)


def _settings(*decoders: Callable[..., Any]) -> tuple[Setting, ...]:
    """The keyword parameters of `decoders` as settings; the first decoder to declare a key gives it."""
    out: dict[str, Setting] = {}
    for decoder in decoders:
        for p in inspect.signature(decoder).parameters.values():
            if p.kind is p.KEYWORD_ONLY and p.name not in out:
                out[p.name] = Setting(p.name, str(p.annotation), None if p.default is p.empty else p.default,
                                      OFFERED.get(p.name))
    return tuple(out.values())


def decode_binance_files(paths: Iterable[Any], *, instruments_file: str | os.PathLike[str] | None = None,
                         venue: str | None = None, batch_size: int = DATA_PATH_CHUNK_EVENTS,
                         **settings: Any) -> BinanceDecodeRun:
    """decode_binance with the data path's settings: `instruments_file` (load_instruments_file)
    in place of `instruments`, `venue` taken but not used (a Binance venue follows from the
    market type), and chunks of DATA_PATH_CHUNK_EVENTS."""
    if instruments_file is not None:
        settings["instruments"] = load_instruments_file(instruments_file)
    return decode_binance(list(paths), batch_size=batch_size, **settings)


FORMATS: Mapping[str, Format] = {f.name: f for f in (
    Format("binance", decode_binance_files, _settings(decode_binance_files, decode_binance),
           reads_raw_captures=True, session_phase="continuous"),
    Format("bybit", decode_bybit, _settings(decode_bybit), session_phase="continuous"),
    Format("tardis", decode_tardis, _settings(decode_tardis), session_phase="continuous"),
    Format("dbn", decode_dbn, _settings(decode_dbn), binary=True),
    Format("itch", decode_itch, _settings(decode_itch), book="l3", binary=True),
    Format("capture", decode_capture, _settings(decode_capture), book="l3", binary=True,
           reads_capture_files=True),
)}


def offered_settings() -> list[Setting]:
    """The settings offered to users, in OFFERED's order; the meaning of a setting only one format
    takes starts with that format's name."""
    out = []
    for key, meaning in OFFERED.items():
        takers = [f.name for f in FORMATS.values() if f.setting(key) is not None]
        typed = next(s for f in FORMATS.values() if (s := f.setting(key)) is not None)
        if len(takers) == 1:
            meaning = f"{takers[0]}: {meaning}"
        out.append(Setting(key, typed.type, None, meaning))
    return out


__all__ = [
    "DATA_PATH_CHUNK_EVENTS", "FORMATS", "OFFERED", "BinanceDecodeRun", "Format", "Setting",
    "builtin_instruments", "decode_binance", "decode_binance_files", "decode_bybit", "decode_capture",
    "decode_dbn",
    "decode_itch", "decode_tardis", "load_instruments_file", "offered_settings",
]
