"""The live core (runtime/live.hpp through lockstep.live): a session fed deterministically from
protocol bytes (the synthetic dataset as the venue's ITCH feed encoder writes it, OUCH answers
built with lockstep.protocols), each example market maker trading; its journal replayed offline
equal in every decision, execution, message and digest; damaged journals, a changed record, a
strategy that raises, a feed gap, venue answers the core cannot place."""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from live_util import (
    ANSWER_NS,
    EXAMPLES,
    PACKET_NS,
    ScriptedVenue,
    day_start,
    deliver,
    drive,
    feed_packets,
    open_in_records,
    session_for,
)

from lockstep._bindings.engine import PNL_SAMPLE
from lockstep.backtest.artifacts import read_artifact
from lockstep.core.strategy import Context, Strategy
from lockstep.data.raw_capture import repair
from lockstep.data.synth import generate
from lockstep.enums import RiskReason, TradingMode
from lockstep.errors import DecodeError, LockstepError
from lockstep.events import EventKind, Flag
from lockstep.live.journal import (
    DECISION,
    DECISION_FIELDS,
    EXECUTION,
    EXECUTION_FIELDS,
    STREAMS,
    JournalWriter,
    journal_files,
    journal_info,
    read_journal,
    snapshot_parts,
)
from lockstep.live.records import RecordsThread, RecordsWriter
from lockstep.live.replay import JournalMismatch, replay_journal
from lockstep.live.session import DIGEST_VERSION, venue_instruments
from lockstep.protocols import itch_encode as itch
from lockstep.protocols import ouch42 as ouch

CONFIGS = ["market_maker.toml", "market_maker_compiled.toml"]
START = 10**12  # receive stamps from here (any clock: the core reads none)


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return generate(20_000, seed=3, data=str(tmp_path_factory.mktemp("live") / "data"))


@pytest.fixture(scope="module")
def packets(ds):
    return list(feed_packets(ds))


def trade(config, ds, packets, journal_dir, **venue_options):
    session, writer = session_for(config, ds, journal_dir)
    venue = ScriptedVenue(day_start(ds), **venue_options)
    end = drive(session, venue, packets, day_start(ds) + START)
    deliver(session, venue, session.finish(end), end)
    result = session.close()
    if writer is not None:
        writer.close()
    return session, venue, result


def executions(journal_dir):
    return [dict(zip(EXECUTION_FIELDS, EXECUTION.unpack(r.payload), strict=True))
            for r in read_journal(journal_dir) if r.stream == "execution"]


@pytest.fixture(scope="module", params=CONFIGS)
def traded(request, ds, packets, tmp_path_factory):
    journal = tmp_path_factory.mktemp("journal") / "journal"
    session, venue, result = trade(EXAMPLES / request.param, ds, packets, journal)
    return session, venue, result, journal


# ------------------------------------------------------------------------------------------
# trading from protocol bytes, and the journal's replay


def test_each_example_market_maker_trades_from_protocol_bytes(traded, packets):
    session, venue, result, _ = traded
    live = session.counters["live"]
    assert live["itch_messages"] == sum(_blocks(b) for _, b in packets)
    assert live["itch_unmapped"] == live["off_tick"] == live["ouch_unknown_order"] == 0
    assert live["itch_problems"] == live["itch_duplicates"] == live["itch_skipped"] == 0
    assert result.orders > 100 and result.fills > 10 and result.intents >= result.orders
    assert result.complete and result.error is None
    # every order the venue received is one the core dispatched, tokens unique, prices on tick
    enters = [m for m in venue.received if isinstance(m, ouch.EnterOrder)]
    assert len(enters) == result.orders
    assert len({m.token for m in enters}) == len(enters)
    assert all(m.display == "P" and m.time_in_force == 99999 and m.price % 100 == 0 for m in enters)


def _whole_blocks(blocks: bytes) -> bool:
    """`blocks` is [u16 length][message] blocks and nothing else."""
    pos = 0
    while pos + 2 <= len(blocks):
        pos += 2 + int.from_bytes(blocks[pos:pos + 2], "big")
    return pos == len(blocks)


def _blocks(blocks: bytes) -> int:
    n, pos = 0, 0
    while pos < len(blocks):
        pos += 2 + int.from_bytes(blocks[pos:pos + 2], "big")
        n += 1
    return n


def test_the_journal_replays_to_the_same_decisions_messages_and_digest(traded):
    _, venue, result, journal = traded
    replayed = replay_journal(journal)
    assert replayed.digest == result.digest
    assert (replayed.orders, replayed.fills, replayed.intents, replayed.denials) == \
        (result.orders, result.fills, result.intents, result.denials)
    streams = [r.stream for r in read_journal(journal)]
    assert streams.count("dispatch") == len(venue.received)
    assert streams.count("decision") == result.intents
    assert streams[-1] == "end"


SAMPLE = struct.Struct("<qIqqBddd")  # docs/live.md, "Digest"
SAMPLE_FIELDS = ("ts_recv", "instrument", "position", "mid", "mid_known", "realized", "unrealized",
                 "fees")
INPUTS = {"itch", "ouch", "tick", "gap", "control", "finish"}


def test_the_digest_is_sha256_of_state_and_of_every_output_as_documented(ds, packets):
    """The live core hashes the outputs itself (C++); hashlib over the journal's records and the
    PnL samples, laid out as docs/live.md says, must give the same digest."""
    inputs: list[dict[str, bytearray]] = []

    def record(stream, stamp, payload):
        if stream in INPUTS:
            inputs.append({"outputs": bytearray(), "samples": bytearray()})
        elif stream == "dispatch":
            inputs[-1]["outputs"] += len(payload).to_bytes(2, "big") + payload
        elif stream in ("decision", "execution"):
            inputs[-1]["outputs"] += payload

    class Samples:  # an input's records are handed on before its outputs are journaled
        def add_packed(self, decisions, executions, samples):
            for row in np.frombuffer(samples, PNL_SAMPLE):
                inputs[-1]["samples"] += SAMPLE.pack(*(row[name].item() for name in SAMPLE_FIELDS))

    session, _ = session_for(EXAMPLES / "market_maker_compiled.toml", ds, None,
                             overrides=("output.sample_interval=1ms",))
    session._record = record
    session.records = Samples()
    venue = ScriptedVenue(day_start(ds))
    end = drive(session, venue, packets[:600], day_start(ds) + START)
    deliver(session, venue, session.finish(end), end)
    result = session.close()
    outputs = hashlib.sha256()
    for one in inputs:
        outputs.update(one["outputs"] + one["samples"])
    assert result.orders > 10 and result.fills > 0
    assert sum(len(one["samples"]) for one in inputs) >= 5 * SAMPLE.size
    engine = session.engine
    assert result.digest == hashlib.sha256(engine.market.serialize_state() + engine.serialize_state()
                                           + outputs.digest()).hexdigest()


def test_the_python_and_the_compiled_market_maker_make_the_same_session(ds, packets):
    digests = {trade(EXAMPLES / c, ds, packets, None)[2].digest for c in CONFIGS}
    assert len(digests) == 1


def test_the_journal_header_holds_the_resolved_config_and_the_session_terms(traded, ds):
    _, _, _, journal = traded
    info = journal_info(journal)
    assert info["lockstep"] == "test" and "[strategy.params]" in info["config"]
    assert [i["symbol"] for i in info["instruments"]] == [i.symbol for i in ds.instruments]
    assert info["terms"]["day_start_ns"] == day_start(ds)


def test_fills_are_execution_events_with_the_venues_price_and_maker_flag(traded):
    _, _, result, journal = traded
    fills = [e for e in executions(journal) if e["kind"] == EventKind.ORDER_FILLED]
    assert len(fills) == result.fills
    assert all(e["flags"] & Flag.MAKER and e["qty"] == 1 for e in fills)


# ------------------------------------------------------------------------------------------
# replay finds every difference


def _rewrite(journal, out, change, header=lambda info: info):
    """A copy of `journal` in `out` with each record passed through change(index, record), and
    its header's info through header(info)."""
    writer = JournalWriter(out, header({k: v for k, v in journal_info(journal).items()
                                        if k not in ("format", "version")}))
    for k, record in enumerate(read_journal(journal)):
        payload = change(k, record)
        if payload is not None:
            writer.write(record.stream, record.receive_ns, payload)
    writer.close()


def _zero_end_digest(k, record):
    """A _rewrite change: the end record's digest replaced by zeros."""
    if record.stream != "end":
        return record.payload
    end = json.loads(record.payload)
    end["digest"] = "0" * 64
    return json.dumps(end).encode()


def _denying(journal, n: int):
    """A _rewrite change: the journal's n-th decision denied (a reason other than allowed)."""
    target = [k for k, r in enumerate(read_journal(journal)) if r.stream == "decision"][n]

    def change(k, record):
        if k != target:
            return record.payload
        fields = list(DECISION.unpack(record.payload))
        fields[-1] = RiskReason.NON_POSITIVE_QTY
        return DECISION.pack(*fields)

    return change


def test_a_changed_dispatch_is_named_by_stream_index_and_place(traded, tmp_path):
    _, _, _, journal = traded
    target = [k for k, r in enumerate(read_journal(journal)) if r.stream == "dispatch"][5]

    def change(k, record):
        if k != target:
            return record.payload
        return record.payload[:-1] + bytes([record.payload[-1] ^ 1])

    _rewrite(journal, tmp_path / "j", change)
    with pytest.raises(JournalMismatch) as e:
        replay_journal(tmp_path / "j")
    assert e.value.stream == "dispatch" and e.value.index == 5
    assert "journal-000001.lsraw, offset " in str(e.value)


def test_a_changed_decision_and_a_missing_record_are_differences(traded, tmp_path):
    _, _, _, journal = traded
    _rewrite(journal, tmp_path / "a", _denying(journal, 3))
    with pytest.raises(JournalMismatch, match="decision record 3"):
        replay_journal(tmp_path / "a")
    executions_at = [k for k, r in enumerate(read_journal(journal)) if r.stream == "execution"]
    _rewrite(journal, tmp_path / "b", lambda k, r: None if k == executions_at[-1] else r.payload)
    with pytest.raises(JournalMismatch, match="execution record"):
        replay_journal(tmp_path / "b")


def test_a_changed_digest_in_the_end_record_is_a_difference(traded, tmp_path):
    _, _, _, journal = traded
    _rewrite(journal, tmp_path / "j", _zero_end_digest)
    with pytest.raises(JournalMismatch, match="end record 0"):
        replay_journal(tmp_path / "j")


def test_a_journal_of_another_digest_definition_has_everything_compared_but_its_digest(
        traded, tmp_path):
    _, _, result, journal = traded
    assert replay_journal(journal).digest_checked is True
    assert journal_info(journal)["digest"] == DIGEST_VERSION

    def earlier(info):  # written before the definition was numbered
        return {k: v for k, v in info.items() if k != "digest"}

    _rewrite(journal, tmp_path / "old", _zero_end_digest, earlier)
    replayed = replay_journal(tmp_path / "old")
    assert replayed.digest_checked is False and replayed.digest == result.digest
    assert replayed.to_dict()["digest_checked"] is False
    cmd = [sys.executable, "-m", "lockstep", "replay", "--journal", str(tmp_path / "old")]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "the digest not checked" in done.stdout, done.stderr
    # everything else still is
    _rewrite(journal, tmp_path / "old_denied", _denying(journal, 0), earlier)
    with pytest.raises(JournalMismatch, match="decision record 0"):
        replay_journal(tmp_path / "old_denied")
    _rewrite(journal, tmp_path / "future", _zero_end_digest,
             lambda info: {**info, "digest": DIGEST_VERSION + 1})
    assert replay_journal(tmp_path / "future").digest_checked is False


def test_a_corrupt_journal_is_one_error_naming_file_and_offset(traded, tmp_path):
    _, _, _, journal = traded
    src = journal_files(journal)[0]
    data = bytearray(src.read_bytes())
    middle = len(data) // 2
    data[middle] ^= 0xFF
    bad = tmp_path / "bad" / src.name
    bad.parent.mkdir()
    bad.write_bytes(bytes(data))
    with pytest.raises(DecodeError) as e:
        replay_journal(bad.parent)
    assert e.value.path == str(bad) and e.value.offset is not None and e.value.offset <= middle


def test_a_cut_journal_is_one_error_naming_file_and_offset(traded, tmp_path):
    _, _, _, journal = traded
    src = journal_files(journal)[0]
    data = src.read_bytes()
    cut = tmp_path / "cut" / src.name
    cut.parent.mkdir()
    cut.write_bytes(data[:len(data) * 2 // 3])
    with pytest.raises(DecodeError, match="torn tail") as e:
        replay_journal(cut.parent)
    assert e.value.path == str(cut) and e.value.offset is not None


def test_replay_journal_cli_prints_the_summary_keys_and_exits_7_on_a_difference(traded, tmp_path):
    _, _, result, journal = traded
    cmd = [sys.executable, "-m", "lockstep", "replay", "--journal", str(journal), "--json"]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert {"digest", "journal", "orders", "fills", "intents", "denials"} <= set(out)
    assert out["digest"] == result.digest and out["orders"] == result.orders
    target = next(k for k, r in enumerate(read_journal(journal)) if r.stream == "dispatch")
    _rewrite(journal, tmp_path / "j", lambda k, r: r.payload + b"x" if k == target else r.payload)
    done = subprocess.run([*cmd[:5], str(tmp_path / "j")], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 7
    assert done.stderr.count("\n") == 1 and "dispatch record 0" in done.stderr
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "journal-000001.lsraw").write_bytes(b"not a journal at all")
    done = subprocess.run([*cmd[:5], str(garbage)], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert "journal-000001.lsraw" in done.stderr and "Traceback" not in done.stderr


# ------------------------------------------------------------------------------------------
# faults


class RaisesAfterQuoting(Strategy):
    """Quotes both sides once the book has both, then raises on its second call after that."""

    def setup(self, ctx: Context) -> None:
        self.after = -1
        ctx.subscribe(ctx.traded[0], book=True)

    def on_book(self, ctx: Context, instrument: int) -> None:
        bid, bid_qty, ask, ask_qty = ctx.touch(instrument)
        if self.after < 0 and bid_qty and ask_qty:
            ctx.submit_limit(instrument, 1, bid, 1, 2)
            ctx.submit_limit(instrument, 2, ask, 1, 2)
        if self.after >= 0 or (bid_qty and ask_qty):
            self.after += 1
        if self.after == 2:
            raise RuntimeError("boom")


HERE = Path(__file__).resolve()
COUNTING = HERE.parent / "counting_strategy.py"


def _config(tmp_path, strategy: str, *extra: str, module: Path = HERE) -> Path:
    path = tmp_path / "live.toml"
    path.write_text("\n".join(['name = "t"', 'dataset = "x"', "[strategy]",
                               f'path = "{module}:{strategy}"', *extra]) + "\n")
    return path


def test_a_strategy_that_raises_halts_trading_and_cancels_its_orders(ds, packets, tmp_path):
    config = _config(tmp_path, "RaisesAfterQuoting")
    session, writer = session_for(config, ds, tmp_path / "journal")
    session.records = RecordsWriter(tmp_path / "records", ds.instruments, flush_interval_ns=10**9,
                                    report=False)
    venue = ScriptedVenue(day_start(ds), fill_every=2)  # the ask is due a fill
    start = day_start(ds) + START
    for k, (sequence, blocks) in enumerate(packets[:40]):
        stamp = start + k * PACKET_NS
        halt = session.on_itch(blocks, sequence, stamp)
        if session.failure is not None:
            break
        deliver(session, venue, halt, stamp)
    assert session.failure["reason"] == "the strategy raised"
    # the quotes and, the strategy having raised two book updates later, the halt's cancels
    kinds = [type(ouch.decode_inbound(m)).__name__ for m in halt]
    assert kinds == ["EnterOrder", "EnterOrder", "CancelOrder", "CancelOrder"]
    # After a failure the venue's answers still reach Execution State, without the strategy and
    # without anything dispatched: both orders accepted, the ask filled before the halt's cancel
    # reached the venue (the fill crosses the cancel, which the venue then ignores), the bid
    # cancelled.
    deliver(session, venue, halt[:2], stamp)
    assert session.ctx.open_orders(0) == 2
    (fill,) = venue.fills(stamp + ANSWER_NS)
    assert session.on_ouch(fill, stamp + ANSWER_NS) == []
    deliver(session, venue, halt[2:], stamp + ANSWER_NS)
    assert session.ctx.open_orders(0) == 0 and session.ctx.position(0) == -1
    assert session.refused == 0  # the venue's answers were applied
    for j, (sequence, blocks) in enumerate(packets[k + 1:k + 11]):
        assert session.on_itch(blocks, sequence, stamp + (j + 2) * PACKET_NS) == []
    assert session.on_tick(stamp + 20 * PACKET_NS) == []
    assert session.finish(stamp + 21 * PACKET_NS) == []
    assert session.refused == 12  # ITCH, the tick and the finish: journaled, not applied
    result = session.close()
    writer.close()
    session.records.close({"digest": result.digest})
    assert not result.complete and result.error["reason"] == "the strategy raised"
    assert "boom" in result.error["exception"] and "RuntimeError" in result.error["traceback"]
    assert result.fills == 1
    assert [type(m).__name__ for m in venue.received] == kinds  # nothing sent after the halt
    records = list(read_journal(tmp_path / "journal"))
    failure = [k for k, r in enumerate(records) if r.stream == "failure"]
    assert len(failure) == 1
    after = [dict(zip(EXECUTION_FIELDS, EXECUTION.unpack(r.payload), strict=True))["kind"]
             for r in records[failure[0]:] if r.stream == "execution"]
    assert after == [EventKind.ORDER_ACCEPTED, EventKind.ORDER_ACCEPTED, EventKind.ORDER_FILLED,
                     EventKind.ORDER_CANCELED]
    # the records agree: no order left open, the fill in the fills table
    assert open_in_records(tmp_path / "records") == set()
    assert read_artifact(str(tmp_path / "records"), "fills").num_rows == 1
    assert replay_journal(tmp_path / "journal").digest == result.digest


class QuotesUntilGap(Strategy):
    """The touch market maker's quoting, recording whether the book was valid at each call."""

    def setup(self, ctx: Context) -> None:
        self.seen: list[bool] = []
        self.bid = self.ask = 0
        ctx.subscribe(ctx.traded[0], book=True)

    def on_book(self, ctx: Context, instrument: int) -> None:
        self.seen.append(ctx.book_valid(instrument))
        bid, bid_qty, ask, ask_qty = ctx.touch(instrument)
        for attr, side, price, qty in (("bid", 1, bid, bid_qty), ("ask", 2, ask, ask_qty)):
            order = getattr(self, attr)
            if order and (not qty or ctx.order(order) is None or ctx.order(order)[2] != price):
                ctx.cancel(order)
                setattr(self, attr, 0)
            if not getattr(self, attr) and qty:
                setattr(self, attr, ctx.submit_limit(instrument, side, price, 1, 2))


def test_a_feed_gap_invalidates_the_books_and_the_strategy_pulls_its_quotes(ds, packets, tmp_path):
    config = _config(tmp_path, "QuotesUntilGap")
    session, writer = session_for(config, ds, tmp_path / "journal")
    venue = ScriptedVenue(day_start(ds), fill_every=10**9)
    start = day_start(ds) + START
    end = drive(session, venue, packets[:30], start)
    open_before = session.ctx.open_orders(0)
    assert open_before == 2
    before = len(venue.received)
    deliver(session, venue, session.on_feed_gap(packets[30][0], end), end)
    assert not session.ctx.book_valid(0) and session.ctx.touch(0) == (0, 0, 0, 0)
    pulled = venue.received[before:]
    assert [type(m).__name__ for m in pulled] == ["CancelOrder", "CancelOrder"]
    assert session.ctx.open_orders(0) == 0
    # later packets move the (invalid) book: no strategy call, no order on stale levels
    seen = session.strategy.seen
    calls = len(seen)
    assert seen[-1] is False and all(seen[:-1])
    drive(session, venue, packets[31:60], end + ANSWER_NS * 10)
    assert len(seen) == calls
    assert len(venue.received) == before + 2
    result = session.close()
    writer.close()
    assert session.counters["live"]["gaps"] == 1
    assert replay_journal(tmp_path / "journal").digest == result.digest


def test_venue_answers_the_core_cannot_place_are_counted_never_a_crash(ds, packets, tmp_path):
    session, writer = session_for(EXAMPLES / "market_maker.toml", ds, tmp_path / "journal")
    venue = ScriptedVenue(day_start(ds))
    start = day_start(ds) + START
    end = drive(session, venue, packets[:20], start)
    ts = end - day_start(ds)
    strangers = [ouch.Executed(ts, "ZZ99", 1, 100, "A", 1), ouch.Canceled(ts, "LS999999", 1, "U"),
                 ouch.Rejected(ts, "LS12x", "X")]
    for m in strangers:
        session.on_ouch(ouch.encode(m), end)
    for garbage in (b"", b"Q", b"E" + b"\x00" * 5, ouch.encode(strangers[0]) + b"extra"):
        session.on_ouch(garbage, end)
    session.on_ouch(ouch.encode(ouch.SystemEvent(ts, "E")), end)
    live = session.counters["live"]
    assert live["ouch_unknown_order"] == 3 and live["ouch_undecodable"] == 4
    assert live["ouch_system_events"] == 1
    result = session.close()
    writer.close()
    assert result.complete
    assert replay_journal(tmp_path / "journal").digest == result.digest


def test_feed_blocks_seen_twice_skipped_or_undecodable_are_counted(ds, packets):
    session, _ = session_for(EXAMPLES / "market_maker.toml", ds, None)
    stamp = day_start(ds) + START
    for sequence, blocks in packets[:10]:
        session.on_itch(blocks, sequence, stamp)
    sequence, blocks = packets[9]
    session.on_itch(blocks, sequence, stamp)  # a retransmission of what arrived already
    unknown = b"\x00\x03Zab" + b"\x00\x02A\x00"  # an unknown type, a message cut short
    after = packets[10][0]
    session.on_itch(unknown, after + 5, stamp)
    live = session.counters["live"]
    assert live["itch_duplicates"] == _blocks(blocks)
    assert live["itch_skipped"] == 5 and live["itch_problems"] == 2
    assert session.result().complete


_TYPES = b"AFECXDUPQSRHZ\x00"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_TYPES), st.binary(max_size=48)), max_size=24))
def test_feed_blocks_of_any_bytes_are_counted_never_a_crash(ds, packets, messages):
    """Blocks whose bytes come from outside (the core reads every block it is given, and looks
    ahead at the references a datagram names before decoding it): any type, any length, any
    content, after a real start. Nothing crashes; every block is either decoded or counted as a
    problem; the same bytes give the same counts."""
    blocks = b"".join(struct.pack(">H", 1 + len(body)) + bytes([kind]) + body
                      for kind, body in messages)
    counts = []
    for _ in range(2):
        session, _ = session_for(EXAMPLES / "market_maker.toml", ds, None)
        stamp = day_start(ds) + START
        for sequence, real in packets[:5]:
            session.on_itch(real, sequence, stamp)
        session.on_itch(blocks, packets[5][0], stamp)
        live = session.counters["live"]
        counts.append({k: live[k] for k in ("itch_messages", "itch_problems")})
        assert session.result().complete
    assert counts[0] == counts[1]
    assert counts[0]["itch_messages"] == _blocks(b"".join(p for _, p in packets[:5])) + len(messages)


def test_a_journal_cut_and_repaired_replays_up_to_its_end(traded, tmp_path):
    _, _, result, journal = traded
    src = journal_files(journal)[0]
    cut = tmp_path / "cut" / src.name
    cut.parent.mkdir()
    cut.write_bytes(src.read_bytes()[:src.stat().st_size // 2 + 3])
    assert repair(cut) > 0
    replayed = replay_journal(cut.parent)
    assert 0 < replayed.orders < result.orders and replayed.digest != result.digest


def test_broken_and_corrected_fills_change_position_cash_and_fees_and_replay(ds, packets,
                                                                             tmp_path):
    journal = tmp_path / "journal"
    # The scripted venue fills as a maker: a rebate of 20 ppm of each fill's notional.
    session, writer = session_for(EXAMPLES / "market_maker.toml", ds, journal,
                                  overrides=("venue.maker_fee_bps=-0.2",))
    venue = ScriptedVenue(day_start(ds), fill_every=2)
    start = day_start(ds) + START
    end = drive(session, venue, packets[:400], start)
    fills = venue.executed
    assert len(fills) >= 3
    ctx = session.ctx
    assert ctx.mid(0) is not None
    mid = ctx.mid(0)
    scale = float(ctx.price(0, 1)) * float(ctx.size(0, 1))  # quote currency per tick x lot

    def total() -> int:  # realized + unrealized at the (unchanged) mid, in ticks x lots
        return round((ctx.realized(0) + ctx.unrealized(0)) / scale)

    def fees() -> int:  # in the core's unit, ticks x lots x 1e-6
        return round(ctx.fees(0) / scale * 1e6)

    def rebate(f: ouch.Executed, price: int) -> int:  # the fee of fill `f` at `price` (Price(4))
        return -20 * (price // multiplier) * f.executed_shares

    sides = {m.token: m.side for m in venue.received if isinstance(m, ouch.EnterOrder)}

    def signed(f: ouch.Executed) -> int:  # the fill's lots, + bought
        return f.executed_shares if sides[f.token] == "B" else -f.executed_shares

    multiplier = 100  # the feed's Price(4) units per tick of the synthetic dataset
    assert fees() == sum(rebate(f, f.execution_price) for f in fills)
    busted, corrected = fills[0], fills[1]
    ts = end - day_start(ds)
    position, before = ctx.position(0), total()
    session.on_ouch(ouch.encode(ouch.BrokenTrade(ts, busted.token, busted.match_number, "E")), end)
    # The trade never happened: its lots leave the position, its cash flow is undone.
    assert ctx.position(0) == position - signed(busted)
    assert total() == before - signed(busted) * (mid - busted.execution_price // multiplier)
    assert fees() == sum(rebate(f, f.execution_price) for f in fills[1:])  # its rebate back
    position, before = ctx.position(0), total()
    new_price = corrected.execution_price + 3 * multiplier
    session.on_ouch(ouch.encode(ouch.PriceCorrection(ts, corrected.token,
                                                     corrected.match_number, new_price, "X")), end)
    assert ctx.position(0) == position  # the lots stay; the cash pays 3 ticks a lot more
    assert total() == before - signed(corrected) * 3
    assert fees() == (rebate(corrected, new_price)  # the rebate follows the new price
                      + sum(rebate(f, f.execution_price) for f in fills[2:]))
    # A second bust of the same fill, a match number that is no fill of ours, and a fill's match
    # number with the token of another order of ours, still live, change nothing.
    position, before = ctx.position(0), total()
    other = next(iter(venue.orders))  # live at the venue: not the whole-filled order of fills[2]
    assert other != fills[2].token
    for m in (ouch.BrokenTrade(ts, busted.token, busted.match_number, "E"),
              ouch.PriceCorrection(ts, "LS1", 10**9, new_price, "X"),
              ouch.BrokenTrade(ts, other, fills[2].match_number, "E")):
        session.on_ouch(ouch.encode(m), end)
    assert (ctx.position(0), total()) == (position, before)
    live = session.counters["live"]
    assert (live["ouch_broken_trades"], live["ouch_price_corrections"]) == (3, 2)
    assert live["ouch_unknown_trades"] == 3
    result = session.close()
    writer.close()
    rows = [e for e in executions(journal) if e["kind"] in (EventKind.TRADE_BROKEN,
                                                            EventKind.TRADE_CORRECTED)]
    assert [(EventKind(e["kind"]), e["price"], e["qty"]) for e in rows] == [
        (EventKind.TRADE_BROKEN, busted.execution_price // multiplier, busted.executed_shares),
        (EventKind.TRADE_CORRECTED, new_price // multiplier, corrected.executed_shares)]
    assert replay_journal(journal).digest == result.digest


@st.composite
def venue_answers(draw, tokens: list[str], matches: list[int]) -> list[ouch.Outbound]:
    """Well-framed OUCH answers with any content: the session's own tokens and match numbers
    among strangers, any price and share count, executions, busts, corrections, cancels and
    rejects in any order."""
    token = st.sampled_from([*tokens, "LS999999", "ZZ1", ""])
    match = st.sampled_from(matches) | st.integers(0, (1 << 64) - 1)
    u32 = st.integers(0, (1 << 32) - 1)
    ts = st.integers(0, (1 << 48) - 1)
    letter = st.sampled_from("AEUXZ")
    return draw(st.lists(st.one_of(
        st.builds(ouch.Executed, ts, token, u32, u32, st.sampled_from("AR"), match),
        st.builds(ouch.BrokenTrade, ts, token, match, letter),
        st.builds(ouch.PriceCorrection, ts, token, match, u32, letter),
        st.builds(ouch.Canceled, ts, token, u32, letter),
        st.builds(ouch.Rejected, ts, token, letter)), max_size=30))


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_venue_answers_of_any_content_never_crash_and_replay(ds, packets, tmp_path_factory, data):
    """After a session traded and was filled, answers drawn from its own tokens and match
    numbers and from strangers, with any prices and share counts: every one is journaled and
    counted, the session keeps going, and the journal replays to the same digest."""
    journal = tmp_path_factory.mktemp("answers") / "journal"
    session, writer = session_for(EXAMPLES / "market_maker.toml", ds, journal)
    venue = ScriptedVenue(day_start(ds), fill_every=2)
    end = drive(session, venue, packets[:80], day_start(ds) + START)
    tokens = sorted({m.token for m in venue.received if isinstance(m, ouch.EnterOrder)})
    answers = data.draw(venue_answers(tokens, [f.match_number for f in venue.executed]))
    before = session.counters["live"]["ouch_messages"]
    for k, m in enumerate(answers):
        session.on_ouch(ouch.encode(m), end + k)
    assert session.counters["live"]["ouch_messages"] == before + len(answers)
    deliver(session, venue, session.on_itch(packets[80][1], packets[80][0], end + len(answers)),
            end + len(answers))
    result = session.close()
    writer.close()
    assert result.complete
    assert replay_journal(journal).digest == result.digest


class ReplacesInFlight(Strategy):
    """One bid 10 ticks under the touch. Once accepted, moved down twice in one call; once moved
    twice, moved a third time at the next book update (`stage` 4: that replace in flight)."""

    def setup(self, ctx: Context) -> None:
        self.order, self.price, self.stage = 0, 0, 0
        ctx.subscribe(ctx.traded[0], book=True)

    def on_book(self, ctx: Context, instrument: int) -> None:
        bid = ctx.touch(instrument)[0]
        if self.stage == 0 and bid:
            self.price = bid - 10
            self.order = ctx.submit_limit(instrument, 1, self.price, 1, 2)
            self.stage = 1
        elif self.stage == 3:
            ctx.replace(self.order, self.price - 3, 4)
            self.stage = 4

    def on_order(self, ctx: Context, update) -> None:
        if update.order_id != self.order:
            return
        if self.stage == 1 and update.kind == EventKind.ORDER_ACCEPTED:
            ctx.replace(self.order, self.price - 1, 2)
            ctx.replace(self.order, self.price - 2, 3)
            self.stage = 2
        elif (self.stage == 2 and update.kind == EventKind.ORDER_REPLACED
              and update.price == self.price - 2):
            self.stage = 3


def test_a_replace_asked_while_one_is_in_flight_follows_its_answer_and_a_cancel_finds_either_token(
        ds, packets, tmp_path):
    journal = tmp_path / "journal"
    session, writer = session_for(_config(tmp_path, "ReplacesInFlight"), ds, journal)
    venue = ScriptedVenue(day_start(ds), fill_every=10**9)
    start = day_start(ds) + START
    for k, (sequence, blocks) in enumerate(packets[:60]):
        stamp = start + k * PACKET_NS
        sent = session.on_itch(blocks, sequence, stamp)
        if session.strategy.stage == 4:  # the third replace is in flight: the kill switch
            sent += session.on_kill(True, stamp)
            session.strategy.stage = 5
        deliver(session, venue, sent, stamp)
    enter, *changes = venue.received
    assert isinstance(enter, ouch.EnterOrder)
    r1, r2, r3, c1, c2 = changes
    # Each replace names the token the one before it made live: the venue took all three.
    assert [type(m) for m in (r1, r2, r3)] == [ouch.ReplaceOrder] * 3
    assert (r1.existing_token, r2.existing_token, r3.existing_token) == (
        enter.token, r1.replacement_token, r2.replacement_token)
    assert [(m.price, m.shares) for m in (r1, r2, r3)] == [
        (enter.price - k * 100, k + 1) for k in (1, 2, 3)]
    # The cancel, asked while the third replace was in flight, went to both of its tokens.
    assert [type(m) for m in (c1, c2)] == [ouch.CancelOrder] * 2
    assert {c1.token, c2.token} == {r2.replacement_token, r3.replacement_token}
    assert venue.orders == {}  # nothing left live at the venue
    assert session.counters["live"]["ouch_unknown_order"] == 0
    assert session.ctx.open_orders(0) == 0
    result = session.close()
    writer.close()
    kinds = [(EventKind(e["kind"]), e["price"], e["qty"]) for e in executions(journal)]
    price = enter.price // 100
    assert [k for k in kinds if k[0] in (EventKind.ORDER_REPLACED, EventKind.ORDER_CANCELED)] == [
        (EventKind.ORDER_REPLACED, price - 1, 2), (EventKind.ORDER_REPLACED, price - 2, 3),
        (EventKind.ORDER_REPLACED, price - 3, 4), (EventKind.ORDER_CANCELED, price - 3, 4)]
    assert replay_journal(journal).digest == result.digest


def test_an_order_the_venue_rejects_is_an_execution_event_with_the_venues_reason(ds, packets, tmp_path):
    session, writer = session_for(EXAMPLES / "market_maker.toml", ds, None)
    venue = ScriptedVenue(day_start(ds))
    start = day_start(ds) + START
    drive(session, venue, packets[:5], start)
    first = next(m for m in venue.received if isinstance(m, ouch.EnterOrder))
    journal = tmp_path / "journal"
    session, writer = session_for(EXAMPLES / "market_maker.toml", ds, journal)
    venue = ScriptedVenue(day_start(ds), reject_price=first.price, reject_reason="H")
    drive(session, venue, packets[:5], start)
    session.close()
    writer.close()
    rejected = [e for e in executions(journal) if e["kind"] == EventKind.ORDER_REJECTED]
    assert rejected and all(e["reason"] == ord("H") for e in rejected)
    assert all(e["price"] * 100 == first.price for e in rejected)


def test_the_execution_records_are_the_backtests_tables_of_what_the_journal_holds(ds, packets, tmp_path):
    session, writer = session_for(EXAMPLES / "market_maker_compiled.toml", ds, tmp_path / "journal")
    session.records = RecordsWriter(tmp_path / "records", ds.instruments, flush_interval_ns=10**9,
                                    report=False)
    venue = ScriptedVenue(day_start(ds))
    end = drive(session, venue, packets[:200], day_start(ds) + START)
    result = session.close()
    writer.close()
    session.records.close({"digest": result.digest})
    journaled = executions(tmp_path / "journal")
    orders = read_artifact(str(tmp_path / "records"), "orders").to_pylist()
    assert len(orders) == len(journaled) > 0
    assert [(o["order_id"], o["price_ticks"], o["qty_lots"], o["ts_recv"]) for o in orders] == \
        [(e["order_id"], e["price"], e["qty"], e["ts_recv"]) for e in journaled]
    assert read_artifact(str(tmp_path / "records"), "fills").num_rows == result.fills > 0
    denials = read_artifact(str(tmp_path / "records"), "denials").num_rows
    assert denials == result.denials
    assert read_artifact(str(tmp_path / "records"), "pnl").num_rows > 0
    assert end > 0


def test_records_written_by_their_own_thread_equal_records_written_in_line(ds, packets, tmp_path):
    """The node's records thread writes, on its own and within its flush interval, the same
    tables as a writer called in line with each input."""
    in_line = RecordsWriter(tmp_path / "in_line", ds.instruments, flush_interval_ns=10**9, report=False)
    behind = RecordsThread(RecordsWriter(tmp_path / "behind", ds.instruments,
                                         flush_interval_ns=50_000_000, report=False))

    class Both:
        def add_packed(self, *packed):
            in_line.add_packed(*packed)
            behind.add_packed(*packed)

    session, _ = session_for(EXAMPLES / "market_maker_compiled.toml", ds, None,
                             overrides=("output.sample_interval=1ms",))
    session.records = Both()
    drive(session, ScriptedVenue(day_start(ds)), packets[:300], day_start(ds) + START)
    result = session.close()
    in_line.flush()
    deadline = time.monotonic() + 10
    while behind.writer.flushed != in_line.flushed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert behind.writer.flushed == in_line.flushed  # flushed with nobody asking
    assert in_line.flushed["orders"] >= result.orders > 0 and in_line.flushed["pnl"] > 0
    in_line.close({"digest": result.digest})
    behind.close({"digest": result.digest})
    def rows(where, name):  # NaN (a mid not known) as a string, so that equal tables compare equal
        return [{k: "nan" if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
                for row in read_artifact(str(tmp_path / where), name).to_pylist()]

    for name in ("orders", "fills", "denials", "pnl"):
        assert rows("behind", name) == rows("in_line", name), name


def test_a_write_failing_in_the_records_thread_is_raised_on_the_callers_thread(tmp_path):
    class FullDisk:
        flush_interval_ns = 1_000_000

        def warm_up(self):
            pass

        def add_packed(self, *packed):
            raise OSError(28, "No space left on device")

    behind = RecordsThread(FullDisk())
    behind.add_packed(b"", b"", b"")
    deadline = time.monotonic() + 10
    while behind._error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(OSError, match="No space left"):
        behind.check()
    with pytest.raises(OSError, match="No space left"):
        behind.add_packed(b"", b"", b"")
    with pytest.raises(OSError, match="No space left"):
        behind.close({})


def test_kill_cancels_every_open_order_and_control_is_journaled_and_replayed(ds, packets, tmp_path):
    # asking again at every book update after a denial, so that each phase is seen denying
    session, writer = session_for(EXAMPLES / "market_maker.toml", ds, tmp_path / "journal",
                                  overrides=('strategy.params.retry_after="0ns"',))
    venue = ScriptedVenue(day_start(ds), fill_every=10**9)
    start = day_start(ds) + START
    end = drive(session, venue, packets[:30], start)
    assert session.ctx.open_orders(0) == 2
    sent = session.on_kill(True, end)
    assert sorted(type(ouch.decode_inbound(m)).__name__ for m in sent) == ["CancelOrder"] * 2
    deliver(session, venue, sent, end)
    assert session.ctx.open_orders(0) == 0
    before = len(venue.received)
    drive(session, venue, packets[30:60], end + ANSWER_NS)  # the strategy quotes, Risk denies
    assert len(venue.received) == before
    denied = session.result().denials
    assert denied > 0
    deliver(session, venue, session.on_kill(False, end + 60 * 20_000), end + 60 * 20_000)
    deliver(session, venue, session.on_mode(TradingMode.HALTED, end + 61 * 20_000), end + 61 * 20_000)
    drive(session, venue, packets[60:90], end + 62 * 20_000)
    assert len(venue.received) == before and session.result().denials > denied
    deliver(session, venue, session.on_mode(TradingMode.ACTIVE, end + 99 * 20_000), end + 99 * 20_000)
    drive(session, venue, packets[90:120], end + 100 * 20_000)
    assert len(venue.received) > before  # quoting again
    result = session.close()
    writer.close()
    assert session.counters["live"]["controls"] == 4
    assert [r.payload for r in read_journal(tmp_path / "journal") if r.stream == "control"] == \
        [b"K\x01", b"K\x00", b"M\x02", b"M\x00"]
    assert replay_journal(tmp_path / "journal").digest == result.digest


def test_the_kill_switch_withdraws_what_waits_in_the_queue_and_tells_the_strategy(
        ds, packets, tmp_path):
    # One message a second: the market maker's ask waits in the queue behind its bid.
    journal = tmp_path / "journal"
    session, writer = session_for(EXAMPLES / "market_maker.toml", ds, journal,
                                  overrides=("queue.rate_per_second=1", "queue.burst=1"))
    venue = ScriptedVenue(day_start(ds), fill_every=10**9)
    start = day_start(ds) + START
    stamp = start
    for k, (sequence, blocks) in enumerate(packets[:60]):
        stamp = start + k * PACKET_NS
        deliver(session, venue, session.on_itch(blocks, sequence, stamp), stamp)
        if session.engine.counters()["queue"]["pushed"] > session.engine.counters()["queue"][
                "dispatched"]:
            break
    enters = [m for m in venue.received if isinstance(m, ouch.EnterOrder)]
    assert [m.side for m in enters] == ["B"]
    ask = session.strategy.ask_id
    assert ask and session.ctx.order(ask) is None  # queued, not an Order
    deliver(session, venue, session.on_kill(True, stamp), stamp)
    # Two seconds later the bucket has tokens again: the bid's cancel leaves (it waited for one
    # too), the withdrawn ask does not.
    deliver(session, venue, session.on_tick(stamp + 2 * 10**9), stamp + 2 * 10**9)
    after = venue.received[len(enters):]
    assert [(type(m), m.token) for m in after] == [(ouch.CancelOrder, enters[0].token)]
    assert session.strategy.ask_id == 0  # told: the side is free again
    stamp += 2 * 10**9
    deliver(session, venue, session.on_kill(False, stamp), stamp)
    stamp += 10**9  # past the market maker's retry_after of the quotes the kill switch denied
    for k, (sequence, blocks) in enumerate(packets[60:120]):
        deliver(session, venue, session.on_itch(blocks, sequence, stamp + k * PACKET_NS),
                stamp + k * PACKET_NS)
    deliver(session, venue, session.on_tick(stamp + 2 * 10**9), stamp + 2 * 10**9)
    assert "S" in [m.side for m in venue.received if isinstance(m, ouch.EnterOrder)][1:]
    result = session.close()
    writer.close()
    withdrawn = [dict(zip(DECISION_FIELDS, DECISION.unpack(r.payload), strict=True))
                 for r in read_journal(journal) if r.stream == "decision"]
    # Allowed when asked, denied by the kill switch when withdrawn.
    assert [d["reason"] for d in withdrawn if d["client_order_id"] == ask] == [
        int(RiskReason.ALLOWED), int(RiskReason.KILL_SWITCH)]
    assert replay_journal(journal).digest == result.digest


class LongThenQueuesBothWays(Strategy):
    """Buys 2 lots at the touch; once long, asks in one call to sell 1, buy 1, sell 1 and sell 1
    at the touch, and keeps every update the venue or the core sends about them."""

    def setup(self, ctx: Context) -> None:
        self.buy = 0
        self.queued: dict[int, str] = {}
        self.told: list[tuple[str, int]] = []
        ctx.subscribe(ctx.traded[0], book=True)

    def on_book(self, ctx: Context, instrument: int) -> None:
        bid, bid_qty, ask, ask_qty = ctx.touch(instrument)
        if not (bid_qty and ask_qty):
            return
        if not self.buy:
            self.buy = ctx.submit_limit(instrument, 1, bid, 2)
        elif ctx.position(instrument) == 2 and not self.queued:
            for name, side, price in (("sell 1", 2, ask), ("buy", 1, bid), ("sell 2", 2, ask),
                                      ("sell 3", 2, ask)):
                self.queued[ctx.submit_limit(instrument, side, price, 1)] = name

    def on_order(self, ctx: Context, update) -> None:
        if update.order_id in self.queued:
            self.told.append((self.queued[update.order_id], int(update.kind)))


def test_reduce_only_withdraws_what_waits_in_the_queue_and_could_grow_the_position(
        ds, packets, tmp_path):
    # One message a second: the buy takes the burst, the four that follow it wait in the queue.
    journal = tmp_path / "journal"
    session, writer = session_for(_config(tmp_path, "LongThenQueuesBothWays"), ds, journal,
                                  overrides=("queue.rate_per_second=1", "queue.burst=1"))
    venue = ScriptedVenue(day_start(ds), fill_every=1)
    start = day_start(ds) + START
    stamp = start
    for k, (sequence, blocks) in enumerate(packets[:200]):
        stamp = start + k * PACKET_NS
        for fill in venue.fills(stamp):
            deliver(session, venue, session.on_ouch(fill, stamp), stamp)
        deliver(session, venue, session.on_itch(blocks, sequence, stamp), stamp)
        if session.strategy.queued:
            break
    strategy = session.strategy
    assert session.ctx.position(0) == 2 and len(strategy.queued) == 4
    assert session.engine.counters()["queue"]["dispatched"] == 1  # the buy alone
    deliver(session, venue, session.on_mode(TradingMode.REDUCE_ONLY, stamp), stamp)
    # Long 2: the buy could grow it, and so could the third sell after the two before it (kept
    # in the queue, they count as open). Both told they will never be orders.
    assert strategy.told == [("buy", EventKind.ORDER_CANCELED), ("sell 3", EventKind.ORDER_CANCELED)]
    for second in (2, 3, 4, 5):  # a token a second: what was kept leaves, in its order
        at = stamp + second * 10**9
        deliver(session, venue, session.on_tick(at), at)
    enters = [m for m in venue.received if isinstance(m, ouch.EnterOrder)]
    assert [(m.side, m.shares) for m in enters] == [("B", 2), ("S", 1), ("S", 1)]
    result = session.close()
    writer.close()
    decisions = [dict(zip(DECISION_FIELDS, DECISION.unpack(r.payload), strict=True))
                 for r in read_journal(journal) if r.stream == "decision"]
    by_order = {}
    for d in decisions:
        by_order.setdefault(strategy.queued.get(d["client_order_id"]), []).append(d["reason"])
    allowed, reduce_only = int(RiskReason.ALLOWED), int(RiskReason.REDUCE_ONLY)
    assert by_order["buy"] == by_order["sell 3"] == [allowed, reduce_only]
    assert by_order["sell 1"] == by_order["sell 2"] == [allowed]
    assert replay_journal(journal).digest == result.digest


# ------------------------------------------------------------------------------------------
# the example market makers and their cancels in flight


def _drive_answering_late(session, venue, packets, start: int, late: int) -> int:
    """`drive`, but the venue's answers reach the session `late` packets after what they answer
    (the venue itself acts at once): live, a cancel is in flight for many book updates. Returns
    the most orders the session had open at once."""
    due: dict[int, list[bytes]] = {}
    most = 0

    def send(k: int, sent: list[bytes], stamp: int) -> None:
        due.setdefault(k + late, []).extend(a for m in sent for a in venue.answer(m, stamp))

    for k, (sequence, blocks) in enumerate(packets):
        stamp = start + k * PACKET_NS
        for answer in due.pop(k, []) + venue.fills(stamp):
            send(k, session.on_ouch(answer, stamp), stamp)
        send(k, session.on_itch(blocks, sequence, stamp), stamp)
        most = max(most, session.ctx.open_orders(0))
    return most


@pytest.mark.parametrize("config", CONFIGS)
def test_market_makers_do_not_requote_while_their_cancels_are_in_flight(ds, packets, config, tmp_path):
    session, writer = session_for(EXAMPLES / config, ds, tmp_path / "journal")
    venue = ScriptedVenue(day_start(ds), fill_every=2)
    most = _drive_answering_late(session, venue, packets, day_start(ds) + START, late=5)
    result = session.close()
    writer.close()
    assert result.denials == 0 and result.orders > 20 and result.fills > 0
    assert most == 2  # one quote a side: a cancelled one still counts until it is Canceled
    assert replay_journal(tmp_path / "journal").digest == result.digest


class RefusesCancels(ScriptedVenue):
    """Answers the first `refuse` cancels with a Cancel Reject: those orders stay live."""

    def __init__(self, day: int, refuse: int) -> None:
        super().__init__(day, fill_every=10**9)
        self.refuse = refuse
        self.refused: list[str] = []
        self.entered_beside_live = 0  # orders entered while one of ours lived on that side

    def answer(self, payload: bytes, stamp: int) -> list[bytes]:
        m = ouch.decode_inbound(payload)
        if isinstance(m, ouch.EnterOrder):
            self.entered_beside_live += any(o.enter.side == m.side for o in self.orders.values())
        if isinstance(m, ouch.CancelOrder) and m.token in self.orders and len(self.refused) < self.refuse:
            self.received.append(m)
            self.refused.append(m.token)
            return [ouch.encode(ouch.CancelReject(stamp - self.day, m.token))]
        return super().answer(payload, stamp)


@pytest.mark.parametrize("config", CONFIGS)
def test_a_quote_whose_cancel_the_venue_refuses_stays_the_quote_and_is_cancelled_again(
        ds, packets, config):
    session, _ = session_for(EXAMPLES / config, ds, None)
    venue = RefusesCancels(day_start(ds), refuse=3)
    drive(session, venue, packets[:400], day_start(ds) + START)
    result = session.close()
    assert len(venue.refused) == 3 and result.denials == 0
    cancels = [m.token for m in venue.received if isinstance(m, ouch.CancelOrder)]
    # each refusal is followed by one more cancel of the same order, until one is done
    assert all(cancels.count(token) == venue.refused.count(token) + 1 for token in venue.refused)
    assert venue.entered_beside_live == 0


# ------------------------------------------------------------------------------------------
# orders the venue has not answered


class Unanswered:
    """The oracle: per OUCH token, when each request still owed an answer left (an Enter Order
    until Accepted or Rejected, a Cancel Order until the order ends; a second cancel keeps the
    first one's time), from the messages alone."""

    def __init__(self) -> None:
        self.asked: dict[tuple[str, str], int] = {}

    def sent(self, payload: bytes, stamp: int) -> None:
        m = ouch.decode_inbound(payload)
        assert isinstance(m, ouch.EnterOrder | ouch.CancelOrder), m  # the market maker's only
        self.asked.setdefault((m.token, "enter" if isinstance(m, ouch.EnterOrder) else "cancel"), stamp)

    def answered(self, payload: bytes) -> None:
        m = ouch.decode_outbound(payload)
        if isinstance(m, ouch.Accepted):
            self.asked.pop((m.token, "enter"), None)
        elif isinstance(m, ouch.CancelReject):
            self.asked.pop((m.token, "cancel"), None)
        elif isinstance(m, ouch.Canceled | ouch.Executed | ouch.Rejected):  # all end the order
            for what in ("enter", "cancel"):
                self.asked.pop((m.token, what), None)

    def by(self, asked_by: int) -> tuple[int, int | None]:
        owed: dict[str, int] = {}
        for (token, _), stamp in self.asked.items():
            if stamp <= asked_by:
                owed[token] = min(stamp, owed.get(token, stamp))
        return len(owed), min(owed.values(), default=None)


@pytest.mark.parametrize("config", CONFIGS)
def test_orders_waiting_for_the_venues_answer_are_counted_with_the_oldest_request(
        config, ds, packets):
    """The venue answers only some requests at once and holds the others back for a while, and
    the kill switch cancels every open order once: at every packet, the core's count of orders
    owed an answer, and the oldest request, are the oracle's for several cut-off times."""
    session, _ = session_for(EXAMPLES / config, ds, None)
    venue = ScriptedVenue(day_start(ds))
    oracle = Unanswered()
    held: list[tuple[int, bytes]] = []  # (packet index to answer at, request)
    start = day_start(ds) + START
    checked = owed_seen = 0

    def send(sent: list[bytes], stamp: int) -> None:
        for k, payload in enumerate(sent):
            oracle.sent(payload, stamp)
            held.append((index + (1 + k % 3) * 7 if k % 2 == 0 else index, payload))

    for index, (sequence, blocks) in enumerate(packets[:600]):
        stamp = start + index * PACKET_NS
        if index in (300, 400):  # the kill switch cancels again what has a cancel in flight
            send(session.on_kill(index == 300, stamp), stamp)
        send(session.on_itch(blocks, sequence, stamp), stamp)
        answer_stamp = stamp + ANSWER_NS
        for _ in range(50):  # answers, and what they make the strategy send, until quiet
            due = [p for at, p in held if at <= index]
            if not due:
                break
            held = [(at, p) for at, p in held if at > index]
            for payload in due:
                for answer in venue.answer(payload, answer_stamp):
                    oracle.answered(answer)
                    send(session.on_ouch(answer, answer_stamp), answer_stamp)
        for back in (0, PACKET_NS, 5 * PACKET_NS, 20 * PACKET_NS):
            got = session.core.unanswered(answer_stamp - back)
            assert got == oracle.by(answer_stamp - back), (index, back)
            checked += 1
            owed_seen += got[0] > 0
    assert checked and owed_seen > 50  # the held answers did leave orders waiting
    assert session.core.unanswered(start - 1) == (0, None)


# ------------------------------------------------------------------------------------------
# one order table: the decoder reads the session's orders from the engine's L3 books

UNKNOWN_REF = 1 << 40  # never added


@st.composite
def order_flows(draw):
    """ITCH order messages on one stock, drawn against a model of its resting orders: adds,
    executions with and without price, cancels, deletes and replaces of resting orders (never
    more shares than rest: an overfill's ghost order is where a book and a decoder's own map may
    part), and some on a reference never added. Prices in ticks."""
    live: dict[int, list] = {}
    next_ref = 1
    ops = []
    for _ in range(draw(st.integers(1, 60))):
        kind = draw(st.sampled_from("AAAAECXDU?"))
        if kind == "?":
            ops.append((draw(st.sampled_from("ECXD")), UNKNOWN_REF, draw(st.integers(1, 50)),
                        draw(st.sampled_from("YN")), draw(st.integers(95, 110))))
        elif kind == "A" or not live:
            side = draw(st.sampled_from("BS"))
            price = draw(st.integers(95, 105)) if side == "B" else draw(st.integers(100, 110))
            shares = draw(st.integers(1, 500))
            live[next_ref] = [side, price, shares]
            ops.append(("A", next_ref, side, price, shares))
            next_ref += 1
        else:
            ref = draw(st.sampled_from(sorted(live)))
            if kind == "D":
                del live[ref]
                ops.append(("D", ref))
            elif kind == "U":
                side = live.pop(ref)[0]
                price, shares = draw(st.integers(95, 110)), draw(st.integers(1, 500))
                live[next_ref] = [side, price, shares]
                ops.append(("U", ref, next_ref, shares, price))
                next_ref += 1
            else:
                n = draw(st.integers(1, live[ref][2]))
                live[ref][2] -= n
                if live[ref][2] == 0:
                    del live[ref]
                ops.append((kind, ref, n, draw(st.sampled_from("YN")), draw(st.integers(95, 110))))
    return ops


def _expected_market(ops):
    """What ITCH 5.0 says `ops` leave: the book's levels {(side, price): shares}, the last trade
    printed (price, shares, aggressor side: 1 buy, 2 sell, 0 unknown) and how many messages
    named an order not resting."""
    live: dict[int, list] = {}
    last, unknown = None, 0
    for op in ops:
        kind, ref = op[0], op[1]
        if kind == "A":
            live[ref] = [op[2], op[3], op[4]]
        elif kind == "U":
            side = live.pop(ref)[0]
            live[op[2]] = [side, op[4], op[3]]
        elif ref not in live:
            unknown += 1
            if kind == "C" and op[3] == "Y":  # it names its own price: printed all the same
                last = (op[4], op[2], 0)
        elif kind == "D":
            del live[ref]
        else:
            side, price, _ = live[ref]
            n, printable, exec_price = op[2], op[3], op[4]
            live[ref][2] -= n
            if live[ref][2] == 0:
                del live[ref]
            if kind == "E" or (kind == "C" and printable == "Y"):
                last = (exec_price if kind == "C" else price, n, 2 if side == "B" else 1)
    levels: dict[tuple[str, int], int] = {}
    for side, price, shares in live.values():
        levels[side, price] = levels.get((side, price), 0) + shares
    return levels, last, unknown


def _directory(locate: int, stock: str, ts: int):
    return itch.StockDirectory(locate, 0, ts, stock, "Q", "N", 100, "N", "C", "Z", "P", "N", "N",
                               "1", "N", 0, "N")


def _opening(ts: int, *stocks: str) -> list:
    """The session's opening system events, then a directory for each stock (locates 1, 2...)."""
    return ([itch.SystemEvent(0, 0, ts, c) for c in "OSQ"]
            + [_directory(locate, stock, ts) for locate, stock in enumerate(stocks, 1)])


def _assert_market_is(session, ops) -> None:
    """The session's first book, last trade and unknown orders are what _expected_market says."""
    levels, last, unknown = _expected_market(ops)
    bid_px, bid_qty, ask_px, ask_qty = (a.tolist() for a in session.ctx.book(0, depth=64))
    assert list(zip(bid_px, bid_qty)) == sorted(
        ((p, q) for (s, p), q in levels.items() if s == "B"), reverse=True)
    assert list(zip(ask_px, ask_qty)) == sorted((p, q) for (s, p), q in levels.items() if s == "S")
    market = session.engine.market
    printed = market.last_trade(0)
    assert (printed and printed[1:]) == last
    assert market.anomalies()["unknown_order"][0] == unknown


def _order_messages(ops, locate: int, stock: str, multiplier: int, ts: int) -> list:
    """`ops` (order_flows) as ITCH messages on stock locate `locate`, references offset by
    `locate` << 32 (they are unique across a day's stocks)."""
    base = locate << 32
    out = []
    for k, op in enumerate(ops, 1):
        kind, ref, t = op[0], base + op[1], ts + k
        if kind == "A":
            out.append(itch.AddOrder(locate, 0, t, ref, op[2], op[4], stock, op[3] * multiplier))
        elif kind == "E":
            out.append(itch.OrderExecuted(locate, 0, t, ref, op[2], k))
        elif kind == "C":
            out.append(itch.OrderExecutedWithPrice(locate, 0, t, ref, op[2], k, op[3],
                                                   op[4] * multiplier))
        elif kind == "X":
            out.append(itch.OrderCancel(locate, 0, t, ref, op[2]))
        elif kind == "D":
            out.append(itch.OrderDelete(locate, 0, t, ref))
        else:
            out.append(itch.OrderReplace(locate, 0, t, ref, base + op[2], op[3], op[4] * multiplier))
    return out


def _framed(messages) -> list[bytes]:
    """ITCH messages as MoldUDP64 message blocks ([u16 length][message])."""
    return [len(b).to_bytes(2, "big") + b for b in map(itch.encode, messages)]


def _itch_blocks(ops, stock: str, multiplier: int, ts: int) -> list[bytes]:
    """`ops` as ITCH message blocks ([u16 length][message]) on stock locate 1, after the
    session's opening system events and the stock's directory."""
    return _framed(_opening(ts, stock) + _order_messages(ops, 1, stock, multiplier, ts))


@settings(max_examples=60, deadline=None)
@given(ops=order_flows(), datagram=st.integers(1, 25))
def test_the_books_the_decoder_reads_its_orders_from_are_what_itch_says(ds, ops, datagram):
    """The live decoder keeps no orders of the session's stocks: it reads an execution's,
    cancel's, delete's or replace's order from the engine's L3 book, which applies each message
    before the next is decoded, however many a datagram carries. Oracle: a model of the
    specification (the orders each message leaves), against the book's levels, the last trade
    printed and the unknown orders counted."""
    session, _ = session_for(EXAMPLES / "market_maker.toml", ds, None)
    terms = venue_instruments(ds.instruments)[0]
    blocks = _itch_blocks(ops, terms.stock, terms.price_multiplier, 1_000)
    stamp = day_start(ds) + START
    for k in range(0, len(blocks), datagram):
        session.on_itch(b"".join(blocks[k:k + datagram]), k + 1, stamp + k)
    _assert_market_is(session, ops)
    assert session.counters["live"]["itch_messages"] == len(blocks)


def test_an_order_added_before_its_stocks_directory_is_still_known_to_the_decoder(ds):
    """Until a directory names a stock its orders are no stock's of the session: the decoder
    tracks them itself, and keeps them when the stock becomes the books' (the book never saw
    them). An execution of one then still prints at its price; the book counts the order
    unknown."""
    session, _ = session_for(EXAMPLES / "market_maker.toml", ds, None)
    terms = venue_instruments(ds.instruments)[0]
    price = 100 * terms.price_multiplier
    messages = [itch.SystemEvent(0, 0, 1, c) for c in "OSQ"]
    messages += [itch.AddOrder(1, 0, 2, 7, "S", 300, terms.stock, price),
                 _directory(1, terms.stock, 3),
                 itch.AddOrder(1, 0, 4, 8, "B", 200, terms.stock, price - terms.price_multiplier),
                 itch.OrderExecuted(1, 0, 5, 7, 120, 1)]
    session.on_itch(b"".join(_framed(messages)), 1, day_start(ds) + START)
    market = session.engine.market
    assert market.last_trade(0)[1:] == (100, 120, 1)  # the sell order's price, a buyer aggressing
    assert market.anomalies()["unknown_order"][0] == 1
    assert session.ctx.book(0)[:2][0].tolist() == [99]
    assert session.counters["live"]["itch_unmapped"] == 1  # the early add, no stock's yet


@settings(max_examples=40, deadline=None)
@given(prices=st.lists(st.integers(0, (1 << 32) - 1), min_size=1, max_size=30))
def test_feed_prices_become_ticks_truncated_and_off_tick_ones_are_counted(ds, prices):
    """A Price(4) of the feed is price // multiplier ticks in the books, whatever its size; one
    that is no whole number of ticks is counted (off_tick) and rests on the tick below."""
    session, _ = session_for(EXAMPLES / "market_maker.toml", ds, None)
    terms = venue_instruments(ds.instruments)[0]
    m = terms.price_multiplier
    messages = _opening(1, terms.stock)
    messages += [itch.AddOrder(1, 0, 2, ref, "B", 10, terms.stock, price)
                 for ref, price in enumerate(prices, 1)]
    session.on_itch(b"".join(_framed(messages)), 1, day_start(ds) + START)
    levels: dict[int, int] = {}
    for price in prices:
        levels[price // m] = levels.get(price // m, 0) + 10
    bid_px, bid_qty, _, _ = (a.tolist() for a in session.ctx.book(0, depth=64))
    assert dict(zip(bid_px, bid_qty)) == levels
    assert session.counters["live"]["off_tick"] == sum(p % m != 0 for p in prices)


@settings(max_examples=40, deadline=None)
@given(ours=order_flows(), theirs=order_flows(), interleave=st.lists(st.booleans(), max_size=120))
def test_orders_of_a_stock_not_of_the_session_are_decoded_and_dropped_untracked(
        ds, ours, theirs, interleave):
    """Another stock's messages between the session's (a real feed carries thousands of
    stocks): no one tracks its orders, its events are dropped and counted, and the session's
    book is what its own messages say. Counted per message: an add, execution without price,
    cancel or delete one event, a replace two, an execution with price one more when printable
    (the decoder, keeping no orders for it, knows no price for an execution without one)."""
    session, _ = session_for(EXAMPLES / "market_maker.toml", ds, None)
    terms = venue_instruments(ds.instruments)[0]
    mine = _order_messages(ours, 1, terms.stock, terms.price_multiplier, 1_000)
    other = _order_messages(theirs, 2, "ZZZZ", 100, 1_000)
    merged = []
    while mine or other:
        take_mine = other == [] or (mine != [] and (interleave.pop() if interleave else True))
        merged.append((mine if take_mine else other).pop(0))
    session.on_itch(b"".join(_framed(_opening(1, terms.stock, "ZZZZ") + merged)), 1,
                    day_start(ds) + START)
    _assert_market_is(session, ours)
    dropped = sum(2 if op[0] == "U" else 2 if op[0] == "C" and op[3] == "Y" else 1
                  for op in theirs)
    assert session.counters["live"]["itch_unmapped"] == dropped


# ------------------------------------------------------------------------------------------
# book snapshots after a gap


class ItchBooks:
    """What a venue's books hold after the ITCH messages given (order by order, in time priority;
    a replace goes to the back), written here from the ITCH 5.0 layouts, not by lockstep's
    decoder: the oracle a snapshot is built from."""

    def __init__(self) -> None:
        self.directory: dict[int, bytes] = {}  # locate -> its Stock Directory message
        self.orders: dict[int, list] = {}  # reference -> [locate, side, shares, stock, price]

    def feed(self, blocks: bytes) -> None:
        pos = 0
        while pos < len(blocks):
            n = int.from_bytes(blocks[pos:pos + 2], "big")
            self.message(blocks[pos + 2:pos + 2 + n])
            pos += 2 + n

    def message(self, m: bytes) -> None:
        kind, locate = m[:1], int.from_bytes(m[1:3], "big")
        if kind == b"R":
            self.directory[locate] = m
        elif kind in (b"A", b"F"):
            ref, side, shares, stock, price = struct.unpack_from(">QcI8sI", m, 11)
            self.orders[ref] = [locate, side, shares, stock, price]
        elif kind in (b"E", b"C", b"X"):
            ref, shares = struct.unpack_from(">QI", m, 11)
            self.orders[ref][2] -= shares
            if self.orders[ref][2] == 0:
                del self.orders[ref]
        elif kind == b"D":
            del self.orders[struct.unpack_from(">Q", m, 11)[0]]
        elif kind == b"U":
            old, new, shares, price = struct.unpack_from(">QQII", m, 11)
            locate_, side, _, stock, _ = self.orders.pop(old)
            self.orders[new] = [locate_, side, shares, stock, price]

    def snapshot(self) -> bytes:
        """Blocks: every stock's directory, then each stock's orders, oldest first."""
        out = [self.directory[k] for k in sorted(self.directory)]
        for locate in sorted(self.directory):
            for ref, (at, side, shares, stock, price) in self.orders.items():
                if at == locate:
                    out.append(b"A" + struct.pack(">HH6sQcI8sI", locate, 0, bytes(6), ref, side,
                                                  shares, stock, price))
        return b"".join(len(m).to_bytes(2, "big") + m for m in out)


def _books(session) -> list:
    return [(session.ctx.book_valid(i), [list(side) for side in session.ctx.book(i, 50)])
            for i in range(len(session.instruments))]


def _gap_then_held(session, ds, packets, held: list, *, gaps_before: tuple = ()) -> int:
    """Packets 0..99 applied, 100.. lost for good (a gap given up), then `held` applied to the
    invalid books (`gaps_before`: another gap given up before each held[k] named): the last
    stamp."""
    start = day_start(ds) + START
    for k, (sequence, blocks) in enumerate(packets[:100]):
        assert session.on_itch(blocks, sequence, start + k * PACKET_NS) == []
    stamp = start + 100 * PACKET_NS
    session.on_feed_gap(packets[100][0], stamp)
    assert not any(valid for valid, _ in _books(session))
    for k, (sequence, blocks) in enumerate(held):
        if k in gaps_before:
            session.on_feed_gap(session.core.next_sequence, stamp + 1 + k)
        session.on_itch(blocks, sequence, stamp + 1 + k)
    return stamp + len(held)


def _snapshot_before(session, packets, taken_at: int, stamp: int) -> None:
    """A snapshot of the venue's books before packet `taken_at` (the test's own ITCH books)."""
    venue = ItchBooks()
    for _, blocks in packets[:taken_at]:
        venue.feed(blocks)
    session.on_snapshot(venue.snapshot(), packets[taken_at][0], stamp)


def _continued_or_taken_again(session, packets, taken_at: int, held_from: int) -> int:
    """After a snapshot before packet `taken_at`, the core held packets held_from..124 without a
    hole: continued from them when they reach back to it, else the feed is taken from the
    snapshot's number again. The packet to deliver next."""
    live = session.counters["live"]
    if taken_at < held_from:
        assert live["snapshot_continued"] == 0
        assert session.core.next_sequence == packets[taken_at][0]
        return taken_at
    # From what was held, nothing asked for again; taken after it, what is still to come up to
    # the snapshot is in it and dropped.
    assert live["snapshot_continued"] == sum(_blocks(b) for _, b in packets[taken_at:125])
    assert session.core.next_sequence == packets[max(taken_at, 125)][0]
    return 125


def _equals_a_session_that_lost_nothing(session, config, ds, packets, come_next: int, end: int,
                                        stamp: int, told: list | None = None) -> list:
    """The rest of the feed from packet `come_next` to `end` applied: the books are those of a
    session that had every packet. `told`: the packets whose trades the strategy was told of,
    in the order it was told them (each packet's trades are the reference's). Each packet's
    trades in the reference session."""
    for k, (sequence, blocks) in enumerate(packets[come_next:end]):
        session.on_itch(blocks, sequence, stamp + 100 + k)
    reference, _ = session_for(config, ds, None)
    start = day_start(ds) + START
    trades_of = []
    for k, (sequence, blocks) in enumerate(packets[:end]):
        before = len(reference.strategy.trades)
        reference.on_itch(blocks, sequence, start + k * PACKET_NS)
        trades_of.append(reference.strategy.trades[before:])
    assert _books(session) == _books(reference)
    if told is not None:
        assert sum(map(len, trades_of[100:125])) > 0  # the held packets traded
        assert session.strategy.trades == [t for k in told for t in trades_of[k]]
    return trades_of


@pytest.mark.parametrize("held_feed_bytes", [None, 2_000], ids=["held", "too-much-to-hold"])
@pytest.mark.parametrize("taken_at", [130, 120, 105],
                         ids=["after-what-was-applied", "before-it", "inside-the-lost-range"])
def test_a_snapshot_after_an_unfilled_gap_rebuilds_every_book_as_the_feed_has_it(
        ds, packets, tmp_path, taken_at, held_feed_bytes):
    """100..109 lost for good, 110..124 applied to invalid books, then a snapshot taken after
    them, among them (continued with what was held), or among the lost ones (the receiver asks
    for 105.. again: here given as retransmitted). With room to hold only the first few of
    110..124 the core holds none of them (counted) and a snapshot among them takes the feed from
    its own number again: what it applies again it still does not tell twice."""
    journal = tmp_path / "journal"
    config = _config(tmp_path, "CountsBookCalls", module=COUNTING)
    session, writer = session_for(config, ds, journal, held_feed_bytes=held_feed_bytes)
    stamp = _gap_then_held(session, ds, packets, packets[110:125]) + 100
    overflowed = held_feed_bytes is not None
    calls = len(session.strategy.calls)
    _snapshot_before(session, packets, taken_at, stamp)
    # Told once per book, valid, with the whole book as it is once the messages the core held
    # since the gap are applied again (taken before them): never a book half rebuilt.
    assert session.strategy.calls[calls:] == [(i, True) for i in range(len(ds.instruments))]
    assert session.strategy.touches[calls:] == [session.ctx.touch(i)
                                                for i in range(len(ds.instruments))]
    come_next = _continued_or_taken_again(session, packets, taken_at,
                                          held_from=125 if overflowed else 110)
    # Each trade told once: those of the held feed as they came, not again when it is applied
    # again (continued, or retransmitted from 105 on); none of what was lost or is in the snapshot.
    told = [*range(100), *range(110, 125), *range(105, 110), *range(125, 200)] if taken_at < 110 \
        else [*range(100), *range(110, 125), *range(max(taken_at, 125), 200)]
    trades_of = _equals_a_session_that_lost_nothing(session, config, ds, packets, come_next, 200,
                                                    stamp, told)
    live = session.counters["live"]
    applied_again = range(max(taken_at, 110), 125)
    assert live["trades_told_before"] == sum(len(trades_of[k]) for k in applied_again)
    assert live["snapshots"] == 1 and live["held_overflows"] == int(overflowed)
    assert live["itch_duplicates"] == sum(_blocks(b) for _, b in packets[125:taken_at])
    assert all(valid and len(levels[0]) >= 3 and len(levels[2]) >= 3  # bid and ask prices
               for valid, levels in _books(session))
    result = session.close()
    writer.close()
    assert [r.stream for r in read_journal(journal)].count("snapshot") == 1
    assert replay_journal(journal).digest == result.digest


@pytest.mark.parametrize("reported", [False, True], ids=["skipped", "a-second-gap"])
@pytest.mark.parametrize("taken_at", [112, 120], ids=["before-the-hole", "after-it"])
def test_the_held_feed_starts_again_after_a_hole(ds, packets, tmp_path, taken_at, reported):
    """Since the gap the core took 110..114, then 117..124 (115 and 116 skipped, unreported, or
    a second gap given up while the books were invalid): a snapshot from before the hole is not
    continued from what it held (the feed is taken from the snapshot's number again); one from
    after it is. Either way no trade is told twice."""
    config = _config(tmp_path, "CountsBookCalls", module=COUNTING)
    session, writer = session_for(config, ds, tmp_path / "journal")
    stamp = _gap_then_held(session, ds, packets, packets[110:115] + packets[117:125],
                           gaps_before=(5,) if reported else ()) + 100
    _snapshot_before(session, packets, taken_at, stamp)
    come_next = _continued_or_taken_again(session, packets, taken_at, held_from=117)
    # Each trade told once: taken again from 112, the messages on both sides of the hole were
    # told already; the two in it are told now, for the first time.
    told = [*range(100), *range(110, 115), *range(117, 125),
            *(range(115, 117) if taken_at < 117 else ()), *range(125, 160)]
    trades_of = _equals_a_session_that_lost_nothing(session, config, ds, packets, come_next, 160,
                                                    stamp, told)
    applied_again = [k for k in [*range(110, 115), *range(117, 125)] if k >= taken_at]
    assert session.counters["live"]["trades_told_before"] == sum(len(trades_of[k])
                                                                 for k in applied_again)
    result = session.close()
    writer.close()
    assert replay_journal(tmp_path / "journal").digest == result.digest


def test_a_second_gap_with_no_hole_after_it_keeps_what_was_held(ds, packets, tmp_path):
    """Since the gap the core took 110..124 without a hole, a second gap given up at 115
    notwithstanding (the feed went on at 115): a snapshot from 112 is continued from what was
    held from before that gap as well as after it, and no trade is told twice."""
    config = _config(tmp_path, "CountsBookCalls", module=COUNTING)
    session, writer = session_for(config, ds, tmp_path / "journal")
    stamp = _gap_then_held(session, ds, packets, packets[110:125], gaps_before=(5,)) + 100
    _snapshot_before(session, packets, 112, stamp)
    come_next = _continued_or_taken_again(session, packets, 112, held_from=110)
    trades_of = _equals_a_session_that_lost_nothing(session, config, ds, packets, come_next, 160,
                                                    stamp, [*range(100), *range(110, 160)])
    assert session.counters["live"]["trades_told_before"] == sum(len(trades_of[k])
                                                                 for k in range(112, 125))
    result = session.close()
    writer.close()
    assert replay_journal(tmp_path / "journal").digest == result.digest


def test_a_snapshot_reaching_back_past_many_holes_tells_no_trade_twice(ds, packets, tmp_path):
    """Since the gap the core took every other packet of 110..149 (twenty holes): a snapshot
    from inside the first hole takes the feed from its number again, and of what comes again
    only the packets never taken before are told."""
    config = _config(tmp_path, "CountsBookCalls", module=COUNTING)
    session, writer = session_for(config, ds, tmp_path / "journal")
    stamp = _gap_then_held(session, ds, packets, packets[110:150:2]) + 100
    _snapshot_before(session, packets, 111, stamp)
    assert session.counters["live"]["snapshot_continued"] == 0
    assert session.core.next_sequence == packets[111][0]
    told = [*range(100), *range(110, 150, 2), *range(111, 150, 2), *range(150, 200)]
    trades_of = _equals_a_session_that_lost_nothing(session, config, ds, packets, 111, 200,
                                                    stamp, told)
    assert session.counters["live"]["trades_told_before"] == sum(len(trades_of[k])
                                                                 for k in range(112, 150, 2))
    result = session.close()
    writer.close()
    assert replay_journal(tmp_path / "journal").digest == result.digest


@settings(max_examples=30, deadline=None)
@given(taken=st.lists(st.integers(110, 149), min_size=1, max_size=40, unique=True).map(sorted),
       gaps=st.sets(st.integers(1, 39), max_size=4), taken_at=st.integers(100, 150),
       held_feed_bytes=st.sampled_from([None, 3_000]))
def test_any_loss_gaps_and_snapshot_tell_each_trade_once(ds, packets, tmp_path_factory, taken,
                                                         gaps, taken_at, held_feed_bytes):
    """100..109 lost for good, then any packets of 110..149 taken (holes between them), gaps
    given up before some, a hold of any size, and a snapshot from anywhere in 100..150; the rest
    delivered from where the core asks. The books end as a session that lost nothing has them,
    the strategy is told each trade exactly once (those taken as they came, the rest as they
    come after the snapshot), and the journal replays to the digest."""
    root = tmp_path_factory.mktemp("loss")
    config = _config(root, "CountsBookCalls", module=COUNTING)
    session, writer = session_for(config, ds, root / "journal", held_feed_bytes=held_feed_bytes)
    stamp = _gap_then_held(session, ds, packets, [packets[k] for k in taken],
                           gaps_before=tuple(g for g in gaps if g < len(taken))) + 100
    _snapshot_before(session, packets, taken_at, stamp)
    come_next = next(k for k in range(len(packets)) if packets[k][0] == session.core.next_sequence)
    assert come_next >= taken_at  # never asked for what the snapshot holds
    told = [*range(100), *taken, *(k for k in range(come_next, 170) if k not in set(taken))]
    trades_of = _equals_a_session_that_lost_nothing(session, config, ds, packets, come_next, 170,
                                                    stamp, told)
    assert session.counters["live"]["trades_told_before"] == sum(
        len(trades_of[k]) for k in taken if k >= taken_at)
    result = session.close()
    writer.close()
    assert replay_journal(root / "journal").digest == result.digest


def test_more_held_feed_than_the_core_keeps_means_asking_again(ds, packets, tmp_path):
    """Past 64 MiB of feed since the gap the core stops holding it (counted): a snapshot from
    inside what came is not continued; the feed is taken from the snapshot's number again."""
    config = _config(tmp_path, "CountsBookCalls", module=COUNTING)
    session, writer = session_for(config, ds, tmp_path / "journal")
    stamp = _gap_then_held(session, ds, packets, [])
    first = packets[110][0]
    big = (60_000).to_bytes(2, "big") + b"Z" + bytes(59_999)  # a type ITCH 5.0 does not have
    for k in range(1_200):  # 72 MB
        session.on_itch(big, first + k, stamp + 1 + k)
    live = session.counters["live"]
    assert live["held_overflows"] == 1 and live["itch_problems"] == 1_200
    session.on_snapshot(b"", first + 5, stamp + 2_000)  # empty books, taken before first + 5
    live = session.counters["live"]
    assert live["snapshot_continued"] == 0 and live["snapshots"] == 1
    assert session.core.next_sequence == first + 5
    result = session.close()
    writer.close()
    assert replay_journal(tmp_path / "journal").digest == result.digest


def test_a_snapshot_larger_than_a_frame_is_journaled_in_parts_and_replays(ds, packets, tmp_path,
                                                                       monkeypatch):
    """A snapshot is journaled in frames of whole blocks (a frame must fit the journal's ring,
    and a venue's snapshot can be far larger): snapshot_part frames, then the snapshot frame with
    the sequence number; they hold the snapshot whole, in order, and the journal replays."""
    monkeypatch.setattr("lockstep.live.session.SNAPSHOT_PART_BYTES", 2_000)
    journal = tmp_path / "journal"
    config = _config(tmp_path, "CountsBookCalls", module=COUNTING)
    session, writer = session_for(config, ds, journal)
    stamp = _gap_then_held(session, ds, packets, packets[110:125]) + 100
    venue = ItchBooks()
    for _, blocks in packets[:130]:
        venue.feed(blocks)
    snapshot = venue.snapshot()
    assert len(snapshot) > 5 * 2_000
    session.on_snapshot(snapshot, packets[130][0], stamp)
    _equals_a_session_that_lost_nothing(session, config, ds, packets, 130, 160, stamp)
    result = session.close()
    writer.close()
    frames = [r for r in read_journal(journal) if r.stream in ("snapshot_part", "snapshot")]
    assert [r.stream for r in frames] == ["snapshot_part"] * (len(frames) - 1) + ["snapshot"]
    assert all(len(r.payload) <= 2_000 for r in frames[:-1]) and len(frames) > 5
    assert all(_whole_blocks(r.payload) for r in frames[:-1])
    last = frames[-1].payload
    assert int.from_bytes(last[:8], "big") == packets[130][0]
    assert b"".join(r.payload for r in frames[:-1]) + last[8:] == snapshot
    assert replay_journal(journal).digest == result.digest
    # Cut after its parts, before its snapshot frame (the session stopped there): the parts
    # were never applied, and the journal replays up to its end.
    at = next(k for k, r in enumerate(read_journal(journal)) if r.stream == "snapshot")
    _rewrite(journal, tmp_path / "cut", lambda k, r: r.payload if k < at else None)
    replayed = replay_journal(tmp_path / "cut")
    assert replayed.digest != result.digest and replayed.counters["live"]["snapshots"] == 0


@settings(max_examples=200, deadline=None)
@given(lengths=st.lists(st.integers(0, 300), max_size=40), most=st.integers(1, 1_000))
def test_a_snapshot_is_cut_into_runs_of_whole_blocks(lengths, most):
    blocks = b"".join(n.to_bytes(2, "big") + bytes([n % 251]) * n for n in lengths)
    runs = snapshot_parts(blocks, most)
    assert b"".join(runs) == blocks and len(runs) >= 1
    assert all(_whole_blocks(r) for r in runs)
    assert all(len(r) <= most or _blocks(r) == 1 for r in runs)
    # Greedy: a run and the next run's first block would not have fit in one frame.
    for r, after in itertools.pairwise(runs):
        assert len(r) + 2 + int.from_bytes(after[:2], "big") > most


def test_a_journal_frame_larger_than_the_ring_is_an_error_not_a_loss(tmp_path):
    writer = JournalWriter(tmp_path / "j", {"config": ""}, ring_bytes=1 << 16)
    with pytest.raises(LockstepError, match=r"a snapshot frame of 70,000 bytes does not fit the "
                                            r"journal's ring of 65,536 bytes"):
        writer.write("snapshot", 1, bytes(70_000))
    writer.write("tick", 2)
    writer.close()
    assert [r.stream for r in read_journal(tmp_path / "j")] == ["tick"]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=12), st.binary(max_size=3000)), min_size=1,
                max_size=60))
def test_journal_frames_through_a_small_ring_come_out_whole_and_in_order(tmp_path_factory, frames):
    # A 4 KiB ring: frames wrap round its end and the appender waits for room again and again
    # (the room it last saw is stale by design); each payload is appended in two pieces, as
    # the loop appends an ITCH input, and reads back as one.
    folder = tmp_path_factory.mktemp("j")
    writer = JournalWriter(folder, {"config": ""}, ring_bytes=1 << 12)
    for k, (head, body) in enumerate(frames):
        assert writer.native.append(k + 1, STREAMS.index("snapshot_part"), head, body)
    writer.close()
    got = list(read_journal(folder))
    assert [r.receive_ns for r in got] == list(range(1, len(frames) + 1))
    assert [r.payload for r in got] == [head + body for head, body in frames]


def test_the_market_maker_quotes_again_after_a_snapshot_and_not_before(ds, packets, tmp_path):
    session, writer = session_for(EXAMPLES / "market_maker_compiled.toml", ds, tmp_path / "j")
    venue = ScriptedVenue(day_start(ds), fill_every=10**9)
    start = day_start(ds) + START
    end = drive(session, venue, packets[:100], start)
    assert session.ctx.open_orders(0) == 2
    deliver(session, venue, session.on_feed_gap(packets[100][0], end), end)
    assert session.ctx.open_orders(0) == 0  # pulled: no quote on stale levels
    before = len(venue.received)
    drive(session, venue, packets[110:130], end + 1)
    assert len(venue.received) == before  # invalid books: nothing quoted
    books = ItchBooks()
    for _, blocks in packets[:130]:
        books.feed(blocks)
    at = end + 200 * PACKET_NS
    deliver(session, venue, session.on_snapshot(books.snapshot(), packets[130][0], at), at)
    enters = [m for m in venue.received[before:] if isinstance(m, ouch.EnterOrder)]
    assert sorted(m.side for m in enters) == ["B", "S"]  # quoting at once, at the rebuilt touch
    bid, _, ask, _ = session.ctx.touch(0)
    multiplier = venue_instruments(ds.instruments)[0].price_multiplier
    assert {m.side: m.price for m in enters} == {"B": bid * multiplier, "S": ask * multiplier}
    result = session.close()
    writer.close()
    assert replay_journal(tmp_path / "j").digest == result.digest


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(
    st.binary(max_size=60),
    st.builds(lambda locate, ref, side, shares, price: b"A" + struct.pack(
        ">HH6sQcI8sI", locate, 0, bytes(6), ref, side, shares, b"SYN0    ", price),
        st.integers(0, 4), st.integers(0, 2**64 - 1), st.sampled_from([b"B", b"S", b"?"]),
        st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))), max_size=30),
    st.integers(1, 2**40))
def test_a_snapshot_of_any_content_never_crashes_and_replays(ds, packets, tmp_path_factory,
                                                             messages, next_sequence):
    journal = tmp_path_factory.mktemp("snap") / "journal"
    session, writer = session_for(EXAMPLES / "market_maker_compiled.toml", ds, journal)
    start = day_start(ds) + START
    for k, (sequence, blocks) in enumerate(packets[:20]):
        session.on_itch(blocks, sequence, start + k * PACKET_NS)
    blocks = b"".join(len(m).to_bytes(2, "big") + m for m in messages)
    session.on_snapshot(blocks, next_sequence, start + 30 * PACKET_NS)
    assert session.failure is None
    assert all(session.ctx.book_valid(i) for i in range(len(ds.instruments)))
    result = session.close()
    writer.close()
    assert replay_journal(journal).digest == result.digest
