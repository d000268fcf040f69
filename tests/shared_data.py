"""The real venue captures in ../shared/data, for tests and benchmarks."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_file(relative: str) -> Path:
    """A file of ../shared/data, or a skip (a failure under CI=true) when it is absent."""
    path = SHARED_DATA / relative
    if not path.exists():
        reason = f"real-data fixture {path} is absent (../shared/data not beside the checkout)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path
