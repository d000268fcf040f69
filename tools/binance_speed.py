#!/usr/bin/env python3
"""Binance import speed on a real capture (default: the USD-M file in ../shared/data).

Measures, in MB/s of uncompressed text on one core:
  decode  - the C++ decoder alone, text already decompressed in memory, output columns warm
            (repeated; best and median);
  gunzip  - zlib streaming decompression alone, as the importer does it;
  import  - the whole public path, decode_binance(path) with gunzip, sniff, batches
            (repeated; the first run also pays first-touch page faults of fresh columns).

Usage: tools/binance_speed.py [--file PATH] [--repeat N]
"""
from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared" / "data" / "binance" / "usdm" / "btcusdt_20240808.gz"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--file", type=Path, default=DEFAULT)
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args()
    if not args.file.exists():
        print(f"capture not found: {args.file} (see ../shared/data/README.md)", file=sys.stderr)
        return 2

    from lockstep._bindings import binance as _binance
    from lockstep.data.importers import decode_binance
    from lockstep.data.importers.binance import _Buffers, _Input
    from lockstep.enums import Status

    with gzip.open(args.file, "rb") as f:
        text = f.read()
    mb = len(text) / 1e6
    chunk = 1 << 20
    pieces = [text[i:i + chunk] for i in range(0, len(text), chunk)]

    # Configure like the importer would (the run learns market and increments from the data).
    probe = decode_binance(args.file)
    for _ in probe:
        pass
    table = probe.instrument_info
    events = probe.counts["events"]["total"]
    records = probe.counts["records"]
    # Room for every event and record plus the decoder's per-line slack (it writes directly only
    # into room that surely fits a line), as with the importer's default batch.
    bufs = _Buffers._make(max(1 << 20, events + len(text) // 8), max(1 << 20, records + 1))
    for arr in bufs.values():  # first touch here, not in the timed loop
        arr.fill(0)

    def decode_once() -> float:
        dec = _binance.BinanceDecoder()
        for row in table:
            dec.add_instrument(row["symbol"], row["index"], row["price_increment"],
                               row["size_increment"])
        dec.begin_file(0, str(args.file))
        size = nrec = 0
        t = time.perf_counter()
        for p in pieces:
            consumed, size, nrec, status = dec.feed(p, bufs, size, nrec)
            if status != Status.OK:
                raise dec.exception(status)
        size, nrec, status = dec.finish(bufs, size, nrec)
        dt = time.perf_counter() - t
        assert size == events and nrec == records, (size, events, nrec, records)
        return dt

    def gunzip_once() -> float:
        t = time.perf_counter()
        n = sum(len(c) for c in _Input(args.file, 0).chunks())
        dt = time.perf_counter() - t
        assert n == len(text)
        return dt

    def import_once() -> float:
        t = time.perf_counter()
        run = decode_binance(args.file)
        n = 0
        for chunk in run:
            n += chunk.n_events
        dt = time.perf_counter() - t
        assert n == events and run.bytes_read == len(text)
        return dt

    print(f"file: {args.file}")
    print(f"text: {mb:.1f} MB uncompressed, {probe.counts['lines']} lines, {records} records, "
          f"{events} events, "
          f"market {probe.market_type}")
    for name, fn in (("decode", decode_once), ("gunzip", gunzip_once), ("import", import_once)):
        times = [fn() for _ in range(args.repeat)]
        rates = [mb / t for t in times]
        print(f"{name:7s} best {max(rates):7.1f} MB/s   median {statistics.median(rates):7.1f} MB/s"
              f"   first {rates[0]:7.1f} MB/s   ({args.repeat} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
