"""Failures the operating system reports (a full disk, a read-only folder, a path too long, a
storage root nobody answers for), met by the command line as a user meets them: one line naming
the path and the cause, exit status 1, no traceback unless --debug asks for it, and nothing
half-written left behind (no dataset version, no staging folder, no empty area)."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from shared_data import shared_file
from test_cli import cli

from lockstep.data.storage import locate

SPOT = "binance/spot/btcusdt_20240808.gz"
TARDIS = "tardis/deribit_incremental_book_L2_BTC-PERPETUAL.csv"
TEST_CONFIG = 'name = "mm"\ndataset = "s"\n[strategy]\npath = "lockstep.examples.market_maker:MarketMaker"\n'


@pytest.fixture
def mount_tmpfs():
    """mount(folder, size, read_only=False): a tmpfs of `size` at `folder` (created), unmounted
    after the test; the test is skipped, saying why, where mounting is not permitted."""
    mounted: list[Path] = []

    def mount(folder: Path, size: str) -> Path:
        if shutil.which("mount") is None:
            pytest.skip("no mount command here: a small filesystem cannot be made")
        folder.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            pytest.skip(f"mounting a tmpfs is not permitted here ({proc.stderr.strip()})")
        mounted.append(folder)
        return folder

    yield mount
    for folder in reversed(mounted):
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


def read_only(folder: Path) -> None:
    proc = subprocess.run(["mount", "-o", "remount,ro", str(folder)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"remounting read-only is not permitted here ({proc.stderr.strip()})")


def fill(folder: Path, leave: int) -> None:
    """Fills the filesystem of `folder` up to `leave` free bytes."""
    st = os.statvfs(folder)
    (folder / "filler").write_bytes(b"\0" * max(0, st.f_bavail * st.f_frsize - leave))


def one_line(proc: subprocess.CompletedProcess, *needles: str) -> str:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: ")
    for needle in needles:
        assert needle in line, line
    return line


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def canonical_versions(root: Path, cwd: Path) -> list:
    return json.loads(cli("data", "ls", "--data", str(root), "--json", cwd=cwd).stdout)["canonical"]


def test_a_full_disk_during_an_import_leaves_nothing(tmp_path, mount_tmpfs):
    root = mount_tmpfs(tmp_path / "small", "2m")
    proc = cli("data", "import", "binance", str(shared_file(SPOT)), "--data", str(root), cwd=tmp_path, check=False)
    one_line(proc, "No space left on device", str(root))
    assert tree(root) == []  # no raw copy, no half-written normalized files, no empty areas
    debug = cli("--debug", "data", "import", "binance", str(shared_file(SPOT)), "--data", str(root),
                cwd=tmp_path, check=False)
    assert debug.returncode == 1 and "Traceback" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1].startswith("error: ")
    assert tree(root) == []


def test_a_full_disk_during_a_promote_publishes_no_version(tmp_path, mount_tmpfs):
    root = mount_tmpfs(tmp_path / "small", "8m")
    staged = json.loads(cli("data", "import", "binance", str(shared_file(SPOT)), "--name", "spot",
                            "--stop-after", "normalize", "--data", str(root), "--json", cwd=tmp_path).stdout)
    before = tree(root)
    fill(root, leave=64 << 10)
    proc = cli("data", "promote", staged["paths"]["normalized"], "--data", str(root), cwd=tmp_path, check=False)
    one_line(proc, "No space left on device", str(root))
    (root / "filler").unlink()
    assert tree(root) == before  # no staging folder, no canonical/spot, no quarantine entry
    assert canonical_versions(root, tmp_path) == []


@pytest.fixture
def config(tmp_path) -> Path:
    """mm.toml: the market maker on the dataset "s"."""
    (tmp_path / "mm.toml").write_text(TEST_CONFIG)
    return tmp_path / "mm.toml"


@pytest.fixture
def small_dataset(tmp_path, config) -> Path:
    root = tmp_path / "root"
    cli("data", "synth", "--events", "100000", "--name", "s", "--data", str(root), cwd=tmp_path)
    return root


def test_a_full_disk_while_a_backtest_writes_removes_its_run(tmp_path, small_dataset, mount_tmpfs):
    experiments = mount_tmpfs(small_dataset / "experiments", "16k")
    proc = cli("backtest", "mm.toml", "--data", str(small_dataset), cwd=tmp_path, check=False)
    one_line(proc, "No space left on device", str(experiments))
    assert tree(experiments) == []  # the cut-short run directory is gone


def test_an_unwritable_root_is_one_line_for_import_and_backtest(tmp_path, config, mount_tmpfs):
    root = mount_tmpfs(tmp_path / "ro", "4m")
    cli("data", "synth", "--events", "2000", "--name", "s", "--data", str(root), cwd=tmp_path)
    read_only(root)
    proc = cli("data", "import", "tardis", str(shared_file(TARDIS)), "--data", str(root), cwd=tmp_path, check=False)
    one_line(proc, "Read-only file system", str(root))
    proc = cli("backtest", "mm.toml", "--data", str(root), cwd=tmp_path, check=False)
    one_line(proc, "Read-only file system", str(root / "experiments"))
    assert tree(root) == ["canonical", "canonical/s", "canonical/s/v1", "canonical/s/v1/manifest.json",
                          "canonical/s/v1/part-00000.parquet"]


def test_an_unwritable_experiments_folder_is_one_line(tmp_path, small_dataset, mount_tmpfs):
    experiments = mount_tmpfs(small_dataset / "experiments", "1m")
    read_only(experiments)
    proc = cli("backtest", "mm.toml", "--data", str(small_dataset), cwd=tmp_path, check=False)
    one_line(proc, "Read-only file system", str(experiments))
    # an import into the same root writes no experiments and is unaffected
    proc = cli("data", "import", "tardis", str(shared_file(TARDIS)), "--name", "t", "--data", str(small_dataset),
               cwd=tmp_path, check=False)
    assert proc.returncode in (0, 4, 5) and "Traceback" not in proc.stderr


def test_a_path_too_long_for_the_filesystem_is_one_line(tmp_path):
    # Within the name limit (200 characters), beyond the operating system's limit on a path.
    root = tmp_path.joinpath(*["d" * 200] * ((os.pathconf(tmp_path, "PC_PATH_MAX") // 201) - 1))
    root.mkdir(parents=True)
    name = "n" * 200
    proc = cli("data", "import", "tardis", str(shared_file(TARDIS)), "--name", name, "--data", str(root),
               cwd=tmp_path, check=False)
    one_line(proc, "File name too long", name)
    assert tree(root) == []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_s3_root_is_one_line_within_seconds(tmp_path):
    root = f"s3://bucket/root?endpoint_override=127.0.0.1:{free_port()}&scheme=http"
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_EC2_METADATA_DISABLED": "true"}
    try:
        from pyarrow.fs import S3FileSystem  # noqa: F401  (optional in a pyarrow build)
    except ImportError:  # this pyarrow has no S3: the error says so
        proc = cli("data", "ls", "--data", root, cwd=tmp_path, env=env, check=False)
        one_line(proc, root, "S3")
        return
    for args in (("data", "ls"), ("data", "import", "tardis", str(shared_file(TARDIS)))):
        start = time.monotonic()
        proc = cli(*args, "--data", root, cwd=tmp_path, env=env, check=False)
        assert time.monotonic() - start < 30  # the SDK's own retries took tens of seconds per request
        one_line(proc, "s3://bucket/root", "127.0.0.1", "connect")


def test_a_uri_roots_query_stays_at_the_end_of_the_paths_under_it():
    root = locate("s3://bucket/root?endpoint_override=127.0.0.1:9&scheme=http")
    below = root.join("canonical", "spot")
    assert below.uri == "s3://bucket/root/canonical/spot?endpoint_override=127.0.0.1:9&scheme=http"
    assert below.path == "bucket/root/canonical/spot"
