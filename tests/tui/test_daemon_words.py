"""The console explains the daemon's rules in the daemon's words, whatever the console's own config says."""

from __future__ import annotations

from pathlib import Path

import pytest

from guard.api.client import ApiClient
from guard.approval.desk import ACKNOWLEDGMENT_PHRASES
from guard.config import Config
from guard.daemon import running
from guard.domain import AcknowledgmentKind
from guard.tui.app import GuardApp
from guard.tui.screens.dialogs import TypedConfirmScreen
from tests.api.support import queue_proposal
from tests.tui.conftest import quiet_config, screen_text, until

MODELS = Path(__file__).resolve().parents[2] / "models"


async def test_daemon_words_the_signed_text_says_the_daemons_heartbeat_and_deadman_policy(guard_home: Path) -> None:
    """Daemon on a 5 s heartbeat with the flatten policy, console on the default config (30 s, hold): the model
    risk text the operator signs says 5 s and that positions are closed, never 30 s or "left as they are"."""
    config = quiet_config(
        model={"enabled": True, "path": str(MODELS / "default")},
        operators={"heartbeat_timeout_seconds": 5.0, "deadman_policy": "flatten"},
    )
    local = Config()
    assert (local.operators.heartbeat_timeout_seconds, local.operators.deadman_policy) == (30.0, "hold")
    async with running(config) as daemon:
        app = GuardApp(ApiClient.from_config(daemon.config), "alice", config=local)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: isinstance(app.screen, TypedConfirmScreen) and app.screen.query("#body"))
            body = " ".join(str(app.screen.query_one("#body").render()).split())
            assert "no operator heartbeat for 5 s its dead-man switch fires" in body
            assert "open positions are closed with reduce-only orders" in body
            assert "30 s" not in body and "left as they are" not in body


@pytest.mark.parametrize(("limit", "proposed"), [("3", "4"), ("4", "4.5")])
async def test_daemon_words_the_leverage_acknowledgment_says_the_daemons_conservative_limit(
    guard_home: Path, limit: str, proposed: str
) -> None:
    """With risk.max_leverage = 3 the leverage acknowledgment, its palette entry and the card say "above 3x"; with
    4 they say "above 4x": the threshold comes from the daemon's config, never a fixed 5x."""
    async with running(quiet_config(risk={"max_leverage": float(limit)})) as daemon:
        app = GuardApp(ApiClient.from_config(daemon.config), "alice", config=Config(), selection_grace=0.0)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: app.link_state.up and app.model.status is not None)
            await queue_proposal(daemon, qty="0.01", leverage=proposed)
            screen = app.main_screen
            await until(pilot, lambda: screen.selected_view() is not None)
            await pilot.pause(0.1)
            assert f"above the conservative limit of {limit}x" in " ".join(screen_text(app).split())
            titles = [c.title for c in screen.palette_commands()]
            assert f"Acknowledge leverage above {limit}x" in titles
            assert not any("5x" in t for t in titles)
            screen.acknowledgments.asked_for(AcknowledgmentKind.LEVERAGE)
            await until(pilot, lambda: isinstance(app.screen, TypedConfirmScreen) and app.screen.query("#body"))
            body = " ".join(str(app.screen.query_one("#body").render()).split())
            assert body.startswith(f"Leverage above {limit}x.") and "above 5x" not in body
            assert f"Proposals and overrides above {limit}x are blocked" in body


async def test_daemon_words_a_persons_proposal_shows_no_model_on_the_card_and_in_the_queue(guard_home: Path) -> None:
    """A proposal a person made (no model behind it) says "no model" where the model's confidence and novelty
    would be, and its P(liq) is from the market's volatility: no "Confidence 0%", no "Novelty 0.00", no "model est."."""
    async with running(quiet_config()) as daemon:
        app = GuardApp(ApiClient.from_config(daemon.config), "alice", config=daemon.config, selection_grace=0.0)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: app.link_state.up and app.model.status is not None)
            await queue_proposal(daemon, qty="0.01", confidence=0.0, sigma=0.0, source="operator")
            await until(pilot, lambda: app.main_screen.selected_view() is not None)
            await pilot.pause(0.1)
            card = " ".join(str(app.main_screen.card.render()).split())
            assert "Confidence no model — proposed by operator" in card
            assert "Novelty no model" in card
            assert "from the market's volatility" in card and "model est." not in card
            assert "Confidence 0%" not in card and "Novelty 0.00" not in card
            queue_line = next(line for line in screen_text(app).splitlines() if "BTC/USDT" in line and "BUY" in line)
            assert "no model" in queue_line and "0.00" not in queue_line


async def test_daemon_words_the_console_shows_one_proposal_per_symbol_and_side_as_the_model_repeats(
    guard_home: Path,
) -> None:
    """The model speaks on every bar and nobody decides: the console's queue never holds two proposals for one
    symbol and side, and a repeat that moved something shows as a new version of the same proposal."""
    from tests.proposals.test_pipeline import signal_config

    async with running(signal_config(speed=240.0)) as daemon:  # type: ignore[arg-type]
        assert daemon.desk is not None and daemon._pipeline is not None
        kind = AcknowledgmentKind.MODEL_PROPOSALS
        assert (await daemon.desk.acknowledge("alice", kind, ACKNOWLEDGMENT_PHRASES[kind])).ok
        app = GuardApp(ApiClient.from_config(daemon.config), "alice", config=daemon.config, selection_grace=0.0)
        seen: set[tuple[str, int]] = set()
        async with app.run_test(size=(120, 40)) as pilot:

            def one_per_idea_and_moved() -> bool:
                views = list(app.model.proposals.values())
                ideas = [(v.proposal.symbol, v.proposal.side) for v in views]
                assert len(ideas) == len(set(ideas)), ideas
                seen.update((v.proposal.id, v.proposal.version) for v in views)
                return any(version > 1 for _, version in seen)

            await until(pilot, one_per_idea_and_moved, within=120)
            rows = [line for line in screen_text(app).splitlines() if line[2:4] == "P0"]
            assert rows and len({tuple(r[2:].split()[1:3]) for r in rows}) == len(rows)
