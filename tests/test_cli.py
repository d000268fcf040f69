"""The command line, run as a user runs it: a real subprocess in a temporary directory."""
from __future__ import annotations

import gzip
import json
import os
import random
import shlex
import shutil
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
from shared_data import shared_file

LOCKSTEP = shutil.which("lockstep") or "lockstep"


def cli(*args: str, cwd: Path, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k != "LOCKSTEP_DATA"}
    full_env.update(env or {})
    return subprocess.run([LOCKSTEP, *args], cwd=cwd, env=full_env, capture_output=True, text=True,
                          check=check, timeout=600)


def test_quickstart_end_to_end(tmp_path):
    proc = cli("quickstart", cwd=tmp_path)
    out = proc.stdout
    datasets = list((tmp_path / "data" / "canonical").glob("*/v1/manifest.json"))
    assert len(datasets) == 1, out
    manifest = json.loads(datasets[0].read_text())
    assert manifest["rows"] == 2_000_000
    assert "2,000,000" in out and "digest" in out and "top of book" in out
    # quickstart backtests the Python market maker and says where the report is
    report_line = next(line for line in out.splitlines() if line.startswith("report"))
    report = Path(report_line.split()[-1])
    assert report.is_file() and "<svg" in report.read_text()
    assert (report.parent / "fills.parquet").is_file()
    again = cli("quickstart", "--json", cwd=tmp_path)
    summary = json.loads(again.stdout)
    assert summary["replay"]["events"] == 2_000_000
    assert summary["backtest"]["events"] == 2_000_000 and summary["backtest"]["complete"]
    digest_lines = [line for line in out.splitlines() if line.startswith("digest")]
    # same seed, same State, new version: replay and backtest digests both repeat
    assert digest_lines[0].split()[-1] == summary["replay"]["digest"]
    assert digest_lines[1].split()[-1] == summary["backtest"]["digest"]


def test_synth_replay_show_ls_json(tmp_path):
    root = tmp_path / "root"
    synth = json.loads(cli("data", "synth", "--events", "50000", "--seed", "9", "--data", str(root), "--json",
                           cwd=tmp_path).stdout)
    assert synth["events"] == 50000 and Path(synth["dataset"]).is_dir()
    tob = tmp_path / "out" / "tob.parquet"
    rep = json.loads(cli("replay", synth["dataset"], "--top-of-book", str(tob), "--json", cwd=tmp_path).stdout)
    assert rep["events"] == 50000 and len(rep["digest"]) == 64 and rep["events_per_second"] > 0
    assert pq.read_metadata(tob).num_rows == rep["top_of_book_rows"] > 0
    # by name, with the root from the environment
    by_name = json.loads(cli("replay", Path(synth["dataset"]).parent.name, "--json", cwd=tmp_path,
                             env={"LOCKSTEP_DATA": str(root)}).stdout)
    assert by_name["digest"] == rep["digest"]
    listed = json.loads(cli("data", "ls", "--data", str(root), "--json", cwd=tmp_path).stdout)
    assert [d["events"] for d in listed["canonical"]] == [50000] and listed["quarantine"] == []
    assert listed["canonical"][0]["verdict"] == "unvalidated"  # generated, not imported
    shown = json.loads(cli("data", "show", synth["dataset"], "--json", cwd=tmp_path).stdout)
    assert shown["rows"] == 50000 and shown["schema_version"] == 1


def test_errors_are_one_line_not_tracebacks(tmp_path):
    proc = cli("replay", str(tmp_path / "missing"), cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert "no such dataset" in proc.stderr and "Traceback" not in proc.stderr
    proc = cli("data", "synth", "--events", "0", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "--events" in proc.stderr


def test_setting_errors_name_the_flags(tmp_path):
    """Lower layers name settings by key (date, instruments_file, rules); the command line says
    the flag the user typed."""
    capture = tmp_path / "capture.jsonl"
    capture.write_text('{"op": "subscribe", "success": true}\n')
    proc = cli("data", "import", "bybit", str(capture), "--date", "2024-01-01", "--instruments", str(capture),
               cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "error: --date, --instruments does not apply to bybit imports"
    itch = tmp_path / "nodate.itch"
    itch.write_bytes(b"")
    proc = cli("data", "import", "itch", str(itch), cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert "pass --date YYYY-MM-DD, or name the file with its date" in proc.stderr
    proc = cli("data", "import", "bybit", str(capture), "--rule", "feed_latency", cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert "--rule 'feed_latency': expected RULE=ACTION" in proc.stderr


CHECKOUT = Path(__file__).resolve().parents[1]


def test_the_examples_run_as_written_after_quickstart(tmp_path):
    root = tmp_path / "root"
    out = cli("quickstart", "--events", "30000", "--data", str(root), cwd=tmp_path).stdout
    # quickstart ends with the command to run next; run it as printed, from the checkout
    (next_line,) = [line for line in out.splitlines() if line.startswith("next")]
    command = shlex.split(next_line)[1:]
    assert command[:2] == ["lockstep", "backtest"]
    printed = cli(*command[1:], "--json", cwd=CHECKOUT)
    assert json.loads(printed.stdout)["events"] == 30000
    for example in ("market_maker.toml", "market_maker_compiled.toml"):
        proc = cli("backtest", str(CHECKOUT / "examples" / example), "--data", str(root), "--json", cwd=tmp_path,
                   check=False)
        assert proc.returncode == 0, proc.stderr
        summary = json.loads(proc.stdout)
        assert summary["events"] == 30000 and summary["complete"], example


def test_no_such_dataset_lists_the_datasets_there(tmp_path):
    root = tmp_path / "root"
    example = str(CHECKOUT / "examples" / "market_maker.toml")
    proc = cli("backtest", example, "--set", "dataset=nowhere", "--data", str(root), cwd=tmp_path, check=False)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert "nowhere: no such dataset" in proc.stderr and "no datasets" in proc.stderr
    for name in ("beta", "alpha"):
        cli("data", "synth", "--events", "1000", "--name", name, "--data", str(root), cwd=tmp_path)
    proc = cli("replay", "nowhere", "--data", str(root), cwd=tmp_path, check=False)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert "nowhere: no such dataset" in proc.stderr and "alpha, beta" in proc.stderr
def usdm_lines(n: int) -> list[bytes]:
    lines = gzip.decompress(shared_file("binance/usdm/btcusdt_20240808.gz").read_bytes()).splitlines(keepends=True)
    return lines[:n]


def import_json(path: Path, cwd: Path) -> tuple[int, dict]:
    proc = cli("data", "import", "binance", str(path), "--json", cwd=cwd, check=False)
    return proc.returncode, json.loads(proc.stdout)


def test_import_exit_status_says_the_verdict(tmp_path):
    """A script can tell pass (0), partial (4) and fail (5) apart by the exit status alone."""
    clean = tmp_path / "clean.jsonl"
    clean.write_bytes(b"".join(usdm_lines(3000)))
    code, summary = import_json(clean, tmp_path)
    assert (code, summary["verdict"]) == (0, "pass")
    lines = usdm_lines(3000)
    broken = tmp_path / "broken.jsonl"
    broken.write_bytes(b"".join(lines[:1500]) + b"{not json\n" + b"".join(lines[1500:]))
    code, summary = import_json(broken, tmp_path)
    assert (code, summary["verdict"]) == (4, "partial")
    assert summary["records_quarantined"] >= 1 and summary["paths"]["canonical"]
    noise = tmp_path / "noise.bin"
    noise.write_bytes(random.Random(1).randbytes(200_000))
    code, summary = import_json(noise, tmp_path)
    assert (code, summary["verdict"]) == (5, "fail")
    assert summary["paths"]["canonical"] is None


def test_imports_that_found_no_instrument_do_not_share_a_name(tmp_path):
    names = []
    for seed in (1, 2):
        noise = tmp_path / f"noise{seed}.bin"
        noise.write_bytes(random.Random(seed).randbytes(50_000))
        code, summary = import_json(noise, tmp_path)
        assert code == 5 and not summary["instruments"]
        assert summary["import_id"] in summary["name"]
        names.append(summary["name"])
    assert names[0] != names[1]
    quarantined = {p.name for p in (tmp_path / "data" / "quarantine").iterdir()}
    assert quarantined == set(names)


def test_a_strategy_file_that_does_not_parse_is_one_line_naming_file_line_and_text(tmp_path):
    cli("data", "synth", "--events", "2000", "--name", "tiny", "--data", "data", cwd=tmp_path)
    (tmp_path / "broken.py").write_text("import lockstep\n\nclass Broken(lockstep.Strategy)\n    pass\n")
    (tmp_path / "broken.toml").write_text('dataset = "tiny"\n[strategy]\npath = "broken.py:Broken"\n')
    proc = cli("backtest", "broken.toml", "--data", "data", cwd=tmp_path, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert "broken.py" in line and "line 3" in line and "class Broken(lockstep.Strategy)" in line
    assert not (tmp_path / "data" / "experiments").exists()  # refused before any run directory


def test_an_operating_system_error_is_one_line_and_debug_shows_its_traceback(tmp_path):
    (tmp_path / "not-a-folder").write_text("a file where the storage root should be\n")
    proc = cli("data", "synth", "--events", "1000", "--data", "not-a-folder", cwd=tmp_path, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: ") and "not-a-folder" in line
    debug = cli("--debug", "data", "synth", "--events", "1000", "--data", "not-a-folder", cwd=tmp_path,
                check=False)
    assert debug.returncode == 1 and "Traceback" in debug.stderr
    last = debug.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "not-a-folder" in last
