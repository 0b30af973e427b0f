"""config.toml -> frozen, typed, validated settings.

The sections (`guard.config.sections`) are the config reference. Loading checks every key on its own
(`guard.config.rules`) and refuses the file with every problem at once, each naming the key, the
value and what is allowed; then it checks settings against each other
(`guard.config.contradictions`). Each part of guard receives its own section, never the whole config.

Checks of the machine (the exchange id ccxt knows, the state directory, the model directory) live in
`guard.preflight`: this package reads no file but the config and imports nothing heavy.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import msgspec

from guard.config.contradictions import contradictions, is_loopback
from guard.config.rules import MONEY_MAX, MONEY_PLACES, Refused, SectionRules, section_rules
from guard.config.sections import (
    HASHED_SECTIONS,
    MIN_HEARTBEAT_TIMEOUT,
    ApiSection,
    ApprovalSection,
    Config,
    ExchangeSection,
    FeedSection,
    GuardSection,
    JournalSection,
    LogSection,
    ModelSection,
    OperatorsSection,
    PaperSection,
    ProposalsSection,
    RiskSection,
    Section,
    SimSection,
)
from guard.errors import ConfigError, ConfigProblem

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "HASHED_SECTIONS",
    "MIN_HEARTBEAT_TIMEOUT",
    "MONEY_MAX",
    "MONEY_PLACES",
    "ApiSection",
    "ApprovalSection",
    "Config",
    "ExchangeSection",
    "FeedSection",
    "GuardSection",
    "JournalSection",
    "LogSection",
    "ModelSection",
    "OperatorsSection",
    "PaperSection",
    "ProposalsSection",
    "RiskSection",
    "Section",
    "SimSection",
    "config_from_dict",
    "is_loopback",
    "load_config",
    "parse_config",
    "read_config",
    "replace_setting",
    "setting_allowed",
]

DEFAULT_CONFIG_PATH = Path("config.toml")

_SECTIONS: dict[str, SectionRules] = {
    f.name: section_rules(f.name, f.type) for f in msgspec.structs.fields(Config) if f.name != "source"
}


def load_config(path: Path | str | None = None) -> Config:
    """Read and validate a config file. A missing default path gives the defaults.

    Raises:
        ConfigError: naming every key that is wrong, its value and what is allowed.
    """
    config, problems = read_config(path)
    if problems:
        raise ConfigError.of(problems, config.source)
    return config


def read_config(path: Path | str | None = None) -> tuple[Config, list[ConfigProblem]]:
    """Read a config file: the config (bad settings left at their defaults) and every problem found.

    Raises:
        ConfigError: the file cannot be read at all (missing when named, not TOML, unreadable).
    """
    explicit = path is not None
    path = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    if not path.exists():
        if explicit:
            raise ConfigError("path", str(path), "no such file")
        return Config(), []
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError("(file)", str(path), f"not valid TOML: {e}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError("(file)", str(path), f"cannot be read: {e}") from e
    return parse_config(raw, source=str(path))


def config_from_dict(raw: dict[str, Any], source: str = "(dict)") -> Config:
    """Validate a parsed TOML document into a Config.

    Raises:
        ConfigError: naming every key that is wrong, its value and what is allowed.
    """
    config, problems = parse_config(raw, source)
    if problems:
        raise ConfigError.of(problems, source)
    return config


def parse_config(raw: dict[str, Any], source: str = "(dict)") -> tuple[Config, list[ConfigProblem]]:
    """Check every key of a parsed TOML document, then the settings against each other.

    Returns the config with each bad setting left at its default, and every problem found
    (the contradictions only among settings that are each valid).
    """
    problems: list[ConfigProblem] = []
    sections: dict[str, Any] = {}
    for name, values in raw.items():
        rules = _SECTIONS.get(name)
        if rules is None:
            problems.append(ConfigProblem(name, values, f"unknown section; allowed: {', '.join(_SECTIONS)}"))
        elif not isinstance(values, dict):
            problems.append(ConfigProblem(name, values, "must be a table ([section])"))
        else:
            sections[name], found = rules.build(values)
            problems += found
    config = Config(**sections, source=source)
    problems += contradictions(config, {p.key for p in problems})
    return config, problems


def replace_setting(section: Any, name: str, key: str, value: Any, source: str = "(command)") -> Any:
    """A copy of a section with one setting changed, that setting validated exactly like the config file.

    Only the changed key is checked (a risk limit changed at run time is applied on every market
    event): about a microsecond, against a whole section's validation before.

    Raises:
        ConfigError: unknown key, wrong type or out of range, naming `name.key`.
    """
    rules = _SECTIONS.get(name)
    if rules is None:
        raise ConfigError(name, value, f"unknown section; allowed: {', '.join(_SECTIONS)}", source)
    try:
        converted = rules.convert(key, value)
    except Refused as refused:
        raise ConfigError.of([refused.problem], source) from None
    return msgspec.structs.replace(section, **{key: converted})


def setting_allowed(name: str, key: str) -> str:
    """What a setting allows, in the words its refusal uses ("must be a finite number >= 1 and <= 20").

    Raises:
        ConfigError: an unknown section or key.
    """
    rules = _SECTIONS.get(name)
    rule = rules.rules.get(key) if rules is not None else None
    if rule is None:
        raise ConfigError(f"{name}.{key}", None, "unknown setting")
    return rule.explain(None)[1]
