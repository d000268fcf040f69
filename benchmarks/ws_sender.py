"""The sending end of bench_recorder_websocket.py, in its own process: a WebSocket server (the
websockets library) that streams Binance-shaped bookTicker messages, numbered by their update id
`u` from 1, to the first client that connects, then closes the connection (1000) and prints one
JSON line.

    python benchmarks/ws_sender.py --messages N [--rate PER_SECOND]

Prints {"url": ...} once listening (the benchmark reads it), then {"sent", "seconds"} when done.
Frames are made by the library (its Sans-I/O protocol, `send_text`) and written to the socket a
batch at a time, so that the sender is not what limits the rate; the socket's write buffer is
kept under 4 MiB (TCP flow control: a receiver that falls behind slows the sender, it loses
nothing). `--rate` paces the batches to that many messages per second (0: as fast as it goes);
each message's `E` is its send time in ms.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import time

from websockets.asyncio.server import serve

BATCH = 500
TEMPLATE = ('{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":%d,"s":"BTCUSDT",'
            '"b":"61800.20","B":"2.507","a":"61800.30","A":"2.510","T":%d,"E":%d}}')


async def _stream(ws, messages: int, rate: float, done: asyncio.Future) -> None:
    t0 = time.perf_counter()
    sent = 0
    while sent < messages:
        n = min(BATCH, messages - sent)
        if rate:
            await asyncio.sleep(max(0.0, t0 + sent / rate - time.perf_counter()))
        ms = time.time_ns() // 1_000_000
        for u in range(sent + 1, sent + n + 1):
            ws.protocol.send_text((TEMPLATE % (u, ms, ms)).encode())
        ws.transport.writelines(ws.protocol.data_to_send())
        sent += n
        while ws.transport.get_write_buffer_size() > 4 << 20:
            await asyncio.sleep(0.0005)
        await asyncio.sleep(0)
    seconds = time.perf_counter() - t0
    await ws.close()
    if not done.done():
        done.set_result({"sent": sent, "seconds": seconds})


async def _main(messages: int, rate: float) -> None:
    done: asyncio.Future = asyncio.get_running_loop().create_future()
    async with serve(lambda ws: _stream(ws, messages, rate, done), "127.0.0.1", 0, compression=None) as server:
        print(json.dumps({"url": f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/stream"}), flush=True)
        print(json.dumps(await done), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, required=True)
    parser.add_argument("--rate", type=float, default=0.0)
    args = parser.parse_args()
    asyncio.run(_main(args.messages, args.rate))


if __name__ == "__main__":
    main()
