"""What every decode run shares (the DecodeRun protocol of importers/normalized.py): it is iterated
once, and its report (instruments, inputs, counts) is known once decoding has ended."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from lockstep.data.dataset import Instrument
from lockstep.data.importers.normalized import InputFile, NormalizedChunk
from lockstep.errors import LockstepError


class DecodeRunBase:
    """A DecodeRun whose decoding is `_run()`: it appends an InputFile to `_inputs` per input read,
    fills `_instruments` (the table event `instrument` indexes into) and ends with `_finish(counts)`."""

    format = ""
    requires_snapshot = True

    def __init__(self) -> None:
        self._iterated = False
        self._done = False
        self._instruments: list[Instrument] = []
        self._inputs: list[InputFile] = []
        self._counts: dict[str, Any] = {}
        self._restart_allowed = False

    def allow_restart(self) -> None:
        """Before iterating: the consumer can discard every chunk it was handed when iterating
        raises DecodeRestart (lockstep.errors), and iterate that exception's `restarted()` run
        instead. A decoder may then hand chunks out before it has checked what only a first pass
        over the inputs can check (Binance: every value against its configured increment)."""
        self._restart_allowed = True

    def __iter__(self) -> Iterator[NormalizedChunk]:
        if self._iterated:
            raise LockstepError(f"a {type(self).__name__} can be iterated only once")
        self._iterated = True
        return self._run()

    def _run(self) -> Iterator[NormalizedChunk]:  # pragma: no cover - every decoder has its own
        raise NotImplementedError

    def _finish(self, counts: dict[str, Any]) -> None:
        """Decoding has ended (to the end of the inputs, or at a fatal error for decoders that
        report what they read before it): the report is known."""
        self._counts = counts
        self._done = True

    def _require(self) -> None:
        if not self._done:
            raise LockstepError(f"the {self.format} decode run has not been iterated yet: "
                                "its report comes from decoding")

    @property
    def instruments(self) -> list[Instrument]:
        self._require()
        return list(self._instruments)

    @property
    def inputs(self) -> list[InputFile]:
        self._require()
        return list(self._inputs)

    @property
    def counts(self) -> dict[str, Any]:
        self._require()
        return self._counts
