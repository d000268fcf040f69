"""What every command shares: the storage-root option's help, settings named by their flags,
JSON and text output of the API's results."""
from __future__ import annotations

import json
from enum import IntEnum
from typing import Any

import click

from lockstep.errors import ConfigError, SettingError
from lockstep.tomlconfig import OVERRIDE_SOURCE


class ExitCode(IntEnum):
    """The exit status of every command, for scripts (the table in docs/architecture.md)."""

    OK = 0  #: success; an import whose verdict is pass (or that stopped before validating);
    #: `venue serve` stopped by SIGINT / SIGTERM (a server's normal end)
    ERROR = 1  #: a failure lockstep diagnosed, printed as one line
    USAGE = 2  #: a usage error: unknown command or flag, bad flag value
    WOULD_QUARANTINE = 3  #: `data validate` found records that would be quarantined
    IMPORT_PARTIAL = 4  #: `data import` / `data promote` verdict partial: some records quarantined
    IMPORT_FAILED = 5  #: `data import` / `data promote` verdict fail: nothing promoted
    NODE_UNREACHABLE = 6  #: `live ctl`: no live node answers at the control socket
    INTERRUPTED = 130  #: stopped by Ctrl-C (SIGINT), as shells report it (128 + 2)


DATA_HELP = "storage root (default: $LOCKSTEP_DATA, else ./data)"

#: The flag of each setting whose flag is not its key with dashes (lower layers name settings by key).
FLAGS = {"instruments_file": "--instruments", "rules": "--rule"}


def flag(setting: str) -> str:
    """The command-line flag of a setting key."""
    return FLAGS.get(setting, "--" + setting.replace("_", "-"))


def message(error: Exception) -> str:
    """An error's text with the settings it names called by their flags."""
    if isinstance(error, SettingError):
        return error.naming(flag)
    text = str(error)
    if isinstance(error, ConfigError) and error.source == OVERRIDE_SOURCE:
        return "--set" + text[len(OVERRIDE_SOURCE):]
    return text


def emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, sort_keys=False, default=str))


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.10g}"


def print_replay(result) -> None:
    click.echo(f"dataset      {result.dataset}")
    click.echo(f"events       {result.events:,}")
    click.echo(f"rate         {result.events_per_second:,.0f} events/s ({result.seconds:.3f} s)")
    click.echo(f"digest       {result.digest}")
    for name, count in result.kinds.items():
        click.echo(f"  {name:<12} {count:,}")
    click.echo("top of book")
    for symbol, top in result.top_of_book.items():
        click.echo(
            f"  {symbol:<12} bid {fmt(top.bid_qty)} @ {fmt(top.bid_price)}   "
            f"ask {fmt(top.ask_qty)} @ {fmt(top.ask_price)}"
        )
    flagged = {k: a for k, a in result.data_quality.items() if a.count}
    if flagged:
        click.echo("data quality")
        for name, a in flagged.items():
            where = ", ".join(f"{f['symbol']}@{f['position']}" for f in a.first[:5])
            click.echo(f"  {name:<16} {a.count:,}   first at event {where}")
    else:
        click.echo("data quality clean")
    for st in result.invalid_stretches[:20]:
        until = f"event {st['to_position']:,}" if st["to_position"] is not None else "the end"
        click.echo(f"invalid book {st['symbol']} from event {st['from_position']:,} to {until} (gap)")
    if result.invalid_stretch_count > 20:
        click.echo(f"  ... {result.invalid_stretch_count - 20:,} more invalid stretches")
    if result.top_of_book_path:
        click.echo(f"top of book  {result.top_of_book_rows:,} rows -> {result.top_of_book_path}")


def print_backtest(bt) -> None:
    s = bt.summary
    click.echo(f"backtest     {s['name']} ({s['strategy']})")
    click.echo(f"events       {s['events']:,} at {s['events_per_second']:,.0f} events/s ({s['seconds']:.2f} s)")
    click.echo(f"orders       {s['orders']:,} submitted, {s['cancels']:,} cancels, {s['fills']:,} fills, "
               f"{s['denied']:,} denied")
    click.echo(f"pnl          {s['pnl']:.6g} (fees {s['fees']:.6g}, max drawdown {s['max_drawdown']:.6g}, "
               f"sharpe {s['sharpe']:.3g})")
    click.echo(f"digest       {s['digest']}")
    click.echo(f"report       {s['run_dir']}/report.html")
