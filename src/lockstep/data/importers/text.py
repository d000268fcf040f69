"""What the text formats (Bybit JSON lines, Tardis CSV) share: reading inputs line by line with
positions, quoting values in reasons, and a decode run over Increments and an InstrumentTable."""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from lockstep.data.importers.decode_run import DecodeRunBase
from lockstep.data.importers.increments import Increments, InstrumentTable
from lockstep.data.importers.normalized import ChunkBuilder, Decompressed, NormalizedChunk, open_decompressed
from lockstep.enums import Rule
from lockstep.errors import DecodeError

PathLike = str | os.PathLike[str]

_READ = 1 << 20


def as_paths(paths: PathLike | Iterable[PathLike]) -> list[str]:
    if isinstance(paths, (str, os.PathLike)):
        return [os.fspath(paths)]
    out = []
    for p in paths:
        if not isinstance(p, (str, os.PathLike)):
            raise TypeError(f"inputs are paths, got {type(p).__name__}")
        out.append(os.fspath(p))
    if not out:
        raise ValueError("no input files")
    return out


def _open_input(path: str) -> Decompressed:
    try:
        return open_decompressed(path)
    except Exception as e:  # noqa: BLE001 - a missing file, a bad zip directory, a zip of several members
        raise DecodeError(f"cannot open: {e}", path=path, offset=0) from None


@dataclass(frozen=True)
class CutTail:
    """The end of a compressed input that is cut: the bytes after its last whole line, up to
    the cut (possibly none), are one TRUNCATED_RECORD at 1-based `line`."""

    line: int
    offset: int
    length: int
    reason: str


class TextLines:
    """The lines of one input: (1-based line, byte offset, content, terminated, offset after the
    line) per line. Content excludes the ``\\n`` and a ``\\r`` before it. A read error (corrupt
    gzip, zstd, zip) is a DecodeError. When the input is a compressed stream that is cut, the
    bytes after its last whole line are not a line: `cut` says where they are, once iterated."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.cut: CutTail | None = None

    def __iter__(self) -> Iterator[tuple[int, int, bytes, bool, int]]:
        f = _open_input(self.path)
        try:
            yield from self._lines(f)
        finally:
            f.close()

    def _lines(self, f: Decompressed) -> Iterator[tuple[int, int, bytes, bool, int]]:
        path = self.path
        line_no = 0
        start = 0  # offset of the line being assembled
        consumed = 0
        parts: list[bytes] = []
        while True:
            try:
                data = f.read(_READ)
            except Exception as e:  # noqa: BLE001 - zlib, EOF, BadZipFile, Arrow...: all mean "corrupt input"
                raise DecodeError(f"cannot read the input: {type(e).__name__}: {e}", path=path,
                                  offset=consumed) from None
            if not data:
                break
            consumed += len(data)
            i = 0
            while True:
                j = data.find(b"\n", i)
                if j < 0:
                    if i < len(data):
                        parts.append(data[i:])
                    break
                if parts:
                    parts.append(data[i:j])
                    line = b"".join(parts)
                    parts = []
                else:
                    line = data[i:j]
                line_no += 1
                end = start + len(line) + 1
                yield line_no, start, (line[:-1] if line.endswith(b"\r") else line), True, end
                start = end
                i = j + 1
        line = b"".join(parts)
        if f.cut is not None:
            self.cut = CutTail(line_no + 1, start, len(line),
                               f"{path}: {f.cut.reason}; the {len(line)} bytes from offset {start} "
                               "make no whole line")
        elif parts:
            line_no += 1
            yield line_no, start, (line[:-1] if line.endswith(b"\r") else line), False, start + len(line)


def read_lines(path: str) -> TextLines:
    return TextLines(path)


def short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."



class TextDecodeRun(DecodeRunBase):
    """A decode run of text inputs whose increments come from `Increments`: the first pass that
    infers them, or checks given ones against the data, one ChunkBuilder, and the counts every text format reports. A format
    implements `_scan()` (the first pass) and `_decode(builder)`, a generator of the chunks the
    builder fills that returns the format's counts."""

    def __init__(self, paths: list[str], increments: Increments) -> None:
        super().__init__()
        self._paths = paths
        self._inc = increments
        self._table = InstrumentTable()
        self._instruments = self._table.rows  # filled as instruments appear

    def _scan(self) -> None:  # pragma: no cover - every format has its own
        raise NotImplementedError

    def _decode(self, builder: ChunkBuilder) -> Iterator[NormalizedChunk]:  # pragma: no cover
        raise NotImplementedError

    @staticmethod
    def _record_cut(cb: ChunkBuilder, file_index: int, lines: TextLines) -> int:
        """The one TRUNCATED_RECORD of an input that is cut (TextLines.cut): records added, 0 or 1."""
        cut = lines.cut
        if cut is None:
            return 0
        cb.record(file_index, cut.line, cut.offset, cut.length, Rule.TRUNCATED_RECORD, cut.reason)
        return 1

    def _run(self) -> Iterator[NormalizedChunk]:
        self._scan()  # infers increments, and checks given ones against the data
        builder = ChunkBuilder()
        counts: dict[str, Any] = yield from self._decode(builder)
        yield from builder.take_rest()
        counts["problems"] = builder.problems
        counts["increment_source"] = dict(self._table.sources)
        counts["increments_refined"] = self._inc.refinements
        if self._inc.needs_scan:
            counts["inferred_increments"] = {f"{self._table.rows[i].venue}:{self._table.rows[i].symbol}":
                                             self._inc.inferred(key) for key, i in self._table.index.items()}
        self._finish(counts)
