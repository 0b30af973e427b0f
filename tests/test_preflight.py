"""`guard config check` finds what the daemon would die on: every problem at once, each naming key and value."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from guard import preflight
from guard.cli import main
from guard.config import Config, config_from_dict
from guard.errors import ConfigError, ConfigProblem

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_MODEL = ROOT / "models" / "default"


@pytest.fixture(autouse=True)
def _at_repository_root(monkeypatch: pytest.MonkeyPatch, guard_home: Path) -> None:
    """Relative paths (the shipped model) resolve as when guard is run from its repository."""
    monkeypatch.chdir(ROOT)


def keys(problems: list[ConfigProblem]) -> list[str]:
    return [p.key for p in problems]


def test_preflight_default_config_passes() -> None:
    """The shipped defaults (simulator, shipped model, a fresh state directory) can run."""
    assert preflight.check(Config()) == []


def test_preflight_unknown_exchange_id_is_named_with_a_near_match() -> None:
    """An id ccxt does not know is refused, suggesting the ids it is close to."""
    [problem] = preflight.check(config_from_dict({"exchange": {"id": "binanceusdmm"}}))
    assert (problem.key, problem.value) == ("exchange.id", "binanceusdmm")
    assert "not an exchange ccxt knows (did you mean binanceusdm" in problem.allowed


def test_preflight_nonsense_exchange_id_is_refused() -> None:
    """An id close to nothing is refused without a far-fetched suggestion."""
    [problem] = preflight.check(config_from_dict({"exchange": {"id": "nosuchexchange"}}))
    assert problem.key == "exchange.id" and "did you mean" not in problem.allowed


def test_preflight_known_exchange_with_the_streams_the_feed_needs_passes() -> None:
    """A real venue that offers every configured stream passes (nothing is fetched: no network)."""
    assert preflight.check(config_from_dict({"exchange": {"id": "binanceusdm"}})) == []


def test_preflight_stream_the_venue_does_not_offer_is_named() -> None:
    """A configured stream ccxt cannot get from the venue is refused; bars it can build from trades are not."""
    config = config_from_dict(
        {"exchange": {"id": "cryptomus", "symbols": ["BTC/USDT"]}, "feed": {"streams": ["bars", "ticker"]}}
    )
    [problem] = preflight.check(config)
    assert (problem.key, problem.value) == ("feed.streams", "ticker")
    assert "cryptomus offers no ticker stream" in problem.allowed


def test_preflight_bars_with_neither_klines_nor_trades_are_refused() -> None:
    """A venue with no OHLCV and no trades cannot give the model bars."""
    config = config_from_dict(
        {
            "exchange": {"id": "blockchaincom", "symbols": ["BTC/USDT"]},
            "feed": {"streams": ["bars"], "transport": "rest"},
        }
    )
    [problem] = preflight.check(config)
    assert (problem.key, problem.value) == ("feed.streams", "bars")


def test_preflight_state_dir_under_a_file_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A state directory that cannot be created, because a file sits where a directory must be, is named."""
    monkeypatch.delenv("GUARD_HOME")
    [problem] = preflight.check(config_from_dict({"guard": {"state_dir": "/dev/null/x"}}))
    assert (problem.key, problem.value) == ("guard.state_dir", "/dev/null/x")
    assert "cannot be created: /dev/null is a file" in problem.allowed


def test_preflight_state_dir_that_is_a_file_names_guard_home(guard_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """GUARD_HOME pointing at a file is refused under its own name (it overrides the config)."""
    a_file = guard_home / "not-a-dir"
    a_file.write_text("x")
    monkeypatch.setenv("GUARD_HOME", str(a_file))
    [problem] = preflight.check(Config())
    assert (problem.key, problem.allowed) == ("GUARD_HOME", "is a file, not a directory")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anywhere")
def test_preflight_read_only_state_dir_is_refused(guard_home: Path) -> None:
    """A state directory this user cannot write is refused before the daemon tries to open its journal."""
    guard_home.chmod(0o500)
    try:
        [problem] = preflight.check(Config())
    finally:
        guard_home.chmod(0o700)
    assert problem.allowed == "is not writable by this user"


def test_preflight_state_dir_too_deep_for_a_unix_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A state directory whose control socket path exceeds the kernel's limit is refused, unless the API is on TCP."""
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    monkeypatch.setenv("GUARD_HOME", str(deep))
    [problem] = preflight.check(Config())
    assert problem.key == "GUARD_HOME" and "a unix socket path is at most 107" in problem.allowed
    assert preflight.check(config_from_dict({"api": {"transport": "tcp"}})) == []


def test_preflight_missing_model_directory_is_refused_while_the_model_is_enabled() -> None:
    """A model directory that does not exist is refused, saying how to run without one; disabled, it is not checked."""
    [problem] = preflight.check(config_from_dict({"model": {"path": "models/nope"}}))
    assert (problem.key, problem.value) == ("model.path", "models/nope")
    assert f"no such directory (relative to {ROOT})" in problem.allowed
    assert "model.enabled = false" in problem.allowed
    assert preflight.check(config_from_dict({"model": {"path": "models/nope", "enabled": False}})) == []


def test_preflight_model_directory_missing_a_file_is_refused(tmp_path: Path) -> None:
    """A model directory without its weights is named with the file that is missing."""
    model = tmp_path / "model"
    shutil.copytree(SHIPPED_MODEL, model)
    (model / "weights.pt").unlink()
    [problem] = preflight.check(config_from_dict({"model": {"path": str(model)}}))
    assert problem.key == "model.path" and problem.allowed.startswith("missing weights.pt")


def test_preflight_model_path_that_is_a_file_is_refused() -> None:
    """A file named as the model directory is refused."""
    [problem] = preflight.check(config_from_dict({"model": {"path": str(SHIPPED_MODEL / "config.json")}}))
    assert "is a file, not a model directory" in problem.allowed


def test_preflight_simulator_history_and_scenario_are_checked(tmp_path: Path) -> None:
    """The embedded simulator's history file must exist with a known extension, and its scenario must exist."""
    config = config_from_dict({"sim": {"history": str(tmp_path / "bars.txt"), "scenario": "moon"}})
    problems = preflight.check(config)
    assert keys(problems) == ["sim.scenario", "sim.history", "sim.history"]
    assert [p.allowed for p in problems[1:]] == ["must end in .csv or .parquet", "no such file"]


def test_preflight_simulator_settings_are_not_checked_for_a_running_simulator(tmp_path: Path) -> None:
    """With sim.url another process serves the market: its scenario and history are not this daemon's."""
    config = config_from_dict({"sim": {"url": "http://127.0.0.1:8800", "history": str(tmp_path / "none.csv")}})
    assert preflight.check(config) == []


def test_preflight_sandbox_broker_needs_keys_in_the_environment() -> None:
    """A sandbox broker on a real venue without its keys in the environment is refused, naming the variables."""
    config = config_from_dict({"exchange": {"id": "binanceusdm", "broker": "sandbox", "credentials_env": "T_SANDBOX"}})
    [problem] = preflight.check(config, environ={})
    assert problem.key == "exchange.credentials_env"
    assert "set T_SANDBOX_API_KEY and T_SANDBOX_API_SECRET" in problem.allowed
    assert preflight.check(config, environ={"T_SANDBOX_API_KEY": "k", "T_SANDBOX_API_SECRET": "s"}) == []


def test_preflight_sandbox_broker_on_a_venue_without_a_testnet_is_refused() -> None:
    """A sandbox broker on a venue with no test or demo URLs would trade real money: refused."""
    config = config_from_dict({"exchange": {"id": "kraken", "broker": "sandbox", "symbols": ["BTC/USD"]}})
    problems = preflight.check(config, environ={"GUARD_SANDBOX_API_KEY": "k", "GUARD_SANDBOX_API_SECRET": "s"})
    assert keys(problems) == ["exchange.broker"] and "would trade real money" in problems[0].allowed


def test_preflight_require_raises_every_problem_at_once() -> None:
    """require() refuses with a ConfigError that carries every problem, one line each."""
    config = config_from_dict({"exchange": {"id": "nosuchexchange"}, "model": {"path": "models/nope"}})
    with pytest.raises(ConfigError) as err:
        preflight.require(config)
    assert keys(list(err.value.problems)) == ["exchange.id", "model.path"]


def test_check_file_does_not_judge_a_wrong_setting_twice(tmp_path: Path) -> None:
    """A setting wrong on its own is reported once; its default is not then checked against the machine."""
    path = tmp_path / "config.toml"
    path.write_text('[guard]\nstate_dir = ""\n')
    _, problems = preflight.check_file(path)
    assert [(p.key, p.allowed) for p in problems] == [("guard.state_dir", "must not be empty")]


def test_guard_config_check_lists_everything_the_daemon_would_die_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's list, in one file: every problem is printed on its own line, and the check exits 2."""
    monkeypatch.delenv("GUARD_HOME")
    path = tmp_path / "config.toml"
    path.write_text(
        '[guard]\nstate_dir = "/dev/null/x"\n'
        '[exchange]\nid = "nosuchexchange"\n'
        '[feed]\nstreams = ["bars", "candles"]\n'
        "[proposals]\nmin_confidence = 0.9\n"
        "[operators]\nheartbeat_timeout_seconds = 0.0001\n"
        "[paper]\nstarting_balance = 1e30\n"
        '[model]\npath = "models/nope"\n'
    )
    assert main(["config", "check", str(path)]) == 2
    lines = capsys.readouterr().err.splitlines()
    named = {line.split(": ", 2)[2].split(" = ")[0] for line in lines}
    assert named == {
        "guard.state_dir",
        "exchange.id",
        "feed.streams",
        "proposals.min_confidence",
        "operators.heartbeat_timeout_seconds",
        "paper.starting_balance",
        "model.path",
    }
    assert all(line.startswith(f"guard: {path}: ") for line in lines)


def test_guard_config_check_valid_file_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A file the machine can run is valid: exit 0 with the config hash."""
    path = tmp_path / "config.toml"
    path.write_text("[risk]\nmax_leverage = 2\n")
    assert main(["config", "check", str(path)]) == 0
    assert "valid (config hash" in capsys.readouterr().out
