"""`lockstep record CONFIG.toml`: the market data recorder."""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time

import click

from lockstep.cli.common import DATA_HELP, ExitCode, emit_json
from lockstep.data.recorder.config import load_record_config
from lockstep.data.recorder.run import Recorder
from lockstep.data.storage import resolve_root

_STATUS_S = 1.0  # how often the terminal status line is redrawn


@click.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help='override a config key (repeatable), e.g. --set record.fsync="frame"')
@click.option("--data", "data", default=None, help=DATA_HELP + "; the capture goes to its raw/")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=None,
              metavar="SECONDS", help="stop recording after this long")
@click.option("--metrics", default=None, metavar="HOST:PORT",
              help="serve Prometheus metrics there (port 0: any free port); overrides record.metrics")
@click.option("--json", "as_json", is_flag=True,
              help="print the bound addresses, then the summary, each as one JSON line")
def record(config: str, overrides: tuple[str, ...], data: str | None, duration: float | None,
           metrics: str | None, as_json: bool) -> None:
    """Record market data feeds into a raw capture (docs/recorder.md). Ends when every feed has
    ended, after --duration, or on SIGTERM (exit 0) or SIGINT / Ctrl-C (exit 130, the capture's
    end record marked incomplete); a capture that cannot be written (a full disk) ends it with
    exit 1, the files intact up to their last whole frame, and so does a SoupBinTCP login the
    server rejects."""
    logging.basicConfig(format="record: %(message)s", level=logging.WARNING)
    cfg = load_record_config(config, overrides)
    out = cfg.out or os.path.join(resolve_root(data), "raw")
    recorder = Recorder(cfg, out)
    server = None
    try:
        listen = {"feeds": recorder.addresses(), "directory": str(recorder.capture.directory)}
        endpoint = metrics if metrics is not None else cfg.metrics
        if endpoint:
            from lockstep.data.recorder.metrics import serve_metrics
            listen["metrics"], server = serve_metrics(recorder, endpoint)
        if as_json:
            emit_json(listen)
        else:
            for name, address in listen["feeds"].items():
                click.echo(f"{name:<12} {address}")
            if "metrics" in listen:
                click.echo(f"{'metrics':<12} {listen['metrics']}")
        stop = threading.Event()
        caught: list[str] = []

        def on_signal(sig: int, _frame: object) -> None:
            caught.append(signal.Signals(sig).name)
            stop.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        status = _StatusLine() if sys.stderr.isatty() and not as_json else None
        try:
            summary = recorder.run(duration_s=duration, stop=stop,
                                   stop_reason=lambda: caught[0] if caught else "signal",
                                   tick=status)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            if status is not None:
                status.finish()
    finally:
        recorder.close_feeds()
        if server is not None:
            server.shutdown()
    if as_json:
        emit_json(summary)
    else:
        _print_summary(summary)
    if "error" in summary:
        click.echo(f"error: {summary['error']}", err=True)
        sys.exit(ExitCode.ERROR)
    if summary["stopped_by"] == "SIGINT":
        click.echo("interrupted: the capture's end record says incomplete", err=True)
        sys.exit(ExitCode.INTERRUPTED)


class _StatusLine:
    """The one-line terminal status, redrawn in place about once a second."""

    def __init__(self) -> None:
        self._last = time.monotonic()

    def __call__(self, recorder: Recorder) -> None:
        now = time.monotonic()
        if now - self._last >= _STATUS_S:
            self._last = now
            click.echo(f"\r{recorder.status_line()}\x1b[K", err=True, nl=False)

    def finish(self) -> None:
        click.echo("", err=True)


def _print_summary(s: dict) -> None:
    click.echo(f"stopped by   {s['stopped_by']} after {s['seconds']:.3f} s")
    click.echo(f"recorded     {s['messages']:,} messages, {s['bytes']:,} bytes in {s['files']} "
               f"file(s) under {s['directory']}")
    click.echo(f"gaps         {s['gaps']:,}: {s['retransmitted']:,} messages retransmitted, "
               f"{s['lost']:,} lost")
    click.echo(f"drops        {s['drops']:,} (ring full), {s['kernel_drops']:,} (kernel); "
               f"{s['rejected']:,} datagrams rejected")
