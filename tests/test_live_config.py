"""The live config: a backtest config with a [live] table; every bad key named before anything
connects; the password never shown."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from lockstep.backtest.config import load_config
from lockstep.errors import ConfigError
from lockstep.live.config import LiveConfig, load_live_config
from lockstep.logins import Secret
from lockstep.tomlconfig import dump_toml

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "Pw9xQz7!k"  # a value found nowhere else, so a leak is visible
ENV = {"MM_PASSWORD": PASSWORD}
LIVE = """
[live]
feed = "udp://239.1.2.3:31000"
retransmit = "udp://127.0.0.1:31001"
order_entry = "tcp://127.0.0.1:31002"
username = "demo"
password_env = "MM_PASSWORD"
"""


@pytest.fixture
def config(tmp_path) -> Path:
    """examples/market_maker.toml with a [live] table."""
    path = tmp_path / "mm_live.toml"
    path.write_text((REPO / "examples" / "market_maker.toml").read_text() + LIVE)
    return path


def load(path: Path, *overrides: str, environ=ENV) -> LiveConfig:
    return load_live_config(path, overrides, environ=environ)


def error(path: Path, *overrides: str, environ=ENV) -> ConfigError:
    with pytest.raises(ConfigError) as e:
        load(path, *overrides, environ=environ)
    return e.value


def test_a_backtest_config_with_a_live_table_is_a_live_config(config, tmp_path):
    cfg = load(config)
    backtest_only = tmp_path / "market_maker.toml"
    backtest_only.write_text((REPO / "examples" / "market_maker.toml").read_text())
    # Same strategy, params, risk, queue and output as the backtest reads them.
    assert cfg.backtest == load_config(backtest_only)
    assert cfg.name == "market_maker" and cfg.strategy.path == "lockstep.examples.market_maker:MarketMaker"
    assert str(cfg.limits_for("ANY").max_position) == "0.02" and cfg.risk.max_open_orders == 16
    live = cfg.live
    assert str(live.feed) == "udp://239.1.2.3:31000" and live.feed.is_multicast
    assert str(live.retransmit) == "udp://127.0.0.1:31001"
    assert str(live.order_entry) == "tcp://127.0.0.1:31002"
    assert live.username == "demo" and live.password.reveal() == PASSWORD
    assert live.password_env == "MM_PASSWORD"
    assert live.flush_interval_ns == 1_000_000_000 and live.cancel_on_shutdown
    assert live.cpu == -1 and not live.busy_poll and live.control == ""
    assert live.snapshot is None and live.snapshot_timeout_ns == 5_000_000_000


def test_overrides_and_durations(config):
    cfg = load(config, 'live.flush_interval="250ms"', "live.cancel_on_shutdown=false",
               'live.reconnect_backoff="50ms"', 'live.reconnect_backoff_max="2s"', "live.cpu=1",
               "live.busy_poll=true", 'live.session="ABC123"', "risk.max_open_orders=4")
    live = cfg.live
    assert live.flush_interval_ns == 250_000_000 and not live.cancel_on_shutdown
    assert (live.reconnect_backoff_ns, live.reconnect_backoff_max_ns) == (50_000_000, 2_000_000_000)
    assert live.cpu == 1 and live.busy_poll and live.session == "ABC123"
    assert cfg.risk.max_open_orders == 4


@pytest.mark.parametrize(("override", "key"), [
    ("live.bogus=1", "live.bogus"),
    ('live.feed="tcp://127.0.0.1:31000"', "live.feed"),
    ('live.feed="udp://127.0.0.1:0"', "live.feed"),
    ('live.feed="udp://nowhere:1"', "live.feed"),
    ('live.retransmit="udp://239.1.2.3:1"', "live.retransmit"),
    ('live.order_entry="udp://127.0.0.1:1"', "live.order_entry"),
    ('live.username="toolongname"', "live.username"),
    ("live.username=5", "live.username"),
    ('live.session="with space"', "live.session"),
    ('live.flush_interval="0s"', "live.flush_interval"),
    ('live.gap_timeout="soon"', "live.gap_timeout"),
    ('live.reconnect_backoff_max="10ms"', "live.reconnect_backoff_max"),
    ('live.cancel_on_shutdown="yes"', "live.cancel_on_shutdown"),
    ("live.cpu=-2", "live.cpu"),
    ('live.control="tcp://10.0.0.1:9000"', "live.control"),
    ('live.control="udp://127.0.0.1:9000"', "live.control"),
    ("risk.max_open_orders=-1", "risk.max_open_orders"),
    ('live.snapshot="udp://127.0.0.1:9003"', "live.snapshot"),
    ('live.snapshot="tcp://127.0.0.1:0"', "live.snapshot"),
    ("live.snapshot=9003", "live.snapshot"),
    ('live.snapshot_timeout="0s"', "live.snapshot_timeout"),
    ('live.metrics="udp://127.0.0.1:9100"', "live.metrics"),
    ('live.metrics="127.0.0.1"', "live.metrics"),
    ("live.metrics=9100", "live.metrics"),
])
def test_every_bad_key_is_named(config, override, key):
    e = error(config, override)
    assert e.key == key, e
    assert e.source in (str(config), "override") and "\n" not in str(e)


def test_missing_keys_are_named(config, tmp_path):
    base = (REPO / "examples" / "market_maker.toml").read_text()
    no_live = tmp_path / "no_live.toml"
    no_live.write_text(base)
    assert error(no_live).key == "live"
    for key in ("feed", "retransmit", "order_entry", "username"):
        path = tmp_path / f"no_{key}.toml"
        path.write_text(base + "\n".join(line for line in LIVE.splitlines() if not line.startswith(key)))
        e = error(path)
        assert (e.key, e.reason, e.source) == (f"live.{key}", "missing", str(path))


def test_exactly_one_password_source(config, tmp_path):
    e = error(config, environ={})
    assert e.key == "live.password_env" and "MM_PASSWORD is not set" in e.reason
    two = error(config, 'live.password="other1"')
    assert two.key == "live.password" and "live.password_env" in two.reason
    none = tmp_path / "none.toml"
    none.write_text(config.read_text().replace('password_env = "MM_PASSWORD"\n', ""))
    assert error(none).key == "live.password"
    inline = tmp_path / "inline.toml"
    inline.write_text(config.read_text().replace('password_env = "MM_PASSWORD"', f'password = "{PASSWORD}"'))
    assert load(inline).live.password.reveal() == PASSWORD


def test_a_password_file_must_be_private_and_its_newline_is_not_the_password(config, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text(PASSWORD + "\n")
    os.chmod(secret, 0o644)
    relative = tmp_path / "file.toml"
    relative.write_text(config.read_text().replace('password_env = "MM_PASSWORD"', 'password_file = "secret.txt"'))
    e = error(relative)
    assert e.key == "live.password_file" and "chmod 600" in e.reason
    os.chmod(secret, 0o600)
    live = load(relative).live
    assert live.password.reveal() == PASSWORD and live.password_file == str(secret)
    missing = error(relative, 'live.password_file="nope.txt"')
    assert missing.key == "live.password_file" and "nope.txt" in missing.reason


def test_the_password_is_never_shown(config, tmp_path, caplog):
    cfg = load(config)
    logging.getLogger("test").warning("config %s %r", cfg, cfg)
    for text in (repr(cfg), str(cfg), f"{cfg}", f"{cfg.live.password}", repr(cfg.live),
                 dump_toml(cfg.to_dict()), caplog.text):
        assert PASSWORD not in text
        assert "Secret(***)" in text or "password_env" in text or "config" in text
    # Bad passwords: the error says what is wrong, never what the password is.
    for bad in ("has space1", "x" * 11, PASSWORD + "é"):
        e = error(config, environ={"MM_PASSWORD": bad})
        assert e.key == "live.password_env" and bad not in str(e)
        assert "MM_PASSWORD" in e.reason and "printable ASCII" in e.reason
    e = error(config, "live.password=" + '"' + PASSWORD + ' long and spaced"', "live.password_env=1")
    assert PASSWORD not in str(e)
    inline = tmp_path / "inline.toml"
    inline.write_text(config.read_text().replace('password_env = "MM_PASSWORD"', f'password = "{PASSWORD}"'))
    resolved = dump_toml(load(inline).to_dict())
    assert PASSWORD not in resolved and "password" not in resolved


def test_the_resolved_config_reloads_to_an_equal_config(config, tmp_path):
    cfg = load(config, 'live.control="ctl.sock"', 'live.feed_timeout="2500ms"',
               'live.snapshot="tcp://127.0.0.1:9003"', 'live.snapshot_timeout="2s"',
               'live.metrics="127.0.0.1:0"')
    assert cfg.live.control == str(config.parent / "ctl.sock")
    assert str(cfg.live.snapshot) == "tcp://127.0.0.1:9003"
    assert cfg.live.snapshot_timeout_ns == 2_000_000_000
    assert (cfg.live.metrics.host, cfg.live.metrics.port) == ("127.0.0.1", 0)
    resolved = tmp_path / "resolved.toml"
    resolved.write_text(dump_toml(cfg.to_dict()))
    assert load(resolved).backtest == cfg.backtest.__class__.from_dict(
        cfg.backtest.to_dict(), base_dir=tmp_path, default_name="x")
    assert load(resolved).live == cfg.live


def test_strategy_params_are_checked_before_anything_connects(config):
    cfg = load(config, "strategy.params.size=0.001")
    checked = cfg.with_checked_strategy()
    assert checked.live == cfg.live
    assert "touch_only" in checked.strategy.params  # defaults filled in, as a backtest writes them
    bad = load(config, "strategy.params.sizee=1")
    with pytest.raises(ConfigError) as e:
        bad.with_checked_strategy()
    assert e.value.key == "strategy.params.sizee"


def test_secret_compares_by_value_and_hides_it():
    assert Secret("a") == Secret("a") != Secret("b")
    assert "a" not in repr(Secret("a")) + str(Secret("a")) + format(Secret("a"), "")
