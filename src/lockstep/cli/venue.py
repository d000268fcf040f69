"""`lockstep venue serve CONFIG.toml`: the loopback venue."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import click

from lockstep.cli.common import DATA_HELP, emit_json
from lockstep.venue.loopback.config import load_venue_config
from lockstep.venue.loopback.serve import LoopbackVenue
from lockstep.venue.loopback.trading import OrderEntry


@click.group()
def venue() -> None:
    """A venue on this machine, in NASDAQ's protocols."""


@venue.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="override a config key (repeatable), e.g. --set venue.speed=max")
@click.option("--dataset", default=None, help="the dataset to replay (overrides the config's)")
@click.option("--data", "data", default=None, help=DATA_HELP)
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=None,
              metavar="SECONDS", help="end the run after this long")
@click.option("--max-messages", type=click.IntRange(min=0), default=None,
              help="end the feed after this many data messages")
@click.option("--summary", "summary_path", type=click.Path(dir_okay=False), default=None,
              help="also write the summary to this file (JSON)")
@click.option("--json", "as_json", is_flag=True,
              help="print the bound addresses, then the summary, each as one JSON line")
def serve(config: str, overrides: tuple[str, ...], dataset: str | None, data: str | None,
          duration: float | None, max_messages: int | None, summary_path: str | None,
          as_json: bool) -> None:
    """Replay a dataset as ITCH 5.0 over MoldUDP64 (and over SoupBinTCP with
    venue.feed_soupbintcp), serve retransmissions (and book snapshots with venue.snapshot),
    and take OUCH 4.2 orders over SoupBinTCP, matched against the replayed book. Ends when the feed
    has ended and venue.linger has passed, after --duration, or on SIGINT / SIGTERM (exit 0,
    with the summary)."""
    logging.basicConfig(format="venue: %(message)s", level=logging.WARNING)
    cfg = load_venue_config(config, overrides, dataset=dataset)
    with LoopbackVenue(cfg, data=data, max_messages=max_messages) as v:
        v.attach(OrderEntry(v.feed))
        if as_json:
            emit_json(v.addresses)
        else:
            for name, address in v.addresses.items():
                click.echo(f"{name:<12} {address}")
        summary = v.run(duration_s=duration, handle_signals=True)
    if summary_path is not None:
        Path(summary_path).write_text(json.dumps(summary, indent=2) + "\n")
    if as_json:
        emit_json(summary)
    else:
        _print_summary(summary)


def _print_summary(s: dict) -> None:
    click.echo(f"stopped by   {s['stopped_by']} after {s['seconds']:.3f} s")
    click.echo(f"feed         {s['messages']:,} messages in {s['packets']:,} packets "
               f"({s['events']:,} events, {s['heartbeats']:,} heartbeats)")
    r = s["retransmit"]
    click.echo(f"retransmit   {r['requests']:,} requests: {r['answered']:,} answered "
               f"({r['messages']:,} messages), {r['refused']:,} refused, "
               f"{r['bad_requests']:,} bad")
    click.echo(f"orders       {s['orders']:,} orders, {s['fills']:,} fills, {s['sessions']:,} sessions")
    if "feed_soupbintcp" in s:
        f = s["feed_soupbintcp"]
        click.echo(f"soupbintcp   {f['messages_out']:,} messages sent, {f['logins']:,} logins, "
                   f"{f['login_rejects']:,} rejected, {f['disconnects']:,} disconnects")
    if "snapshot" in s:
        f = s["snapshot"]
        click.echo(f"snapshot     {f['snapshots']:,} snapshots ({f['snapshot_messages']:,} messages), "
                   f"{f['login_rejects']:,} logins rejected, {f['completed']:,} completed")
    for reason, n in s["skipped"].items():
        click.echo(f"  not shown  {reason}: {n:,}")
