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
import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers see; at run time each name loads on first use (below)
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

#: Where each public name lives. Loaded on first use, so `import lockstep.events` (or the CLI
#: starting a command that needs one layer) does not pay for every layer; the names are the
#: same objects as in their home modules.
_HOMES: dict[str, tuple[str, str]] = {
    "BacktestConfig": ("lockstep.backtest.config", "BacktestConfig"),
    "BacktestFailed": ("lockstep.backtest.runner", "BacktestFailed"),
    "BacktestResult": ("lockstep.backtest.runner", "BacktestResult"),
    "BookKind": ("lockstep.enums", "BookKind"),
    "COLUMN_NAMES": ("lockstep.events", "COLUMN_NAMES"),
    "CompiledStrategy": ("lockstep._bindings.engine", "CompiledStrategy"),
    "ConfigError": ("lockstep.errors", "ConfigError"),
    "Context": ("lockstep._bindings.engine", "Context"),
    "Dataset": ("lockstep.data.dataset", "Dataset"),
    "DatasetError": ("lockstep.errors", "DatasetError"),
    "DecodeError": ("lockstep.errors", "DecodeError"),
    "EventKind": ("lockstep.events", "EventKind"),
    "Flag": ("lockstep.events", "Flag"),
    "ImportResult": ("lockstep.data.pipeline", "ImportResult"),
    "Instrument": ("lockstep.data.dataset", "Instrument"),
    "Intent": ("lockstep.core.risk", "Intent"),
    "IntentKind": ("lockstep.enums", "IntentKind"),
    "LatencyKind": ("lockstep.enums", "LatencyKind"),
    "LatencySettings": ("lockstep.backtest.config", "LatencySettings"),
    "LimitSettings": ("lockstep.backtest.config", "LimitSettings"),
    "LockstepError": ("lockstep.errors", "LockstepError"),
    "OrderStatus": ("lockstep.enums", "OrderStatus"),
    "OrderUpdate": ("lockstep._bindings.engine", "OrderUpdate"),
    "OutputSettings": ("lockstep.backtest.config", "OutputSettings"),
    "PipelineError": ("lockstep.errors", "PipelineError"),
    "QueueModel": ("lockstep.enums", "QueueModel"),
    "QueueSettings": ("lockstep.backtest.config", "QueueSettings"),
    "ReplayResult": ("lockstep.backtest.replay", "ReplayResult"),
    "RiskReason": ("lockstep.enums", "RiskReason"),
    "RiskSettings": ("lockstep.backtest.config", "RiskSettings"),
    "RiskView": ("lockstep.core.risk", "RiskView"),
    "Rule": ("lockstep.enums", "Rule"),
    "SCHEMA": ("lockstep.events", "SCHEMA"),
    "SCHEMA_VERSION": ("lockstep.events", "SCHEMA_VERSION"),
    "Side": ("lockstep.events", "Side"),
    "Strategy": ("lockstep.core.strategy", "Strategy"),
    "StrategyConfig": ("lockstep.backtest.config", "StrategyConfig"),
    "TimeInForce": ("lockstep.enums", "TimeInForce"),
    "TradingMode": ("lockstep.enums", "TradingMode"),
    "VenueSettings": ("lockstep.backtest.config", "VenueSettings"),
    "generate_synthetic": ("lockstep.data.synth", "generate"),
    "import_data": ("lockstep.data.pipeline", "import_data"),
    "load_config": ("lockstep.backtest.config", "load_config"),
    "replay": ("lockstep.backtest.replay", "replay"),
    "run_backtest": ("lockstep.backtest.runner", "run_backtest"),
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'lockstep' has no attribute {name!r}")
    value = getattr(importlib.import_module(home[0]), home[1])
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

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
