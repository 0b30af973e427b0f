"""What the machine must offer a config before a daemon can run on it.

`guard.config` checks a config on its own (types, ranges, contradictions). This module checks it
against the world: the exchange id is one ccxt knows and offers what the feed needs, the state
directory can be created and written, the model directory holds an artifact's files, the simulator's
scenario and history file exist. Every check runs and every problem is returned (key, value, what is
wrong), so `guard config check` lists them all and `guard daemon` / `guard up` refuse to start with
them, instead of dying later with a traceback or a timeout.

Nothing here touches the network: whether the venue answers and lists the symbols is known only when
the daemon starts (and said in one line if not: see `guard.feed.process`).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from guard.config import Config, ExchangeSection, FeedSection, read_config
from guard.errors import BadInput, ConfigError, ConfigProblem

UNIX_SOCKET_PATH_MAX = 107
"""Longest path a unix socket can be bound at on Linux (sun_path is 108 bytes with its terminating zero)."""

_WATCH = {"bars": "watchOHLCV", "trades": "watchTrades", "ticker": "watchTicker", "book": "watchOrderBook"}
_FETCH = {"bars": "fetchOHLCV", "trades": "fetchTrades", "ticker": "fetchTicker", "book": "fetchOrderBook"}
"""The ccxt methods behind each stream the feed must be able to serve. "mark" is not required: without a
mark price stream the ticker's last price marks positions."""


def check(config: Config, environ: Mapping[str, str] = os.environ) -> list[ConfigProblem]:
    """Every problem the machine has with a config that is valid on its own; empty when it can run."""
    return [
        *_exchange(config.exchange, config.feed, environ),
        *_state_dir(config, environ),
        *_model(config),
        *_simulator(config),
    ]


def check_file(path: Path | str | None) -> tuple[Config, list[ConfigProblem]]:
    """Read a config file and check it, on its own and against the machine: every problem at once.

    A setting that is wrong on its own is not checked against the machine as well (its default
    stands in, and would be judged instead).

    Raises:
        ConfigError: the file cannot be read at all (missing when named, not TOML, unreadable).
    """
    config, problems = read_config(path)
    wrong = {p.key for p in problems}
    problems += [p for p in check(config) if p.key not in wrong and p.key.split(".", 1)[0] not in wrong]
    return config, problems


def require(config: Config) -> None:
    """Refuse a config the machine cannot run, naming every problem.

    Raises:
        ConfigError: with every problem found (`problems`).
    """
    problems = check(config)
    if problems:
        raise ConfigError.of(problems, config.source)


# --- the exchange -------------------------------------------------------------------------------


def _exchange(exchange: ExchangeSection, feed: FeedSection, environ: Mapping[str, str]) -> list[ConfigProblem]:
    from guard.exchanges import SIM_ID, ccxt_class_name

    problems = []
    if exchange.broker == "sandbox":
        problems += _sandbox(exchange, environ)
    if exchange.id == SIM_ID:
        return problems
    import ccxt
    import ccxt.pro

    name = ccxt_class_name(exchange.id)
    if name not in ccxt.exchanges:
        near = difflib.get_close_matches(name, ccxt.exchanges, n=3, cutoff=0.8)
        hint = f" (did you mean {' or '.join(near)}?)" if near else ""
        return [
            *problems,
            ConfigProblem(
                "exchange.id",
                exchange.id,
                f'not an exchange ccxt knows{hint}: must be "sim" or one of the {len(ccxt.exchanges)} ids in '
                "ccxt.exchanges, such as binanceusdm, bybit or okx",
            ),
        ]
    streaming = feed.transport == "auto" and name in ccxt.pro.exchanges
    has = getattr(ccxt.pro if streaming else ccxt, name)().has
    if not has.get("fetchMarkets"):
        problems.append(ConfigProblem("exchange.id", exchange.id, "ccxt cannot load its markets (no fetchMarkets)"))
    for stream in feed.streams:
        if stream not in _FETCH or _offers(has, stream, streaming):
            continue
        if stream == "bars" and _offers(has, "trades", streaming):
            continue  # the feed builds bars from trades
        how = f"{_WATCH[stream]} or {_FETCH[stream]}" if streaming else _FETCH[stream]
        problems.append(
            ConfigProblem("feed.streams", stream, f"{exchange.id} offers no {stream} stream in ccxt (no {how})")
        )
    return problems


def _offers(has: Mapping[str, Any], stream: str, streaming: bool) -> bool:
    return bool((streaming and has.get(_WATCH[stream])) or has.get(_FETCH[stream]))


def _sandbox(exchange: ExchangeSection, environ: Mapping[str, str]) -> list[ConfigProblem]:
    """The sandbox broker's keys are in the environment, and the venue has a testnet or demo account."""
    from guard.broker.venue_client import DEMO_TRADING, sandbox_credentials
    from guard.exchanges import SIM_ID, ccxt_class_name

    problems = []
    try:
        sandbox_credentials(exchange, environ)
    except BadInput as e:
        problems.append(ConfigProblem("exchange.credentials_env", exchange.credentials_env, str(e)))
    if exchange.id == SIM_ID:
        return problems
    import ccxt

    name = ccxt_class_name(exchange.id)
    if name in ccxt.exchanges:
        urls = getattr(ccxt, name)().urls
        if not urls.get("demo" if name in DEMO_TRADING else "test"):
            problems.append(
                ConfigProblem(
                    "exchange.broker",
                    "sandbox",
                    f"{exchange.id} has no testnet or demo URLs in ccxt, so its orders would trade real money: "
                    'use broker = "paper", or a venue with a testnet',
                )
            )
    return problems


# --- files and directories ----------------------------------------------------------------------


def _state_dir(config: Config, environ: Mapping[str, str]) -> list[ConfigProblem]:
    """The state directory exists and is writable, or can be created; its control socket path fits."""
    key = "GUARD_HOME" if environ.get("GUARD_HOME") else "guard.state_dir"
    path = config.state_dir
    wrong = _unwritable_dir(path)
    if wrong:
        return [ConfigProblem(key, str(path), wrong)]
    if config.api.transport == "unix":
        from guard.paths import StatePaths

        socket = str(StatePaths(path).socket)
        size = len(os.fsencode(socket))
        if size > UNIX_SOCKET_PATH_MAX:
            return [
                ConfigProblem(
                    key,
                    str(path),
                    f"the control socket {socket} would be {size} bytes long, and a unix socket path is at most "
                    f'{UNIX_SOCKET_PATH_MAX}: use a shorter directory, or api.transport = "tcp"',
                )
            ]
    return []


def _unwritable_dir(path: Path) -> str:
    """Why guard cannot keep files in `path` (creating it if need be); empty when it can."""
    if path.exists():
        if not path.is_dir():
            return "is a file, not a directory"
        if not os.access(path, os.W_OK | os.X_OK):
            return "is not writable by this user"
        return ""
    parent = path.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"cannot be created: {parent} is a file, not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot be created: {parent} is not writable by this user"
    return ""


def _model(config: Config) -> list[ConfigProblem]:
    """With the model enabled, its directory exists, can be read and holds every file of an artifact."""
    if not config.model.enabled:
        return []
    from guard.model.artifact import CHECKSUMS, FILES

    path = Path(config.model.path)
    fix = "set model.path, or model.enabled = false to run without a model"
    if not path.exists():
        where = "" if path.is_absolute() else f" (relative to {Path.cwd()})"
        return [ConfigProblem("model.path", config.model.path, f"no such directory{where}: {fix}")]
    if not path.is_dir():
        return [ConfigProblem("model.path", config.model.path, f"is a file, not a model directory: {fix}")]
    if not os.access(path, os.R_OK | os.X_OK):
        return [ConfigProblem("model.path", config.model.path, "cannot be read by this user")]
    needed = (*FILES, CHECKSUMS)
    missing = [name for name in needed if not (path / name).is_file()]
    if missing:
        return [
            ConfigProblem(
                "model.path",
                config.model.path,
                f"missing {', '.join(missing)}: a model directory holds {', '.join(needed)} "
                "(`guard train` writes them)",
            )
        ]
    unreadable = [name for name in needed if not os.access(path / name, os.R_OK)]
    if unreadable:
        return [ConfigProblem("model.path", config.model.path, f"cannot read {', '.join(unreadable)}")]
    return []


def _simulator(config: Config) -> list[ConfigProblem]:
    """For the embedded simulator: its scenario exists, and so does its history file, if one is named."""
    from guard.exchanges import SIM_ID

    if config.exchange.id != SIM_ID or config.sim.url:
        return []  # not the embedded simulator: another process serves the market
    from guard.feed.history import file_kind
    from guard.sim.faults import ALL_SCENARIOS

    problems = []
    if config.sim.scenario not in ALL_SCENARIOS:
        allowed = f"must be one of {', '.join(ALL_SCENARIOS)}"
        problems.append(ConfigProblem("sim.scenario", config.sim.scenario, allowed))
    history = config.sim.history
    if history:
        path = Path(history)
        try:
            file_kind(path)
        except BadInput:
            problems.append(ConfigProblem("sim.history", history, "must end in .csv or .parquet"))
        if not path.is_file():
            problems.append(ConfigProblem("sim.history", history, "no such file"))
        elif not os.access(path, os.R_OK):
            problems.append(ConfigProblem("sim.history", history, "cannot be read by this user"))
    return problems
