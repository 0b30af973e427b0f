"""The metrics listener: a stock Prometheus scrape over loopback TCP, no token, read-only, parsed by its parser."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from guard.api.metrics import MetricsListener
from guard.config import config_from_dict
from guard.daemon import Daemon, running
from guard.errors import ConfigError, DaemonError
from tests.api.support import queue_proposal, wait_until
from tests.builders import daemon_config


async def scrape(daemon: Daemon) -> dict[str, Any]:
    """GET /metrics from the listener with no credentials at all, parsed: name -> {labels: value} per sample."""
    async with aiohttp.ClientSession() as http:
        response = await http.get(f"http://127.0.0.1:{daemon.metrics_port}/metrics")
        assert response.status == 200 and response.content_type == "text/plain"
        text = await response.text()
    samples: dict[str, Any] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


async def test_metrics_a_scrape_without_a_token_counts_approvals_kills_fates_and_feed_lag(guard_home: Path) -> None:
    """An approval that fills, a rejection and a kill: a plain HTTP scrape of the loopback listener, parsed by
    prometheus_client's own parser, has their latencies, the proposals by fate, the feed's lag and the state."""
    async with running(daemon_config(api={"metrics": True, "metrics_port": 0})) as daemon:
        assert daemon.desk is not None and daemon.metrics_port > 0
        filled = await queue_proposal(daemon)
        assert (await daemon.desk.approve(filled, "alice", version=1)).ok
        rejected = await queue_proposal(daemon, symbol="ETH/USDT:USDT", qty="1")
        assert (await daemon.desk.reject(rejected, "alice", reason="no")).ok
        await daemon.desk.kill("alice", "metrics test")
        await wait_until(lambda: daemon.desk is not None and not daemon.desk.kill_unfinished)
        m = await scrape(daemon)
    assert m["guard_approval_seconds_count"][()] == 1
    assert m["guard_kill_seconds_count"][()] == 1 and m["guard_kill_seconds_sum"][()] > 0
    fates = {dict(labels)["fate"]: value for labels, value in m["guard_proposal_fates_total"].items()}
    assert (fates["queued"], fates["filled"], fates["rejected"], fates["expired"]) == (2, 1, 1, 0)
    assert m["guard_decision_seconds_count"][(("kind", "approve"),)] == 1
    assert m["guard_feed_lag_seconds_count"][()] > 0
    assert m["guard_trading_state"][(("state", "HALTED"),)] == 1
    assert m["guard_kills_total"][()] == 1 and m["guard_open_positions"][()] == 0
    assert m["guard_feed_healthy"][(("symbol", "BTC/USDT:USDT"),)] == 1


async def test_metrics_the_listener_serves_metrics_only_and_changes_nothing(guard_home: Path) -> None:
    """The listener answers GET /metrics and nothing else: no snapshot, no commands, no POST, whatever is sent."""
    config = daemon_config(api={"metrics": True, "metrics_port": 0})
    async with running(config) as daemon, aiohttp.ClientSession() as http:
        base = f"http://127.0.0.1:{daemon.metrics_port}"
        for method, path in (("GET", "/v1/snapshot"), ("POST", "/v1/commands"), ("GET", "/health")):
            response = await http.request(method, base + path, json={"type": "Kill"})
            assert response.status == 404
        assert (await http.post(base + "/metrics")).status == 405
        assert daemon.desk is not None and daemon.desk.state.kill_count == 0


async def test_metrics_off_by_default(guard_home: Path) -> None:
    """With api.metrics off (the default) nothing listens: the metrics stay behind the control API's token."""
    async with running(daemon_config()) as daemon:
        assert daemon.metrics_port == 0
        assert "guard_trading_state" in daemon.metrics.text()


def test_metrics_a_non_loopback_bind_is_refused() -> None:
    """api.metrics_host must be loopback: the config check names the key, and the listener itself refuses too."""
    with pytest.raises(ConfigError) as refused:
        config_from_dict({"api": {"metrics": True, "metrics_host": "0.0.0.0"}})
    assert "api.metrics_host" in str(refused.value) and "loopback" in str(refused.value)
    with pytest.raises(DaemonError, match="only loopback"):
        MetricsListener("0.0.0.0", 0, str)
