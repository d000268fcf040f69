"""`lockstep live CONFIG.toml` (the live node), `lockstep live ctl COMMAND` (its control) and
`lockstep live probe` (what the host costs a node)."""
from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click

from lockstep.cli.common import DATA_HELP, ExitCode, emit_json
from lockstep.errors import ControlUnreachable, LockstepError
from lockstep.live.config import load_live_config
from lockstep.live.control import (
    COMMANDS,
    check_endpoint,
    control_endpoint,
    default_socket_path,
    send_command,
)

#: The module that runs a node: `run_live(config, *, data, duration_s) -> summary mapping`.
NODE_MODULE = "lockstep.live.node"
NOT_AVAILABLE = "live node not available in this build"


class _LiveGroup(click.Group):
    """`lockstep live CONFIG.toml ...` is `lockstep live run CONFIG.toml ...`: an argument that
    names no subcommand starts the node."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_LiveGroup,
             subcommand_metavar="CONFIG.toml [ARGS]... | ctl COMMAND [ARGS]... | probe [ARGS]...")
def live() -> None:
    """Trade live: `lockstep live CONFIG.toml` runs a node, `lockstep live ctl` controls one,
    `lockstep live probe` measures what the host costs one."""


def _node_entry() -> Callable[..., Mapping[str, Any]]:
    """The node's run_live, loaded when a node is started (builds without it still check
    configs and control running nodes)."""
    try:
        module = importlib.import_module(NODE_MODULE)
    except ModuleNotFoundError as e:
        if e.name != NODE_MODULE:
            raise
        raise LockstepError(NOT_AVAILABLE) from None
    entry = getattr(module, "run_live", None)
    if entry is None:
        raise LockstepError(f"{NOT_AVAILABLE} ({NODE_MODULE} has no run_live)")
    return entry


@live.command("run", short_help="run a node (`lockstep live CONFIG.toml` for short)")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="override a config key (repeatable), e.g. --set live.cpu=1")
@click.option("--data", "data", default=None, help=DATA_HELP)
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=None,
              metavar="SECONDS", help="stop gracefully after this long")
@click.option("--json", "as_json", is_flag=True, help="print the summary as one JSON object at the end")
def run(config: str, overrides: tuple[str, ...], data: str | None, duration: float | None,
        as_json: bool) -> None:
    """Run the strategy CONFIG (a backtest config with a [live] table) against a venue.
    SIGINT / SIGTERM stop it gracefully (exit 0), SIGUSR1 kills (cancels every open order and
    halts); `lockstep live ctl` reaches it on its control socket."""
    cfg = load_live_config(config, overrides)
    cfg = cfg.with_checked_strategy(base_dir=Path(config).resolve().parent)
    control_endpoint(cfg.live.control, data, cfg.name)  # a socket it cannot serve: said before connecting
    summary = _node_entry()(cfg, data=data, duration_s=duration)
    if as_json:
        emit_json(dict(summary))
    else:
        _print_fields(summary)


@live.command("ctl", short_help="send status, kill, halt, resume or reduce_only to a running node")
@click.argument("command", type=click.Choice(COMMANDS))
@click.option("--socket", "endpoint", default=None, metavar="PATH|tcp://127.0.0.1:PORT",
              help="the node's control socket")
@click.option("--name", default=None,
              help="the node's config name: its default socket DATA/live/NAME.sock")
@click.option("--data", "data", default=None, help=DATA_HELP)
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=5.0, show_default=True,
              metavar="SECONDS", help="how long to wait for the answer")
@click.option("--json", "as_json", is_flag=True, help="print the node's response as one JSON object")
def ctl(command: str, endpoint: str | None, name: str | None, data: str | None, timeout: float,
        as_json: bool) -> None:
    """Send COMMAND to a running node: status, kill (cancel every open order and halt), halt,
    resume (active, kill switch off), reduce_only. Exit 0 when it applied it, 1 when it refused,
    6 when no node answers."""
    if (endpoint is None) == (name is None):
        raise click.UsageError("give exactly one of --socket PATH and --name NAME")
    target = check_endpoint(endpoint) if endpoint is not None else default_socket_path(name, data)
    try:
        response = send_command(target, command, timeout=timeout)
    except ControlUnreachable as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(ExitCode.NODE_UNREACHABLE)
    if as_json:
        emit_json(response)
    elif response["ok"]:
        _print_fields({k: v for k, v in response.items() if k != "ok"})
    if not response["ok"]:
        click.echo(f"error: {command}: {response.get('error', 'refused')}", err=True)
        sys.exit(ExitCode.ERROR)


@live.command("probe", short_help="measure the host's stalls and zero-work tick-to-trade")
@click.option("--cpu", type=click.IntRange(min=0), default=0, show_default=True,
              help="the node's CPU (as live.cpu)")
@click.option("--peer-cpu", type=click.IntRange(min=0), default=1, show_default=True,
              help="the venue's CPU: the feed's sender and the orders' reader")
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True, max=600), default=2.0,
              show_default=True, help="how long each of the two parts runs")
@click.option("--interval", "interval_us", type=click.FloatRange(min=1, max=1_000_000), default=100.0,
              show_default=True, metavar="MICROSECONDS", help="between two datagrams of the feed")
@click.option("--json", "as_json", is_flag=True, help="print the figures as one JSON object")
def probe(cpu: int, peer_cpu: int, seconds: float, interval_us: float, as_json: bool) -> None:
    """Measure what this host costs a live node before any of its work: how often the node's
    CPU stalls while it spins, and the tick-to-trade of a node that answers each datagram with
    one order and does nothing else (docs/live.md, "Speed"). Binds loopback ports only."""
    from lockstep.live.probe import ProbeOptions, run_probe

    result = run_probe(ProbeOptions(cpu=cpu, peer_cpu=peer_cpu, seconds=seconds,
                                    interval_us=interval_us))
    if as_json:
        emit_json(result)
        return
    stalls, feed = result["stalls"], result["feed"]

    def us(ns: int) -> str:
        return f"{ns / 1000:.1f}"

    click.echo(f"stalls on CPU {cpu}: {stalls['per_second']:,} a second, "
               f"{stalls['lost_fraction']:.2%} of the time lost, longest {us(stalls['max_ns'])} us")
    click.echo("  at least " + ", ".join(f"{k}: {v:,}" for k, v in stalls["at_least"].items()))
    click.echo(f"feed CPU {peer_cpu} -> {cpu}: {feed['datagrams_received']:,} of "
               f"{feed['datagrams_sent']:,} datagrams, {feed['orders_sent']:,} orders sent")
    for name in ("feed_lag", "tick_to_trade", "send"):
        h = feed[name]
        click.echo(f"  {name:<14} p50 {us(h['p50_ns'])}  p99 {us(h['p99_ns'])}  "
                   f"p99.9 {us(h['p99_9_ns'])}  max {us(h['max_ns'])} us")


def _print_fields(fields: Mapping[str, Any]) -> None:
    for key, value in fields.items():
        text = json.dumps(value, default=str) if isinstance(value, (Mapping, list, bool)) or value is None \
            else str(value)
        click.echo(f"{key:<14} {text}")
