"""Seeded, deterministic synthetic markets as canonical events.

The generator itself is C++ (include/lockstep/data/synth.hpp): each instrument is an independent market
whose book follows a hidden random-walk price across thousands of ticks, expressed as L2 level
updates or L3 order events, in bursty venue messages. A given (events, seed, options) gives the
same bytes on every run and machine, whatever `batch_size` is.
"""
from __future__ import annotations

from collections.abc import Iterator

from lockstep._bindings.synth import DEFAULT_MAX_BURST, DEFAULT_START_TS, GENERATOR_VERSION, SyntheticMarket
from lockstep.data.dataset import Dataset, DatasetWriter, Instrument
from lockstep.enums import BookKind
from lockstep.events import Columns, empty_columns

__all__ = ["SYNTH_VENUE", "default_name", "generate", "instruments_for", "iter_synthetic"]

SYNTH_VENUE = "SYNTH"
PRICE_INCREMENT = "0.01"
SIZE_INCREMENT = "0.001"
DEFAULT_DEPTH = 400


def _check(events: int, seed: int, book: str, instruments: int, depth: int, batch_size: int) -> None:
    if not 0 <= seed < 1 << 64:
        raise ValueError(f"seed must be in 0..2**64-1, got {seed}")
    if events < 0:
        raise ValueError(f"events must be >= 0, got {events}")
    if book not in BookKind.labels():
        raise ValueError(f"book must be {' or '.join(map(repr, BookKind.labels()))}, got {book!r}")
    if instruments < 1:
        raise ValueError(f"instruments must be >= 1, got {instruments}")
    if not 4 <= depth <= 65536:
        raise ValueError(f"depth must be in 4..65536, got {depth}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")


def iter_synthetic(
    events: int,
    *,
    seed: int = 1,
    book: str = "l2",
    instruments: int = 1,
    depth: int = DEFAULT_DEPTH,
    batch_size: int = 1 << 20,
) -> Iterator[Columns]:
    """Exactly `events` synthetic events, in batches of at most `batch_size`, without touching disk.

    Each yielded batch is a dict of freshly allocated numpy columns (keeping one does not pin or
    corrupt the next). The GIL is released while the C++ generator fills a batch.
    """
    _check(events, seed, book, instruments, depth, batch_size)
    gen = SyntheticMarket(events, seed=seed, book=book, instruments=instruments, depth=depth)
    while not gen.done:
        cols = empty_columns(min(batch_size, events - gen.produced))
        n = gen.fill(cols)
        if n == 0:
            break
        if n < len(cols["ts_event"]):  # cannot happen with the sizes above; never yield garbage
            cols = {k: v[:n] for k, v in cols.items()}
        yield cols


def instruments_for(count: int, book: str = "l2") -> list[Instrument]:
    """The instrument table of a synthetic dataset: SYN0.. on venue SYNTH."""
    return [
        Instrument(f"SYN{i}", SYNTH_VENUE, PRICE_INCREMENT, SIZE_INCREMENT, book) for i in range(count)
    ]


def default_name(events: int, *, seed: int = 1, book: str = "l2", instruments: int = 1,
                 depth: int = DEFAULT_DEPTH) -> str:
    """``synth-<book>-<events>-s<seed>``, with ``-k<instruments>`` / ``-d<depth>`` when not default."""
    name = f"synth-{book}-{events}-s{seed}"
    if instruments != 1:
        name += f"-k{instruments}"
    if depth != DEFAULT_DEPTH:
        name += f"-d{depth}"
    return name


def generate(
    events: int,
    *,
    seed: int = 1,
    data: str | None = None,
    book: str = "l2",
    instruments: int = 1,
    depth: int = DEFAULT_DEPTH,
    name: str | None = None,
    batch_size: int = 1 << 20,
) -> Dataset:
    """Writes `events` synthetic events to ``ROOT/canonical/<name>`` and returns the dataset.

    The generator parameters go into the manifest's ``source``, so the dataset can be regenerated
    bit for bit (given the same ``generator_version``).
    """
    _check(events, seed, book, instruments, depth, batch_size)
    if events == 0:
        raise ValueError("a synthetic dataset needs events >= 1")
    name = name or default_name(events, seed=seed, book=book, instruments=instruments, depth=depth)
    source = {
        "generator": "lockstep.synth",
        "generator_version": GENERATOR_VERSION,
        "events": events,
        "seed": seed,
        "book": book,
        "instruments": instruments,
        "depth": depth,
        "max_burst": DEFAULT_MAX_BURST,
        "start_ts": DEFAULT_START_TS,
    }
    writer = DatasetWriter(name, instruments_for(instruments, book), data=data, source=source)
    with writer:
        for cols in iter_synthetic(
            events, seed=seed, book=book, instruments=instruments, depth=depth, batch_size=batch_size
        ):
            writer.write(cols)
    return writer.dataset
