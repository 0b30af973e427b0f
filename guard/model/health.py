"""How the model is doing, as one value the daemon, the API and the TUI can show (no torch here)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ModelHealth:
    """A snapshot of the predictor: whether the model may propose, and why not."""

    model_id: str
    model_hash: str
    age_days: float
    """Days from the end of the model's data to now."""
    expired: bool
    expired_reason: str
    """Why the model is too old to propose, or ""."""
    paused: bool
    paused_reason: str
    """Why the model was paused (its live record fell below its claim, or an operator), or ""."""
    busy: bool
    """An inference is running (possibly one that timed out and has not returned)."""
    last_latency_ms: float | None
    """Wall time of the last completed inference."""
    inferences: int
    timeouts: int
    errors: int
    dropped: int
    """Requests superseded by a newer one before they ran (stale inputs)."""
    last_error: str
    last_novelty: float | None
    """The highest novelty in the last batch."""
    synthetic: bool = False
    """The model was trained on synthetic data (a demonstration)."""

    @property
    def proposing(self) -> bool:
        """The model may produce signals."""
        return not (self.expired or self.paused)

    @property
    def reason(self) -> str:
        """Why the model is not proposing, or ""."""
        return self.expired_reason or self.paused_reason
