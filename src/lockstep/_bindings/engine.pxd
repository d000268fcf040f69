# What compiled strategies cimport: the base class and the context they act through.
#
#     from lockstep._bindings.engine cimport CompiledStrategy
#     from lockstep.includes.runtime.engine cimport CEngine, COrderUpdate
#
# A compiled strategy overrides the cdef hooks below; they run without the GIL, called straight
# from the C++ event loop, and act on `ctx` (the engine: State queries and intents, see
# include/lockstep/runtime/engine.hpp "the strategy's context"). Returning nonzero stops the run.
from libc.stdint cimport int64_t, uint32_t, uint64_t

from lockstep.includes.runtime.engine cimport CEngine, COrderUpdate
from lockstep.includes.core.events cimport CSide


cdef class CompiledStrategy:
    cdef readonly object params
    cdef int on_start(self, CEngine* ctx) noexcept nogil
    cdef int on_book(self, CEngine* ctx, uint32_t instrument) noexcept nogil
    cdef int on_trade(self, CEngine* ctx, uint32_t instrument, int64_t price, int64_t qty,
                      CSide aggressor) noexcept nogil
    cdef int on_order(self, CEngine* ctx, const COrderUpdate* update) noexcept nogil
    cdef int on_timer(self, CEngine* ctx, uint64_t timer_id) noexcept nogil
    cdef int on_stop(self, CEngine* ctx) noexcept nogil
