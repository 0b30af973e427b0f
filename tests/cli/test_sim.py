"""`guard sim`'s refusals of bad options."""

from __future__ import annotations

from pathlib import Path

import pytest

from guard.cli import main


def test_sim_speed_zero_is_refused_as_typed(guard_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`guard sim --speed 0` exits 2 and quotes the speed as the person typed it (0, not 0.0)."""
    assert main(["sim", "--speed", "0"]) == 2
    assert "guard: --speed 0: must be > 0 and <= 10000" in capsys.readouterr().err
