"""The live node: the live core of a session (lockstep.live.session) on sockets.

    summary = run_live(load_live_config("mm_live.toml"), data=None, duration_s=10.0)

`lockstep live CONFIG.toml` calls run_live once the config is checked. In order:

1. the dataset the config names gives the venue's instruments (their feed names and price
   multipliers, as the loopback venue's Stock Directory has them) and the day the venue's ITCH
   and OUCH timestamps count from (its first event's, as the loopback venue counts);
2. the feed socket (`live.feed`, unicast or a multicast group) and a retransmission socket are
   bound, order entry (`live.order_entry`, OUCH 4.2 over SoupBinTCP) connects and logs in: a
   login the venue rejects is LoginRejected (exit 1), none within `live.session_timeout` a
   LockstepError; nothing is written before the login is accepted;
3. the session folder is created under the storage root (the execution records, and the
   journal in its `journal/`), then the control socket;
4. the loop, until `duration_s`, SIGINT / SIGTERM, or the venue ending the order-entry session.
   Its hot path is C++ (lockstep._bindings.live_loop, include/lockstep/runtime/live_loop.hpp):
   datagrams of both sockets (recvmmsg, kernel stamps) go through the MoldUDP64 receiver, and
   the messages it releases go to the live core with their datagram's receive stamp (one input
   per datagram), journaled and hashed as the session does; retransmission requests go to
   `live.retransmit`; a gap given up is a feed-gap input; when no input came for TICK_NS the
   clock is read and applied as a tick (the only clock read that reaches the core; journaled);
   the OUCH messages the core dispatches are written at once to the order-entry socket as
   SoupBinTCP Unsequenced Data (whatever the kernel does not take, or everything while the
   client is not logged in or has bytes of its own waiting, goes to the client, in order). The
   loop returns here only when Python is needed: order entry or the control socket readable
   (while order entry is logged in, the loop reads the venue's answers and writes the
   session's heartbeats itself), a signal (it wakes the control socket), a receiver notice,
   bytes left for the client, a failure, the end of the duration, or half the flush interval
   (at most RUN_BUDGET_NS). Then the session takes the loop's records and failure (the core
   hashed the outputs for the digest itself) and hands the records to their own thread, which
   converts and writes them every half `live.flush_interval`; OUCH messages the client read go to
   the session with the stamp of their read; control commands reach the session between
   inputs (so they are journaled). The journal's and the records' threads are kept off
   `live.cpu`, which the loop's thread is pinned to. The loop times tick-to-trade
   (counters()["tick_to_trade"]: measurement only, never journaled);
5. the stop: with `live.cancel_on_shutdown`, the kill switch (every open order cancelled) and
   up to `live.cancel_timeout` for the acknowledgements; then the strategy's on_stop, the
   journal's end record, the records closed (Parquet, summary.json, report.html), log out.

Receive stamps are CLOCK_REALTIME ns throughout: the kernel's stamps of the datagrams, and
reads of the same clock for OUCH reads and ticks, so every input's stamp is on one clock.
"""
from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lockstep import __version__
from lockstep._bindings import live_loop as _live_loop
from lockstep.data.dataset import Dataset, Instrument
from lockstep.enums import LoopExit, MoldNoticeKind, SoupClientState, TradingMode
from lockstep.errors import ControlError, LockstepError, LoginRejected, SocketError
from lockstep.live.config import LiveConfig
from lockstep.live.control import ControlServer, control_endpoint
from lockstep.live.journal import split_outbound
from lockstep.live.metrics import MetricsEndpoint, reading
from lockstep.live.records import RecordsThread, RecordsWriter, new_session_dir
from lockstep.live.session import (
    LiveSession,
    LiveTerms,
    journaled_session,
    venue_instruments,
)
from lockstep.live.snapshot import SnapshotError, SnapshotFetch
from lockstep.net import UdpSocket, keep_off_cpu, local_host_towards, pin_to_cpu
from lockstep.protocols.mold_receiver import MoldReceiver, MoldReceiverConfig
from lockstep.protocols.order_entry import OrderEntryClient
from lockstep.protocols.soup_client import SoupClientConfig
from lockstep.tomlconfig import dump_toml
from lockstep.venue.loopback.feed import day_start

log = logging.getLogger("lockstep.live.node")

#: With no input for this long, the clock is read and the session ticks (timers, deferred
#: dispatches): the resolution of timers in a quiet market.
TICK_NS = 1_000_000
#: The longest the C++ loop runs before it returns here (and at most half of
#: `live.flush_interval`: the records reach their thread at least that often). Every return is a
#: pause of a few hundred microseconds in reading the feed, so the loop returns only when Python
#: has something to do: signals and control commands wake it through the control socket, and
#: while it owns the logged-in order-entry connection it sends the heartbeats itself.
RUN_BUDGET_NS = 1_000_000_000
#: The interpreter's switch interval while the node trades (Python's default is 5 ms): a Python
#: strategy's callback that finds the records' thread holding the GIL waits about this long for
#: it, not 5 ms (measured: the Python market maker's largest tick-to-trade 1.5-2.1 ms instead
#: of 4.2-4.5 ms).
_GIL_SWITCH_S = 100e-6
#: How often the order-entry client gets a turn while it is not logged in (connects, reconnects).
_SERVICE_NS = 5_000_000
_RUN_TURNS = 1 << 30
_FEED_BATCH = 64
_SLOT_BYTES = 2048
_FEED_RECEIVE_BUFFER = 16 << 20
#: How long the loop sleeps when nothing is ready (unless busy-polling).
_WAIT_MS = 1
_DAY_S = 86_400
_FINAL = (SoupClientState.REJECTED, SoupClientState.ENDED, SoupClientState.LOGGED_OUT)


def token_prefix(now_ns: int) -> str:
    """The session's order-token prefix: "L" and three letters counting 5-second steps of the
    UTC day it starts in, so that two sessions of one account on one day (OUCH tokens are
    day-unique per account) do not reuse each other's tokens unless they start within 5 s."""
    step = (now_ns // 1_000_000_000 % _DAY_S) // 5  # < 17,280 < 26**3
    letters = ""
    for _ in range(3):
        step, k = divmod(step, 26)
        letters = chr(ord("A") + k) + letters
    return "L" + letters


def _first_event_ns(ds: Dataset) -> int:
    batch = next(ds.iter_batches(1, prefetch=0), None)
    if batch is None or batch.num_rows == 0:
        raise LockstepError(f"{ds.path}: the dataset is empty: no instruments' day to trade")
    return int(batch.column("ts_event")[0].as_py())


class LiveNode:
    """One live session on sockets; see the module docstring. Built by run_live; also the
    control socket's handler (`handle`)."""

    def __init__(self, cfg: LiveConfig, instruments: Sequence[Instrument], day_start_ns: int) -> None:
        live = cfg.live
        self.cfg = cfg
        self.instruments = list(instruments)
        self.day_start_ns = day_start_ns
        self.stopped_by: str | None = None
        self.mode = TradingMode.ACTIVE
        self.kill_switch = False
        self.session: LiveSession | None = None
        self.records: RecordsThread | None = None
        self.journal = None
        self.control: ControlServer | None = None
        self.fast: Any = None  # the C++ loop (lockstep._bindings.live_loop.LiveLoop), once open
        self._deadline: int | None = None  # monotonic ns: the end of --duration
        self._early: list[tuple[int, bytes, int]] = []  # OUCH read while logging in
        self.receiver = MoldReceiver(MoldReceiverConfig(
            session=live.session, heartbeat_timeout_ns=live.feed_timeout_ns,
            give_up_ns=live.gap_timeout_ns))
        self.counts = {"gaps_abandoned": 0, "feed_timeouts": 0, "unanswered_warnings": 0,
                       "snapshots": 0, "snapshot_failures": 0}
        # Books a gap made invalid wait for a snapshot (live.snapshot): the one being read, and
        # when to ask again after one failed (monotonic ns).
        self._snapshot_wanted = False
        self._snapshot: SnapshotFetch | None = None
        self._snapshot_retry_at = 0
        self.metrics: MetricsEndpoint | None = None  # live.metrics, once the session is open
        self._unanswered_seen = False  # orders were unanswered at the last look
        self._sockets: list[Any] = []
        self.feed = self._own(UdpSocket(str(live.feed), batch=_FEED_BATCH, slot_bytes=_SLOT_BYTES,
                                        receive_buffer=_FEED_RECEIVE_BUFFER))
        # Requests go out from a socket of their own, which the answers come back to: a socket
        # bound to a multicast group cannot take unicast replies.
        host = local_host_towards(live.retransmit.host)
        self.retransmit = self._own(UdpSocket(f"udp://{host}:0", batch=_FEED_BATCH,
                                              slot_bytes=_SLOT_BYTES))
        self.client = OrderEntryClient(
            str(live.order_entry),
            SoupClientConfig(live.username, live.password.reveal(), session=live.session,
                             first_sequence=0,  # what came before this session is not ours
                             heartbeat_interval_ns=live.heartbeat_interval_ns,
                             server_timeout_ns=live.session_timeout_ns),
            backoff_initial_s=live.reconnect_backoff_ns / 1e9,
            backoff_max_s=live.reconnect_backoff_max_ns / 1e9, decode=False, clock=time.time_ns)
        # Order entry as the session was last told (logged in, and after how many logins).
        self._order_entry_up = True
        self._logins = 0

    def _own(self, sock: UdpSocket) -> UdpSocket:
        self._sockets.append(sock)
        return sock

    # ---------------------------------------------------------------- starting

    def login(self) -> None:
        """Connects order entry and waits for the login (see the module docstring)."""
        live = self.cfg.live
        self.client.start()
        end = time.monotonic_ns() + live.session_timeout_ns
        while not self.client.logged_in:
            self._early += self.client.poll(0.01)
            state = self.client.state
            if state is SoupClientState.REJECTED:
                reason = self.client.reject_reason
                raise LoginRejected(f"order entry {live.order_entry}: the venue rejected the login of "
                                    f"{live.username!r}: "
                                    f"{reason.label.replace('_', ' ') if reason else 'no reason given'}")
            if state in _FINAL:
                raise LockstepError(f"order entry {live.order_entry}: the session ended during the login")
            if time.monotonic_ns() >= end:
                raise LockstepError(f"order entry {live.order_entry}: not logged in within "
                                    f"{live.session_timeout_ns / 1e9:g} s (live.session_timeout)")
            if self.client.fileno() < 0:
                time.sleep(0.01)

    def open_session(self, data: str | None) -> None:
        """The control socket (first: one it cannot serve stops the node before anything is
        written), the session folder, the records and the journaled session."""
        cfg = self.cfg
        self.control = ControlServer(self, control_endpoint(cfg.live.control, data, cfg.name),
                                     on_stop=self.request_stop)
        if cfg.live.cpu >= 0:
            keep_off_cpu(cfg.live.cpu)  # the endpoint's, the journal's and the records' threads, started next
        if cfg.live.metrics is not None:  # like the control socket: before anything is written
            try:
                self.metrics = MetricsEndpoint(cfg.live.metrics)
            except OSError as e:
                raise LockstepError(f"live.metrics {cfg.live.metrics.host}:{cfg.live.metrics.port}: "
                                    f"cannot serve: {e.strerror or e}") from None
            log.info("metrics at %s", self.metrics.url)
        config_text = dump_toml(cfg.to_dict())
        folder = new_session_dir(cfg.name, config_text, data=data)
        self.records = RecordsThread(RecordsWriter(
            folder, self.instruments, flush_interval_ns=cfg.live.flush_interval_ns,
            sample_interval_ns=cfg.output.sample_interval, title=f"{cfg.name} live",
            config_text=config_text))
        terms = LiveTerms(self.day_start_ns, tuple(venue_instruments(self.instruments)),
                          token_prefix=token_prefix(time.time_ns()),
                          flush_interval_ns=cfg.live.flush_interval_ns)
        self.session, self.journal = journaled_session(
            cfg.backtest, self.instruments, terms, folder.join("journal").path,
            version=__version__, records=self.records)
        self._open_loop()
        self._publish_metrics()
        self._logins = self.client.counts["logins"]
        for _, payload, stamp in self._early:
            self._input_ouch(payload, stamp)
        self._early.clear()
        self._order_entry_state()

    # ---------------------------------------------------------------- the loop

    def _open_loop(self) -> None:
        live = self.cfg.live
        held = self.receiver.config.hold_packets * self.receiver.config.hold_slot_bytes
        self.fast = _live_loop.LiveLoop(
            self.session.core, self.receiver, self.feed, self.retransmit, self.journal.native,
            str(live.retransmit), tick_ns=TICK_NS, wait_ms=_WAIT_MS, busy_poll=live.busy_poll,
            batch=_FEED_BATCH, slot_bytes=_SLOT_BYTES, held_bytes=held)
        self.fast.set_control(self.control.fileno())
        self.fast.set_order_session(self.client.session)

    def run(self, duration_s: float | None) -> None:
        """Trades until a stop (see the module docstring)."""
        if self.cfg.live.cpu >= 0:
            pin_to_cpu(self.cfg.live.cpu)
        self._deadline = None if duration_s is None else time.monotonic_ns() + int(duration_s * 1e9)
        switch = sys.getswitchinterval()
        sys.setswitchinterval(min(switch, _GIL_SWITCH_S))
        try:
            with self.control.signals():
                while self.stopped_by is None:
                    self._idle(self._turn())
                    if self._deadline is not None and time.monotonic_ns() >= self._deadline:
                        self.stopped_by = "duration"
                    elif self.client.state in _FINAL:
                        self.stopped_by = f"order entry {self.client.state.label}"
                self._stop()
        finally:
            sys.setswitchinterval(switch)

    def request_stop(self, why: str) -> None:
        if self.stopped_by is None:
            self.stopped_by = why

    @property
    def _last_input(self) -> int:
        """The last input's receive stamp (the C++ loop keeps it: a tick is due TICK_NS after)."""
        return self.fast.last_input if self.fast is not None else 0

    @_last_input.setter
    def _last_input(self, stamp: int) -> None:
        if self.fast is not None:
            self.fast.note_input(stamp)

    def _turn(self) -> LoopExit:
        """One run of the C++ loop, then what it returned for: its outputs to the session, the
        bytes it left to the client, its notices, the order-entry client's turn."""
        client = self.client
        self.fast.set_order_entry(client.fileno(), client.counts["connects"],
                                  client.logged_in and not client.write_pending)
        why = LoopExit(self.fast.run(self._budget_ns(), _RUN_TURNS))
        self.session.absorb(self.fast)
        self.session.core.raise_if_interrupted()
        framed, unsent = self.fast.take_unsent()
        if framed:
            client.send_framed(framed)
        self._send(split_outbound(unsent))
        self._notices(self.fast.take_notices())
        if why is LoopExit.JOURNAL_FAILED:
            self.journal.check()
        elif why is LoopExit.SOCKET_ERROR:
            call, errno = self.fast.socket_error()
            raise SocketError(f"feed {self.cfg.live.feed}: {call} failed", errno=errno)
        if why in (LoopExit.ORDER_ENTRY, LoopExit.TIME) or not client.logged_in:
            self._read_orders()
        return why

    def _budget_ns(self) -> int:
        """How long the loop may run: every _SERVICE_NS while order entry is not logged in;
        until the client has something due (a heartbeat, a silent server given up) while it has
        bytes of its own waiting (the loop keeps the session's clock otherwise); until the
        duration ends; and at most RUN_BUDGET_NS or half the flush interval."""
        client = self.client
        budget = min(RUN_BUDGET_NS, self.cfg.live.flush_interval_ns // 2)
        if not client.logged_in:
            budget = _SERVICE_NS
        elif client.write_pending:
            soup = client.session
            budget = min(budget, min(soup.heartbeat_due_ns, soup.timeout_due_ns) - time.time_ns())
        if self._deadline is not None:
            budget = min(budget, self._deadline - time.monotonic_ns())
        return max(budget, 0)

    def _read_orders(self) -> int:
        received = self.client.poll(0)
        for _, payload, stamp in received:
            self._input_ouch(payload, stamp)
        self._order_entry_state()
        return len(received)

    def _order_entry_state(self) -> None:
        """Tells the session when order entry was lost or is logged in again (a journaled
        input: what the core decides from it replays). A drop and a new login between two
        looks are a down and an up. The answers read before the look are applied first, so a
        re-login's replayed answers reach the core before it reconciles."""
        up = self.client.logged_in
        logins = self.client.counts["logins"]
        if self._order_entry_up and (not up or logins != self._logins):
            log.warning("order entry %s: session lost; new orders are denied until it is back",
                        self.cfg.live.order_entry)
            self._order_entry_up = False
            self._send(self.session.on_order_entry(False, self._control_stamp()))
        if up and not self._order_entry_up:
            self._order_entry_up = True
            self._logins = logins
            sent = self.session.on_order_entry(True, self._control_stamp())
            log.info("order entry %s: logged in again; %d messages sent again to reconcile",
                     self.cfg.live.order_entry, len(sent))
            self._send(sent)

    def _idle(self, why: LoopExit) -> None:
        """Between runs of the loop: control commands (and signals' requests); a failure of the
        records' thread raised here; orders the venue has not answered in time reported."""
        if why in (LoopExit.CONTROL, LoopExit.TIME):
            self.control.poll(0)
        self.records.check()
        self._look_for_unanswered()
        self._snapshot_turn()
        self._publish_metrics()

    def _publish_metrics(self) -> None:
        """A reading for the Prometheus endpoint, taken here, on the node's thread, between runs
        of the loop (lockstep.live.metrics)."""
        if self.metrics is None:
            return
        ctx = self.session.ctx
        c = self.session.engine.counters()
        pnl = {self.instruments[i].symbol: (ctx.realized(i), ctx.unrealized(i), ctx.fees(i))
               for i in ctx.traded}
        self.metrics.publish(reading(
            self.status(), {"intents": c["intents"], "denials": c["denied"], "orders": c["orders"],
                            "fills": c["fills"]}, pnl, time.monotonic_ns()))
    def _snapshot_turn(self) -> None:
        """Books invalid and a snapshot server configured: a snapshot is read off this thread;
        once read it is a journaled input (every book rebuilt and valid, then continued with
        the feed the core held since the gap). Only when what it held does not reach back to
        the snapshot does the receiver go back to the sequence it was taken before, asking for
        what the books had since again. One that fails is asked again live.snapshot_timeout
        later."""
        live = self.cfg.live
        if live.snapshot is None or not self._snapshot_wanted:
            return
        fetch = self._snapshot
        if fetch is None:
            if time.monotonic_ns() >= self._snapshot_retry_at:
                self._snapshot = SnapshotFetch(live.snapshot, live.username, live.password.reveal(),
                                               live.snapshot_timeout_ns, session=live.session,
                                               on_done=self.control.wake)
                self._snapshot.start()
            return
        if not fetch.done():
            return
        self._snapshot = None
        try:
            blocks, next_sequence = fetch.result()
        except SnapshotError as e:
            self.counts["snapshot_failures"] += 1
            self._snapshot_retry_at = time.monotonic_ns() + live.snapshot_timeout_ns
            log.warning("%s; asking again in %.1f s", e, live.snapshot_timeout_ns / 1e9)
            return
        stamp = self._control_stamp()
        self._send(self.session.on_snapshot(blocks, next_sequence, stamp))
        # The core continued the snapshot with the feed it held since the gap, or, when that
        # did not reach back to the snapshot, takes the feed from the snapshot's number again.
        again = self.receiver.rewind(self.session.core.next_sequence, stamp)
        self._snapshot_wanted = False
        self.counts["snapshots"] += 1
        log.info("feed: books rebuilt from a snapshot of %d bytes taken before message %d%s",
                 len(blocks), next_sequence,
                 "; the messages since are asked for again" if again else "")

    def _unanswered(self) -> tuple[int, float | None]:
        """Orders with a request the venue has not answered for `live.answer_timeout`, and how
        long the oldest has waited (s). Report only: the wall clock read here never reaches
        the core."""
        if self.session is None:
            return 0, None
        now = time.time_ns()
        count, oldest = self.session.core.unanswered(now - self.cfg.live.answer_timeout_ns)
        return count, None if oldest is None else round((now - oldest) / 1e9, 3)

    def _look_for_unanswered(self) -> None:
        count, oldest_s = self._unanswered()
        if count and not self._unanswered_seen:
            log.warning("order entry %s: %d orders without the venue's answer for over %.1f s "
                        "(oldest %.1f s); OUCH has no status request: `lockstep live ctl kill` "
                        "cancels every open order", self.cfg.live.order_entry, count,
                        self.cfg.live.answer_timeout_ns / 1e9, oldest_s)
            self.counts["unanswered_warnings"] += 1
        elif not count and self._unanswered_seen:
            log.info("order entry %s: every order has its answer again", self.cfg.live.order_entry)
        self._unanswered_seen = count > 0

    def _notices(self, notices: list[tuple[int, int, int, int]]) -> None:
        """What the receiver decided (the loop has applied a gap given up as a feed gap)."""
        for k, first, count, _ in notices:
            kind = MoldNoticeKind(k)
            if kind is MoldNoticeKind.GAP_ABANDONED:
                self.counts["gaps_abandoned"] += 1
                log.warning("feed: messages %d..%d not retransmitted within %.3f s: books invalid%s",
                            first, first + count - 1, self.cfg.live.gap_timeout_ns / 1e9,
                            "" if self.cfg.live.snapshot is None else
                            f" until a snapshot from {self.cfg.live.snapshot}")
                self._snapshot_wanted = True
            elif kind is MoldNoticeKind.HEARTBEAT_TIMEOUT:
                self.counts["feed_timeouts"] += 1
                log.warning("feed %s: nothing received for %.1f s", self.cfg.live.feed, count / 1e9)
            elif kind is MoldNoticeKind.SESSION_CHANGED:  # the loop told the core (books invalid)
                log.warning("feed %s: the venue's session changed: books invalid", self.cfg.live.feed)
            elif kind in (MoldNoticeKind.END_OF_SESSION, MoldNoticeKind.FEED_RESUMED,
                          MoldNoticeKind.SESSION_STARTED):
                log.info("feed %s: %s", self.cfg.live.feed, kind.label)

    # ---------------------------------------------------------------- session inputs

    def _input_ouch(self, payload: bytes, stamp: int) -> None:
        self._last_input = max(self._last_input, stamp)
        self._send(self.session.on_ouch(payload, stamp))

    def _send(self, messages: Iterable[bytes]) -> None:
        for message in messages:
            self.client.send(message)

    # ---------------------------------------------------------------- control

    def handle(self, command: str) -> Mapping[str, Any]:
        """A control command (lockstep.live.control), applied to the session now."""
        if command != "status":
            if self.session.failure is not None:
                raise ControlError(f"trading stopped after a failure ({self.session.failure['reason']}); "
                                   "only status and a stop are left")
            stamp = self._control_stamp()
            if command == "kill":
                self._send(self.session.on_kill(True, stamp))
                self.kill_switch = True
                self._set_mode(TradingMode.HALTED, stamp)
            elif command == "halt":
                self._set_mode(TradingMode.HALTED, stamp)
            elif command == "reduce_only":
                self._set_mode(TradingMode.REDUCE_ONLY, stamp)
            elif command == "resume":
                if self.kill_switch:
                    self._send(self.session.on_kill(False, stamp))
                    self.kill_switch = False
                self._set_mode(TradingMode.ACTIVE, stamp)
            else:
                raise ControlError(f"unknown command {command!r}")
        return self.status()

    def _control_stamp(self) -> int:
        self._last_input = max(self._last_input, time.time_ns())
        return self._last_input

    def _set_mode(self, mode: TradingMode, stamp: int) -> None:
        self._send(self.session.on_mode(mode, stamp))
        self.mode = mode

    def open_orders(self) -> int:
        ctx = self.session.ctx
        return sum(ctx.open_orders(i) for i in ctx.traded)

    def status(self) -> dict[str, Any]:
        ctx = self.session.ctx
        unanswered, oldest_s = self._unanswered()
        return {"mode": self.mode.label, "kill_switch": self.kill_switch,
                "order_entry": "up" if self._order_entry_up else "down",
                "failure": None if self.session.failure is None else self.session.failure["reason"],
                "open_orders": self.open_orders(),
                "unanswered_orders": unanswered, "oldest_unanswered_s": oldest_s,
                "position": {self.instruments[i].symbol: float(ctx.size(i, ctx.position(i)))
                             for i in ctx.traded},
                "counters": self.counters(),
                "metrics": None if self.metrics is None else self.metrics.url}

    def counters(self) -> dict[str, Any]:
        feed = self.receiver.counters
        orders = self.client.summary()
        fast = self.fast.counters if self.fast is not None else {}
        return {"feed_messages": feed["messages"], "gaps": feed["gaps"],
                "gaps_recovered": feed["gaps_recovered"], **self.counts,
                "feed_datagrams": fast.get("datagrams", 0),
                "retransmission_requests": fast.get("requests", 0),
                "requests_not_sent": fast.get("requests_not_sent", 0),
                "ticks": fast.get("ticks", 0),
                "reconnects": max(0, orders["connects"] - 1),
                "orders_not_sent": orders["not_sent"],
                "orders_sent_direct": fast.get("sent_direct", 0),
                "orders_handed_to_client": fast.get("handed_back", 0),
                "partial_writes": fast.get("partial_writes", 0),
                "venue_messages_in_loop": fast.get("order_messages", 0),
                "kernel_drops": self.feed.stats["kernel_drops"],
                "tick_to_trade": self.fast.tick_to_trade if self.fast is not None else {},
                "read_to_trade": self.fast.read_to_trade if self.fast is not None else {},
                "feed_lag": self.fast.feed_lag if self.fast is not None else {},
                "turn_time": self.fast.turn_time if self.fast is not None else {},
                "away_time": self.fast.away_time if self.fast is not None else {},
                "journal_waits": self.fast.journal_waits if self.fast is not None else 0}

    # ---------------------------------------------------------------- stopping

    def _stop(self) -> None:
        """Cancels what is open (if configured), waits for the answers, ends trading."""
        live = self.cfg.live
        self.open_at_stop = self.open_orders()
        # With order entry down the cancels wait for the re-login within the same timeout.
        # After a strategy failure the halt's cancels are out already: only their answers are
        # waited for.
        if live.cancel_on_shutdown and self.open_at_stop and self.client.state not in _FINAL:
            if self.session.failure is None:
                self._send(self.session.on_kill(True, self._control_stamp()))
                self.kill_switch = True
            end = time.monotonic_ns() + live.cancel_timeout_ns
            while self.open_orders() and time.monotonic_ns() < end and self.client.state not in _FINAL:
                self._turn()
            self.open_at_stop = self.open_orders()
            if self.open_at_stop:
                log.warning("stop: %d orders still open after %.3f s (live.cancel_timeout)",
                            self.open_at_stop, live.cancel_timeout_ns / 1e9)
        self._send(self.session.finish(self._control_stamp()))
        self.client.poll(0)  # hands the last messages to the kernel

    def summary(self, seconds: float) -> dict[str, Any]:
        """Ends the session (its end record) and returns the node's summary."""
        result = self.session.close()
        return {**result.to_dict(), **self.counters(), "open_orders_at_stop": self.open_at_stop,
                "stopped_by": self.stopped_by, "seconds": round(seconds, 3),
                "messages_per_s": round(self.receiver.counters["messages"] / seconds) if seconds else 0}

    def close(self) -> None:
        """Logs out and closes every socket (safe to call more than once)."""
        self.client.close(logout=True)
        if self.metrics is not None:
            self.metrics.close()
            self.metrics = None
        if self.control is not None:
            self.control.close()
            self.control = None
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()


def run_live(config: LiveConfig, *, data: str | None = None,
             duration_s: float | None = None) -> dict[str, Any]:
    """Runs a live node as `config` says until `duration_s` (None: until a stop signal or the
    venue ending the session); returns its summary: `digest`, `journal`, `orders`, `fills`,
    `intents`, `denials`, `complete`, the session's `counters`, the node's counters
    (`feed_messages`, `gaps`, `retransmission_requests`, `reconnects`, ...), `stopped_by`, and
    what the records add (`run_dir`, the PnL metrics). LoginRejected when the venue refuses the
    login."""
    ds = Dataset.open(config.dataset, data=data)
    node = LiveNode(config, ds.instruments, day_start(_first_event_ns(ds)))
    try:
        node.login()
        started = time.monotonic()
        try:
            node.open_session(data)
            node.run(duration_s)
            summary = node.summary(time.monotonic() - started)
        except BaseException:
            # The folder is left as a killed process leaves it (recover_session closes it).
            if node.records is not None:
                node.records.abort()
            if node.journal is not None:
                node.journal.close()
            raise
        node.journal.close()
        return node.records.close(summary, complete=summary["complete"])
    finally:
        node.close()


__all__ = ["TICK_NS", "LiveNode", "run_live", "token_prefix"]
