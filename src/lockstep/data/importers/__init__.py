"""Decoders of venue captures into NormalizedChunks (the contract: importers/normalized.py).

The data path that runs them (raw, normalize, validate, promote) is lockstep.data.pipeline.
"""
from lockstep.data.importers.binance import (
    BinanceDecodeRun,
    builtin_instruments,
    decode_binance,
    load_instruments_file,
)
from lockstep.data.importers.bybit import decode_bybit
from lockstep.data.importers.dbn import decode_dbn
from lockstep.data.importers.itch import decode_itch
from lockstep.data.importers.tardis import decode_tardis

__all__ = [
    "BinanceDecodeRun", "builtin_instruments", "decode_binance", "decode_bybit", "decode_dbn",
    "decode_itch", "decode_tardis", "load_instruments_file",
]
