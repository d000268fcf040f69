"""The market data recorder: feeds captured into raw capture files (docs/raw-format.md)."""
