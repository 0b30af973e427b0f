"""A real daemon (embedded sim, ccxt feed, desk, journal, API on a unix socket) for API tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from guard.api.client import ApiClient
from guard.daemon import Daemon, running
from tests.builders import daemon_config


@pytest.fixture
async def daemon(guard_home: Path) -> AsyncIterator[Daemon]:
    async with running(daemon_config()) as d:
        yield d


@pytest.fixture
def client(daemon: Daemon) -> ApiClient:
    return ApiClient.from_config(daemon.config)
