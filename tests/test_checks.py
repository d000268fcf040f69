"""The field checks lockstep.checks shares between the compiled-side API and the reference twins:
each takes exactly the values its C++ field can hold and names the field when it refuses one."""
from __future__ import annotations

import math

import pytest

from lockstep.checks import (
    non_negative_float,
    non_negative_int,
    order_id_and_ts,
    queue_model,
    u8,
    u32,
    u64,
)
from lockstep.enums import QueueModel


@pytest.mark.parametrize("check, bits", [(u8, 8), (u32, 32), (u64, 64)])
def test_unsigned_fields_take_their_whole_range_and_nothing_else(check, bits):
    assert check("field", 0) == 0
    assert check("field", 2**bits - 1) == 2**bits - 1
    for outside in (-1, 2**bits):
        with pytest.raises(OverflowError, match=f"^field={outside} is outside"):
            check("field", outside)
    for not_int in (True, 1.0, "1", None):
        with pytest.raises(TypeError, match="^field must be an int"):
            check("field", not_int)


def test_order_id_and_ts_names_the_one_that_is_wrong():
    assert order_id_and_ts(2**64 - 1, -(2**63)) == (2**64 - 1, -(2**63))
    with pytest.raises(OverflowError, match="^client_order_id="):
        order_id_and_ts(-1, 0)
    with pytest.raises(OverflowError, match="^ts="):
        order_id_and_ts(0, 2**63)


def test_non_negative_int_has_no_upper_bound():
    assert non_negative_int("max_out", 2**70) == 2**70
    with pytest.raises(ValueError, match="^max_out must be >= 0, not -1$"):
        non_negative_int("max_out", -1)
    with pytest.raises(TypeError, match="^max_out must be an int, not bool$"):
        non_negative_int("max_out", False)


def test_non_negative_float_takes_ints_and_finite_floats():
    assert non_negative_float("power", 2) == 2.0 and isinstance(non_negative_float("power", 2), float)
    assert non_negative_float("power", 0.0) == 0.0
    for bad in (-0.5, math.inf, math.nan):
        with pytest.raises(ValueError, match="^power must be finite and >= 0"):
            non_negative_float("power", bad)
    for not_number in (True, "2", None):
        with pytest.raises(TypeError, match="^power must be a number"):
            non_negative_float("power", not_number)


def test_queue_model_takes_members_and_their_values():
    assert queue_model(QueueModel.PROBABILISTIC) is QueueModel.PROBABILISTIC
    assert queue_model(0) is QueueModel.CONSERVATIVE
    with pytest.raises(ValueError, match="^unknown queue model 7$"):
        queue_model(7)
    with pytest.raises(OverflowError, match="^model=256"):
        queue_model(256)
    with pytest.raises(TypeError, match="^model must be an int"):
        queue_model("probabilistic")
