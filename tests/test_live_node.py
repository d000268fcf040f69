"""The live node end to end, as a user runs it: `lockstep venue serve` (the loopback venue on a
synthetic dataset) and `lockstep live` against it, real subprocesses on loopback; the session's
journal replayed offline to the same digest and counts; SIGTERM with open orders; a login the
venue rejects."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from live_util import live_config
from prometheus_client.parser import text_string_to_metric_families

from lockstep.backtest.artifacts import read_artifact
from lockstep.data.synth import generate
from lockstep.live.node import token_prefix

LOCKSTEP = shutil.which("lockstep") or "lockstep"
PASSWORD = "Pw9xQz7k"
DEADLINE_S = 60
VENUE = """
[venue]
feed = "udp://127.0.0.1:0"
retransmit = "udp://127.0.0.1:0"
order_entry = "tcp://127.0.0.1:0"
users = [{{username = "demo", password = "{password}"}}]
speed = {speed}
linger = "60s"
"""
SUMMARY_KEYS = ("digest", "orders", "fills", "intents", "denials")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LOCKSTEP_DATA", "LOCKSTEP_PASSWORD")}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("node") / "data"
    return generate(20_000, seed=3, data=str(root), book="l3"), root


class Venue:
    """`lockstep venue serve` on a dataset; `ports` from its --json listen line."""

    def __init__(self, tmp: Path, dataset: str, *, speed: float = 2.0, extra: str = "") -> None:
        config = tmp / "venue.toml"
        config.write_text(VENUE.format(password=PASSWORD, speed=speed) + extra)
        # Its log goes to a file: a pipe nobody reads fills up and stops the venue mid-session
        # (it warns of every cancel that crossed a fill).
        self.log = tmp / "venue.log"
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen([LOCKSTEP, "venue", "serve", str(config), "--dataset",
                                          dataset, "--json"], stdout=subprocess.PIPE, stderr=log,
                                         text=True, env=_env(), cwd=tmp)
        line = self.proc.stdout.readline()
        assert line, self.log.read_text()
        self.ports = json.loads(line)

    def live_args(self) -> list[str]:
        return [f"--set=live.{k}={self.ports[k]}" for k in ("feed", "retransmit", "order_entry")]

    def stop(self) -> dict:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=DEADLINE_S)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        return json.loads(out.strip().splitlines()[-1])


def live_cmd(config: Path, ds_path: str, root: Path, venue: Venue, *extra: str) -> list[str]:
    return [LOCKSTEP, "live", str(config), f"--set=dataset={ds_path}", *venue.live_args(),
            "--data", str(root), "--json", *extra]


def replay(journal: str) -> dict:
    proc = subprocess.run([LOCKSTEP, "replay", "--journal", journal, "--json"], capture_output=True,
                          text=True, timeout=DEADLINE_S, env=_env(), check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("example", ["market_maker.toml", "market_maker_compiled.toml"])
def test_each_market_maker_trades_live_and_its_journal_replays_to_the_same_session(
        dataset, tmp_path, example):
    ds, root = dataset
    venue = Venue(tmp_path, ds.path)
    try:
        proc = subprocess.run(live_cmd(live_config(tmp_path, example), ds.path, root, venue,
                                       "--duration", "4"),
                              capture_output=True, text=True, timeout=DEADLINE_S, cwd=tmp_path,
                              env=_env(LOCKSTEP_PASSWORD=PASSWORD), check=False)
    finally:
        served = venue.stop()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("\n") == 1
    summary = json.loads(proc.stdout)
    assert summary["stopped_by"] == "duration" and summary["complete"]
    assert summary["orders"] > 0 and summary["fills"] > 0
    assert summary["feed_messages"] > 10_000 and summary["gaps_abandoned"] == 0
    live = summary["counters"]["live"]
    assert live["ouch_unknown_order"] == live["ouch_undecodable"] == live["itch_problems"] == 0
    # the venue saw what the node says it sent
    assert served["orders"] == summary["orders"] and served["fills"] == summary["fills"]
    assert served["logins"] == 1 and served["logouts"] == 1
    replayed = replay(summary["journal"])
    assert {k: replayed[k] for k in SUMMARY_KEYS} == {k: summary[k] for k in SUMMARY_KEYS}
    # the records are the backtest's tables of the same orders and fills
    run_dir = summary["run_dir"]
    assert read_artifact(run_dir, "fills").num_rows == summary["fills"]
    # no denial flood: the market maker waits for its cancels, so it never meets
    # max_open_orders; only a few requotes between the stop's kill and its last Canceled are
    # denied
    denied = read_artifact(run_dir, "denials").column("reason").to_pylist()
    assert set(denied) <= {"kill_switch"} and summary["denials"] == len(denied) <= 10
    assert summary["intents"] < 3 * summary["orders"]  # submits and their cancels, little else
    assert Path(run_dir, "report.html").is_file() and not Path(run_dir, "INCOMPLETE").exists()
    assert Path(summary["journal"]).parent == Path(run_dir)
    assert not any(PASSWORD.encode() in p.read_bytes() for p in Path(run_dir).rglob("*") if p.is_file())


def test_sigterm_cancels_every_open_order_and_completes_the_records(dataset, tmp_path):
    """Also: the Prometheus endpoint (live.metrics on port 0), scraped and read with
    prometheus_client's own parser, says what `ctl status` says."""
    ds, root = dataset
    venue = Venue(tmp_path, ds.path, speed=0.5)
    config = live_config(tmp_path, "market_maker.toml")
    try:
        proc = subprocess.Popen(live_cmd(config, ds.path, root, venue, "--set=live.control="
                                         + str(tmp_path / "mm.sock"),
                                         "--set=live.metrics=127.0.0.1:0"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=tmp_path, env=_env(LOCKSTEP_PASSWORD=PASSWORD))
        try:
            status = _wait_for_open_orders(tmp_path / "mm.sock", proc)
            assert status["open_orders"] > 0
            _check_metrics(status, ds.instruments[0].symbol)
            os.kill(proc.pid, signal.SIGTERM)
            out, err = proc.communicate(timeout=DEADLINE_S)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    finally:
        served = venue.stop()
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert summary["stopped_by"] == "SIGTERM" and summary["open_orders_at_stop"] == 0
    assert summary["complete"] and summary["counters"]["live"]["live_orders"] == 0
    # every order the venue accepted was cancelled by us, none left to expire at its end
    assert served["expired"] == 0 and served["orders"] == summary["orders"] > 0
    orders = read_artifact(summary["run_dir"], "orders")
    assert orders.num_rows > 0 and not Path(summary["run_dir"], "INCOMPLETE").exists()
    assert replay(summary["journal"])["digest"] == summary["digest"]


def _check_metrics(status: dict, symbol: str) -> None:
    url = status["metrics"]
    assert url.startswith("http://127.0.0.1:") and not url.endswith(":0/metrics")
    deadline = time.monotonic() + DEADLINE_S
    values: dict = {}
    while time.monotonic() < deadline:  # the first reading may be older than the open orders
        text = urllib.request.urlopen(url, timeout=10).read().decode()
        values = {(s.name, tuple(sorted(s.labels.items()))): s.value
                  for family in text_string_to_metric_families(text) for s in family.samples}
        if values.get(("lockstep_live_open_orders", ())):
            break
        time.sleep(0.2)
    assert values[("lockstep_live_open_orders", ())] > 0
    assert values[("lockstep_live_feed_messages_total", ())] > 100
    assert values[("lockstep_live_orders_total", ())] >= values[("lockstep_live_open_orders", ())]
    assert values[("lockstep_live_trading_mode", (("mode", "active"),))] == 1
    assert values[("lockstep_live_trading_mode", (("mode", "halted"),))] == 0
    assert values[("lockstep_live_order_entry_up", ())] == 1
    assert values[("lockstep_live_kill_switch", ())] == 0
    assert ("lockstep_live_position", (("symbol", symbol),)) in values
    assert 0 <= values[("lockstep_live_reading_age_seconds", ())] < 5
    assert PASSWORD not in text


def _wait_for_open_orders(socket_path: Path, proc: subprocess.Popen) -> dict:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline and proc.poll() is None:
        if socket_path.exists():
            ctl = subprocess.run([LOCKSTEP, "live", "ctl", "status", "--socket", str(socket_path),
                                  "--json"], capture_output=True, text=True, timeout=DEADLINE_S,
                                 env=_env(), check=False)
            if ctl.returncode == 0 and json.loads(ctl.stdout)["open_orders"] > 0:
                return json.loads(ctl.stdout)
        time.sleep(0.1)
    raise AssertionError(proc.stderr.read() if proc.poll() is not None else "no open orders in time")


def test_a_login_the_venue_rejects_is_one_line_and_exit_1(dataset, tmp_path):
    ds, _ = dataset
    root = tmp_path / "data"
    venue = Venue(tmp_path, ds.path)
    try:
        proc = subprocess.run(live_cmd(live_config(tmp_path, "market_maker.toml"), ds.path, root, venue,
                                       "--duration", "5"),
                              capture_output=True, text=True, timeout=DEADLINE_S, cwd=tmp_path,
                              env=_env(LOCKSTEP_PASSWORD="wrong"), check=False)
    finally:
        served = venue.stop()
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "rejected the login of 'demo': not authorized" in proc.stderr
    assert "wrong" not in proc.stderr and served["login_rejects"] == 1
    assert not (root / "live").exists()  # nothing written before the login


def test_a_metrics_address_taken_is_one_line_and_exit_1_before_anything_is_written(dataset,
                                                                                   tmp_path):
    ds, _ = dataset
    root = tmp_path / "data"
    venue = Venue(tmp_path, ds.path)
    taken = socket.create_server(("127.0.0.1", 0))
    try:
        port = taken.getsockname()[1]
        proc = subprocess.run(live_cmd(live_config(tmp_path, "market_maker.toml"), ds.path, root,
                                       venue, f"--set=live.metrics=127.0.0.1:{port}",
                                       "--duration", "5"),
                              capture_output=True, text=True, timeout=DEADLINE_S, cwd=tmp_path,
                              env=_env(LOCKSTEP_PASSWORD=PASSWORD), check=False)
    finally:
        taken.close()
        venue.stop()
    assert proc.returncode == 1 and proc.stdout == "", proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert f"live.metrics 127.0.0.1:{port}: cannot serve" in proc.stderr
    assert not any((root / "live").glob("*/journal"))  # no session written


def test_token_prefixes_differ_between_sessions_started_apart_on_one_day():
    day = 1_704_153_600 * 10**9
    prefixes = {token_prefix(day + k * 5 * 10**9) for k in range(86_400 // 5)}
    assert len(prefixes) == 86_400 // 5
    assert all(len(p) == 4 and p.isalpha() and p.isupper() for p in prefixes)
    assert token_prefix(day + 10**9) == token_prefix(day + 4 * 10**9)


def test_quickstart_live_trades_against_the_loopback_venue_and_replays_the_journal(tmp_path):
    proc = subprocess.run([LOCKSTEP, "quickstart", "--live", "--events", "30000", "--data",
                           str(tmp_path / "data"), "--json"], capture_output=True, text=True,
                          timeout=DEADLINE_S, cwd=tmp_path, env=_env(), check=False)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    live, replayed = out["live"], out["replay"]
    assert live["orders"] > 0 and live["feed_messages"] > 1_000 and live["stopped_by"] == "duration"
    assert {k: replayed[k] for k in SUMMARY_KEYS} == {k: live[k] for k in SUMMARY_KEYS}
    assert Path(live["journal"]).is_relative_to(tmp_path / "data" / "live")
