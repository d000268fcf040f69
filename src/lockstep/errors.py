"""Exceptions raised by lockstep itself.

Everything lockstep raises on purpose derives from LockstepError, so callers can tell our
diagnoses apart from bugs (TypeError, ...). Keep this module small and dependency-free: it is
the ground floor every layer (bindings included) may import.

A C++ Status becomes a Python exception in exactly one place, check_status(status, what).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from lockstep.enums import Status, WireProblem


class LockstepError(Exception):
    """Base class of lockstep's own errors."""


class DecodeError(LockstepError):
    """Input that cannot be decoded, located in its source.

    Attributes (each None when unknown):
        path: the file (or stream name) the input came from.
        line: 1-based line number within that file, for line-oriented formats.
        offset: byte offset within the file's (uncompressed) content.
        reason: what was wrong, in words.
    """

    def __init__(
        self,
        reason: str,
        *,
        path: str | os.PathLike[str] | None = None,
        line: int | None = None,
        offset: int | None = None,
    ) -> None:
        self.path = None if path is None else os.fspath(path)
        self.line = line
        self.offset = offset
        self.reason = reason
        super().__init__(self._describe())

    def _describe(self) -> str:
        where = []
        if self.path is not None:
            where.append(str(self.path))
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.offset is not None:
            where.append(f"offset {self.offset}")
        return f"{', '.join(where)}: {self.reason}" if where else self.reason

    def __reduce__(self):  # keep attributes across pickling (multiprocessing)
        return (_rebuild_decode_error, (type(self), self.reason, self.path, self.line, self.offset))


def _rebuild_decode_error(cls, reason, path, line, offset):
    return cls(reason, path=path, line=line, offset=offset)


class DecodeRestart(LockstepError):
    """A decode run that decoded with its configured increments, without a first pass, met a
    value finer than one of them (or a symbol none covers) after it had handed out chunks: what
    it handed out must be discarded, and `restarted()` is a new run over the same inputs that
    runs the first pass (the increments are refined there, nothing is lost)."""

    def __init__(self, message: str, restarted: Any) -> None:
        super().__init__(message)
        self.restarted = restarted


class ProtocolError(DecodeError):
    """Bytes of a NASDAQ wire protocol (MoldUDP64, SoupBinTCP, OUCH) that a codec refused:
    `problem` (a WireProblem) found at byte `offset` of the bytes given (of the stream, for a
    SoupBinTCP framer)."""

    def __init__(self, problem: WireProblem, offset: int, what: str) -> None:
        self.problem = WireProblem(problem)
        super().__init__(f"{what}: {self.problem.label.replace('_', ' ')}", offset=offset)

    def __reduce__(self):
        return (type(self), (self.problem, self.offset, self.reason.rsplit(": ", 1)[0]))


class ConfigError(LockstepError):
    """A configuration value that is unknown, missing, of the wrong type or out of range.

    Attributes:
        key: dotted path of the offending key, e.g. "venue.latency.entry" ("" when the whole
            input is at fault, e.g. a TOML syntax error).
        reason: what was wrong, in words.
        source: where the config came from, leading the message: a file path, "--set", "config";
            "risk config" by default (the risk and queue configs built from dicts).
    """

    def __init__(self, key: str, reason: str, *, source: str = "risk config") -> None:
        self.key = key
        self.reason = reason
        self.source = source
        where = f"{key}: " if key else ""
        super().__init__(f"{source}: {where}{reason}")

    def __reduce__(self):
        return (_rebuild_config_error, (type(self), self.key, self.reason, self.source))


def _rebuild_config_error(cls, key, reason, source):
    return cls(key, reason, source=source)


class ConfigSyntaxError(ConfigError):
    """A TOML file (or a --set value) that does not parse; `line` and `column` are 1-based."""

    def __init__(self, reason: str, *, source: str, line: int | None = None,
                 column: int | None = None) -> None:
        self.line = line
        self.column = column
        where = f"line {line}, column {column}: " if line is not None else ""
        super().__init__("", f"{where}{reason}", source=source)
        self.reason = reason

    def __reduce__(self):
        return (_rebuild_syntax_error, (type(self), self.reason, self.source, self.line, self.column))


def _rebuild_syntax_error(cls, reason, source, line, column):
    return cls(reason, source=source, line=line, column=column)


class SettingError(LockstepError, ValueError):
    """A setting given where it does not apply, missing where it is needed, or malformed.

    The message names each setting by its key (``date``, ``price_increment``): `template` is the
    message with a ``{key}`` field per setting in `settings` and the other fields in `values`, so
    a front end can name the settings its own way (the command line by its flags): `naming`.
    """

    def __init__(self, template: str, settings: Sequence[str], **values: Any) -> None:
        self.template = template
        self.settings = tuple(settings)
        self.values = values
        super().__init__(self.naming(str))

    def naming(self, name: Callable[[str], str]) -> str:
        """The message with each setting called `name(key)`."""
        return self.template.format(**self.values, **{key: name(key) for key in self.settings})

    def __reduce__(self):  # keep attributes across pickling (multiprocessing)
        return (_rebuild_setting_error, (type(self), self.template, self.settings, self.values))


def _rebuild_setting_error(cls, template, settings, values):
    return cls(template, settings, **values)


class DatasetError(LockstepError):
    """A dataset is missing, incomplete, or does not match its manifest."""


class StorageError(LockstepError):
    """A storage root (or a path under it) that cannot be used at all: an unknown URI scheme, a
    filesystem this build of pyarrow does not have."""


class PipelineError(LockstepError):
    """A step of the data path cannot run (bad arguments, missing inputs, unknown dataset)."""


class ControlError(LockstepError):
    """A live node's control command that failed: refused by the node, or a control socket
    that cannot be served (its path taken by another node, not a socket, not loopback)."""


class ControlUnreachable(ControlError):
    """No live node answers at a control socket (none running, or it did not answer in time)."""


class LoginRejected(LockstepError):
    """The venue refused a live node's order-entry login (SoupBinTCP Login Rejected): wrong
    credentials or no such session. Final: the node does not retry."""


# --------------------------------------------------------------------------------------------
# C++ status codes


class OrderRulesWarning(UserWarning):
    """An order-entry rule (tick or lot size) that is not an exact multiple of its data increment:
    it is still checked exactly, on the finest grid both share; the message says which."""


class StatusError(LockstepError):
    """A C++ call answered with a Status other than Ok. `status` is the Status, `what` the call
    as the caller described it, `detail` what the C++ side said about it ("" if nothing); the
    message is "<what>: <the C++ status_name()>[: <detail>]"."""

    def __init__(self, status: Status, what: str, detail: str = "") -> None:
        self.status = status
        self.what = what
        self.detail = detail
        text = f"{what}: {STATUS_TEXT[status]}"
        super().__init__(f"{text}: {detail}" if detail else text)

    def __reduce__(self):
        return (type(self), (self.status, self.what, self.detail))


class InvalidArgumentError(StatusError, ValueError):
    """Status InvalidArgument or UnknownInstrument: the call's arguments were refused."""


class DecodeStatusError(StatusError, ValueError):
    """Status DecodeError: the input is malformed (the decoder's own error says where)."""


class FixedPointError(StatusError, ValueError):
    """Status NotMultiple or Overflow: a number does not fit the instrument's fixed-point grid."""


class IncompleteError(StatusError):
    """Status OutputFull, NeedMoreInput or WouldBlock where the caller expected the call to
    finish: a resumable state reached where resuming is not possible."""


class AddressError(InvalidArgumentError):
    """Status BadAddress: a socket address that does not parse, or of the wrong transport; the
    detail says what was wrong."""


class SocketError(StatusError):
    """Status SystemError from the socket layer: an operating-system call failed. `errno` is its
    error number (0 when unknown); the detail names the call and the system's words for errno."""

    def __init__(self, status: Status, what: str, detail: str = "", errno: int = 0) -> None:
        self.errno = errno
        super().__init__(status, what, detail)

    def __reduce__(self):
        return (type(self), (self.status, self.what, self.detail, self.errno))


class PeerClosedError(SocketError):
    """Status PeerClosed: the other end closed (or reset) the connection."""


#: The C++ status_name() of every Status (tests/test_enum_parity.py holds it to the C++ one).
STATUS_TEXT: dict[Status, str] = {
    Status.OK: "ok",
    Status.OUTPUT_FULL: "output full",
    Status.NEED_MORE_INPUT: "need more input",
    Status.WOULD_BLOCK: "would block",
    Status.INVALID_ARGUMENT: "invalid argument",
    Status.UNKNOWN_INSTRUMENT: "unknown instrument",
    Status.DECODE_ERROR: "decode error",
    Status.NOT_MULTIPLE: "not a multiple of the increment",
    Status.OVERFLOW: "overflow",
    Status.SYSTEM_ERROR: "system call failed",
    Status.PEER_CLOSED: "peer closed the connection",
    Status.BAD_ADDRESS: "bad address",
}

_STATUS_ERRORS: dict[Status, type[StatusError]] = {
    Status.OUTPUT_FULL: IncompleteError,
    Status.NEED_MORE_INPUT: IncompleteError,
    Status.WOULD_BLOCK: IncompleteError,
    Status.INVALID_ARGUMENT: InvalidArgumentError,
    Status.UNKNOWN_INSTRUMENT: InvalidArgumentError,
    Status.DECODE_ERROR: DecodeStatusError,
    Status.NOT_MULTIPLE: FixedPointError,
    Status.OVERFLOW: FixedPointError,
    Status.SYSTEM_ERROR: SocketError,
    Status.PEER_CLOSED: PeerClosedError,
    Status.BAD_ADDRESS: AddressError,
}


def status_text(status: int) -> str:
    """The C++ status_name() of `status` ("output full"), or "unknown status code <n>" for a code
    this Python does not know (the core is newer than its mirror)."""
    try:
        return STATUS_TEXT[Status(status)]
    except ValueError:
        return f"unknown status code {status}"


def check_status(status: int, what: str, *, detail: str = "", errno: int = 0) -> None:
    """Returns if `status` (a Status value) is Ok, else raises the StatusError subclass for it,
    e.g. InvalidArgumentError("risk limits of BTCUSDT: invalid argument"). `detail` is what the
    C++ side said (a parser's reason, the failed system call); a non-zero `errno` adds the
    system's words for it: "udp://127.0.0.1:80: system call failed: bind: Permission denied
    (errno 13)"."""
    if status == Status.OK:
        return
    if errno:
        said = f"{os.strerror(errno)} (errno {errno})"
        detail = f"{detail}: {said}" if detail else said
    try:
        member = Status(status)
    except ValueError:
        raise LockstepError(f"{what}: {status_text(status)}" + (f": {detail}" if detail else "")) from None
    cls = _STATUS_ERRORS[member]
    if issubclass(cls, SocketError):
        raise cls(member, what, detail, errno)
    raise cls(member, what, detail)


__all__ = [
    "AddressError",
    "ConfigError",
    "ConfigSyntaxError",
    "ControlError",
    "ControlUnreachable",
    "DatasetError",
    "DecodeError",
    "DecodeRestart",
    "DecodeStatusError",
    "FixedPointError",
    "IncompleteError",
    "InvalidArgumentError",
    "LockstepError",
    "LoginRejected",
    "OrderRulesWarning",
    "PeerClosedError",
    "PipelineError",
    "ProtocolError",
    "STATUS_TEXT",
    "SettingError",
    "SocketError",
    "StatusError",
    "StorageError",
    "check_status",
    "status_text",
]
