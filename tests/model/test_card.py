"""The model card: its verdict is worded from its numbers, and it says what the model did not do."""

from __future__ import annotations

from typing import Any

from hypothesis import given, strategies as st

from guard.model.card import _directional_section, _real_shifts, verdict

rate = st.floats(min_value=0.2, max_value=0.8)
brier = st.floats(min_value=0.4, max_value=0.8)


@given(accuracy=rate, base=rate, model_brier=brier, baseline_brier=brier)
def test_card_verdict_never_contradicts_its_numbers(
    accuracy: float, base: float, model_brier: float, baseline_brier: float
) -> None:
    """Whatever the figures, the verdict's comparisons agree with them, and 'No edge' means no clear win."""
    text = verdict({"accuracy": accuracy, "base_rate": base, "brier": model_brier, "brier_baseline": baseline_brier})
    if model_brier > baseline_brier + 0.005:
        assert "is worse than predicting" in text
    elif model_brier < baseline_brier - 0.005:
        assert "is better than predicting" in text
    else:
        assert "is no better than predicting" in text
    if accuracy > base + 0.02:
        assert "— better than the" in text
    elif accuracy < base - 0.02:
        assert "— worse than the" in text
    clear_win = accuracy > base + 0.02 and model_brier < baseline_brier - 0.005
    assert text.startswith("**No edge.**") != clear_win


def test_card_verdict_better_brier_is_not_called_no_better() -> None:
    """The contradiction once shipped — 'no better' beside a better Brier — cannot be written."""
    text = verdict({"accuracy": 0.471, "base_rate": 0.46, "brier": 0.618, "brier_baseline": 0.664})
    assert text.startswith("**No edge.**")
    assert "(0.618) is better than predicting the training frequencies (0.664)" in text


def _metrics(**directional: Any) -> dict[str, Any]:
    return {
        "test_windows": 1234,
        "directional": {"share": 0.0, "count": 0, "buckets": [], "hit_rate": None, **directional},
    }


def test_card_says_plainly_when_no_side_was_named() -> None:
    """An empty per-confidence table is replaced by a sentence saying the model named no side."""
    text = "\n".join(_directional_section(_metrics()))
    assert "It named no side on any of its 1,234 test windows" in text
    assert "| confidence |" not in text


def test_card_reports_hit_rate_against_break_even() -> None:
    """Where it named sides, the card compares the decided hit rate with the break-even after costs."""
    bucket = {"lo": 0.55, "hi": 0.6, "count": 40, "confidence": 0.57, "hit_rate": 0.5}
    text = "\n".join(
        _directional_section(
            _metrics(
                share=0.1,
                count=40,
                buckets=[bucket],
                hit_rate=0.5,
                decided=30,
                decided_hit_rate=0.55,
                break_even_hit_rate=0.6,
                cost_bps=12.0,
            )
        )
    )
    assert "| 0.55–0.60 | 40 | 57.0 % | 50.0 % |" in text
    assert "55.0 % reached its side's first — not above the 60.0 %" in text


def test_card_real_shifts_beside_volatility_or_says_not_measured() -> None:
    """The real regime-shift AUROC is printed with the volatility baseline's, or its absence is explained."""
    shift = {
        "name": "GOOG 2008 crisis",
        "start": "2008-09-15",
        "end": "2009-03-09",
        "timeframe": "1d",
        "novelty_auroc": 0.9985,
        "volatility_auroc": 0.9517,
    }
    text = "\n".join(_real_shifts({"novelty_real_shifts": [shift]}))
    assert "| GOOG 2008 crisis (2008-09-15 to 2009-03-09, 1d) | 0.999 | 0.952 |" in text
    assert "not measured" in "\n".join(_real_shifts({"novelty_real_shifts": None}))
