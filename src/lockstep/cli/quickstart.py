"""`lockstep quickstart`: a synthetic market, its replay and a backtest on it, in one go."""
from __future__ import annotations

import shlex
import sys

import click

from lockstep.backtest.config import BacktestConfig
from lockstep.backtest.replay import replay
from lockstep.backtest.runner import run_backtest
from lockstep.cli.common import DATA_HELP, emit_json, print_backtest, print_replay
from lockstep.data.storage import root_location
from lockstep.data.synth import generate

#: The name quickstart gives its dataset, whatever --events and --seed: the one examples/*.toml
#: and the docs name, so they run as written after quickstart (a name opens its newest version).
DATASET = "synthetic-l2"
#: What to run next, printed at the end: works once quickstart has made DATASET.
NEXT = "lockstep backtest examples/market_maker.toml"


@click.command()
@click.option("--data", "data", default=None, help=DATA_HELP)
@click.option("--events", default=2_000_000, show_default=True, help="synthetic events to generate")
@click.option("--seed", default=1, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
def quickstart(data: str | None, events: int, seed: int, as_json: bool) -> None:
    """Generate a synthetic dataset, replay it, backtest the Python market maker on it."""
    dataset = generate(events, seed=seed, data=data, name=DATASET)
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
