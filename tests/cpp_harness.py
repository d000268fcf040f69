"""The C++ harnesses of tests/cpp, each built against include/ under AddressSanitizer and UBSan
(any error stops it: a read past a buffer, an overflow, a misaligned load)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CXX = shutil.which("g++") or shutil.which("clang++")

#: For a test that needs a harness: skipped where no C++ compiler is installed.
needs_compiler = pytest.mark.skipif(CXX is None, reason="no C++ compiler to build the sanitizer harness")


def build(name: str, out_dir: Path) -> Path:
    """tests/cpp/NAME.cpp built into out_dir; the executable's path."""
    exe = out_dir / name
    built = subprocess.run(
        [CXX, "-std=c++20", "-O1", "-g", "-fsanitize=address,undefined",
         "-fno-sanitize-recover=all", "-I", str(ROOT / "include"),
         str(ROOT / "tests" / "cpp" / f"{name}.cpp"), "-o", str(exe)],
        capture_output=True, text=True, timeout=300, check=False)
    assert built.returncode == 0, built.stderr[-3000:]
    return exe


def run(exe: Path, *args: str, stdin: str | None = None) -> str:
    """What the harness printed; it must exit 0."""
    done = subprocess.run([str(exe), *args], input=stdin, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout
