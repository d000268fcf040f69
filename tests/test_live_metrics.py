"""The live node's Prometheus endpoint (lockstep.live.metrics) in process: a reading published is
what a scrape reads (prometheus_client's own parser), a scrape before any reading is empty, and
every metric the Grafana dashboard in deploy/ asks for is one the endpoint serves."""
from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lockstep.live.metrics import MetricsEndpoint, reading
from lockstep.net import parse_address

DASHBOARD = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "lockstep-live.json"

STATUS = {
    "mode": "reduce_only", "kill_switch": False, "order_entry": "up", "failure": None,
    "open_orders": 3, "unanswered_orders": 1, "oldest_unanswered_s": 6.0,
    "position": {"SYN0": 0.25, "SYN1": -0.5},
    "counters": {"feed_messages": 12_345, "gaps": 4, "gaps_recovered": 3, "gaps_abandoned": 1,
                 "snapshots": 1, "snapshot_failures": 2, "kernel_drops": 0,
                 "retransmission_requests": 5, "reconnects": 1,
                 "tick_to_trade": {"count": 100, "p50_ns": 12_000, "p99_ns": 80_000,
                                   "p99_9_ns": 400_000, "max_ns": 900_000},
                 "read_to_trade": {"count": 100, "p50_ns": 3_000, "p99_ns": 25_000,
                                   "p99_9_ns": 90_000, "max_ns": 300_000}},
}


def scrape(url: str) -> dict:
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.fixture
def endpoint():
    e = MetricsEndpoint(parse_address("tcp://127.0.0.1:0"))
    yield e
    e.close()


def test_a_scrape_reads_the_reading_published(endpoint):
    assert endpoint.url.startswith("http://127.0.0.1:") and ":0/" not in endpoint.url
    assert scrape(endpoint.url) == {}  # nothing published yet: nothing made up
    endpoint.publish(reading(STATUS, {"intents": 40, "denials": 2, "orders": 30, "fills": 7},
                             {"SYN0": (1.5, -0.25, 0.01), "SYN1": (0.0, 0.0, 0.0)},
                             time.monotonic_ns()))
    v = scrape(endpoint.url)
    assert v[("lockstep_live_feed_messages_total", ())] == 12_345
    assert v[("lockstep_live_feed_gaps_abandoned_total", ())] == 1
    assert v[("lockstep_live_snapshot_failures_total", ())] == 2
    assert (v[("lockstep_live_orders_total", ())], v[("lockstep_live_denials_total", ())]) == (30, 2)
    assert v[("lockstep_live_open_orders", ())] == 3 and v[("lockstep_live_unanswered_orders", ())] == 1
    assert v[("lockstep_live_trading_mode", (("mode", "reduce_only"),))] == 1
    assert v[("lockstep_live_trading_mode", (("mode", "active"),))] == 0
    assert v[("lockstep_live_position", (("symbol", "SYN1"),))] == -0.5
    assert v[("lockstep_live_realized", (("symbol", "SYN0"),))] == 1.5
    assert v[("lockstep_live_unrealized", (("symbol", "SYN0"),))] == -0.25
    assert v[("lockstep_live_tick_to_trade_seconds", (("quantile", "0.99"),))] == pytest.approx(80e-6)
    assert v[("lockstep_live_tick_to_trade_count_total", ())] == 100
    assert v[("lockstep_live_read_to_trade_seconds", (("quantile", "0.5"),))] == pytest.approx(3e-6)
    assert v[("lockstep_live_failed", ())] == 0 and v[("lockstep_live_order_entry_up", ())] == 1
    assert 0 <= v[("lockstep_live_reading_age_seconds", ())] < 5


def test_every_metric_the_dashboard_asks_for_is_served(endpoint):
    endpoint.publish(reading(STATUS, {"intents": 0, "denials": 0, "orders": 0, "fills": 0},
                             {"SYN0": (0.0, 0.0, 0.0)}, time.monotonic_ns()))
    served = {name for name, _ in scrape(endpoint.url)}
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    asked = {m for e in exprs for m in re.findall(r"lockstep_live_[a-z0-9_]+", e)}
    assert len(asked) >= 15
    assert asked <= served, asked - served
