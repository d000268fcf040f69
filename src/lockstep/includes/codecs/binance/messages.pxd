# Mirrors include/lockstep/codecs/binance/messages.hpp.
from libc.stdint cimport uint8_t


cdef extern from "lockstep/codecs/binance/messages.hpp" namespace "lockstep::binance" nogil:
    cdef enum class CMarketType "lockstep::binance::MarketType"(uint8_t):
        Unknown, Spot, UsdM, CoinM

    const char* market_type_name(CMarketType m) noexcept
