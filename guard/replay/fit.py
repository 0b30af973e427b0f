"""Whether the model fits the bars it is replayed on, said before any figure.

A model trained on the simulator's minutes and replayed on 2017's real candles is guessing, and a report
that does not say so flatters it. `model_outlook` measures, over the whole history and before any policy:
what the model said (sides, confidence), how many bars it could score at all (a window needs enough bars
without a gap), how novel the bars looked to it, which bars were past the model's age limit (measured on
the bars' own time, as the live predictor measures it on the clock: there it proposes nothing), and
whether the bars are the market, timeframe and period it was trained on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from guard.model.artifact import LoadedModel
from guard.model.labels import FLAT
from guard.model.runner import ReplaySignals
from guard.replay.history import SymbolHistory
from guard.replay.result import ModelOutlook, NoveltySpread
from guard.timeframes import timeframe_ms
from guard.wording import utc_minute

DAY_MS = 86_400_000
NOVELTY_QUANTILES = (0.1, 0.5, 0.9, 0.99)
SCORED_ENOUGH = 0.9
"""Below this share of bars scored the banner says so (the first window's bars are never scored)."""
NOVEL_TOO_MANY = 0.25
"""At or above this share of scored bars flagged novel the banner says so (ordinary data flags a few)."""


def young_enough(model: LoadedModel, open_times: np.ndarray, max_age_days: float) -> np.ndarray:
    """bool per bar: the model is no older than `max_age_days` at the bar's close (its age on the bars' time)."""
    closes = open_times + timeframe_ms(model.timeframe)
    return np.asarray((closes - model.training_end_ms) <= max_age_days * DAY_MS)


def model_outlook(
    model: LoadedModel,
    symbols: Sequence[tuple[SymbolHistory, ReplaySignals]],
    min_confidence: float,
    max_age_days: float,
) -> ModelOutlook:
    """What the model said over the whole history, and how well it fits these bars."""
    sided = [sig.confidence[sig.ready & (sig.side != FLAT)] for _, sig in symbols]
    confident = [sig.ready & (sig.side != FLAT) & (sig.confidence >= min_confidence) for _, sig in symbols]
    young = [young_enough(model, h.open_times, max_age_days) for h, _ in symbols]
    novelty = np.concatenate([sig.novelty[sig.ready] for _, sig in symbols]) if symbols else np.zeros(0)
    novel = sum(int(np.count_nonzero(sig.novel & sig.ready)) for _, sig in symbols)
    scored = sum(int(np.count_nonzero(sig.ready)) for _, sig in symbols)
    config = model.info.config
    source = config.get("data_source") or {}
    trained_symbols = tuple(dict.fromkeys(config.get("symbols") or ()))
    return ModelOutlook(
        sided_bars=sum(len(c) for c in sided),
        confident_bars=sum(int(np.count_nonzero(c)) for c in confident),
        best_confidence=max((float(c.max()) for c in sided if len(c)), default=None),
        min_confidence=min_confidence,
        in_sample_bars=sum(
            int(np.count_nonzero((h.open_times >= model.training_start_ms) & (h.open_times < model.training_end_ms)))
            for h, _ in symbols
        ),
        training_start_ms=model.training_start_ms,
        training_end_ms=model.training_end_ms,
        bars=sum(len(h) for h, _ in symbols),
        scored_bars=scored,
        novelty=NoveltySpread(
            tuple(float(q) for q in np.quantile(novelty, NOVELTY_QUANTILES)) if len(novelty) else (),
            novel / scored if scored else None,
        ),
        too_old_bars=sum(int(np.count_nonzero(c & ~y)) for c, y in zip(confident, young, strict=True)),
        max_age_days=max_age_days,
        synthetic=bool(source.get("synthetic", False)),
        trained_on=str(source.get("description", "")),
        trained_symbols=trained_symbols,
        first_ms=min((int(h.open_times[0]) for h, _ in symbols), default=0),
        last_ms=max((int(h.open_times[-1]) for h, _ in symbols), default=0),
        symbols=tuple(h.symbol for h, _ in symbols),
    )


def fit_warnings(o: ModelOutlook) -> list[str]:
    """Each way the model does not fit the bars, as a sentence (empty when it fits)."""
    out = []
    if o.synthetic:
        out.append(f"it was trained on synthetic data ({o.trained_on or 'a simulation'}), not on real market data")
    unseen = [s for s in o.symbols if s not in o.trained_symbols]
    if unseen and o.trained_symbols:
        out.append(f"it never saw {', '.join(unseen)} (it was trained on {', '.join(o.trained_symbols)})")
    window = f"{utc_minute(o.training_start_ms)} to {utc_minute(o.training_end_ms)}"
    if o.last_ms < o.training_start_ms:
        out.append(f"its data ({window}) comes after every one of these bars: it was built knowing what came later")
    elif o.first_ms >= o.training_end_ms:
        out.append(f"its data ({window}) ends before these bars begin ({utc_minute(o.first_ms)})")
    if o.bars and o.scored_bars < SCORED_ENOUGH * o.bars:
        out.append(
            f"it could score only {o.scored_bars / o.bars:.0%} of the bars ({o.scored_bars:,} of {o.bars:,}): "
            "a bar is scored only with a full window of bars before it and no gap in it"
        )
    if o.novelty.novel_share is not None and o.novelty.novel_share >= NOVEL_TOO_MANY:
        out.append(f"{o.novelty.novel_share:.0%} of the bars it scored looked novel to it: there it is guessing")
    if o.too_old_bars:
        out.append(
            f"on {o.too_old_bars:,} bars where it was confident it was older than model.max_age_days = "
            f"{o.max_age_days:g} (measured on the bars' time): as live, it proposed nothing there"
        )
    return out


def fit_banner(o: ModelOutlook) -> list[str]:
    """The report's banner: a Markdown quote listing how the model does not fit the bars ([] when it does)."""
    warnings = fit_warnings(o)
    if not warnings:
        return []
    return [
        "> **The model does not fit these bars:**",
        *[f"> - {w};" for w in warnings[:-1]],
        f"> - {warnings[-1]}.",
        "",
    ]
