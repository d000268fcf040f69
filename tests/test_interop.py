"""Interoperability on loopback: our MoldUDP64 receiver session on the loopback venue's feed, a
gap injected by a UDP relay that drops datagrams and filled by a retransmission request to
`venue.retransmit`; and, where Wireshark's tshark is installed, a capture of a venue session
(feed, retransmission, order entry) dissected with Wireshark's MoldUDP64, ITCH, SoupBinTCP and
OUCH dissectors, which must find nothing malformed. Every socket binds port 0; every loop is
bounded in count and time."""
from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from test_order_entry import PASSWORD, enter
from test_venue_feed import SESSION, Running, assert_same_books, venue_config

from lockstep.data.synth import generate
from lockstep.enums import MoldNoticeKind as N
from lockstep.net import UdpSocket
from lockstep.protocols import moldudp64
from lockstep.protocols import ouch42 as ouch
from lockstep.protocols.mold_receiver import MoldReceiver, MoldReceiverConfig
from lockstep.protocols.order_entry import OrderEntryClient
from lockstep.protocols.soup_client import SoupClientConfig
from lockstep.venue.loopback.serve import LoopbackVenue
from lockstep.venue.loopback.trading import OrderEntry

DEADLINE_S = 30.0
BATCH = 256
SLOT = 2048


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return generate(8_000, seed=11, book="l3", instruments=2,
                    data=str(tmp_path_factory.mktemp("interop")))


class Relay:
    """Forwards the venue's feed datagrams to the receiver, dropping (once) those whose first
    sequence number falls in `drop`: an injected gap."""

    def __init__(self, to: str, drop: range) -> None:
        self.inbound = UdpSocket("udp://127.0.0.1:0", batch=BATCH, slot_bytes=SLOT,
                                 receive_buffer=32 << 20)
        self.outbound = UdpSocket("udp://127.0.0.1:0")
        self.to = to
        self.drop = drop
        self.dropped: list[int] = []

    @property
    def address(self) -> str:
        return self.inbound.address

    def pump(self) -> int:
        n = self.inbound.receive()
        for i in range(n):
            datagram = self.inbound.payload(i)
            first = int.from_bytes(datagram[10:18], "big")
            count = int.from_bytes(datagram[18:20], "big")
            if first in self.drop and 0 < count < 0xFFFF and first not in self.dropped:
                self.dropped.append(first)
                continue
            for _ in range(1000):  # bounded: the receiver's socket buffer drains meanwhile
                if self.outbound.send_to(datagram, self.to):
                    break
        return n

    def close(self) -> None:
        self.inbound.close()
        self.outbound.close()


class Receiver:
    """A MoldReceiver on a UdpSocket: whole batches through receive_batch, requests sent to
    the re-request server from the same socket (the replies come back to it)."""

    def __init__(self) -> None:
        self.sock = UdpSocket("udp://127.0.0.1:0", batch=BATCH, slot_bytes=SLOT,
                              receive_buffer=32 << 20)
        self.session = MoldReceiver(MoldReceiverConfig(session=SESSION,
                                                       request_interval_ns=200_000_000,
                                                       give_up_ns=5_000_000_000))
        self.stream = bytearray()
        self.sequences: list[int] = []
        self.notices = []
        self.requests = []
        room = BATCH * SLOT + 1024 * SLOT
        self._out = np.zeros(room, np.uint8)
        self._seq = np.zeros(room // 2, np.uint64)
        self._stamps = np.zeros(room // 2, np.int64)

    @property
    def address(self) -> str:
        return self.sock.address

    def pump(self, retransmit: str) -> None:
        n = self.sock.receive()
        if n:
            written, count = self.session.receive_batch(
                self.sock.data, self.sock.length, self.sock.stamp_ns, n, self._out, self._seq,
                self._stamps)
            self.stream += self._out[:written].tobytes()
            self.sequences += self._seq[:count].tolist()
        now = time.time_ns()  # the clock the receive stamps come from
        self.session.poll(now)
        request = self.session.take_request(now)
        if request is not None:
            self.requests.append(request)
            self.sock.send_to(moldudp64.encode_request(request), retransmit)
        self.notices += self.session.notices()

    def itch_file(self, path: Path) -> Path:
        path.write_bytes(bytes(self.stream))
        return path

    def close(self) -> None:
        self.sock.close()


def _serve(dataset, drop: range, *, trade: bool, before_run=None):
    receiver = Receiver()
    relay = Relay(receiver.address, drop)
    users = [{"username": "ALICE", "password": PASSWORD}]
    venue = LoopbackVenue(venue_config(dataset, relay, users=users, speed=20.0))
    venue.attach(OrderEntry(venue.feed))
    addresses = venue.addresses
    if before_run is not None:
        before_run(addresses, relay, receiver)
    client = OrderEntryClient(addresses["order_entry"], SoupClientConfig("ALICE", PASSWORD))
    stock = venue.feed.instruments[0]["stock"]  # a resting buy at the lowest price there is
    running = Running(venue)
    answers = []
    try:
        client.start()
        entered = False
        end = time.monotonic() + DEADLINE_S
        for _ in range(2_000_000):
            relay.pump()
            receiver.pump(addresses["retransmit"])
            answers += client.poll(0)
            if trade and client.logged_in and not entered:
                entered = client.enter(enter("IO1", shares=10, stock=stock,
                                             price=dataset.instruments[0].price_increment))
            done = receiver.session.ended and not receiver.session.gap_open
            if done and (not trade or len(answers) >= 2) or time.monotonic() > end:
                break
            time.sleep(0.0005)
        client.close()
    finally:
        summary = running.finish()
        relay.close()
        receiver.close()
    return venue, receiver, relay, answers, summary


def test_our_receiver_fills_an_injected_gap_from_the_venues_retransmission(dataset, tmp_path):
    venue, receiver, relay, _, summary = _serve(dataset, range(100, 400), trade=False)
    assert relay.dropped, "the relay dropped nothing: no gap was injected"
    kinds = [n.kind for n in receiver.notices]
    assert N.GAP_DETECTED in kinds and N.GAP_RECOVERED in kinds
    assert N.GAP_ABANDONED not in kinds and N.END_OF_SESSION in kinds
    assert receiver.requests[0].sequence == relay.dropped[0]
    counters = receiver.session.counters
    assert counters["gaps_abandoned"] == 0 and counters["requests"] >= 1
    assert summary["retransmit"]["answered"] >= 1 and summary["retransmit"]["refused"] == 0
    # Every message once, in order, and the books the dataset gives.
    assert receiver.sequences == list(range(1, summary["next_sequence"]))
    assert_same_books(dataset, venue, receiver, tmp_path)


# ------------------------------------------------------------------- Wireshark

def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


class Capture:
    """tshark capturing the loopback interface on the given ports into a pcap file."""

    def __init__(self, path: Path, udp: list[int], tcp: list[int]) -> None:
        tshark = shutil.which("tshark")
        self.path = path
        ports = [f"udp port {p}" for p in udp] + [f"tcp port {p}" for p in tcp]
        self.proc = subprocess.Popen([tshark, "-i", "lo", "-w", str(path), "-f",
                                      " or ".join(ports)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        seen = []
        for _ in range(50):  # tshark says when it captures; bounded by lines
            line = self.proc.stderr.readline()
            seen.append(line)
            if "Capturing on" in line or not line:
                break
        if self.proc.poll() is not None or not any("Capturing on" in s for s in seen):
            self.stop()
            pytest.skip(f"tshark cannot capture here: {''.join(seen).strip()[-200:]}")
        time.sleep(0.3)  # the capture filter is installed just after that line

    def stop(self) -> None:
        if self.proc.poll() is None:
            time.sleep(0.3)  # the last packets reach the capture
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(DEADLINE_S)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="Wireshark's tshark is not installed")
def test_wireshark_dissects_a_venue_session_without_a_malformed_packet(dataset, tmp_path):
    captures = []

    def start_capture(addresses, relay, receiver):
        udp = [_port(relay.address), _port(receiver.address), _port(addresses["retransmit"])]
        captures.append((Capture(tmp_path / "session.pcap", udp, [_port(addresses["order_entry"])]),
                         udp, _port(addresses["order_entry"])))

    try:
        _, receiver, relay, answers, _ = _serve(dataset, range(100, 200), trade=True,
                                                before_run=start_capture)
    finally:
        for capture, *_ in captures:
            capture.stop()
    capture, udp, tcp = captures[0]
    assert relay.dropped and any(isinstance(m, ouch.Accepted | ouch.Rejected)
                                 for _, m, _ in answers)
    decode_as = [arg for port in udp for arg in ("-d", f"udp.port=={port},moldudp64")]
    decode_as += ["-d", f"tcp.port=={tcp},soupbintcp"]

    decode_as += ["-d", "moldudp64.payload,nasdaq_itch"]

    def tshark(display_filter: str, *fields: str) -> list[str]:
        out = subprocess.run([shutil.which("tshark"), "-r", str(capture.path), "-n",
                              *decode_as, "-Y", display_filter, "-T", "fields", *fields],
                             capture_output=True, text=True, timeout=120, check=True).stdout
        return out.splitlines()

    def count(display_filter: str) -> int:
        return len(tshark(display_filter, "-e", "frame.number"))

    assert count("moldudp64") > 50
    assert count("moldudp64 && moldudp64.count == 0xffff") >= 1  # end of session
    assert count("moldudp64.request && udp.dstport == %d" % udp[2]) >= 1  # our requests
    assert count("soupbintcp.packet_type == 'L'") >= 1
    assert count("ouch") >= 3  # start of day, our Enter Order, the venue's answer
    assert count("_ws.malformed || _ws.expert.severity >= error") == 0
    # Wireshark's own MoldUDP64 framing gives every message the receiver delivered the same
    # sequence number and ITCH type (its ITCH dissector reads 5.0's type bytes, not all of
    # 5.0's fields: those show as warnings, never as errors).
    ours = _delivered_types(receiver)
    seen = {}
    for line in tshark("moldudp64.msgblock && udp.dstport == %d" % udp[1], "-e", "moldudp64.msgseq",
                       "-e", "nasdaq-itch.message_type", "-E", "occurrence=a"):
        sequences, types = line.split("\t")
        for s, t in zip(sequences.split(","), types.split(",")):
            seen[int(s)] = t.strip("'")
    assert seen and set(seen) <= set(ours)
    assert {s: ours[s] for s in seen} == seen
    assert len(seen) >= 0.99 * len(ours)


def _delivered_types(receiver: Receiver) -> dict[int, str]:
    out, pos = {}, 0
    stream = bytes(receiver.stream)
    for sequence in receiver.sequences:
        n = int.from_bytes(stream[pos:pos + 2], "big")
        out[sequence] = chr(stream[pos + 2])
        pos += 2 + n
    return out
