# Mirrors include/lockstep/core/execution.hpp.
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t

from lockstep.includes.core.events cimport CSide
from lockstep.includes.core.intents cimport CIntent, CTimeInForce
from lockstep.includes.core.risk cimport CRiskView


cdef extern from "lockstep/core/execution.hpp" namespace "lockstep" nogil:
    cdef enum class COrderStatus "lockstep::OrderStatus"(uint8_t):
        Submitted, Accepted, PartiallyFilled, Filled, Canceled, Rejected, Expired

    bint is_terminal(COrderStatus s) noexcept

    cdef enum class CExecResult "lockstep::ExecResult"(uint8_t):
        Ok, UnknownOrder, DuplicateOrder, InvalidTransition, Overfill, BadQty, BadIntent

    cdef cppclass CWide "lockstep::Wide":
        int64_t hi
        uint64_t lo

    double to_double(CWide w) noexcept

    cdef cppclass CPositionView "lockstep::PositionView":
        int64_t position
        CWide cost
        CWide realized
        CWide fees

    cdef cppclass CExecutionState "lockstep::ExecutionState":
        CExecutionState() except +
        void reserve(size_t orders, uint32_t instruments) except +
        # transitions
        CExecResult submit(const CIntent& i, int64_t ts) noexcept
        CExecResult on_accepted(uint64_t id, int64_t ts) noexcept
        CExecResult on_rejected(uint64_t id, int64_t ts) noexcept
        CExecResult on_canceled(uint64_t id, int64_t ts) noexcept
        CExecResult on_expired(uint64_t id, int64_t ts) noexcept
        CExecResult on_fill(uint64_t id, int64_t price, int64_t qty, int64_t fee, bint maker,
                            int64_t ts) noexcept
        CExecResult on_replaced(uint64_t id, int64_t new_price, int64_t new_qty,
                                int64_t ts) noexcept
        CExecResult on_trade_broken(uint32_t instrument, CSide side, int64_t price, int64_t qty,
                                    int64_t fee) noexcept
        CExecResult on_trade_corrected(uint32_t instrument, CSide side, int64_t old_price,
                                       int64_t new_price, int64_t qty,
                                       int64_t fee_change) noexcept
        void compact() noexcept
        # orders, by slot (dispatch order)
        size_t order_count() noexcept
        uint32_t slot(uint64_t id) noexcept
        uint64_t client_order_id(uint32_t s) noexcept
        uint32_t instrument(uint32_t s) noexcept
        CSide side(uint32_t s) noexcept
        CTimeInForce tif(uint32_t s) noexcept
        int64_t price(uint32_t s) noexcept
        int64_t qty(uint32_t s) noexcept
        int64_t filled_qty(uint32_t s) noexcept
        COrderStatus status(uint32_t s) noexcept
        int64_t ts_submitted(uint32_t s) noexcept
        int64_t ts_last(uint32_t s) noexcept
        # positions and aggregates
        CPositionView position(uint32_t instrument) noexcept
        CWide unrealized_wide(uint32_t instrument, int64_t mark) noexcept
        uint32_t open_orders(uint32_t instrument) noexcept
        int64_t open_buy_qty(uint32_t instrument) noexcept
        int64_t open_sell_qty(uint32_t instrument) noexcept
        int64_t own_qty_at(uint32_t instrument, CSide side, int64_t price) noexcept
        uint32_t open_orders_total() noexcept
        void fill_risk_view(uint32_t instrument, bint mid_known, int64_t mid,
                            CRiskView* out) noexcept

    const uint32_t kNoSlot "lockstep::ExecutionState::kNoSlot"
    const uint32_t kMaxExecInstruments "lockstep::ExecutionState::kMaxInstruments"
