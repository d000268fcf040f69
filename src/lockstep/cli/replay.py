"""`lockstep replay DATASET`."""
from __future__ import annotations

import click

from lockstep.backtest.replay import replay
from lockstep.cli.common import DATA_HELP, emit_json, print_replay


@click.command("replay")
@click.argument("dataset")
@click.option("--top-of-book", "top_of_book", default=None, metavar="OUT.parquet",
              help="write one row per complete venue message")
@click.option("--data", "data", default=None, help=DATA_HELP)
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
def replay_cmd(dataset: str, top_of_book: str | None, data: str | None, as_json: bool) -> None:
    """Replay DATASET (a path, or a name under DATA/canonical) through the books."""
    result = replay(dataset, top_of_book=top_of_book, data=data)
    if as_json:
        emit_json(result.to_dict())
    else:
        print_replay(result)
