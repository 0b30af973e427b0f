"""`guard model eval`'s work: score a model over any history and measure how honest it is there.

The figures come from `guard.model.evaluation`, the code that fills the model card, so a
card's claims and an evaluation on your own data mean the same thing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from guard.errors import BadInput
from guard.features import WARMUP_BARS, FeatureSeries
from guard.model.artifact import LoadedModel
from guard.model.evaluation import (
    RegimeWindow,
    calibration_figures,
    most_volatile_stretch,
    novelty_auroc,
    regime_masks,
)
from guard.model.inference import NoveltyReference, forward_series, outputs
from guard.model.labels import LABELS, UNKNOWN, triple_barrier_labels
from guard.wording import utc_minute

Progress = Callable[[str, int, int], None]
"""on_progress(symbol, bars done, bars in the series)."""


@dataclass(frozen=True, slots=True, eq=False)
class Assessment:
    """What `guard model eval` found: figures, warnings and the per-bar table."""

    model_id: str
    metrics: dict[str, Any]
    warnings: tuple[str, ...]
    bars: dict[str, np.ndarray]
    """Per-bar columns of every series end to end (see `assess`)."""


def _no_window_reason(s: FeatureSeries) -> str:
    starts = np.append(s.segment_starts, len(s))
    longest = int(np.diff(starts).max())
    gaps = len(s.segment_starts) - 1
    if gaps:
        return (
            f"{s.symbol}: no window to score: {gaps:,} gaps split its {len(s):,} bars into runs of at most "
            f"{longest:,} contiguous bars, and the model needs {WARMUP_BARS} contiguous bars before its first "
            "answer (a market that closes, e.g. at weekends, needs its sessions joined first)"
        )
    return f"{s.symbol}: no window to score: {len(s):,} bars, and the model needs {WARMUP_BARS} contiguous bars"


def _chunk_progress(on_progress: Progress | None, symbol: str) -> Callable[[int, int], None] | None:
    if on_progress is None:
        return None

    def report(done: int, total: int) -> None:
        on_progress(symbol, done, total)

    return report


def assess(
    model: LoadedModel,
    series: Sequence[FeatureSeries],
    *,
    regime: RegimeWindow | None = None,
    cost: float,
    novelty_threshold: float,
    on_progress: Progress | None = None,
    notes: Sequence[str] = (),
) -> Assessment:
    """Score `model` over every series and measure it.

    Args:
        regime: the window novelty should flag; None finds each series' most volatile stretch.
        notes: warnings about the data from reading it (filled bars left out), reported first.
        cost: round-trip trading cost as a log-price distance (for the break-even hit rate).
        novelty_threshold: novelty at or above which a window counts as flagged.

    Raises:
        BadInput: when no series has a window to score, or no window has a known outcome.
    """
    if not series:
        raise BadInput("no data to evaluate on")
    warnings: list[str] = list(notes)
    ref = NoveltyReference.of(model.net)
    columns: dict[str, list[np.ndarray]] = {
        k: []
        for k in (
            "symbol",
            "open_time",
            "close",
            "p_down",
            "p_flat",
            "p_up",
            "side",
            "confidence",
            "novelty",
            "volatility",
            "barrier",
            "label",
            "regime",
            "ordinary",
        )
    }
    regimes_used: list[dict[str, Any]] = []
    unscored: list[str] = []
    bars_total = bars_scored = in_training = 0
    for s in series:
        bars_total += len(s)
        if s.timeframe != model.timeframe:
            warnings.append(
                f"{s.symbol}: {s.timeframe} bars, but the model was trained on {model.timeframe} bars: "
                "its horizon, barriers and novelty reference are in another unit of time"
            )
        if not s.ready.any():
            unscored.append(_no_window_reason(s))
            continue
        logits, _ = forward_series(model.net, s.rows, on_chunk=_chunk_progress(on_progress, s.symbol))
        statistic = ref.series(s)
        idx = np.flatnonzero(s.ready)
        out = outputs(logits[idx], statistic[idx], model.temperature, ref)
        labels = triple_barrier_labels(s.highs, s.lows, s.closes, s.sigma, s.segment_starts, model.barrier)
        try:
            window = regime if regime is not None else most_volatile_stretch(s)
        except ValueError as e:  # too short to hold a stretch apart from the rest
            warnings.append(f"no regime for {s.symbol}: {e}")
            window = RegimeWindow(-1, -1, "none")
        positive, negative = regime_masks(s, window)
        if window.how != "none":
            regimes_used.append(
                {"symbol": s.symbol, "start_ms": window.start_ms, "end_ms": window.end_ms, "how": window.how}
            )
        bars_scored += len(idx)
        times = s.open_times[idx]
        in_training += int(((times >= model.training_start_ms) & (times < model.training_end_ms)).sum())
        columns["symbol"].append(np.full(len(idx), s.symbol, dtype=object))
        columns["open_time"].append(times)
        columns["close"].append(s.closes[idx])
        for j, name in enumerate(("p_down", "p_flat", "p_up")):
            columns[name].append(out.probs[:, j])
        columns["side"].append(out.side)
        columns["confidence"].append(out.confidence)
        columns["novelty"].append(out.novelty)
        columns["volatility"].append(s.sigma[idx])
        columns["barrier"].append(model.barrier.k * s.sigma[idx] * math.sqrt(model.barrier.horizon_bars))
        columns["label"].append(labels[idx].astype(np.int8))
        columns["regime"].append(positive[idx])
        columns["ordinary"].append(negative[idx])
    if bars_scored == 0:
        raise BadInput("; ".join(unscored))
    warnings += [f"{reason}: left out" for reason in unscored]
    bars = {k: np.concatenate(v) for k, v in columns.items()}
    known = bars["label"] != UNKNOWN
    if not known.any():
        raise BadInput(
            f"no scored window has a known outcome: each needs {model.horizon_bars} more contiguous bars after it"
        )
    train_share = model.metrics.get("label_share_train")
    own = np.bincount(bars["label"][known].astype(np.int64), minlength=3) / known.sum()
    baseline = np.array([train_share[name] for name in LABELS]) if train_share else own
    figures = calibration_figures(
        np.stack([bars["p_down"], bars["p_flat"], bars["p_up"]], axis=1)[known],
        bars["label"][known],
        baseline_shares=baseline,
        barrier_width=bars["barrier"][known],
        cost=cost,
    )
    ordinary = bars["ordinary"]
    unseen = (bars["open_time"] < model.training_start_ms) | (bars["open_time"] >= model.training_end_ms)
    ordinary_kind = "all"
    if (ordinary & unseen).any():
        # in-sample windows are the least novel a model ever sees: compare with out-of-sample ones
        ordinary, ordinary_kind = ordinary & unseen, "outside the model's training data"
    elif ordinary.any() and in_training:
        warnings.append("every ordinary window lies in the model's training data: the novelty AUROC is flattered")
    bars["ordinary"] = ordinary
    novelty_figures: dict[str, Any]
    try:
        novelty_figures = novelty_auroc(bars["novelty"], bars["volatility"], bars["regime"], ordinary)
        novelty_figures["ordinary_kind"] = ordinary_kind
    except ValueError as e:
        novelty_figures = {
            "novelty_auroc": None,
            "volatility_auroc": None,
            "regime_windows": int(bars["regime"].sum()),
            "ordinary_windows": int(bars["ordinary"].sum()),
        }
        warnings.append(f"novelty AUROC not measured: {e}")
    if regime is None:
        warnings.append(
            "the regime was found as the most volatile stretch, which favours the volatility baseline by "
            "construction; give --regime-start and --regime-end for a regime you date yourself"
        )
    if in_training:
        warnings.append(
            f"{in_training:,} of {bars_scored:,} scored bars fall in the model's training data "
            f"({utc_minute(model.training_start_ms)} to {utc_minute(model.training_end_ms)}): "
            "figures there are in-sample and flatter the model"
        )
    if model.synthetic:
        warnings.append("the model was trained on synthetic data (guard's simulator)")
    if figures["directional"]["count"] == 0:
        warnings.append("the model named no side on any window: flat was likelier than up and down every time")
    metrics = {
        "model_id": model.model_id,
        "bars": bars_total,
        "scored": bars_scored,
        "scored_share": round(bars_scored / bars_total, 4),
        "in_training_data": in_training,
        "horizon_bars": model.horizon_bars,
        **figures,
        "label_share_baseline": "training" if train_share else "this data",
        "novelty": {
            **novelty_figures,
            "threshold": novelty_threshold,
            "flagged_share": round(float((bars["novelty"] >= novelty_threshold).mean()), 4),
            "median": round(float(np.median(bars["novelty"])), 4),
            "regimes": regimes_used,
        },
    }
    return Assessment(model.model_id, metrics, tuple(warnings), bars)


def write_assessment(assessment: Assessment, out: Path | str) -> list[Path]:
    """Write report.json, bars.parquet (per-bar probabilities, novelty, labels) and reliability.png."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    report = root / "report.json"
    report.write_text(
        json.dumps({"metrics": assessment.metrics, "warnings": list(assessment.warnings)}, indent=2) + "\n"
    )
    b = assessment.bars
    label = b["label"].astype(np.int64)
    table = pa.table(
        {
            "symbol": pa.array(b["symbol"].tolist(), pa.string()),
            "open_time": pa.array(b["open_time"], pa.int64()),
            "close": pa.array(b["close"], pa.float64()),
            "p_down": pa.array(b["p_down"], pa.float64()),
            "p_flat": pa.array(b["p_flat"], pa.float64()),
            "p_up": pa.array(b["p_up"], pa.float64()),
            "side": pa.array([LABELS[int(x)] for x in b["side"]], pa.string()),
            "confidence": pa.array(b["confidence"], pa.float64()),
            "novelty": pa.array(b["novelty"], pa.float64()),
            "volatility": pa.array(b["volatility"], pa.float64()),
            "label": pa.array([LABELS[int(x)] if x >= 0 else None for x in label], pa.string()),
            "in_regime": pa.array(b["regime"], pa.bool_()),
            "ordinary": pa.array(b["ordinary"], pa.bool_()),
        }
    )
    bars_path = root / "bars.parquet"
    pq.write_table(table, bars_path)
    png = root / "reliability.png"
    _plot(assessment.metrics, png)
    return [report, bars_path, png]


def _plot(metrics: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    panels = (
        (
            axes[0],
            metrics["directional"]["buckets"],
            "directional calls (confidence in the side)",
            metrics.get("ece_directional"),
        ),
        (axes[1], metrics["reliability"], "top answer, all three outcomes", metrics.get("ece")),
    )
    for ax, buckets, title, ece in panels:
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
        if buckets:
            conf = [b["confidence"] for b in buckets]
            hit = [b["hit_rate"] for b in buckets]
            sizes = [max(10.0, 300.0 * b["count"] / max(c["count"] for c in buckets)) for b in buckets]
            ax.scatter(conf, hit, s=sizes, color="tab:blue", zorder=3, label="bucket (area: windows)")
            ax.plot(conf, hit, color="tab:blue", linewidth=1)
        else:
            ax.text(0.5, 0.5, "no such calls", ha="center", va="center", transform=ax.transAxes)
        ece_text = "–" if ece is None else f"{ece:.4f}"
        ax.set_title(f"{title}\nECE {ece_text}", fontsize=10)
        ax.set_xlabel("stated confidence")
        ax.set_ylabel("came true")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle(f"Reliability of {metrics['model_id']}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
