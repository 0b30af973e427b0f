"""The shipped default model: loadable, honest about being synthetic, and within its targets."""

from __future__ import annotations

from pathlib import Path

from guard.model.artifact import load_model
from guard.model.card import SYNTHETIC_WARNING

DEFAULT = Path(__file__).resolve().parents[2] / "models" / "default"


def test_default_model_loads_and_says_it_is_synthetic() -> None:
    """models/default verifies, loads strictly, and its card says it is a demonstration."""
    model = load_model(DEFAULT)
    assert model.synthetic
    assert SYNTHETIC_WARNING in model.card
    assert "python -m guard.model.default" in model.card
    assert model.net.members >= 3
    assert sum(p.numel() for p in model.net.parameters()) <= 200_000


def test_default_model_metrics_meet_their_targets() -> None:
    """The shipped model's test-split ECE is at most 0.03 and its novelty AUROC at least 0.9."""
    metrics = load_model(DEFAULT).metrics
    assert metrics["ece"] <= 0.03
    assert metrics["novelty_auroc"] >= 0.9
    assert {"accuracy", "brier", "base_rate", "brier_baseline"} <= set(metrics)


def test_default_model_is_small() -> None:
    """The artifact stays well under 5 MB."""
    assert sum(p.stat().st_size for p in DEFAULT.iterdir()) < 1_000_000


def test_default_model_card_reports_real_shifts_beside_volatility() -> None:
    """The shipped card states the novelty AUROC on each real regime shift next to 60-bar volatility's."""
    model = load_model(DEFAULT)
    shifts = model.metrics["novelty_real_shifts"]
    chosen_on = [s for s in shifts if not s["held_out"]]
    assert [s["name"] for s in chosen_on] == ["GOOG 2008 crisis", "EURUSD January 2018"]
    for s in chosen_on:
        assert s["novelty_auroc"] > s["volatility_auroc"]
    # the held-out shifts are reported beside them, whatever they show
    assert [s["name"] for s in shifts if s["held_out"]] == ["GOOG May 2010", "GOOG August 2011", "EURUSD June 2017"]
    for s in shifts:
        assert f"| {s['novelty_auroc']:.3f} | {s['volatility_auroc']:.3f} |" in model.card
    assert "ECE of its directional calls" in model.card


def test_default_model_real_shift_figures_match_the_benchmark() -> None:
    """The card's real-shift figures are what guard.model.regimes measures today (one implementation)."""
    from guard.model.regimes import card_figures

    assert load_model(DEFAULT).metrics["novelty_real_shifts"] == card_figures()
