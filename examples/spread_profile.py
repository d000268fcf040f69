"""Generate a synthetic market, replay it, and profile the quoted spread from the top-of-book file.

    python examples/spread_profile.py [--events N] [--data ROOT]

Shows the embedding API: lockstep.data.synth.generate -> lockstep.backtest.replay.replay -> Parquet you can read
with any Arrow tool.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from lockstep.backtest.replay import replay
from lockstep.data.synth import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--data", default=None)
    args = parser.parse_args()

    dataset = generate(args.events, seed=42, data=args.data)
    with tempfile.TemporaryDirectory() as tmp:
        tob_path = Path(tmp) / "tob.parquet"
        result = replay(dataset, top_of_book=str(tob_path))
        tob = pq.read_table(tob_path, columns=["bid_price", "ask_price"]).drop_null()
    spread = (tob["ask_price"].to_numpy() - tob["bid_price"].to_numpy())
    print(f"{result.events:,} events at {result.events_per_second:,.0f}/s, digest {result.digest[:16]}")
    for q in (0.5, 0.9, 0.99):
        print(f"spread p{int(q * 100):<3} {np.quantile(spread, q):.4f}")


if __name__ == "__main__":
    main()
