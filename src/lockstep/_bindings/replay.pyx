# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin binding of lockstep::Replayer (include/lockstep/core/replay.hpp)."""
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libcpp.memory cimport unique_ptr
from libcpp.vector cimport vector

import numpy as np

from lockstep._bindings.columns cimport columns_view
from lockstep.includes.core.events cimport (
    CEventColumns, CEventKind, CSide, CTradingPhase, kFlagBadTsRecv, kFlagLast, kFlagMaker,
    kFlagSnapshot, kPhaseScopeInstrument, kPhaseScopeSession,
)
from lockstep.includes.core.replay cimport (
    CAnomaly, CAnomalyLog, CBookType, CInvalidStretch, CLastTrade, CReplayer, CTopOfBookColumns, anomaly_name,
    kAnomalyKinds,
)
from lockstep.includes.base.status cimport CStatus, status_name

from lockstep.enums import BookKind
from lockstep.errors import check_status


cdef extern from *:
    # Cython spells a scoped enumerator by its Python name, and None is a Python keyword.
    """
    static const int kEventKindNone = static_cast<int>(lockstep::EventKind::None);
    static const int kSideNone = static_cast<int>(lockstep::Side::None);
    """
    const int kEventKindNone
    const int kSideNone


# The C++ enumerators by name, and the C++ *_name() of each value where C++ has one, which
# tests/test_enum_parity.py holds lockstep.enums, lockstep.events and lockstep.errors.STATUS_TEXT
# to.
ENUMERATORS = {
    "EventKind": {
        "None": kEventKindNone, "L2Set": <int>CEventKind.L2Set, "L3Add": <int>CEventKind.L3Add,
        "L3Modify": <int>CEventKind.L3Modify, "L3Delete": <int>CEventKind.L3Delete,
        "L3Execute": <int>CEventKind.L3Execute, "BookClear": <int>CEventKind.BookClear,
        "Trade": <int>CEventKind.Trade, "VenueBbo": <int>CEventKind.VenueBbo,
        "OrderSubmitted": <int>CEventKind.OrderSubmitted,
        "OrderAccepted": <int>CEventKind.OrderAccepted,
        "OrderRejected": <int>CEventKind.OrderRejected, "OrderFilled": <int>CEventKind.OrderFilled,
        "OrderCanceled": <int>CEventKind.OrderCanceled,
        "OrderExpired": <int>CEventKind.OrderExpired,
        "OrderReplaced": <int>CEventKind.OrderReplaced,
        "CancelRejected": <int>CEventKind.CancelRejected,
        "ReplaceRejected": <int>CEventKind.ReplaceRejected,
        "CancelSubmitted": <int>CEventKind.CancelSubmitted,
        "ReplaceSubmitted": <int>CEventKind.ReplaceSubmitted,
        "TradeBroken": <int>CEventKind.TradeBroken,
        "TradeCorrected": <int>CEventKind.TradeCorrected, "Gap": <int>CEventKind.Gap,
        "TradingPhase": <int>CEventKind.TradingPhase,
    },
    "TradingPhase": {
        "Unknown": <int>CTradingPhase.Unknown, "PreOpen": <int>CTradingPhase.PreOpen,
        "Auction": <int>CTradingPhase.Auction, "Continuous": <int>CTradingPhase.Continuous,
        "Halted": <int>CTradingPhase.Halted, "Closed": <int>CTradingPhase.Closed,
    },

    "Side": {
        "None": kSideNone, "Bid": <int>CSide.Bid, "Ask": <int>CSide.Ask,
    },
    "Flag": {
        "kLast": kFlagLast, "kSnapshot": kFlagSnapshot, "kBadTsRecv": kFlagBadTsRecv,
        "kMaker": kFlagMaker,
    },
    "BookKind": {
        "L2": <int>CBookType.L2,
        "L3": <int>CBookType.L3,
    },
    "Status": {
        "Ok": <int>CStatus.Ok, "OutputFull": <int>CStatus.OutputFull,
        "NeedMoreInput": <int>CStatus.NeedMoreInput, "WouldBlock": <int>CStatus.WouldBlock,
        "InvalidArgument": <int>CStatus.InvalidArgument,
        "UnknownInstrument": <int>CStatus.UnknownInstrument,
        "DecodeError": <int>CStatus.DecodeError, "NotMultiple": <int>CStatus.NotMultiple,
        "Overflow": <int>CStatus.Overflow, "SystemError": <int>CStatus.SystemError,
        "PeerClosed": <int>CStatus.PeerClosed, "BadAddress": <int>CStatus.BadAddress,
    },
}
# The `order_id` of a TRADING_PHASE event (lockstep.events.PHASE_SCOPE_* mirror these).
PHASE_SCOPES = {"instrument": kPhaseScopeInstrument, "session": kPhaseScopeSession}
ENUM_NAMES = {
    "Anomaly": {a: anomaly_name(<CAnomaly>a).decode() for a in range(kAnomalyKinds)},
    "Status": {v: status_name(<CStatus>v).decode() for v in ENUMERATORS["Status"].values()},
}

TOP_OF_BOOK_COLUMNS = (
    ("ts_recv", np.int64), ("ts_event", np.int64), ("instrument", np.uint32),
    ("bid_price", np.int64), ("bid_qty", np.int64), ("ask_price", np.int64), ("ask_qty", np.int64),
    ("valid", np.uint8),
)


cdef class Replayer:
    """Applies canonical event batches to one book per instrument (book_types: 'l2'/'l3').

    Also a read-only view of a Replayer owned elsewhere (the backtest engine's Market State), made
    by replayer_view(): reports and the state digest then have one implementation."""

    def __cinit__(self, book_types=None):
        if book_types is None:  # replayer_view() fills in the pointer
            return
        self.core.reset(new CReplayer(book_types_of(book_types)))
        self.ptr = self.core.get()

    def apply(self, cols, size_t size, tob=None):
        """Apply the first `size` events of `cols`. With `tob` (a dict of arrays shaped like
        TOP_OF_BOOK_COLUMNS with room for `size` rows), returns the number of top-of-book rows
        written (one per complete venue message)."""
        cdef CEventColumns view = columns_view(cols, size)
        cdef CTopOfBookColumns out
        cdef CTopOfBookColumns* out_ptr = NULL
        cdef int64_t[::1] ts_recv, ts_event, bid_price, bid_qty, ask_price, ask_qty
        cdef uint32_t[::1] instrument
        cdef uint8_t[::1] valid
        if tob is not None:
            ts_recv = tob["ts_recv"]; ts_event = tob["ts_event"]; instrument = tob["instrument"]
            bid_price = tob["bid_price"]; bid_qty = tob["bid_qty"]
            ask_price = tob["ask_price"]; ask_qty = tob["ask_qty"]; valid = tob["valid"]
            out.capacity = ts_recv.shape[0]
            if out.capacity < size:
                raise ValueError("top-of-book columns are shorter than the batch")
            if out.capacity:
                out.ts_recv = &ts_recv[0]; out.ts_event = &ts_event[0]; out.instrument = &instrument[0]
                out.bid_price = &bid_price[0]; out.bid_qty = &bid_qty[0]
                out.ask_price = &ask_price[0]; out.ask_qty = &ask_qty[0]; out.valid = &valid[0]
            out_ptr = &out
        if self.owner is not None:
            raise TypeError("a view of another component's Market State is read-only")
        cdef CStatus status
        with nogil:
            status = self.ptr.apply(view, out_ptr)
        check_status(<int>status, "replay")
        return out.size if out_ptr != NULL else 0

    @property
    def events_applied(self):
        return self.ptr.events_applied()

    def kind_counts(self):
        """{kind value: events} for kinds seen."""
        cdef int k
        out = {}
        for k in range(256):
            c = self.ptr.kind_count(<uint8_t>k)
            if c:
                out[k] = c
        return out

    def anomalies(self):
        """{name: (count, [(position, instrument), ...first few])}."""
        cdef size_t a
        cdef uint32_t j
        out = {}
        for a in range(kAnomalyKinds):
            log = &self.ptr.anomaly(<CAnomaly>a)
            out[anomaly_name(<CAnomaly>a).decode()] = (
                log.count, [(log.positions[j], log.instruments[j]) for j in range(log.kept)])
        return out

    def touch(self, uint32_t inst):
        """(bid_price, bid_qty, ask_price, ask_qty) in ticks/lots; qty 0 = empty side."""
        if inst >= self.ptr.instrument_count():
            raise IndexError(f"instrument {inst} out of range")
        cdef int64_t bp, bq, ap, aq
        self.ptr.touch(inst, &bp, &bq, &ap, &aq)
        return bp, bq, ap, aq

    def phase(self, uint32_t inst):
        """The trading phase instrument `inst` is in (a lockstep.enums.TradingPhase value)."""
        if inst >= self.ptr.instrument_count():
            raise IndexError(f"instrument {inst} out of range")
        return <int>self.ptr.phase(inst)

    def book_valid(self, uint32_t inst):
        """False from a GAP for the instrument until a BOOK_CLEAR restores its book."""
        if inst >= self.ptr.instrument_count():
            raise IndexError(f"instrument {inst} out of range")
        return self.ptr.book_valid(inst)

    def invalid_stretches(self):
        """(count, [(instrument, from_position, from_ts_recv, to_position or None, to_ts_recv)])
        of the stretches where a book was invalid; the first 4096 are kept."""
        cdef const vector[CInvalidStretch]* v = &self.ptr.invalid_stretches()
        cdef size_t i
        out = []
        for i in range(v.size()):
            st = &v.at(i)
            out.append((st.instrument, st.from_position, st.from_ts_recv,
                        None if st.to_position < 0 else st.to_position,
                        None if st.to_position < 0 else st.to_ts_recv))
        return self.ptr.invalid_stretch_count(), out

    def last_trade(self, uint32_t inst):
        if inst >= self.ptr.instrument_count():
            raise IndexError(f"instrument {inst} out of range")
        cdef const CLastTrade* t = &self.ptr.last_trade(inst)
        if not t.seen:
            return None
        return t.ts_recv, t.price, t.qty, t.side

    def serialize_state(self):
        """The canonical State bytes hashed by the state digest."""
        return self.ptr.serialize_state()


cdef Replayer replayer_view(const CReplayer* replayer, object owner):
    cdef Replayer view = Replayer.__new__(Replayer)
    view.ptr = <CReplayer*>replayer
    view.owner = owner  # keeps the owner, hence the pointee, alive
    return view


cdef vector[CBookType] book_types_of(object book_types) except *:
    cdef vector[CBookType] types
    labels = BookKind.labels()
    for t in book_types:
        if t not in labels:
            raise ValueError(f"book type must be {' or '.join(map(repr, labels))}, got {t!r}")
        types.push_back(<CBookType><uint8_t>BookKind.from_label(t))
    return types
