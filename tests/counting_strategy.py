"""A strategy that only watches: the live tests' look at what the strategy was told (loaded by
path in their configs; kept out of test_live.py, whose hypothesis tests would be nested if the
config loaded that module again while one runs)."""
from __future__ import annotations

from lockstep.core.strategy import Context, Strategy


class CountsBookCalls(Strategy):
    """Keeps how many on_book calls each book made and whether the book was valid then, and
    every trade it was told of."""

    def setup(self, ctx: Context) -> None:
        self.calls: list[tuple[int, bool]] = []
        self.touches: list[tuple] = []  # the book's touch at each call
        self.trades: list[tuple] = []
        for i in ctx.traded:
            ctx.subscribe(i, book=True, trades=True)

    def on_trade(self, ctx: Context, instrument: int, price: int, qty: int, aggressor: int) -> None:
        self.trades.append((instrument, price, qty, aggressor))

    def on_book(self, ctx: Context, instrument: int) -> None:
        self.calls.append((instrument, ctx.book_valid(instrument)))
        self.touches.append(ctx.touch(instrument))
