"""Exceptions raised by lockstep itself.

Everything lockstep raises on purpose derives from LockstepError, so callers can tell our
diagnoses apart from bugs (TypeError, ...). Keep this module small and dependency-free.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any


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


__all__ = ["DecodeError", "LockstepError", "SettingError"]
