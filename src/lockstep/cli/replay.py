"""`lockstep replay DATASET` and `lockstep replay --journal PATH`."""
from __future__ import annotations

import sys

import click

from lockstep.backtest.replay import replay
from lockstep.cli.common import DATA_HELP, ExitCode, emit_json, print_replay
from lockstep.live.replay import JournalMismatch, replay_journal
from lockstep.live.session import DIGEST_VERSION


@click.command("replay")
@click.argument("dataset", required=False)
@click.option("--journal", "journal", default=None, metavar="PATH",
              help="replay a live session's journal (its directory, or the session's) and "
                   "compare every decision, message and the digest")
@click.option("--top-of-book", "top_of_book", default=None, metavar="OUT.parquet",
              help="write one row per complete venue message")
@click.option("--data", "data", default=None, help=DATA_HELP)
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
def replay_cmd(dataset: str | None, journal: str | None, top_of_book: str | None, data: str | None,
               as_json: bool) -> None:
    """Replay DATASET (a path, or a name under DATA/canonical) through the books, or with
    --journal a live session's journal through the live core (exit 7 if it differs)."""
    if (dataset is None) == (journal is None):
        raise click.UsageError("give a DATASET or --journal PATH (one of them)")
    if journal is not None:
        if top_of_book is not None:
            raise click.UsageError("--top-of-book is for datasets, not --journal")
        _replay_journal(journal, as_json)
        return
    result = replay(dataset, top_of_book=top_of_book, data=data)
    if as_json:
        emit_json(result.to_dict())
    else:
        print_replay(result)


def _replay_journal(journal: str, as_json: bool) -> None:
    try:
        result = replay_journal(journal)
    except JournalMismatch as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(ExitCode.REPLAY_DIFFERS)
    if as_json:
        emit_json(result.to_dict())
        return
    click.echo(f"journal      {result.journal}")
    click.echo(f"digest       {result.digest}")
    click.echo(f"intents      {result.intents:,}  denials {result.denials:,}")
    click.echo(f"orders       {result.orders:,}  fills {result.fills:,}")
    if result.digest_checked:
        click.echo("reproduced   every decision, message and the digest")
    else:
        click.echo("reproduced   every decision and message; the digest not checked: the journal "
                   f"was written under another digest definition than this build's ({DIGEST_VERSION})")
