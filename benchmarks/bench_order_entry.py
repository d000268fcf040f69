"""SoupBinTCP round trip on loopback through the loopback venue's order entry: an OUCH 4.2 Enter
Order written by a client, read, decoded and matched by the venue, and its Accepted read back and
decoded by the client; p50 and p99 of that time, per order.

The client and the venue run in one thread (the client writes, then polls the venue and reads
until the Accepted is there), so the figure is the venue's processing plus two trips through the
kernel's loopback TCP, without a context switch between processes. Orders are immediate-or-cancel
buys below the best ask (nothing executes: Accepted, then Canceled, which is read untimed), so the
matcher's book of our orders stays empty. LOCKSTEP_BENCH_SCALE scales the order count (20,000).
"""
from __future__ import annotations

import time

import numpy as np
from conftest import scaled

from lockstep.core.books import L2Book
from lockstep.data.dataset import Instrument
from lockstep.events import Side
from lockstep.net import TcpConnection
from lockstep.protocols import ouch42 as ouch
from lockstep.protocols import soupbintcp as soup
from lockstep.venue.loopback.order_entry import Market, MatchingOrderHandler, OrderEntryServer
from lockstep.venue.loopback.sessions import Account
from lockstep.venue.matching import L2Matcher

TRIES = 1_000_000  # bound on every wait loop


def _venue() -> OrderEntryServer:
    instrument = Instrument("BENCH", "loopback", price_increment="0.01", size_increment="1")
    book = L2Book()
    book.set(Side.ASK, 10_000, 1_000)
    book.set(Side.BID, 9_999, 1_000)
    handler = MatchingOrderHandler([Market(instrument, book, L2Matcher())], clock_ns=lambda: 0)
    return OrderEntryServer("tcp://127.0.0.1:0", [Account("BENCH", "bench")], handler)


class _Client:
    def __init__(self, server: OrderEntryServer) -> None:
        self.server = server
        self.conn = TcpConnection(server.address)
        self.framer = soup.Framer()
        self.buffer = bytearray(1 << 16)
        self.packets: list[bytes] = []
        self._wait(self.conn.finish_connect)

    def _wait(self, ready) -> None:
        for _ in range(TRIES):
            if ready():
                return
            self.server.poll(0)
        raise RuntimeError("the venue did not answer")

    def next_packet(self) -> bytes:
        def ready() -> bool:
            if not self.packets:
                n = self.conn.read_into(self.buffer)
                if n:
                    self.packets.extend(self.framer.feed(bytes(self.buffer[:n])))
            return bool(self.packets)
        self._wait(ready)
        return self.packets.pop(0)


def test_soupbintcp_round_trip_enter_to_accepted(benchmark):
    server = _venue()
    client = _Client(server)
    client.conn.write(soup.encode(soup.LoginRequest("BENCH", "bench", "", 0)))
    assert isinstance(soup.decode(client.next_packet()), soup.LoginAccepted)
    count = scaled(20_000)
    orders = [soup.encode(soup.UnsequencedData(ouch.encode(ouch.EnterOrder(
        f"B{i}", "B", 100, "BENCH", 990_000, 0, "FIRM", "Y", "A", "N", 0, "N", "R"))))
        for i in range(count)]
    latencies = np.empty(count, np.int64)

    def run() -> None:
        for i, packet in enumerate(orders):
            start = time.perf_counter_ns()
            client.conn.write(packet)
            accepted = ouch.decode_outbound(soup.decode(client.next_packet()).payload)
            latencies[i] = time.perf_counter_ns() - start
            assert isinstance(accepted, ouch.Accepted)
            client.next_packet()  # the IOC's Canceled

    try:
        benchmark.pedantic(run, rounds=1, iterations=1)
    finally:
        client.conn.close()
        server.close()
    p50, p99 = (float(np.percentile(latencies, q)) / 1000 for q in (50, 99))
    benchmark.extra_info.update({"orders": count, "p50_us": p50, "p99_us": p99})
    print(f"\nSoupBinTCP round trip (enter -> accepted), {count:,} orders: "
          f"p50 {p50:.1f} us, p99 {p99:.1f} us")
