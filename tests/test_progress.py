from __future__ import annotations

import io

from lockstep.progress import Progress

T0 = 1_723_075_200 * 1_000_000_000  # 2024-08-08 00:00:00 UTC


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_disabled_writes_nothing():
    out = io.StringIO()
    with Progress(1000, enabled=False, stream=out) as p:
        for i in range(0, 1001, 100):
            p.update(i, T0 + i)
    assert out.getvalue() == ""


def test_enabled_draws_a_bar_and_ends_the_line():
    out, clock = io.StringIO(), Clock()
    with Progress(1000, enabled=True, stream=out, clock=clock) as p:
        clock.now += 1.0
        p.update(250, T0 + 3_723_000_000_000)
    text = out.getvalue()
    assert text.startswith("\r[######------------------]  25.0%")
    assert "250/1.0k events" in text and "250 events/s" in text
    assert "sim 2024-08-08 01:02:03" in text
    assert text.endswith("\n") and text.count("\n") == 1
    last = text.rstrip("\n").split("\r")[-1]
    assert "25.0%" in last  # close() redraws the final state


def test_rate_limited_with_an_injected_clock():
    out, clock = io.StringIO(), Clock()
    p = Progress(10_000, enabled=True, stream=out, clock=clock)
    for i in range(100):  # 100 updates within 50 ms: one draw
        clock.now += 0.0005
        p.update(i, T0)
    assert out.getvalue().count("\r") == 1
    for i in range(100):  # 100 updates over 2 s: at most 10 draws a second
        clock.now += 0.02
        p.update(1000 + i, T0)
    assert 15 <= out.getvalue().count("\r") - 1 <= 20
    p.close()
    p.close()  # once only
    assert out.getvalue().count("\n") == 1
    p.update(5, T0)  # after close: nothing
    assert out.getvalue().endswith("\n")


def test_unknown_total_and_shrinking_lines():
    out, clock = io.StringIO(), Clock()
    p = Progress(None, enabled=True, stream=out, clock=clock)
    clock.now += 1.0
    p.update(2_000_000)
    clock.now += 1.0
    p.update(2_000_001, T0)
    p.close()
    frames = out.getvalue().rstrip("\n").split("\r")[1:]
    assert "%" not in frames[0] and "2.0M events" in frames[0] and "sim -" in frames[0]
    assert all(len(f) >= len(frames[0]) or f.endswith(" ") for f in frames)


def test_auto_enables_only_on_a_tty_without_json():
    assert Progress.auto(10, False, stream=Tty()).enabled
    assert not Progress.auto(10, True, stream=Tty()).enabled
    assert not Progress.auto(10, False, stream=io.StringIO()).enabled
