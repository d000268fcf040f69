# cython: language_level=3, boundscheck=False, wraparound=False
"""Thin binding of lockstep::Engine (include/lockstep/runtime/engine.hpp): the processing chain.

lockstep.backtest.runner wires it up and lockstep.core.strategy is the public strategy API; this module holds
the pieces that must be compiled: the engine wrapper, the strategy Context, the CompiledStrategy
base class and the hook trampolines that let the C++ loop call a Python object (taking the GIL)
or a compiled strategy (no GIL).
"""
import traceback

import numpy as np

from lockstep.enums import TradingPhase

from cpython.buffer cimport PyBUF_READ
from cpython.exc cimport PyErr_CheckSignals
from cpython.memoryview cimport PyMemoryView_FromMemory
from cpython.pycapsule cimport PyCapsule_New
from cpython.ref cimport PyObject
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy
from libcpp.memory cimport unique_ptr
from libcpp.vector cimport vector

from lockstep._bindings.columns cimport columns_view
from lockstep._bindings.configs cimport (
    fill_order_rules, fill_queue_config, fill_risk_config, fill_risk_limits, fill_venue_config,
)
from lockstep._bindings.replay cimport book_types_of, replayer_view
from lockstep.includes.runtime.engine cimport (
    CDenialRecord, CEngine, CExecRecord, COrderUpdate, CPnlSample, CRiskHook, CRunStatus,
    CStrategyHooks, kSubscribeBook, kSubscribeTouch, kSubscribeTrades,
)
from lockstep.includes.core.events cimport CEventColumns, CSide
from lockstep.includes.core.execution cimport (
    CExecutionState, COrderStatus, CPositionView, is_terminal, kNoSlot, to_double,
)
from lockstep.includes.core.intents cimport CIntent, CTimeInForce
from lockstep.includes.core.order_rules cimport COrderRules
from lockstep.includes.core.queue cimport CQueueConfig, CQueueCounters
from lockstep.includes.core.replay cimport CBookType
from lockstep.includes.core.risk cimport (
    CRiskConfig, CTradingMode, CRiskLimits, CRiskReason, CRiskView, kRiskReasonCount,
)
from lockstep.includes.base.status cimport CStatus
from lockstep.includes.runtime.live cimport CLiveCore, CLiveCounters, CUnanswered
from lockstep.includes.venue.venue cimport CSimulatedVenueConfig, CVenueCounters

SUBSCRIBE_BOOK = kSubscribeBook
SUBSCRIBE_TOUCH = kSubscribeTouch
SUBSCRIBE_TRADES = kSubscribeTrades

# The C++ enumerators by name, which tests/test_enum_parity.py holds lockstep.enums to.
ENUMERATORS = {
    "RunStatus": {
        "Ok": <int>CRunStatus.Ok, "StrategyFailed": <int>CRunStatus.StrategyFailed,
        "RiskHookFailed": <int>CRunStatus.RiskHookFailed, "Livelock": <int>CRunStatus.Livelock,
    },
}

EXEC_COLUMNS = (
    ("ts_event", np.int64), ("ts_recv", np.int64), ("seq", np.uint64), ("instrument", np.uint32),
    ("kind", np.uint8), ("side", np.uint8), ("flags", np.uint8), ("price", np.int64),
    ("qty", np.int64), ("order_id", np.uint64), ("fee", np.int64),
)
DENIAL_COLUMNS = (
    ("ts_recv", np.int64), ("instrument", np.uint32), ("intent", np.uint8), ("side", np.uint8),
    ("tif", np.uint8), ("price", np.int64), ("qty", np.int64), ("client_order_id", np.uint64),
    ("target_order_id", np.uint64), ("reason", np.uint8),
)
SAMPLE_COLUMNS = (
    ("ts_recv", np.int64), ("instrument", np.uint32), ("position", np.int64), ("mid", np.int64),
    ("mid_known", np.bool_), ("realized", np.float64), ("unrealized", np.float64),
    ("fees", np.float64),
)


# Engine.drain reads each record vector as a numpy structured array over the C++ memory, one
# copy per column in numpy's C loops. A record's dtype names each field by the column it fills
# and reads it at its offset, with its own size and its column's kind (signed, unsigned, float,
# bool); the copy then widens it to the column's type, as an assignment in C++ would.

cdef tuple at(str column, const void* address, size_t size):
    return column, <size_t>address, size


cdef object record_dtype(const void* record, size_t size, tuple columns, tuple fields):
    """The dtype of a C++ record of `size` bytes at `record` whose `fields` (at() each) fill
    `columns`."""
    kinds = {name: np.dtype(kind).kind for name, kind in columns}
    if sorted(kinds) != sorted(column for column, _, _ in fields):
        raise TypeError("a record's fields and its columns differ")
    return np.dtype({
        "names": [column for column, _, _ in fields],
        "formats": [f"{kinds[column]}{n}" for column, _, n in fields],
        "offsets": [address - <size_t>record for _, address, _ in fields],
        "itemsize": size,
    })


cdef object exec_record_dtype():
    cdef CExecRecord r
    return record_dtype(&r, sizeof(r), EXEC_COLUMNS, (
        at("ts_event", &r.ts_event, sizeof(r.ts_event)),
        at("ts_recv", &r.ts_recv, sizeof(r.ts_recv)), at("seq", &r.reason, sizeof(r.reason)),
        at("instrument", &r.instrument, sizeof(r.instrument)),
        at("kind", &r.kind, sizeof(r.kind)), at("side", &r.side, sizeof(r.side)),
        at("flags", &r.flags, sizeof(r.flags)), at("price", &r.price, sizeof(r.price)),
        at("qty", &r.qty, sizeof(r.qty)), at("order_id", &r.order_id, sizeof(r.order_id)),
        at("fee", &r.fee, sizeof(r.fee)),
    ))


cdef object denial_record_dtype():
    cdef CDenialRecord r
    cdef const CIntent* i = &r.intent
    return record_dtype(&r, sizeof(r), DENIAL_COLUMNS, (
        at("ts_recv", &r.ts_recv, sizeof(r.ts_recv)), at("reason", &r.reason, sizeof(r.reason)),
        at("instrument", &i.instrument, sizeof(i.instrument)),
        at("intent", &i.kind, sizeof(i.kind)),
        at("side", &i.side, sizeof(i.side)), at("tif", &i.tif, sizeof(i.tif)),
        at("price", &i.price, sizeof(i.price)), at("qty", &i.qty, sizeof(i.qty)),
        at("client_order_id", &i.client_order_id, sizeof(i.client_order_id)),
        at("target_order_id", &i.target_order_id, sizeof(i.target_order_id)),
    ))


cdef object pnl_sample_dtype():
    cdef CPnlSample r
    return record_dtype(&r, sizeof(r), SAMPLE_COLUMNS, (
        at("ts_recv", &r.ts_recv, sizeof(r.ts_recv)),
        at("instrument", &r.instrument, sizeof(r.instrument)),
        at("position", &r.position, sizeof(r.position)), at("mid", &r.mid, sizeof(r.mid)),
        at("mid_known", &r.mid_known, sizeof(r.mid_known)),
        at("realized", &r.realized, sizeof(r.realized)),
        at("unrealized", &r.unrealized, sizeof(r.unrealized)), at("fees", &r.fees, sizeof(r.fees)),
    ))


EXEC_RECORD = exec_record_dtype()
DENIAL_RECORD = denial_record_dtype()
PNL_SAMPLE = pnl_sample_dtype()


cdef dict record_columns(const void* records, size_t n, record, tuple columns):
    """The `columns` ((name, numpy type)) of `n` C++ records at `records` laid out as `record`,
    copied out (the records may be cleared right after)."""
    if n == 0:
        return {name: np.empty(0, kind) for name, kind in columns}
    view = PyMemoryView_FromMemory(<char*>records, n * record.itemsize, PyBUF_READ)
    rows = np.frombuffer(view, dtype=record)
    return {name: rows[name].astype(kind) for name, kind in columns}


# ---------------------------------------------------------------------------------------------
# Compiled strategies


cdef class CompiledStrategy:
    """Base class of compiled strategies (a Cython cdef class; see _engine.pxd).

    Python-level setup(ctx) runs once before the run, with the GIL: convert params to ticks/lots
    there and subscribe. The cdef hooks then run without the GIL.
    """

    def __init__(self, params=None):
        self.params = params

    def setup(self, ctx):
        """Once, before the run, with the GIL: convert params to ticks and lots, subscribe. The
        default subscribes every book update of every traded instrument."""
        for i in ctx.traded:
            ctx.subscribe(i, book=True)

    cdef int on_start(self, CEngine* ctx) noexcept nogil:
        return 0

    cdef int on_book(self, CEngine* ctx, uint32_t instrument) noexcept nogil:
        return 0

    cdef int on_trade(self, CEngine* ctx, uint32_t instrument, int64_t price, int64_t qty,
                      CSide aggressor) noexcept nogil:
        return 0

    cdef int on_order(self, CEngine* ctx, const COrderUpdate* update) noexcept nogil:
        return 0

    cdef int on_timer(self, CEngine* ctx, uint64_t timer_id) noexcept nogil:
        return 0

    cdef int on_stop(self, CEngine* ctx) noexcept nogil:
        return 0


# The pointer is a borrowed reference to a CompiledStrategy the Engine wrapper keeps alive; the
# cast takes no reference, so these run without the GIL.
cdef int _c_on_start(void* s, CEngine& e) noexcept nogil:
    return (<CompiledStrategy>s).on_start(&e)

cdef int _c_on_book(void* s, CEngine& e, uint32_t inst) noexcept nogil:
    return (<CompiledStrategy>s).on_book(&e, inst)

cdef int _c_on_trade(void* s, CEngine& e, uint32_t inst, int64_t price, int64_t qty,
                     CSide aggressor) noexcept nogil:
    return (<CompiledStrategy>s).on_trade(&e, inst, price, qty, aggressor)

cdef int _c_on_order(void* s, CEngine& e, const COrderUpdate& u) noexcept nogil:
    return (<CompiledStrategy>s).on_order(&e, &u)

cdef int _c_on_timer(void* s, CEngine& e, uint64_t timer_id) noexcept nogil:
    return (<CompiledStrategy>s).on_timer(&e, timer_id)

cdef int _c_on_stop(void* s, CEngine& e) noexcept nogil:
    return (<CompiledStrategy>s).on_stop(&e)


# ---------------------------------------------------------------------------------------------
# Python strategies


cdef class OrderUpdate:
    """An own-order update: the execution event and the order after it (ticks, lots)."""
    cdef readonly int64_t ts_event, ts_recv, price, qty, fee, filled_qty, leaves_qty
    cdef readonly uint64_t order_id
    cdef readonly uint32_t instrument
    cdef readonly int kind, side, status, reason
    cdef readonly bint maker

    def __repr__(self):
        return (f"OrderUpdate(kind={self.kind}, order_id={self.order_id}, "
                f"instrument={self.instrument}, side={self.side}, price={self.price}, "
                f"qty={self.qty}, status={self.status}, filled_qty={self.filled_qty}, "
                f"leaves_qty={self.leaves_qty})")


cdef OrderUpdate update_from(const COrderUpdate& u):
    cdef OrderUpdate o = OrderUpdate.__new__(OrderUpdate)
    o.ts_event = u.ts_event
    o.ts_recv = u.ts_recv
    o.price = u.price
    o.qty = u.qty
    o.fee = u.fee
    o.filled_qty = u.filled_qty
    o.leaves_qty = u.leaves_qty
    o.order_id = u.order_id
    o.instrument = u.instrument
    o.kind = <int>u.kind
    o.side = <int>u.side
    o.status = <int>u.status
    o.reason = u.reason
    o.maker = u.maker
    return o


cdef class _PyBinding:
    """What the trampolines hold for a Python strategy: its bound hooks, the Context, and the
    first exception it raised (the run stops there)."""
    cdef object strategy, ctx
    cdef object start_m, book_m, trade_m, order_m, timer_m, stop_m
    cdef public object error  # (exception, formatted traceback)
    cdef public bint interrupted  # Ctrl-C landed inside a hook: the user's stop, not the strategy's failure

    # One entry per arity rather than hook(ctx, *args): a strategy's on_book runs on every book
    # update, and packing a tuple per call costs a measurable share of a Python strategy's run.
    cdef int fail(self, BaseException exc) noexcept:
        if isinstance(exc, KeyboardInterrupt):
            self.interrupted = True
        else:
            self.error = (exc, traceback.format_exc())
        return 1

    cdef int call0(self, object hook) noexcept:
        try:
            hook(self.ctx)
        except BaseException as exc:
            return self.fail(exc)
        return 0

    cdef int call1(self, object hook, object a) noexcept:
        try:
            hook(self.ctx, a)
        except BaseException as exc:
            return self.fail(exc)
        return 0

    cdef int call4(self, object hook, object a, object b, object c, object d) noexcept:
        try:
            hook(self.ctx, a, b, c, d)
        except BaseException as exc:
            return self.fail(exc)
        return 0


cdef int _py_on_start(void* s, CEngine& e) noexcept with gil:
    return (<_PyBinding>s).call0((<_PyBinding>s).start_m)

cdef int _py_on_book(void* s, CEngine& e, uint32_t inst) noexcept with gil:
    return (<_PyBinding>s).call1((<_PyBinding>s).book_m, inst)

cdef int _py_on_trade(void* s, CEngine& e, uint32_t inst, int64_t price, int64_t qty,
                      CSide aggressor) noexcept with gil:
    return (<_PyBinding>s).call4((<_PyBinding>s).trade_m, inst, price, qty, <int>aggressor)

cdef int _py_on_order(void* s, CEngine& e, const COrderUpdate& u) noexcept with gil:
    return (<_PyBinding>s).call1((<_PyBinding>s).order_m, update_from(u))

cdef int _py_on_timer(void* s, CEngine& e, uint64_t timer_id) noexcept with gil:
    return (<_PyBinding>s).call1((<_PyBinding>s).timer_m, timer_id)

cdef int _py_on_stop(void* s, CEngine& e) noexcept with gil:
    return (<_PyBinding>s).call0((<_PyBinding>s).stop_m)


cdef class _RiskBinding:
    cdef object rule  # (intent tuple, view tuple) -> bool: True denies
    cdef public object error
    cdef public bint interrupted

    cdef int ask(self, uint32_t instrument, int kind, int side, int tif, int64_t price,
                 int64_t qty, uint64_t client_order_id, uint64_t target_order_id,
                 int64_t position, uint32_t open_orders, int64_t open_buy_qty,
                 int64_t open_sell_qty, object mid, uint32_t open_orders_total):
        try:
            deny = self.rule(
                (instrument, kind, side, tif, price, qty, client_order_id, target_order_id),
                (position, open_orders, open_buy_qty, open_sell_qty, mid, open_orders_total))
            return 1 if deny else 0
        except KeyboardInterrupt:
            self.interrupted = True
            return -1
        except BaseException as exc:
            self.error = (exc, traceback.format_exc())
            return -1


cdef int _py_risk_check(void* s, const CIntent& i, const CRiskView& v) noexcept with gil:
    return (<_RiskBinding>s).ask(
        i.instrument, <int>i.kind, <int>i.side, <int>i.tif, i.price, i.qty, i.client_order_id,
        i.target_order_id, v.position, v.open_orders, v.open_buy_qty, v.open_sell_qty,
        v.mid if v.mid_known else None, v.open_orders_total)


# ---------------------------------------------------------------------------------------------
# The context


cdef class Context:
    """What a strategy reads and does, in core units (ticks, lots) with real-unit helpers.

    Read: now, touch(), book() (top-N numpy views), mid(), position(), open_orders(), own_qty(), order(),
    realized()/unrealized()/fees() (quote currency). Do: submit_limit(), submit_market(),
    cancel(), replace(), set_timer(), subscribe().
    """
    cdef CEngine* e
    cdef Engine owner
    cdef public object instruments  # the dataset's Instrument table
    cdef public tuple traded        # indices of the instruments this run trades
    cdef object _price_scale, _size_scale
    cdef object _bid_px, _bid_qty, _ask_px, _ask_qty
    cdef int64_t[::1] bid_px_v, bid_qty_v, ask_px_v, ask_qty_v

    def __init__(self, Engine owner, instruments, traded):
        self.owner = owner
        self.e = owner.core.get()
        self.instruments = list(instruments)
        self.traded = tuple(traded)
        self._price_scale = [float(i.price_increment) for i in self.instruments]
        self._size_scale = [float(i.size_increment) for i in self.instruments]
        self._resize(10)

    cdef _resize(self, Py_ssize_t n):
        self._bid_px = np.zeros(n, np.int64)
        self._bid_qty = np.zeros(n, np.int64)
        self._ask_px = np.zeros(n, np.int64)
        self._ask_qty = np.zeros(n, np.int64)
        self.bid_px_v = self._bid_px
        self.bid_qty_v = self._bid_qty
        self.ask_px_v = self._ask_px
        self.ask_qty_v = self._ask_qty

    cdef inline void check(self, uint32_t inst) except *:
        if inst >= self.e.instrument_count():
            raise IndexError(f"instrument {inst} is not in this dataset "
                             f"({self.e.instrument_count()} instruments)")

    @property
    def now(self):
        """Core time of the current step (ts_recv of the event being processed), ns."""
        return self.e.now()

    def subscribe(self, uint32_t instrument, *, book=False, touch=False, trades=False):
        """Which market events of `instrument` call the strategy: every complete message that
        changed the book (book), only those that changed the best bid/ask (touch), trades."""
        self.check(instrument)
        cdef uint8_t mask = 0
        if book:
            mask |= kSubscribeBook
        if touch:
            mask |= kSubscribeTouch
        if trades:
            mask |= kSubscribeTrades
        self.e.set_subscriptions(instrument, mask)

    def touch(self, uint32_t instrument):
        """(bid_price, bid_qty, ask_price, ask_qty) in ticks/lots; qty 0 = that side is empty."""
        cdef int64_t bp, bq, ap, aq
        if not self.e.touch(instrument, &bp, &bq, &ap, &aq):
            self.check(instrument)
        return bp, bq, ap, aq

    def book_valid(self, uint32_t instrument):
        """False from a feed gap until a snapshot restores the book; meanwhile touch() and book()
        show it empty and on_book is not called."""
        self.check(instrument)
        return self.e.book_valid(instrument)

    def trading_phase(self, uint32_t instrument):
        """The lockstep.enums.TradingPhase the venue last announced for the instrument (UNKNOWN
        if the data never say). Outside CONTINUOUS the book may rest crossed and the simulated
        venue rejects new orders with NOT_TRADING."""
        self.check(instrument)
        return TradingPhase(<int>self.e.trading_phase(instrument))

    def mid(self, uint32_t instrument):
        """(best bid + best ask) // 2 in ticks, None unless both sides are present."""
        cdef int64_t m
        self.check(instrument)
        return m if self.e.mid(instrument, &m) else None

    def book(self, uint32_t instrument, Py_ssize_t depth=10):
        """Top `depth` levels as numpy views (bid_px, bid_qty, ask_px, ask_qty), best first, in
        ticks/lots. The arrays are reused by the next call: copy what you keep."""
        self.check(instrument)
        if depth < 0:
            raise ValueError("depth must be >= 0")
        if depth > self._bid_px.shape[0]:
            self._resize(depth)
        cdef size_t nb = 0, na = 0
        if depth > 0:
            nb = self.e.depth(instrument, CSide.Bid, depth, &self.bid_px_v[0], &self.bid_qty_v[0])
            na = self.e.depth(instrument, CSide.Ask, depth, &self.ask_px_v[0], &self.ask_qty_v[0])
        return (self._bid_px[:nb], self._bid_qty[:nb], self._ask_px[:na], self._ask_qty[:na])

    def position(self, uint32_t instrument):
        """Signed position in lots (long > 0)."""
        self.check(instrument)
        return self.e.position(instrument)

    def open_orders(self, uint32_t instrument):
        """How many of our orders on `instrument` are live: dispatched to the venue and not yet
        filled, canceled, rejected or expired. Intents still waiting in the queue are not orders
        yet and do not count."""
        self.check(instrument)
        return self.e.open_orders(instrument)

    def own_qty(self, uint32_t instrument, int side, int64_t price):
        """Lots of the level `price` on `side` (1 bid, 2 ask) that are ours: the unfilled rest of
        our orders the venue has acknowledged there. A live feed shows our orders among everyone's
        in book(); subtract this to see the others' liquidity."""
        self.check(instrument)
        if side != 1 and side != 2:
            raise ValueError(f"side must be 1 (bid) or 2 (ask), not {side}")
        return self.e.execution().own_qty_at(instrument, <CSide>side, price)

    def order(self, uint64_t order_id):
        """(instrument, side, price, qty, filled_qty, status) of a live or recently ended order,
        None if unknown (never dispatched, or ended long ago and compacted away)."""
        cdef const CExecutionState* ex = &self.e.execution()
        cdef uint32_t s = ex.slot(order_id)
        if s == kNoSlot:
            return None
        return (ex.instrument(s), <int>ex.side(s), ex.price(s), ex.qty(s), ex.filled_qty(s),
                <int>ex.status(s))

    def realized(self, uint32_t instrument):
        """Realized PnL in quote currency, fees excluded."""
        self.check(instrument)
        return (to_double(self.e.position_view(instrument).realized)
                * self._price_scale[instrument] * self._size_scale[instrument])

    def unrealized(self, uint32_t instrument):
        """Unrealized PnL at the mid (or the last mid seen), quote currency."""
        self.check(instrument)
        return (to_double(self.e.unrealized(instrument))
                * self._price_scale[instrument] * self._size_scale[instrument])

    def fees(self, uint32_t instrument):
        """Fees paid (negative: rebates earned), quote currency."""
        self.check(instrument)
        return (to_double(self.e.position_view(instrument).fees) * 1e-6
                * self._price_scale[instrument] * self._size_scale[instrument])

    @property
    def last_denial(self):
        """RiskReason value of the last denied intent (0 if none yet)."""
        return <int>self.e.last_denial()

    def submit_limit(self, uint32_t instrument, int side, int64_t price, int64_t qty,
                     int tif=0, uint64_t client_order_id=0):
        """A limit order (ticks, lots; tif 0 GTC, 1 IOC, 2 post-only). Returns its client order
        id, or 0 when denied (last_denial says why)."""
        return self.e.submit_limit(instrument, <CSide><uint8_t>side, price, qty,
                                   <CTimeInForce><uint8_t>tif, client_order_id)

    def submit_market(self, uint32_t instrument, int side, int64_t qty,
                      uint64_t client_order_id=0):
        """A market order for `qty` lots (an IOC that takes whatever the book offers, the rest
        expiring). Returns its client order id, or 0 when denied (last_denial says why)."""
        return self.e.submit_market(instrument, <CSide><uint8_t>side, qty, client_order_id)

    def cancel(self, uint64_t order_id):
        """True when the cancel was queued (or removed its undispatched submit)."""
        return self.e.cancel(order_id)

    def replace(self, uint64_t order_id, int64_t price, int64_t qty):
        """Move a live order to `price` with total quantity `qty` (filled lots included)."""
        return self.e.replace(order_id, price, qty)

    def set_timer(self, int64_t ts, uint64_t timer_id=0):
        """Call on_timer(ctx, timer_id) at core time ts (now, if ts is in the past)."""
        self.e.set_timer(ts, timer_id)

    # Real-unit helpers: exact for decimal strings, so a config's "0.001" is exactly 1 lot.
    def to_ticks(self, uint32_t instrument, price):
        """A real price (decimal string, Decimal, int or float) as an exact number of ticks of
        `instrument`; ValueError when it is not a whole number of ticks."""
        self.check(instrument)
        return self.instruments[instrument].to_ticks(price)

    def to_lots(self, uint32_t instrument, qty):
        """A real quantity as an exact number of lots of `instrument`; ValueError when it is not
        a whole number of lots."""
        self.check(instrument)
        return self.instruments[instrument].to_lots(qty)

    def price(self, uint32_t instrument, int64_t ticks):
        """`ticks` of `instrument` as a float price, for display and logs (not exact)."""
        return ticks * self._price_scale[instrument]

    def size(self, uint32_t instrument, int64_t lots):
        """`lots` of `instrument` as a float quantity, for display and logs (not exact)."""
        return lots * self._size_scale[instrument]


# ---------------------------------------------------------------------------------------------
# The engine


cdef class Engine:
    """lockstep::Engine for one run. Configure, bind a strategy, run batches, drain records."""
    cdef unique_ptr[CEngine] core
    cdef object strategy_ref   # keeps the bound strategy (and its binding) alive
    cdef _PyBinding py_binding
    cdef _RiskBinding risk_binding

    def __cinit__(self, book_types):
        self.core.reset(new CEngine(book_types_of(book_types)))

    # ---- configuration

    # Each takes the Python mirror of one C++ config struct (lockstep.core.risk.RiskConfig /
    # RiskLimits, lockstep.core.queue.QueueConfig, lockstep.venue.matching.SimulatedVenueConfig)
    # and returns the core's Status value.

    def configure_risk(self, config):
        cdef CRiskConfig c
        fill_risk_config(&c, config)
        return <int>self.core.get().risk().set_config(c)

    def set_limits(self, uint32_t instrument, limits):
        cdef CRiskLimits l
        fill_risk_limits(&l, limits)
        return <int>self.core.get().risk().set_limits(instrument, l)

    def configure_queue(self, config):
        cdef CQueueConfig c
        fill_queue_config(&c, config)
        return <int>self.core.get().configure_queue(c)

    def configure_venue(self, config):
        cdef CSimulatedVenueConfig c
        fill_venue_config(&c, config)
        return <int>self.core.get().configure_venue(c)

    def set_order_rules(self, uint32_t instrument, rules):
        """Risk's copy of the instrument's order-entry rules (a lockstep.core.risk.OrderRules,
        data units)."""
        cdef COrderRules r
        fill_order_rules(&r, rules)
        return <int>self.core.get().risk().set_order_rules(instrument, r)

    def set_venue_order_rules(self, uint32_t instrument, rules):
        """The simulated venue's order-entry rules of the instrument; after configure_venue."""
        cdef COrderRules r
        fill_order_rules(&r, rules)
        return <int>self.core.get().set_venue_order_rules(instrument, r)

    def set_sample_interval(self, int64_t interval_ns):
        self.core.get().set_sample_interval(interval_ns)

    def track(self, uint32_t instrument):
        self.core.get().track(instrument)

    def bind_strategy(self, strategy, Context ctx, hooks):
        """Point the engine's hooks at `strategy`: a CompiledStrategy runs without the GIL;
        anything else is called as Python, and only for the hooks named in `hooks` (the caller
        says which: lockstep.core.strategy.overridden gives the ones a strategy defines)."""
        cdef CStrategyHooks h
        cdef _PyBinding b
        if isinstance(strategy, CompiledStrategy):
            h.self = <void*>strategy
            h.on_start = _c_on_start
            h.on_book = _c_on_book
            h.on_trade = _c_on_trade
            h.on_order = _c_on_order
            h.on_timer = _c_on_timer
            h.on_stop = _c_on_stop
            self.py_binding = None
        else:
            b = _PyBinding()
            b.strategy = strategy
            b.ctx = ctx
            h.self = <void*>b
            if "on_start" in hooks:
                b.start_m = strategy.on_start
                h.on_start = _py_on_start
            if "on_book" in hooks:
                b.book_m = strategy.on_book
                h.on_book = _py_on_book
            if "on_trade" in hooks:
                b.trade_m = strategy.on_trade
                h.on_trade = _py_on_trade
            if "on_order" in hooks:
                b.order_m = strategy.on_order
                h.on_order = _py_on_order
            if "on_timer" in hooks:
                b.timer_m = strategy.on_timer
                h.on_timer = _py_on_timer
            if "on_stop" in hooks:
                b.stop_m = strategy.on_stop
                h.on_stop = _py_on_stop
            self.py_binding = b
        self.strategy_ref = strategy
        self.core.get().set_strategy(h)

    def bind_risk_rule(self, rule):
        """`rule(intent_tuple, view_tuple) -> bool` (True denies) for submits/replaces the
        built-in checks allowed."""
        cdef CRiskHook h
        b = _RiskBinding()
        b.rule = rule
        self.risk_binding = b
        h.self = <void*>b
        h.check = _py_risk_check
        self.core.get().set_risk_hook(h)

    # ---- running

    # A KeyboardInterrupt comes out of run() and finish(), the records of the events run so far
    # left to drain, whether it was raised in a Python hook (which then stopped the run) or the
    # signal came while the compiled loop ran without the GIL: Python only notes it then, so its
    # handler is run here, as the call returns, before the caller's next step.

    def run(self, cols, size_t size):
        """Run `size` market events of `cols`; returns a RunStatus value."""
        cdef CEventColumns view = columns_view(cols, size)
        cdef CRunStatus status
        with nogil:
            status = self.core.get().run(view)
        self._raise_if_interrupted()
        return <int>status

    def finish(self):
        cdef CRunStatus status
        with nogil:
            status = self.core.get().finish()
        self._raise_if_interrupted()
        return <int>status

    cdef _raise_if_interrupted(self):
        if (self.py_binding is not None and self.py_binding.interrupted) or \
                (self.risk_binding is not None and self.risk_binding.interrupted):
            raise KeyboardInterrupt
        PyErr_CheckSignals()

    @property
    def failure(self):
        """(status, stream position, core time, python error or None) of a failed run."""
        cdef CEngine* e = self.core.get()
        error = None
        if self.py_binding is not None and self.py_binding.error is not None:
            error = self.py_binding.error
        elif self.risk_binding is not None and self.risk_binding.error is not None:
            error = self.risk_binding.error
        return <int>e.failed(), e.failed_position(), e.failed_ts(), error

    def pending_records(self):
        """How many records (executions, denials, samples, decisions) wait to be drained: a live
        session drains only when some do."""
        cdef CEngine* e = self.core.get()
        return (e.exec_records().size() + e.denials().size() + e.samples().size()
                + e.decisions().size())

    def decisions(self):
        """Every intent's verdict since the last drain (with set_record_decisions, live sessions),
        DENIAL_COLUMNS with reason 0 (allowed) for the intents queued. Read before drain(), which
        clears them."""
        cdef CEngine* e = self.core.get()
        return record_columns(e.decisions().data(), e.decisions().size(), DENIAL_RECORD,
                              DENIAL_COLUMNS)

    def drain(self):
        """Records produced since the last drain, as dicts of numpy arrays; then clears them."""
        cdef CEngine* e = self.core.get()
        out = (record_columns(e.exec_records().data(), e.exec_records().size(), EXEC_RECORD,
                              EXEC_COLUMNS),
               record_columns(e.denials().data(), e.denials().size(), DENIAL_RECORD,
                              DENIAL_COLUMNS),
               record_columns(e.samples().data(), e.samples().size(), PNL_SAMPLE, SAMPLE_COLUMNS))
        e.clear_records()
        return out

    # ---- reports

    @property
    def market(self):
        """Market State as a read-only lockstep._bindings.replay.Replayer view."""
        return replayer_view(&self.core.get().market(), self)

    def serialize_state(self):
        """Execution-side State bytes (docs/backtest.md, "Digest")."""
        return self.core.get().serialize_state()

    def counters(self):
        cdef CEngine* e = self.core.get()
        c = e.counters()
        q = e.queue().counters()
        v = e.venue().counters()
        return {
            "events": c.events, "strategy_calls": c.strategy_calls, "intents": c.intents,
            "denied": c.denied, "orders": c.orders, "cancels": c.cancels,
            "replaces": c.replaces, "responses": c.responses, "fills": c.fills,
            "state_errors": c.state_errors, "timers": c.timers,
            "queue": {
                "pushed": q.pushed, "dispatched": q.dispatched,
                "canceled_before_dispatch": q.canceled_before_dispatch,
                "replaces_dropped": q.replaces_dropped, "rejected_full": q.rejected_full,
                "deferred_by_rate": q.deferred_by_rate,
                "deferred_by_in_flight": q.deferred_by_in_flight,
                "pending_at_end": e.queue().pending(),
            },
            "venue": {
                "messages": v.messages, "accepted": v.accepted, "rejected": v.rejected,
                "fills": v.fills, "canceled": v.canceled, "expired": v.expired,
                "replaced": v.replaced, "cancel_rejected": v.cancel_rejected,
                "replace_rejected": v.replace_rejected,
                "messages_in_transit_at_end": e.venue().in_transit(),
                "responses_in_flight_at_end": e.responses_in_flight(),
            },
        }

    def risk_counts(self):
        """{RiskReason value: count}, Allowed included."""
        cdef CEngine* e = self.core.get()
        cdef size_t r
        return {r: e.risk().count(<CRiskReason>r) for r in range(kRiskReasonCount)}


# ---------------------------------------------------------------------------------------------
# The live deployment


cdef class LiveCore:
    """lockstep::live::LiveCore (include/lockstep/runtime/live.hpp) over an Engine: the engine's
    venue is then OUCH 4.2, and it moves by what the caller hands in (ITCH message blocks, OUCH
    messages, clock ticks, feed-gap notices), each with its receive stamp. Every input returns a
    RunStatus value; `take_outbound()` gives the OUCH messages dispatched since the last call."""
    cdef unique_ptr[CLiveCore] core
    cdef Engine engine

    def __cinit__(self, Engine engine, int64_t day_start_ns):
        self.engine = engine
        self.core.reset(new CLiveCore(engine.core.get()[0], day_start_ns))

    def configure_orders(self, bytes token_prefix, bytes firm):
        """Order tokens start with `token_prefix` (up to 4 characters, no digit or space); OUCH
        firm is `firm` (4 bytes). Returns the core's Status value."""
        if len(firm) != 4:
            return <int>CStatus.InvalidArgument
        return <int>self.core.get().configure_orders(token_prefix, len(token_prefix), firm)

    def configure_fees(self, int64_t maker_ppm, int64_t taker_ppm):
        """Fills are charged maker_ppm / taker_ppm of their notional (OUCH reports no fees)."""
        self.core.get().configure_fees(maker_ppm, taker_ppm)

    def add_instrument(self, uint32_t index, bytes stock, uint32_t price_multiplier):
        """Engine instrument `index` is the feed's stock `stock` (8 bytes, space-padded)."""
        if len(stock) != 8:
            return <int>CStatus.InvalidArgument
        return <int>self.core.get().add_instrument(index, stock, price_multiplier)

    def set_next_sequence(self, uint64_t sequence):
        self.core.get().set_next_sequence(sequence)

    def on_itch(self, const uint8_t[::1] blocks, uint64_t first_sequence, int64_t stamp):
        cdef CRunStatus status
        cdef const uint8_t* p = &blocks[0] if blocks.shape[0] else NULL
        with nogil:
            status = self.core.get().on_itch(p, blocks.shape[0], first_sequence, stamp)
        self.engine._raise_if_interrupted()
        return <int>status

    def on_ouch(self, const uint8_t[::1] message, int64_t stamp):
        cdef CRunStatus status
        cdef const uint8_t* p = &message[0] if message.shape[0] else NULL
        with nogil:
            status = self.core.get().on_ouch(p, message.shape[0], stamp)
        self.engine._raise_if_interrupted()
        return <int>status

    def on_tick(self, int64_t stamp):
        cdef CRunStatus status
        with nogil:
            status = self.core.get().on_tick(stamp)
        self.engine._raise_if_interrupted()
        return <int>status

    def on_feed_gap(self, uint64_t expected, int64_t stamp):
        cdef CRunStatus status
        with nogil:
            status = self.core.get().on_feed_gap(expected, stamp)
        self.engine._raise_if_interrupted()
        return <int>status

    def on_snapshot(self, const uint8_t[::1] blocks, uint64_t next_sequence, int64_t stamp):
        cdef CRunStatus status
        cdef const uint8_t* p = &blocks[0] if blocks.shape[0] else NULL
        with nogil:
            status = self.core.get().on_snapshot(p, blocks.shape[0], next_sequence, stamp)
        self.engine._raise_if_interrupted()
        return <int>status

    def on_mode(self, int mode, int64_t stamp):
        """The trading mode (lockstep.enums.TradingMode value) from `stamp` on."""
        cdef CRunStatus status
        if not 0 <= mode <= <int>CTradingMode.Halted:
            raise ValueError(f"trading mode {mode} is not a lockstep.enums.TradingMode value")
        with nogil:
            status = self.core.get().on_mode(<CTradingMode><uint8_t>mode, stamp)
        self.engine._raise_if_interrupted()
        return <int>status

    def on_kill(self, bint on, int64_t stamp):
        """The kill switch on (every open order cancelled; only cancels pass) or off."""
        cdef CRunStatus status
        with nogil:
            status = self.core.get().on_kill(on, stamp)
        self.engine._raise_if_interrupted()
        return <int>status

    def on_order_entry(self, bint up, int64_t stamp):
        """The order-entry session down (False) or logged in again (True): the open orders are
        reconciled (runtime/live.hpp, OuchVenue::set_up)."""
        cdef CRunStatus status
        with nogil:
            status = self.core.get().on_order_entry(up, stamp)
        self.engine._raise_if_interrupted()
        return <int>status

    def on_feed_session(self, int64_t stamp):
        """The feed's MoldUDP64 session changed: every book invalid, the new session's
        sequence numbers taken from its first block."""
        cdef CRunStatus status
        with nogil:
            status = self.core.get().on_feed_session(stamp)
        self.engine._raise_if_interrupted()
        return <int>status

    def end_input(self):
        """Ends the input just applied (call once after each; LiveCore::end_input: its outputs
        hashed for the digest) and takes its outputs, then cleared: (decisions, executions,
        outbound, samples) as bytes: decisions and execution records packed in the journal's
        layouts (lockstep.live.journal.DECISION, EXECUTION), the OUCH messages it dispatched
        ([u16 length][message] each), its PnL samples as PNL_SAMPLE rows."""
        cdef CLiveCore* c = self.core.get()
        cdef CEngine* e = &c.engine()
        c.end_input()
        cdef const vector[uint8_t]* d = &c.decisions()
        cdef const vector[uint8_t]* x = &c.executions()
        cdef const vector[uint8_t]* o = &c.outbound()
        cdef const vector[CPnlSample]* s = &e.samples()
        out = ((<const char*>d.data())[:d.size()] if d.size() else b"",
               (<const char*>x.data())[:x.size()] if x.size() else b"",
               (<const char*>o.data())[:o.size()] if o.size() else b"",
               (<const char*>s.data())[:s.size() * sizeof(CPnlSample)] if s.size() else b"")
        c.clear_packed()
        c.clear_outbound()
        e.clear_records()
        return out

    def outputs_digest(self):
        """SHA-256 (32 bytes) of every output end_input() hashed so far (docs/live.md, "Digest")."""
        cdef uint8_t out[32]
        self.core.get().outputs_digest(out)
        return out[:32]

    def native(self):
        """The C++ core in a capsule, for a C++ loop that drives it
        (lockstep._bindings.live_loop); valid while this object lives."""
        return PyCapsule_New(<void*>self.core.get(), b"lockstep::live::LiveCore", NULL)

    def raise_if_interrupted(self):
        """KeyboardInterrupt if a signal or a Python hook asked for it while a C++ loop ran
        this core without the GIL (as every input method here does on return)."""
        self.engine._raise_if_interrupted()

    @property
    def next_sequence(self):
        return self.core.get().next_sequence()

    def set_held_bytes(self, size_t n):
        """How much feed the core holds while its books are invalid (64 MiB unless set)."""
        self.core.get().set_held_bytes(n)

    @property
    def stamp(self):
        """The last receive stamp applied (stamps never go back)."""
        return self.core.get().stamp()

    def unanswered(self, int64_t asked_by):
        """Live orders waiting for an answer the venue owes them (an Enter Order not Accepted, a
        replace or a cancel not answered) asked at or before `asked_by` (a stamp): (how many,
        the stamp of the earliest such request, or None when there is none)."""
        cdef CUnanswered u = self.core.get().unanswered(asked_by)
        return u.orders, (None if u.orders == 0 else u.oldest_ns)

    def counters(self):
        cdef CLiveCore* c = self.core.get()
        cdef const CLiveCounters* k = &c.counters()
        return {
            "itch_inputs": k.itch_inputs, "itch_messages": k.itch_messages,
            "itch_duplicates": k.itch_duplicates, "itch_skipped": k.itch_skipped,
            "itch_empty_blocks": k.itch_empty_blocks, "itch_problems": k.itch_problems,
            "itch_unmapped": k.itch_unmapped,
            "off_tick": k.off_tick, "ouch_messages": k.ouch_messages,
            "ouch_undecodable": k.ouch_undecodable, "ouch_unknown_order": k.ouch_unknown_order,
            "ouch_system_events": k.ouch_system_events,
            "ouch_broken_trades": k.ouch_broken_trades,
            "ouch_price_corrections": k.ouch_price_corrections,
            "ouch_unknown_trades": k.ouch_unknown_trades,
            "ouch_cancel_pending": k.ouch_cancel_pending, "ticks": k.ticks, "gaps": k.gaps,
            "controls": k.controls,
            "dispatched": k.dispatched, "unsendable": k.unsendable,
            "order_entry_downs": k.order_entry_downs, "order_entry_ups": k.order_entry_ups,
            "held": k.held, "resent": k.resent, "feed_sessions": k.feed_sessions,
            "snapshots": k.snapshots, "snapshot_messages": k.snapshot_messages,
            "snapshot_continued": k.snapshot_continued, "held_overflows": k.held_overflows,
            "told_runs_forgotten": k.told_runs_forgotten,
            "trades_told_before": k.trades_told_before,
            "live_orders": c.live_orders(),
        }
