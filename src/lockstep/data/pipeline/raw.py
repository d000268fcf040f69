"""Step 1, raw: the inputs copied byte for byte under ROOT/raw/<name>/<import id>/, and read back
as the bytes a decoder sees (record positions refer to these)."""
from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from lockstep.data.importers.normalized import open_decompressed
from lockstep.data.raw_capture import MAGIC, open_lines
from lockstep.data.storage import Location, naming


def is_raw_capture(path: str) -> bool:
    """A lockstep raw capture file (docs/raw-format.md), as a recorder writes them."""
    try:
        with open(path, "rb") as f:
            return f.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def open_source(path: str) -> Any:
    """The bytes a decoder sees for one input: a raw capture's frames as "<receive ns> <payload>"
    lines, anything else decompressed. Record positions refer to these bytes."""
    if "://" not in path and is_raw_capture(path):
        return open_lines([path])
    return open_decompressed(path)



def import_id_of(paths: Sequence[str]) -> str:
    """A digest of the inputs' names and bytes: importing the same bytes again gives the same id."""
    h = hashlib.sha256()
    for p in paths:
        h.update(os.path.basename(p).encode() + b"\0")
        with open(p, "rb") as f:
            while chunk := f.read(1 << 22):
                h.update(chunk)
        h.update(b"\1")
    return h.hexdigest()[:16]


def copy_raw(paths: Sequence[str], target: Location) -> list[dict[str, Any]]:
    """Byte-for-byte copies of the inputs under `target` (kept if already there)."""
    target.mkdir()
    local = isinstance(target.fs, pa.fs.LocalFileSystem)
    out = []
    for i, p in enumerate(paths):
        dest = target.join(f"{i:03d}-{os.path.basename(p)}")
        size = os.path.getsize(p)
        with naming(dest.uri):
            info = dest.fs.get_file_info(dest.path)
            if info.type == pa.fs.FileType.NotFound or info.size != size:
                if local:
                    shutil.copyfile(p, dest.path)  # the kernel copies; no bytes through Python
                else:
                    with open(p, "rb") as src, dest.fs.open_output_stream(dest.path) as sink:
                        while chunk := src.read(1 << 22):
                            sink.write(chunk)
        out.append({"source": os.path.abspath(p), "raw": dest.uri, "bytes": size})
    return out


def existing_raw(root: Location, import_id: str) -> str | None:
    """The name an earlier import of the same bytes (same import id) stored its raw copy under."""
    for name in root.join("raw").list_dirs():
        if root.join("raw", name, import_id).is_dir():
            return name
    return None

