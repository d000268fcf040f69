# Mirrors include/lockstep/codecs/ouch42.hpp (the messages the benchmarks drive directly; every
# type is reachable by its type byte through wire.pxd's slots with CInboundTypes/COutboundTypes).
from libc.stdint cimport uint8_t, uint32_t, uint64_t

from lockstep.includes.base.status cimport CStatus
from lockstep.includes.codecs.wire cimport CWireError


cdef extern from "lockstep/codecs/ouch42.hpp" namespace "lockstep::ouch42" nogil:
    cdef cppclass CInboundTypes "lockstep::ouch42::InboundTypes":
        pass

    cdef cppclass COutboundTypes "lockstep::ouch42::OutboundTypes":
        pass

    cdef cppclass CEnterOrder "lockstep::ouch42::EnterOrder":
        uint8_t token[14]
        uint32_t shares
        uint32_t price

    cdef cppclass CExecuted "lockstep::ouch42::Executed":
        uint64_t timestamp
        uint8_t token[14]
        uint32_t executed_shares
        uint64_t match_number

    cdef union CInboundBody "lockstep::ouch42::InboundBody":
        CEnterOrder enter

    cdef cppclass CInbound "lockstep::ouch42::Inbound":
        uint8_t type
        CInboundBody body

    cdef union COutboundBody "lockstep::ouch42::OutboundBody":
        CExecuted executed

    cdef cppclass COutbound "lockstep::ouch42::Outbound":
        uint8_t type
        COutboundBody body

    CStatus decode_inbound(const uint8_t* p, size_t n, CInbound& out, CWireError* err) noexcept
    CStatus decode_outbound(const uint8_t* p, size_t n, COutbound& out, CWireError* err) noexcept
    CStatus encode_message[M](const M& m, uint8_t* out, size_t capacity, size_t* written) noexcept
