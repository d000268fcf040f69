"""The live node's control socket: real Unix and loopback TCP sockets, a server polled on its own
thread (as the node's loop polls it), and signals in a real subprocess."""
from __future__ import annotations

import json
import os
import select
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Self

import pytest

from lockstep.errors import ControlError, ControlUnreachable, StorageError
from lockstep.live.control import (
    COMMANDS,
    REQUEST_LIMIT,
    ControlServer,
    check_endpoint,
    control_endpoint,
    default_socket_path,
    send_command,
)


class Node:
    """A stand-in for the live node: trading mode, kill switch and open orders."""

    def __init__(self) -> None:
        self.mode = "active"
        self.kill_switch = False
        self.open_orders = 3
        self.applied: list[str] = []

    def handle(self, command: str) -> dict:
        self.applied.append(command)
        if command == "kill":
            self.kill_switch, self.mode, self.open_orders = True, "halted", 0
        elif command == "halt":
            self.mode = "halted"
        elif command == "resume":
            if self.mode == "active":
                raise ControlError("already active")
            self.mode, self.kill_switch = "active", False
        elif command == "reduce_only":
            raise RuntimeError("boom")
        return {"mode": self.mode, "kill_switch": self.kill_switch, "open_orders": self.open_orders,
                "position": {"BTCUSDT": 0.01}, "counters": {"orders": 7}}


class Serving:
    """A ControlServer polled on a thread until the block ends."""

    def __init__(self, endpoint: str, node: Node | None = None, **kw) -> None:
        self.node = node or Node()
        self.server = ControlServer(self.node, endpoint, **kw)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.server.poll(0.02)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.server.close()


def raw(endpoint: str, payload: bytes, *, lines: int = 1) -> list[dict]:
    """Sends raw bytes and reads `lines` response lines (bounded by a timeout)."""
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(5)
    sock.connect(endpoint)
    with sock:
        sock.sendall(payload)
        data = b""
        while data.count(b"\n") < lines:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return [json.loads(line) for line in data.splitlines()]


def test_each_command_reaches_the_handler_and_its_answer_comes_back(tmp_path):
    path = str(tmp_path / "ctl" / "node.sock")
    with Serving(path) as s:
        status = send_command(path, "status")
        assert status == {"ok": True, "command": "status", "mode": "active", "kill_switch": False,
                          "open_orders": 3, "position": {"BTCUSDT": 0.01}, "counters": {"orders": 7}}
        assert send_command(path, "halt")["mode"] == "halted"
        assert send_command(path, "resume")["mode"] == "active"
        killed = send_command(path, "kill")
        assert killed["ok"] and killed["kill_switch"] and killed["mode"] == "halted"
        assert killed["open_orders"] == 0
        assert s.node.applied == ["status", "halt", "resume", "kill"]


def test_the_socket_is_private_to_its_owner(tmp_path):
    path = tmp_path / "fresh" / "node.sock"
    with Serving(str(path)):
        st = os.stat(path)
        assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
        assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert not path.exists()  # closing removes it


def test_refusals_and_failures_are_one_line_answers_and_serving_goes_on(tmp_path):
    path = str(tmp_path / "node.sock")
    with Serving(path) as s:
        assert send_command(path, "resume") == {"ok": False, "error": "already active"}
        failed = send_command(path, "reduce_only")
        assert not failed["ok"] and failed["error"] == "reduce_only failed: RuntimeError: boom"
        bad = [b"not json\n", b"\xff\xfe\n", b'["status"]\n', b'{"command": "launch"}\n',
               b'{"command": "status", "force": true}\n', b'{"command": 7}\n', b"\n"]
        answers = [raw(path, line)[0] for line in bad]
        assert all(a["ok"] is False and a["error"] for a in answers), answers
        assert "not JSON" in answers[0]["error"] and "not UTF-8" in answers[1]["error"]
        assert "unknown command 'launch'" in answers[3]["error"]
        assert all(c in answers[3]["error"] for c in COMMANDS)
        assert s.server.counts["bad_requests"] == len(bad)
        assert send_command(path, "status")["ok"]


def test_a_result_cannot_change_the_protocols_fields(tmp_path):
    class Liar(Node):
        def handle(self, command):
            return {"ok": False, "command": "other", "mode": "active"}

    path = str(tmp_path / "node.sock")
    with Serving(path, Liar()):
        assert send_command(path, "status") == {"ok": True, "command": "status", "mode": "active"}


def test_an_overlong_request_is_refused_and_its_connection_closed(tmp_path):
    path = str(tmp_path / "node.sock")
    with Serving(path) as s:
        answers = raw(path, b"x" * (REQUEST_LIMIT + 10), lines=2)
        assert len(answers) == 1 and "longer than" in answers[0]["error"]
        assert s.node.applied == [] and send_command(path, "status")["ok"]


def test_fileno_is_readable_when_a_request_waits(tmp_path):
    """A node's own epoll loop can wait on the server and poll it only when there is work."""
    path = str(tmp_path / "node.sock")
    with ControlServer(Node(), path) as server:
        assert select.select([server], [], [], 0)[0] == []
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(5)
            client.connect(path)
            assert select.select([server], [], [], 5)[0] == [server]
            server.poll()
            client.sendall(b'{"command": "status"}\n')
            assert select.select([server], [], [], 5)[0] == [server]
            assert server.poll() == 1
            assert json.loads(client.recv(65536))["ok"]
            assert select.select([server], [], [], 0)[0] == []  # answered: quiet again


def test_several_requests_on_one_connection_are_answered_in_order(tmp_path):
    path = str(tmp_path / "node.sock")
    with Serving(path):
        answers = raw(path, b'{"command": "status"}\n{"command": "halt"}\n{"command": "status"}\n', lines=3)
        assert [(a["command"], a["mode"]) for a in answers] == \
            [("status", "active"), ("halt", "halted"), ("status", "halted")]


def test_idle_connections_are_closed_and_connections_are_capped(tmp_path):
    path = str(tmp_path / "node.sock")
    with Serving(path, idle_timeout_s=0.2, max_clients=2):
        idle = [socket.socket(socket.AF_UNIX) for _ in range(2)]
        for sock in idle:
            sock.settimeout(5)
            sock.connect(path)
        time.sleep(0.05)
        over = raw(path, b"")
        assert "too many control connections" in over[0]["error"]
        for sock in idle:
            assert sock.recv(10) == b""  # closed by the server once idle
            sock.close()
        assert send_command(path, "status")["ok"]


def test_a_stale_socket_is_replaced_and_a_live_one_is_not_taken(tmp_path):
    path = str(tmp_path / "node.sock")
    crashed = socket.socket(socket.AF_UNIX)
    crashed.bind(path)  # a node that died without removing its socket
    crashed.close()
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    with pytest.raises(ControlUnreachable):
        send_command(path, "status")
    with Serving(path):
        assert send_command(path, "status")["ok"]
        with pytest.raises(ControlError, match="another live node serves"):
            ControlServer(Node(), path)
        assert send_command(path, "status")["ok"]  # the running node keeps its socket


def test_a_path_that_is_not_a_socket_is_left_alone(tmp_path):
    path = tmp_path / "node.sock"
    path.write_text("precious")
    with pytest.raises(ControlError, match="not a socket"):
        ControlServer(Node(), str(path))
    assert path.read_text() == "precious"


def test_a_path_longer_than_a_unix_socket_address_still_works(tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    path = str(deep / "node.sock")
    assert len(path) > 108
    with Serving(path):
        assert send_command(path, "status")["ok"]
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_loopback_tcp_only(tmp_path):
    with Serving("tcp://127.0.0.1:0") as s:
        assert s.server.endpoint.startswith("tcp://127.0.0.1:") and not s.server.endpoint.endswith(":0")
        assert send_command(s.server.endpoint, "status")["ok"]
    for refused in ("tcp://10.1.2.3:7000", "tcp://0.0.0.0:7000", "udp://127.0.0.1:7000", "tcp://127.0.0.1"):
        with pytest.raises(ControlError):
            check_endpoint(refused)
        with pytest.raises(ControlError):
            ControlServer(Node(), refused)


def test_nothing_listening_is_unreachable(tmp_path):
    with pytest.raises(ControlUnreachable, match="no live node answers"):
        send_command(str(tmp_path / "none.sock"), "status")
    with socket.socket() as s:  # a free loopback port
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ControlUnreachable):
        send_command(f"tcp://127.0.0.1:{port}", "status")


def test_a_listener_that_never_answers_times_out(tmp_path):
    path = str(tmp_path / "mute.sock")
    with socket.socket(socket.AF_UNIX) as mute:
        mute.bind(path)
        mute.listen(1)
        started = time.monotonic()
        with pytest.raises(ControlUnreachable, match="did not answer"):
            send_command(path, "status", timeout=0.3)
        assert time.monotonic() - started < 3


def test_the_default_socket_is_named_after_the_node_under_the_storage_root(tmp_path):
    root = tmp_path / "root"
    assert default_socket_path("mm", str(root)) == str(root / "live" / "mm.sock")
    assert control_endpoint("", str(root), "mm") == str(root / "live" / "mm.sock")
    assert control_endpoint(str(tmp_path / "x.sock"), str(root), "mm") == str(tmp_path / "x.sock")
    with pytest.raises(StorageError, match="not a local folder"):
        default_socket_path("mm", "s3://bucket/prefix")


_SIGNALLED_NODE = """
import json, sys
sys.path.insert(0, sys.argv[2])
from test_live_control import Node
from lockstep.live.control import ControlServer
stopped = []
node = Node()
with ControlServer(node, sys.argv[1], on_stop=stopped.append) as server, server.signals():
    print(json.dumps({"endpoint": server.endpoint}), flush=True)
    for _ in range(3000):                    # bounded: 30 s at most
        server.poll(0.01)
        if stopped:
            break
print(json.dumps({"stopped_by": stopped, "applied": node.applied, "signals": server.counts["signals"]}), flush=True)
"""


def test_sigusr1_kills_and_sigterm_stops_gracefully(tmp_path):
    path = str(tmp_path / "node.sock")
    proc = subprocess.Popen([sys.executable, "-c", _SIGNALLED_NODE, path, str(Path(__file__).parent)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert json.loads(proc.stdout.readline())["endpoint"] == path
        proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            status = send_command(path, "status")
            if status["kill_switch"]:
                break
            time.sleep(0.02)
        assert status["kill_switch"] and status["mode"] == "halted" and status["open_orders"] == 0
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    final = json.loads(out)
    assert final == {"stopped_by": ["SIGTERM"], "applied": final["applied"], "signals": 2}
    assert final["applied"][0] == "kill" and set(final["applied"][1:]) == {"status"}
    assert not os.path.exists(path)


def test_a_second_sigint_interrupts_a_node_that_does_not_stop(tmp_path):
    script = _SIGNALLED_NODE.replace("if stopped:\n            break", "pass")
    path = str(tmp_path / "node.sock")
    proc = subprocess.Popen([sys.executable, "-c", script, path, str(Path(__file__).parent)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        proc.stdout.readline()
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0 and "KeyboardInterrupt" in err and "second SIGINT" in err
