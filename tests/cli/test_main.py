"""`guard` as a process: how it ends when its output has nowhere to go, and what building its parser imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.cli.conftest import ROOT

HEAVY = ("torch", "ccxt", "textual", "aiohttp", "numpy", "pyarrow")


def test_main_with_stdout_closed_runs_the_command_and_exits_0(tmp_path: Path) -> None:
    """Started with file descriptor 1 closed (`guard config check >&-`), a command still runs, exit 0, no traceback."""
    (tmp_path / "config.toml").write_text("[model]\nenabled = false\n")
    result = subprocess.run(
        [sys.executable, "-m", "guard", "config", "check", str(tmp_path / "config.toml")],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        timeout=60,
        preexec_fn=lambda: os.close(1),
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_build_parser_imports_no_heavy_library() -> None:
    """Building the whole parser (what `guard --help` and every command do first) imports none of torch, ccxt,
    textual, aiohttp, numpy or pyarrow: each group module leaves them to the handler that needs them."""
    probe = (
        "import json, sys, guard.cli; guard.cli.build_parser(); "
        "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    loaded = json.loads(result.stdout)
    assert [name for name in HEAVY if name in loaded] == []
