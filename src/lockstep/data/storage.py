"""The storage root and its layout.

One root holds everything (`raw/ normalized/ canonical/ derived/ quarantine/ experiments/`). It is
the `data` argument, else the `LOCKSTEP_DATA` environment variable, else `./data`. Paths go through
pyarrow's filesystem layer so a URI root (``s3://bucket/prefix``) needs no other code.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import pyarrow.fs as pafs

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
        uri = sep.join([self.uri.rstrip(sep), *parts])
        return Location(self.fs, path, uri)

    def exists(self) -> bool:
        return self.fs.get_file_info(self.path).type != pafs.FileType.NotFound

    def is_dir(self) -> bool:
        return self.fs.get_file_info(self.path).type == pafs.FileType.Directory

    def mkdir(self) -> None:
        self.fs.create_dir(self.path, recursive=True)

    def list_dirs(self) -> list[str]:
        """Names of the sub-directories, sorted."""
        if not self.is_dir():
            return []
        infos = self.fs.get_file_info(pafs.FileSelector(self.path, recursive=False))
        return sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory)

    def read_bytes(self) -> bytes:
        with self.fs.open_input_stream(self.path) as f:
            return f.read()

    def write_bytes(self, data: bytes) -> None:
        with self.fs.open_output_stream(self.path) as f:
            f.write(data)


def locate(uri: str | os.PathLike[str]) -> Location:
    """A Location for a local path (relative or absolute) or a filesystem URI."""
    text = os.fspath(uri)
    if "://" in text:
        fs, path = pafs.FileSystem.from_uri(text)
        return Location(fs, path, text)
    absolute = os.path.abspath(text)
    return Location(pafs.LocalFileSystem(), absolute, absolute)


def root_location(data: str | os.PathLike[str] | None = None) -> Location:
    return locate(resolve_root(data))


def ensure_layout(data: str | os.PathLike[str] | None = None) -> Location:
    """The root with its six areas present (creating what is missing)."""
    root = root_location(data)
    for area in LAYOUT:
        root.join(area).mkdir()
    return root
