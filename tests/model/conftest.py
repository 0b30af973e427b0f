"""A tiny model trained once per session on a toy market, shared by the model tests."""

from __future__ import annotations

import pytest

from tests.model.toy import Trained, train_toy


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """Train, save and load a tiny ensemble (a few seconds)."""
    return train_toy(tmp_path_factory.mktemp("models") / "toy")
