"""Dataset names never reach outside the storage root: a hostile name is refused, in one line
naming it and what is wrong, before anything is written, through the API and the command line."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli import cli

from lockstep.data.pipeline import import_data, promote_source
from lockstep.errors import DatasetError

HEADER = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount"
# A snapshot, then a bid through the ask: the last two records land in quarantine.
ROWS = ["deribit,BTC-PERPETUAL,900,1000,true,bid,100,10", "deribit,BTC-PERPETUAL,900,1000,true,ask,101,10",
        "deribit,BTC-PERPETUAL,1900,2000,false,bid,102,10", "deribit,BTC-PERPETUAL,2900,3000,false,bid,99,10"]

OUTSIDE = "@outside"  # stands for an absolute path beside the root (the test's own directory)
TRAVERSAL = ["../x", "../../x", "../../../x", "a/../../x", OUTSIDE]
HOSTILE = [*TRAVERSAL, "", ".", "..", "a/b", "a\\b", "x\n", "a\tb", "a\x1bb", "x" * 300]
ARGV_HOSTILE = HOSTILE  # every one of them can be a command-line argument (no NUL)


def write_input(where: Path) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    path = where / "book.csv"
    path.write_text("\n".join([HEADER, *ROWS]) + "\n")
    return path


def everything_under(top: Path) -> list[str]:
    return sorted(str(p.relative_to(top)) for p in top.rglob("*"))


@pytest.fixture
def place(tmp_path: Path):
    """tmp/work/root is the storage root, tmp/inputs holds the input; tmp is listed before and after."""
    root = tmp_path / "work" / "root"
    root.mkdir(parents=True)
    return tmp_path, root, write_input(tmp_path / "inputs")


def concrete(name: str, top: Path) -> str:
    return str(top / "abs" / "x") if name == OUTSIDE else name


def check_refusal(message: str, name: str) -> None:
    assert message.count("\n") == 0 and message.startswith("dataset name "), message
    if len(name) <= 60:
        assert repr(name) in message


@pytest.mark.parametrize("name", [*HOSTILE, "a\x00b"])
def test_import_data_refuses_a_hostile_name_and_writes_nothing(place, name):
    top, root, src = place
    name = concrete(name, top)
    before = everything_under(top)
    with pytest.raises(DatasetError) as refused:
        import_data("tardis", [src], data=str(root), name=name)
    check_refusal(str(refused.value), name)
    assert everything_under(top) == before


@pytest.mark.parametrize("name", ARGV_HOSTILE)
def test_cli_import_refuses_a_hostile_name_and_writes_nothing(place, name):
    top, root, src = place
    name = concrete(name, top)
    before = everything_under(top)
    proc = cli("data", "import", "tardis", str(src), "--name", name, "--data", str(root), cwd=top / "work",
               check=False)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("error: ")
    check_refusal(proc.stderr.rstrip("\n")[len("error: "):], name)
    assert everything_under(top) == before


@pytest.fixture
def quarantined(place):
    """The place with one import done: its quarantine entry is what gets promoted again."""
    top, root, src = place
    result = import_data("tardis", [src], data=str(root), name="book")
    assert result.records_quarantined == 2
    return top, root, result.paths["quarantine"]


@pytest.mark.parametrize("name", [*HOSTILE, "a\x00b"])
def test_promote_source_refuses_a_hostile_name_and_writes_nothing(quarantined, name):
    top, root, entry = quarantined
    name = concrete(name, top)
    before = everything_under(top)
    with pytest.raises(DatasetError) as refused:
        promote_source(entry, data=str(root), name=name)
    check_refusal(str(refused.value), name)
    assert everything_under(top) == before


@pytest.mark.parametrize("name", ARGV_HOSTILE)
def test_cli_promote_refuses_a_hostile_name_and_writes_nothing(quarantined, name):
    top, root, entry = quarantined
    name = concrete(name, top)
    before = everything_under(top)
    proc = cli("data", "promote", entry, "--name", name, "--data", str(root), cwd=top / "work", check=False)
    assert proc.returncode == 1, proc.stderr
    check_refusal(proc.stderr.rstrip("\n")[len("error: "):], name)
    assert everything_under(top) == before


def test_a_good_name_still_imports_and_promotes(place):
    top, root, src = place
    proc = cli("data", "import", "tardis", str(src), "--name", "Book_1.v-2", "--data", str(root), "--json",
               cwd=top, check=False)
    assert proc.returncode == 4, proc.stderr  # partial: the records before the snapshot are quarantined
    imported = json.loads(proc.stdout)
    assert Path(imported["paths"]["canonical"]).parent == root / "canonical" / "Book_1.v-2"
    proc = cli("data", "promote", imported["paths"]["quarantine"], "--name", "9book", "--data", str(root),
               "--json", cwd=top, check=False)
    assert proc.returncode == 5, proc.stderr  # nothing promoted this time
    again = json.loads(proc.stdout)
    # the requeued records still fail (no snapshot before them): they land in quarantine again
    assert again["name"] == "9book" and again["records_quarantined"] == 2
    assert Path(again["paths"]["quarantine"]).parent == root / "quarantine" / "9book"
