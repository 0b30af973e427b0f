"""The replay engine: the lean path changes nothing, runs repeat exactly, and the scripted operators behave."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from guard import codec
from guard.config import Config, config_from_dict
from guard.domain import AcknowledgmentKind, DecisionKind, OrderPurpose, Verdict
from guard.events import AcknowledgmentRecorded, DecisionRecorded, Event, OrderFilled, OrderSubmitted, SessionStarted
from guard.journal.chain import read_entries, verify
from guard.journal.offload import WriterProcess
from guard.model.artifact import LoadedModel
from guard.replay.engine import ReplayEngine, ReplayOptions
from guard.replay.history import SymbolHistory
from guard.replay.inline import run_to_end
from guard.replay.operator import OperatorPolicy, ScriptedOperator
from guard.replay.report import markdown, write_reports
from guard.replay.result import ReplayResult


async def _replay(
    tmp: Path, model: LoadedModel, histories: list[SymbolHistory], name: str, **options: Any
) -> tuple[ReplayResult, list[Event]]:
    policy = options.pop("policy", OperatorPolicy.APPROVE_ALL)
    config = options.pop("config", Config())
    engine = ReplayEngine(
        config, model, histories, ReplayOptions(ScriptedOperator(policy), **options), tmp / f"{name}.db"
    )
    result = await engine.run()
    return result, [e.event for e in read_entries(tmp / f"{name}.db")]


def _normalised(events: list[Event]) -> list[str]:
    """Event payloads with what differs between runs by design (pid, random journal id) blanked out."""
    journal_id = next(e.journal_id for e in events if isinstance(e, SessionStarted))
    out = []
    for e in events:
        text = codec.dumps(e).replace(journal_id, "JID")
        if isinstance(e, SessionStarted):
            text = json.dumps({**json.loads(text), "pid": 0})
        out.append(f"{type(e).__name__} {text}")
    return out


async def test_replay_lean_path_matches_every_event_worked(
    tmp_path: Path, model: LoadedModel, crashes: list[SymbolHistory]
) -> None:
    """Skipping provably idle market events gives the very journal that working every event gives."""
    options = {"leverage": Decimal(20), "stops": False, "resume_paused": True}
    lean, lean_events = await _replay(tmp_path, model, crashes, "lean", **options)
    full, full_events = await _replay(tmp_path, model, crashes, "full", lean=False, **options)
    assert lean.stats.liquidations > 0 and lean.stats.funding_payments > 0 and lean.stats.take_profits > 0
    assert lean.stats.groups_worked < full.stats.groups_worked / 5
    assert _normalised(lean_events) == _normalised(full_events)
    assert lean.final_equity == full.final_equity and lean.violations == full.violations == ()


async def test_replay_twice_gives_identical_journals(
    tmp_path: Path, model: LoadedModel, crashes: list[SymbolHistory]
) -> None:
    """The same bars, model and operator replayed twice make the same decisions and fills, event for event."""
    first, a = await _replay(tmp_path, model, crashes, "a", policy=OperatorPolicy.GUARDED)
    second, b = await _replay(tmp_path, model, crashes, "b", policy=OperatorPolicy.GUARDED)
    assert _normalised(a) == _normalised(b)
    assert first.final_equity == second.final_equity and first.stats.fills == second.stats.fills > 0
    assert verify(tmp_path / "a.db").ok


async def test_replay_forced_leverage_is_acknowledged_and_applied(
    tmp_path: Path, model: LoadedModel, crashes: list[SymbolHistory]
) -> None:
    """At 10x every entry goes out at exactly 10x, outside a recorded leverage acknowledgment, with no violation."""
    result, events = await _replay(tmp_path, model, crashes[:1], "lev", leverage=Decimal(10))
    acks = [e for e in events if isinstance(e, AcknowledgmentRecorded) and e.kind is AcknowledgmentKind.LEVERAGE]
    entries = [e.request for e in events if isinstance(e, OrderSubmitted) and e.request.purpose is OrderPurpose.ENTRY]
    assert acks and entries and all(r.leverage == Decimal(10) for r in entries)
    assert result.violations == () and result.leverage == "10"


async def test_replay_never_operator_trades_nothing(
    tmp_path: Path, model: LoadedModel, crashes: list[SymbolHistory]
) -> None:
    """The never operator rejects every proposal: no fill, and the equity is the starting balance to the cent."""
    result, events = await _replay(tmp_path, model, crashes[:1], "never", policy=OperatorPolicy.NEVER)
    assert result.stats.proposals > 0 and result.stats.rejected == result.stats.proposals
    assert not any(isinstance(e, OrderFilled) for e in events)
    assert result.pnl == 0 and result.max_drawdown == 0


async def test_replay_guarded_operator_approves_only_clean_confident_proposals(
    tmp_path: Path, model: LoadedModel, crashes: list[SymbolHistory]
) -> None:
    """Guarded approves only proposals whose checks all pass, at or above its confidence floor, never novel ones."""
    _, events = await _replay(tmp_path, model, crashes, "guarded", policy=OperatorPolicy.GUARDED)
    decisions = [e for e in events if isinstance(e, DecisionRecorded)]
    approved = [d.shown for d in decisions if d.kind is DecisionKind.APPROVE]
    assert approved and len(approved) < len(decisions)
    for p in approved:
        assert p.confidence >= 0.6 and not p.novel and all(c.verdict is Verdict.PASS for c in p.checks)


async def test_replay_reports_are_written(tmp_path: Path, model: LoadedModel, crashes: list[SymbolHistory]) -> None:
    """A replay's report directory holds Markdown, JSON with the headline figures, and an equity PNG."""
    result, _ = await _replay(tmp_path, model, crashes[:1], "report")
    md, js, png = write_reports(result, tmp_path / "report", ["crashes.csv"])
    data = json.loads(js.read_text())
    for key in ("pnl", "max_drawdown", "liquidations", "liquidation_rate", "hit_rate", "calibration", "by_leverage"):
        assert key in data
    assert "The model against its card" in md.read_text()
    assert png.read_bytes()[:4] == b"\x89PNG"


async def test_replay_report_says_when_the_model_was_trained_on_the_bars(
    tmp_path: Path, model: LoadedModel, crashes: list[SymbolHistory]
) -> None:
    """Bars from the data the model was built from flatter it: the report says how many, before any figure;
    bars from outside it carry no such warning."""
    outside = crashes[0]
    shift = model.training_end_ms - int(outside.open_times[1000])  # bars 0..999 now open before its data ends
    inside = dataclasses.replace(outside, open_times=outside.open_times + shift)
    result, _ = await _replay(tmp_path, model, [inside], "in-sample", policy=OperatorPolicy.NEVER)
    assert result.outlook.in_sample_bars == 1000
    text = markdown(result)
    warning = f"**In-sample: 1,000 of these {len(outside):,} bars"
    assert warning in text and text.index(warning) < text.index("| PnL |")
    assert outside.open_times[-1] < model.training_start_ms
    result, _ = await _replay(tmp_path, model, [outside], "out-of-sample", policy=OperatorPolicy.NEVER)
    assert result.outlook.in_sample_bars == 0 and "In-sample" not in markdown(result)


async def test_replay_report_says_why_nothing_was_proposed(
    tmp_path: Path, model: LoadedModel, crashes: list[SymbolHistory]
) -> None:
    """With a confidence floor the model never reaches, the report gives its highest confidence and the floor."""
    config = config_from_dict({"proposals": {"min_confidence": 0.99, "full_size_confidence": 1.0}})
    result, _ = await _replay(tmp_path, model, crashes[:1], "unsure", config=config)
    best = result.outlook.best_confidence
    assert result.stats.proposals == 0 and best is not None and best < 0.99
    text = markdown(result)
    assert f"**No proposals.** The model named a side on {result.outlook.sided_bars:,} bars, at most {best:.0%}" in text
    assert "below proposals.min_confidence (99%)" in text
    assert "No proposal settled at its horizon" in text and "None" not in text
    result, _ = await _replay(tmp_path, model, crashes[:1], "confident")
    assert result.stats.proposals > 0 and "No proposals" not in markdown(result)


def test_a_replay_stopped_while_its_journal_was_short_a_frame_raises_what_stopped_it(
    tmp_path: Path, model: LoadedModel, long_trend: SymbolHistory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Ctrl-C landing while a frame of events is handed to the journal's writer process stops the replay with the
    Ctrl-C (a command's exit 130), not with the journal's complaint that it ends a frame short; what the writer
    wrote verifies. (Closing the journal in a `finally` put "the writer wrote up to event N, not M" over it.)"""
    sends: list[int] = []
    send = WriterProcess.send

    def interrupted_second(self: WriterProcess, encoded: list[Any]) -> None:
        sends.append(len(encoded))
        if len(sends) == 2:
            raise KeyboardInterrupt
        send(self, encoded)

    monkeypatch.setattr(WriterProcess, "send", interrupted_second)
    path = tmp_path / "j.db"
    engine = ReplayEngine(
        Config(), model, [long_trend], ReplayOptions(ScriptedOperator(OperatorPolicy.APPROVE_ALL)), path
    )
    with pytest.raises(KeyboardInterrupt):
        run_to_end(engine.run())
    assert len(sends) == 2 and engine.journal.closed
    assert verify(path).ok
    written = [e.seq for e in read_entries(path)]
    assert written == list(range(1, len(written) + 1)) and written[-1] < engine.journal.last_seq
