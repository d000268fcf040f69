"""Decoders of venue captures into NormalizedChunks (the contract: importers/normalized.py).

The data path that runs them (raw, normalize, validate, promote) is lockstep.pipeline.
"""
from lockstep.importers.binance import (
    BinanceDecodeRun,
    builtin_instruments,
    decode_binance,
    load_instruments_file,
)
from lockstep.importers.bybit import decode_bybit
from lockstep.importers.dbn import decode_dbn
from lockstep.importers.itch import decode_itch
from lockstep.importers.tardis import decode_tardis

__all__ = [
    "BinanceDecodeRun", "builtin_instruments", "decode_binance", "decode_bybit", "decode_dbn",
    "decode_itch", "decode_tardis", "load_instruments_file",
]
