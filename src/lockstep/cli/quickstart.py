"""`lockstep quickstart`: a synthetic market, its replay and a backtest on it, in one go; with
`--live`, the market served by the loopback venue and the market maker traded live against it,
its journal replayed."""
from __future__ import annotations

import json
import secrets
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from lockstep.backtest.config import BacktestConfig
from lockstep.backtest.replay import replay
from lockstep.backtest.runner import run_backtest
from lockstep.cli.common import DATA_HELP, emit_json, print_backtest, print_replay
from lockstep.data.storage import root_location
from lockstep.data.dataset import Dataset
from lockstep.data.synth import generate
from lockstep.live.config import LiveConfig
from lockstep.live.node import run_live
from lockstep.live.replay import replay_journal

#: The name quickstart gives its dataset, whatever --events and --seed: the one examples/*.toml
#: and the docs name, so they run as written after quickstart (a name opens its newest version).
DATASET = "synthetic-l2"
#: What to run next, printed at the end: works once quickstart has made DATASET.
NEXT = "lockstep backtest examples/market_maker.toml"
#: How long `quickstart --live` trades, and the venue's pace (1.0: the dataset's own).
LIVE_SECONDS = 5.0
LIVE_SPEED = 1.0
_VENUE_WAIT_S = 30.0


@click.command()
@click.option("--data", "data", default=None, help=DATA_HELP)
@click.option("--events", default=2_000_000, show_default=True, help="synthetic events to generate")
@click.option("--seed", default=1, show_default=True)
@click.option("--live", is_flag=True,
              help=f"instead of the backtest: serve the dataset with the loopback venue, trade the "
                   f"market maker live against it for {LIVE_SECONDS:g} s, replay the journal")
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
def quickstart(data: str | None, events: int, seed: int, live: bool, as_json: bool) -> None:
    """Generate a synthetic dataset, replay it, backtest the Python market maker on it (or,
    with --live, trade it live against the loopback venue and replay the session's journal)."""
    dataset = generate(events, seed=seed, data=data, name=DATASET)
    if live:
        _live(dataset, data, seed, as_json)
        return
    result = replay(dataset)
    # examples/market_maker.toml, minus what a fresh machine may not have (the file itself).
    config = BacktestConfig.from_dict(
        {"name": "quickstart-market-maker", "dataset": dataset.path, "seed": seed,
         "strategy": {"path": "lockstep.examples.market_maker:MarketMaker"},
         "risk": {"max_position": "0.02", "max_open_orders": 16}},
        base_dir=".",
    )
    bt = run_backtest(config, data=data, progress=not as_json and sys.stderr.isatty())
    if as_json:
        emit_json({"replay": result.to_dict(), "backtest": bt.to_dict()})
    else:
        click.echo(f"generated {events:,} synthetic events -> {dataset.path}")
        print_replay(result)
        click.echo("")
        print_backtest(bt)
        # The root as an absolute path or URI: the examples' paths are relative to the checkout.
        where = f" --data {shlex.quote(root_location(data).uri)}" if data else ""
        click.echo(f"next         {NEXT}{where}")


def _live(dataset: Dataset, data: str | None, seed: int, as_json: bool) -> None:
    """The loopback venue (a subprocess) serving `dataset`, the market maker trading live
    against it, then the session's journal replayed and compared."""
    password = secrets.token_hex(4)
    with tempfile.TemporaryDirectory(prefix="lockstep-quickstart-") as tmp:
        venue_toml = Path(tmp, "venue.toml")
        venue_toml.write_text(
            '[venue]\nfeed = "udp://127.0.0.1:0"\nretransmit = "udp://127.0.0.1:0"\n'
            'order_entry = "tcp://127.0.0.1:0"\nsnapshot = "tcp://127.0.0.1:0"\nlinger = "60s"\n'
            f'speed = {LIVE_SPEED}\nusers = [{{username = "demo", password = "{password}"}}]\n')
        venue = subprocess.Popen([sys.executable, "-m", "lockstep", "venue", "serve", str(venue_toml),
                                  "--dataset", dataset.path, "--json"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            ports = _listen_line(venue)
            config = LiveConfig.from_dict(
                {"name": "quickstart-live", "dataset": dataset.path, "seed": seed,
                 "strategy": {"path": "lockstep.examples.market_maker:MarketMaker"},
                 "risk": {"max_position": "0.02", "max_open_orders": 16},
                 "live": {**{k: ports[k] for k in ("feed", "retransmit", "order_entry",
                                                   "snapshot")},
                          "username": "demo", "password": password}},
                base_dir=".", source="quickstart")
            if not as_json:
                click.echo(f"generated {dataset.rows:,} synthetic events -> {dataset.path}")
                click.echo(f"venue        {ports['order_entry']} (feed {ports['feed']}), trading "
                           f"{LIVE_SECONDS:g} s live")
            summary = run_live(config, data=data, duration_s=LIVE_SECONDS)
        finally:
            venue.terminate()
            try:
                venue.communicate(timeout=_VENUE_WAIT_S)
            except subprocess.TimeoutExpired:
                venue.kill()
                venue.communicate()
    replayed = replay_journal(summary["journal"]).to_dict()  # JournalMismatch: exit 1, said
    if as_json:
        emit_json({"live": summary, "replay": replayed})
        return
    for key in ("journal", "digest", "orders", "fills", "intents", "denials", "feed_messages"):
        click.echo(f"{key:<14} {summary[key]}")
    # The node joins a feed already running: the messages before its first are a gap it asks
    # the venue's retransmission server for, so a gap here is normally one recovered.
    click.echo(f"{'gaps':<14} {summary['gaps']} ({summary['gaps_recovered']} recovered by "
               f"retransmission, {summary['gaps_abandoned']} given up)")
    click.echo("replayed       every decision, message and the digest reproduced from the journal")
    click.echo(f"next           lockstep replay --journal {shlex.quote(summary['journal'])}")


def _listen_line(venue: subprocess.Popen) -> dict[str, Any]:
    line = venue.stdout.readline()
    if not line:
        raise click.ClickException(f"the loopback venue did not start: {venue.stderr.read().strip()}")
    return json.loads(line)
