"""A strategy that only does what a script says, when it says: the backtest side of
tests/test_venue_oracle.py, which sends the same orders to the loopback venue.

The script (JSON, `Params.script`) is {"actions": [...], "ids": PATH}; each action is
{"at_ns": core time, "kind": "enter" | "cancel" | "replace", "token": ..., and for an enter
"side" (1 bid, 2 ask), "price" (ticks), "qty" (lots), "tif" (a TimeInForce value); for a
replace "new_token", "price", "qty"}. Actions run from timers, in script order at equal times.
At the end the client order id of each token goes to the `ids` file as JSON."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from lockstep.core.strategy import Strategy


@dataclasses.dataclass(frozen=True)
class Params:
    script: str


class Scripted(Strategy):
    Params = Params

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        script = json.loads(Path(params.script).read_text())
        self.actions = script["actions"]
        self.ids_path = Path(script["ids"])
        self.ids: dict[str, int] = {}

    def on_start(self, ctx) -> None:
        for k, action in enumerate(self.actions):
            ctx.set_timer(action["at_ns"], k)

    def on_timer(self, ctx, timer_id: int) -> None:
        a = self.actions[timer_id]
        if a["kind"] == "enter":
            self.ids[a["token"]] = ctx.submit_limit(0, a["side"], a["price"], a["qty"], a["tif"])
        elif a["kind"] == "cancel":
            ctx.cancel(self.ids[a["token"]])
        else:
            order_id = self.ids[a["token"]]
            ctx.replace(order_id, a["price"], a["qty"])
            self.ids[a["new_token"]] = order_id

    def on_stop(self, ctx) -> None:
        self.ids_path.write_text(json.dumps(self.ids))
