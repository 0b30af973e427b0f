"""How a drill runs: its options, the drill daemon's config, and the state directory it keeps to itself."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from guard.config import Config, replace_setting
from guard.drill.scenarios import Scenario

SYMBOLS = ("BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT")
"""The markets a drill trades on the simulated exchange."""


@dataclass(frozen=True, slots=True)
class DrillOptions:
    """How to run a drill.

    Attributes:
        scripted: an automated operator kills after `reaction_delay_seconds`; False waits for a
            person at `guard tui`.
        reaction_delay_seconds: the scripted operator's delay between seeing the alert and killing.
        operator_timeout_seconds: how long an operator-driven drill waits for a person.
        speed: simulated seconds per real second.
        observe_seconds: how long after flat prices are watched (the counterfactual's horizon).
        operator: the operator id of the console the drill attaches.
    """

    scripted: bool = True
    reaction_delay_seconds: float = 0.25
    operator_timeout_seconds: float = 300.0
    speed: float = 60.0
    observe_seconds: float = 2.0
    operator: str = "drill-operator"


@contextlib.contextmanager
def guard_home(path: Path) -> Iterator[None]:
    """Point GUARD_HOME at the drill daemon's own state directory for the drill's duration.

    The state directory is chosen by this variable over the config everywhere in guard (daemon,
    client, `guard tui`), so this is how a drill keeps its daemon away from a trading one.
    """
    previous = os.environ.get("GUARD_HOME")
    os.environ["GUARD_HOME"] = str(path)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("GUARD_HOME", None)
        else:
            os.environ["GUARD_HOME"] = previous


def drill_config(base: Config, scenario: Scenario, options: DrillOptions) -> Config:
    """The drill daemon's config: the simulated exchange, loopback TCP, and the scenario's settings."""
    overlay: dict[str, dict[str, Any]] = {
        "exchange": {"id": "sim", "symbols": list(SYMBOLS), "broker": "paper"},
        "sim": {"speed": options.speed, "history": "", "scenario": "calm"},
        "model": {"enabled": False, "max_age_days": 1_000_000.0},
    }
    if options.scripted or base.api.transport == "tcp":
        # Loopback TCP on a free port (written to the endpoint file): never the trading daemon's port,
        # and no unix-socket path length limit for deep drill directories.
        overlay["api"] = {"transport": "tcp", "host": "127.0.0.1", "port": 0}
    for section, values in scenario.config.items():
        overlay[section] = {**overlay.get(section, {}), **values}
    if overlay["model"].get("enabled") and not Path(base.model.path).exists():
        # Run from outside the repository: the shipped model, wherever guard is installed from.
        shipped = Path(__file__).resolve().parents[2] / "models" / "default"
        if shipped.exists():
            overlay["model"]["path"] = str(shipped)
    config = base
    for section, values in overlay.items():
        current = getattr(config, section)
        for key, value in values.items():
            current = replace_setting(current, section, key, value)
        config = _replace(config, section, current)
    return config


def _replace(config: Config, section: str, value: Any) -> Config:
    return msgspec.structs.replace(config, **{section: value})
