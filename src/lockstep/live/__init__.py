"""Live trading: the backtest Engine driven by a venue's protocol bytes (docs/live.md).

- `session`: LiveSession, the deterministic live core of one session (ITCH 5.0 in MoldUDP64
  blocks and OUCH 4.2 answers in, OUCH 4.2 orders out; every input and output journaled).
- `journal`: the journal format (a raw capture, one stream per kind of record; docs/journal.md).
- `replay`: `lockstep replay --journal`, the journal run again offline and compared.
- `order_entry`: the OUCH-over-SoupBinTCP client on sockets.
"""
