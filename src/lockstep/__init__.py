"""lockstep: one compiled core for backtests and live trading.

What a user embeds is importable from here:

    import lockstep

    class Quoter(lockstep.Strategy):
        def on_book(self, ctx: lockstep.Context, instrument: int) -> None: ...

    result = lockstep.run_backtest("quoter.toml", overrides=["dataset=binance-usdm-btcusdt"])
    result.digest, result.fills_table(), result.pnl_table()

The modules below hold the rest (docs/architecture.md is the map): lockstep.data (storage,
datasets, importers, the import pipeline), lockstep.backtest (configs, the runner, reports,
replay), lockstep.core and lockstep.venue (the typed API of the compiled components).
"""
from lockstep._bindings.engine import CompiledStrategy, Context, OrderUpdate
from lockstep.backtest.config import (
    BacktestConfig,
    LatencySettings,
    LimitSettings,
    OutputSettings,
    QueueSettings,
    RiskSettings,
    StrategyConfig,
    VenueSettings,
    load_config,
)
from lockstep.backtest.replay import ReplayResult, replay
from lockstep.backtest.runner import BacktestFailed, BacktestResult, run_backtest
from lockstep.core.risk import Intent, RiskView
from lockstep.core.strategy import Strategy
from lockstep.data.dataset import Dataset, Instrument
from lockstep.data.pipeline import ImportResult, import_data
from lockstep.data.synth import generate as generate_synthetic
from lockstep.enums import (
    BookKind,
    IntentKind,
    LatencyKind,
    OrderStatus,
    QueueModel,
    RiskReason,
    Rule,
    TimeInForce,
    TradingMode,
)
from lockstep.errors import ConfigError, DatasetError, DecodeError, LockstepError, PipelineError
from lockstep.events import COLUMN_NAMES, SCHEMA, SCHEMA_VERSION, EventKind, Flag, Side

__version__ = "0.1.0"

__all__ = [
    "COLUMN_NAMES",
    "SCHEMA",
    "SCHEMA_VERSION",
    "BacktestConfig",
    "BacktestFailed",
    "BacktestResult",
    "BookKind",
    "CompiledStrategy",
    "ConfigError",
    "Context",
    "Dataset",
    "DatasetError",
    "DecodeError",
    "EventKind",
    "Flag",
    "ImportResult",
    "Instrument",
    "Intent",
    "IntentKind",
    "LatencyKind",
    "LatencySettings",
    "LimitSettings",
    "LockstepError",
    "OrderStatus",
    "OrderUpdate",
    "OutputSettings",
    "PipelineError",
    "QueueModel",
    "QueueSettings",
    "ReplayResult",
    "RiskReason",
    "RiskSettings",
    "RiskView",
    "Rule",
    "Side",
    "Strategy",
    "StrategyConfig",
    "TimeInForce",
    "TradingMode",
    "VenueSettings",
    "__version__",
    "generate_synthetic",
    "import_data",
    "load_config",
    "replay",
    "run_backtest",
]
