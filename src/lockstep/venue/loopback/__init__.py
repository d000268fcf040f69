"""The loopback venue (`lockstep venue serve`): a canonical dataset served on one machine in
NASDAQ's protocols. config.py reads its TOML, feed.py is the market data side (ITCH 5.0 over
MoldUDP64 with retransmission), serve.py the run loop the order-entry side plugs into.
docs/loopback-venue.md describes it."""
