"""A live session's deterministic core: the backtest Engine under the live Core Runtime
(include/lockstep/runtime/live.hpp), fed protocol bytes with their receive stamps, journaling
every input and output (lockstep.live.journal). No socket, no clock: the socket node (or a
journal replay) calls it.

    session = LiveSession(cfg, instruments, terms, record=journal.write)
    send(session.on_itch(blocks, first_sequence, stamp))   # MoldUDP64 blocks, in sequence
    send(session.on_ouch(message, stamp))                  # one OUCH 4.2 message from the venue
    send(session.on_tick(stamp))                           # timers
    send(session.on_feed_gap(expected, stamp))             # a gap retransmission did not fill
    send(session.on_snapshot(blocks, next_sequence, stamp))  # the books again, from a snapshot
    send(session.on_kill(True, stamp))                     # control: kill switch, trading mode
    send(session.on_order_entry(False, stamp))             # order entry lost / back (reconcile)
    send(session.on_feed_session(stamp))                   # the feed's session changed
    send(session.finish(stamp))                            # the strategy's on_stop
    result = session.close()                               # digest, orders, fills, ...

Each input returns the OUCH 4.2 inbound messages (Enter, Replace, Cancel Order) it dispatched,
in order, for the caller to send as SoupBinTCP unsequenced data. A strategy that raises halts
trading: the input's return holds a Cancel Order for every open order, `failure` says what
happened, and every later input is refused (journaled, not applied), except the order-entry
state, so that the halt's cancels still leave after a reconnect, and the venue's OUCH answers,
applied to Execution State only, so that those cancels end the orders. docs/live.md is
normative.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from lockstep._bindings import engine as _engine
from lockstep.backtest.config import BacktestConfig
from lockstep.backtest.runner import strategy_engine, traded_of
from lockstep.data.dataset import Instrument
from lockstep.enums import RunStatus, TradingMode
from lockstep.errors import ConfigError, check_status
from lockstep.live.journal import (
    CONTROL_FEED_SESSION,
    CONTROL_KILL,
    CONTROL_MODE,
    CONTROL_ORDER_ENTRY,
    DECISION,
    EXECUTION,
    SEQUENCE,
    SNAPSHOT_PART_BYTES,
    JournalWriter,
    snapshot_parts,
    split_outbound,
    split_records,
)
from lockstep.tomlconfig import dump_toml
from lockstep.venue.loopback.feed import feed_symbol, price_multiplier

#: Called with (stream, receive_ns, payload) for every record of the session, inputs first.
Recorder = Callable[[str, int, bytes], None]

_FAILURES = {
    RunStatus.STRATEGY_FAILED: "the strategy raised",
    RunStatus.RISK_HOOK_FAILED: "a custom risk rule raised",
    RunStatus.LIVELOCK: "livelock: too many steps at one receive stamp",
}


#: The digest's definition (what state_digest and LiveCore::end_input hash: docs/live.md,
#: "Digest"), journaled in the header as `digest`. It moves whenever what is hashed changes, so
#: a replay knows whether it can check an older journal's digest (1: journals without the key,
#: written before the live core hashed its outputs itself).
DIGEST_VERSION = 2


def state_digest(engine: Any, outputs_digest: bytes) -> str:
    """SHA-256 over Market State, execution-side State and `outputs_digest` (the live core's hash
    of every output: docs/live.md, "Digest")."""
    return hashlib.sha256(
        engine.market.serialize_state() + engine.serialize_state() + outputs_digest
    ).hexdigest()


@dataclass(frozen=True)
class VenueInstrument:
    """How the venue names and prices one instrument: its ITCH/OUCH stock (at most 8
    characters) and how many Price(4) units one tick is."""

    stock: str
    price_multiplier: int


def venue_instruments(instruments: Sequence[Instrument]) -> list[VenueInstrument]:
    """The stock names and price multipliers a venue serving these instruments uses (the
    loopback venue's Stock Directory: lockstep.venue.loopback.feed)."""
    taken: set[str] = set()
    return [VenueInstrument(feed_symbol(ins, i, taken), price_multiplier(ins))
            for i, ins in enumerate(instruments)]


@dataclass(frozen=True)
class LiveTerms:
    """What a session needs beyond its config: the feed's day (ITCH and OUCH timestamps count
    from its midnight, UTC ns), the venue's names for the instruments, and OUCH order-entry terms
    (token prefix: up to 4 characters, no digit or space; firm: up to 4). `held_feed_bytes`: how
    much of the feed the core holds while its books are invalid, to continue a snapshot with
    (None: the core's own 64 MiB); journaled with the rest, so a replay holds the same."""

    day_start_ns: int
    venue: tuple[VenueInstrument, ...]
    token_prefix: str = "LS"
    firm: str = ""
    flush_interval_ns: int = 1_000_000_000
    held_feed_bytes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"day_start_ns": self.day_start_ns, "venue": [asdict(v) for v in self.venue],
               "token_prefix": self.token_prefix, "firm": self.firm,
               "flush_interval_ns": self.flush_interval_ns}
        if self.held_feed_bytes is not None:
            out["held_feed_bytes"] = self.held_feed_bytes
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LiveTerms:
        return cls(int(data["day_start_ns"]),
                   tuple(VenueInstrument(v["stock"], int(v["price_multiplier"])) for v in data["venue"]),
                   str(data["token_prefix"]), str(data["firm"]), int(data["flush_interval_ns"]),
                   None if data.get("held_feed_bytes") is None else int(data["held_feed_bytes"]))


@dataclass(frozen=True)
class LiveResult:
    """What a session (or the replay of its journal) ended with: the keys `lockstep live --json`
    and `lockstep replay --journal --json` print."""

    digest: str
    journal: str | None
    orders: int
    fills: int
    intents: int
    denials: int
    complete: bool
    error: dict[str, Any] | None = None
    counters: dict[str, Any] = field(default_factory=dict)
    #: A replay's: whether the journal's digest was compared (False: the journal was written
    #: under another digest definition, DIGEST_VERSION). None for a live session.
    digest_checked: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"digest": self.digest, "journal": self.journal, "orders": self.orders,
               "fills": self.fills, "intents": self.intents, "denials": self.denials,
               "complete": self.complete, "counters": self.counters}
        if self.error is not None:
            out["error"] = self.error
        if self.digest_checked is not None:
            out["digest_checked"] = self.digest_checked
        return out


def session_info(cfg: BacktestConfig, instruments: Sequence[Instrument], terms: LiveTerms,
                 version: str) -> dict[str, Any]:
    """The journal header's info: enough to rebuild the session offline (replay)."""
    return {"lockstep": version, "digest": DIGEST_VERSION, "config": dump_toml(cfg.to_dict()),
            "instruments": [asdict(i) for i in instruments], "terms": terms.to_dict()}


class LiveSession:
    """The live core of one session over `instruments` (the venue's, as a dataset has them),
    trading as `cfg` says (strategy, risk, queue, output.sample_interval). `record` receives
    every input and output record (a JournalWriter's write, or a replay's comparison);
    `records` (lockstep.live.records.RecordsWriter or RecordsThread: anything with
    add_packed(decisions, executions, samples)) the records of each input that made some."""

    def __init__(self, cfg: BacktestConfig, instruments: Sequence[Instrument], terms: LiveTerms, *,
                 record: Recorder, base_dir: str | os.PathLike[str] = ".",
                 journal: str | None = None, records: Any = None) -> None:
        if len(terms.venue) != len(instruments):
            raise ConfigError("live", f"{len(terms.venue)} venue names for {len(instruments)} instruments")
        traded = traded_of(cfg, instruments, "the venue's instruments")
        # ITCH is order by order: every book is L3, whatever the dataset behind the venue keeps.
        self.config, self.engine, self.ctx, self.strategy = strategy_engine(
            cfg, instruments, traded, book_types=["l3"] * len(instruments),
            base_dir=os.fspath(base_dir), simulated=False)
        self.instruments = list(instruments)
        self.terms = terms
        self.journal = journal
        self._record = record
        self.records = records
        self._core = _engine.LiveCore(self.engine, terms.day_start_ns)
        check_status(self._core.configure_orders(terms.token_prefix.encode("ascii"),
                                                 terms.firm.encode("ascii").ljust(4)[:4]),
                     "live.token_prefix")
        self._core.configure_fees(cfg.venue.maker_fee_ppm, cfg.venue.taker_fee_ppm)
        if terms.held_feed_bytes is not None:
            self._core.set_held_bytes(terms.held_feed_bytes)
        for index, v in enumerate(terms.venue):
            check_status(self._core.add_instrument(index, v.stock.encode("ascii").ljust(8),
                                                   v.price_multiplier), f"live instrument {v.stock}")
        self._loop_refused = 0
        self.failure: dict[str, Any] | None = None
        self.refused = 0  #: inputs refused after a failure (journaled, not applied)
        self._snapshot_parts: list[bytes] = []  # a journal's snapshot_part frames, replayed
        self._closed = False

    # ---------------------------------------------------------------- inputs

    def on_itch(self, blocks: bytes, first_sequence: int, stamp: int) -> list[bytes]:
        """MoldUDP64 message blocks ([u16 length][ITCH message] ...) starting at
        `first_sequence`, received at `stamp` (ns)."""
        self._record("itch", stamp, SEQUENCE.pack(first_sequence) + bytes(blocks))
        return self._after(lambda: self._core.on_itch(blocks, first_sequence, stamp))

    def on_ouch(self, message: bytes, stamp: int) -> list[bytes]:
        """One OUCH 4.2 outbound message (a SoupBinTCP sequenced payload). Applied after a
        failure too, to Execution State only: the venue's answers to the halt's cancels (and
        fills crossing them) still end the orders, with no strategy called."""
        self._record("ouch", stamp, bytes(message))
        return self._after(lambda: self._core.on_ouch(message, stamp), after_failure=True)

    def on_tick(self, stamp: int) -> list[bytes]:
        """The clock reached `stamp`: timers due fire, deferred dispatches are tried."""
        self._record("tick", stamp, b"")
        return self._after(lambda: self._core.on_tick(stamp))

    def on_feed_gap(self, expected: int, stamp: int) -> list[bytes]:
        """Feed messages from sequence `expected` on are lost for good: books invalid."""
        self._record("gap", stamp, SEQUENCE.pack(expected))
        return self._after(lambda: self._core.on_feed_gap(expected, stamp))

    def on_snapshot(self, blocks: bytes, next_sequence: int, stamp: int) -> list[bytes]:
        """A book snapshot ([u16 length][ITCH message] blocks: the venue's directory and an Add
        Order for every live order, oldest first) taken before feed message `next_sequence`,
        received at `stamp`: every book rebuilt from it and valid (the strategy told once per
        book), the feed taken again from `next_sequence` (docs/live.md, "Snapshots"). Journaled
        in frames of at most SNAPSHOT_PART_BYTES of whole blocks: `snapshot_part` frames, then
        the `snapshot` frame with the sequence number and the last blocks."""
        blocks = bytes(blocks)
        parts = snapshot_parts(blocks, SNAPSHOT_PART_BYTES)
        for part in parts[:-1]:
            self._record("snapshot_part", stamp, part)
        self._record("snapshot", stamp, SEQUENCE.pack(next_sequence) + parts[-1])
        return self._after(lambda: self._core.on_snapshot(blocks, next_sequence, stamp))

    def on_mode(self, mode: TradingMode, stamp: int) -> list[bytes]:
        """The trading mode from `stamp` on (halted: only cancels pass; reduce-only: only what
        cannot grow a position)."""
        self._record("control", stamp, CONTROL_MODE + bytes([int(mode)]))
        return self._after(lambda: self._core.on_mode(int(mode), stamp))

    def on_kill(self, on: bool, stamp: int) -> list[bytes]:
        """The kill switch: on cancels every open order (the Cancel Orders are returned) and lets
        only cancels pass until it is off."""
        self._record("control", stamp, CONTROL_KILL + bytes([1 if on else 0]))
        return self._after(lambda: self._core.on_kill(on, stamp))

    def on_order_entry(self, up: bool, stamp: int) -> list[bytes]:
        """The order-entry session lost (False: submits and replaces are denied
        ORDER_ENTRY_DOWN, nothing is sent, cancels wait) or logged in again (True): returns what
        the venue may have missed of the open orders (Enter, Replace, Cancel Orders under their
        own tokens, which the venue ignores if it has them). Applied after a failure too."""
        self._record("control", stamp, CONTROL_ORDER_ENTRY + bytes([1 if up else 0]))
        return self._after(lambda: self._core.on_order_entry(up, stamp), after_failure=True)

    def on_feed_session(self, stamp: int) -> list[bytes]:
        """The feed's MoldUDP64 session changed (the venue restarted): every book invalid
        (the strategy is told), the new session's messages taken from its first; if that is
        its message 1, they rebuild the books from empty and the books are valid again."""
        self._record("control", stamp, CONTROL_FEED_SESSION + b"\0")
        return self._after(lambda: self._core.on_feed_session(stamp))

    def finish(self, stamp: int) -> list[bytes]:
        """The end of trading: the clock moves to `stamp`, then the strategy's on_stop; returns
        what that dispatched."""
        self._record("finish", stamp, b"")

        def step() -> int:
            status = self._core.on_tick(stamp)
            return status if status != RunStatus.OK else self.engine.finish()

        return self._after(step)

    def apply(self, stream: str, stamp: int, payload: bytes) -> list[bytes]:
        """One journaled input record, applied as it was live."""
        if stream == "itch":
            (first,) = SEQUENCE.unpack_from(payload)
            return self.on_itch(payload[SEQUENCE.size:], first, stamp)
        if stream == "ouch":
            return self.on_ouch(payload, stamp)
        if stream == "tick":
            return self.on_tick(stamp)
        if stream == "gap":
            (expected,) = SEQUENCE.unpack_from(payload)
            return self.on_feed_gap(expected, stamp)
        if stream == "finish":
            return self.finish(stamp)
        if stream == "snapshot_part":
            self._snapshot_parts.append(payload)
            return []
        if stream == "snapshot":
            (next_sequence,) = SEQUENCE.unpack_from(payload)
            blocks = b"".join(self._snapshot_parts) + payload[SEQUENCE.size:]
            self._snapshot_parts.clear()
            return self.on_snapshot(blocks, next_sequence, stamp)
        if stream == "control" and len(payload) == 2 and payload[:1] == CONTROL_MODE:
            return self.on_mode(TradingMode(payload[1]), stamp)
        if stream == "control" and len(payload) == 2 and payload[:1] == CONTROL_KILL:
            return self.on_kill(bool(payload[1]), stamp)
        if stream == "control" and len(payload) == 2 and payload[:1] == CONTROL_ORDER_ENTRY:
            return self.on_order_entry(bool(payload[1]), stamp)
        if stream == "control" and payload == CONTROL_FEED_SESSION + b"\0":
            return self.on_feed_session(stamp)
        raise ValueError(f"{stream!r} is not an input stream")

    # ---------------------------------------------------------------- outputs

    def _after(self, step: Callable[[], int], *, after_failure: bool = False) -> list[bytes]:
        if self.failure is not None and not after_failure:
            self.refused += 1
            return []
        status = step()
        stamp = self._core.stamp
        decisions, executions, outbound, samples = self._core.end_input()  # hashed for the digest
        self._add_records(decisions, executions, samples)
        for payload in split_records(decisions, DECISION.size):
            self._record("decision", stamp, payload)
        for payload in split_records(executions, EXECUTION.size):
            self._record("execution", stamp, payload)
        sent = split_outbound(outbound) if outbound else []
        for payload in sent:
            self._record("dispatch", stamp, payload)
        if status != RunStatus.OK and self.failure is None:
            self._fail(RunStatus(status), stamp)
        return sent

    def absorb(self, loop: Any) -> None:
        """Takes what a C++ live loop (lockstep._bindings.live_loop.LiveLoop over this session's
        core and journal: the socket node's hot path) applied since the last call: its records
        handed on, its refused inputs counted and a failure recorded, as _after does for each
        input here (the core hashed their outputs itself). The node calls it at every return of
        the loop, before any input of its own."""
        self._add_records(*loop.take_outputs())
        refused = loop.counters["refused"]
        self.refused += refused - self._loop_refused
        self._loop_refused = refused
        if loop.failure != RunStatus.OK and self.failure is None:
            self._fail(RunStatus(loop.failure), self._core.stamp)

    def _add_records(self, decisions: bytes, executions: bytes, samples: bytes) -> None:
        if self.records is not None and (decisions or executions or samples):
            self.records.add_packed(decisions, executions, samples)

    @property
    def core(self) -> Any:
        """The C++ live core (lockstep._bindings.engine.LiveCore) the inputs go to."""
        return self._core

    def _fail(self, status: RunStatus, stamp: int) -> None:
        _, _, ts, error = self.engine.failure
        self.failure = {"reason": _FAILURES[status], "ts_recv": ts,
                        "exception": repr(error[0]) if error else None,
                        "traceback": error[1] if error else None}
        self._record("failure", stamp, json.dumps(self.failure, sort_keys=True).encode())

    # ---------------------------------------------------------------- the end

    @property
    def counters(self) -> dict[str, Any]:
        return {**self.engine.counters(), "live": self._core.counters(), "refused": self.refused}

    def result(self) -> LiveResult:
        """The summary as it stands (digest over everything applied so far)."""
        c = self.engine.counters()
        counters = self.counters
        counters.pop("venue")  # the simulated venue's: not this session's
        return LiveResult(digest=state_digest(self.engine, self._core.outputs_digest()), journal=self.journal,
                          orders=c["orders"], fills=c["fills"], intents=c["intents"],
                          denials=c["denied"], complete=self.failure is None,
                          error=self.failure, counters=counters)

    def close(self) -> LiveResult:
        """Records the `end` record (the summary) and returns the summary."""
        result = self.result()
        if not self._closed:
            self._closed = True
            end = {k: v for k, v in result.to_dict().items() if k not in ("journal", "error")}
            self._record("end", self._core.stamp, json.dumps(end, sort_keys=True, default=str).encode())
        return result


def journaled_session(cfg: BacktestConfig, instruments: Sequence[Instrument], terms: LiveTerms,
                      directory: str | os.PathLike[str], *, base_dir: str | os.PathLike[str] = ".",
                      version: str, fsync_every: int = 0,
                      records: Any = None) -> tuple[LiveSession, JournalWriter]:
    """A LiveSession journaling into `directory` (created), whose header holds the resolved
    config (params validated), the instruments, the terms and `version` (the package's);
    `records` as LiveSession takes it."""
    holder: list[JournalWriter] = []
    session = LiveSession(cfg, instruments, terms, record=lambda *r: holder[0].write(*r),
                          base_dir=base_dir, journal=os.fspath(directory), records=records)
    writer = JournalWriter(directory, session_info(session.config, instruments, terms, version),
                           fsync_every=fsync_every, fsync_interval_ns=terms.flush_interval_ns)
    holder.append(writer)
    return session, writer


__all__ = ["LiveResult", "LiveSession", "LiveTerms", "Recorder", "VenueInstrument", "journaled_session",
           "session_info", "venue_instruments"]
