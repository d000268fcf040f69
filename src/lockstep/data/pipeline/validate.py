"""Step 3, validate: the compiled validator gives every record a verdict (rules in docs/data.md)."""
from __future__ import annotations

from collections.abc import Sequence

from lockstep._bindings.validate import Validator
from lockstep.data.dataset import Instrument
from lockstep.data.importers.normalized import NormalizedChunk
from lockstep.data.pipeline.rules import ValidationConfig
from lockstep.enums import TradingPhase


class GrowingValidator:
    """The compiled validator, rebuilt with more instruments when a decoder learns new ones
    mid-stream (only before any event of the new instruments was judged, which is when they
    appear)."""

    def __init__(self, cfg: ValidationConfig, requires_snapshot: bool,
                 session_phase: TradingPhase = TradingPhase.UNKNOWN) -> None:
        self.cfg = cfg
        self.requires_snapshot = requires_snapshot
        self.session_phase = session_phase
        self.core = None
        self.size = 0

    def grow(self, need: int, table: Sequence[Instrument], default_book: str) -> None:
        if self.core is not None and need <= self.size:
            return
        books = [table[i].book if i < len(table) else default_book for i in range(max(need, 1))]
        if self.core is None:
            self.core = Validator(books, [self.requires_snapshot and b == "l2" for b in books],
                                  dict(self.cfg.actions), self.cfg.min_feed_latency_ns,
                                  self.cfg.max_feed_latency_ns, self.session_phase)
        else:
            self.core.add_instruments(books[self.size:], [self.requires_snapshot and b == "l2"
                                                           for b in books[self.size:]])
        self.size = len(books)

    def check(self, chunk: NormalizedChunk):
        assert self.core is not None
        return self.core.check(chunk)

