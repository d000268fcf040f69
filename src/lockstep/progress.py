"""A one-line progress bar on stderr for long runs: display only, never part of any output.

    with Progress.auto(total_events, json_mode) as progress:
        for batch in ...:
            progress.update(events_done, ts_recv_ns)

It reads a wall clock (time.monotonic) solely to limit redraws to ~10 a second and to show the
rate; nothing it measures reaches results, digests or files.
"""
from __future__ import annotations

import datetime as _dt
import sys
import time
from collections.abc import Callable
from typing import TextIO

_BAR = 24


def _sim_time(ns: int | None) -> str:
    if ns is None:
        return "-"
    t = _dt.datetime(1970, 1, 1) + _dt.timedelta(microseconds=ns // 1000)
    return t.strftime("%Y-%m-%d %H:%M:%S")


def _count(n: float) -> str:
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return f"{n:.0f}"


class Progress:
    """`update(events_done, ts_recv_ns)` redraws at most every `interval` seconds a line like

        [#########---------------]  37.5%  7.5M/20.0M events  21.3M events/s  sim 2024-08-08 13:04:11

    (without a known total: events, rate and simulated time). `close()` draws the final state
    and ends the line; nothing is written when disabled. `clock` is injectable for tests.
    """

    def __init__(self, total_events: int | None, *, enabled: bool, stream: TextIO | None = None,
                 interval: float = 0.1, clock: Callable[[], float] = time.monotonic) -> None:
        self.total = total_events if total_events and total_events > 0 else None
        self.enabled = bool(enabled)
        self.stream = sys.stderr if stream is None else stream
        self.interval = interval
        self._clock = clock
        self._start = clock()
        self._last_draw: float | None = None
        self._done = 0
        self._ts: int | None = None
        self._width = 0
        self._closed = False

    @classmethod
    def auto(cls, total_events: int | None, json_mode: bool, *, stream: TextIO | None = None) -> Progress:
        """Enabled only when the stream (stderr by default) is a terminal and output is not JSON."""
        stream = sys.stderr if stream is None else stream
        try:
            tty = stream.isatty()
        except (AttributeError, ValueError):
            tty = False
        return cls(total_events, enabled=tty and not json_mode, stream=stream)

    def update(self, events_done: int, ts_recv_ns: int | None = None) -> None:
        self._done = events_done
        if ts_recv_ns is not None:
            self._ts = ts_recv_ns
        if not self.enabled or self._closed:
            return
        now = self._clock()
        if self._last_draw is not None and now - self._last_draw < self.interval:
            return
        self._draw(now)

    def line(self, now: float | None = None) -> str:
        """The current progress line (no carriage return)."""
        now = self._clock() if now is None else now
        elapsed = max(now - self._start, 1e-9)
        rate = self._done / elapsed
        parts = []
        if self.total is not None:
            frac = min(max(self._done / self.total, 0.0), 1.0)
            fill = int(frac * _BAR)
            parts.append(f"[{'#' * fill}{'-' * (_BAR - fill)}] {frac * 100:5.1f}%")
            parts.append(f"{_count(self._done)}/{_count(self.total)} events")
        else:
            parts.append(f"{_count(self._done)} events")
        parts.append(f"{_count(rate)} events/s")
        parts.append(f"sim {_sim_time(self._ts)}")
        return "  ".join(parts)

    def _draw(self, now: float) -> None:
        text = self.line(now)
        pad = " " * max(self._width - len(text), 0)  # clear what a longer line left behind
        self.stream.write(f"\r{text}{pad}")
        self.stream.flush()
        self._width = len(text)
        self._last_draw = now

    def close(self) -> None:
        """Draws the final state and ends the line (once)."""
        if self._closed:
            return
        self._closed = True
        if self.enabled:
            self._draw(self._clock())
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()


__all__ = ["Progress"]
