"""`lockstep live` and `lockstep live ctl`, run as a user runs them: real subprocesses."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from lockstep.errors import ControlError
from lockstep.live.control import ControlServer

REPO = Path(__file__).resolve().parents[1]
LOCKSTEP = shutil.which("lockstep") or "lockstep"
PASSWORD = "Pw9xQz7!k"
LIVE = """
[live]
feed = "udp://127.0.0.1:31000"
retransmit = "udp://127.0.0.1:31001"
order_entry = "tcp://127.0.0.1:31002"
username = "demo"
password_env = "MM_PASSWORD"
"""


def cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in ("LOCKSTEP_DATA", "MM_PASSWORD")}
    full_env.update(env or {})
    return subprocess.run([LOCKSTEP, *args], cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=120, check=False)


class Node:
    def __init__(self) -> None:
        self.applied: list[str] = []

    def handle(self, command: str) -> dict:
        self.applied.append(command)
        if command == "resume":
            raise ControlError("not halted")
        return {"mode": "halted" if command in ("kill", "halt") else "active", "kill_switch": command == "kill",
                "open_orders": 0, "position": {"BTCUSDT": 0.0}, "counters": {"orders": 2}}


@pytest.fixture
def node(tmp_path):
    """A control server polled on a thread, at the default socket of a node named mm under
    tmp_path/data."""
    handler = Node()
    server = ControlServer(handler, str(tmp_path / "data" / "live" / "mm.sock"))
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            server.poll(0.02)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield server, handler
    stop.set()
    thread.join(timeout=5)
    server.close()


def test_ctl_reaches_a_node_by_socket_or_by_name(node, tmp_path):
    server, handler = node
    status = cli("live", "ctl", "status", "--socket", server.endpoint, "--json", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    answer = json.loads(status.stdout)
    assert answer["ok"] and answer["mode"] == "active" and answer["counters"] == {"orders": 2}
    killed = cli("live", "ctl", "kill", "--name", "mm", "--data", str(tmp_path / "data"), cwd=tmp_path)
    assert killed.returncode == 0, killed.stderr
    lines = dict(line.split(None, 1) for line in killed.stdout.splitlines())
    assert lines["command"] == "kill" and lines["kill_switch"] == "true" and lines["mode"] == "halted"
    by_env = cli("live", "ctl", "halt", "--name", "mm", cwd=tmp_path,
                 env={"LOCKSTEP_DATA": str(tmp_path / "data")})
    assert by_env.returncode == 0, by_env.stderr
    assert handler.applied == ["status", "kill", "halt"]


def test_ctl_exit_codes(node, tmp_path):
    server, _ = node
    refused = cli("live", "ctl", "resume", "--socket", server.endpoint, cwd=tmp_path)
    assert refused.returncode == 1 and refused.stderr.strip() == "error: resume: not halted"
    refused_json = cli("live", "ctl", "resume", "--socket", server.endpoint, "--json", cwd=tmp_path)
    assert refused_json.returncode == 1 and json.loads(refused_json.stdout) == {"ok": False, "error": "not halted"}
    nobody = cli("live", "ctl", "status", "--socket", str(tmp_path / "none.sock"), cwd=tmp_path)
    assert nobody.returncode == 6
    assert nobody.stderr.startswith("error: no live node answers at") and nobody.stderr.count("\n") == 1
    for usage in (("live", "ctl", "status"), ("live", "ctl", "launch", "--name", "mm"),
                  ("live", "ctl", "status", "--name", "mm", "--socket", server.endpoint)):
        assert cli(*usage, cwd=tmp_path).returncode == 2, usage
    off_host = cli("live", "ctl", "status", "--socket", "tcp://10.0.0.1:9000", cwd=tmp_path)
    assert off_host.returncode == 1 and "loopback only" in off_host.stderr


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "mm_live.toml"
    path.write_text((REPO / "examples" / "market_maker.toml").read_text() + LIVE)
    return path


def test_live_names_a_bad_key_before_anything_else(config, tmp_path):
    env = {"MM_PASSWORD": PASSWORD}
    for args, key in [(("--set", "live.feed=tcp://127.0.0.1:1"), "live.feed"),
                      (("--set", "live.bogus=1"), "live.bogus"),
                      (("--set", "strategy.params.sizee=1"), "strategy.params.sizee"),
                      (("--set", "live.password=" + PASSWORD + "x spaced"), "live.password")]:
        proc = cli("live", str(config), *args, "--json", cwd=tmp_path, env=env)
        assert proc.returncode == 1, proc.stderr
        assert key in proc.stderr and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
        assert PASSWORD not in proc.stdout + proc.stderr
    unset = cli("live", str(config), cwd=tmp_path)
    assert unset.returncode == 1 and "live.password_env" in unset.stderr and "MM_PASSWORD" in unset.stderr
    usage = cli("live", str(config), "--duration", "0", cwd=tmp_path, env=env)
    assert usage.returncode == 2


@pytest.mark.skipif(importlib.util.find_spec("lockstep.live.node") is not None,
                    reason="this build has the live node")
def test_live_without_a_node_says_so_after_checking_the_config(config, tmp_path):
    env = {"MM_PASSWORD": PASSWORD}
    for args in ((str(config),), ("run", str(config), "--duration", "1", "--data", str(tmp_path / "d"))):
        proc = cli("live", *args, cwd=tmp_path, env=env)
        assert proc.returncode == 1
        assert proc.stderr == "error: live node not available in this build\n"


def test_live_help_lists_run_and_ctl(tmp_path):
    proc = cli("live", "--help", cwd=tmp_path)
    assert proc.returncode == 0 and "run" in proc.stdout and "ctl" in proc.stdout
    listed = cli("--help", cwd=tmp_path)
    assert "live" in listed.stdout


# A stand-in for lockstep.live.node, loaded into the CLI's process by a sitecustomize module: a
# node built from the pieces this package gives it (control server, signals, records), so the
# command's wiring is tested as the node will use it.
FAKE_NODE = '''
import os, sys, time, types
from lockstep.live.control import ControlServer, control_endpoint
from lockstep.live.records import RecordsWriter, new_session_dir
from lockstep.tomlconfig import dump_toml


class Handler:
    killed = False

    def handle(self, command):
        if command == "kill":
            Handler.killed = True
        return {"mode": "halted" if Handler.killed else "active", "kill_switch": Handler.killed}


def run_live(config, *, data, duration_s):
    config_text = dump_toml(config.to_dict())
    session = new_session_dir(config.name, config_text, data=data)
    records = RecordsWriter(session, [], flush_interval_ns=config.live.flush_interval_ns,
                            config_text=config_text, title=config.name)
    stopped = []
    end = time.monotonic() + (duration_s if duration_s is not None else 30)
    with ControlServer(Handler(), control_endpoint(config.live.control, data, config.name),
                       on_stop=stopped.append) as server, server.signals():
        while not stopped and time.monotonic() < end:
            server.poll(0.01)
    return records.close({"digest": "0" * 64, "journal": str(session.path), "orders": 0,
                          "fills": 0, "intents": 0, "denials": 0,
                          "stopped_by": stopped[0] if stopped else "duration",
                          "killed": Handler.killed,
                          "password_ok": config.live.password.reveal() == os.environ["MM_PASSWORD"]})


node = types.ModuleType("lockstep.live.node")
node.run_live = run_live
sys.modules["lockstep.live.node"] = node
'''


def test_live_runs_the_node_and_ctl_and_signals_reach_it(config, tmp_path):
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "sitecustomize.py").write_text(FAKE_NODE)
    root = tmp_path / "root"
    env = {k: v for k, v in os.environ.items() if k != "LOCKSTEP_DATA"}
    env.update({"MM_PASSWORD": PASSWORD, "PYTHONPATH": str(fake)})
    proc = subprocess.Popen([LOCKSTEP, "live", str(config), "--data", str(root), "--json"], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        socket_path = root / "live" / "market_maker.sock"
        deadline = time.monotonic() + 30
        while not socket_path.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert socket_path.exists(), proc.stderr.read() if proc.poll() is not None else "no socket"
        ctl = ("live", "ctl", "--name", "market_maker", "--data", str(root))
        status = cli(ctl[0], ctl[1], "status", *ctl[2:], "--json", cwd=tmp_path)
        assert status.returncode == 0 and json.loads(status.stdout)["mode"] == "active", status.stderr
        assert cli(ctl[0], ctl[1], "kill", *ctl[2:], cwd=tmp_path).returncode == 0
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    summary = json.loads(out)  # one line
    assert out.count("\n") == 1
    assert summary["stopped_by"] == "SIGTERM" and summary["killed"] and summary["password_ok"]
    assert {"digest", "journal", "orders", "fills", "intents", "denials"} <= set(summary)
    session = Path(summary["journal"])
    assert session.parent == root / "live" and (session / "report.html").is_file()
    assert not socket_path.exists()
    # The password is in no file the session wrote.
    written = [p for p in root.rglob("*") if p.is_file()]
    assert written and not any(PASSWORD.encode() in p.read_bytes() for p in written)
    assert "password_env" in (session / "config.toml").read_text()
    # --duration ends the node by itself
    timed = cli("live", str(config), "--data", str(root), "--duration", "0.3", "--json", cwd=tmp_path,
                env={"MM_PASSWORD": PASSWORD, "PYTHONPATH": str(fake)})
    assert timed.returncode == 0, timed.stderr
    assert json.loads(timed.stdout)["stopped_by"] == "duration"
