from __future__ import annotations

import dataclasses
import pickle
import sys
from decimal import Decimal
from pathlib import Path
from typing import Literal

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

import lockstep.errors
from lockstep.backtest.config import (
    BacktestConfig,
    LimitSettings,
    load_config,
    params_to_dict,
    parse_decimal,
    validate_params,
)
from lockstep.checks import format_duration, parse_duration
from lockstep.core.queue import QueueConfig
from lockstep.core.risk import RiskConfig, RiskLimits
from lockstep.data.dataset import Instrument
from lockstep.enums import LatencyKind, QueueModel, TradingMode
from lockstep.errors import ConfigError, ConfigSyntaxError, LockstepError
from lockstep.tomlconfig import OVERRIDE_SOURCE, dump_toml
from lockstep.venue.matching import LatencyConfig

MINIMAL = {"dataset": "synthetic-l2", "strategy": {"path": "pkg.mod:Strat"}}

FULL = """
name = "mm-1"
dataset = "synthetic-l2"
instruments = ["BTCUSDT", "ETHUSDT"]
seed = 7

[strategy]
path = "lockstep.examples.market_maker:MarketMaker"

[strategy.params]
spread_ticks = 2
size = "0.01"
nested = {a = [1, 2], b = "x"}

[risk]
max_order_qty = 0.5
max_order_notional = 100000
max_position = "2.5"
max_open_orders = 4
price_band_bps = 50
max_open_orders_total = 8
rate_per_second = 20
burst = 5
mode = "reduce_only"
kill_switch = false

[risk.instruments.BTCUSDT]
max_position = "0.75"

[risk.instruments."ETH.PERP"]
max_open_orders = 1

[queue]
rate_per_second = 10
burst = 2
max_in_flight_per_instrument = 3
capacity = 128

[venue]
queue_model = "probabilistic"
queue_power = 1.5
maker_fee_bps = -0.25
taker_fee_bps = "4.5"

[venue.latency]
model = "lognormal"
entry = "250us"
response = 1500
sigma = 0.3

[output]
sample_interval = "100ms"
report = false
"""


def cfg(**changes):
    data = {**MINIMAL, **changes}
    return BacktestConfig.from_dict(data, base_dir=".")


def error(data, base_dir=".") -> ConfigError:
    with pytest.raises(ConfigError) as e:
        BacktestConfig.from_dict(data, base_dir=base_dir)
    assert isinstance(e.value, LockstepError)
    return e.value


def write(tmp_path: Path, text: str, name: str = "bt.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# --------------------------------------------------------------------------------------------
# Defaults and a full file


def test_defaults():
    c = cfg()
    assert c.name == "backtest" and c.dataset == "synthetic-l2" and c.instruments == () and c.seed == 0
    assert c.strategy.path == "pkg.mod:Strat" and dict(c.strategy.params) == {}
    assert c.risk.mode == "active" and c.risk.kill_switch is False
    assert c.risk.limits_for("ANY") == LimitSettings()
    assert c.queue.capacity == 4096 and c.queue.rate_per_second == 0
    assert c.venue.queue_model == "conservative" and c.venue.queue_power == 2.0
    assert c.venue.maker_fee_bps == 0 and c.venue.taker_fee_ppm == 0
    lat = c.venue.latency
    assert (lat.model, lat.entry, lat.response, lat.sigma, lat.feed_multiplier) == (
        "constant", 1_000_000, 1_000_000, 0.0, 1.0)
    assert c.output.sample_interval == 1_000_000_000 and c.output.report is True


def test_full_file(tmp_path):
    c = load_config(write(tmp_path, FULL))
    assert c.name == "mm-1" and c.seed == 7 and c.instruments == ("BTCUSDT", "ETHUSDT")
    assert c.strategy.params["spread_ticks"] == 2 and c.strategy.params["nested"]["a"] == (1, 2)
    r = c.risk
    assert r.max_order_qty == Decimal("0.5") and r.max_order_notional == Decimal(100000)
    assert r.max_position == Decimal("2.5") and r.mode == "reduce_only" and r.burst == 5
    btc = r.limits_for("BTCUSDT")
    assert btc.max_position == Decimal("0.75")
    assert (btc.max_order_qty, btc.max_open_orders, btc.price_band_bps) == (Decimal("0.5"), 4, 50)
    assert r.limits_for("ETH.PERP").max_open_orders == 1
    assert r.limits_for("ETH.PERP").max_position == Decimal("2.5")
    assert r.limits_for("SOLUSDT") == r.default_limits
    assert c.queue == dataclasses.replace(c.queue, rate_per_second=10, burst=2,
                                          max_in_flight_per_instrument=3, capacity=128)
    assert c.venue.maker_fee_bps == Decimal("-0.25") and c.venue.maker_fee_ppm == -25
    assert c.venue.taker_fee_ppm == 450 and c.venue.queue_power == 1.5
    assert c.venue.latency.entry == 250_000 and c.venue.latency.response == 1500
    assert c.venue.latency.sigma == 0.3
    assert c.output.sample_interval == 100_000_000 and c.output.report is False


def test_name_defaults_to_the_file_stem(tmp_path):
    p = write(tmp_path, 'dataset = "d"\n[strategy]\npath = "m:C"\n', name="my run.toml")
    assert load_config(p).name == "my-run"


def test_configs_are_frozen_hashable_and_pickle(tmp_path):
    c = load_config(write(tmp_path, FULL))
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.seed = 1
    with pytest.raises(TypeError):
        c.strategy.params["x"] = 1
    assert hash(c) == hash(load_config(write(tmp_path, FULL)))
    assert pickle.loads(pickle.dumps(c)) == c


# --------------------------------------------------------------------------------------------
# Round trip


def test_round_trip_through_dump_toml(tmp_path):
    c = load_config(write(tmp_path, FULL))
    text = dump_toml(c.to_dict())
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    again = load_config(write(run_dir, text, "config.toml"))
    assert again == c
    assert dump_toml(again.to_dict()) == text


def test_round_trip_of_defaults_and_resolved_paths(tmp_path):
    (tmp_path / "strat.py").write_text("class S: pass\n")
    (tmp_path / "ds").mkdir()
    c = BacktestConfig.from_dict(
        {"dataset": "ds", "strategy": {"path": "strat.py:S"}}, base_dir=tmp_path)
    d = c.to_dict()
    # every default is written out
    assert d["venue"]["latency"] == {"model": "constant", "entry": "1ms", "response": "1ms",
                                     "sigma": 0.0, "feed_multiplier": 1.0}
    assert d["output"] == {"sample_interval": "1s", "report": True}
    assert d["risk"]["max_position"] == "0" and d["risk"]["instruments"] == {}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    again = BacktestConfig.from_dict(tomllib.loads(dump_toml(d)), base_dir=elsewhere)
    assert again == c


def test_dump_toml_values():
    data = {
        "s": 'quote " back \\ nl \n tab \t bell \x07 é',
        "i": -3, "f": 1e-7, "big": 1e300, "inf": float("inf"), "b": True,
        "l": [1, "a", [2.5], {"k": 1}], "empty": [],
        "t": {"x": 1, "deep": {"y": "z"}, "odd key": {"q": 1}},
        "e": {},
    }
    text = dump_toml(data)
    assert tomllib.loads(text) == data
    with pytest.raises(TypeError):
        dump_toml({"d": Decimal(1)})
    with pytest.raises(TypeError):
        dump_toml({"n": None})


# --------------------------------------------------------------------------------------------
# Errors name the key


@pytest.mark.parametrize("data,key", [
    ({"datset": "x"}, "datset"),
    ({"strategy": {"path": "m:C", "parms": {}}}, "strategy.parms"),
    ({"risk": {"max_positon": 1}}, "risk.max_positon"),
    ({"risk": {"instruments": {"BTC": {"max_pos": 1}}}}, "risk.instruments.BTC.max_pos"),
    ({"risk": {"instruments": {"BTC": {"mode": "halted"}}}}, "risk.instruments.BTC.mode"),
    ({"queue": {"rate": 1}}, "queue.rate"),
    ({"venue": {"fee": 1}}, "venue.fee"),
    ({"venue": {"latency": {"mean": "1ms"}}}, "venue.latency.mean"),
    ({"output": {"plot": True}}, "output.plot"),
])
def test_unknown_keys_at_every_level(data, key):
    e = error({**MINIMAL, **data})
    assert e.key == key and "unknown key" in str(e) and key in str(e)


@pytest.mark.parametrize("data,key,words", [
    ({"dataset": None}, "dataset", "must be a string"),
    ({"dataset": 3}, "dataset", "not int"),
    ({"dataset": " "}, "dataset", "empty"),
    ({"name": "a b"}, "name", "letters"),
    ({"name": 1}, "name", "not int"),
    ({"instruments": "BTCUSDT"}, "instruments", "list"),
    ({"instruments": ["A", 1]}, "instruments.1", "non-empty string"),
    ({"instruments": ["A", "A"]}, "instruments.1", "duplicate"),
    ({"seed": -1}, "seed", "outside"),
    ({"seed": 1.0}, "seed", "not float"),
    ({"seed": True}, "seed", "not bool"),
    ({"strategy": "m:C"}, "strategy", "table"),
    ({"strategy": {}}, "strategy.path", "missing"),
    ({"strategy": {"path": "noclass"}}, "strategy.path", "module:Class"),
    ({"strategy": {"path": "m:"}}, "strategy.path", "module:Class"),
    ({"strategy": {"path": "bad module:C"}}, "strategy.path", "not a module"),
    ({"strategy": {"path": "missing.py:C"}}, "strategy.path", "no such file"),
    ({"strategy": {"path": "m:C", "params": [1]}}, "strategy.params", "table"),
    ({"risk": []}, "risk", "table"),
    ({"risk": {"max_order_qty": True}}, "risk.max_order_qty", "not bool"),
    ({"risk": {"max_order_qty": "abc"}}, "risk.max_order_qty", "decimal"),
    ({"risk": {"max_order_qty": "nan"}}, "risk.max_order_qty", "finite"),
    ({"risk": {"max_position": -1}}, "risk.max_position", ">= 0"),
    ({"risk": {"max_open_orders": 1.5}}, "risk.max_open_orders", "int"),
    ({"risk": {"price_band_bps": 2**32}}, "risk.price_band_bps", "outside"),
    ({"risk": {"rate_per_second": 5}}, "risk.burst", ">= 1"),
    ({"risk": {"mode": "paused"}}, "risk.mode", "active, reduce_only, halted"),
    ({"risk": {"kill_switch": 0}}, "risk.kill_switch", "true or false"),
    ({"risk": {"instruments": []}}, "risk.instruments", "table"),
    ({"risk": {"instruments": {"BTC": 1}}}, "risk.instruments.BTC", "table"),
    ({"risk": {"instruments": {"B.C": {"max_position": "x"}}}},
     'risk.instruments."B.C".max_position', "decimal"),
    ({"queue": {"capacity": 0}}, "queue.capacity", "outside"),
    ({"queue": {"burst": "1"}}, "queue.burst", "not str"),
    ({"queue": {"rate_per_second": 1}}, "queue.burst", ">= 1"),
    ({"venue": {"queue_model": "fifo"}}, "venue.queue_model", "conservative, probabilistic"),
    ({"venue": {"queue_power": 0}}, "venue.queue_power", "> 0"),
    ({"venue": {"queue_power": "2"}}, "venue.queue_power", "number"),
    ({"venue": {"maker_fee_bps": "0.001"}}, "venue.maker_fee_bps", "ppm"),
    ({"venue": {"taker_fee_bps": 0.125}}, "venue.taker_fee_bps", "ppm"),
    ({"venue": {"taker_fee_bps": 20000}}, "venue.taker_fee_bps", "outside"),
    ({"venue": {"latency": 5}}, "venue.latency", "table"),
    ({"venue": {"latency": {"model": "gamma"}}}, "venue.latency.model", "constant, lognormal, feed"),
    ({"venue": {"latency": {"entry": [1]}}}, "venue.latency.entry",
     'must be a duration like "1ms" or an int of ns, not list'),
    ({"venue": {"latency": {"entry": 1.5}}}, "venue.latency.entry", "not float"),
    ({"venue": {"latency": {"response": "1 minute"}}}, "venue.latency.response", "duration"),
    ({"venue": {"latency": {"response": "0.5ns"}}}, "venue.latency.response", "whole number"),
    ({"venue": {"latency": {"entry": -1}}}, "venue.latency.entry", "outside"),
    ({"venue": {"latency": {"model": "lognormal", "sigma": -0.1}}}, "venue.latency.sigma", ">= 0"),
    ({"venue": {"latency": {"sigma": 0.2}}}, "venue.latency.sigma", "lognormal"),
    ({"venue": {"latency": {"feed_multiplier": 2}}}, "venue.latency.feed_multiplier", "feed"),
    ({"venue": {"latency": {"model": "feed", "feed_multiplier": float("inf")}}},
     "venue.latency.feed_multiplier", "finite"),
    ({"output": {"sample_interval": 0}}, "output.sample_interval", "> 0"),
    ({"output": {"sample_interval": "0s"}}, "output.sample_interval", "> 0"),
    ({"output": {"report": "yes"}}, "output.report", "true or false"),
])
def test_bad_values_name_the_key(data, key, words):
    e = error({**MINIMAL, **data})
    assert e.key == key, str(e)
    assert f"{key}: " in str(e) and words in str(e), str(e)


@pytest.mark.parametrize("missing", ["dataset", "strategy"])
def test_required_keys(missing):
    data = dict(MINIMAL)
    del data[missing]
    assert error(data).key == missing


def test_root_must_be_a_table():
    assert error([1]).key == "<root>"


def test_error_messages_lead_with_the_file(tmp_path):
    p = write(tmp_path, 'dataset = "d"\n[strategy]\npath = "m:C"\n[venue.latency]\nentry = [1]\n')
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(e.value) == (f'{p}: venue.latency.entry: must be a duration like "1ms" or an '
                            "int of ns, not list")
    assert e.value.source == str(p)
    e2 = pickle.loads(pickle.dumps(e.value))
    assert (e2.key, e2.reason, e2.source, str(e2)) == (e.value.key, e.value.reason, str(p), str(e.value))


def test_toml_syntax_error_names_file_line_and_column(tmp_path):
    p = write(tmp_path, 'dataset = "d"\n\nseed = = 3\n')
    with pytest.raises(ConfigSyntaxError) as e:
        load_config(p)
    assert (e.value.line, e.value.column) == (3, 8)
    assert str(e.value).startswith(f"{p}: line 3, column 8: invalid TOML")
    assert isinstance(e.value, ConfigError)
    e2 = pickle.loads(pickle.dumps(e.value))
    assert (e2.line, e2.column, str(e2)) == (3, 8, str(e.value))


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path / "nope.toml")
    assert "nope.toml" in str(e.value) and "cannot read" in str(e.value)


def test_risk_module_shares_the_error_type():
    # one ConfigError for every config: the risk and queue configs raise the ground floor's class
    with pytest.raises(lockstep.errors.ConfigError) as e:
        RiskConfig.from_dict({"instruments": {"1": {"x": 1}}})
    assert type(e.value) is lockstep.errors.ConfigError is ConfigError
    assert str(e.value) == "risk config: instruments.1.x: unknown key"
    with pytest.raises(lockstep.errors.ConfigError):
        QueueConfig.from_dict({"capacity": 0})


def test_settings_to_core_give_the_core_configs_in_core_units():
    c = BacktestConfig.from_dict({
        **MINIMAL,
        "risk": {"max_order_qty": "0.5", "max_order_notional": "1000.5", "max_position": 2,
                 "mode": "reduce_only", "rate_per_second": 3, "burst": 2,
                 "instruments": {"ETH": {"max_position": "0.25"}}},
        "queue": {"capacity": 8},
        "venue": {"queue_model": "probabilistic", "maker_fee_bps": "-0.25", "taker_fee_bps": "1.5",
                  "latency": {"model": "lognormal", "entry": "250us", "sigma": 0.5}},
    }, base_dir=".")
    btc = Instrument("BTC", "x", "0.1", "0.001")
    eth = Instrument("ETH", "x", "0.01", "0.01")
    risk = c.risk.to_core([btc, eth], [1, 0])
    assert (risk.mode, risk.rate_per_second, risk.burst) == (TradingMode.REDUCE_ONLY, 3, 2)
    assert set(risk.instruments) == {0, 1}
    # 0.5 BTC = 500 lots of 0.001; 1000.5 quote / (0.1 x 0.001) = 10_005_000 tick-lots
    assert risk.instruments[0] == RiskLimits(500, 10_005_000, 2_000, 0, 0)
    # ETH: its own max_position, the rest from the defaults; 1000.5 / 0.0001, rounded down
    assert risk.instruments[1] == RiskLimits(50, 10_005_000, 25, 0, 0)
    queue = c.queue.to_core(instruments=2)
    assert (queue.capacity, queue.instruments) == (8, 2)
    venue = c.venue.to_core(seed=7)
    assert (venue.queue_model, venue.maker_ppm, venue.taker_ppm) == (QueueModel.PROBABILISTIC, -25, 150)
    assert venue.latency == LatencyConfig(LatencyKind.LOGNORMAL, 250_000, 1_000_000, 0.5, 1.0, 7)


def test_core_bounds_beyond_the_schema_name_the_config_key():
    c = BacktestConfig.from_dict({**MINIMAL, "queue": {"capacity": 2**32 - 1}}, base_dir=".")
    with pytest.raises(ConfigError) as e:
        c.queue.to_core(instruments=1)
    assert (e.value.source, e.value.key) == ("config", "queue.capacity")


def test_risk_limits_that_are_not_whole_lots_name_the_key():
    c = BacktestConfig.from_dict({**MINIMAL, "risk": {"max_order_qty": "0.0005"}}, base_dir=".")
    with pytest.raises(ConfigError) as e:
        c.risk.to_core([Instrument("BTC", "x", "0.1", "0.001")], [0])
    assert e.value.key == "risk.max_order_qty"


# --------------------------------------------------------------------------------------------
# Values


# One grammar for configs and the command line (lockstep.checks.parse_duration): a unit-less
# number is ns and m / h are minutes / hours, as the command line always read them.
@pytest.mark.parametrize("text,ns", [
    (0, 0), (1500, 1500), ("1ns", 1), ("250us", 250_000), ("250µs", 250_000), ("1ms", 1_000_000),
    ("1.5ms", 1_500_000), ("2s", 2_000_000_000), (" 3 s ", 3_000_000_000), ("0.000001s", 1_000),
    ("1_000us", 1_000_000), ("9223372036854775807ns", 2**63 - 1), ("1500", 1500),
    ("2m", 120_000_000_000), ("1.5h", 5_400_000_000_000),
])
def test_parse_duration(text, ns):
    assert parse_duration("k", text) == ns


@pytest.mark.parametrize("value", ["ms", "-1ms", "1e3ns", "1.5ns", "1.5", "1 d", "--1s", 1.0, True,
                                   None, "9223372036854775808ns", 2**63, -1])
def test_parse_duration_rejects(value):
    with pytest.raises(ConfigError) as e:
        parse_duration("a.b", value)
    assert e.value.key == "a.b"


def test_parse_duration_negative_only_when_allowed():
    assert parse_duration("k", "-1.5s", allow_negative=True) == -1_500_000_000
    assert parse_duration("k", -(2**63), allow_negative=True) == -(2**63)
    with pytest.raises(ConfigError):
        parse_duration("k", -(2**63) - 1, allow_negative=True)
    with pytest.raises(ConfigError):
        parse_duration("k", "0s", positive=True)


def test_format_duration_round_trips():
    for ns in (0, 1, 999, 1000, 1500, 1_000_000, 1_500_000, 3_000_000_000, 2**63 - 1):
        assert parse_duration("k", format_duration(ns)) == ns
    assert format_duration(1_000_000) == "1ms" and format_duration(0) == "0ns"


@pytest.mark.parametrize("value,expected", [
    (1, Decimal(1)), (0.1, Decimal("0.1")), ("0.1", Decimal("0.1")), ("-2.50", Decimal("-2.50")),
    (1e-8, Decimal("1E-8")), (Decimal("3.50"), Decimal("3.5")),
])
def test_parse_decimal(value, expected):
    assert parse_decimal("k", value) == expected


@pytest.mark.parametrize("value", [True, None, [], "x", "inf", float("nan"), "1.2.3"])
def test_parse_decimal_rejects(value):
    with pytest.raises(ConfigError) as e:
        parse_decimal("a.b", value)
    assert e.value.key == "a.b"


def test_fee_whole_ppm():
    c = cfg(venue={"maker_fee_bps": "-0.01", "taker_fee_bps": 2})
    assert c.venue.maker_fee_ppm == -1 and c.venue.taker_fee_ppm == 200


# --------------------------------------------------------------------------------------------
# Overrides


def test_overrides_typed_strings_and_nested(tmp_path):
    p = write(tmp_path, FULL)
    c = load_config(p, [
        "risk.max_position=0.5",
        'venue.queue_model="conservative"',
        "dataset=/tmp/x",
        "venue.latency.entry=2ms",  # not TOML: a plain string, then a duration
        "venue.latency.response = 77",
        "seed=11",
        "output.report=true",
        "instruments=[\"BTCUSDT\"]",
        "risk.instruments.BTCUSDT.max_open_orders=9",
        'risk.instruments."SOL.P".max_position="0.1"',
        "strategy.params.spread_ticks=5",
        "strategy.params.new_param=abc",
        "strategy.params.nested.b=y",
        "queue={capacity = 16}",
    ])
    assert c.risk.max_position == Decimal("0.5") and c.venue.queue_model == "conservative"
    assert c.dataset == "/tmp/x" and c.venue.latency.entry == 2_000_000
    assert c.venue.latency.response == 77 and c.seed == 11 and c.output.report is True
    assert c.instruments == ("BTCUSDT",)
    assert c.risk.limits_for("BTCUSDT").max_open_orders == 9
    assert c.risk.limits_for("BTCUSDT").max_position == Decimal("0.75")
    assert c.risk.limits_for("SOL.P").max_position == Decimal("0.1")
    assert c.strategy.params["spread_ticks"] == 5 and c.strategy.params["new_param"] == "abc"
    assert c.strategy.params["nested"]["b"] == "y" and c.strategy.params["nested"]["a"] == (1, 2)
    # a whole table replaces the file's table: the rest falls back to defaults
    assert c.queue.capacity == 16 and c.queue.rate_per_second == 0
    # the later of two overrides wins; the file itself is untouched
    assert load_config(p, ["seed=1", "seed=2"]).seed == 2
    assert load_config(p).seed == 7


@pytest.mark.parametrize("item,key", [
    ("risk.max_positon=1", "risk.max_positon"),
    ("nope=1", "nope"),
    ("venue.latncy.entry=1", "venue.latncy.entry"),
    ("venue.latency.entry.x=1", "venue.latency.entry.x"),
    ("strategy.class=X", "strategy.class"),
])
def test_override_of_unknown_key(tmp_path, item, key):
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, FULL), [item])
    assert e.value.key == key and e.value.source == OVERRIDE_SOURCE and key in str(e.value)


def test_override_into_a_value_that_is_not_a_table(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, FULL), ["strategy.params.spread_ticks.x=1"])
    assert "strategy.params.spread_ticks is not a table" in str(e.value)


def test_override_values_are_then_validated(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, FULL), ["seed=abc"])
    assert e.value.key == "seed" and "not str" in str(e.value)
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, FULL), ["risk.instruments.BTCUSDT.max_pos=1"])
    assert e.value.key == "risk.instruments.BTCUSDT.max_pos"


@pytest.mark.parametrize("item", ["noequals", "bad key=1", "=1", "a..b=1"])
def test_malformed_overrides(tmp_path, item):
    with pytest.raises(ConfigSyntaxError) as e:
        load_config(write(tmp_path, FULL), [item])
    assert e.value.source == OVERRIDE_SOURCE


def test_override_value_cannot_smuggle_keys(tmp_path):
    c = load_config(write(tmp_path, FULL), ["dataset=x\nseed = 3"])
    assert c.dataset == "x\nseed = 3" and c.seed == 7


# --------------------------------------------------------------------------------------------
# Paths


def test_relative_dataset_resolved_only_if_it_exists(tmp_path):
    (tmp_path / "local-ds").mkdir()
    p = write(tmp_path, 'dataset = "local-ds"\n[strategy]\npath = "m:C"\n')
    assert load_config(p).dataset == str((tmp_path / "local-ds").resolve())
    p = write(tmp_path, 'dataset = "synthetic-l2"\n[strategy]\npath = "m:C"\n')
    assert load_config(p).dataset == "synthetic-l2"
    p = write(tmp_path, 'dataset = "s3://bucket/ds"\n[strategy]\npath = "m:C"\n')
    assert load_config(p).dataset == "s3://bucket/ds"


def test_strategy_file_resolved_against_the_config_dir(tmp_path, monkeypatch):
    (tmp_path / "strats").mkdir()
    (tmp_path / "strats" / "mine.py").write_text("class Mine: pass\n")
    p = write(tmp_path, 'dataset = "d"\n[strategy]\npath = "strats/mine.py:Mine"\n')
    monkeypatch.chdir("/")
    c = load_config(p)
    file = (tmp_path / "strats" / "mine.py").resolve()
    assert c.strategy.path == f"{file}:Mine"
    assert c.strategy.is_file and c.strategy.target == (str(file), "Mine")
    assert not cfg().strategy.is_file and cfg().strategy.target == ("pkg.mod", "Strat")


# --------------------------------------------------------------------------------------------
# Strategy params


@dataclasses.dataclass(frozen=True)
class Params:
    spread_ticks: int
    size: Decimal = Decimal("0.01")
    alpha: float = 0.5
    enabled: bool = True
    label: str = "mm"
    side: Literal["both", "bid", "ask"] = "both"
    cap: int | None = None
    levels: tuple[int, ...] = (1, 2)

    def __post_init__(self):
        if self.spread_ticks < 1:
            raise ValueError("spread_ticks must be >= 1")


def test_validate_params_builds_the_dataclass():
    p = validate_params(Params, {"spread_ticks": 3, "size": 0.02, "alpha": 1, "side": "bid",
                                 "cap": 4, "levels": [3, 4]})
    assert p == Params(3, Decimal("0.02"), 1.0, True, "mm", "bid", 4, (3, 4))
    assert isinstance(p.alpha, float)
    assert params_to_dict(p) == {"spread_ticks": 3, "size": "0.02", "alpha": 1.0, "enabled": True,
                                 "label": "mm", "side": "bid", "cap": 4, "levels": [3, 4]}
    assert "cap" not in params_to_dict(Params(1))


def test_validate_params_accepts_the_frozen_config_table(tmp_path):
    c = load_config(write(tmp_path, 'dataset = "d"\n[strategy]\npath = "m:C"\n'
                                    '[strategy.params]\nspread_ticks = 2\nlevels = [5]\n'))
    p = validate_params(Params, c.strategy.params)
    assert p.spread_ticks == 2 and p.levels == (5,)
    resolved = c.with_params(p)
    assert resolved.strategy.params["size"] == "0.01"
    assert validate_params(Params, resolved.strategy.params) == p
    again = BacktestConfig.from_dict(tomllib.loads(dump_toml(resolved.to_dict())), base_dir=tmp_path)
    assert again == resolved


@pytest.mark.parametrize("data,key,words", [
    ({}, "strategy.params.spread_ticks", "missing"),
    ({"spread_ticks": 1, "spred": 1}, "strategy.params.spred", "unknown key"),
    ({"spread_ticks": 1.0}, "strategy.params.spread_ticks", "int"),
    ({"spread_ticks": True}, "strategy.params.spread_ticks", "int"),
    ({"spread_ticks": 1, "size": "x"}, "strategy.params.size", "decimal"),
    ({"spread_ticks": 1, "alpha": "1"}, "strategy.params.alpha", "number"),
    ({"spread_ticks": 1, "enabled": 1}, "strategy.params.enabled", "true or false"),
    ({"spread_ticks": 1, "label": 5}, "strategy.params.label", "string"),
    ({"spread_ticks": 1, "side": "up"}, "strategy.params.side", "not one of"),
    ({"spread_ticks": 1, "cap": "4"}, "strategy.params.cap", "int"),
    ({"spread_ticks": 1, "levels": 3}, "strategy.params.levels", "list"),
    ({"spread_ticks": 1, "levels": [1, "2"]}, "strategy.params.levels.1", "int"),
    ({"spread_ticks": 0}, "strategy.params", "spread_ticks must be >= 1"),
])
def test_validate_params_errors(data, key, words):
    with pytest.raises(ConfigError) as e:
        validate_params(Params, data)
    assert e.value.key == key and words in str(e.value), str(e.value)


def test_validate_params_prefix_and_no_params():
    with pytest.raises(ConfigError) as e:
        validate_params(Params, {}, prefix="sweep.params")
    assert e.value.key == "sweep.params.spread_ticks"
    assert validate_params(None, {}) is None
    with pytest.raises(ConfigError) as e:
        validate_params(None, {"x": 1}, strategy="m:Plain")
    assert e.value.key == "strategy.params" and "strategy m:Plain takes no params" in str(e.value)
    with pytest.raises(TypeError):
        validate_params(dict, {})


def test_venue_order_rules_per_symbol(tmp_path):
    base = {"dataset": "ds", "strategy": {"path": "m:S"}}
    c = BacktestConfig.from_dict({**base, "venue": {"order_rules": {"BTCUSDT": {
        "tick_size": "0.10", "lot_size": 0.001, "min_notional": 0}}}}, base_dir=tmp_path)
    inst = Instrument("BTCUSDT", "V", "0.01", "0.0001", tick_size="0.01", min_qty="0.001", min_notional="5")
    # the config's rules over the dataset's; 0 removes one, an unnamed rule stays as it was
    assert c.venue.instrument(inst) == Instrument("BTCUSDT", "V", "0.01", "0.0001", tick_size="0.1",
                                                  lot_size="0.001", min_qty="0.001")
    other = Instrument("ETHUSDT", "V", "0.01", "0.0001", tick_size="0.01")
    assert c.venue.instrument(other) is other
    # the resolved config reloads to an equal one
    assert BacktestConfig.from_dict(tomllib.loads(dump_toml(c.to_dict())), base_dir=tmp_path) == c
    for rules, key in (({"tick": "1"}, "venue.order_rules.BTCUSDT.tick"),
                       ({"lot_size": "-1"}, "venue.order_rules.BTCUSDT.lot_size"),
                       ({"min_qty": "x"}, "venue.order_rules.BTCUSDT.min_qty")):
        with pytest.raises(ConfigError) as err:
            BacktestConfig.from_dict({**base, "venue": {"order_rules": {"BTCUSDT": rules}}}, base_dir=tmp_path)
        assert err.value.key == key
