"""Canonical datasets: Parquet files of canonical events plus a manifest.

Layout: ``ROOT/canonical/<name>/v<k>/`` holding ``part-NNNNN.parquet`` files and
``manifest.json``. A version is written under a temporary name and appears, by one rename, only
once its manifest is complete; a version is never rewritten (writing again makes ``v<k+1>``).

Events in a dataset are in Processing Order: ``ts_recv`` never decreases along the rows, ties keep
their stream order. The writer refuses batches that would break that.
"""
from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import socket
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
import math
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lockstep.core.risk import OrderRules
from lockstep.data.storage import Location, locate, naming, root_location
from lockstep.enums import BookKind
from lockstep.errors import DatasetError
from lockstep.events import (
    COLUMN_NAMES,
    SCHEMA,
    SCHEMA_VERSION,
    Columns,
    EventKind,
    to_columns,
    to_record_batch,
)

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "lockstep.canonical-dataset"
DEFAULT_ROWS_PER_FILE = 1 << 24
DEFAULT_ROW_GROUP = 1 << 20
# Streaming reads: small enough that peak memory stays flat, large enough that per-batch work is noise.
DEFAULT_READ_BATCH = 1 << 16
BOOK_TYPES = BookKind.labels()

# Chosen for decode speed as much as size (replay reads at tens of millions of events/s): a few
# distinct values -> dictionary/RLE; monotone clocks and sequence numbers -> delta; prices and
# sizes -> byte-stream-split, which zstd then compresses well and which decodes fastest.
_DICTIONARY_COLUMNS = ("instrument", "kind", "side", "flags")
_COLUMN_ENCODING = {
    "ts_event": "DELTA_BINARY_PACKED",
    "ts_recv": "DELTA_BINARY_PACKED",
    "seq": "DELTA_BINARY_PACKED",
    "price": "BYTE_STREAM_SPLIT",
    "qty": "BYTE_STREAM_SPLIT",
    "order_id": "BYTE_STREAM_SPLIT",
}


#: The venue's order-entry rules an instrument may carry, in real units (docs/encoding.md).
ORDER_RULE_FIELDS = ("tick_size", "lot_size", "min_qty", "min_notional")


@dataclass(frozen=True)
class Instrument:
    """One row of a dataset's instrument table.

    ``price_increment`` and ``size_increment`` are the DATA increments, exact decimal strings: an
    event's ``price`` column times ``price_increment`` is the real price. They are fine enough for
    every value the venue publishes.

    ``tick_size``, ``lot_size``, ``min_qty`` and ``min_notional`` are the venue's ORDER-ENTRY
    rules in real units (exact decimal strings, None when unknown), which Risk and the simulated
    venue enforce on our orders; usually coarser than the data increments. order_rules() gives
    them in data units.
    """

    symbol: str
    venue: str
    price_increment: str
    size_increment: str
    book: str = "l2"  # which book the replay keeps for it: "l2" or "l3"
    tick_size: str | None = None
    lot_size: str | None = None
    min_qty: str | None = None
    min_notional: str | None = None

    def __post_init__(self) -> None:
        for name in ("price_increment", "size_increment", *ORDER_RULE_FIELDS):
            value = getattr(self, name)
            if value is None and name in ORDER_RULE_FIELDS:
                continue
            try:
                ok = Decimal(value) > 0
            except Exception:
                ok = False
            if not ok:
                raise ValueError(f"instrument {self.symbol!r}: {name} must be a positive decimal, got {value!r}")
        if self.book not in BOOK_TYPES:
            raise ValueError(f"instrument {self.symbol!r}: book must be one of {BOOK_TYPES}, got {self.book!r}")

    @property
    def price_scale(self) -> float:
        """The price increment as a float: real price = ticks * price_scale (not exact)."""
        return float(Decimal(self.price_increment))

    @property
    def size_scale(self) -> float:
        """The size increment as a float: real quantity = lots * size_scale (not exact)."""
        return float(Decimal(self.size_increment))

    def to_ticks(self, price: Decimal | str | int | float) -> int:
        """A real price as an exact number of price increments (ValueError if off the tick)."""
        return self._units(price, self.price_increment, "price")

    def to_lots(self, qty: Decimal | str | int | float) -> int:
        """A real quantity as an exact number of size increments (ValueError if off the lot)."""
        return self._units(qty, self.size_increment, "size")

    def _units(self, value: Decimal | str | int | float, increment: str, what: str) -> int:
        # float goes through its shortest repr, so 0.001 is the decimal 0.001, not 0.00100000000000000002
        exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        units, rest = divmod(exact, Decimal(increment))
        if rest != 0:
            raise ValueError(f"{self.symbol}: {what} {value} is not a multiple of {increment}")
        return int(units)

    def with_order_rules(self, rules: Mapping[str, str | None]) -> Instrument:
        """This instrument with the order-entry rules in `rules` replaced (None: unknown)."""
        return replace(self, **{k: rules[k] for k in ORDER_RULE_FIELDS if k in rules})

    def order_rules(self) -> tuple[OrderRules, list[str]]:
        """The order-entry rules in data units, and a note for each rule that is not an exact
        multiple of its data increment. Such a rule is still checked exactly: a price p (in price
        increments) is on a tick t when p x price_increment is a multiple of t, i.e. when p is a
        multiple of the numerator of t / price_increment in lowest terms; likewise for the lot.
        Minimums are rounded up to whole data units (exact, since quantities are whole units)."""
        pi, si = Fraction(Decimal(self.price_increment)), Fraction(Decimal(self.size_increment))
        notes = []

        def step(field: str, increment: str, what: str) -> int:
            value = getattr(self, field)
            if value is None:
                return 0
            units = Fraction(Decimal(value)) / Fraction(Decimal(increment))
            if units.denominator != 1:
                held = Decimal(units.numerator) * Decimal(increment)
                notes.append(f"{self.symbol}: {field} {value} is not a multiple of the data {what} "
                             f"increment {increment}; orders are held to multiples of {held} "
                             "(the finest grid on both)")
            return units.numerator

        def minimum(field: str, unit: Fraction) -> int:
            value = getattr(self, field)
            return 0 if value is None else math.ceil(Fraction(Decimal(value)) / unit)

        rules = OrderRules(price_tick=step("tick_size", self.price_increment, "price"),
                           qty_lot=step("lot_size", self.size_increment, "size"),
                           min_qty=minimum("min_qty", si), min_notional=minimum("min_notional", pi * si))
        return rules, notes

    def to_dict(self) -> dict[str, str]:
        """The manifest's form: the order-entry rules only when known."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Instrument:
        """A row of a manifest (older manifests, without order-entry rules, included)."""
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"instrument has unknown keys {sorted(unknown)}")
        return cls(**{k: None if v is None else str(v) for k, v in d.items()})


@dataclass
class _FileEntry:
    path: str
    rows: int
    bytes: int
    sha256: str


@dataclass
class _Stats:
    rows: int = 0
    ts_recv_min: int | None = None
    ts_recv_max: int | None = None
    ts_event_min: int | None = None
    ts_event_max: int | None = None
    counts_by_kind: dict[str, int] = field(default_factory=dict)

    def add(self, cols: Columns, n: int) -> None:
        if n == 0:
            return
        ts_recv = cols["ts_recv"][:n]
        ts_event = cols["ts_event"][:n]
        self.rows += n
        lo, hi = int(ts_recv[0]), int(ts_recv[-1])
        self.ts_recv_min = lo if self.ts_recv_min is None else min(self.ts_recv_min, lo)
        self.ts_recv_max = hi if self.ts_recv_max is None else max(self.ts_recv_max, hi)
        emin, emax = int(ts_event.min()), int(ts_event.max())
        self.ts_event_min = emin if self.ts_event_min is None else min(self.ts_event_min, emin)
        self.ts_event_max = emax if self.ts_event_max is None else max(self.ts_event_max, emax)
        counts = np.bincount(cols["kind"][:n], minlength=256)
        for kind in np.nonzero(counts)[0]:
            key = EventKind(kind).name.lower() if kind in EventKind._value2member_map_ else str(int(kind))
            self.counts_by_kind[key] = self.counts_by_kind.get(key, 0) + int(counts[kind])


def _sha256_of(loc: Location) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with loc.fs.open_input_stream(loc.path) as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


# A name is one folder under each area of the root: it must never climb out of it (no separators,
# no "." or ".."), and it must fit in one path component on any filesystem.
MAX_NAME_LENGTH = 200
_NAME_CHARS = re.compile(r"[A-Za-z0-9._-]+")


def check_name(name: str) -> None:
    """Raises DatasetError, naming `name` and what is wrong with it, unless it is a dataset name:
    1 to MAX_NAME_LENGTH letters, digits, '.', '_' or '-', starting with a letter or a digit.
    Everything that writes under a name checks it first, so a bad name creates nothing."""
    if not name:
        problem = "a name cannot be empty"
    elif len(name) > MAX_NAME_LENGTH:
        problem = f"{len(name)} characters, at most {MAX_NAME_LENGTH}"
    elif "/" in name or "\\" in name:
        problem = "a name is one folder, it cannot hold a path separator"
    elif any(not c.isprintable() for c in name):
        problem = "a name cannot hold control characters"
    elif not _NAME_CHARS.fullmatch(name):
        problem = "use letters, digits, '.', '_' and '-'"
    elif not name[0].isalnum():
        problem = "a name starts with a letter or a digit"
    else:
        return
    shown = name if len(name) <= 60 else f"{name[:40]}..."
    raise DatasetError(f"dataset name {shown!r}: {problem}")


class DatasetWriter:
    """Streams batches of canonical events into a new dataset version.

    Use as a context manager or call :meth:`close`; an exception inside the ``with`` block leaves
    no dataset behind (only the temporary directory, which is removed).
    """

    def __init__(
        self,
        name: str | None,
        instruments: Sequence[Instrument] | None,
        *,
        data: str | None = None,
        source: Mapping[str, Any] | None = None,
        rows_per_file: int = DEFAULT_ROWS_PER_FILE,
        row_group_size: int = DEFAULT_ROW_GROUP,
        compression: str = "zstd",
    ) -> None:
        """`name` and `instruments` may be left None and given to :meth:`close` instead: an
        importer learns the symbols (and so the name and the table) while it decodes."""
        if name is not None:
            check_name(name)
        self.name = name
        self.instruments = list(instruments) if instruments is not None else None
        self.source = dict(source or {})
        self._rows_per_file = rows_per_file
        self._row_group_size = row_group_size
        self._compression = compression
        self._canonical = root_location(data).join("canonical")
        remove_stale_staging(self._canonical)
        self._tmp = self._canonical.join(f"{STAGING_PREFIX}{_unique_suffix()}")
        self._tmp.mkdir()
        self._files: list[_FileEntry] = []
        self._writer: pq.ParquetWriter | None = None
        self._file_rows = 0
        self._stats = _Stats()
        self._last_ts_recv: int | None = None
        self._max_instrument = -1
        self._closed = False

    def write(self, cols: Mapping[str, np.ndarray], size: int | None = None) -> None:
        """Append the first `size` events of `cols` (all of them if None)."""
        if self._closed:
            raise DatasetError("write after close")
        n = len(cols["ts_event"]) if size is None else int(size)
        if n == 0:
            return
        self._check(cols, n)
        offset = 0
        with naming(self._tmp.uri):
            while offset < n:
                if self._writer is None:
                    self._open_part()
                take = min(n - offset, self._rows_per_file - self._file_rows)
                view = {k: cols[k][offset : offset + take] for k in COLUMN_NAMES}
                assert self._writer is not None
                self._writer.write_batch(to_record_batch(view, take), row_group_size=self._row_group_size)
                self._file_rows += take
                offset += take
                if self._file_rows >= self._rows_per_file:
                    self._close_part()
        self._stats.add(dict(cols), n)

    def write_batch(self, batch: pa.RecordBatch) -> None:
        self.write(to_columns(batch), batch.num_rows)

    def _check(self, cols: Mapping[str, np.ndarray], n: int) -> None:
        ts_recv = cols["ts_recv"][:n]
        if self._last_ts_recv is not None and ts_recv[0] < self._last_ts_recv:
            raise DatasetError(
                f"ts_recv goes backwards at row {self._stats.rows}: {int(ts_recv[0])} < {self._last_ts_recv}"
            )
        if n > 1:
            back = np.flatnonzero(ts_recv[1:] < ts_recv[:-1])
            if back.size:
                row = self._stats.rows + int(back[0]) + 1
                raise DatasetError(f"ts_recv goes backwards at row {row}: events must be in Processing Order")
        self._last_ts_recv = int(ts_recv[-1])
        inst = cols["instrument"][:n]
        if self.instruments is not None and int(inst.max()) >= len(self.instruments):
            row = self._stats.rows + int(np.argmax(inst >= len(self.instruments)))
            raise DatasetError(
                f"row {row}: instrument index {int(inst.max())} outside the table of {len(self.instruments)}"
            )
        self._max_instrument = max(self._max_instrument, int(inst.max()))

    def _open_part(self) -> None:
        part = self._tmp.join(f"part-{len(self._files):05d}.parquet")
        sink = part.fs.open_output_stream(part.path)
        self._writer = pq.ParquetWriter(
            sink,
            SCHEMA,
            compression=self._compression,
            use_dictionary=list(_DICTIONARY_COLUMNS),
            column_encoding=dict(_COLUMN_ENCODING),
            write_statistics=["ts_recv", "ts_event"],
        )
        self._sink = sink
        self._file_rows = 0

    def _close_part(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        self._sink.close()
        part_name = f"part-{len(self._files):05d}.parquet"
        sha, size = _sha256_of(self._tmp.join(part_name))
        self._files.append(_FileEntry(part_name, self._file_rows, size, sha))
        self._writer = None

    def close(
        self,
        *,
        name: str | None = None,
        instruments: Sequence[Instrument] | None = None,
        source: Mapping[str, Any] | None = None,
    ) -> Dataset:
        """Finish the files, write the manifest, publish the version; returns the dataset."""
        if self._closed:
            raise DatasetError("closed twice")
        name = name or self.name
        if name is None:
            raise DatasetError("a dataset needs a name")
        check_name(name)
        table = list(instruments) if instruments is not None else self.instruments
        if not table:
            raise DatasetError("a dataset needs at least one instrument")
        if self._max_instrument >= len(table):
            raise DatasetError(
                f"events refer to instrument {self._max_instrument}, the table has {len(table)}"
            )
        if source is not None:
            self.source.update(source)
        base = self._canonical.join(name)
        new_base = not base.exists()
        try:
            return self._publish(name, table, base)
        except BaseException:  # a full disk, say: no version appears, the staging folder goes
            self.abort()
            if new_base:
                base.remove_if_empty()
            raise

    def _publish(self, name: str, table: Sequence[Instrument], base: Location) -> Dataset:
        with naming(self._tmp.uri):
            self._close_part()
        self._closed = True
        base.mkdir()
        versions = [int(d[1:]) for d in base.list_dirs() if re.fullmatch(r"v\d+", d)]
        version = max(versions, default=0) + 1
        s = self._stats
        manifest = {
            "format": MANIFEST_FORMAT,
            "schema_version": SCHEMA_VERSION,
            "name": name,
            "version": version,
            "columns": list(COLUMN_NAMES),
            "instruments": [i.to_dict() for i in table],
            "rows": s.rows,
            "time_range": {
                "ts_recv": [s.ts_recv_min, s.ts_recv_max],
                "ts_event": [s.ts_event_min, s.ts_event_max],
            },
            "counts_by_kind": dict(sorted(s.counts_by_kind.items())),
            "files": [asdict(f) for f in self._files],
            "source": self.source,
        }
        self._tmp.join(MANIFEST_NAME).write_bytes((json.dumps(manifest, indent=2) + "\n").encode())
        final = base.join(f"v{version}")
        with naming(final.uri):
            self._tmp.fs.move(self._tmp.path, final.path)
        return Dataset(final, manifest)

    def abort(self) -> None:
        """Drops what was written: the staging folder goes, no version appears."""
        if self._writer is not None:
            self._writer, writer = None, self._writer
            try:  # on a full disk closing fails too; the files go anyway
                writer.close()
                self._sink.close()
            except OSError:
                pass
        self._closed = True
        try:
            self._tmp.remove_tree()
        except OSError:
            pass

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
        elif not self._closed:
            self.dataset = self.close()


def _datasets_under(root: Location, shown: int = 20) -> str:
    """What a user can open instead: the dataset names under the root, in words."""
    names = [d for d in root.join("canonical").list_dirs() if not d.startswith(".")]  # not .writing-*
    if not names:
        return f"there are no datasets under {root.uri}"
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return f"datasets under {root.uri}: {', '.join(names[:shown])}{more}"


STAGING_PREFIX = ".writing-"


def _unique_suffix() -> str:
    # Only names a temporary directory; never reaches a dataset's content. The host and pid say
    # whose it is, so a later writer can tell a dead writer's leftovers from a live one's.
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_stale_staging(canonical: Location) -> list[str]:
    """Removes the staging folders of writers that died on this host (a killed import leaves its
    `.writing-<host>-<pid>-<id>` behind) and returns their names. A folder of another host, or
    of a process that still runs, is never touched: on a shared root only its writer knows."""
    host = socket.gethostname()
    removed = []
    for name in canonical.list_dirs():
        if not name.startswith(STAGING_PREFIX):
            continue
        owner_host, _, rest = name[len(STAGING_PREFIX):].rpartition("-")[0].rpartition("-")
        pid = rest
        if owner_host != host or not pid.isdigit() or _alive(int(pid)):
            continue
        canonical.fs.delete_dir(canonical.join(name).path)
        removed.append(name)
    return removed


class Dataset:
    """A canonical dataset version on disk: its manifest and a streaming reader."""

    def __init__(self, location: Location, manifest: Mapping[str, Any]) -> None:
        self.location = location
        self.manifest = dict(manifest)
        self.instruments = [Instrument.from_dict(d) for d in self.manifest["instruments"]]

    @classmethod
    def open(cls, path: str, *, data: str | None = None) -> Dataset:
        """Open a dataset by path (a version directory or a dataset directory, whose newest
        version is taken), or by name under ``DATA/canonical``."""
        loc = locate(path)
        if not loc.exists() and "/" not in path and "://" not in path:
            loc = root_location(data).join("canonical", path)
        if not loc.exists():
            raise DatasetError(f"{path}: no such dataset; {_datasets_under(root_location(data))}")
        if not loc.join(MANIFEST_NAME).exists():
            versions = sorted(
                (int(d[1:]), d) for d in loc.list_dirs() if re.fullmatch(r"v\d+", d)
            )
            if not versions:
                raise DatasetError(f"{loc.uri}: no {MANIFEST_NAME} and no versions (incomplete dataset?)")
            loc = loc.join(versions[-1][1])
        raw = loc.join(MANIFEST_NAME).read_bytes()
        try:
            manifest = json.loads(raw)
        except json.JSONDecodeError as e:
            raise DatasetError(f"{loc.join(MANIFEST_NAME).uri}: invalid JSON at line {e.lineno}: {e.msg}") from None
        if manifest.get("format") != MANIFEST_FORMAT:
            raise DatasetError(f"{loc.uri}: not a lockstep canonical dataset (format {manifest.get('format')!r})")
        if manifest.get("schema_version") != SCHEMA_VERSION:
            raise DatasetError(
                f"{loc.uri}: schema version {manifest.get('schema_version')} not supported (this build reads {SCHEMA_VERSION})"
            )
        return cls(loc, manifest)

    @property
    def path(self) -> str:
        """Where this version of the dataset is, as the URI users see."""
        return self.location.uri

    @property
    def rows(self) -> int:
        """How many events the dataset holds."""
        return int(self.manifest["rows"])

    @property
    def name(self) -> str:
        """The dataset's name (its folder under canonical/)."""
        return str(self.manifest["name"])

    def file_locations(self) -> list[Location]:
        """The dataset's Parquet files, in stream order."""
        return [self.location.join(f["path"]) for f in self.manifest["files"]]

    def iter_batches(self, batch_size: int = DEFAULT_READ_BATCH, *, prefetch: int = 2) -> Iterator[pa.RecordBatch]:
        """Record batches in Processing Order, streamed: memory is bounded by the batch size (and
        `prefetch` batches decoded ahead on a reader thread, overlapping Parquet decoding with the
        caller's work), not by the dataset's length."""
        batches = self._read_batches(batch_size)
        if prefetch <= 0:
            yield from batches
            return
        yield from _read_ahead(batches, prefetch)

    def _read_batches(self, batch_size: int) -> Iterator[pa.RecordBatch]:
        for entry, loc in zip(self.manifest["files"], self.file_locations()):
            with loc.fs.open_input_file(loc.path) as f:
                pf = pq.ParquetFile(f, pre_buffer=False)
                if pf.metadata.num_rows != entry["rows"]:
                    raise DatasetError(f"{loc.uri}: {pf.metadata.num_rows} rows, manifest says {entry['rows']}")
                yield from pf.iter_batches(batch_size=batch_size, columns=list(COLUMN_NAMES), use_threads=True)

    def iter_columns(self, batch_size: int = DEFAULT_READ_BATCH) -> Iterator[Columns]:
        """Zero-copy numpy views of each batch's columns."""
        for batch in self.iter_batches(batch_size):
            yield to_columns(batch)

    def read_all(self) -> pa.Table:
        """The whole dataset in memory (for small data and tests)."""
        batches = list(self.iter_batches())
        return pa.Table.from_batches(batches, schema=SCHEMA)

    def verify(self) -> None:
        """Check every file against the manifest's sha256 and size."""
        for entry, loc in zip(self.manifest["files"], self.file_locations()):
            if not loc.exists():
                raise DatasetError(f"{loc.uri}: missing (listed in the manifest)")
            sha, size = _sha256_of(loc)
            if sha != entry["sha256"] or size != entry["bytes"]:
                raise DatasetError(f"{loc.uri}: sha256/size differ from the manifest (corrupted or replaced)")


def _read_ahead(items: Iterator[Any], depth: int) -> Iterator[Any]:
    """Runs `items` on a thread, `depth` items ahead of the consumer. pyarrow releases the GIL
    while decoding, so decoding overlaps with the consumer's (GIL-free) replay. Errors surface in
    the consumer; a consumer that stops early stops the thread."""
    done = object()
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        slots.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put((done, None))
        except BaseException as e:  # handed to the consumer, which re-raises it
            slots.put((done, e))

    thread = threading.Thread(target=produce, name="lockstep-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item, error = slots.get()
            if item is done:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                slots.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)


def list_datasets(data: str | None = None) -> list[Dataset]:
    base = root_location(data).join("canonical")
    out = []
    for name in base.list_dirs():
        for version in base.join(name).list_dirs():
            if re.fullmatch(r"v\d+", version) and base.join(name, version, MANIFEST_NAME).exists():
                out.append(Dataset.open(base.join(name, version).uri))
    return out
