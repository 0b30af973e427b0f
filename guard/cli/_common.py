"""What the command groups share: who the operator at this shell is, and a word with the running daemon."""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from guard.api.protocol import Command, Reply, StatusView
    from guard.config import Config

OPERATOR_HELP = "your operator id (default: guard.operator or $USER)"


def operator_id(config: Config, given: str | None = None) -> str:
    """Who is at this shell: --operator, else the config's guard.operator, else the login name."""
    return given or config.guard.operator or os.environ.get("USER") or getpass.getuser() or "operator"


def send_command(config: Config, operator: str, make: Callable[[str], Command]) -> Reply:
    """Send one command to the running daemon as `operator`, under a fresh command id, and return its reply.

    Raises:
        DaemonError: no daemon answered.
    """
    import asyncio
    import uuid

    from guard.api.client import ApiClient

    command = make(f"cli-{uuid.uuid4().hex[:12]}")
    return asyncio.run(ApiClient.from_config(config, operator=operator).command(command, operator))


def status_view(config: Config) -> StatusView:
    """The daemon's status now (resting orders and limits with it).

    Raises:
        DaemonError: no daemon answered.
    """
    import asyncio

    from guard.api.client import ApiClient

    return asyncio.run(ApiClient.from_config(config, operator=operator_id(config)).snapshot()).status
