# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin binding of lockstep::binance::BinanceDecoder (include/lockstep/codecs/binance/decoder.hpp).

The public API is lockstep.data.importers.binance; this module only moves bytes and column views across
the boundary, releases the GIL while decoding and turns fatal statuses into DecodeError.
"""
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libcpp.memory cimport unique_ptr
from libcpp.vector cimport vector

from lockstep._bindings.columns cimport columns_view
from lockstep.includes.base.decimal cimport CFixedScale, CIncrement, parse_increment, to_fixed
from lockstep.includes.base.status cimport CStatus, status_name
from lockstep.includes.codecs.binance.catalogue cimport CFinerValue, CIncrementSource, CSymbolInfo
from lockstep.includes.codecs.binance.decoder cimport CBinanceDecoder
from lockstep.includes.codecs.binance.messages cimport CMarketType, market_type_name
from lockstep.includes.codecs.binance.output cimport COutput
from lockstep.includes.codecs.binance.reports cimport (
    CCounts, CErrorInfo, CLocation, CLocationLog, CReason, kSkipCount, skip_name,
)
from lockstep.includes.core.rules cimport kRuleCount

from lockstep.enums import BinanceSkip, IncrementSource, MarketType
from lockstep.errors import DecodeError, check_status, status_text


# The C++ enumerators by name, and the C++ *_name() of each value where C++ has one, which
# tests/test_enum_parity.py holds lockstep.enums to.
ENUMERATORS = {
    "MarketType": {
        "Unknown": <int>CMarketType.Unknown, "Spot": <int>CMarketType.Spot,
        "UsdM": <int>CMarketType.UsdM, "CoinM": <int>CMarketType.CoinM,
    },
    "IncrementSource": {
        "Explicit": <int>CIncrementSource.Explicit, "Option": <int>CIncrementSource.Option,
        "BuiltIn": <int>CIncrementSource.BuiltIn, "Inferred": <int>CIncrementSource.Inferred,
    },
}
ENUM_NAMES = {
    "MarketType": {v: market_type_name(<CMarketType>v).decode()
                   for v in ENUMERATORS["MarketType"].values()},
    "BinanceSkip": {i: skip_name(i).decode() for i in range(kSkipCount)},
}


#: Per-record arrays of a chunk, with their dtypes.
RECORD_COLUMNS = (("rec_file", "int32"), ("rec_line", "int64"), ("rec_offset", "int64"),
                  ("rec_length", "int64"), ("rec_problem", "uint8"))


cdef CIncrement _increment(object text) except *:
    """An increment from its decimal string; ValueError if it is not a positive decimal."""
    if not isinstance(text, str):
        raise TypeError(f"increments are decimal strings, got {type(text).__name__}")
    cdef bytes b = text.encode("ascii", "replace")
    cdef CIncrement inc
    check_status(<int>parse_increment(b, len(b), inc),
                 f"invalid increment {text!r}: must be a positive decimal like '0.01'")
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
    check_status(<int>CFixedScale.make(inc, fs), f"unusable increment {increment!r}")
    cdef bytes b = text.encode("utf-8", "surrogateescape")
    cdef int64_t out = 0
    check_status(<int>to_fixed(b, len(b), fs, out), f"{text!r} with increment {increment}")
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


cdef object _finer(const CFinerValue& f):
    if not f.found:
        return None
    return {"value": (<const char*>f.text).decode("utf-8", "replace"), "file": f.file, "line": f.line,
            "offset": f.offset}


cdef object _log(const CLocationLog& log, list names, bint with_ids):
    cdef const vector[CLocation]* first = &log.first()
    return {
        "count": log.count(),
        "first": [_location(first[0][i], names, with_ids) for i in range(first.size())],
    }


cdef int _output(COutput& o, object bufs, size_t ev_size, size_t rec_size) except -1:
    """A view of the chunk buffers `bufs` (dict: event columns + event_record + RECORD_COLUMNS)."""
    o.ev = columns_view(bufs, ev_size)
    cdef int64_t[::1] ev_record = bufs["event_record"]
    cdef int32_t[::1] rfile = bufs["rec_file"]
    cdef int64_t[::1] rline = bufs["rec_line"]
    cdef int64_t[::1] roffset = bufs["rec_offset"]
    cdef int64_t[::1] rlength = bufs["rec_length"]
    cdef uint8_t[::1] rproblem = bufs["rec_problem"]
    cdef size_t ncap = rfile.shape[0]
    if (<size_t>ev_record.shape[0] != o.ev.capacity or <size_t>rline.shape[0] != ncap
            or <size_t>roffset.shape[0] != ncap or <size_t>rlength.shape[0] != ncap
            or <size_t>rproblem.shape[0] != ncap or rec_size > ncap):
        raise ValueError("chunk buffers differ in length")
    o.ev_record = &ev_record[0] if ev_record.shape[0] else NULL
    o.rec.size = rec_size
    o.rec.capacity = ncap
    if ncap:
        o.rec.file = &rfile[0]
        o.rec.line = &rline[0]
        o.rec.offset = &roffset[0]
        o.rec.length = &rlength[0]
        o.rec.problem = &rproblem[0]
    return 0


cdef class BinanceDecoder:
    """One decoder for one stream of files (state carries across begin_file)."""
    cdef unique_ptr[CBinanceDecoder] core
    cdef list names
    cdef size_t reasons_seen

    def __cinit__(self):
        self.core.reset(new CBinanceDecoder())
        self.names = []
        self.reasons_seen = 0

    # ---- configuration ----

    def add_instrument(self, str symbol, uint32_t index, str price_increment, str size_increment,
                       int source=0):
        cdef bytes s = symbol.encode("ascii", "replace")
        cdef CStatus st = self.core.get().add_instrument(
            s, len(s), index, _increment(price_increment), _increment(size_increment),
            <CIncrementSource>source)
        check_status(<int>st, f"cannot configure instrument {symbol!r} with index {index} "
                              "(duplicate symbol or index, or a symbol that is not 1-32 "
                              "characters of [A-Za-z0-9._-])")

    def add_catalog(self, str symbol, str price_increment, str size_increment, int source):
        cdef bytes s = symbol.encode("ascii", "replace")
        cdef CStatus st = self.core.get().add_catalog(
            s, len(s), _increment(price_increment), _increment(size_increment),
            <CIncrementSource>source)
        check_status(<int>st, f"cannot add {symbol!r} to the catalogue")

    def set_default_increments(self, str price_increment, str size_increment):
        cdef CStatus st = self.core.get().set_default_increments(
            _increment(price_increment), _increment(size_increment))
        check_status(<int>st, f"unusable increments {price_increment!r}/{size_increment!r}")

    def set_snapshot_symbol(self, str symbol):
        cdef bytes s = symbol.encode("ascii", "replace")
        check_status(<int>self.core.get().set_snapshot_symbol(s, len(s)),
                     f"invalid snapshot symbol {symbol!r}")

    def set_market_type(self, str market):
        """`market`: a MarketType label; ValueError listing the labels otherwise."""
        self.core.get().set_market_type(<CMarketType><uint8_t>MarketType.from_label(market))

    def set_scan_mode(self, bint on):
        self.core.get().set_scan_mode(on)

    def set_pending_limit(self, size_t levels, size_t messages):
        self.core.get().set_pending_limit(levels, messages)

    def set_max_held_records(self, size_t n):
        self.core.get().set_max_held_records(n)

    def set_max_line(self, size_t nbytes):
        self.core.get().set_max_line(nbytes)

    # ---- decoding ----

    def begin_file(self, uint32_t index, str name):
        while len(self.names) <= index:
            self.names.append(None)
        self.names[index] = name
        self.core.get().begin_file(index)

    def feed(self, const unsigned char[::1] data, object bufs, size_t ev_size, size_t rec_size):
        """Decodes complete lines of `data` into the chunk buffers `bufs` from the given sizes on.

        Returns (consumed, ev_size, rec_size, status) with status Status.OK (all consumed) or
        Status.OUTPUT_FULL (hand out the chunk, call again with data[consumed:]; with rec_size 0,
        the buffers must grow to needed_events); any other status is fatal: raise
        self.exception(). `bufs` None: scan mode.
        """
        cdef COutput out
        if bufs is not None:
            _output(out, bufs, ev_size, rec_size)
        cdef size_t consumed = 0
        cdef size_t n = data.shape[0]
        cdef const char* p = <const char*>&data[0] if n else <const char*>NULL
        cdef CStatus st
        with nogil:
            st = self.core.get().feed(p, n, out, &consumed)
        return consumed, out.ev.size, out.rec.size, <int>st

    def finish(self, object bufs, size_t ev_size, size_t rec_size):
        """End of the current file; returns (ev_size, rec_size, status) like feed."""
        cdef COutput out
        if bufs is not None:
            _output(out, bufs, ev_size, rec_size)
        cdef CStatus st
        with nogil:
            st = self.core.get().finish(out)
        return out.ev.size, out.rec.size, <int>st

    def finish_cut(self, object bufs, size_t ev_size, size_t rec_size):
        """End of the current file when its compressed stream is cut: what follows the last whole
        line is one truncated record; returns (ev_size, rec_size, status) like feed."""
        cdef COutput out
        if bufs is not None:
            _output(out, bufs, ev_size, rec_size)
        cdef CStatus st
        with nogil:
            st = self.core.get().finish_cut(out)
        return out.ev.size, out.rec.size, <int>st

    def end_stream(self, object bufs, size_t ev_size, size_t rec_size):
        cdef COutput out
        if bufs is not None:
            _output(out, bufs, ev_size, rec_size)
        cdef CStatus st
        with nogil:
            st = self.core.get().end_stream(out)
        return out.ev.size, out.rec.size, <int>st

    def exception(self, int status=-1):
        """The DecodeError describing the decoder's fatal error (or a bad status from feed)."""
        cdef const CErrorInfo* e = &self.core.get().error()
        if e.status == CStatus.Ok:
            return DecodeError(f"decoder returned status {status_text(status)}")
        cdef const char* message = &e.message[0]
        name = self.names[e.file] if e.file < len(self.names) else None
        reason = message.decode("utf-8", "replace")
        if not reason:
            reason = status_name(e.status).decode()
        return DecodeError(reason, path=name, line=e.line, offset=e.offset)

    def new_reasons(self):
        """[(record, rule, path, line, offset, text)] of the problems logged since the last call."""
        cdef const vector[CReason]* rs = &self.core.get().reasons()
        cdef const CReason* r
        cdef const char* text
        out = []
        while self.reasons_seen < rs.size():
            r = &rs[0][self.reasons_seen]
            self.reasons_seen += 1
            text = &r.text[0]
            out.append((r.record, <uint8_t>r.rule,
                        self.names[r.loc.file] if r.loc.file < len(self.names) else str(r.loc.file),
                        r.loc.line, r.loc.offset, text.decode("utf-8", "replace")))
        return out

    # ---- reports ----

    def values_off_increment(self):
        """Values the decode found off their configured increment so far (each made its record
        malformed): not 0 means the increments need the first pass."""
        return self.core.get().values_off_increment()

    @property
    def lines_in_file(self):
        return self.core.get().lines_in_file()

    @property
    def records_in_file(self):
        return self.core.get().records_in_file()

    @property
    def file_bytes(self):
        return self.core.get().file_bytes()

    @property
    def carried_bytes(self):
        return self.core.get().carried_bytes()

    @property
    def needed_events(self):
        return self.core.get().needed_events()

    @property
    def next_record(self):
        return self.core.get().next_record()

    @property
    def market_type(self):
        return MarketType(<uint8_t>self.core.get().market_type()).label

    def counts(self):
        cdef const CCounts* c = &self.core.get().counts()
        cdef CBinanceDecoder* d = self.core.get()
        names = self.names
        return {
            "lines": c.lines,
            "bytes": c.bytes,
            "records": c.records,
            "messages": {
                "depth": c.depth_messages,
                "trade": c.trade_messages,
                "agg_trade": c.agg_trade_messages,
                "book_ticker": c.book_ticker_messages,
                "snapshot": c.snapshot_messages,
            },
            "events": {k: c.events[k] for k in range(65) if c.events[k]},
            "depth_buffered": c.depth_buffered,
            "depth_replayed": c.depth_replayed,
            "skipped": {s.label: _log(d.skips(s), names, False) for s in BinanceSkip},
            "problems": [_log(d.problems(i), names, False) for i in range(kRuleCount)],
            "sequence_gaps": _log(d.gaps(), names, True),
            "ts_recv_raised": _log(d.ts_recv_raised(), names, True),
        }

    def symbols(self):
        """The catalogue's rows as dicts; in scan mode with increments, `price_finer` and
        `size_finer` are the first value off them (text, file index, line, offset) or None."""
        cdef vector[CSymbolInfo] rows = self.core.get().symbols()
        cdef CSymbolInfo* r
        cdef size_t i
        out = []
        for i in range(rows.size()):
            r = &rows[i]
            out.append({
                "symbol": r.symbol.decode("ascii", "replace"),
                "has_increments": r.has_increments,
                "price_increment": (r.price_increment.mantissa, r.price_increment.exponent),
                "size_increment": (r.size_increment.mantissa, r.size_increment.exponent),
                "source": IncrementSource(<uint8_t>r.source).label,
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
                "price_finer": _finer(r.price_finer),
                "size_finer": _finer(r.size_finer),
            })
        return out
