"""The live node's Prometheus endpoint (`live.metrics`): what `lockstep live ctl status` says, as
metric families a scraper reads.

The node's thread takes a reading between two runs of its loop (at least every half
`live.flush_interval`) and hands it over whole; the endpoint's thread serves the latest one and
never touches the session, whose C++ state the loop changes without the GIL. So a scrape is at
most that old, and never sees half of one reading and half of the next.

Metric families (label `symbol` on the per-instrument ones):

    lockstep_live_feed_messages_total, _feed_gaps_total, _feed_gaps_recovered_total,
    _feed_gaps_abandoned_total, _snapshots_total, _snapshot_failures_total, _kernel_drops_total,
    _retransmission_requests_total, _reconnects_total       the feed and order entry
    lockstep_live_intents_total, _denials_total, _orders_total, _fills_total   the session
    lockstep_live_open_orders, _unanswered_orders, _order_entry_up (1 or 0), _kill_switch,
    _trading_mode{mode} (1 for the mode in force), _failed (1 after a strategy failure)
    lockstep_live_position{symbol} (base units), _realized{symbol}, _unrealized{symbol},
    _fees{symbol} (quote currency)
    lockstep_live_tick_to_trade_seconds{quantile="0.5"|"0.99"|"0.999"}, _tick_to_trade_count
    lockstep_live_read_to_trade_seconds{quantile}           the loop's part of tick-to-trade
    lockstep_live_reading_age_seconds                       how old the reading served is
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from lockstep.enums import TradingMode
from lockstep.errors import ConfigError
from lockstep.net import Address

__all__ = ["MetricsEndpoint", "reading"]

# The loop's latency histograms served as quantile gauges: key in the status counters, help.
_LATENCIES = (
    ("tick_to_trade", "tick-to-trade since the start, kernel receive stamp to send()"),
    ("read_to_trade", "the loop's part of tick-to-trade: the read that took the datagram to send()"),
)

_COUNTERS = (
    ("feed_messages", "ITCH messages the receiver delivered", "feed_messages"),
    ("feed_gaps", "feed sequence gaps detected", "gaps"),
    ("feed_gaps_recovered", "gaps filled by retransmission", "gaps_recovered"),
    ("feed_gaps_abandoned", "gaps given up: books invalid", "gaps_abandoned"),
    ("snapshots", "book snapshots applied", "snapshots"),
    ("snapshot_failures", "book snapshots that could not be read", "snapshot_failures"),
    ("kernel_drops", "feed datagrams the kernel dropped", "kernel_drops"),
    ("retransmission_requests", "MoldUDP64 retransmission requests sent", "retransmission_requests"),
    ("reconnects", "order-entry reconnects", "reconnects"),
)
_SESSION = (("intents", "intents asked"), ("denials", "intents denied"),
            ("orders", "orders dispatched"), ("fills", "fills"))


def reading(status: Mapping[str, Any], session: Mapping[str, int],
            pnl: Mapping[str, tuple[float, float, float]], now_ns: int) -> dict[str, Any]:
    """One reading: the node's status (LiveNode.status()), the session's counts (intents,
    denials, orders, fills) and the PnL by symbol (realized, unrealized, fees), taken at
    `now_ns` (monotonic)."""
    return {"status": status, "session": dict(session), "pnl": dict(pnl), "at": now_ns}


class _Collector:
    def __init__(self, endpoint: MetricsEndpoint, core: Any) -> None:
        self._endpoint = endpoint
        self._core = core  # prometheus_client.core

    def collect(self):
        r = self._endpoint.latest
        if r is None:
            return
        counter, gauge = self._core.CounterMetricFamily, self._core.GaugeMetricFamily
        s = r["status"]
        c = s["counters"]
        for name, doc, key in _COUNTERS:
            yield counter(f"lockstep_live_{name}", doc, value=c.get(key, 0))
        for name, doc in _SESSION:
            yield counter(f"lockstep_live_{name}", doc, value=r["session"][name])
        yield gauge("lockstep_live_open_orders", "orders open", value=s["open_orders"])
        yield gauge("lockstep_live_unanswered_orders", "orders with a request unanswered for "
                    "live.answer_timeout", value=s["unanswered_orders"])
        yield gauge("lockstep_live_order_entry_up", "1 while order entry is logged in",
                    value=1 if s["order_entry"] == "up" else 0)
        yield gauge("lockstep_live_kill_switch", "1 while the kill switch is on",
                    value=1 if s["kill_switch"] else 0)
        yield gauge("lockstep_live_failed", "1 once the strategy failed (trading stopped)",
                    value=0 if s["failure"] is None else 1)
        mode = gauge("lockstep_live_trading_mode", "1 for the trading mode in force",
                     labels=["mode"])
        for m in TradingMode:
            mode.add_metric([m.label], 1 if m.label == s["mode"] else 0)
        yield mode
        position = gauge("lockstep_live_position", "position, base units", labels=["symbol"])
        for symbol, value in s["position"].items():
            position.add_metric([symbol], value)
        yield position
        for k, (name, doc) in enumerate((("realized", "realized PnL, quote currency"),
                                         ("unrealized", "unrealized PnL at the mid, quote currency"),
                                         ("fees", "fees paid, quote currency"))):
            family = gauge(f"lockstep_live_{name}", doc, labels=["symbol"])
            for symbol, values in r["pnl"].items():
                family.add_metric([symbol], values[k])
            yield family
        for key, doc in _LATENCIES:
            summary = c.get(key) or {}
            quantiles = gauge(f"lockstep_live_{key}_seconds", doc, labels=["quantile"])
            if summary.get("count"):
                for q, at in (("0.5", "p50_ns"), ("0.99", "p99_ns"), ("0.999", "p99_9_ns")):
                    quantiles.add_metric([q], summary[at] / 1e9)
            yield quantiles
        t2t = c.get("tick_to_trade") or {}
        yield counter("lockstep_live_tick_to_trade_count", "orders timed", value=t2t.get("count", 0))
        yield gauge("lockstep_live_reading_age_seconds", "how old the reading served is",
                    value=(time.monotonic_ns() - r["at"]) / 1e9)


class MetricsEndpoint:
    """Serves the latest reading at `address` (port 0: any free one) from a thread of its own;
    `url` says where. ConfigError naming live.metrics when prometheus-client is missing;
    OSError when the address cannot be bound."""

    def __init__(self, address: Address) -> None:
        try:
            # An optional dependency, loaded only when an endpoint is asked for.
            import prometheus_client
            import prometheus_client.core
        except ImportError:
            raise ConfigError("live.metrics", "needs the prometheus-client package "
                                              "(pip install prometheus-client)") from None
        self.latest: dict[str, Any] | None = None
        registry = prometheus_client.CollectorRegistry(auto_describe=False)
        registry.register(_Collector(self, prometheus_client.core))
        self._server, self._thread = prometheus_client.start_http_server(
            address.port, addr=address.host, registry=registry)
        self.url = f"http://{address.host}:{self._server.server_port}/metrics"

    def publish(self, latest: dict[str, Any]) -> None:
        """The reading to serve from now on (one reference swap: a scrape sees one reading)."""
        self.latest = latest

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
