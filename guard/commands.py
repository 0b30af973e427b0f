"""Small commands that belong to no one part: `guard config check`."""

from __future__ import annotations

import argparse
import sys

from guard.config import DEFAULT_CONFIG_PATH
from guard.errors import ConfigError


def config_check(args: argparse.Namespace) -> int:
    from guard import preflight

    path = args.path or args.config or DEFAULT_CONFIG_PATH
    config, problems = preflight.check_file(path)
    if problems:
        for line in ConfigError.of(problems, config.source).lines():
            print(f"guard: {line}", file=sys.stderr)
        return 2
    print(f"{path}: valid (config hash {config.hash()[:12]})")
    return 0
