"""The SoupBinTCP 4.1 client session (lockstep.protocols.soup_client, C++
session/soup_client.hpp): every test runs on the compiled session and on its pure-Python twin
(lockstep.reference.soup_client); property tests demand the same payloads, states, notices and
counters from both for any cut of a server stream and for arbitrary bytes. Server bytes are
built with the SoupBinTCP codec; time is only the `now_ns` given."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lockstep.enums import LoginRejectReason, SoupClientState, SoupNoticeKind, WireProblem
from lockstep.errors import InvalidArgumentError
from lockstep.protocols import soupbintcp as soup
from lockstep.protocols.soup_client import SoupClient, SoupClientConfig
from lockstep.reference.soup_client import SoupClient as ReferenceClient

IMPLS = pytest.mark.parametrize("impl", [SoupClient, ReferenceClient],
                                ids=["compiled", "reference"])
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PASSWORD = "pa55word"
CONFIG = SoupClientConfig("ALICE", PASSWORD)
S = 1_000_000_000


def server(*packets) -> bytes:
    return b"".join(soup.encode(p) for p in packets)


def data(*payloads) -> list:
    return [soup.SequencedData(p) for p in payloads]


def logged_in(impl, sequence=1, config=CONFIG):
    client = impl(config)
    client.connected(0)
    client.receive(server(soup.LoginAccepted("SESS1", sequence)), 1)
    client.notices()
    return client


@IMPLS
def test_the_login_request_carries_the_credentials_session_and_next_sequence(impl):
    client = impl(SoupClientConfig("ALICE", PASSWORD, session="SESS1", first_sequence=42))
    login = client.connected(0)
    assert soup.decode(login) == soup.LoginRequest("ALICE", PASSWORD, "SESS1", 42)
    assert client.state is SoupClientState.LOGGING_IN


@IMPLS
def test_sequenced_payloads_are_numbered_from_the_accepted_sequence(impl):
    client = logged_in(impl, sequence=7)
    out = client.receive(server(*data(b"a", b"bc"), soup.UnsequencedData(b"u"),
                                soup.Debug(b"ignored"), soup.ServerHeartbeat()), 5)
    assert out == [(7, b"a", 5), (8, b"bc", 5), (0, b"u", 5)]
    assert client.next_sequence == 9 and client.session == "SESS1"
    c = client.counters
    assert (c["sequenced"], c["unsequenced"], c["debug"], c["heartbeats_in"]) == (2, 1, 1, 1)


@IMPLS
def test_a_rejected_login_says_why_and_wants_the_connection_closed(impl):
    client = impl(CONFIG)
    client.connected(0)
    assert client.receive(server(soup.LoginRejected(LoginRejectReason.NOT_AUTHORIZED)), 1) == []
    assert client.state is SoupClientState.REJECTED
    assert client.reject_reason is LoginRejectReason.NOT_AUTHORIZED
    assert [(n.kind, n.count) for n in client.notices()] == [
        (SoupNoticeKind.LOGIN_REJECTED, ord("A"))]


@IMPLS
def test_a_re_login_resumes_the_session_and_drops_what_was_already_delivered(impl):
    client = logged_in(impl)
    client.receive(server(*data(b"1", b"2", b"3")), 2)
    client.disconnected()
    login = client.connected(3)
    assert soup.decode(login) == soup.LoginRequest("ALICE", PASSWORD, "SESS1", 4)
    # A server that replays from an older number: the first two are duplicates.
    out = client.receive(server(soup.LoginAccepted("SESS1", 2), *data(b"2", b"3", b"4")), 4)
    assert out == [(4, b"4", 4)]
    assert client.counters["duplicates"] == 2 and client.counters["connections"] == 2


@IMPLS
def test_a_login_accepted_past_the_number_asked_is_a_reported_gap(impl):
    client = logged_in(impl)
    client.receive(server(*data(b"1")), 2)
    client.disconnected()
    client.connected(3)
    client.receive(server(soup.LoginAccepted("SESS1", 5)), 4)
    assert [(n.kind, n.first, n.count) for n in client.notices()] == [
        (SoupNoticeKind.SEQUENCE_GAP, 2, 3), (SoupNoticeKind.LOGIN_ACCEPTED, 5, 0)]
    assert client.next_sequence == 5 and client.counters["messages_lost"] == 3


@IMPLS
def test_sequence_zero_starts_wherever_the_server_says(impl):
    client = logged_in(impl, sequence=100, config=SoupClientConfig("ALICE", PASSWORD,
                                                                   first_sequence=0))
    assert client.next_sequence == 100 and client.counters["sequence_gaps"] == 0


@IMPLS
def test_a_heartbeat_is_due_after_the_interval_without_sending(impl):
    client = logged_in(impl)
    assert client.poll(S - 1) == b""
    assert soup.decode(client.poll(S)) == soup.ClientHeartbeat()
    assert client.poll(S + 10) == b""
    client.receive(server(soup.ServerHeartbeat()), 2 * S)
    client.send_data(b"O", int(1.5 * S))  # sending counts: next heartbeat 1 s after it
    assert client.poll(int(2.4 * S)) == b""
    assert client.poll(int(2.5 * S)) != b""
    assert client.heartbeat_due_ns == int(3.5 * S)


@IMPLS
def test_a_silent_server_fails_the_session_logged_in_or_not(impl):
    for client in (logged_in(impl), impl(CONFIG)):
        if client.state is SoupClientState.DISCONNECTED:
            client.connected(1)
        client.poll(15 * S)  # last heard at 1 ns
        assert client.state is not SoupClientState.FAILED
        client.poll(15 * S + 1)
        assert client.state is SoupClientState.FAILED
        assert [n.kind for n in client.notices()][-1] is SoupNoticeKind.SERVER_TIMEOUT
        assert client.counters["timeouts"] == 1


@IMPLS
def test_end_of_session_and_logout_end_the_session(impl):
    client = logged_in(impl)
    client.receive(server(soup.EndOfSession()), 2)
    assert client.state is SoupClientState.ENDED
    other = logged_in(impl)
    assert soup.decode(other.logout(3)) == soup.LogoutRequest()
    assert other.state is SoupClientState.LOGGED_OUT
    assert other.receive(server(*data(b"late")), 4) == []
    assert other.counters["ignored_bytes"] > 0


@IMPLS
@pytest.mark.parametrize("stream, notice, offset, what", [
    (b"\x00\x00", SoupNoticeKind.PROTOCOL_ERROR, 38, WireProblem.BAD_LENGTH),
    (b"\x00\x01?", SoupNoticeKind.PROTOCOL_ERROR, 40, WireProblem.UNKNOWN_TYPE),
    (server(soup.ClientHeartbeat()), SoupNoticeKind.UNEXPECTED_PACKET, 40, ord("R")),
    (server(soup.LoginAccepted("X", 1)), SoupNoticeKind.UNEXPECTED_PACKET, 40, ord("A")),
])
def test_bad_server_bytes_fail_the_session_with_the_stream_offset(impl, stream, notice, offset,
                                                                   what):
    client = logged_in(impl)  # the Login Accepted took stream bytes 0..32
    client.receive(server(*data(b"ok")), 2)  # 33..37; the next packet's type byte is at 40
    client.receive(stream + server(*data(b"never")), 3)
    assert client.state is SoupClientState.FAILED
    assert [(n.kind, n.first, n.count) for n in client.notices()] == [(notice, offset, what)]
    assert client.counters["sequenced"] == 1


@IMPLS
def test_data_before_login_is_unexpected(impl):
    client = impl(CONFIG)
    client.connected(0)
    assert client.receive(server(*data(b"x")), 1) == []
    assert client.state is SoupClientState.FAILED


@IMPLS
def test_sending_data_needs_a_login(impl):
    client = impl(CONFIG)
    with pytest.raises(InvalidArgumentError, match="Unsequenced Data of 1 bytes in state "
                                                   "disconnected"):
        client.send_data(b"x", 0)


def test_the_password_never_shows():
    client = SoupClient(CONFIG)
    for text in (repr(CONFIG), repr(client), repr(ReferenceClient(CONFIG))):
        assert PASSWORD not in text
    with pytest.raises(ValueError) as caught:
        SoupClientConfig("ALICE", "much-too-long-secret")
    assert "much-too-long-secret" not in str(caught.value) and "password" in str(caught.value)


# ------------------------------------------------------------------- properties, both twins

def _observe(client, chunks):
    trace = [client.connected(0)]
    for i, chunk in enumerate(chunks):
        trace.append(client.receive(chunk, i + 1))
        trace.append(client.poll(i * S))
    trace += [client.state, client.next_sequence, client.session, client.reject_reason,
              client.counters, client.notices()]
    return trace


def _cut(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(stream)) for c in cuts})
    return [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)])]


SERVER_PACKETS = st.lists(st.one_of(
    st.builds(soup.SequencedData, st.binary(max_size=20)),
    st.builds(soup.UnsequencedData, st.binary(max_size=8)),
    st.just(soup.ServerHeartbeat()), st.builds(soup.Debug, st.binary(max_size=5))), max_size=20)


@FAST
@given(st.integers(1, 50), SERVER_PACKETS, st.lists(st.integers(0, 600), max_size=8))
def test_any_cut_of_the_stream_gives_the_same_payloads_on_both(first, packets, cuts):
    stream = server(soup.LoginAccepted("SESS1", first), *packets)
    whole = logged_in(SoupClient, first).receive(server(*packets), 2)
    expected = []
    sequence = first
    for p in packets:
        if isinstance(p, soup.SequencedData):
            expected.append((sequence, p.payload))
            sequence += 1
        elif isinstance(p, soup.UnsequencedData):
            expected.append((0, p.payload))
    assert [(s, m) for s, m, _ in whole] == expected
    traces = [_observe(impl(CONFIG), _cut(stream, cuts)) for impl in (SoupClient, ReferenceClient)]
    assert traces[0] == traces[1]
    assert [(s, m) for step in traces[0][1:-6:2] for s, m, _ in step] == expected


@FAST
@given(st.lists(st.binary(max_size=40), max_size=6), st.booleans())
def test_twins_agree_on_arbitrary_bytes(chunks, accepted_first):
    prefix = [server(soup.LoginAccepted("S", 3))] if accepted_first else []
    traces = [_observe(impl(CONFIG), prefix + chunks) for impl in (SoupClient, ReferenceClient)]
    assert traces[0] == traces[1]
