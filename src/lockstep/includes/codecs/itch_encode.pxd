# Mirrors include/lockstep/codecs/itch_encode.hpp: every message type is reached by its type byte
# through wire.pxd's slots with CItchTypes.
cdef extern from "lockstep/codecs/itch_encode.hpp" namespace "lockstep::itch_encode" nogil:
    cdef cppclass CItchTypes "lockstep::itch_encode::Types":
        pass
