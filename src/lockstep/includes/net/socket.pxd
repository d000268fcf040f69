# Mirrors include/lockstep/net/socket.hpp.
from lockstep.includes.base.status cimport CStatus
from lockstep.includes.net.address cimport CEndpoint, CTransport


cdef extern from "lockstep/net/socket.hpp" namespace "lockstep::net" nogil:
    cdef cppclass CSysError "lockstep::net::SysError":
        const char* call
        int err

    int get_int_option(int fd, int level, int name) noexcept
    CStatus local_endpoint(int fd, CTransport t, CEndpoint& out, CSysError& e) noexcept
