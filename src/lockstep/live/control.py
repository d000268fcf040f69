"""Control of a running live node: a local control socket, its client, and the signals.

    server = ControlServer(handler, control_endpoint(cfg.live.control, data, cfg.name),
                           on_stop=node.request_stop)
    with server, server.signals():
        while running:
            ...                       # the node's loop
            server.poll()             # answers what is waiting; never blocks with timeout 0

    send_command("/data/live/market_maker.sock", "status")   # what `lockstep live ctl` calls

**Endpoints.** A Unix socket path (created with file mode 0600 in a directory the node creates
with mode 0700; by default `ROOT/live/<name>.sock` under the storage root), or
`tcp://127.0.0.1:PORT` (loopback only: any other host is refused; a TCP endpoint has no file
permissions, so every local user can reach it). A socket file left behind by a node that
crashed is found stale (nothing accepts on it) and replaced; one a live node still answers on,
or a path that is not a socket, is a ControlError.

**Protocol.** One request per line, one response line per request, both JSON objects in UTF-8:

    -> {"command": "status"}
    <- {"ok": true, "command": "status", "mode": "active", "kill_switch": false, ...}
    -> {"command": "launch"}
    <- {"ok": false, "error": "unknown command 'launch' (known: status, kill, halt, resume, reduce_only)"}

A request that is not one JSON object naming a known command, longer than REQUEST_LIMIT bytes,
or that the handler fails on, gets `{"ok": false, "error": "..."}` (one line); the server never
stops for it. A connection may send several requests; one that stays idle longer than
`idle_timeout_s` is closed.

**The handler.** The server applies each command by calling `handler.handle(command)` on the
thread that calls poll() (the node's own loop: commands reach Control State through the live
core between events, so they are journaled like any event). It returns a JSON-serialisable
mapping that the response carries after "ok" and "command", and raises ControlError with a
one-line reason to refuse. What the commands mean (ControlHandler):

    status       mode, kill_switch, open_orders, position (by symbol), counters (the node
                 adds order_entry and failure)
    kill         cancel every open order, set the kill switch and halt
    halt         trading mode halted (no new orders; open orders stay)
    resume       trading mode active and the kill switch cleared
    reduce_only  trading mode reduce-only

**Signals** (ControlServer.signals(), main thread only): SIGINT and SIGTERM call `on_stop` with
the signal's name (a graceful stop: the node cancels open orders if configured, flushes and logs
out); a second SIGINT raises KeyboardInterrupt at once, for a node that does not stop. SIGUSR1
is `kill`, applied through the handler like a `ctl kill`. A signal handler only queues the
command and wakes the selector; poll() applies it on the node's thread.
"""
from __future__ import annotations

import collections
import contextlib
import ipaddress
import json
import logging
import os
import selectors
import signal
import socket
import stat
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, Self

from lockstep.data.storage import resolve_root
from lockstep.enums import Transport
from lockstep.errors import AddressError, ControlError, ControlUnreachable, StorageError
from lockstep.net import parse_address

log = logging.getLogger("lockstep.live.control")

#: The folder of the storage root that holds live sessions and their control sockets.
SESSIONS_AREA = "live"

#: The commands a node takes, in the order `lockstep live ctl --help` lists them.
COMMANDS = ("status", "kill", "halt", "resume", "reduce_only")
#: The longest request line (bytes, newline excluded) the server reads.
REQUEST_LIMIT = 4096
#: The longest response line the client reads.
RESPONSE_LIMIT = 1 << 20
#: sockaddr_un's sun_path holds 108 bytes with the terminating NUL.
_UNIX_PATH_MAX = 107
_ANSWER_TIMEOUT_S = 5.0


class ControlHandler(Protocol):
    """What a ControlServer applies commands to (the live node implements it)."""

    def handle(self, command: str) -> Mapping[str, Any]:
        """Applies one of COMMANDS; the result goes into the response. ControlError refuses."""
        ...


# --------------------------------------------------------------------------------------------
# Endpoints


def check_endpoint(text: str) -> str:
    """`text` as a control endpoint: an absolute Unix socket path, or tcp://127.x.x.x:PORT.
    ControlError, saying what is wrong, for anything else."""
    if "://" in text:
        try:
            address = parse_address(text)
        except AddressError as e:
            raise ControlError(str(e)) from None
        if address.transport != Transport.TCP:
            raise ControlError(f"{text!r}: a control endpoint is a Unix socket path or tcp://127.0.0.1:PORT")
        if not ipaddress.ip_address(address.host).is_loopback:
            raise ControlError(f"{text!r}: the control socket listens on loopback only (127.0.0.1)")
        return str(address)
    if not text or "\0" in text:
        raise ControlError(f"{text!r} is not a socket path")
    return os.path.abspath(text)


def default_socket_path(name: str, data: str | os.PathLike[str] | None = None) -> str:
    """`ROOT/live/<name>.sock` under the storage root (`data`, $LOCKSTEP_DATA, ./data); a root
    that is not a local folder (s3://...) has no place for sockets: StorageError."""
    root = local_root(data, "give the control socket a path (live.control, --socket)")
    return os.path.join(root, SESSIONS_AREA, f"{name}.sock")


def local_root(data: str | os.PathLike[str] | None, remedy: str) -> str:
    """The storage root as an absolute local path; StorageError (saying `remedy`) for a root
    in an object store, told by its scheme without reaching the store."""
    root = resolve_root(data)
    if root.startswith("file://"):
        root = root.removeprefix("file://")
    elif "://" in root:
        raise StorageError(f"the storage root {root} is not a local folder: {remedy}")
    return os.path.abspath(root)


def control_endpoint(configured: str, data: str | os.PathLike[str] | None, name: str) -> str:
    """The endpoint a node named `name` serves (and `ctl --name` reaches): `configured` (the
    config's live.control) if given, else default_socket_path."""
    return check_endpoint(configured) if configured else default_socket_path(name, data)


def _is_tcp(endpoint: str) -> bool:
    return endpoint.startswith("tcp://")


@contextlib.contextmanager
def _reachable_path(path: str) -> Iterator[str]:
    """`path` as bind() and connect() can take it: longer than sockaddr_un holds, it is reached
    through its folder's descriptor (/proc/self/fd/N/name), which is short."""
    if len(os.fsencode(path)) <= _UNIX_PATH_MAX:
        yield path
        return
    folder, base = os.path.split(path)
    try:
        fd = os.open(folder, os.O_PATH | os.O_DIRECTORY)
    except OSError as e:
        raise ControlError(f"{folder}: {e.strerror}") from None
    try:
        short = f"/proc/self/fd/{fd}/{base}"
        if len(os.fsencode(short)) > _UNIX_PATH_MAX:
            raise ControlError(f"{path}: the socket's name is too long ({len(base)} bytes)")
        yield short
    finally:
        os.close(fd)


def _tcp_tuple(endpoint: str) -> tuple[str, int]:
    address = parse_address(endpoint)
    return address.host, address.port


# --------------------------------------------------------------------------------------------
# The client


def send_command(endpoint: str, command: str, *, timeout: float = _ANSWER_TIMEOUT_S) -> dict[str, Any]:
    """Sends one command to the node at `endpoint` and returns its response (a dict with "ok").
    ControlUnreachable when nothing answers there (within `timeout` seconds); ControlError when
    the answer is not a response line."""
    endpoint = check_endpoint(endpoint)
    request = json.dumps({"command": command}).encode() + b"\n"
    try:
        if _is_tcp(endpoint):
            sock = socket.create_connection(_tcp_tuple(endpoint), timeout=timeout)
        else:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            with _reachable_path(endpoint) as path:
                try:
                    sock.connect(path)
                except OSError:
                    sock.close()
                    raise
    except TimeoutError:
        raise ControlUnreachable(f"no live node answers at {endpoint}: timed out") from None
    except OSError as e:
        raise ControlUnreachable(f"no live node answers at {endpoint}: {e.strerror or e}") from None
    with sock:
        try:
            sock.sendall(request)
            reply = _read_line(sock, endpoint)
        except TimeoutError:
            raise ControlUnreachable(f"the live node at {endpoint} did not answer within {timeout:g} s") from None
        except OSError as e:
            raise ControlUnreachable(f"the live node at {endpoint} dropped the connection: {e.strerror or e}") from None
    try:
        response = json.loads(reply)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ControlError(f"{endpoint} answered something that is not a JSON line") from None
    if not isinstance(response, dict) or not isinstance(response.get("ok"), bool):
        raise ControlError(f"{endpoint} answered a JSON line without \"ok\"")
    return response


def _read_line(sock: socket.socket, endpoint: str) -> bytes:
    data = bytearray()
    while b"\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ControlUnreachable(f"the live node at {endpoint} closed the connection without answering")
        data += chunk
        if len(data) > RESPONSE_LIMIT:
            raise ControlError(f"{endpoint} answered more than {RESPONSE_LIMIT} bytes without a newline")
    return bytes(data[: data.index(b"\n")])


# --------------------------------------------------------------------------------------------
# The server


def _error(reason: str) -> dict[str, Any]:
    return {"ok": False, "error": reason}


@dataclass(eq=False)
class _Client:
    sock: socket.socket
    last_active: float
    inbox: bytearray = field(default_factory=bytearray)
    outbox: bytearray = field(default_factory=bytearray)
    closing: bool = False  # answered a request it cannot continue after: its input is ignored


class ControlServer:
    """Serves `handler` on `endpoint` (check_endpoint's forms) until close(); see the module
    docstring. Non-blocking: poll() does the work, on the caller's thread; fileno() is readable
    whenever poll() has something to do, for the caller's own selector or epoll loop."""

    def __init__(self, handler: ControlHandler, endpoint: str, *,
                 on_stop: Callable[[str], None] | None = None, max_clients: int = 16,
                 idle_timeout_s: float = 10.0) -> None:
        self._handler = handler
        self._on_stop = on_stop
        self._max_clients = max_clients
        self._idle_timeout_s = idle_timeout_s
        self._clients: dict[int, _Client] = {}
        self._signalled: collections.deque[tuple[str, str]] = collections.deque()
        self._stop_requested = False
        self._socket_inode: tuple[int, int] | None = None
        self._selector = selectors.DefaultSelector()
        endpoint = check_endpoint(endpoint)
        self._listener = self._listen_tcp(endpoint) if _is_tcp(endpoint) else self._listen_unix(endpoint)
        self._listener.setblocking(False)
        if _is_tcp(endpoint):
            host, port = self._listener.getsockname()[:2]
            endpoint = f"tcp://{host}:{port}"
        self.endpoint = endpoint
        self._wake_read, self._wake_write = socket.socketpair()
        for s in (self._wake_read, self._wake_write):
            s.setblocking(False)
        self._selector.register(self._listener, selectors.EVENT_READ, "listener")
        self._selector.register(self._wake_read, selectors.EVENT_READ, "wake")
        #: Requests answered, bad requests among them, and commands applied from signals.
        self.counts = {"requests": 0, "bad_requests": 0, "signals": 0}

    # -- setting up ------------------------------------------------------------------------

    @staticmethod
    def _listen_tcp(endpoint: str) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(_tcp_tuple(endpoint))
            sock.listen(8)
        except OSError as e:
            sock.close()
            raise ControlError(f"cannot listen on {endpoint}: {e.strerror or e}") from None
        return sock

    def _listen_unix(self, path: str) -> socket.socket:
        folder = os.path.dirname(path)
        try:
            os.makedirs(folder, mode=0o700, exist_ok=True)
        except OSError as e:
            raise ControlError(f"cannot create {folder} for the control socket: {e.strerror or e}") from None
        _clear_stale_socket(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with _reachable_path(path) as bind_path:
                # The socket is born 0600: no moment in which another user could connect.
                old_mask = os.umask(0o177)
                try:
                    sock.bind(bind_path)
                finally:
                    os.umask(old_mask)
            os.chmod(path, 0o600)
            sock.listen(8)
            st = os.stat(path)
        except OSError as e:
            sock.close()
            raise ControlError(f"cannot listen on {path}: {e.strerror or e}") from None
        except ControlError:
            sock.close()
            raise
        self._socket_inode = (st.st_dev, st.st_ino)
        return sock

    # -- running ---------------------------------------------------------------------------

    def fileno(self) -> int:
        return self._selector.fileno()

    def wake(self) -> None:
        """Makes the selector readable (from any thread): the node's loop returns and polls."""
        with contextlib.suppress(OSError):  # a full wake socket already wakes the selector
            self._wake_write.send(b"!")

    def poll(self, timeout: float = 0.0) -> int:
        """Accepts, reads and answers what is waiting (waiting up to `timeout` seconds for
        something), applies commands queued by signals, closes idle connections. Returns how
        many requests it answered."""
        answered = 0
        for key, events in self._selector.select(timeout):
            if key.data == "listener":
                self._accept()
            elif key.data == "wake":
                self._drain_wake()
            else:
                client = self._clients.get(key.fd)
                if client is None:
                    continue
                if events & selectors.EVENT_READ:
                    answered += self._read(client)
                if events & selectors.EVENT_WRITE and key.fd in self._clients:
                    self._send(client)
        self._apply_signalled()
        self._close_idle()
        return answered

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # out of descriptors, say: the node goes on, the client retries
                log.warning("control: cannot accept a connection: %s", e.strerror or e)
                return
            sock.setblocking(False)
            client = _Client(sock, time.monotonic())
            if len(self._clients) >= self._max_clients:
                client.outbox += _line(_error(f"too many control connections (at most {self._max_clients})"))
                client.closing = True
            self._clients[sock.fileno()] = client
            # Writability is asked for only while an answer waits: fileno() stays quiet when idle.
            self._selector.register(sock, selectors.EVENT_READ, "client")
            if client.closing:
                self._send(client)

    def _read(self, client: _Client) -> int:
        try:
            data = client.sock.recv(REQUEST_LIMIT + 1)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError:
            self._drop(client)
            return 0
        if not data:
            self._drop(client)
            return 0
        client.last_active = time.monotonic()
        if client.closing:
            return 0
        client.inbox += data
        answered = 0
        while b"\n" in client.inbox:
            line, _, rest = bytes(client.inbox).partition(b"\n")
            client.inbox[:] = rest
            client.outbox += _line(self._answer(line))
            answered += 1
        if len(client.inbox) > REQUEST_LIMIT:
            client.outbox += _line(self._refuse(f"request longer than {REQUEST_LIMIT} bytes"))
            client.inbox.clear()
            client.closing = True
            answered += 1
        self.counts["requests"] += answered
        if client.outbox:
            self._send(client)
        return answered

    def _send(self, client: _Client) -> None:
        if not client.outbox:  # a closing client is shut for writing: a send would fail
            self._selector.modify(client.sock, selectors.EVENT_READ, "client")
            return
        try:
            sent = client.sock.send(client.outbox)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(client)
            return
        del client.outbox[:sent]
        if not client.outbox:
            if client.closing:
                # Half-close and read on until the peer closes (or idles out): closing with its
                # unread bytes waiting would reset the connection and lose the answer.
                with contextlib.suppress(OSError):
                    client.sock.shutdown(socket.SHUT_WR)
            self._selector.modify(client.sock, selectors.EVENT_READ, "client")
        else:
            self._selector.modify(client.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, "client")

    def _drop(self, client: _Client) -> None:
        self._clients.pop(client.sock.fileno(), None)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(client.sock)
        client.sock.close()

    def _close_idle(self) -> None:
        limit = time.monotonic() - self._idle_timeout_s
        for client in [c for c in self._clients.values() if c.last_active < limit]:
            self._drop(client)

    def _refuse(self, reason: str) -> dict[str, Any]:
        self.counts["bad_requests"] += 1
        return _error(reason)

    def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            return self._refuse("the request is not UTF-8")
        except json.JSONDecodeError as e:
            return self._refuse(f"the request is not JSON ({e.msg} at column {e.colno}); "
                                'send {"command": "status"}')
        if not isinstance(request, dict) or set(request) != {"command"}:
            return self._refuse('a request is one JSON object with one key, like {"command": "status"}')
        command = request["command"]
        if command not in COMMANDS:
            shown = repr(command) if len(repr(command)) <= 40 else repr(command)[:37] + "..."
            return self._refuse(f"unknown command {shown} (known: {', '.join(COMMANDS)})")
        return self.apply(command)

    def apply(self, command: str) -> dict[str, Any]:
        """Applies `command` through the handler: the response a client would get."""
        try:
            result = self._handler.handle(command)
        except ControlError as e:
            return _error(str(e))
        except Exception as e:  # a failing handler answers one line; the node keeps running
            log.exception("control: %s failed", command)
            return _error(f"{command} failed: {type(e).__name__}: {e}")
        if not isinstance(result, Mapping):
            return _error(f"{command}: the node answered {type(result).__name__}, not a mapping")
        # "ok" and "command" are the protocol's: a result cannot change them.
        return {"ok": True, "command": command,
                **{k: v for k, v in result.items() if k not in ("ok", "command")}}

    # -- signals ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def signals(self) -> Iterator[None]:
        """While inside: SIGINT / SIGTERM ask on_stop for a graceful stop (a second SIGINT
        raises KeyboardInterrupt), SIGUSR1 kills; the previous handlers come back after. The
        signal also wakes the selector at once, from the C level (signal.set_wakeup_fd): a
        caller that waits on fileno() outside Python (the live node's C++ loop) returns for it
        at once, and its handler runs then. Only the main thread can set signal handlers:
        elsewhere nothing changes."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        wanted = [signal.SIGUSR1] + ([signal.SIGINT, signal.SIGTERM] if self._on_stop else [])
        previous = {s: signal.signal(s, self._on_signal) for s in wanted}
        previous_wakeup = signal.set_wakeup_fd(self._wake_write.fileno(), warn_on_full_buffer=False)
        try:
            yield
        finally:
            signal.set_wakeup_fd(previous_wakeup)
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _on_signal(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if signum == signal.SIGUSR1:
            self._signalled.append(("kill", name))
        elif signum == signal.SIGINT and self._stop_requested:
            raise KeyboardInterrupt(f"second {name}: stopping without a graceful shutdown")
        else:
            self._stop_requested = True
            self._signalled.append(("stop", name))
        with contextlib.suppress(OSError):  # a full wake socket already wakes the selector
            self._wake_write.send(b"!")

    def _drain_wake(self) -> None:
        with contextlib.suppress(OSError):
            while self._wake_read.recv(4096):
                pass

    def _apply_signalled(self) -> None:
        while self._signalled:
            action, name = self._signalled.popleft()
            self.counts["signals"] += 1
            if action == "kill":
                response = self.apply("kill")
                log.warning("control: %s: kill -> %s", name, "ok" if response["ok"] else response["error"])
            elif self._on_stop is not None:
                self._on_stop(name)

    # -- closing ---------------------------------------------------------------------------

    def close(self) -> None:
        """Closes every connection and the listener; removes the socket file if it is still
        the one this server made."""
        for client in list(self._clients.values()):
            self._drop(client)
        self._selector.close()
        self._listener.close()
        self._wake_read.close()
        self._wake_write.close()
        if self._socket_inode is not None:
            with contextlib.suppress(OSError):
                st = os.stat(self.endpoint)
                if (st.st_dev, st.st_ino) == self._socket_inode:
                    os.unlink(self.endpoint)
            self._socket_inode = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _line(response: Mapping[str, Any]) -> bytes:
    return json.dumps(response, default=str, separators=(",", ":")).encode() + b"\n"


def _clear_stale_socket(path: str) -> None:
    """Removes a socket file no node accepts on; ControlError if one does, or if `path` is
    something other than a socket."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as e:
        raise ControlError(f"{path}: {e.strerror or e}") from None
    if not stat.S_ISSOCK(st.st_mode):
        raise ControlError(f"{path} exists and is not a socket; the control socket needs that path")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        with _reachable_path(path) as reachable:
            probe.connect(reachable)
    except (ConnectionRefusedError, FileNotFoundError):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        log.info("control: removed the stale socket %s", path)
        return
    except OSError as e:
        raise ControlError(f"{path}: cannot tell whether a node serves it: {e.strerror or e}") from None
    finally:
        probe.close()
    raise ControlError(f"{path}: another live node serves this control socket "
                       f"(lockstep live ctl status --socket {path})")


__all__ = [
    "COMMANDS",
    "REQUEST_LIMIT",
    "SESSIONS_AREA",
    "ControlHandler",
    "ControlServer",
    "check_endpoint",
    "control_endpoint",
    "default_socket_path",
    "local_root",
    "send_command",
]
