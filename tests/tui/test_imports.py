"""The console is a client: importing it pulls in none of the daemon's machinery."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ("torch", "ccxt", "guard.risk", "guard.approval", "guard.broker", "guard.journal", "guard.daemon")


def test_tui_import_pulls_in_no_torch_ccxt_or_daemon_code() -> None:
    """A fresh interpreter that imports guard.tui.app has none of torch, ccxt, risk, approval, broker or journal."""
    probe = "import json, sys, guard.tui.app; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded = json.loads(result.stdout)
    leaked = [m for m in loaded if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]
    assert leaked == []
    assert "guard.api.client" in loaded and "textual" in loaded
