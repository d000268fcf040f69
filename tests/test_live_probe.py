"""`lockstep live probe`: the host's stalls and the zero-work tick-to-trade, on real sockets and
pinned threads; a process competing for the node's CPU shows as stalls."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from lockstep.errors import ConfigError, InvalidArgumentError
from lockstep.live.probe import ProbeOptions, run_probe

LOCKSTEP = shutil.which("lockstep") or "lockstep"
TWO_CPUS = pytest.mark.skipif(not {0, 1} <= os.sched_getaffinity(0), reason="needs CPUs 0 and 1")
QUANTILES = ("p50_ns", "p99_ns", "p99_9_ns", "max_ns")


@TWO_CPUS
def test_every_datagram_is_answered_and_timed():
    result = run_probe(ProbeOptions(seconds=0.2, interval_us=200))
    feed, stalls = result["feed"], result["stalls"]
    assert feed["datagrams_sent"] >= 500  # 0.2 s at one per 200 us, give or take a slow start
    assert feed["datagrams_received"] == feed["datagrams_sent"]
    assert feed["user_stamped"] == 0  # loopback gives kernel stamps
    assert feed["orders_sent"] == feed["datagrams_received"]
    assert feed["order_bytes_received"] == 52 * feed["orders_sent"]
    for name in ("feed_lag", "tick_to_trade", "send"):
        h = feed[name]
        assert h["count"] == feed["orders_sent"]
        assert 0 < h["p50_ns"] <= h["p99_ns"] <= h["p99_9_ns"] <= h["max_ns"]
    # Each datagram's tick-to-trade is read after its receive lag: every quantile is at least it.
    for q in QUANTILES:
        assert feed["tick_to_trade"][q] >= feed["feed_lag"][q]
    assert 0.2e9 <= stalls["spun_ns"] < 0.3e9
    assert 0 <= stalls["lost_ns"] <= stalls["spun_ns"]
    counts = list(stalls["at_least"].values())
    assert list(stalls["at_least"]) == ["10us", "20us", "50us", "100us", "1000us"]
    assert counts == sorted(counts, reverse=True) and (not counts or counts[0] <= stalls["count"])
    if stalls["count"]:
        assert stalls["p50_ns"] >= 1000  # the threshold: a shorter gap is not a stall


@TWO_CPUS
def test_a_process_spinning_on_the_nodes_cpu_shows_as_stalls():
    spin = ("import os, time\nos.sched_setaffinity(0, {0})\nend = time.monotonic() + 30\n"
            "while time.monotonic() < end: pass")
    spinner = subprocess.Popen([sys.executable, "-c", spin])
    try:
        time.sleep(0.1)  # it is running before the probe starts
        result = run_probe(ProbeOptions(seconds=0.4, interval_us=1000))
    finally:
        os.kill(spinner.pid, 9)
        spinner.wait(timeout=10)
    stalls = result["stalls"]
    # The scheduler shares CPU 0 between the two in slices of milliseconds.
    assert stalls["lost_fraction"] > 0.2
    assert stalls["at_least"]["1000us"] > 0
    assert stalls["max_ns"] >= 1_000_000


def test_options_out_of_range_name_the_key():
    with pytest.raises(ConfigError, match="probe: peer_cpu:"):
        ProbeOptions(cpu=1, peer_cpu=1)
    with pytest.raises(ConfigError, match="probe: seconds:"):
        ProbeOptions(seconds=0)
    with pytest.raises(ConfigError, match="probe: datagram_bytes:"):
        ProbeOptions(datagram_bytes=2000)
    missing = max(os.sched_getaffinity(0)) + 1
    with pytest.raises(ConfigError, match=f"probe: cpu: CPU {missing} is not one this process"):
        run_probe(ProbeOptions(cpu=missing, peer_cpu=0))


def test_the_compiled_probe_refuses_what_the_python_checks_refuse():
    from lockstep._bindings.live_loop import host_probe

    with pytest.raises(InvalidArgumentError, match="host probe"):
        host_probe(cpu=0, peer_cpu=1, stall_ns=1000, stall_threshold_ns=1000, feed_ns=1000,
                   interval_ns=1000, datagram_bytes=4, order_bytes=52)
    with pytest.raises(InvalidArgumentError, match="host probe"):
        host_probe(cpu=0, peer_cpu=0, stall_ns=1000, stall_threshold_ns=1000, feed_ns=1000,
                   interval_ns=1000, datagram_bytes=400, order_bytes=52)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([LOCKSTEP, "live", "probe", *args], capture_output=True, text=True,
                          timeout=60, check=False)


@TWO_CPUS
def test_cli_prints_the_figures_as_json():
    done = _cli("--seconds", "0.1", "--interval", "500", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (out["cpu"], out["peer_cpu"]) == (0, 1)
    assert out["feed"]["datagrams_received"] == out["feed"]["datagrams_sent"] > 0
    assert set(out["stalls"]) >= {"per_second", "lost_fraction", "at_least", *QUANTILES}


@TWO_CPUS
def test_cli_text_names_each_figure():
    done = _cli("--seconds", "0.1")
    assert done.returncode == 0, done.stderr
    for word in ("stalls on CPU 0", "feed CPU 1 -> 0", "tick_to_trade", "feed_lag", "send"):
        assert word in done.stdout


def test_cli_refuses_a_cpu_it_cannot_use_in_one_line():
    missing = max(os.sched_getaffinity(0)) + 1
    done = _cli("--cpu", str(missing), "--peer-cpu", "0")
    assert done.returncode == 1
    usable = ", ".join(map(str, sorted(os.sched_getaffinity(0))))
    assert done.stderr.strip().splitlines() == [
        f"error: probe: cpu: CPU {missing} is not one this process may run on ({usable})"]
    assert _cli("--seconds", "-1").returncode == 2  # a bad flag value is a usage error
