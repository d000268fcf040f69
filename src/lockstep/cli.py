"""The `lockstep` command line: argument parsing and printing over the Python API, nothing else."""
from __future__ import annotations

import json
import sys
from typing import Any

import click

from lockstep.backtest.config import BacktestConfig
from lockstep.backtest.replay import replay
from lockstep.backtest.runner import BacktestFailed, run_backtest
from lockstep.data.importers import FORMATS, offered_settings
from lockstep.data.pipeline import (
    STEPS,
    ValidationConfig,
    describe_dataset,
    import_data,
    list_storage,
    promote_source,
    show_dataset,
    validate_source,
)
from lockstep.data.synth import generate
from lockstep.enums import BookKind
from lockstep.errors import ConfigError, LockstepError, SettingError
from lockstep.tomlconfig import OVERRIDE_SOURCE

DATA_HELP = "storage root (default: $LOCKSTEP_DATA, else ./data)"

#: The flag of each setting whose flag is not its key with dashes (lower layers name settings by key).
FLAGS = {"instruments_file": "--instruments", "rules": "--rule"}


def _flag(setting: str) -> str:
    return FLAGS.get(setting, "--" + setting.replace("_", "-"))


def _message(error: Exception) -> str:
    """An error's text with the settings it names called by their flags."""
    if isinstance(error, SettingError):
        return error.naming(_flag)
    text = str(error)
    if isinstance(error, ConfigError) and error.source == OVERRIDE_SOURCE:
        return "--set" + text[len(OVERRIDE_SOURCE):]
    return text


def _emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, sort_keys=False, default=str))


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.10g}"


def _print_replay(result) -> None:
    click.echo(f"dataset      {result.dataset}")
    click.echo(f"events       {result.events:,}")
    click.echo(f"rate         {result.events_per_second:,.0f} events/s ({result.seconds:.3f} s)")
    click.echo(f"digest       {result.digest}")
    for name, count in result.kinds.items():
        click.echo(f"  {name:<12} {count:,}")
    click.echo("top of book")
    for symbol, top in result.top_of_book.items():
        click.echo(
            f"  {symbol:<12} bid {_fmt(top.bid_qty)} @ {_fmt(top.bid_price)}   "
            f"ask {_fmt(top.ask_qty)} @ {_fmt(top.ask_price)}"
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


class _Group(click.Group):
    """Turns lockstep's own errors into a one-line message and exit status 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LockstepError as e:
            click.echo(f"error: {_message(e)}", err=True)
            sys.exit(1)


@click.group(cls=_Group)
@click.version_option(package_name="lockstep")
def main() -> None:
    """lockstep: one compiled core for backtests and live trading."""


@main.command()
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
        _emit_json({"replay": result.to_dict(), "backtest": bt.to_dict()})
    else:
        click.echo(f"generated {events:,} synthetic events -> {dataset.path}")
        _print_replay(result)
        click.echo("")
        _print_backtest(bt)


def _print_backtest(bt) -> None:
    s = bt.summary
    click.echo(f"backtest     {s['name']} ({s['strategy']})")
    click.echo(f"events       {s['events']:,} at {s['events_per_second']:,.0f} events/s ({s['seconds']:.2f} s)")
    click.echo(f"orders       {s['orders']:,} submitted, {s['cancels']:,} cancels, {s['fills']:,} fills, "
               f"{s['denied']:,} denied")
    click.echo(f"pnl          {s['pnl']:.6g} (fees {s['fees']:.6g}, max drawdown {s['max_drawdown']:.6g}, "
               f"sharpe {s['sharpe']:.3g})")
    click.echo(f"digest       {s['digest']}")
    click.echo(f"report       {s['run_dir']}/report.html")


@main.command()
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
    except BacktestFailed as e:
        err = e.result.summary.get("error", {})
        if err.get("traceback"):
            click.echo(err["traceback"].rstrip(), err=True)
        if as_json:
            _emit_json(e.result.to_dict())
        raise
    if as_json:
        _emit_json(bt.to_dict())
    else:
        _print_backtest(bt)


@main.command("replay")
@click.argument("dataset")
@click.option("--top-of-book", "top_of_book", default=None, metavar="OUT.parquet",
              help="write one row per complete venue message")
@click.option("--data", "data", default=None, help=DATA_HELP)
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
def replay_cmd(dataset: str, top_of_book: str | None, data: str | None, as_json: bool) -> None:
    """Replay DATASET (a path, or a name under DATA/canonical) through the books."""
    result = replay(dataset, top_of_book=top_of_book, data=data)
    if as_json:
        _emit_json(result.to_dict())
    else:
        _print_replay(result)


@main.group()
def data() -> None:
    """Datasets: generate, import, list, show."""


@data.command()
@click.option("--events", required=True, type=click.IntRange(min=1), help="number of events")
@click.option("--seed", default=1, show_default=True)
@click.option("--book", type=click.Choice(BookKind.labels()), default=BookKind.L2.label, show_default=True)
@click.option("--instruments", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--name", default=None, help="dataset name (default synth-<book>-<events>-s<seed>)")
@click.option("--data", "data", default=None, help=DATA_HELP)
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
def synth(events: int, seed: int, book: str, instruments: int, name: str | None, data: str | None,
          as_json: bool) -> None:
    """Generate a seeded synthetic market dataset."""
    ds = generate(events, seed=seed, data=data, book=book, instruments=instruments, name=name)
    if as_json:
        _emit_json({"dataset": ds.path, "events": ds.rows, "seed": seed, "book": book})
    else:
        click.echo(f"{ds.rows:,} events -> {ds.path}")


def _validation_options(f):
    f = click.option("--rule", "rules", multiple=True, metavar="RULE=ACTION",
                     help="off|warn|quarantine for a rule (repeatable), e.g. feed_latency=quarantine")(f)
    f = click.option("--min-feed-latency", default=None, metavar="DURATION",
                     help="lowest allowed ts_recv - ts_event (default 0; e.g. -2s)")(f)
    f = click.option("--max-feed-latency", default=None, metavar="DURATION",
                     help="highest allowed ts_recv - ts_event (default 60s)")(f)
    return f


def _decoder_options(f):
    """A flag per setting the formats offer (lockstep.data.importers); each command gets them as
    keyword arguments named by the settings' keys."""
    for setting in offered_settings():
        f = click.option(_flag(setting.key), setting.key, default=None, help=setting.meaning,
                         type=click.Path(dir_okay=False) if setting.is_path else None)(f)
    return f


def _validation_config(rules, min_feed_latency, max_feed_latency):
    try:
        return ValidationConfig.from_options(rules, min_feed_latency, max_feed_latency)
    except ValueError as e:
        raise click.BadParameter(_message(e)) from None


def _emit_result(result, as_json: bool) -> None:
    if as_json:
        _emit_json(result.to_dict())
    else:
        click.echo(result.describe())


@data.command("import")
@click.argument("format", type=click.Choice(list(FORMATS)))
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--name", default=None, help="dataset name (default derived from the files)")
@click.option("--stop-after", type=click.Choice(list(STEPS)), default="promote",
              show_default=True, help="the last step to run")
@_decoder_options
@_validation_options
@click.option("--data", "data", default=None, help=DATA_HELP)
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
def import_cmd(format: str, files: tuple[str, ...], name: str | None, stop_after: str, rules, min_feed_latency,
               max_feed_latency, data: str | None, as_json: bool, **settings: Any) -> None:
    """Import FILES (one stream, in order) of FORMAT: raw, normalize, validate, then promote to
    canonical or quarantine."""
    cfg = _validation_config(rules, min_feed_latency, max_feed_latency)
    result = import_data(format, list(files), data=data, name=name, stop_after=stop_after, validation=cfg,
                         options=settings)
    _emit_result(result, as_json)


@data.command("validate")
@click.argument("source")
@_decoder_options
@_validation_options
@click.option("--data", "data", default=None, help=DATA_HELP)
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
def validate_cmd(source: str, rules, min_feed_latency, max_feed_latency, data: str | None, as_json: bool,
                 **settings: Any) -> None:
    """Validate SOURCE alone (a normalized import, a canonical dataset or a quarantine entry);
    prints verdicts, writes nothing. Exit status 3 when records would be quarantined."""
    cfg = _validation_config(rules, min_feed_latency, max_feed_latency) if (rules or min_feed_latency or max_feed_latency) else None
    result = validate_source(source, data=data, validation=cfg, options=settings)
    _emit_result(result, as_json)
    if result.records_quarantined:
        sys.exit(3)


@data.command("promote")
@click.argument("source")
@click.option("--name", default=None, help="dataset name (default: the import's)")
@_decoder_options
@_validation_options
@click.option("--data", "data", default=None, help=DATA_HELP)
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
def promote_cmd(source: str, name: str | None, rules, min_feed_latency, max_feed_latency, data: str | None,
                as_json: bool, **settings: Any) -> None:
    """Validate and promote SOURCE (a normalized import, or a quarantine entry after a fix) to a
    new canonical version; what fails goes to quarantine again."""
    cfg = _validation_config(rules, min_feed_latency, max_feed_latency) if (rules or min_feed_latency or max_feed_latency) else None
    result = promote_source(source, data=data, validation=cfg, options=settings, name=name)
    _emit_result(result, as_json)


@data.command("ls")
@click.option("--data", "data", default=None, help=DATA_HELP)
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
def ls_cmd(data: str | None, as_json: bool) -> None:
    """List canonical datasets (with their verdicts) and quarantine entries."""
    listing = list_storage(data)
    if as_json:
        _emit_json(listing)
        return
    for r in listing["canonical"]:
        click.echo(f"canonical   {r['name']}/v{r['version']}  {r['events']:>12,} events  {r['verdict']:<8} "
                   f"{','.join(r['instruments'])}  {r['dataset']}")
    for q in listing["quarantine"]:
        rules = ", ".join(f"{k} {v:,}" for k, v in sorted(q["by_rule"].items()))
        click.echo(f"quarantine  {q['name']}/{q['import_id']}  {q['records']:>12,} records  {rules}  {q['path']}")


@data.command("show")
@click.argument("dataset")
@click.option("--data", "data", default=None, help=DATA_HELP)
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
def show_cmd(dataset: str, data: str | None, as_json: bool) -> None:
    """Show a dataset: schema, instruments, time range, counts, validation verdicts."""
    info = show_dataset(dataset, data)
    if as_json:
        _emit_json(info)
    else:
        click.echo(describe_dataset(info))


if __name__ == "__main__":
    main()
