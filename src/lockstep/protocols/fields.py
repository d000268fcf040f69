"""What the protocol modules share: text fields and fixed-layout messages.

A fixed-layout message (OUCH, ITCH) is a frozen dataclass whose fields are in wire order and
annotated `int` (a big-endian integer), `Code` (a one-byte ASCII code, 1-character str) or `str`
(an alpha field, space-padded on the wire, without its padding here). `wire_values()` and
`from_wire_values()` turn one into the wire's values and back: ints, and bytes for alpha fields
(the codec pads them to the field's width).
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, TypeVar

Code = str  # a one-byte ASCII code ("B", "Y")

M = TypeVar("M", bound="FixedMessage")


def text_to_wire(value: str, what: str) -> bytes:
    """`value` as the bytes of an alpha field (latin-1: one byte per character)."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(f"{what} {value!r} has a character outside latin-1") from None


def text_from_wire(raw: bytes) -> str:
    """An alpha field's text: the bytes as latin-1, the padding spaces on the right removed."""
    return raw.decode("latin-1").rstrip(" ")


def code_to_wire(value: str, what: str) -> int:
    if not isinstance(value, str) or len(value) != 1:
        raise ValueError(f"{what} must be one character, not {value!r}")
    return text_to_wire(value, what)[0]


@dataclasses.dataclass(frozen=True)
class FixedMessage:
    """Base of the fixed-layout messages; TYPE is the type byte as a 1-character str."""

    TYPE: ClassVar[str] = ""

    @classmethod
    def _kinds(cls) -> tuple[tuple[str, str], ...]:
        kinds = cls.__dict__.get("_KINDS")
        if kinds is None:
            kinds = tuple((f.name, str(f.type)) for f in dataclasses.fields(cls))
            cls._KINDS = kinds  # type: ignore[attr-defined]
        return kinds

    def wire_values(self) -> tuple[Any, ...]:
        out: list[Any] = []
        for name, kind in self._kinds():
            value = getattr(self, name)
            what = f"{type(self).__name__}.{name}"
            if kind == "int":
                if type(value) is not int:
                    raise TypeError(f"{what} must be an int, not {type(value).__name__}")
                out.append(value)
            elif kind == "Code":
                out.append(code_to_wire(value, what))
            else:
                out.append(text_to_wire(value, what))
        return tuple(out)

    @classmethod
    def from_wire_values(cls: type[M], values: tuple[Any, ...]) -> M:
        args = []
        for (_, kind), value in zip(cls._kinds(), values):
            if kind == "int":
                args.append(value)
            elif kind == "Code":
                args.append(chr(value))
            else:
                args.append(text_from_wire(value))
        return cls(*args)


def forwarded(name: str, doc: str | None = None) -> property:
    """A read-only property reading the same-named attribute of the object's compiled `_core`
    (how the session classes show their C++ state)."""
    return property(lambda self: getattr(self._core, name), doc=doc)


def by_type(*classes: type[M]) -> dict[str, type[M]]:
    """The classes by their type byte (each type once)."""
    table = {cls.TYPE: cls for cls in classes}
    assert len(table) == len(classes)
    return table
