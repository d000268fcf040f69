"""Live trading: the Core Runtime on sockets (docs/live.md, docs/live-operations.md)."""
