# Mirrors include/lockstep/codecs/binance/catalogue.hpp.
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libcpp.string cimport string

from lockstep.includes.base.decimal cimport CIncrement


cdef extern from "lockstep/codecs/binance/catalogue.hpp" namespace "lockstep::binance" nogil:
    cdef enum class CIncrementSource "lockstep::binance::IncrementSource"(uint8_t):
        Explicit, Option, BuiltIn, Inferred

    cdef cppclass CFinerValue "lockstep::binance::FinerValue":
        bint found
        char text[48]
        uint32_t file
        uint64_t line
        uint64_t offset

    cdef cppclass CSymbolInfo "lockstep::binance::SymbolInfo":
        string symbol
        bint has_increments
        CIncrement price_increment
        CIncrement size_increment
        CIncrementSource source
        bint indexed
        uint32_t index
        bint seen
        uint64_t messages
        bint price_inferred_ok
        CIncrement price_inferred
        bint size_inferred_ok
        CIncrement size_inferred
        uint64_t price_values
        uint64_t size_values
        CFinerValue price_finer
        CFinerValue size_finer
