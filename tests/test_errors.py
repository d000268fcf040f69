"""check_status: every C++ Status becomes its exception in one place."""
from __future__ import annotations

import os
import pickle

import pytest

from lockstep._bindings import binance as _binance
from lockstep.enums import Status
from lockstep.errors import (
    AddressError,
    DecodeStatusError,
    FixedPointError,
    IncompleteError,
    InvalidArgumentError,
    LockstepError,
    PeerClosedError,
    SocketError,
    StatusError,
    check_status,
)


def test_ok_passes():
    assert check_status(Status.OK, "anything") is None
    assert check_status(0, "anything") is None


@pytest.mark.parametrize("status,cls,text", [
    (Status.OUTPUT_FULL, IncompleteError, "output full"),
    (Status.NEED_MORE_INPUT, IncompleteError, "need more input"),
    (Status.INVALID_ARGUMENT, InvalidArgumentError, "invalid argument"),
    (Status.UNKNOWN_INSTRUMENT, InvalidArgumentError, "unknown instrument"),
    (Status.DECODE_ERROR, DecodeStatusError, "decode error"),
    (Status.NOT_MULTIPLE, FixedPointError, "not a multiple of the increment"),
    (Status.OVERFLOW, FixedPointError, "overflow"),
    (Status.WOULD_BLOCK, IncompleteError, "would block"),
    (Status.SYSTEM_ERROR, SocketError, "system call failed"),
    (Status.PEER_CLOSED, PeerClosedError, "peer closed the connection"),
    (Status.BAD_ADDRESS, AddressError, "bad address"),
])
def test_each_status_raises_its_family(status, cls, text):
    with pytest.raises(cls) as e:
        check_status(int(status), "the call")
    assert isinstance(e.value, StatusError) and isinstance(e.value, LockstepError)
    assert e.value.status is status and e.value.what == "the call"
    assert str(e.value) == f"the call: {text}"
    again = pickle.loads(pickle.dumps(e.value))
    assert type(again) is cls and str(again) == str(e.value)


def test_detail_and_errno_are_named_and_kept():
    with pytest.raises(SocketError) as e:
        check_status(int(Status.SYSTEM_ERROR), "udp://127.0.0.1:80", detail="bind", errno=13)
    assert str(e.value) == f"udp://127.0.0.1:80: system call failed: bind: {os.strerror(13)} (errno 13)"
    assert e.value.errno == 13 and e.value.detail.startswith("bind: ")
    again = pickle.loads(pickle.dumps(e.value))
    assert type(again) is SocketError and again.errno == 13 and str(again) == str(e.value)
    with pytest.raises(AddressError, match=r"^'udp://x': bad address: no port$"):
        check_status(int(Status.BAD_ADDRESS), "'udp://x'", detail="no port")


def test_unknown_code_is_named_not_swallowed():
    with pytest.raises(LockstepError, match="the call: unknown status code 99"):
        check_status(99, "the call")


def test_bindings_raise_through_it():
    with pytest.raises(FixedPointError, match=r"^'1.005' with increment 0.01: not a multiple"):
        _binance.decimal_to_fixed("1.005", "0.01")
    with pytest.raises(ValueError):  # InvalidArgumentError is a ValueError too
        _binance.decimal_to_fixed("1", "0")



def test_a_bare_status_is_named():
    decoder = _binance.BinanceDecoder()  # no fatal error recorded: only the status to tell
    assert str(decoder.exception(Status.OUTPUT_FULL)) == "decoder returned status output full"
    assert str(decoder.exception(99)) == "decoder returned status unknown status code 99"
