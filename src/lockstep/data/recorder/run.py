"""The recorder: every configured feed on its own thread, into one capture, until told to stop.

    recorder = Recorder(config, out_dir)     # binds the feeds' sockets, opens nothing on disk yet
    recorder.addresses()                     # {"itch": "udp://127.0.0.1:40123", ...}
    summary = recorder.run(duration_s=None, stop=event)

run() ends when every feed has ended (a MoldUDP64 End of Session with no gap left to fill), after
`duration_s`, when `stop` is set (a signal), or when the capture cannot be written (a full disk:
the writer stops at its last whole frame, the feeds stop, and the summary says why in `error`),
or when a SoupBinTCP server rejects a feed's login (final: `error` says which and why).
The capture's history gets a `start` record per feed kind and an `end` record saying what stopped
the run.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lockstep.data.recorder import websocket
from lockstep.data.recorder.capture import Capture, CaptureSink, FeedCounts
from lockstep.data.recorder.config import FeedSettings, RecordConfig
from lockstep.data.recorder.moldudp64 import MoldFeed
from lockstep.data.recorder.soupbintcp import SoupFeed
from lockstep.errors import ConfigError, LockstepError, LoginRejected

log = logging.getLogger("lockstep.record")

_TICK_S = 0.25  # how often the run loop looks at the feeds, the writer and the clock


class _StreamFeed:
    """A feed whose own module runs it, `run(feed, sink, stop)` (the WebSocket recorder's shape);
    its counts are what its sink pushed: frames and bytes from its ring, gaps and reconnects
    from the history records it wrote."""

    def __init__(self, feed: FeedSettings, sink: CaptureSink,
                 run: Callable[[Any, CaptureSink, threading.Event], None]) -> None:
        self.feed = feed
        self.sink = sink
        self.counts = FeedCounts()
        self._run = run
        self.address = feed.url

    def run(self, stop: threading.Event) -> None:
        self._run(self.feed.websocket, self.sink, stop)

    def close(self) -> None:
        pass


def _make_feed(feed: FeedSettings, sink: CaptureSink, index: int, source: str) -> Any:
    if feed.kind == "moldudp64":
        return MoldFeed(feed, sink)
    if feed.kind == "websocket":
        return _StreamFeed(feed, sink, websocket.record_websocket)
    if feed.kind == "soupbintcp":
        return SoupFeed(feed.name, feed.url, feed.soupbintcp, sink, FeedCounts())
    raise ConfigError(f"record.feeds[{index}].kind", f"{feed.kind} feeds are not recorded yet",
                      source=source)


class Recorder:
    def __init__(self, config: RecordConfig, out: str | os.PathLike[str], *,
                 info: dict[str, Any] | None = None) -> None:
        self.config = config
        names = [f.name for f in config.feeds]
        meta = {"feeds": [{"name": f.name, "kind": f.kind, "url": f.url} for f in config.feeds],
                **(info or {})}
        self.capture = Capture(Path(out), config.prefix, names, config.capture, info=meta)
        self.feeds: dict[str, Any] = {}
        try:
            for i, f in enumerate(config.feeds):
                self.feeds[f.name] = _make_feed(f, self.capture.sink(f.name), i, config.source)
        except BaseException:
            self.close_feeds()
            raise
        self.started_ns = 0
        self.seconds = 0.0
        self.stopped_by = ""
        self.fatal = ""  #: a feed's final failure (a rejected login): the run's error

    def addresses(self) -> dict[str, str]:
        return {name: feed.address for name, feed in self.feeds.items()}

    def close_feeds(self) -> None:
        for feed in self.feeds.values():
            feed.close()

    def run(self, *, duration_s: float | None = None, stop: threading.Event | None = None,
            stop_reason: Callable[[], str] = lambda: "signal",
            tick: Callable[[Recorder], None] | None = None) -> dict[str, Any]:
        stop = stop or threading.Event()
        halt = threading.Event()  # what the feeds watch: a stop, the clock or a failed writer
        self.capture.start()
        start = time.monotonic()
        threads = {name: threading.Thread(target=self._feed_thread, args=(name, feed, halt),
                                          name=f"record-{name}", daemon=True)
                   for name, feed in self.feeds.items()}
        for t in threads.values():
            t.start()
        error = ""
        try:
            while True:
                if stop.wait(_TICK_S):
                    self.stopped_by = stop_reason()
                    break
                if tick is not None:
                    tick(self)
                failure = self.capture.failure()
                if failure is not None:
                    what, errno, path = failure
                    error = f"{path}: {os.strerror(errno)} ({what})"
                    self.stopped_by = "error"
                    break
                if self.fatal:
                    error, self.stopped_by = self.fatal, "error"
                    break
                if not any(t.is_alive() for t in threads.values()):
                    self.stopped_by = "end"
                    break
                if duration_s is not None and time.monotonic() - start >= duration_s:
                    self.stopped_by = "duration"
                    break
        finally:
            halt.set()
            for t in threads.values():
                t.join()
            self.seconds = time.monotonic() - start
            self.capture.recorder_sink.history("end", stopped_by=self.stopped_by or "error",
                                               complete=self.stopped_by == "end")
            self.capture.close()
            self.close_feeds()
        failure = self.capture.failure()
        if failure is not None and not error:
            what, errno, path = failure
            error = f"{path}: {os.strerror(errno)} ({what})"
            self.stopped_by = "error"
        summary = self.summary()
        if error:
            summary["error"] = error
        return summary

    def _feed_thread(self, name: str, feed: Any, halt: threading.Event) -> None:
        try:
            feed.run(halt)
        except LoginRejected as e:  # final: the credentials or the session are wrong
            self.fatal = f"{name}: {e}"
        except (LockstepError, OSError) as e:  # a feed that fails stops alone; the summary says so
            log.error("%s: stopped: %s", name, e)
            feed.counts.rejected["feed_error"] = feed.counts.rejected.get("feed_error", 0) + 1

    # -- reports --

    def feed_summary(self, name: str) -> dict[str, Any]:
        feed = self.feeds[name]
        c: FeedCounts = feed.counts
        ring = self.capture.feed_stats(name)
        told = feed.sink.records
        kind = next(f.kind for f in self.config.feeds if f.name == name)
        out = {
            "kind": kind, "address": feed.address,
            "messages": c.messages if kind == "moldudp64" else ring["frames"],
            "bytes": c.bytes if kind == "moldudp64" else ring["bytes"],
            "packets": c.packets, "gaps": c.gaps or told.get("gap", 0), "missing": c.missing,
            "reconnects": told.get("reconnect", 0), "snapshots": told.get("snapshot", 0),
            "retransmitted": c.retransmitted, "lost": c.lost, "duplicates": c.duplicates,
            "requests": c.requests, "rejected": dict(sorted(c.rejected.items())),
            "drops": ring["dropped"], "kernel_drops": c.kernel_drops, "ended": c.ended,
            "lag_ns": c.lag_ns, "ring_used": ring["ring_used"],
            "damaged": c.damaged, "session_changes": c.session_changes,
            "heartbeat_timeouts": c.heartbeat_timeouts,
        }
        return out

    def summary(self) -> dict[str, Any]:
        feeds = {name: self.feed_summary(name) for name in self.feeds}
        w = self.capture.writer_stats()

        def total(key: str) -> int:
            return sum(f[key] for f in feeds.values())

        return {
            "messages": total("messages"), "bytes": total("bytes"), "gaps": total("gaps"),
            "retransmitted": total("retransmitted"), "lost": total("lost"),
            "drops": total("drops"), "kernel_drops": total("kernel_drops"),
            "rejected": sum(sum(f["rejected"].values()) for f in feeds.values()),
            "files": w["files"], "frames": w["frames"], "written_bytes": w["bytes"],
            "directory": str(self.capture.directory),
            "paths": [p.name for p in self.capture.files()],
            "seconds": round(self.seconds, 3), "stopped_by": self.stopped_by, "feeds": feeds,
        }

    def status_line(self) -> str:
        s = self.summary()
        ring = max((f["ring_used"] for f in s["feeds"].values()), default=0)
        return (f"{s['messages']:,} msgs  {s['bytes'] / 1e6:,.1f} MB  gaps {s['gaps']}  "
                f"retx {s['retransmitted']}  lost {s['lost']}  drops {s['drops']}  "
                f"ring {100 * ring / self.capture.ring_bytes:.0f}%  files {s['files']}")


__all__ = ["Recorder"]
