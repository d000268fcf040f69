# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin binding of lockstep::binance::BinanceDecoder (include/lockstep/binance.hpp).

The public API is lockstep.importers.binance; this module only moves bytes and column views across
the boundary, releases the GIL while decoding and turns error statuses into DecodeError.
"""
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libcpp.memory cimport unique_ptr
from libcpp.vector cimport vector

from lockstep._columns cimport columns_view
from lockstep.includes.binance cimport (
    CBinanceDecoder, CCounts, CErrorInfo, CIncrementSource, CLocation, CLocationLog, CSymbolInfo,
    kSkipCount, market_type_name, skip_name,
)
from lockstep.includes.decimal cimport CFixedScale, CIncrement, parse_increment, to_fixed
from lockstep.includes.events cimport CEventColumns
from lockstep.includes.status cimport CStatus, status_name

from lockstep.errors import DecodeError

#: Increment sources, in the order of lockstep::binance::IncrementSource.
INCREMENT_SOURCES = ("explicit", "option", "builtin", "inferred")
SKIP_REASONS = tuple(skip_name(i).decode() for i in range(kSkipCount))

STATUS_OK = <int>CStatus.Ok
STATUS_OUTPUT_FULL = <int>CStatus.OutputFull


cdef CIncrement _increment(object text) except *:
    """An increment from its decimal string; ValueError if it is not a positive decimal."""
    if not isinstance(text, str):
        raise TypeError(f"increments are decimal strings, got {type(text).__name__}")
    cdef bytes b = text.encode("ascii", "replace")
    cdef CIncrement inc
    cdef CStatus st = parse_increment(b, len(b), inc)
    if st != CStatus.Ok:
        raise ValueError(f"invalid increment {text!r}: must be a positive decimal like '0.01' "
                         f"({status_name(st).decode()})")
    return inc


def parse_increment_text(str text):
    """(mantissa, exponent) of a decimal increment string, normalised (the C++ parser's view)."""
    cdef CIncrement inc = _increment(text)
    return (inc.mantissa, inc.exponent)


def decimal_to_fixed(str text, str increment):
    """Exact conversion of a decimal string to a multiple of `increment` (the decoder's rule).

    Raises ValueError naming the failure: not a decimal, not a multiple, overflow.
    """
    cdef CIncrement inc = _increment(increment)
    cdef CFixedScale fs
    cdef CStatus st = CFixedScale.make(inc, fs)
    if st != CStatus.Ok:
        raise ValueError(f"unusable increment {increment!r}: {status_name(st).decode()}")
    cdef bytes b = text.encode("utf-8", "surrogateescape")
    cdef int64_t out = 0
    st = to_fixed(b, len(b), fs, out)
    if st != CStatus.Ok:
        raise ValueError(f"{text!r} with increment {increment}: {status_name(st).decode()}")
    return out


cdef object _location(const CLocation& l, list names, bint with_ids):
    d = {
        "path": names[l.file] if l.file < len(names) else str(l.file),
        "line": l.line,
        "offset": l.offset,
    }
    if with_ids:
        d["expected"] = l.expected
        d["got"] = l.got
    return d


cdef object _log(const CLocationLog& log, list names, bint with_ids):
    cdef const vector[CLocation]* first = &log.first()
    return {
        "count": log.count(),
        "first": [_location(first[0][i], names, with_ids) for i in range(first.size())],
    }


cdef class BinanceDecoder:
    """One decoder for one stream of files (state carries across begin_file)."""
    cdef unique_ptr[CBinanceDecoder] core
    cdef list names

    def __cinit__(self):
        self.core.reset(new CBinanceDecoder())
        self.names = []

    # ---- configuration ----

    def add_instrument(self, str symbol, uint32_t index, str price_increment, str size_increment,
                       int source=0):
        cdef bytes s = symbol.encode("ascii", "replace")
        cdef CStatus st = self.core.get().add_instrument(
            s, len(s), index, _increment(price_increment), _increment(size_increment),
            <CIncrementSource>source)
        if st != CStatus.Ok:
            raise ValueError(f"cannot configure instrument {symbol!r} with index {index}: "
                             f"{status_name(st).decode()} (duplicate symbol or index, or a "
                             "symbol that is not 1-32 characters of [A-Za-z0-9._-])")

    def add_catalog(self, str symbol, str price_increment, str size_increment, int source):
        cdef bytes s = symbol.encode("ascii", "replace")
        cdef CStatus st = self.core.get().add_catalog(
            s, len(s), _increment(price_increment), _increment(size_increment),
            <CIncrementSource>source)
        if st != CStatus.Ok:
            raise ValueError(f"cannot add {symbol!r} to the catalogue: {status_name(st).decode()}")

    def set_default_increments(self, str price_increment, str size_increment):
        cdef CStatus st = self.core.get().set_default_increments(
            _increment(price_increment), _increment(size_increment))
        if st != CStatus.Ok:
            raise ValueError(f"unusable increments {price_increment!r}/{size_increment!r}: "
                             f"{status_name(st).decode()}")

    def set_snapshot_symbol(self, str symbol):
        cdef bytes s = symbol.encode("ascii", "replace")
        if self.core.get().set_snapshot_symbol(s, len(s)) != CStatus.Ok:
            raise ValueError(f"invalid snapshot symbol {symbol!r}")

    def set_scan_mode(self, bint on):
        self.core.get().set_scan_mode(on)

    def set_pending_limit(self, size_t levels, size_t messages):
        self.core.get().set_pending_limit(levels, messages)

    def set_max_line(self, size_t nbytes):
        self.core.get().set_max_line(nbytes)

    # ---- decoding ----

    def begin_file(self, uint32_t index, str name):
        while len(self.names) <= index:
            self.names.append(None)
        self.names[index] = name
        self.core.get().begin_file(index)

    def feed(self, const unsigned char[::1] data, object cols, size_t size):
        """Decodes complete lines of `data` into `cols` from event `size` on.

        Returns (consumed, new_size, status) with status STATUS_OK (all consumed) or
        STATUS_OUTPUT_FULL (drain the columns, call again with data[consumed:]); any other status
        means an error: raise self.exception().
        """
        cdef CEventColumns view  # scan mode passes no columns: an empty view
        if cols is not None:
            view = columns_view(cols, size)
        cdef size_t consumed = 0
        cdef size_t n = data.shape[0]
        cdef const char* p = <const char*>&data[0] if n else <const char*>NULL
        cdef CStatus st
        with nogil:
            st = self.core.get().feed(p, n, view, &consumed)
        return consumed, view.size, <int>st

    def finish(self, object cols, size_t size):
        """End of the current file; returns (new_size, status) like feed."""
        cdef CEventColumns view  # scan mode passes no columns: an empty view
        if cols is not None:
            view = columns_view(cols, size)
        cdef CStatus st
        with nogil:
            st = self.core.get().finish(view)
        return view.size, <int>st

    def end_stream(self, object cols, size_t size):
        cdef CEventColumns view  # scan mode passes no columns: an empty view
        if cols is not None:
            view = columns_view(cols, size)
        cdef CStatus st
        with nogil:
            st = self.core.get().end_stream(view)
        return view.size, <int>st

    def exception(self, int status=-1):
        """The DecodeError describing the decoder's error (or a bad status from feed)."""
        cdef const CErrorInfo* e = &self.core.get().error()
        if e.status == CStatus.Ok:
            return DecodeError(f"decoder returned status {status}")
        cdef const char* message = &e.message[0]
        name = self.names[e.file] if e.file < len(self.names) else None
        reason = message.decode("utf-8", "replace")
        if not reason:
            reason = status_name(e.status).decode()
        return DecodeError(reason, path=name, line=e.line, offset=e.offset)

    # ---- reports ----

    @property
    def lines_in_file(self):
        return self.core.get().lines_in_file()

    @property
    def file_bytes(self):
        return self.core.get().file_bytes()

    @property
    def carried_bytes(self):
        return self.core.get().carried_bytes()

    @property
    def market_type(self):
        return market_type_name(self.core.get().market_type()).decode()

    def counts(self):
        cdef const CCounts* c = &self.core.get().counts()
        cdef CBinanceDecoder* d = self.core.get()
        names = self.names
        return {
            "lines": c.lines,
            "bytes": c.bytes,
            "messages": {
                "depth": c.depth_messages,
                "trade": c.trade_messages,
                "book_ticker": c.book_ticker_messages,
                "snapshot": c.snapshot_messages,
            },
            "events": [c.events[k] for k in range(9)],
            "depth_buffered": c.depth_buffered,
            "depth_replayed": c.depth_replayed,
            "skipped": {SKIP_REASONS[i]: _log(d.skips(i), names, False) for i in range(kSkipCount)},
            "sequence_gaps": _log(d.gaps(), names, True),
            "ts_recv_raised": _log(d.ts_recv_raised(), names, True),
        }

    def symbols(self):
        cdef vector[CSymbolInfo] rows = self.core.get().symbols()
        cdef CSymbolInfo* r
        cdef size_t i
        cdef int source
        out = []
        for i in range(rows.size()):
            r = &rows[i]
            source = <int>r.source
            out.append({
                "symbol": r.symbol.decode("ascii", "replace"),
                "has_increments": r.has_increments,
                "price_increment": (r.price_increment.mantissa, r.price_increment.exponent),
                "size_increment": (r.size_increment.mantissa, r.size_increment.exponent),
                "source": INCREMENT_SOURCES[source],
                "indexed": r.indexed,
                "index": r.index,
                "seen": r.seen,
                "messages": r.messages,
                "price_inferred": (r.price_inferred.mantissa, r.price_inferred.exponent)
                if r.price_inferred_ok else None,
                "size_inferred": (r.size_inferred.mantissa, r.size_inferred.exponent)
                if r.size_inferred_ok else None,
                "price_values": r.price_values,
                "size_values": r.size_values,
            })
        return out
