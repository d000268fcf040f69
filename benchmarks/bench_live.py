"""The live node against the loopback venue, trading: tick-to-trade and whether it keeps up.

The venue (`live_venue.py`: `lockstep venue serve` whose feed starts 2 s after the node's login)
runs in its own process pinned to CPU 1, at full speed (`speed = "max"`) and paced
(`speed = 50`: the synthetic day 50 times faster); the node (`lockstep live`, a subprocess) is
pinned to CPU 0 (`live.cpu`), with and without `live.busy_poll`, trading the compiled and the
Python example market maker. The node stops after `--duration`: 2 s plus 4 s per million events
(a node that reads 250,000 messages/s has read the whole feed by then).

Reported per run: the node's tick-to-trade (kernel receive stamp of the datagram that moved the
book to the clock read right before the OUCH bytes went to send(), measured by the node's C++
loop) p50 / p99 / p99.9 / max and the loop's part of it (from the read that took the datagram
to send(): `read_to_trade`) p50 / p99, the venue's send rate, the messages the node received, gaps,
retransmission requests, kernel drops, the feed's receive lag (how long datagrams waited in the
socket before the node read them: a backlog shows there first) p50 / p99 / max, and whether it
kept up: every message the venue sent received, no kernel drop, no gap. The load average is
recorded with each run: on a shared machine it moves every figure. LOCKSTEP_BENCH_SCALE scales
the dataset (4M events, 2 instruments).

`test_host_floor` runs `lockstep live probe` on the same two CPUs first: how often the node's CPU
stalls, and the tick-to-trade of a node that answers each datagram and does nothing else. The
node's figures are read against that floor: what lies above it is the node's (and the venue's
bursts), what lies under it is the host's.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SCALE, scaled
from live_util import live_config

from lockstep.data.synth import generate
from lockstep.live.probe import ProbeOptions, run_probe

PASSWORD = "Bench4live"
DEADLINE_S = 600
LINGER_S = 1.0
EVENTS = 4_000_000
VENUE = """
[venue]
feed = "udp://127.0.0.1:0"
retransmit = "udp://127.0.0.1:0"
order_entry = "tcp://127.0.0.1:0"
users = [{{username = "demo", password = "{password}"}}]
speed = {speed}
history = 4_000_000
linger = "{linger}s"
"""


def _steal_ms(cpu: int) -> float | None:
    """The time the hypervisor has taken CPU `cpu` from this guest since boot (/proc/stat's
    steal column), in ms; None where the kernel does not say. A node's stall of tens of
    milliseconds that no thread of its own explains shows here."""
    try:
        with open("/proc/stat") as f:
            for line in f:
                fields = line.split()
                if fields[0] == f"cpu{cpu}" and len(fields) > 8:
                    return int(fields[8]) * 1000 / os.sysconf("SC_CLK_TCK")
    except OSError:
        pass
    return None


def _pinned(cpu: int):
    """preexec_fn pinning a child to `cpu`, when this machine has it."""
    if cpu >= os.cpu_count():
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    root = tmp_path_factory.mktemp("live-bench")
    ds = generate(scaled(EVENTS), seed=5, data=str(root / "data"), book="l3", instruments=2)
    return root, ds.path


def _session(root: Path, dataset: str, example: str, busy: bool, speed: str) -> tuple[dict, dict]:
    """One venue and one node run: (the node's summary, the venue's)."""
    tmp = root / f"{example}-{busy}-{speed}"
    tmp.mkdir()
    (tmp / "venue.toml").write_text(VENUE.format(password=PASSWORD, speed=speed, linger=LINGER_S))
    start_after = "2" if SCALE >= 0.01 else "0.3"  # the smoke run keeps it short
    duration = float(start_after) + 2 + EVENTS * SCALE * 4e-6
    env = {k: v for k, v in os.environ.items() if k not in ("LOCKSTEP_DATA", "LOCKSTEP_PASSWORD")}
    # The venue's log goes to a file: a pipe nobody reads until the end fills up and stalls the
    # venue (it logs a warning for every cancel that crossed a fill).
    log = (tmp / "venue.log").open("w")
    venue = subprocess.Popen([sys.executable, str(Path(__file__).with_name("live_venue.py")),
                              str(tmp / "venue.toml"), dataset, start_after], stdout=subprocess.PIPE,
                             stderr=log, text=True, cwd=tmp, env=env,
                             preexec_fn=_pinned(1))
    try:
        ports = json.loads(venue.stdout.readline() or "null") or {}
        assert ports, (tmp / "venue.log").read_text()[-3000:]
        cpu = "0" if os.cpu_count() > 1 else "-1"
        steal_before = _steal_ms(0)
        node = subprocess.run(
            [sys.executable, "-m", "lockstep", "live", str(live_config(tmp, example)),
             f"--set=dataset={dataset}", *(f"--set=live.{k}={ports[k]}" for k in
                                           ("feed", "retransmit", "order_entry")),
             f"--set=live.cpu={cpu}", f"--set=live.busy_poll={'true' if busy else 'false'}",
             "--data", str(tmp / "store"), "--json", "--duration", str(duration)],
            capture_output=True, text=True, timeout=DEADLINE_S + 60, cwd=tmp,
            env={**env, "LOCKSTEP_PASSWORD": PASSWORD}, check=False)
        steal_after = _steal_ms(0)
        served, _ = venue.communicate(timeout=60)
    finally:
        if venue.poll() is None:
            venue.kill()
            venue.wait()
        log.close()
    assert node.returncode == 0, node.stderr[-3000:]
    summary = json.loads(node.stdout)
    summary["cpu_steal_ms"] = (None if cpu == "-1" or steal_before is None or steal_after is None
                               else steal_after - steal_before)
    return summary, json.loads(served.strip().splitlines()[-1])


# How each value of a run's kept_up reads in its line.
_KEPT_UP = {True: "yes", False: "no",
            None: "no gap or drop until stopped by --duration, before the venue's day ended"}


@pytest.mark.skipif(not {0, 1} <= os.sched_getaffinity(0), reason="needs CPUs 0 and 1")
def test_host_floor(benchmark):
    out: dict = {}
    seconds = 2.0 if SCALE >= 0.01 else 0.2

    def run() -> None:
        out.update(run_probe(ProbeOptions(cpu=0, peer_cpu=1, seconds=seconds)))

    benchmark.pedantic(run, rounds=1, iterations=1)
    stalls, feed = out["stalls"], out["feed"]
    assert feed["datagrams_received"] == feed["datagrams_sent"] > 0
    t2t, send = feed["tick_to_trade"], feed["send"]
    info = {"stalls_per_s": stalls["per_second"], "stalls_lost_fraction": stalls["lost_fraction"],
            **{f"stalls_at_least_{k}": v for k, v in stalls["at_least"].items()},
            "stall_max_us": stalls["max_ns"] / 1000, "datagrams": feed["datagrams_received"],
            **{f"floor_tick_to_trade_{k}_us": t2t[f"{k}_ns"] / 1000 for k in ("p50", "p99", "p99_9", "max")},
            **{f"floor_send_{k}_us": send[f"{k}_ns"] / 1000 for k in ("p50", "p99")},
            "load_average": os.getloadavg()[0]}
    benchmark.extra_info.update(info)
    print(f"\nhost floor (CPU 1 -> CPU 0): stalls {stalls['per_second']:,}/s "
          f"({stalls['lost_fraction']:.2%} lost; >= 20 us: {stalls['at_least']['20us']:,}, "
          f">= 100 us: {stalls['at_least']['100us']:,} in {seconds} s); zero-work tick-to-trade "
          f"({feed['datagrams_received']:,} datagrams) p50 {t2t['p50_ns'] / 1000:.1f} us, p99 "
          f"{t2t['p99_ns'] / 1000:.1f} us, p99.9 {t2t['p99_9_ns'] / 1000:.1f} us, max "
          f"{t2t['max_ns'] / 1000:.1f} us; send() p50 {send['p50_ns'] / 1000:.1f} us, p99 "
          f"{send['p99_ns'] / 1000:.1f} us (load average {info['load_average']:.2f})")


@pytest.mark.parametrize("busy", [False, True], ids=["sleeping", "busy_poll"])
@pytest.mark.parametrize("example", ["market_maker_compiled.toml", "market_maker.toml"])
@pytest.mark.parametrize("speed", ['"max"', "100", "50", "5"], ids=["max", "1M", "paced", "slow"])
def test_live_node_against_the_venue(benchmark, market, speed, example, busy):
    root, dataset = market
    out: dict = {}

    def run() -> None:
        out["node"], out["venue"] = _session(root, dataset, example, busy, speed)

    benchmark.pedantic(run, rounds=1, iterations=1)
    node, venue = out["node"], out["venue"]
    assert node["complete"] and node["orders"] > 0
    t2t, lag, loop = node["tick_to_trade"], node["feed_lag"], node["read_to_trade"]
    sent = venue["messages"]
    sending = venue["seconds"] - LINGER_S  # the venue's run ends its linger after the feed
    rate = sent / sending if sending > 0 else 0.0
    kept_up = (node["feed_messages"] >= sent and node["kernel_drops"] == 0 and node["gaps"] == 0)
    if not kept_up and node["stopped_by"] == "duration" and node["kernel_drops"] == 0 \
            and node["gaps"] == 0:
        kept_up = None  # stopped before the venue's day ended (a slow pace): not a backlog
    info = {"example": example, "busy_poll": busy, "speed": speed, "venue_messages": sent,
            "venue_messages_per_s": round(rate), "node_messages": node["feed_messages"],
            "gaps": node["gaps"], "retransmission_requests": node["retransmission_requests"],
            "kernel_drops": node["kernel_drops"], "kept_up": kept_up, "orders": node["orders"],
            "fills": node["fills"], "tick_to_trade_count": t2t["count"],
            "venue_messages_in_loop": node.get("venue_messages_in_loop", 0),
            **{f"tick_to_trade_{k}_us": t2t[f"{k}_ns"] / 1000 for k in ("p50", "p99", "p99_9", "max")},
            **{f"read_to_trade_{k}_us": loop[f"{k}_ns"] / 1000 for k in ("p50", "p99", "max")},
            **{f"feed_lag_{k}_us": lag[f"{k}_ns"] / 1000 for k in ("p50", "p99", "max")},
            "returns": node["away_time"]["count"],
            "away_max_us": node["away_time"]["max_ns"] / 1000,
            "cpu_steal_ms": node["cpu_steal_ms"], "load_average": os.getloadavg()[0]}
    benchmark.extra_info.update(info)
    print(f"\n{example} {'busy-poll' if busy else 'sleeping'}, venue speed {speed}: venue {sent:,} messages at "
          f"{rate:,.0f}/s, node received {node['feed_messages']:,}, gaps {node['gaps']}, "
          f"requests {node['retransmission_requests']}, kernel drops {node['kernel_drops']}, "
          f"stopped by {node['stopped_by']}, venue answers read in the loop "
          f"{node.get('venue_messages_in_loop', 0):,}, "
          f"kept up: {_KEPT_UP[kept_up]}; tick-to-trade ({t2t['count']:,} orders) p50 "
          f"{t2t['p50_ns'] / 1000:.1f} us, p99 {t2t['p99_ns'] / 1000:.1f} us, p99.9 "
          f"{t2t['p99_9_ns'] / 1000:.1f} us, max {t2t['max_ns'] / 1000:.1f} us, of which in the loop "
          f"(read to send) p50 {loop['p50_ns'] / 1000:.1f} us, p99 {loop['p99_ns'] / 1000:.1f} us; feed lag p50 "
          f"{lag['p50_ns'] / 1000:.1f} us, p99 {lag['p99_ns'] / 1000:.1f} us, max "
          f"{lag['max_ns'] / 1000:.1f} us; {info['returns']:,} returns to Python, the longest "
          f"{info['away_max_us']:,.0f} us; the hypervisor took "
          f"{_or_unknown(info['cpu_steal_ms'], '{:,.0f} ms')} of the node's CPU (steal) "
          f"(load average {info['load_average']:.2f})")


def _or_unknown(value, fmt: str) -> str:
    return "an unknown time" if value is None else fmt.format(value)


@pytest.mark.parametrize("example", ["market_maker_compiled.toml", "market_maker.toml"])
def test_live_loop_in_process(benchmark, tmp_path, example):
    """The loop's own capacity, no venue process: the venue's ITCH feed of a synthetic L3
    dataset (scaled 1M events) sent to the loop's feed socket 1,000 datagrams at a time, each
    burst read and traded (journal, digest, orders to a socket pair) by LiveLoop.run; messages per
    second of the loop thread's CPU time and of wall time (the difference: other processes)."""
    from test_live_loop import Rig, datagrams  # tests/ is on the path (conftest)

    ds = generate(scaled(1_000_000), seed=5, data=str(tmp_path / "data"), book="l3")
    grams = datagrams.__wrapped__(ds)
    rig = Rig(ds, tmp_path / "rig", config=example)
    spent = {"wall": 0.0, "cpu": 0.0}

    def run() -> None:
        for k in range(0, len(grams), 1000):
            chunk = grams[k:k + 1000]
            rig.send(chunk)
            wall, cpu = time.perf_counter(), time.thread_time()
            rig.run_until_read(k + len(chunk))
            spent["wall"] += time.perf_counter() - wall
            spent["cpu"] += time.thread_time() - cpu

    try:
        benchmark.pedantic(run, rounds=1, iterations=1)
        rig.finish()
        messages = rig.receiver.counters["messages"]
        t2t = rig.loop.tick_to_trade
    finally:
        rig.close()
    info = {"messages": messages, "per_cpu_s": round(messages / spent["cpu"]),
            "per_wall_s": round(messages / spent["wall"]), "orders": t2t["count"],
            "load_average": os.getloadavg()[0]}
    benchmark.extra_info.update(info)
    print(f"\n{example} in process: {messages:,} messages, {info['per_cpu_s']:,} per CPU second, "
          f"{info['per_wall_s']:,} per wall second (load average {info['load_average']:.2f})")
