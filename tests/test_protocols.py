"""NASDAQ protocol codecs (lockstep.protocols): every test runs on the compiled codec and on its
pure-Python twin (lockstep.reference), and property tests demand identical bytes, identical
messages and identical refusals (problem and offset) from both.

Expected bytes are written here field by field from the specifications' tables; ITCH messages
are checked against test_itch.py's spec encoder and read back by the one ITCH decoder.
"""
from __future__ import annotations

import dataclasses
import struct

import pytest
from cpp_harness import build as build_harness
from cpp_harness import needs_compiler
from cpp_harness import run as run_harness
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_itch import (
    decode,
    frame,
    msg_A,
    msg_C,
    msg_D,
    msg_E,
    msg_F,
    msg_P,
    msg_R,
    msg_U,
    msg_X,
    write,
)

from lockstep.enums import LoginRejectReason, WireProblem
from lockstep.errors import ProtocolError
from lockstep.protocols import fields as fields_mod
from lockstep.protocols import itch_encode, moldudp64, ouch42, soupbintcp
from lockstep.reference import itch_encode as ref_itch
from lockstep.reference import moldudp64 as ref_mold
from lockstep.reference import ouch42 as ref_ouch
from lockstep.reference import soupbintcp as ref_soup

PAIRS = {"ouch": (ouch42, ref_ouch), "itch": (itch_encode, ref_itch),
         "mold": (moldudp64, ref_mold), "soup": (soupbintcp, ref_soup)}
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def impls(name):
    return pytest.mark.parametrize("impl", PAIRS[name], ids=["compiled", "reference"])


def outcome(fn, *args):
    """What a call gives: ("ok", value) or ("refused", problem, offset) or the exception type."""
    try:
        return ("ok", fn(*args))
    except ProtocolError as e:
        return ("refused", e.problem, e.offset)
    except (ValueError, TypeError, OverflowError) as e:
        return ("error", type(e).__name__)


def same_on_both(name, function, *args):
    compiled, reference = PAIRS[name]
    a = outcome(getattr(compiled, function), *args)
    b = outcome(getattr(reference, function), *args)
    assert a == b
    return a


# --------------------------------------------------------------------------------------------
# strategies: a message of any class, its fields drawn by their annotation

def _text(width):
    # latin-1 text without the padding spaces on the right (they are padding on the wire)
    return st.text(st.characters(min_codepoint=0x21, max_codepoint=0xFF), max_size=width)


_WIDTHS = {"token": 14, "existing_token": 14, "replacement_token": 14, "previous_token": 14,
           "stock": 8, "firm": 4, "issue_subtype": 2, "reason": 4, "attribution": 4}
_INT_BYTES = {"stock_locate": 2, "tracking_number": 2, "timestamp": 6}


def message_of(cls, int_bytes: dict[str, int]):
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.type == "int":
            kwargs[f.name] = st.integers(0, (1 << (8 * int_bytes[f.name])) - 1)
        elif f.type == "Code":
            kwargs[f.name] = st.characters(min_codepoint=0, max_codepoint=0xFF)
        else:
            kwargs[f.name] = _text(_WIDTHS[f.name])
    return st.builds(cls, **kwargs)


def _ouch_int_bytes(cls):
    sizes = {f.name: 4 for f in dataclasses.fields(cls)}
    sizes.update(timestamp=8, order_reference=8, match_number=8)
    return sizes


def _itch_int_bytes(cls):
    sizes = {f.name: 4 for f in dataclasses.fields(cls)}
    sizes.update(_INT_BYTES, order_reference=8, match_number=8, original_reference=8,
                 new_reference=8)
    return sizes


OUCH_MESSAGES = st.one_of([message_of(c, _ouch_int_bytes(c))
                           for c in (*ouch42.INBOUND.values(), *ouch42.OUTBOUND.values())])
ITCH_MESSAGES = st.one_of([message_of(c, _itch_int_bytes(c)) for c in itch_encode.MESSAGES.values()])

# --------------------------------------------------------------------------------------------
# OUCH 4.2

# Message lengths, type byte included, from the OUCH 4.2 specification.
OUCH_LENGTH = {("in", "O"): 49, ("in", "U"): 47, ("in", "X"): 19, ("out", "S"): 10,
               ("out", "A"): 66, ("out", "U"): 80, ("out", "C"): 28, ("out", "D"): 37,
               ("out", "E"): 40, ("out", "B"): 32, ("out", "K"): 36, ("out", "J"): 24,
               ("out", "P"): 23, ("out", "I"): 23}

ENTER = ouch42.EnterOrder(token="ORD1", side="B", shares=100, stock="AAPL", price=1_234_500,
                          time_in_force=99998, firm="GSCO", display="Y", capacity="A",
                          intermarket_sweep="N", minimum_quantity=0, cross_type="N",
                          customer_type="R")


@impls("ouch")
def test_enter_order_bytes_follow_the_spec_table(impl):
    expected = (b"O" + b"ORD1".ljust(14) + b"B" + (100).to_bytes(4, "big") + b"AAPL    "
                + (1_234_500).to_bytes(4, "big") + (99998).to_bytes(4, "big") + b"GSCO" + b"Y"
                + b"A" + b"N" + (0).to_bytes(4, "big") + b"N" + b"R")
    assert impl.encode(ENTER) == expected
    assert impl.decode_inbound(expected) == ENTER


@impls("ouch")
def test_executed_and_replaced_bytes_follow_the_spec_table(impl):
    fill = ouch42.Executed(timestamp=34_200_000_000_123, token="ORD1", executed_shares=40,
                           execution_price=1_234_500, liquidity_flag="A", match_number=987654321)
    expected = (b"E" + (34_200_000_000_123).to_bytes(8, "big") + b"ORD1".ljust(14)
                + (40).to_bytes(4, "big") + (1_234_500).to_bytes(4, "big") + b"A"
                + (987654321).to_bytes(8, "big"))
    assert impl.encode(fill) == expected
    assert impl.decode_outbound(expected) == fill
    replaced = ouch42.Replaced(
        timestamp=1, token="NEW", side="S", shares=5, stock="MSFT", price=10_000,
        time_in_force=0, firm="", display="Y", order_reference=77, capacity="A",
        intermarket_sweep="N", minimum_quantity=0, cross_type="N", order_state="L",
        previous_token="OLD", bbo_weight="0")
    data = impl.encode(replaced)
    assert len(data) == 80 and data[65:79] == b"OLD".ljust(14) and data[79:] == b"0"
    assert data[49:57] == (77).to_bytes(8, "big") and data[64:65] == b"L"


@impls("ouch")
def test_every_ouch_type_has_its_spec_length(impl):
    seen = set()
    for direction, table in (("in", ouch42.INBOUND), ("out", ouch42.OUTBOUND)):
        for type_char, cls in table.items():
            zero = cls(**{f.name: 0 if f.type == "int" else ("N" if f.type == "Code" else "")
                          for f in dataclasses.fields(cls)})
            assert len(impl.encode(zero)) == OUCH_LENGTH[direction, type_char]
            seen.add((direction, type_char))
    assert seen == set(OUCH_LENGTH)


@FAST
@given(OUCH_MESSAGES)
def test_ouch_round_trips_identically_on_both(message):
    data = same_on_both("ouch", "encode", message)[1]
    decoder = "decode_inbound" if type(message) in ouch42.INBOUND.values() else "decode_outbound"
    assert same_on_both("ouch", decoder, data) == ("ok", message)


@FAST
@given(st.binary(max_size=100), st.sampled_from(["decode_inbound", "decode_outbound"]))
def test_ouch_decoders_take_any_bytes(data, decoder):
    result = same_on_both("ouch", decoder, data)
    assert result[0] in ("ok", "refused")


@FAST
@given(OUCH_MESSAGES, st.data())
def test_ouch_cut_or_padded_messages_are_refused_at_the_cut(message, data):
    encoded = ouch42.encode(message)
    decoder = "decode_inbound" if type(message) in ouch42.INBOUND.values() else "decode_outbound"
    cut = data.draw(st.integers(0, len(encoded) - 1))
    assert same_on_both("ouch", decoder, encoded[:cut]) == \
        ("refused", WireProblem.TRUNCATED, cut)
    assert same_on_both("ouch", decoder, encoded + b"\0") == \
        ("refused", WireProblem.TRAILING_BYTES, len(encoded))


@impls("ouch")
def test_ouch_refusals_name_problem_and_offset(impl):
    with pytest.raises(ProtocolError, match="offset 0: OUCH message: unknown type") as e:
        impl.decode_inbound(b"Z" + bytes(10))
    assert e.value.problem is WireProblem.UNKNOWN_TYPE and e.value.offset == 0
    with pytest.raises(ProtocolError) as e:
        impl.decode_outbound(b"")
    assert (e.value.problem, e.value.offset) == (WireProblem.TRUNCATED, 0)
    # An outbound type byte is not an inbound one (Accepted 'A' is outbound only).
    with pytest.raises(ProtocolError):
        impl.decode_inbound(ouch42.encode(ouch42.Rejected(timestamp=1, token="T", reason="X")))


@impls("ouch")
def test_ouch_encode_refuses_values_that_do_not_fit(impl):
    with pytest.raises(ValueError):
        impl.encode(dataclasses.replace(ENTER, token="X" * 15))
    with pytest.raises(ValueError):
        impl.encode(dataclasses.replace(ENTER, shares=1 << 32))
    with pytest.raises(ValueError):
        impl.encode(dataclasses.replace(ENTER, shares=-1))
    with pytest.raises(ValueError):
        impl.encode(dataclasses.replace(ENTER, side="BB"))
    with pytest.raises(ValueError):
        impl.encode(dataclasses.replace(ENTER, stock="€"))
    with pytest.raises(TypeError):
        impl.encode(dataclasses.replace(ENTER, price=1.5))


def test_text_fields_round_trip_any_latin1_byte():
    odd = dataclasses.replace(ENTER, token="\x00\xff tok", firm="\x7f")
    assert ouch42.decode_inbound(ouch42.encode(odd)) == odd
    assert fields_mod.text_from_wire(b"AB  ") == "AB"


# --------------------------------------------------------------------------------------------
# ITCH 5.0 encoder

@impls("itch")
def test_itch_encoder_writes_what_the_spec_encoder_writes(impl):
    ts = 34_200_000_000_001
    cases = [
        (itch_encode.AddOrder(1, 0, ts, 7, "B", 100, "AAPL", 1_234_500),
         msg_A(1, ts, 7, b"B", 100, "AAPL", 1_234_500)),
        (itch_encode.AddOrderMpid(1, 0, ts, 8, "S", 50, "AAPL", 1_300_000, "GSCO"),
         msg_F(1, ts, 8, b"S", 50, "AAPL", 1_300_000)),
        (itch_encode.OrderExecuted(1, 0, ts, 7, 30, 555), msg_E(1, ts, 7, 30, 555)),
        (itch_encode.OrderExecutedWithPrice(1, 0, ts, 7, 10, 556, "Y", 1_234_400),
         msg_C(1, ts, 7, 10, 556, b"Y", 1_234_400)),
        (itch_encode.OrderCancel(1, 0, ts, 7, 20), msg_X(1, ts, 7, 20)),
        (itch_encode.OrderDelete(1, 0, ts, 7), msg_D(1, ts, 7)),
        (itch_encode.OrderReplace(1, 0, ts, 8, 9, 60, 1_299_900), msg_U(1, ts, 8, 9, 60, 1_299_900)),
        (itch_encode.Trade(1, 0, ts, 0, "B", 25, "AAPL", 1_234_500, 557),
         msg_P(1, ts, 25, "AAPL", 1_234_500, 557)),
        (itch_encode.StockDirectory(1, 0, ts, "AAPL", "Q", "N", 100, "N", "C", "Z", "P", "N", "N",
                                    "1", "N", 0, "N"), msg_R(1, ts, "AAPL")),
        (itch_encode.TradingAction(1, 0, ts, "AAPL", "T", " ", ""),
         b"H" + struct.pack(">HH", 1, 0) + ts.to_bytes(6, "big") + b"AAPL    T     "),
        (itch_encode.SystemEvent(0, 0, ts, "O"),
         b"S" + struct.pack(">HH", 0, 0) + ts.to_bytes(6, "big") + b"O"),
    ]
    assert {type(m) for m, _ in cases} == set(itch_encode.MESSAGES.values())
    for message, expected in cases:
        assert impl.encode(message) == expected, type(message).__name__


@FAST
@given(ITCH_MESSAGES)
def test_itch_encoders_agree(message):
    result = same_on_both("itch", "encode", message)
    assert result[0] == "ok" and result[1][:1] == message.TYPE.encode()


@impls("itch")
def test_itch_encode_refuses_values_that_do_not_fit(impl):
    with pytest.raises(ValueError):
        impl.encode(itch_encode.OrderDelete(1, 0, 1 << 48, 7))
    with pytest.raises(ValueError):
        impl.encode(itch_encode.OrderDelete(1 << 16, 0, 1, 7))
    with pytest.raises(TypeError):
        impl.encode(ouch42.CancelOrder("T", 0))


def test_itch_over_moldudp64_goes_through_the_one_decoder(tmp_path):
    """Encoded ITCH in MoldUDP64 packets -> the packets' blocks -> the existing ITCH decoder."""
    ts = 34_200_000_000_000
    messages = [
        itch_encode.StockDirectory(5, 0, ts, "AAPL", "Q", "N", 100, "N", "C", "Z", "P", "N",
                                   "N", "1", "N", 0, "N"),
        itch_encode.AddOrder(5, 0, ts + 1, 11, "B", 100, "AAPL", 1_000_000),
        itch_encode.AddOrder(5, 0, ts + 2, 12, "S", 40, "AAPL", 1_010_000),
        itch_encode.OrderExecuted(5, 0, ts + 3, 12, 15, 1),
        itch_encode.OrderCancel(5, 0, ts + 4, 11, 30),
        itch_encode.OrderReplace(5, 0, ts + 5, 11, 13, 70, 1_000_100),
        itch_encode.OrderDelete(5, 0, ts + 6, 12),
    ]
    encoded = [itch_encode.encode(m) for m in messages]
    data, lengths, sequence, left = b"", [], 1, encoded
    while left:  # small packets: several datagrams carry the stream
        packet, taken = moldudp64.encode_packet("SESSION01", sequence, left, capacity=90)
        assert taken >= 1
        data, sequence, left = data + packet, sequence + taken, left[taken:]
        lengths.append(len(packet))
    assert len(lengths) > 2
    gathered = moldudp64.gather_blocks(data, lengths)
    assert gathered.messages == len(messages)
    assert gathered.stream == frame(encoded)
    result = decode([write(tmp_path, gathered.stream)])
    day = result.events["ts_event"][0] - (ts + 1)
    assert [r[1:7] for r in result.rows()] == [
        (2, 1, 1, 1_000_000, 100, 11),            # A bid
        (2, 2, 1, 1_010_000, 40, 12),             # A ask
        (5, 2, 0, 1_010_000, 15, 12), (7, 1, 1, 1_010_000, 15, 0),  # E: execute, trade (buyer)
        (3, 1, 1, 1_000_000, 70, 11),             # X: 30 of 100 canceled
        (4, 1, 0, 1_000_000, 0, 11), (2, 1, 1, 1_000_100, 70, 13),  # U: delete, add
        (4, 2, 1, 1_010_000, 0, 12),              # D
    ]
    assert list(result.events["ts_event"] - day)[:2] == [ts + 1, ts + 2]


# --------------------------------------------------------------------------------------------
# MoldUDP64

@impls("mold")
def test_mold_packet_bytes_and_reading(impl):
    packet, taken = impl.encode_packet("NASDAQ1", 42, [b"abc", b"", b"de"], capacity=1400)
    assert taken == 3
    assert packet == (b"NASDAQ1   " + (42).to_bytes(8, "big") + (3).to_bytes(2, "big")
                      + b"\x00\x03abc" + b"\x00\x00" + b"\x00\x02de")
    read = impl.read_packet(packet)
    assert read == moldudp64.MoldPacket("NASDAQ1", 42, 3, (b"abc", b"", b"de"))
    assert not read.heartbeat and not read.end_of_session


@impls("mold")
def test_mold_packet_takes_what_fits_the_capacity(impl):
    messages = [bytes([i]) * 10 for i in range(10)]
    packet, taken = impl.encode_packet("S", 1, messages, capacity=20 + 3 * 12 + 11)
    assert taken == 3 and len(packet) == 20 + 3 * 12
    assert impl.read_packet(packet).messages == tuple(messages[:3])
    assert impl.encode_packet("S", 1, messages, capacity=20) == (packet[:18] + b"\0\0", 0)
    with pytest.raises(ValueError):
        impl.encode_packet("S", 1, messages, capacity=19)
    with pytest.raises(ValueError):
        impl.encode_packet("S", 1, [bytes(70000)], capacity=100000)
    with pytest.raises(ValueError):
        impl.encode_packet("ELEVENCHARS", 1, [], capacity=100)


@impls("mold")
def test_mold_heartbeat_end_of_session_and_requests(impl):
    beat = impl.encode_heartbeat("S1", 77)
    assert beat == b"S1        " + (77).to_bytes(8, "big") + b"\0\0"
    assert impl.read_packet(beat).heartbeat
    end = impl.read_packet(impl.encode_end_of_session("S1", 78))
    assert end.end_of_session and end.messages == () and end.sequence == 78
    request = moldudp64.RetransmissionRequest("S1", 10, 5)
    data = impl.encode_request(request)
    assert data == b"S1        " + (10).to_bytes(8, "big") + (5).to_bytes(2, "big")
    assert impl.decode_request(data) == request


@pytest.mark.parametrize("data, problem, offset", [
    (b"S" * 19, WireProblem.TRUNCATED, 19),
    (b"S" * 21, WireProblem.TRAILING_BYTES, 20),
    (b"S" * 18 + b"\0\0", WireProblem.BAD_FIELD, 18),
    (b"S" * 18 + b"\xff\xff", WireProblem.BAD_FIELD, 18),
])
@impls("mold")
def test_mold_bad_requests_are_refused_with_offset(impl, data, problem, offset):
    with pytest.raises(ProtocolError) as e:
        impl.decode_request(data)
    assert (e.value.problem, e.value.offset) == (problem, offset)


@pytest.mark.parametrize("tail, problem, offset, kept", [
    (b"\x00\x03abc\x00", WireProblem.TRUNCATED, 25, 1),          # one byte of a length
    (b"\x00\x03abc\x00\x09xy", WireProblem.OVERSIZED, 25, 1),     # a length past the datagram
    (b"\x00\x03abc\x00\x01z!", WireProblem.TRAILING_BYTES, 28, 2),  # more than count blocks
])
@impls("mold")
def test_mold_damage_keeps_the_whole_blocks_before_it(impl, tail, problem, offset, kept):
    packet = b"SESS      " + (9).to_bytes(8, "big") + (2).to_bytes(2, "big") + tail
    read = impl.read_packet(packet)
    assert (read.problem, read.problem_offset, len(read.messages)) == (problem, offset, kept)
    with pytest.raises(ProtocolError) as e:
        impl.read_packet(packet[:12])
    assert (e.value.problem, e.value.offset) == (WireProblem.TRUNCATED, 12)


@FAST
@given(st.binary(max_size=80))
def test_mold_reader_takes_any_bytes(data):
    assert same_on_both("mold", "read_packet", data)[0] in ("ok", "refused")
    assert same_on_both("mold", "decode_request", data)[0] in ("ok", "refused")


@FAST
@given(st.lists(st.binary(max_size=40), max_size=6), st.integers(20, 200), st.integers(0, 2**64 - 1))
def test_mold_round_trip_on_both(messages, capacity, sequence):
    packet, taken = same_on_both("mold", "encode_packet", "S", sequence, messages, capacity)[1]
    assert same_on_both("mold", "read_packet", packet)[1] == \
        moldudp64.MoldPacket("S", sequence, taken, tuple(messages[:taken]))


@FAST
@given(st.lists(st.binary(max_size=60), max_size=5))
def test_mold_gather_agrees_on_any_datagrams(datagrams):
    result = same_on_both("mold", "gather_blocks", b"".join(datagrams), [len(d) for d in datagrams])
    assert result[0] == "ok" and len(result[1].problems) == len(datagrams)


# --------------------------------------------------------------------------------------------
# SoupBinTCP

@impls("soup")
def test_login_request_bytes_follow_the_spec(impl):
    data = impl.encode(soupbintcp.LoginRequest("ALICE", "secret", "", 1))
    assert data == (b"\x00\x2fL" + b"ALICE " + b"secret    " + b" " * 10
                    + b" " * 19 + b"1")
    assert impl.decode(data) == soupbintcp.LoginRequest("ALICE", "secret", "", 1)
    # A peer that left-justifies the number (nasdaq-protocols does) is read the same.
    assert impl.decode(data[:29] + b"1" + b" " * 19).sequence == 1


@impls("soup")
def test_login_answers_and_data_packets(impl):
    accepted = impl.encode(soupbintcp.LoginAccepted("SESSION1", 1234))
    assert accepted == b"\x00\x1fA" + b"SESSION1  " + b" " * 16 + b"1234"
    assert impl.encode(soupbintcp.LoginRejected(LoginRejectReason.NOT_AUTHORIZED)) == b"\x00\x02JA"
    assert impl.encode(soupbintcp.LoginRejected(LoginRejectReason.SESSION_NOT_AVAILABLE)) == \
        b"\x00\x02JS"
    assert impl.encode(soupbintcp.SequencedData(b"xyz")) == b"\x00\x04Sxyz"
    assert impl.encode(soupbintcp.UnsequencedData(b"")) == b"\x00\x01U"
    assert impl.encode(soupbintcp.Debug(b"hi")) == b"\x00\x03+hi"
    for cls, char in ((soupbintcp.ServerHeartbeat, b"H"), (soupbintcp.ClientHeartbeat, b"R"),
                      (soupbintcp.EndOfSession, b"Z"), (soupbintcp.LogoutRequest, b"O")):
        assert impl.encode(cls()) == b"\x00\x01" + char
        assert impl.decode(b"\x00\x01" + char) == cls()


@pytest.mark.parametrize("data, problem, offset", [
    (b"\x00\x01", WireProblem.TRUNCATED, 2),
    (b"\x00\x05Sab", WireProblem.BAD_LENGTH, 0),            # prefix disagrees with the bytes
    (b"\x00\x01Q", WireProblem.UNKNOWN_TYPE, 2),
    (b"\x00\x02Hx", WireProblem.BAD_LENGTH, 0),             # a heartbeat has no payload
    (b"\x00\x02JX", WireProblem.BAD_FIELD, 3),              # reject reason other than A or S
    (b"\x00\x1fA" + b"S" * 10 + b" " * 19 + b"x", WireProblem.BAD_FIELD, 13),
    (b"\x00\x1fA" + b"S" * 10 + b" " * 20, WireProblem.BAD_FIELD, 13),        # no digit
    (b"\x00\x1fA" + b"S" * 10 + b"1 2".rjust(20), WireProblem.BAD_FIELD, 13),  # two numbers
    (b"\x00\x1fA" + b"S" * 10 + b"18446744073709551616", WireProblem.BAD_FIELD, 13),  # 2^64
    (b"\x00\x2fL" + b" " * 26 + b"-1".rjust(20), WireProblem.BAD_FIELD, 29),
])
@impls("soup")
def test_soup_refusals_name_problem_and_offset(impl, data, problem, offset):
    with pytest.raises(ProtocolError) as e:
        impl.decode(data)
    assert (e.value.problem, e.value.offset) == (problem, offset)


SOUP_PACKETS = st.one_of(
    st.builds(soupbintcp.LoginRequest, _text(6), _text(10), _text(10), st.integers(0, 2**64 - 1)),
    st.builds(soupbintcp.LoginAccepted, _text(10), st.integers(0, 2**64 - 1)),
    st.builds(soupbintcp.LoginRejected, st.sampled_from(LoginRejectReason)),
    st.builds(soupbintcp.SequencedData, st.binary(max_size=60)),
    st.builds(soupbintcp.UnsequencedData, st.binary(max_size=60)),
    st.builds(soupbintcp.Debug, st.binary(max_size=20)),
    st.sampled_from([soupbintcp.ServerHeartbeat(), soupbintcp.ClientHeartbeat(),
                     soupbintcp.EndOfSession(), soupbintcp.LogoutRequest()]),
)


@FAST
@given(SOUP_PACKETS)
def test_soup_round_trips_identically_on_both(packet):
    data = same_on_both("soup", "encode", packet)[1]
    assert same_on_both("soup", "decode", data) == ("ok", packet)


@FAST
@given(st.binary(max_size=60))
def test_soup_decoders_take_any_bytes(data):
    assert same_on_both("soup", "decode", data)[0] in ("ok", "refused")
    framed = struct.pack(">H", len(data) + 1) + b"S" + data  # well framed, any payload
    assert same_on_both("soup", "decode", framed)[0] == "ok"


def _framer_run(impl, stream: bytes, cuts: list[int], max_length: int):
    framer = impl.Framer(max_length)
    packets = []
    bounds = [0, *sorted(set(cuts)), len(stream)]
    for a, b in zip(bounds, bounds[1:]):
        packets += framer.feed(stream[a:b])
    error = framer.error
    return packets, None if error is None else (error.problem, error.offset), framer.offset


@FAST
@given(st.lists(SOUP_PACKETS, max_size=8), st.data(), st.binary(max_size=6))
def test_framer_yields_the_same_packets_however_the_stream_is_cut(packets, data, garbage):
    encoded = [soupbintcp.encode(p) for p in packets]
    stream = b"".join(encoded) + garbage
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12))
    max_length = data.draw(st.integers(1, 100))
    whole = _framer_run(soupbintcp, stream, [], max_length)
    for impl in (soupbintcp, ref_soup):
        assert _framer_run(impl, stream, cuts, max_length) == whole
        assert _framer_run(impl, stream, list(range(len(stream))), max_length) == whole
    # The packets before the first refused length are exactly the encoded ones.
    fits = 0
    for e in encoded:
        if len(e) - 2 > max_length:
            break
        fits += 1
    assert whole[0][:fits] == encoded[:fits]


@impls("soup")
def test_framer_refuses_zero_and_oversized_lengths_at_their_stream_offset(impl):
    framer = impl.Framer(10)
    assert framer.feed(b"\x00\x01H\x00") == [b"\x00\x01H"]
    assert framer.feed(b"\x0bSxxxxxxxxxx") == []
    assert (framer.error.problem, framer.error.offset) == (WireProblem.OVERSIZED, 3)
    assert framer.feed(b"\x00\x01H") == []  # nothing after the refusal
    zero = impl.Framer(10)
    assert zero.feed(b"\x00\x01R\x00\x00\x00\x01R") == [b"\x00\x01R"]
    assert (zero.error.problem, zero.error.offset) == (WireProblem.BAD_LENGTH, 3)
    assert "offset 3" in str(zero.error)
    with pytest.raises(ValueError):
        impl.Framer(0)


# --------------------------------------------------------------------------------------------
# The C++ decoders under AddressSanitizer: no read past any buffer

@pytest.mark.slow
@needs_compiler
def test_cpp_decoders_never_read_past_their_input(tmp_path):
    out = run_harness(build_harness("fuzz_protocols", tmp_path), "20000")
    counts = dict(zip(out.split()[::2], out.split()[1::2]))
    # Every decoder both took and refused some of the inputs: the damage reached each of them.
    for name, pair in counts.items():
        ok, refused = map(int, pair.split("/"))
        assert ok > 0 and refused > 0, (name, pair)
