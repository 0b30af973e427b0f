"""`guard config check [PATH]`: validate a config file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from guard.config import DEFAULT_CONFIG_PATH
from guard.errors import ConfigError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `guard config check`."""
    config = sub.add_parser("config", help="validate a config file")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser("check", help="exit 0 when valid, 2 naming the offending key when not")
    check.add_argument("path", nargs="?", type=Path, default=None)
    check.set_defaults(handler=config_check)


def config_check(args: argparse.Namespace) -> int:
    """Every problem the config (and this machine, for it) has, one per line; exit 2 when there are any."""
    from guard import preflight

    path = args.path or args.config or DEFAULT_CONFIG_PATH
    config, problems = preflight.check_file(path)
    if problems:
        for line in ConfigError.of(problems, config.source).lines():
            print(f"guard: {line}", file=sys.stderr)
        return 2
    print(f"{path}: valid (config hash {config.hash()[:12]})")
    return 0
