"""The storage root and its layout.

One root holds everything (`raw/ normalized/ canonical/ derived/ quarantine/ experiments/`). It is
the `data` argument, else the `LOCKSTEP_DATA` environment variable, else `./data`. Paths go through
pyarrow's filesystem layer so a URI root (``s3://bucket/prefix?endpoint_override=...``) needs no
other code.

An operating-system error on a path of the root leaves here as an OSError whose `filename` is that
path and whose `strerror` is the cause (pyarrow's own errors name no file, or a path inside their
text), so the command line can say both on one line.
"""
from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from lockstep.errors import StorageError

#: Attempts per S3 request, the first included. The SDK's default strategy, which pyarrow's
#: URI parsing keeps, retries an endpoint that refuses connections for many seconds per request,
#: and a command makes many requests: with this it fails within seconds, naming the root.
S3_ATTEMPTS = 3

LAYOUT = ("raw", "normalized", "canonical", "derived", "quarantine", "experiments")
DEFAULT_ROOT = "./data"


def resolve_root(data: str | os.PathLike[str] | None = None) -> str:
    """The storage root: `data` if given, else $LOCKSTEP_DATA, else ./data."""
    if data is not None and str(data) != "":
        return str(data)
    return os.environ.get("LOCKSTEP_DATA") or DEFAULT_ROOT


@dataclass(frozen=True)
class Location:
    """A filesystem and a path inside it; `uri` is what users see."""

    fs: pafs.FileSystem
    path: str
    uri: str

    def join(self, *parts: str) -> Location:
        sep = "/"
        path = sep.join([self.path.rstrip(sep), *parts])
        # A URI's query (an S3 endpoint, say) stays at its end: it belongs to every path below.
        base, mark, query = self.uri.partition("?")
        uri = sep.join([base.rstrip(sep), *parts]) + mark + query
        return Location(self.fs, path, uri)

    def exists(self) -> bool:
        with naming(self.uri):
            return self.fs.get_file_info(self.path).type != pafs.FileType.NotFound

    def is_dir(self) -> bool:
        with naming(self.uri):
            return self.fs.get_file_info(self.path).type == pafs.FileType.Directory

    def mkdir(self) -> None:
        with naming(self.uri):
            self.fs.create_dir(self.path, recursive=True)

    def list_dirs(self) -> list[str]:
        """Names of the sub-directories, sorted."""
        if not self.is_dir():
            return []
        with naming(self.uri):
            infos = self.fs.get_file_info(pafs.FileSelector(self.path, recursive=False))
        return sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory)

    def read_bytes(self) -> bytes:
        with naming(self.uri), self.fs.open_input_stream(self.path) as f:
            return f.read()

    def write_bytes(self, data: bytes) -> None:
        with naming(self.uri), self.fs.open_output_stream(self.path) as f:
            f.write(data)

    def remove_tree(self) -> None:
        """Deletes the folder and everything in it; a folder that is not there is no error."""
        with naming(self.uri):
            if self.is_dir():
                self.fs.delete_dir(self.path)

    def remove_if_empty(self) -> None:
        """Deletes the folder if nothing is in it (so a concurrent writer's work is never lost)."""
        with naming(self.uri):
            if self.is_dir() and not self.fs.get_file_info(pafs.FileSelector(self.path)):
                self.fs.delete_dir(self.path)


def located(error: OSError, path: str) -> OSError:
    """`error` as an OSError of the same kind naming `path` as its file and its cause as its
    `strerror`; an error that already names its file is returned as it is."""
    if error.filename is not None:
        return error
    cause = os.strerror(error.errno) if error.errno else str(error)
    return OSError(error.errno, cause, path)  # OSError picks the subclass of the errno


@contextmanager
def naming(path: str) -> Iterator[None]:
    """Raises an OSError from the block as one naming `path` (located)."""
    try:
        yield
    except OSError as e:
        if e.filename is not None:
            raise
        raise located(e, path) from e


def naming_its_location(method: Callable[..., Any]) -> Callable[..., Any]:
    """A method of a writer with a `loc` (a Location) whose OSErrors name that location."""
    @functools.wraps(method)
    def named(self: Any, *args: Any, **kwargs: Any) -> Any:
        with naming(self.loc.uri):
            return method(self, *args, **kwargs)
    return named


def remove_created(folders: Iterable[tuple[Location, bool]]) -> None:
    """Takes away what a command that failed created: each (folder, own) in turn, deepest first,
    the whole tree when the command owns it (its import id's areas), else only when empty (the
    root and the areas, which another writer may have begun to use meanwhile). Errors while
    cleaning up are swallowed: the failure that started it is the one to report."""
    for folder, own in folders:
        try:
            if own:
                folder.remove_tree()
            else:
                folder.remove_if_empty()
        except OSError:
            pass


def locate(uri: str | os.PathLike[str]) -> Location:
    """A Location for a local path (relative or absolute) or a filesystem URI."""
    text = os.fspath(uri)
    if "://" in text:
        with naming(text):
            try:
                fs, path = pafs.FileSystem.from_uri(text)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:  # an unknown scheme, no S3 support
                raise StorageError(f"{text}: {e}") from None
        if fs.type_name == "s3":
            fs = _bounded_s3(fs)
        return Location(fs, path, text)
    absolute = os.path.abspath(text)
    return Location(pafs.LocalFileSystem(), absolute, absolute)


def _bounded_s3(fs: pafs.FileSystem) -> pafs.FileSystem:
    """The S3 filesystem `fs` (as pyarrow parsed its URI) with S3_ATTEMPTS attempts per request."""
    settings = fs.__reduce__()[1][0]  # its constructor's arguments, as pickling rebuilds it
    settings["retry_strategy"] = pafs.AwsStandardS3RetryStrategy(max_attempts=S3_ATTEMPTS)
    return pafs.S3FileSystem(**settings)


def root_location(data: str | os.PathLike[str] | None = None) -> Location:
    return locate(resolve_root(data))


def ensure_layout(data: str | os.PathLike[str] | None = None) -> Location:
    """The root with its six areas present (creating what is missing)."""
    root = root_location(data)
    for area in LAYOUT:
        root.join(area).mkdir()
    return root


@contextmanager
def removed_on_failure(created: Iterable[tuple[Location, bool]]) -> Iterator[None]:
    """Takes away the folders in `created` (remove_created) when the block fails."""
    try:
        yield
    except BaseException:
        remove_created(created)
        raise
