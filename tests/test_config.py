"""config.toml loads into frozen, typed settings; bad input names the key, the value and what is allowed."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import tomllib
import typing
from decimal import Decimal
from pathlib import Path

import pytest

from guard.cli import main
from guard.config import Config, config_from_dict, load_config
from guard.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_load_config_shipped_file_is_valid_and_matches_defaults() -> None:
    """The shipped config.toml is valid and spells out exactly the defaults."""
    shipped = load_config(ROOT / "config.toml")
    assert shipped.hash() == Config().hash()
    assert shipped.exchange.id == "sim"
    assert shipped.exchange.broker == "paper"


def test_shipped_config_spells_out_every_setting() -> None:
    """config.toml is the commented reference: every setting of every section appears in it."""
    shipped = tomllib.loads((ROOT / "config.toml").read_text())
    hints = typing.get_type_hints(Config)
    missing = [
        f"{section.name}.{setting.name}"
        for section in dataclasses.fields(Config)
        if section.name != "source"
        for setting in dataclasses.fields(hints[section.name])
        if setting.name not in shipped.get(section.name, {})
    ]
    assert missing == []


def test_load_config_missing_default_path_gives_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ./config.toml guard runs on its defaults."""
    monkeypatch.chdir(tmp_path)
    assert load_config() == Config()


def test_load_config_missing_explicit_path_is_an_error(tmp_path: Path) -> None:
    """An explicitly named config file that does not exist is refused."""
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("doc", "key", "allowed"),
    [
        ({"risk": {"max_leverage": 50}}, "risk.max_leverage", "must be >= 1 and <= 20"),
        ({"risk": {"max_levrage": 2}}, "risk.max_levrage", "unknown key; allowed: max_leverage"),
        ({"riskk": {}}, "riskk", "unknown section"),
        ({"approval": {"ttl_seconds": "30"}}, "approval.ttl_seconds", "must be a finite number"),
        ({"approval": {"ttl_seconds": 0}}, "approval.ttl_seconds", "must be > 0"),
        ({"risk": {"max_orders_per_minute": 2.5}}, "risk.max_orders_per_minute", "must be a whole number"),
        ({"risk": {"max_order_notional": "lots"}}, "risk.max_order_notional", "must be a number"),
        ({"model": {"novelty_policy": "ignore"}}, "model.novelty_policy", "must be one of confirm, suppress"),
        ({"exchange": {"symbols": []}}, "exchange.symbols", "must not be empty"),
        ({"exchange": {"symbols": ["BTCUSDT"]}}, "exchange.symbols", "ccxt unified symbol"),
        ({"model": {"enabled": "yes"}}, "model.enabled", "must be true or false"),
        ({"api": {"transport": "tcp", "host": "0.0.0.0"}}, "api.host", "must be a loopback address"),
        ({"proposals": {"min_leverage": 3, "max_leverage": 2}}, "proposals.min_leverage", "must be <="),
        ({"risk": 5}, "risk", "must be a table"),
    ],
)
def test_config_from_dict_bad_value_names_key_value_and_allowed(doc: dict, key: str, allowed: str) -> None:
    """Each kind of bad setting is refused with the key, the offending value and what is allowed."""
    with pytest.raises(ConfigError) as err:
        config_from_dict(doc, source="test.toml")
    message = str(err.value)
    assert err.value.key == key
    assert message.startswith(f"test.toml: {key} = ")
    assert allowed in message


def test_config_sections_are_frozen() -> None:
    """Settings cannot be changed after loading."""
    config = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.risk.max_leverage = 10.0  # type: ignore[misc]


def test_config_money_settings_are_exact_decimals() -> None:
    """Money limits load as Decimal, from integers, floats or strings."""
    config = config_from_dict({"risk": {"max_order_notional": "1234.5", "daily_loss_limit": 250}})
    assert config.risk.max_order_notional == Decimal("1234.5")
    assert config.risk.daily_loss_limit == Decimal(250)


def test_config_hash_changes_with_risk_settings_only() -> None:
    """Acknowledgments bind to the hash: risk settings change it, log settings do not."""
    base = Config().hash()
    assert config_from_dict({"risk": {"max_leverage": 2}}).hash() != base
    assert config_from_dict({"log": {"level": "debug"}}).hash() == base


def test_guard_home_overrides_state_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """GUARD_HOME wins over the config's state directory."""
    monkeypatch.setenv("GUARD_HOME", str(tmp_path))
    assert Config().state_dir == tmp_path


def test_guard_config_check_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`guard config check` exits 0 on a valid file and 2 naming the key on an invalid one."""
    good = tmp_path / "good.toml"
    good.write_text("[risk]\nmax_leverage = 2\n")
    bad = tmp_path / "bad.toml"
    bad.write_text("[risk]\nmax_leverage = 25\n")
    assert main(["config", "check", str(good)]) == 0
    assert main(["config", "check", str(bad)]) == 2
    assert "risk.max_leverage = 25: must be >= 1 and <= 20" in capsys.readouterr().err


def test_guard_config_check_malformed_toml_exits_2(tmp_path: Path) -> None:
    """A file that is not TOML is bad input, reported on one line, from the installed console script."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[risk\nmax_leverage = \n")
    result = subprocess.run(
        [sys.executable, "-m", "guard", "config", "check", str(bad)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "not valid TOML" in result.stderr
    assert "Traceback" not in result.stderr
