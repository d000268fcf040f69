"""lockstep: one compiled core for backtests and live trading."""
from lockstep.events import COLUMN_NAMES, SCHEMA, SCHEMA_VERSION, EventKind, Flag, Side

__version__ = "0.1.0"

__all__ = ["COLUMN_NAMES", "SCHEMA", "SCHEMA_VERSION", "EventKind", "Flag", "Side", "__version__"]
