"""Live trading: the Core Runtime on sockets (docs/live.md, docs/live-operations.md).
`order_entry`: the OUCH 4.2 over SoupBinTCP 4.1 client."""
