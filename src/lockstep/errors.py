"""Exceptions raised by lockstep. Compiled-core failures become one of these in one place."""
from __future__ import annotations


class LockstepError(Exception):
    """Base class of every error lockstep raises on purpose."""


class DecodeError(LockstepError):
    """Input bytes could not be decoded; names the file and the position."""

    def __init__(self, reason: str, *, path: str | None = None, line: int | None = None,
                 offset: int | None = None) -> None:
        self.reason = reason
        self.path = path
        self.line = line
        self.offset = offset
        where = []
        if path is not None:
            where.append(str(path))
        if line is not None:
            where.append(f"line {line}")
        if offset is not None:
            where.append(f"offset {offset}")
        super().__init__(f"{', '.join(where)}: {reason}" if where else reason)
