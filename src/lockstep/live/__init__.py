"""Live trading: the core on sockets. `order_entry`: the OUCH 4.2 over SoupBinTCP 4.1 client."""
