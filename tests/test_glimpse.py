"""End of Snapshot (lockstep.protocols.glimpse): the message, and the one-line errors of damaged
ones."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lockstep.errors import DecodeError
from lockstep.protocols.glimpse import end_of_snapshot, read_end_of_snapshot


def test_end_of_snapshot_is_g_and_twenty_right_justified_digits():
    assert end_of_snapshot(4_182_113) == b"G" + b" " * 13 + b"4182113"
    assert read_end_of_snapshot(b"G" + b"1".rjust(20)) == 1


@given(st.integers(1, 10**20 - 1))
def test_any_sequence_number_round_trips(n):
    assert read_end_of_snapshot(end_of_snapshot(n)) == n


@pytest.mark.parametrize("bad", [0, -1, 10**20, True, 1.0])
def test_a_number_it_cannot_carry_is_refused(bad):
    with pytest.raises(ValueError, match="next_sequence"):
        end_of_snapshot(bad)


@pytest.mark.parametrize("message, why", [
    (b"", "0 bytes"),
    (b"A" + b"1".rjust(20), "type b'A'"),
    (b"G" + b"1".rjust(19), "20 bytes"),
    (b"G" + b"12x".rjust(20), "not a positive decimal"),
    (b"G" + b"0".rjust(20), "not a positive decimal"),
    (b"G" + b" " * 20, "not a positive decimal"),
    (b"G" + "١٢".encode().rjust(20), "not a positive decimal"),
])
def test_a_damaged_end_of_snapshot_is_a_decode_error_saying_what(message, why):
    with pytest.raises(DecodeError, match=why):
        read_end_of_snapshot(message)


@given(st.binary(max_size=30))
def test_any_bytes_are_a_sequence_number_or_a_decode_error(message):
    try:
        n = read_end_of_snapshot(message)
    except DecodeError as e:
        assert "\n" not in str(e)
    else:
        assert n >= 1 and message == end_of_snapshot(n) or message[1:].strip(b" ").isdigit()
