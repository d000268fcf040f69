"""SOURCE of `data validate` and `data promote` as the README writes it (`normalized/<name>/<id>`,
`quarantine/<name>/<id>`) names a place under the storage root, whatever the working directory."""
from __future__ import annotations

import json
from pathlib import Path

from test_cli import cli
from test_names import write_input


def relative_to_root(path: str, root: Path) -> str:
    return Path(path).relative_to(root).as_posix()


def test_relative_sources_resolve_against_the_root_from_another_directory(tmp_path):
    root = tmp_path / "store" / "root"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    src = write_input(tmp_path / "inputs")
    staged = json.loads(cli("data", "import", "tardis", str(src), "--name", "book", "--stop-after", "normalize",
                            "--data", str(root), "--json", cwd=elsewhere).stdout)
    normalized = relative_to_root(staged["paths"]["normalized"], root)
    assert normalized.startswith("normalized/book/")
    checked = cli("data", "validate", normalized, "--data", str(root), "--json", cwd=elsewhere, check=False)
    assert checked.returncode == 3, checked.stderr  # the crossed records would be quarantined
    assert json.loads(checked.stdout)["records_read"] == 4
    proc = cli("data", "promote", normalized, "--json", cwd=elsewhere, env={"LOCKSTEP_DATA": str(root)},
               check=False)
    assert proc.returncode == 4, proc.stderr  # partial: two records promoted, two quarantined
    promoted = json.loads(proc.stdout)
    assert (promoted["records_canonical"], promoted["records_quarantined"]) == (2, 2)
    # the README's fix-and-promote step, on the quarantine entry named from the root
    entry = relative_to_root(promoted["paths"]["quarantine"], root)
    assert entry.startswith("quarantine/book/")
    proc = cli("data", "promote", entry, "--name", "book-fixed", "--data", str(root), "--json",
               cwd=elsewhere, check=False)
    assert proc.returncode == 5, proc.stderr  # fail: the same crossed records quarantined again
    again = json.loads(proc.stdout)
    assert again["records_read"] == 2 and again["paths"]["requeued_from"] == promoted["paths"]["quarantine"]
    # the short forms: the newest import of a name, the newest quarantine entry of a name
    newest = json.loads(cli("data", "validate", "normalized/book", "--data", str(root), "--json",
                            cwd=elsewhere, check=False).stdout)
    assert newest["paths"]["normalized"] == staged["paths"]["normalized"]


def test_a_relative_source_found_only_beside_the_working_directory_still_works(tmp_path):
    root = tmp_path / "root"
    src = write_input(tmp_path / "inputs")
    staged = json.loads(cli("data", "import", "tardis", str(src), "--name", "book", "--stop-after", "normalize",
                            "--data", str(root), "--json", cwd=tmp_path).stdout)
    normalized = relative_to_root(staged["paths"]["normalized"], root)
    other_root = tmp_path / "empty-root"
    checked = cli("data", "validate", normalized, "--data", str(other_root), "--json", cwd=root, check=False)
    assert checked.returncode == 3, checked.stderr
    assert json.loads(checked.stdout)["paths"]["normalized"] == staged["paths"]["normalized"]
    missing = cli("data", "validate", "normalized/nobody/0", "--data", str(root), cwd=tmp_path, check=False)
    assert missing.returncode == 1 and "normalized/nobody/0: no such" in missing.stderr
