"""What the command groups share: who the operator at this shell is."""

from __future__ import annotations

import getpass
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from guard.config import Config

OPERATOR_HELP = "your operator id (default: guard.operator or $USER)"


def operator_id(config: Config, given: str | None = None) -> str:
    """Who is at this shell: --operator, else the config's guard.operator, else the login name."""
    return given or config.guard.operator or os.environ.get("USER") or getpass.getuser() or "operator"
