"""NASDAQ's wire protocols, bytes only: MoldUDP64 (market data transport), SoupBinTCP 4.1
(order entry transport), OUCH 4.2 (order entry messages) and an ITCH 5.0 encoder (ITCH decoding
is lockstep.data.importers.itch's decoder, which reads MoldUDP64 blocks as they are).

The codecs are C++ (include/lockstep/codecs/), reached through lockstep._bindings.protocols;
lockstep.reference has a pure-Python twin of each module here, and the same tests run against
both. Sockets, sessions and the venue are built on top of these, never inside them. What the
specifications leave open and what these codecs do there: docs/protocols.md.

Messages are frozen dataclasses: numbers as ints (prices in the protocols' own fixed point, 4
implied decimals), alpha fields as str without their padding, one-byte codes as 1-character str.
Text travels as latin-1, so any byte a peer sends decodes and encodes back unchanged. Refused
bytes raise lockstep.errors.ProtocolError with the WireProblem and the byte offset.
"""
