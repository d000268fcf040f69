"""The recorder's Prometheus endpoint: its counters, read when scraped (nothing is updated on the
hot path). Loopback by default; port 0 takes any free port, which `serve_metrics` returns.

Metric families (label `stream`: a feed's name): lockstep_record_messages_total,
_bytes_total, _gaps_total, _retransmitted_total (messages), _lost_total (messages),
_drops_total (frames the ring had no room for), _rejected_total (datagrams), _ring_fill_ratio,
_lag_seconds (receive time minus the venue's time, `venue_lag_ns`); and for the writer
lockstep_record_disk_write_seconds_total, _disk_writes_total, _disk_write_seconds_max,
_written_bytes_total, _files_total.
"""
from __future__ import annotations

import datetime as _dt
import functools
from typing import Any
from zoneinfo import ZoneInfo

from lockstep.errors import ConfigError
from lockstep.net import parse_address

_DAY = _dt.timedelta(days=1)


@functools.lru_cache(maxsize=64)
def _midnight_ns(day: _dt.date, timezone: str) -> int:
    midnight = _dt.datetime.combine(day, _dt.time(), ZoneInfo(timezone))
    return int(midnight.timestamp()) * 1_000_000_000


def venue_lag_ns(receive_ns: int, since_midnight_ns: int, timezone: str,
                 date: _dt.date | None = None) -> int:
    """Receive time minus the venue's time, in ns. ITCH timestamps count ns from midnight of the
    venue's session day in its time zone (New York for NASDAQ, UTC for the loopback venue):
    with `date` that day's midnight; without, the midnight in `timezone` nearest before
    `since_midnight_ns` from the receive time, among the receive day's and its two neighbours'
    (so a message sent at 23:59:59.9 and received at 00:00:00.1 has a lag of 0.2 s, not -24 h).
    The assumption: the true lag is under 12 hours."""
    if date is not None:
        return receive_ns - (_midnight_ns(date, timezone) + since_midnight_ns)
    day = _dt.datetime.fromtimestamp(receive_ns // 1_000_000_000, ZoneInfo(timezone)).date()
    lags = [receive_ns - (_midnight_ns(d, timezone) + since_midnight_ns)
            for d in (day - _DAY, day, day + _DAY)]
    return min(lags, key=abs)

_FEED = (
    ("messages_total", "counter", "messages recorded", "messages"),
    ("bytes_total", "counter", "bytes recorded", "bytes"),
    ("gaps_total", "counter", "sequence gaps detected", "gaps"),
    ("retransmitted_total", "counter", "messages recovered by retransmission", "retransmitted"),
    ("lost_total", "counter", "messages given up on", "lost"),
    ("drops_total", "counter", "frames dropped on a full capture ring", "drops"),
)


class _Collector:
    def __init__(self, recorder: Any, core: Any) -> None:
        self._recorder = recorder
        self._core = core  # prometheus_client.core, loaded by serve_metrics

    def collect(self):
        CounterMetricFamily = self._core.CounterMetricFamily
        GaugeMetricFamily = self._core.GaugeMetricFamily
        r = self._recorder
        feeds = {name: r.feed_summary(name) for name in r.feeds}
        for suffix, kind, doc, key in _FEED:
            family = (CounterMetricFamily if kind == "counter" else GaugeMetricFamily)(
                f"lockstep_record_{suffix.removesuffix('_total')}", doc, labels=["stream"])
            for name, f in feeds.items():
                family.add_metric([name], f[key])
            yield family
        rejected = CounterMetricFamily("lockstep_record_rejected", "datagrams rejected", labels=["stream"])
        fill = GaugeMetricFamily("lockstep_record_ring_fill_ratio", "capture ring in use", labels=["stream"])
        lag = GaugeMetricFamily("lockstep_record_lag_seconds", "receive time minus venue time",
                                labels=["stream"])
        for name, f in feeds.items():
            rejected.add_metric([name], sum(f["rejected"].values()))
            fill.add_metric([name], f["ring_used"] / r.capture.ring_bytes)
            lag.add_metric([name], f["lag_ns"] / 1e9)
        yield rejected
        yield fill
        yield lag
        w = r.capture.writer_stats()
        yield CounterMetricFamily("lockstep_record_disk_write_seconds", "time in write() calls",
                                  value=w["write_ns"] / 1e9)
        yield CounterMetricFamily("lockstep_record_disk_writes", "write() calls", value=w["writes"])
        yield GaugeMetricFamily("lockstep_record_disk_write_seconds_max", "longest write() call",
                                value=w["write_ns_max"] / 1e9)
        yield CounterMetricFamily("lockstep_record_written_bytes", "bytes written to capture files",
                                  value=w["bytes"])
        yield CounterMetricFamily("lockstep_record_files", "capture files created", value=w["files"])


def serve_metrics(recorder: Any, address: str) -> tuple[str, Any]:
    """Starts the endpoint at `address` ("HOST:PORT"; port 0: any free one): its URL and the
    server (shutdown() stops it)."""
    try:
        # An optional dependency, loaded only when an endpoint is asked for.
        import prometheus_client
        import prometheus_client.core
    except ImportError:
        raise ConfigError("record.metrics", "needs the prometheus-client package "
                                            "(pip install prometheus-client)") from None
    where = parse_address(f"tcp://{address}") if "://" not in address else parse_address(address)
    registry = prometheus_client.CollectorRegistry(auto_describe=False)
    registry.register(_Collector(recorder, prometheus_client.core))
    server, _thread = prometheus_client.start_http_server(where.port, addr=where.host, registry=registry)
    return f"http://{where.host}:{server.server_port}/metrics", server


__all__ = ["serve_metrics", "venue_lag_ns"]
