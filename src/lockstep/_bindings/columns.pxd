# The one bridge from Python-owned column arrays to the core's CEventColumns view.
#
# Python owns event storage (numpy arrays, or Arrow buffers viewed through numpy); the core reads
# and writes through raw pointers into it. The caller keeps the arrays alive while the view is used.
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t

from lockstep.includes.core.events cimport CEventColumns


cdef inline CEventColumns columns_view(object cols, size_t size) except *:
    """A view of `size` events over `cols` (a mapping of column name to contiguous array).

    Read-only arrays (zero-copy from Arrow) are accepted: the core only reads through views built
    from them, so the const is dropped here, in one place.
    """
    cdef const int64_t[::1] ts_event = cols["ts_event"]
    cdef const int64_t[::1] ts_recv = cols["ts_recv"]
    cdef const uint64_t[::1] seq = cols["seq"]
    cdef const uint32_t[::1] instrument = cols["instrument"]
    cdef const uint8_t[::1] kind = cols["kind"]
    cdef const uint8_t[::1] side = cols["side"]
    cdef const uint8_t[::1] flags = cols["flags"]
    cdef const int64_t[::1] price = cols["price"]
    cdef const int64_t[::1] qty = cols["qty"]
    cdef const uint64_t[::1] order_id = cols["order_id"]
    cdef size_t capacity = ts_event.shape[0]
    for n in (ts_recv.shape[0], seq.shape[0], instrument.shape[0], kind.shape[0], side.shape[0],
              flags.shape[0], price.shape[0], qty.shape[0], order_id.shape[0]):
        if <size_t>n != capacity:
            raise ValueError("event columns differ in length")
    if size > capacity:
        raise ValueError(f"size {size} exceeds column length {capacity}")
    cdef CEventColumns view
    view.size = size
    view.capacity = capacity
    if capacity == 0:
        return view
    view.ts_event = <int64_t*>&ts_event[0]
    view.ts_recv = <int64_t*>&ts_recv[0]
    view.seq = <uint64_t*>&seq[0]
    view.instrument = <uint32_t*>&instrument[0]
    view.kind = <uint8_t*>&kind[0]
    view.side = <uint8_t*>&side[0]
    view.flags = <uint8_t*>&flags[0]
    view.price = <int64_t*>&price[0]
    view.qty = <int64_t*>&qty[0]
    view.order_id = <uint64_t*>&order_id[0]
    return view
