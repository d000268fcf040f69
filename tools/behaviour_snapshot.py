#!/usr/bin/env python3
"""What a change of structure must not move, as one JSON document, read through the CLI only.

    python tools/behaviour_snapshot.py OUT.json [--work DIR]
    git stash; python tools/behaviour_snapshot.py before.json; git stash pop   # or two checkouts
    python tools/behaviour_snapshot.py after.json && diff before.json after.json

It drives the installed `lockstep` command (never the Python API, whose module paths a reshaping
moves) over every fixture in ../shared/data and over seeded synthetic data: import reports (counts,
verdicts, warnings and quarantine entries), replay digests and a content hash of each top-of-book
file, and both example market makers' backtest digests with content hashes of their orders and
fills. Wall-clock fields (seconds, rates, run directories, timestamps of writing) are dropped.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
EXAMPLES = ROOT / "examples"

IMPORTS = {
    "binance-spot": ("binance", ["binance/spot/btcusdt_20240808.gz", "binance/spot/btcusdt_20240809.gz"], []),
    "binance-usdm": ("binance", ["binance/usdm/btcusdt_20240808.gz"], []),
    "bybit": ("bybit", ["bybit/xrpusdt_ob500_20241201.data.zip"], []),
    "tardis": ("tardis", ["tardis/deribit_incremental_book_L2_BTC-PERPETUAL.csv"], ["--venue", "deribit"]),
    "dbn-mbo": ("dbn", ["databento/test_data.mbo.dbn"], []),
    "dbn-mbp10": ("dbn", ["databento/test_data.mbp-10.dbn"], []),
    "dbn-trades": ("dbn", ["databento/test_data.trades.dbn"], []),
    "dbn-esh4": ("dbn", ["databento/esh4-glbx-mdp3-20231224.mbo.dbn.zst"], []),
    "itch": ("itch", ["itch/ex20101224.TEST_ITCH_50.gz"], ["--date", "2010-12-24"]),
    "itch-warn": ("itch", ["itch/ex20101224.TEST_ITCH_50.gz"],
                  ["--date", "2010-12-24", "--rule", "crossed_book=warn"]),
}
VOLATILE = {"seconds", "events_per_second", "records_per_second", "mb_per_second", "run_dir",
            "paths", "created", "created_at", "elapsed", "rate", "bytes_per_second", "import_id",
            "written_at", "path", "dataset_path", "uri", "root", "top_of_book_path"}


def cli(*args: str) -> dict | list:
    proc = subprocess.run(["lockstep", *args, "--json"], capture_output=True, text=True, timeout=600)
    if proc.returncode not in (0, 3, 4, 5):  # 3-5: verdicts, still printed in full
        return {"exit": proc.returncode, "stderr": proc.stderr.strip().splitlines()[-1:]}
    return {"exit": proc.returncode, "out": json.loads(proc.stdout.strip().splitlines()[-1])}


def scrub(value, root: str):
    if isinstance(value, dict):
        return {k: scrub(v, root) for k, v in sorted(value.items()) if k not in VOLATILE}
    if isinstance(value, list):
        return [scrub(v, root) for v in value]
    if isinstance(value, str):
        return value.replace(root, "<root>")
    return value


def table_hash(path: Path) -> str | None:
    if not path.exists():
        return None
    table = pq.read_table(path)
    h = hashlib.sha256()
    for name in table.column_names:
        h.update(name.encode())
        h.update(repr(table.column(name).to_pylist()).encode())
    return f"{table.num_rows} rows {h.hexdigest()[:16]}"


def files_hash(directory: Path, pattern: str) -> dict[str, str]:
    return {p.name: table_hash(p) for p in sorted(directory.glob(pattern))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--work", default=None, help="scratch storage root (default: a temp dir)")
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="lockstep-snapshot-"))
    if args.work and work.exists():
        ap.error(f"--work {work} exists: a snapshot needs a fresh root (versions would differ)")
    data = str(work / "data")
    os.environ["LOCKSTEP_DATA"] = data
    snap: dict = {"imports": {}, "replays": {}, "backtests": {}}

    datasets = {}
    for name, (fmt, files, extra) in IMPORTS.items():
        res = cli("data", "import", fmt, *[str(SHARED / f) for f in files], "--name", name,
                  "--data", data, *extra)
        snap["imports"][name] = scrub(res, data)
        out = res.get("out", {})
        canonical = Path(data, "canonical", name)
        if canonical.exists():
            datasets[name] = name
        for q in sorted(Path(data, "quarantine", name).glob("*/records.parquet")):
            snap["imports"][name]["quarantine_records"] = table_hash(q)
        del out

    for book in ("l2", "l3"):
        name = f"synth-{book}"
        snap["imports"][name] = scrub(cli("data", "synth", "--events", "300000", "--seed", "3",
                                          "--book", book, "--name", name, "--data", data), data)
        datasets[name] = name

    for name in sorted(datasets):
        tob = work / f"tob-{name}.parquet"
        res = cli("replay", name, "--top-of-book", str(tob), "--data", data)
        snap["replays"][name] = {"result": scrub(res, data), "top_of_book": table_hash(tob)}

    for cfg in ("market_maker.toml", "market_maker_compiled.toml"):
        for name in ("binance-usdm", "synth-l2", "synth-l3"):
            res = cli("backtest", str(EXAMPLES / cfg), "--set", f"dataset={name}", "--data", data)
            entry = {"result": scrub(res, data)}
            run_dir = res.get("out", {}).get("run_dir")
            if run_dir:
                entry["tables"] = files_hash(Path(run_dir), "*.parquet")
            snap["backtests"][f"{cfg}:{name}"] = entry

    Path(args.out).write_text(json.dumps(snap, indent=1, sort_keys=True) + "\n")
    print(f"{args.out}: {len(snap['imports'])} imports, {len(snap['replays'])} replays, "
          f"{len(snap['backtests'])} backtests (scratch {work})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
