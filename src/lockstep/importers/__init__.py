"""Importers: venue captures -> canonical event batches -> canonical datasets."""
from lockstep.importers.binance import BinanceDecodeRun, builtin_instruments, decode_binance
from lockstep.importers.to_dataset import ImportReport, import_binance

__all__ = ["BinanceDecodeRun", "ImportReport", "builtin_instruments", "decode_binance", "import_binance"]
