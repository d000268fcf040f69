"""Live trading: the Core Runtime on sockets (docs/live.md, docs/live-operations.md).

- `session`: LiveSession, the deterministic live core of one session (ITCH 5.0 in MoldUDP64
  blocks and OUCH 4.2 answers in, OUCH 4.2 orders out; every input and output journaled).
- `journal`: the journal format (a raw capture, one stream per kind of record; docs/journal.md).
- `replay`: `lockstep replay --journal`, the journal run again offline and compared.
- `order_entry`: OrderEntryClient, OUCH 4.2 over SoupBinTCP 4.1 on our sockets, reconnecting and
  logging in again from the next sequence number.
- `config`, `control`, `records`: the `[live]` config, the control socket, execution records
  (docs/live-operations.md).
- `probe`: `lockstep live probe`, what the host costs a node (its CPU's stalls, the tick-to-trade
  of a node that does no work).
"""
