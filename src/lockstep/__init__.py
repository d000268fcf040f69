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
    from lockstep.backtest.runner import BacktestFailed, BacktestInterrupted, BacktestResult, run_backtest
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

#: Where each public name lives, by module. Loaded on first use, so `import lockstep.events` (or
#: a command that needs one layer) does not pay for every layer; each name is the same object as
#: in its home module.
_LAYERS: dict[str, tuple[str, ...]] = {
    "lockstep._bindings.engine": ("CompiledStrategy", "Context", "OrderUpdate"),
    "lockstep.backtest.config": (
        "BacktestConfig", "LatencySettings", "LimitSettings", "OutputSettings", "QueueSettings",
        "RiskSettings", "StrategyConfig", "VenueSettings", "load_config",
    ),
    "lockstep.backtest.replay": ("ReplayResult", "replay"),
    "lockstep.backtest.runner": ("BacktestFailed", "BacktestInterrupted", "BacktestResult", "run_backtest"),
    "lockstep.core.risk": ("Intent", "RiskView"),
    "lockstep.core.strategy": ("Strategy",),
    "lockstep.data.dataset": ("Dataset", "Instrument"),
    "lockstep.data.pipeline": ("ImportResult", "import_data"),
    "lockstep.enums": (
        "BookKind", "IntentKind", "LatencyKind", "OrderStatus", "QueueModel", "RiskReason", "Rule",
        "TimeInForce", "TradingMode",
    ),
    "lockstep.errors": (
        "ConfigError", "DatasetError", "DecodeError", "LockstepError", "PipelineError",
    ),
    "lockstep.events": ("COLUMN_NAMES", "SCHEMA", "SCHEMA_VERSION", "EventKind", "Flag", "Side"),
}
_RENAMED = {"generate_synthetic": ("lockstep.data.synth", "generate")}
_HOMES: dict[str, tuple[str, str]] = {
    **{name: (module, name) for module, names in _LAYERS.items() for name in names}, **_RENAMED,
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
    "BacktestInterrupted",
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
