"""lockstep::SequenceRuns (include/lockstep/base/sequence_runs.hpp: the feed messages the live core
took while its books were invalid, and those whose trades it told), driven through
tests/cpp/sequence_runs_ops.cpp under AddressSanitizer and UBSan, against a plain set of
numbers: every answer the same, for sequences of adds with holes, unions, cuts and the cap on
runs (the oldest forgotten, counted)."""
from __future__ import annotations

from pathlib import Path

import pytest
from cpp_harness import build, needs_compiler, run
from hypothesis import given, settings
from hypothesis import strategies as st

pytestmark = needs_compiler


@pytest.fixture(scope="module")
def harness(tmp_path_factory) -> Path:
    return build("sequence_runs_ops", tmp_path_factory.mktemp("runs"))


class Numbers:
    """The reference: which numbers are in, kept as a set; runs derived from it."""

    def __init__(self, max_runs: int) -> None:
        self.numbers: set[int] = set()
        self.max_runs = max(1, max_runs)
        self.forgotten = 0

    def runs(self) -> list[list[int]]:
        out: list[list[int]] = []
        for n in sorted(self.numbers):
            if out and n == out[-1][1] + 1:
                out[-1][1] = n
            else:
                out.append([n, n])
        return out

    def _forget_past_cap(self) -> None:
        runs = self.runs()
        while len(runs) > self.max_runs:
            first, last = runs.pop(0)
            self.numbers -= set(range(first, last + 1))
            self.forgotten += 1

    def add(self, seq: int) -> int:
        if self.numbers and seq <= max(self.numbers):
            return 0
        new_run = not self.numbers or seq != max(self.numbers) + 1
        self.numbers.add(seq)
        self._forget_past_cap()
        return int(new_run)

    def unite(self, other: Numbers) -> None:
        self.numbers |= other.numbers
        self._forget_past_cap()

    def cut(self, seq: int) -> None:
        self.numbers = {n for n in self.numbers if n >= seq}

    def show(self) -> str:
        runs = self.runs()
        first, last = runs[-1] if runs else (0, 0)
        return f"{len(runs)} {first} {last} {self.forgotten}"


sets = st.sampled_from("AB")
# A step from the set's last: 1 follows it (most), more leaves a hole, 0 or less is refused.
adds = st.tuples(st.just("add"), sets, st.sampled_from([1, 1, 1, 1, 1, 1, 2, 3, 5, 0, -2]))
operations = st.lists(st.one_of(
    adds, adds, adds, adds,  # mostly adds, so that runs grow long enough to be cut inside
    st.tuples(st.just("has"), sets, st.integers(-2, 12)),  # this far below the set's last
    st.tuples(st.just("cut"), sets, st.integers(-1, 12)),
    st.tuples(st.just("unite")),
    st.tuples(st.just("show"), sets),
), min_size=10, max_size=150)


def _run(harness: Path, max_runs: int, ops) -> tuple[list[str], list[str]]:
    ref = {"A": Numbers(max_runs), "B": Numbers(max_runs)}
    lines, expected = [f"new {max_runs}"], ["ok"]
    def last(x: str) -> int:
        return max(ref[x].numbers, default=0)

    for op in ops:
        if op[0] == "add":
            seq = max(1, last(op[1]) + op[2])
            lines.append(f"add {op[1]} {seq}")
            expected.append(str(ref[op[1]].add(seq)))
        elif op[0] == "has":
            seq = max(0, last(op[1]) - op[2])
            lines.append(f"has {op[1]} {seq}")
            expected.append(str(int(seq in ref[op[1]].numbers)))
        elif op[0] == "cut":
            seq = max(0, last(op[1]) - op[2])
            lines.append(f"cut {op[1]} {seq}")
            ref[op[1]].cut(seq)
            expected.append("ok")
        elif op[0] == "unite":
            lines.append("unite")
            ref["A"].unite(ref["B"])
            expected.append("ok")
        else:
            lines.append(f"show {op[1]}")
            expected.append(ref[op[1]].show())
    for x in "AB":  # every number up to each set's last and the next one, asked at the end
        for n in range(last(x) + 2):
            lines.append(f"has {x} {n}")
            expected.append(str(int(n in ref[x].numbers)))
        lines.append(f"show {x}")
        expected.append(ref[x].show())
    return run(harness, stdin="\n".join(lines) + "\n").split("\n")[:-1], expected


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([1, 2, 3, 5, 1 << 16]), operations)
def test_the_runs_answer_as_a_set_of_numbers_does(harness, max_runs, ops):
    got, expected = _run(harness, max_runs, ops)
    assert got == expected


def test_a_feed_with_a_hole_every_other_number_keeps_only_the_newest_runs(harness):
    """More holes than runs kept: memory stays at the cap, the oldest runs go (counted), and
    the newest are still answered right."""
    lines = ["new 4"] + [f"add A {n}" for n in range(1, 41, 2)] + ["show A", "has A 39",
                                                                    "has A 33", "has A 31"]
    *adds, show, has39, has33, has31 = run(harness, stdin="\n".join(lines) + "\n").split("\n")[1:-1]
    assert adds == ["1"] * 20  # every one after a hole
    assert show == "4 39 39 16"  # four runs, the last 39..39, sixteen forgotten
    assert (has39, has33, has31) == ("1", "1", "0")  # the four newest are 33..39
