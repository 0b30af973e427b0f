"""Every proposal's end, read from the replay's journal: the counts add up to the proposals made, whatever the
operator and the desk did with them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from guard.config import Config, config_from_dict
from guard.model.artifact import LoadedModel
from guard.replay.engine import ReplayEngine, ReplayOptions
from guard.replay.fates import Fate, Fates, desk_refusal, read_fates
from guard.replay.history import SymbolHistory
from guard.replay.operator import OperatorPolicy, ScriptedOperator
from guard.replay.report import fates_section


async def _fates(
    tmp: Path, model: LoadedModel, histories: list[SymbolHistory], policy: OperatorPolicy, config: Config
) -> tuple[Fates, int]:
    engine = ReplayEngine(config, model, histories, ReplayOptions(ScriptedOperator(policy)), tmp / "j.db")
    result = await engine.run()
    fates = read_fates(tmp / "j.db")
    assert fates.queued == result.stats.proposals
    assert len(fates.ends) == result.stats.proposals + result.stats.refused
    return fates, result.stats.proposals


def _adds_up(fates: Fates) -> None:
    assert sum(fates.counts().values()) == len(fates.ends) > 0
    for fate, details in fates.details().items():
        assert sum(details.values()) <= fates.counts()[fate]
    assert Fate.PENDING.value not in fates.counts()  # the replay's desk expires what is left when it stops


SCENARIOS: dict[str, tuple[OperatorPolicy, dict[str, Any]]] = {
    "approve-all": (OperatorPolicy.APPROVE_ALL, {}),
    "never": (OperatorPolicy.NEVER, {}),
    "four-eyes on every order": (OperatorPolicy.APPROVE_ALL, {"operators": {"four_eyes_notional": "1"}}),
    "guarded, every input novel": (OperatorPolicy.GUARDED, {"model": {"novelty_threshold": 0.0001}}),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_fates_add_up_to_the_proposals_made(
    scenario: str, tmp_path: Path, model: LoadedModel, crashes: list[SymbolHistory]
) -> None:
    """Each proposal ends one way; the fates count every proposal once, in each scenario."""
    policy, raw = SCENARIOS[scenario]
    fates, queued = await _fates(tmp_path, model, crashes[:1], policy, config_from_dict(raw))
    _adds_up(fates)
    counts, details = fates.counts(), fates.details()
    if scenario == "never":
        assert counts == {Fate.REJECTED.value: queued}
        assert details[Fate.REJECTED.value] == {"never approves": queued}
    elif scenario == "four-eyes on every order":
        assert counts == {Fate.REFUSED.value: queued}
        assert details[Fate.REFUSED.value] == {"four-eyes": queued}
    elif scenario == "guarded, every input novel":
        assert counts == {Fate.REJECTED.value: queued}
        assert details[Fate.REJECTED.value] == {"novel": queued}
    else:
        filled = sum(counts.get(f.value, 0) for f in (Fate.FILLED, Fate.STOPPED, Fate.TAKE_PROFIT, Fate.LIQUIDATED))
        assert filled > 0 and counts.get(Fate.STOPPED.value, 0) + counts.get(Fate.TAKE_PROFIT.value, 0) > 0
        assert Fate.REJECTED.value not in counts


async def test_fates_appear_in_the_markdown_and_json_reports(
    tmp_path: Path, model: LoadedModel, crashes: list[SymbolHistory]
) -> None:
    """The report's table lists each fate with its count and a total equal to the proposals made."""
    config = config_from_dict({"operators": {"four_eyes_notional": "1"}})
    fates, queued = await _fates(tmp_path, model, crashes[:1], OperatorPolicy.APPROVE_ALL, config)
    text = "\n".join(fates_section(fates))
    assert f"| refused by the desk | {queued:,} | four-eyes {queued:,} |" in text
    assert f"| **total** | **{queued:,}** | |" in text


def test_desk_refusals_are_named_from_their_journaled_reasons() -> None:
    """Each refusal's wording maps to one name; blocking risk checks are named one by one."""
    assert desk_refusal("the price moved 62 bps since P000001 was priced (collar 50 bps): re-priced ...") == "collar"
    assert (
        desk_refusal(
            "blocked by risk checks: duplicate: duplicates P1 (x buy), still pending; "
            "spot_holdings: selling 5 ETH with 0 held: ..."
        )
        == "risk check: duplicate, spot_holdings"
    )
    assert desk_refusal("four-eyes: waiting for a second operator's approval") == "four-eyes"
    assert desk_refusal("novel — the model is guessing: approving needs the novelty confirmation") == "novel"
    assert desk_refusal("the model is paused: live hit rate below its card") == "model paused"
    assert desk_refusal("something new") == "something new"
