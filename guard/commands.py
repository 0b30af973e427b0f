"""Small commands that belong to no one part: `guard config check`."""

from __future__ import annotations

import argparse

from guard.config import DEFAULT_CONFIG_PATH, load_config


def config_check(args: argparse.Namespace) -> int:
    path = args.path or args.config or DEFAULT_CONFIG_PATH
    config = load_config(path)
    print(f"{path}: valid (config hash {config.hash()[:12]})")
    return 0
