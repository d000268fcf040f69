# cython: language_level=3
"""Thin binding of include/lockstep/data/synth.hpp: fills canonical columns with synthetic events."""
from libc.stdint cimport uint8_t, uint64_t

from lockstep._bindings.columns cimport columns_view
from lockstep.includes.core.events cimport CEventColumns
from lockstep.includes.data.synth cimport CSynthBook, CSynthConfig, CSyntheticMarket

from lockstep.enums import BookKind
from lockstep.errors import check_status

#: Version of the generator's algorithm: bumped whenever the same options would give other events.
GENERATOR_VERSION = 1

DEFAULT_START_TS = 1704153600000000000
DEFAULT_MAX_BURST = 16
# The C++ enumerators by name, which tests/test_enum_parity.py holds lockstep.enums to.
ENUMERATORS = {
    "BookKind": {
        "L2": <int>CSynthBook.L2,
        "L3": <int>CSynthBook.L3,
    },
}


cdef class SyntheticMarket:
    """A seeded stream of `events` synthetic canonical events (see lockstep.data.synth)."""

    cdef CSyntheticMarket _gen

    def __init__(self, uint64_t events, *, uint64_t seed=1, str book="l2", unsigned int instruments=1,
                 unsigned int depth=400, unsigned int max_burst=DEFAULT_MAX_BURST,
                 long long start_ts=DEFAULT_START_TS):
        if book not in BookKind.labels():
            raise ValueError(f"book must be {' or '.join(map(repr, BookKind.labels()))}, got {book!r}")
        cdef CSynthConfig cfg
        cfg.seed = seed
        cfg.events = events
        cfg.instruments = instruments
        cfg.depth = depth
        cfg.max_burst = max_burst
        cfg.book = <CSynthBook><uint8_t>BookKind.from_label(book)
        cfg.start_ts = start_ts
        check_status(<int>self._gen.configure(cfg),
                     f"synthetic market options instruments={instruments} (>= 1), depth={depth} "
                     f"(4..65536), max_burst={max_burst} (1..4096)")

    def fill(self, cols, size_t size=0, max_events=None):
        """Appends events to `cols` (a mapping of column arrays) after its first `size` rows, up to
        its length or `max_events`; returns the new row count. The GIL is released meanwhile."""
        cdef size_t limit = <size_t>-1 if max_events is None else <size_t>max_events
        cdef CEventColumns view = columns_view(cols, size)
        with nogil:
            self._gen.generate(view, limit)
        return view.size

    @property
    def produced(self):
        """Events handed out so far."""
        return self._gen.produced()

    @property
    def done(self):
        return self._gen.done()
