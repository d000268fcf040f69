"""The recorder's Prometheus endpoint: its counters, read when scraped (nothing is updated on the
hot path). Loopback by default; port 0 takes any free port, which `serve_metrics` returns.

Metric families (label `stream`: a feed's name): lockstep_record_messages_total,
_bytes_total, _gaps_total, _retransmitted_total (messages), _lost_total (messages),
_drops_total (frames the ring had no room for), _rejected_total (datagrams), _ring_fill_ratio,
_lag_seconds (receive time minus the venue's timestamp); and for the writer
lockstep_record_disk_write_seconds_total, _disk_writes_total, _disk_write_seconds_max,
_written_bytes_total, _files_total.
"""
from __future__ import annotations

from typing import Any

from lockstep.errors import ConfigError
from lockstep.net import parse_address

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


__all__ = ["serve_metrics"]
