"""`lockstep replay --journal`: a live session's journal run again offline through the same live
core, the journaled venue answers standing in for the venue, and every output compared with
what the session journaled: each decision (intent and Risk's verdict), execution event and
dispatched OUCH message in order, the failure if any, and the final State digest.

    result = replay_journal("data/live/mm-20261203T120000-1a2b3c4d")
    result.digest  # equal to the session's, or JournalMismatch was raised

The first difference raises JournalMismatch naming the stream, the record's number in it and
where the journal holds it (file, offset). docs/journal.md is normative.
"""
from __future__ import annotations

import collections
import dataclasses
import os
from typing import Any

from lockstep.backtest.config import BacktestConfig
from lockstep.data.dataset import Instrument
from lockstep.errors import ConfigError, DecodeError, LockstepError
from lockstep.live.journal import (
    DECISION,
    DECISION_FIELDS,
    EXECUTION,
    EXECUTION_FIELDS,
    INPUT_STREAMS,
    JournalRecord,
    end_record,
    journal_files,
    journal_info,
    read_journal,
)
from lockstep.live.session import DIGEST_VERSION, LiveResult, LiveSession, LiveTerms
from lockstep.tomlconfig import parse_toml

#: The keys of `end` and `failure` records a replay must reproduce (a traceback names files,
#: which differ between machines; the rest is State).
_END_KEYS = ("digest", "orders", "fills", "intents", "denials", "complete")
_FAILURE_KEYS = ("reason", "exception")


class JournalMismatch(LockstepError):
    """The replay of a journal produced something other than what the session journaled."""

    def __init__(self, message: str, stream: str, index: int, where: str) -> None:
        super().__init__(message)
        self.stream = stream
        self.index = index
        self.where = where


def _describe(stream: str, payload: bytes) -> str:
    if stream == "decision" and len(payload) == DECISION.size:
        return str(dict(zip(DECISION_FIELDS, DECISION.unpack(payload), strict=True)))
    if stream == "execution" and len(payload) == EXECUTION.size:
        return str(dict(zip(EXECUTION_FIELDS, EXECUTION.unpack(payload), strict=True)))
    if stream in ("failure", "end"):
        return payload.decode("utf-8", "replace")
    return payload.hex()


def _comparable(record: JournalRecord, check_digest: bool) -> Any:
    if record.stream == "end":
        data = end_record(record)
        return {k: data.get(k) for k in _END_KEYS if check_digest or k != "digest"}
    if record.stream == "failure":
        data = end_record(record)
        return {k: data.get(k) for k in _FAILURE_KEYS}
    return record.payload


class _Comparison:
    """Pairs the outputs the replay produces with the journaled ones, stream by stream, in order."""

    def __init__(self, check_digest: bool) -> None:
        self.check_digest = check_digest
        self.journaled: dict[str, collections.deque[JournalRecord]] = collections.defaultdict(collections.deque)
        self.replayed: dict[str, collections.deque[JournalRecord]] = collections.defaultdict(collections.deque)
        self.matched: collections.Counter[str] = collections.Counter()

    def journal(self, record: JournalRecord) -> None:
        self.journaled[record.stream].append(record)
        self._match(record.stream)

    def replay(self, stream: str, receive_ns: int, payload: bytes) -> None:
        if stream in INPUT_STREAMS:
            return  # the journal's own inputs, read back
        self.replayed[stream].append(JournalRecord(stream, receive_ns, payload, "replay", 0))
        self._match(stream)

    def _match(self, stream: str) -> None:
        ours, theirs = self.replayed[stream], self.journaled[stream]
        while ours and theirs:
            got, want = ours.popleft(), theirs.popleft()
            if (_comparable(got, self.check_digest) != _comparable(want, self.check_digest)
                    or got.receive_ns != want.receive_ns):
                raise JournalMismatch(
                    f"replay differs from the journal at {stream} record {self.matched[stream]} "
                    f"({want.where}): journaled {_describe(stream, want.payload)} at "
                    f"{want.receive_ns}, replayed {_describe(stream, got.payload)} at "
                    f"{got.receive_ns}", stream, self.matched[stream], want.where)
            self.matched[stream] += 1

    def finish(self, where: str, journal_complete: bool) -> None:
        """The leftovers are differences; outputs the replay made past the end of a journal
        without an `end` record are not (the session stopped while applying its last input)."""
        for stream in sorted(set(self.journaled) | set(self.replayed)):
            left, extra = self.journaled[stream], self.replayed[stream]
            if left:
                raise JournalMismatch(
                    f"replay differs from the journal at {stream} record {self.matched[stream]} "
                    f"({left[0].where}): journaled {_describe(stream, left[0].payload)}, the replay "
                    f"produced no more", stream, self.matched[stream], left[0].where)
            if extra and journal_complete:
                raise JournalMismatch(
                    f"replay differs from the journal at {stream} record {self.matched[stream]} "
                    f"({where}): the replay produced {_describe(stream, extra[0].payload)}, the "
                    f"journal has no more", stream, self.matched[stream], where)


def load_session(path: str | os.PathLike[str], record) -> LiveSession:
    """A LiveSession rebuilt from the journal's header (config, instruments, terms)."""
    info = journal_info(path)
    first = journal_files(path)[0]
    try:
        source = f"{first} (journaled config)"
        cfg = BacktestConfig.from_dict(parse_toml(info["config"], source), base_dir=".", source=source)
        instruments = [Instrument(**row) for row in info["instruments"]]
        terms = LiveTerms.from_dict(info["terms"])
    except (KeyError, TypeError, ValueError) as e:
        raise DecodeError(f"journal header does not describe a session: {e}", path=first, offset=0) from None
    except ConfigError as e:
        raise DecodeError(f"journaled config: {e}", path=first, offset=0) from None
    return LiveSession(cfg, instruments, terms, record=record, journal=os.fspath(path))


def replay_journal(path: str | os.PathLike[str]) -> LiveResult:
    """Replays the journal at `path` (a journal directory, a session directory or one journal
    file) and compares; returns the replay's summary, raises JournalMismatch at the first
    difference and DecodeError for a damaged or cut journal. A journal written under another
    digest definition (its header's `digest`, DIGEST_VERSION) has everything compared but the
    digest: the result says so (digest_checked False)."""
    check_digest = journal_info(path).get("digest", 1) == DIGEST_VERSION
    comparison = _Comparison(check_digest)
    session = load_session(path, comparison.replay)
    journaled_end = False
    last = "the end of the journal"
    for record in read_journal(path):
        last = record.where
        if record.stream in INPUT_STREAMS:
            session.apply(record.stream, record.receive_ns, record.payload)
        else:
            journaled_end = journaled_end or record.stream == "end"
            comparison.journal(record)
    result = session.result()
    if journaled_end:
        session.close()
    comparison.finish(last, journaled_end)
    return dataclasses.replace(result, digest_checked=check_digest)


__all__ = ["JournalMismatch", "load_session", "replay_journal"]
