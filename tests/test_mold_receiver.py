"""The MoldUDP64 receiver session (lockstep.protocols.mold_receiver, C++
session/mold_receiver.hpp): every test runs on the compiled receiver and on its pure-Python twin
(lockstep.reference.mold_receiver), and the property tests demand the same deliveries, notices,
requests and counters from both, on clean, reordered, duplicated, lost, damaged and forged
datagrams. Datagrams are built with the MoldUDP64 codec; time is only the stamps given."""
from __future__ import annotations

import random

import numpy as np
import pytest
from cpp_harness import build as build_harness
from cpp_harness import needs_compiler
from cpp_harness import run as run_harness
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lockstep.enums import MoldNoticeKind as N
from lockstep.enums import WireProblem
from lockstep.protocols import moldudp64 as mold
from lockstep.protocols.mold_receiver import MoldReceiver, MoldReceiverConfig
from lockstep.protocols.moldudp64 import RetransmissionRequest
from lockstep.reference.mold_receiver import MoldReceiver as ReferenceReceiver

IMPLS = pytest.mark.parametrize("impl", [MoldReceiver, ReferenceReceiver],
                                ids=["compiled", "reference"])
FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SESSION = "SESSION001"
MS = 1_000_000


def msg(sequence: int) -> bytes:
    """A message whose bytes say which sequence it is (lengths vary, some are empty)."""
    return f"m{sequence}".encode() * (sequence % 3)


def packet(first: int, count: int, session: str = SESSION) -> bytes:
    data, taken = mold.encode_packet(session, first, [msg(s) for s in range(first, first + count)],
                                     1400)
    assert taken == count
    return data


def seqs(delivered) -> list[int]:
    return [s for s, _, _ in delivered]


def kinds(receiver) -> list[N]:
    return [n.kind for n in receiver.notices()]


@IMPLS
def test_in_order_datagrams_are_delivered_with_their_stamps_and_nothing_is_asked(impl):
    r = impl()
    out = r.receive(packet(1, 3), 100) + r.receive(packet(4, 2), 200)
    assert out == [(s, msg(s), 100 if s < 4 else 200) for s in range(1, 6)]
    assert r.take_request(300) is None
    assert kinds(r) == [N.SESSION_STARTED]
    assert (r.expected, r.session, r.gap_open) == (6, SESSION, False)
    assert r.counters["messages"] == 5 and r.counters["packets"] == 2


@IMPLS
def test_a_lost_datagram_is_requested_and_what_was_held_follows_it_in_order(impl):
    r = impl()
    r.receive(packet(1, 2), 10)
    assert r.receive(packet(6, 2), 20) == []  # 3..5 lost: held
    assert r.held == 1 and r.gap_open
    assert r.take_request(21) == RetransmissionRequest(SESSION, 3, 3)
    assert r.take_request(22) is None  # asked already, interval not over
    out = r.receive(packet(3, 3), 30)
    assert out == [(3, msg(3), 30), (4, msg(4), 30), (5, msg(5), 30), (6, msg(6), 20),
                   (7, msg(7), 20)]
    notices = r.notices()
    assert [(n.kind, n.first, n.count) for n in notices] == [
        (N.SESSION_STARTED, 1, 0), (N.GAP_DETECTED, 3, 5), (N.GAP_RECOVERED, 8, 0)]
    assert r.counters["gaps"] == 1 and r.counters["gaps_recovered"] == 1


@IMPLS
def test_duplicates_and_overlapping_retransmissions_deliver_each_message_once(impl):
    r = impl()
    r.receive(packet(1, 3), 1)
    assert r.receive(packet(1, 3), 2) == []
    assert r.receive(packet(6, 3), 3) == []
    # A retransmission cut differently from the original: 2..7 overlaps both sides.
    assert seqs(r.receive(packet(2, 6), 4)) == [4, 5, 6, 7, 8]
    c = r.counters
    assert c["messages"] == 8
    assert c["duplicate_packets"] == 1 and c["duplicate_messages"] == 3 + 2 + 2


@IMPLS
def test_the_request_is_repeated_after_the_interval_and_capped_at_the_maximum_count(impl):
    r = impl(MoldReceiverConfig(request_interval_ns=100 * MS, max_request_count=4))
    r.receive(packet(1, 1), 0)
    r.receive(packet(12, 1), 0)  # 2..11 missing
    assert r.take_request(0) == RetransmissionRequest(SESSION, 2, 4)
    assert r.take_request(99 * MS) is None
    assert r.take_request(100 * MS) == RetransmissionRequest(SESSION, 2, 4)
    r.receive(packet(2, 4), 101 * MS)  # what was asked came: the rest is asked at once
    assert r.take_request(101 * MS) == RetransmissionRequest(SESSION, 6, 4)
    assert r.counters["requests"] == 3 and r.counters["messages_requested"] == 12


@IMPLS
def test_a_hole_without_progress_is_abandoned_with_its_range_and_the_rest_flows(impl):
    r = impl(MoldReceiverConfig(give_up_ns=500 * MS))
    r.receive(packet(1, 2), 0)
    r.receive(packet(5, 2), 100 * MS)  # 3, 4 never come
    r.notices()
    assert r.poll(599 * MS) == []
    out = r.poll(600 * MS)  # 500 ms after the gap opened (at the 100 ms datagram)
    assert out == [(5, msg(5), 100 * MS), (6, msg(6), 100 * MS)]
    assert [(n.kind, n.first, n.count, n.stamp_ns) for n in r.notices()] == [
        (N.GAP_ABANDONED, 3, 2, 600 * MS)]
    assert not r.gap_open and r.take_request(700 * MS) is None
    assert r.receive(packet(3, 2), 700 * MS) == []  # too late: already given up
    c = r.counters
    assert (c["gaps_abandoned"], c["messages_abandoned"], c["gaps_recovered"]) == (1, 2, 0)


@IMPLS
def test_progress_restarts_the_give_up_clock(impl):
    r = impl(MoldReceiverConfig(give_up_ns=500 * MS, max_request_count=1))
    r.receive(packet(1, 1), 0)
    r.receive(packet(4, 1), 0)
    r.receive(packet(2, 1), 400 * MS)  # progress at 400 ms
    assert r.poll(800 * MS) == [] and r.gap_open
    assert seqs(r.poll(900 * MS)) == [4]
    assert [(n.kind, n.first, n.count) for n in r.notices()][-1] == (N.GAP_ABANDONED, 3, 1)


@IMPLS
def test_a_heartbeat_ahead_of_the_last_message_reveals_a_lost_tail(impl):
    r = impl()
    r.receive(packet(1, 2), 0)
    r.receive(mold.encode_heartbeat(SESSION, 5), 1)
    assert r.take_request(2) == RetransmissionRequest(SESSION, 3, 2)
    assert r.counters["heartbeats"] == 1


@IMPLS
def test_end_of_session_is_noticed_once_and_silences_the_heartbeat_timeout(impl):
    r = impl(MoldReceiverConfig(heartbeat_timeout_ns=1000))
    r.receive(packet(1, 1), 0)
    r.receive(mold.encode_end_of_session(SESSION, 2), 10)
    r.receive(mold.encode_end_of_session(SESSION, 2), 20)
    r.poll(10_000)
    assert kinds(r) == [N.SESSION_STARTED, N.END_OF_SESSION]
    assert r.ended and r.counters["end_of_session"] == 2


@IMPLS
def test_silence_is_a_heartbeat_timeout_until_the_next_datagram(impl):
    r = impl(MoldReceiverConfig(heartbeat_timeout_ns=3000))
    r.poll(0)
    r.poll(2999)
    assert not r.timed_out
    r.poll(3000)
    r.poll(9000)  # reported once
    r.receive(mold.encode_heartbeat(SESSION, 1), 9500)
    notices = r.notices()
    assert [(n.kind, n.count) for n in notices] == [
        (N.HEARTBEAT_TIMEOUT, 3000), (N.SESSION_STARTED, 0), (N.FEED_RESUMED, 0)]
    assert r.counters["heartbeat_timeouts"] == 1 and not r.timed_out


@IMPLS
def test_a_new_session_abandons_the_open_gap_and_restarts_at_the_first_sequence(impl):
    r = impl()
    r.receive(packet(1, 1, "DAY1"), 0)
    r.receive(packet(5, 1, "DAY1"), 1)
    r.notices()
    assert seqs(r.receive(packet(1, 2, "DAY2"), 2)) == [1, 2]
    assert [(n.kind, n.first, n.count) for n in r.notices()] == [
        (N.GAP_ABANDONED, 2, 3), (N.SESSION_CHANGED, 1, 0)]
    assert r.receive(packet(3, 1, "DAY1"), 3) == []  # a straggler of the old session
    assert r.session == "DAY2" and r.counters["other_session"] == 1
    assert r.counters["held_discarded"] == 1


@IMPLS
def test_a_damaged_datagram_never_chooses_the_session(impl):
    r = impl()
    assert r.receive(packet(1, 2, "FORGED")[:-1], 0) == []
    assert r.session is None and r.counters["other_session"] == 1
    assert seqs(r.receive(packet(1, 1), 1)) == [1]
    assert r.session == SESSION and r.counters["session_changes"] == 0


@IMPLS
def test_a_named_session_ignores_every_other(impl):
    r = impl(MoldReceiverConfig(session="MINE"))
    assert r.receive(packet(1, 1, "OTHER"), 0) == [] and r.session is None
    assert seqs(r.receive(packet(1, 1, "MINE"), 1)) == [1]
    assert r.counters["other_session"] == 1


@IMPLS
def test_a_forged_far_sequence_is_ignored_instead_of_opening_a_huge_gap(impl):
    r = impl(MoldReceiverConfig(max_sequence_jump=1000))
    r.receive(packet(1, 1), 0)
    r.receive(packet(2**62, 1), 1)
    r.receive(mold.encode_heartbeat(SESSION, 2**64 - 1), 2)
    assert not r.gap_open and r.counters["implausible"] == 2
    assert seqs(r.receive(packet(2, 1), 3)) == [2]


@IMPLS
def test_datagrams_beyond_the_hold_room_are_dropped_then_requested_again(impl):
    r = impl(MoldReceiverConfig(hold_packets=2))
    r.receive(packet(1, 1), 0)
    for s in (3, 4, 5):
        r.receive(packet(s, 1), 1)
    assert r.held == 2 and r.counters["hold_refused"] == 1
    assert seqs(r.receive(packet(2, 1), 2)) == [2, 3, 4]
    assert r.take_request(3) == RetransmissionRequest(SESSION, 5, 1)
    assert seqs(r.receive(packet(5, 1), 4)) == [5]


@IMPLS
def test_joining_late_starts_at_the_first_datagram_seen(impl):
    r = impl(MoldReceiverConfig(first_sequence=0))
    assert seqs(r.receive(packet(1000, 2), 0)) == [1000, 1001]
    assert not r.gap_open


@IMPLS
def test_a_damaged_datagram_gives_its_whole_blocks_and_the_rest_is_requested(impl):
    r = impl()
    r.receive(packet(1, 3), 0)
    cut = packet(4, 2)[:-1]  # the last block's message is one byte short
    assert seqs(r.receive(cut, 1)) == [4]
    assert r.problem is not None and r.problem.problem is WireProblem.OVERSIZED
    assert r.take_request(1) == RetransmissionRequest(SESSION, 5, 1)
    assert r.receive(b"\x00" * 7, 2) == []
    assert r.problem.problem is WireProblem.TRUNCATED and r.problem.offset == 7
    c = r.counters
    assert (c["damaged_packets"], c["short_packets"], c["messages"]) == (1, 1, 4)


@IMPLS
def test_receive_batch_writes_the_itch_framing_with_sequences_and_stamps(impl):
    r = impl()
    datagrams = [packet(1, 3), packet(6, 1), packet(4, 2)]
    data = np.zeros((4, 2048), np.uint8)
    lengths = np.zeros(4, np.uint32)
    for i, d in enumerate(datagrams):
        data[i, :len(d)] = np.frombuffer(d, np.uint8)
        lengths[i] = len(d)
    stamps = np.array([10, 20, 30, 0], np.int64)
    out = np.zeros(4096, np.uint8)
    sequences = np.zeros(2048, np.uint64)
    out_stamps = np.zeros(2048, np.int64)
    written, count = r.receive_batch(data, lengths, stamps, 3, out, sequences, out_stamps)
    nonempty = [s for s in range(1, 7) if msg(s)]
    assert list(sequences[:count]) == nonempty
    assert list(out_stamps[:count]) == [{1: 10, 2: 10, 4: 30, 5: 30, 6: 20}[s] for s in nonempty]
    expected = b"".join(len(msg(s)).to_bytes(2, "big") + msg(s) for s in nonempty)
    assert out[:written].tobytes() == expected
    with pytest.raises(ValueError, match="too small"):
        r.receive_batch(data, lengths, stamps, 3, out[:10], sequences, out_stamps)


@pytest.mark.parametrize("field, value", [("request_interval_ns", 0), ("give_up_ns", -1),
                                          ("max_request_count", 0xFFFF), ("hold_slot_bytes", 19),
                                          ("session", "ELEVENCHARS")])
def test_a_bad_config_names_its_field(field, value):
    with pytest.raises(ValueError, match=field.split("_ns")[0]):
        MoldReceiverConfig(**{field: value})


@IMPLS
def test_a_rewind_asks_again_for_what_was_delivered_since_and_delivers_it_again(impl):
    r = impl()
    r.receive(packet(1, 5), 10)
    assert not r.rewind(6, 11) and not r.rewind(9, 11)  # not below the next expected: nothing
    assert r.rewind(3, 12)
    assert (r.expected, r.gap_open) == (3, True)
    assert r.take_request(13) == RetransmissionRequest(SESSION, 3, 3)
    assert seqs(r.receive(packet(6, 2), 14)) == []  # held behind the hole 3..5
    assert seqs(r.receive(packet(3, 3), 16)) == [3, 4, 5, 6, 7]
    assert [(n.kind, n.first, n.count) for n in r.notices()] == [
        (N.SESSION_STARTED, 1, 0), (N.GAP_DETECTED, 3, 3), (N.GAP_RECOVERED, 8, 0)]
    assert r.counters["messages"] == 10 and r.counters["gaps"] == 1


@IMPLS
def test_a_rewind_before_any_datagram_does_nothing(impl):
    r = impl()
    assert not r.rewind(1, 0) and r.expected == 1 and r.notices() == []


# ------------------------------------------------------------------- properties, both twins

def _run(receiver, events, *, serve_requests: bool, stream: dict[int, bytes]):
    """Feeds (stamp, datagram) events; a request due after each is answered from `stream`
    (the server's history) when serve_requests. Returns everything observable."""
    trace = []
    for stamp, datagram in events:
        if isinstance(datagram, int):  # a rewind to that sequence
            trace.append(("rewind", receiver.rewind(datagram, stamp)))
            continue
        trace.append(("rx", receiver.receive(datagram, stamp),
                      None if receiver.problem is None else (receiver.problem.problem,
                                                             receiver.problem.offset)))
        for _ in range(200):  # each answered request may make the next one due at once
            request = receiver.take_request(stamp)
            trace.append(("req", request))
            if request is None or not serve_requests:
                break
            first, count = request.sequence, request.count
            ids = [s for s in range(first, first + count) if s in stream]
            for i in range(0, len(ids), 5):
                chunk = ids[i:i + 5]
                trace.append(("rx", receiver.receive(packet(chunk[0], len(chunk)), stamp), None))
    trace.append(("poll", receiver.poll(events[-1][0] + 10**10 if events else 10**10)))
    trace.append(("notices", receiver.notices()))
    trace.append(("counters", receiver.counters, receiver.expected, receiver.highest,
                  receiver.gap_open, receiver.ended, receiver.held, receiver.held_bytes))
    return trace


def _datagrams(draw, total: int):
    cuts, s = [], 1
    while s <= total:
        n = draw(st.integers(1, min(6, total - s + 1)))
        cuts.append(packet(s, n))
        s += n
    return cuts


@st.composite
def scrambled_feed(draw):
    total = draw(st.integers(1, 60))
    datagrams = _datagrams(draw, total)
    rng = random.Random(draw(st.integers(0, 2**32)))
    events = []
    for d in datagrams:
        roll = rng.random()
        if roll < 0.15:
            continue  # lost
        events.append(d)
        if roll > 0.9:
            events.append(d)  # duplicated
    # Reorder locally, as a network does.
    for i in range(len(events) - 1):
        if rng.random() < 0.2:
            events[i], events[i + 1] = events[i + 1], events[i]
    events.append(mold.encode_heartbeat(SESSION, total + 1))
    stamps = sorted(rng.randrange(0, 10**9) for _ in events)
    return total, list(zip(stamps, events))


@FAST
@given(scrambled_feed(), st.integers(1, 8), st.integers(0, 4))
def test_every_message_arrives_once_in_order_when_requests_are_answered(feed, cap, hold):
    total, events = feed
    stream = {s: msg(s) for s in range(1, total + 1)}
    config = MoldReceiverConfig(max_request_count=cap, hold_packets=hold,
                                request_interval_ns=1, give_up_ns=10**12)
    traces = []
    for impl in (MoldReceiver, ReferenceReceiver):
        trace = _run(impl(config), events, serve_requests=True, stream=stream)
        traces.append(trace)
        delivered = [m for kind, *rest in trace if kind in ("rx", "poll")
                     for m in rest[0]]
        assert [(s, m) for s, m, _ in delivered] == sorted(stream.items())
    assert traces[0] == traces[1]


@st.composite
def hostile_feed(draw):
    """Clean, damaged, foreign and random datagrams with wild stamps and a few polls."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    events = []
    for _ in range(draw(st.integers(1, 40))):
        roll = rng.random()
        s = rng.choice([1, 2, 3, 5, 8, 40, 2**40, 2**64 - 2])
        if roll < 0.3:
            d = packet(s, rng.randint(1, 4))
        elif roll < 0.45:
            d = packet(s, 3)[:rng.randint(0, 40)]
        elif roll < 0.55:
            d = packet(s, 2, rng.choice(["OTHER", "DAY2", ""]))
        elif roll < 0.65:
            d = mold.encode_heartbeat(SESSION, s)
        elif roll < 0.7:
            d = mold.encode_end_of_session(rng.choice([SESSION, "DAY2"]), s)
        elif roll < 0.85:
            d = packet(s, 2) + bytes(rng.randint(1, 3))
        else:
            d = rng.randbytes(rng.randint(0, 60))
        events.append((rng.randrange(-10**10, 10**11), d))
    return events


@FAST
@given(hostile_feed(), st.integers(0, 3), st.booleans())
def test_twins_agree_on_hostile_input_and_never_deliver_out_of_order(events, hold, late):
    config = MoldReceiverConfig(hold_packets=hold, first_sequence=0 if late else 1,
                                give_up_ns=10**9, request_interval_ns=10**8,
                                heartbeat_timeout_ns=10**9, max_request_count=3)
    traces = [_run(impl(config), events, serve_requests=False, stream={})
              for impl in (MoldReceiver, ReferenceReceiver)]
    assert traces[0] == traces[1]
    # Within one session, sequences only go up.
    sessions_changed = any(n.kind is N.SESSION_CHANGED for n in traces[0][-2][1])
    delivered = [s for kind, *rest in traces[0] if kind in ("rx", "poll") for s, _, _ in rest[0]]
    if not sessions_changed:
        assert delivered == sorted(set(delivered))


@FAST
@given(st.binary(max_size=120), st.integers(0, 2**40))
def test_arbitrary_bytes_never_raise(data, stamp):
    for impl in (MoldReceiver, ReferenceReceiver):
        r = impl()
        r.receive(data, stamp)
        r.poll(stamp + 1)
        r.take_request(stamp + 2)


# ------------------------------------------------------------------- C++ under the sanitizers

@pytest.mark.slow
@needs_compiler
def test_cpp_sessions_never_read_past_their_input(tmp_path):
    """Both sessions (the SoupBinTCP client too) under AddressSanitizer and UBSan on seeded
    hostile input: tests/cpp/fuzz_sessions.cpp."""
    out = run_harness(build_harness("fuzz_sessions", tmp_path), "20000")
    words = out.split()
    counts = dict(zip(words[::2], map(int, words[1::2])))
    # Every path was reached: deliveries, damage, gaps asked for and given up, holding, logins,
    # failures and replays.
    assert len(counts) == 10 and all(v > 0 for v in counts.values()), counts


@FAST
@given(scrambled_feed(), st.lists(st.tuples(st.integers(0, 40), st.integers(0, 70)), max_size=4),
       st.booleans())
def test_rewinds_anywhere_are_the_same_in_both_twins(feed, rewinds, serve):
    total, events = feed
    events = list(events)
    for at, sequence in sorted(rewinds, reverse=True):
        at = min(at, len(events))
        events.insert(at, (events[at - 1][0] if at else 0, sequence))
    stream = {s: msg(s) for s in range(1, total + 1)}
    config = MoldReceiverConfig(max_request_count=4, hold_packets=3, request_interval_ns=1,
                                give_up_ns=10**12)
    traces = [_run(impl(config), events, serve_requests=serve, stream=stream)
              for impl in (MoldReceiver, ReferenceReceiver)]
    assert traces[0] == traces[1]
