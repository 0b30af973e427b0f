"""config.toml loads into frozen, typed settings; bad input names the key, the value and what is allowed."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from guard.cli import main
from guard.config import Config, RiskSection, config_from_dict, load_config, parse_config, replace_setting
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
    missing = [
        f"{section.name}.{setting.name}"
        for section in msgspec.structs.fields(Config)
        if section.name != "source"
        for setting in msgspec.structs.fields(section.type)
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
    with pytest.raises(AttributeError):
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


def test_config_from_dict_many_bad_settings_are_all_named_at_once() -> None:
    """A file with several mistakes is refused with every one of them, one line each, not only the first."""
    doc = {
        "risk": {"max_leverage": 50, "max_levrage": 2},
        "riskk": {},
        "approval": {"ttl_seconds": "30"},
        "operators": {"deadman_policy": "holdd"},
    }
    with pytest.raises(ConfigError) as err:
        config_from_dict(doc, source="test.toml")
    keys = [p.key for p in err.value.problems]
    assert keys == [
        "risk.max_leverage",
        "risk.max_levrage",
        "riskk",
        "approval.ttl_seconds",
        "operators.deadman_policy",
    ]
    lines = err.value.lines()
    assert len(lines) == 5 and all(line.startswith("test.toml: ") for line in lines)
    assert str(err.value).splitlines()[0] == "test.toml: 5 problems:"
    assert err.value.key == "risk.max_leverage" and err.value.value == 50


def test_parse_config_keeps_defaults_for_bad_settings_and_reports_them() -> None:
    """Parsing without raising gives the config with each bad setting at its default, and the problems."""
    config, problems = parse_config({"risk": {"max_leverage": 50, "daily_loss_limit": 250}})
    assert config.risk.max_leverage == RiskSection().max_leverage
    assert config.risk.daily_loss_limit == Decimal(250)
    assert [p.key for p in problems] == ["risk.max_leverage"]


@pytest.mark.parametrize(
    ("section", "key", "choices"),
    [
        ("exchange", "timeframe", "1m, 3m, 5m, 15m, 1h"),
        ("exchange", "broker", "paper, sandbox"),
        ("feed", "transport", "auto, rest"),
        ("journal", "synchronous", "full, normal"),
        ("api", "transport", "unix, tcp"),
        ("operators", "deadman_policy", "hold, reduce, flatten"),
        ("log", "level", "debug, info, warning, error"),
        ("log", "format", "auto, json, console"),
    ],
)
def test_config_choice_outside_its_literal_is_refused_with_the_choices(section: str, key: str, choices: str) -> None:
    """Every choice setting accepts only its listed words, and says which they are."""
    with pytest.raises(ConfigError) as err:
        config_from_dict({section: {key: "nonsense"}})
    assert err.value.key == f"{section}.{key}"
    assert err.value.allowed == f"must be one of {choices}"


@pytest.mark.parametrize(
    ("doc", "key", "allowed"),
    [
        ({"feed": {"streams": ["bars", "candles"]}}, "feed.streams", "each must be one of bars, trades, ticker"),
        ({"feed": {"streams": "bars"}}, "feed.streams", "must be a list"),
        ({"exchange": {"symbols": ["BTC/USDT", "BTC/USDT"]}}, "exchange.symbols", "must not repeat an entry"),
        ({"paper": {"starting_balance": 1e30}}, "paper.starting_balance", "must be > 0 and <= 1,000,000,000"),
        ({"risk": {"max_order_notional": "2e9"}}, "risk.max_order_notional", "<= 1,000,000,000"),
        ({"risk": {"daily_loss_limit": "NaN"}}, "risk.daily_loss_limit", "must be a finite number"),
        ({"risk": {"daily_loss_limit": "1e-999999"}}, "risk.daily_loss_limit", "at most 8 decimal places"),
        ({"operators": {"four_eyes_notional": "Infinity"}}, "operators.four_eyes_notional", "must be a finite"),
        ({"operators": {"heartbeat_timeout_seconds": 0.0001}}, "operators.heartbeat_timeout_seconds", "must be >= 1"),
        ({"model": {"max_age_days": float("inf")}}, "model.max_age_days", "must be a finite number"),
        ({"exchange": {"timeout_seconds": float("nan")}}, "exchange.timeout_seconds", "must be a finite number"),
        ({"exchange": {"credentials_env": "my key"}}, "exchange.credentials_env", "environment variable name"),
        ({"guard": {"state_dir": ""}}, "guard.state_dir", "must not be empty"),
        ({"guard": {"operator": "x" * 65}}, "guard.operator", "at most 64 characters"),
        ({"sim": {"url": "ftp://host"}}, "sim.url", "must be empty or an http:// address"),
        ({"risk": {"max_orders_per_minute": True}}, "risk.max_orders_per_minute", "must be a whole number"),
        ({"approval": {"collar_bps": 10**4000}}, "approval.collar_bps", "must be > 0 and <= 5000"),
        (
            {"proposals": {"min_confidence": 0.9}},
            "proposals.min_confidence",
            "must be < proposals.full_size_confidence (0.75)",
        ),
        (
            {"proposals": {"min_confidence": 0.5}},
            "proposals.min_confidence",
            "must be >= risk.min_confidence (0.55): below it the model proposes what risk blocks",
        ),
        (
            {"proposals": {"min_leverage": 4, "max_leverage": 5}},
            "proposals.min_leverage",
            "must be <= risk.max_leverage (3)",
        ),
        (
            {"feed": {"min_reconnect_delay_seconds": 10, "max_reconnect_delay_seconds": 5}},
            "feed.min_reconnect_delay_seconds",
            "must be <= feed.max_reconnect_delay_seconds (5)",
        ),
        (
            {"feed": {"transport": "rest", "poll_interval_seconds": 20, "stale_after_seconds": 15}},
            "feed.poll_interval_seconds",
            "must be < feed.stale_after_seconds (15)",
        ),
    ],
)
def test_config_nonsense_and_contradictions_are_refused(doc: dict, key: str, allowed: str) -> None:
    """Absurd magnitudes, hostile numbers and settings that contradict each other are refused by name."""
    with pytest.raises(ConfigError) as err:
        config_from_dict(doc, source="test.toml")
    assert err.value.key == key
    assert allowed in str(err.value)


def test_config_contradiction_is_not_made_up_from_a_default() -> None:
    """A setting that is wrong on its own is reported once; its default does not stand in to contradict others."""
    with pytest.raises(ConfigError) as err:
        config_from_dict({"proposals": {"min_leverage": 2, "max_leverage": 50}})
    assert [p.key for p in err.value.problems] == ["proposals.max_leverage"]


def test_config_consistent_confidence_floors_are_accepted() -> None:
    """A lower proposal floor is fine when risk's floor is lowered with it (the console's end-to-end test does)."""
    config = config_from_dict({"proposals": {"min_confidence": 0.45}, "risk": {"min_confidence": 0.45}})
    assert config.proposals.min_confidence == 0.45


def test_config_hash_is_the_one_journals_were_bound_to() -> None:
    """The msgspec config hashes the same canonical text as the dataclass config did: acknowledgments
    already in journals still match the default config."""
    assert Config().hash() == "3e08ada8a19a53907e3feb9f990f3ddda9010b569ba83ca5641c18f33744ef2d"
    changed = config_from_dict({"risk": {"max_leverage": 2, "max_order_notional": "1234.5", "daily_loss_limit": 250}})
    assert changed.hash() == "3ee6574f2a784d0d301dfa8f3b9b002b77ec43a202d3a4fdcf93869ff75596d1"


def test_replace_setting_checks_the_changed_key_like_the_file() -> None:
    """A run-time change is converted and range-checked exactly like config.toml, and leaves the rest alone."""
    risk = RiskSection()
    changed = replace_setting(risk, "risk", "daily_loss_limit", "500.25")
    assert changed.daily_loss_limit == Decimal("500.25") and changed.max_leverage == risk.max_leverage
    assert replace_setting(risk, "risk", "max_leverage", 2).max_leverage == 2.0
    assert risk.daily_loss_limit == Decimal(1_000)  # the original is untouched


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("max_leverage", 50, "must be >= 1 and <= 20"),
        ("max_leverage", float("inf"), "must be a finite number"),
        ("max_leverage", 10**4000, "must be >= 1 and <= 20"),
        ("max_order_notional", "sNaN", "must be a finite number"),
        ("max_order_notional", "1e999999", "<= 1,000,000,000"),
        ("max_orders_per_minute", 2.5, "must be a whole number"),
        ("max_levrage", 2, "unknown key; allowed: max_leverage"),
    ],
)
def test_replace_setting_hostile_value_is_refused_naming_the_key(key: str, value: object, allowed: str) -> None:
    """Absurd values typed at run time get a ConfigError naming `risk.<key>`, never a crash."""
    with pytest.raises(ConfigError) as err:
        replace_setting(RiskSection(), "risk", key, value)
    assert err.value.key == f"risk.{key}"
    assert allowed in str(err.value)
    assert len(str(err.value)) < 300  # a 4,000-digit number is cut short in the message
