"""`lockstep quickstart`: a synthetic market, its replay and a backtest on it, in one go."""
from __future__ import annotations

import sys

import click

from lockstep.backtest.config import BacktestConfig
from lockstep.backtest.replay import replay
from lockstep.backtest.runner import run_backtest
from lockstep.cli.common import DATA_HELP, emit_json, print_backtest, print_replay
from lockstep.data.synth import generate


@click.command()
@click.option("--data", "data", default=None, help=DATA_HELP)
@click.option("--events", default=2_000_000, show_default=True, help="synthetic events to generate")
@click.option("--seed", default=1, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
def quickstart(data: str | None, events: int, seed: int, as_json: bool) -> None:
    """Generate a synthetic dataset, replay it, backtest the Python market maker on it."""
    dataset = generate(events, seed=seed, data=data)
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
