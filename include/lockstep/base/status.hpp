// Status codes returned by hot C++ calls instead of exceptions.
#pragma once

#include <cstdint>

namespace lockstep {

enum class Status : int32_t {
    Ok = 0,
    OutputFull = 1,       // the output columns are full: drain them and call again
    NeedMoreInput = 2,    // a partial record remains; feed more bytes (or finish)
    WouldBlock = 3,       // a non-blocking socket cannot proceed now: wait until it is ready
    InvalidArgument = 10,
    UnknownInstrument = 11,
    DecodeError = 20,     // the input is malformed; the decoder's error() says where and why
    NotMultiple = 21,     // a price or size is not a multiple of the instrument's increment
    Overflow = 22,        // a number does not fit the fixed-point range
    SystemError = 30,     // an operating-system call failed; the caller keeps its errno
    PeerClosed = 31,      // the other end closed the connection
    BadAddress = 32,      // an address that does not parse (the parser says why)
};

inline const char* status_name(Status s) noexcept {
    switch (s) {
        case Status::Ok: return "ok";
        case Status::OutputFull: return "output full";
        case Status::NeedMoreInput: return "need more input";
        case Status::WouldBlock: return "would block";
        case Status::InvalidArgument: return "invalid argument";
        case Status::UnknownInstrument: return "unknown instrument";
        case Status::DecodeError: return "decode error";
        case Status::NotMultiple: return "not a multiple of the increment";
        case Status::Overflow: return "overflow";
        case Status::SystemError: return "system call failed";
        case Status::PeerClosed: return "peer closed the connection";
        case Status::BadAddress: return "bad address";
    }
    return "unknown status";
}

}  // namespace lockstep
