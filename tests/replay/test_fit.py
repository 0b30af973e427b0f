"""The replay report says when the model does not fit the bars: synthetic training data, another market or
period, bars it could not score, novel bars, and the model-age gate applied on the bars' time, as live."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
from msgspec.structs import replace

from guard.config import Config, config_from_dict
from guard.markets import default_spec
from guard.model.artifact import LoadedModel
from guard.replay.engine import ReplayEngine, ReplayOptions
from guard.replay.history import SymbolHistory
from guard.replay.operator import OperatorPolicy, ScriptedOperator
from guard.replay.report import markdown, to_plain
from guard.replay.result import ReplayResult
from guard.sim.process import generate_history

DAY = 86_400_000
T0 = 1_767_225_600_000


def _history(symbol: str, start_ms: int, n: int = 1_500) -> SymbolHistory:
    bars = generate_history([symbol], start_ms, n, scenario="trend", seed=31)[symbol]
    return SymbolHistory.from_bars(bars)


async def _run(
    tmp: Path, model: LoadedModel, histories: list[SymbolHistory], config: Config | None = None
) -> ReplayResult:
    options = ReplayOptions(ScriptedOperator(OperatorPolicy.APPROVE_ALL))
    xrp = replace(default_spec("BTC/USDT:USDT"), symbol="XRP/USDT:USDT", base="XRP", tick_size=Decimal("0.0001"))
    engine = ReplayEngine(config or Config(), model, histories, options, tmp / "j.db", {xrp.symbol: xrp})
    return await engine.run()


async def test_report_banner_names_synthetic_training_another_market_and_a_later_period(
    tmp_path: Path, model: LoadedModel
) -> None:
    """The shipped model (simulated BTC, ETH, SOL, Oct–Nov 2026) on XRP bars of January 2026: the banner says
    synthetic, never saw XRP, and its data comes after these bars; the figures give scored share and novelty."""
    result = await _run(tmp_path, model, [_history("XRP/USDT:USDT", T0)])
    text = markdown(result)
    assert "**The model does not fit these bars:**" in text
    assert "trained on synthetic data" in text
    assert "it never saw XRP/USDT:USDT" in text
    assert "comes after every one of these bars" in text
    fit = to_plain(result)["model_fit"]
    assert 0.9 < fit["scored_fraction"] < 1  # the first window's bars cannot be scored
    assert set(fit["novelty_quantiles"]) == {"p10", "p50", "p90", "p99"}
    assert 0 <= fit["novel_share"] <= 1 and fit["too_old_bars"] == 0
    assert "novelty p10/p50/p90/p99" in text


async def test_model_age_gate_applies_on_bar_time(tmp_path: Path, model: LoadedModel) -> None:
    """Bars 60 days after the model's data ends, under max_age_days = 30: no proposal, and the report says why;
    with max_age_days = 90 the same bars propose."""
    later = _history("BTC/USDT:USDT", model.training_end_ms + 60 * DAY)
    gated = await _run(tmp_path / "a", model, [later])
    assert gated.stats.proposals == 0 and gated.outlook.too_old_bars == gated.outlook.confident_bars > 0
    text = markdown(gated)
    assert "older than model.max_age_days = 30" in text and "an expired model proposes nothing" in text
    lenient = await _run(tmp_path / "b", model, [later], config_from_dict({"model": {"max_age_days": 90}}))
    assert lenient.stats.proposals > 0 and lenient.outlook.too_old_bars == 0


async def test_gaps_lower_the_share_of_bars_scored_and_the_banner_says_so(tmp_path: Path, model: LoadedModel) -> None:
    """A history with a gap every 50 bars leaves most windows unscorable: the banner gives the share."""
    h = _history("BTC/USDT:USDT", T0, 3_000)
    keep = np.arange(len(h)) % 50 != 0
    gappy = SymbolHistory(
        h.symbol,
        h.timeframe,
        h.open_times[keep],
        h.opens[keep],
        h.highs[keep],
        h.lows[keep],
        h.closes[keep],
        h.volumes[keep],
    )
    result = await _run(tmp_path, model, [gappy])
    assert result.outlook.scored_bars < 0.5 * result.outlook.bars
    assert "it could score only" in markdown(result)
