"""The `lockstep` command line: argument parsing and printing over the Python API, nothing else.

One module per command (or command group); a command's module, and the layers it uses, load
only when that command runs, so `lockstep replay` does not pay for the backtest machinery.
Exit status (`cli.common.ExitCode`; the table in docs/architecture.md): 0 success (an import
whose verdict is pass; `venue serve` stopped by SIGINT / SIGTERM), 1 an error lockstep diagnosed (printed as one line), 2 a usage error,
3 `data validate` found records that would be quarantined, 4 an import or promotion whose
verdict is partial (some records quarantined), 5 one whose verdict is fail (nothing promoted),
6 `live ctl` found no node answering, 7 a journal replay that did not reproduce its session,
130 stopped by Ctrl-C (printed as one line; what was written is marked incomplete).
"""
from __future__ import annotations

import importlib
import sys
import traceback
from typing import Any

import click

from lockstep.cli.common import ExitCode, message
from lockstep.errors import LockstepError

#: Command name -> "module:attribute" of its click command, imported when it is run or listed.
COMMANDS = {
    "quickstart": "lockstep.cli.quickstart:quickstart",
    "backtest": "lockstep.cli.backtest:backtest",
    "replay": "lockstep.cli.replay:replay_cmd",
    "data": "lockstep.cli.data:data",
    "venue": "lockstep.cli.venue:venue",
    "live": "lockstep.cli.live:live",
    "record": "lockstep.cli.record:record",
}


class LazyGroup(click.Group):
    """Loads each command's module on first use (click's documented lazy-loading pattern), and
    turns lockstep's own errors into a one-line message and exit status 1, and Ctrl-C into one
    line and 130, never a traceback."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return super().get_command(ctx, name)
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(module), attr)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LockstepError as e:
            click.echo(f"error: {message(e)}", err=True)
            sys.exit(ExitCode.ERROR)
        except OSError as e:  # the storage root unwritable, a file where a folder must be, a full disk
            if _debug(ctx):
                traceback.print_exc()
            where = f"{e.filename}: " if e.filename else ""
            click.echo(f"error: {where}{e.strerror or e}", err=True)
            sys.exit(ExitCode.ERROR)
        except KeyboardInterrupt as e:
            # The layers below stop cleanly on it (a backtest marks its outputs incomplete, an
            # import leaves only staged, unpromoted versions) and may say where they stopped.
            click.echo(f"interrupted: {e}" if str(e) else "interrupted", err=True)
            sys.exit(ExitCode.INTERRUPTED)


def _debug(ctx: click.Context) -> bool:
    return bool(ctx.find_root().params.get("debug"))


@click.group(cls=LazyGroup)
@click.version_option(package_name="lockstep")
@click.option("--debug", is_flag=True, help="print the traceback of an operating-system error")
def main(debug: bool) -> None:
    """lockstep: one compiled core for backtests and live trading."""


__all__ = ["COMMANDS", "LazyGroup", "main"]
