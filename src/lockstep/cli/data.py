"""`lockstep data ...`: generate, import, validate, promote, list and show datasets."""
from __future__ import annotations

import re
import sys
from typing import Any

import click

from lockstep.cli.common import DATA_HELP, ExitCode, emit_json, flag, message
from lockstep.data.importers import FORMATS, offered_settings
from lockstep.data.importers.capture import itch_feeds
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


@click.group()
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
        emit_json({"dataset": ds.path, "events": ds.rows, "seed": seed, "book": book})
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
        f = click.option(flag(setting.key), setting.key, default=None, help=setting.meaning,
                         type=click.Path(dir_okay=False) if setting.is_path else None)(f)
    return f


def _validation_config(rules, min_feed_latency, max_feed_latency):
    try:
        return ValidationConfig.from_options(rules, min_feed_latency, max_feed_latency)
    except ValueError as e:
        raise click.BadParameter(message(e)) from None


def _emit_result(result, as_json: bool) -> None:
    if as_json:
        emit_json(result.to_dict())
    else:
        click.echo(result.describe())


#: The exit status of an import or promotion by its verdict ("not validated" exits OK).
VERDICT_EXIT = {"partial": ExitCode.IMPORT_PARTIAL, "fail": ExitCode.IMPORT_FAILED}


def _exit_by_verdict(result) -> None:
    code = VERDICT_EXIT.get(result.verdict(), ExitCode.OK)
    if code != ExitCode.OK:
        sys.exit(code)


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
    canonical or quarantine. Exit status 4 when some records were quarantined (partial), 5 when
    nothing was promoted (fail)."""
    cfg = _validation_config(rules, min_feed_latency, max_feed_latency)
    feeds = itch_feeds(files[0]) if format == "capture" and settings.get("stream") is None else []
    if len(feeds) > 1:
        _import_each_feed(feeds, list(files), data, name, stop_after, cfg, settings, as_json)
        return
    result = import_data(format, list(files), data=data, name=name, stop_after=stop_after, validation=cfg,
                         options=settings)
    _emit_result(result, as_json)
    _exit_by_verdict(result)


def _import_each_feed(feeds: list[str], files: list[str], data: str | None, name: str | None,
                      stop_after: str, cfg, settings: dict[str, Any], as_json: bool) -> None:
    """A capture of several feeds: each feed is imported as a dataset of its own, named
    NAME-<feed> with --name, else after the feed (characters a dataset name cannot hold as _);
    one report per feed, and the exit status of the worst verdict."""
    results = {}
    for feed in feeds:
        label = re.sub(r"[^A-Za-z0-9._-]", "_", feed)
        results[feed] = import_data("capture", files, data=data, name=f"{name}-{label}" if name else label,
                                    stop_after=stop_after, validation=cfg, options={**settings, "stream": feed})
    if as_json:
        emit_json({"feeds": {feed: r.to_dict() for feed, r in results.items()}})
    else:
        for feed, r in results.items():
            click.echo(f"feed {feed}:\n{r.describe()}")
    worst = max(results.values(), key=lambda r: VERDICT_EXIT.get(r.verdict(), ExitCode.OK))
    _exit_by_verdict(worst)


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
        sys.exit(ExitCode.WOULD_QUARANTINE)


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
    new canonical version; what fails goes to quarantine again. Exit status as for import."""
    cfg = _validation_config(rules, min_feed_latency, max_feed_latency) if (rules or min_feed_latency or max_feed_latency) else None
    result = promote_source(source, data=data, validation=cfg, options=settings, name=name)
    _emit_result(result, as_json)
    _exit_by_verdict(result)


@data.command("ls")
@click.option("--data", "data", default=None, help=DATA_HELP)
@click.option("--json", "as_json", is_flag=True, help="print one JSON object")
def ls_cmd(data: str | None, as_json: bool) -> None:
    """List canonical datasets (with their verdicts) and quarantine entries."""
    listing = list_storage(data)
    if as_json:
        emit_json(listing)
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
        emit_json(info)
    else:
        click.echo(describe_dataset(info))
