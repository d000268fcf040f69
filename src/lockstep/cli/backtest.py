"""`lockstep backtest CONFIG.toml`."""
from __future__ import annotations

import sys

import click

from lockstep.backtest.runner import BacktestFailed, BacktestInterrupted, run_backtest
from lockstep.cli.common import DATA_HELP, emit_json, print_backtest


@click.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="override a config key (repeatable), e.g. --set dataset=PATH")
@click.option("--data", "data", default=None, help=DATA_HELP)
@click.option("--json", "as_json", is_flag=True, help="print the summary as one JSON object")
def backtest(config: str, overrides: tuple[str, ...], data: str | None, as_json: bool) -> None:
    """Run the backtest CONFIG (TOML) describes; outputs go to DATA/experiments/<run id>/."""
    try:
        bt = run_backtest(config, overrides=overrides, data=data,
                          progress=not as_json and sys.stderr.isatty())
    except (BacktestFailed, BacktestInterrupted) as e:
        err = e.result.summary.get("error", {})
        if err.get("traceback"):
            click.echo(err["traceback"].rstrip(), err=True)
        if as_json:
            emit_json(e.result.to_dict())
        raise
    if as_json:
        emit_json(bt.to_dict())
    else:
        print_backtest(bt)
