"""Shared fixtures: real components, isolated state directories."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def guard_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private GUARD_HOME so no test touches another's journal, socket or token."""
    home = tmp_path / "guard-home"
    home.mkdir()
    monkeypatch.setenv("GUARD_HOME", str(home))
    return home
