"""The live pipeline against a real daemon: the model's repeated signals keep one proposal per symbol and side."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from guard.approval.desk import ACKNOWLEDGMENT_PHRASES
from guard.daemon import running
from guard.domain import AcknowledgmentKind
from guard.events import ProposalQueued, ProposalRefused, ProposalRepriced
from guard.journal.chain import read_entries
from tests.api.support import wait_until
from tests.api.test_metrics import scrape
from tests.builders import daemon_config

MODELS = Path(__file__).resolve().parents[2] / "models"

REPEATS = 60
"""Signals turned into proposal requests: at one bar a second, a minute of the model speaking on every bar."""


def signal_config(speed: float) -> object:
    """The default model proposing on every bar it is sure enough about (no cooldown), nothing expiring."""
    return daemon_config(
        model={"enabled": True, "path": str(MODELS / "default")},
        sim={"speed": speed},
        proposals={"cooldown_bars": 0, "min_confidence": 0.5},
        risk={"min_confidence": 0.5},
        approval={"ttl_seconds": 3600.0},
        operators={"heartbeat_timeout_seconds": 3600.0},
        api={"metrics": True, "metrics_port": 0},
    )


async def test_pipeline_repeated_signals_keep_one_pending_proposal_per_symbol_and_side(guard_home: Path) -> None:
    """The model says the same thing bar after bar and nobody decides: the queue holds at most one proposal per
    symbol and side, each repeat that changed something is a new version of it, and none is marked duplicate;
    the metrics listener has the confidence and novelty of every signal."""
    async with running(signal_config(speed=240.0)) as daemon:  # type: ignore[arg-type]
        desk, pipeline, hub = daemon.desk, daemon._pipeline, daemon.hub
        assert desk is not None and pipeline is not None and hub is not None
        hub.presence.heard_from("alice")
        kind = AcknowledgmentKind.MODEL_PROPOSALS
        assert (await desk.acknowledge("alice", kind, ACKNOWLEDGMENT_PHRASES[kind])).ok

        def requests() -> int:
            stats = pipeline.stats()
            return stats.proposed + stats.refused

        await wait_until(lambda: requests() >= REPEATS, within=120)
        pending = [r.proposal for r in desk.state.pending()]
        per_idea = Counter((p.symbol, p.side) for p in pending)
        assert pending and max(per_idea.values()) == 1, per_idea
        assert all(c.verdict.value != "block" for p in pending for c in p.checks if c.name == "duplicate")
        metrics = await scrape(daemon)
        assert metrics["guard_model_confidence_count"][()] >= REPEATS
        assert metrics["guard_model_novelty_count"][()] == metrics["guard_model_confidence_count"][()]
        assert metrics["guard_bar_to_proposal_seconds_count"][()] >= 1
    events = [e.event for e in read_entries(daemon.paths.journal)]
    queued = [e for e in events if isinstance(e, ProposalQueued)]
    moved = [e for e in events if isinstance(e, ProposalRepriced) and e.reason.startswith("a new signal")]
    assert len(queued) <= 2 * len(desk.specs)  # one per symbol and side, at most, ever (nothing expired)
    assert moved, "no repeat changed anything in a minute of bars"
    assert not [e for e in events if isinstance(e, ProposalRefused) and "duplicate" in e.reason]
