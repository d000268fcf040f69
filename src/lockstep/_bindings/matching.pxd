from libc.stdint cimport uint32_t
from libcpp.memory cimport unique_ptr

from lockstep.includes.venue.replayed_markets cimport CReplayedMarkets


# Shared with itch_feed.pyx, whose feed is attached to one.
cdef class ReplayedMarkets:
    cdef unique_ptr[CReplayedMarkets] core
    cdef uint32_t checked(self, uint32_t inst) except? 0xFFFFFFFF
