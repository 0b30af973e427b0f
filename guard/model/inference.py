"""From rows to calibrated probabilities, novelty and a "why": the numbers behind a Signal.

Used by training (to evaluate), by the predictor's worker thread (a few windows) and by
fast replay (whole series). Everything here is synchronous and runs wherever it is called;
callers own the thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from guard.features import FEATURES, FeatureSeries, FeatureWindow
from guard.model import novelty
from guard.model.labels import DOWN, FLAT, LABELS, UP
from guard.model.network import EnsembleTCN
from guard.timeframes import timeframe_ms

SERIES_CHUNK = 16_384
"""Outputs per forward pass over a long series (bounds memory at ~10 MB per chunk)."""


@dataclass(frozen=True, slots=True, eq=False)
class Outputs:
    """Per-input results, as arrays aligned with the inputs."""

    probs: np.ndarray
    """(N, 3) calibrated (down, flat, up)."""
    side: np.ndarray
    """(N,) int8: UP, DOWN, or FLAT for "no trade"."""
    confidence: np.ndarray
    """(N,) probability of the side (of flat when there is no side)."""
    distance: np.ndarray
    """(N,) the novelty statistic's distance from the training windows' (the larger squared z-score)."""
    novelty: np.ndarray
    """(N,) percentile 0..1 against the validation reference."""


@dataclass(frozen=True, slots=True, eq=False)
class NoveltyReference:
    """The network's novelty buffers as float64 numpy arrays (read once, not per call)."""

    fitted: novelty.Reference
    distance: np.ndarray
    distance_increasing: np.ndarray
    """`distance` made strictly increasing once, for `novelty.percentile`."""

    @classmethod
    def of(cls, net: EnsembleTCN) -> NoveltyReference:
        """Copy the reference out of a network's buffers."""
        distance = net.novelty_ref_distance.double().numpy().copy()
        fitted = novelty.Reference(
            hour_scale=net.novelty_hour_scale.double().numpy().copy(),
            bar_quantiles=np.ascontiguousarray(net.novelty_bar_quantiles.double().numpy()),
            mean=net.novelty_mean.double().numpy().copy(),
            spread=net.novelty_spread.double().numpy().copy(),
        )
        return cls(fitted, distance, novelty.increasing(distance))

    def windows(self, windows: Sequence[FeatureWindow]) -> np.ndarray:
        """The novelty statistic of live windows: (N, N_STAT)."""
        if not windows:
            return np.empty((0, novelty.N_STAT))
        returns = np.stack([w.returns for w in windows])
        last_open = np.array([w.open_time for w in windows], dtype=np.int64)
        step = np.array([timeframe_ms(w.timeframe) for w in windows], dtype=np.int64)
        return novelty.window_statistic(returns, last_open, step, self.fitted)

    def series(self, series: FeatureSeries) -> np.ndarray:
        """The novelty statistic of the window ending at each bar of a series (NaN where none ends)."""
        return novelty.series_statistic(series.returns, series.open_times, self.fitted)


def forward_windows(net: EnsembleTCN, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Logits (N, members, 3) and embeddings (N, D) for (N, WINDOW, F) windows, at the last bar."""
    x = torch.from_numpy(np.array(windows, dtype=np.float32)).transpose(1, 2)
    with torch.inference_mode():
        logits, emb = net(x)
    return logits[..., -1].numpy(), emb[..., -1].numpy()


def forward_series(
    net: EnsembleTCN,
    rows: np.ndarray,
    chunk: int = SERIES_CHUNK,
    on_chunk: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Logits (T, members, 3) and embeddings (T, D) for every bar of a (T, F) row array.

    Output `t` is what the window ending at bar `t` gives; it is meaningful only where a full
    window ends there (`FeatureSeries.ready`). Rows that are NaN (warm-up) are read as the
    training mean, so they cannot poison neighbouring outputs. `on_chunk(done, total)` is
    called after each chunk (a progress bar for long histories).
    """
    t = len(rows)
    model_pass = SeriesPass(net, rows, chunk)
    logits = np.empty((t, net.members, 3), dtype=np.float32)
    emb = np.empty((t, net.embedding_dim), dtype=np.float32)
    for start, stop in model_pass.chunks():
        logits[start:stop], emb[start:stop] = model_pass.forward(start, stop)
        if on_chunk is not None:
            on_chunk(stop, t)
    return logits, emb


class SeriesPass:
    """The network over a history one chunk of bars at a time, without holding every chunk's activations at once
    (`forward_series` runs the chunks in order).

    Any thread may run a chunk, and several may run at once: torch releases the interpreter inside the network,
    so on two cores two chunks run side by side. A chunk reads only its bars and the receptive field before them, with
    the intra-op thread count the caller set, so every bar gets the same numbers bit for bit whichever thread runs it.
    """

    def __init__(self, net: EnsembleTCN, rows: np.ndarray, chunk: int = SERIES_CHUNK) -> None:
        self._net = net
        self._padded = _padded(net, rows)
        self._bars = len(rows)
        self._chunk = chunk

    def chunks(self) -> list[tuple[int, int]]:
        """Each chunk's bars, as (first, past the last)."""
        return [(start, min(start + self._chunk, self._bars)) for start in range(0, self._bars, self._chunk)]

    def forward(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """One chunk's logits (stop - start, members, 3) and embeddings (stop - start, D), as views."""
        rf = self._net.receptive_field
        with torch.inference_mode():  # thread-local: entered by whichever thread runs the chunk
            lg, em = self._net(torch.from_numpy(self._padded[:, start : stop + rf - 1])[None])
        return lg[0].permute(2, 0, 1).numpy(), em[0].T.numpy()

    def logits(self, start: int, stop: int) -> np.ndarray:
        """One chunk's logits (stop - start, members, 3)."""
        return self.forward(start, stop)[0]


def _padded(net: EnsembleTCN, rows: np.ndarray) -> np.ndarray:
    """(F, T + receptive field - 1) float32: the rows channel-first (so each chunk is a view rather than a
    transposed copy), led by the training mean, with NaN rows (warm-up) read as the mean."""
    rf = net.receptive_field
    mean = net.norm_mean.numpy().astype(np.float32)
    padded = np.empty((rows.shape[1], len(rows) + rf - 1), dtype=np.float32)
    padded[:, : rf - 1] = mean[:, None]
    padded[:, rf - 1 :] = rows.T
    nan = np.isnan(padded)
    if nan.any():
        np.copyto(padded, mean[:, None], where=nan)
    return padded


def calibrated_probs(logits: np.ndarray, temperature: float) -> np.ndarray:
    """The ensemble's calibrated probabilities (N, 3) from (N, members, 3) logits (float32, in torch)."""
    with torch.inference_mode():
        lg = torch.from_numpy(np.ascontiguousarray(logits, dtype=np.float32))
        probs = torch.softmax(lg / temperature, dim=-1).mean(dim=1)
    return probs.double().numpy()


def novelty_scores(statistic: np.ndarray, ref: NoveltyReference) -> tuple[np.ndarray, np.ndarray]:
    """Distance and novelty percentile of (N, N_STAT) statistics."""
    dist = novelty.distance(statistic, ref.fitted.mean, ref.fitted.spread)
    score = novelty.percentile(dist, ref.distance_increasing, prepared=True)
    # a window with no statistic (it cannot happen for a ready window) counts as novel, never as ordinary
    return dist, np.where(np.isnan(score), 1.0, score)


def outputs(logits: np.ndarray, statistic: np.ndarray, temperature: float, ref: NoveltyReference) -> Outputs:
    """Calibrated probabilities, side, confidence and novelty from network outputs and the novelty statistic."""
    probs = calibrated_probs(logits, temperature)
    side = np.where(probs[:, UP] >= probs[:, DOWN], UP, DOWN).astype(np.int8)
    side = np.where(probs[:, FLAT] > np.maximum(probs[:, UP], probs[:, DOWN]), FLAT, side).astype(np.int8)
    confidence = probs[np.arange(len(probs)), side]
    dist, score = novelty_scores(statistic, ref)
    return Outputs(probs, side, confidence, dist, score)


def explain(net: EnsembleTCN, windows: np.ndarray, sides: np.ndarray, temperature: float, top: int = 2) -> list[str]:
    """A short "why" per window: the features that pushed hardest towards or against its side.

    Gradient × input of the side's calibrated log-probability with respect to the
    standardised window (so the baseline is the training mean), summed over the window's
    bars: positive pushed towards the side, negative against it. Windows whose side is
    FLAT get "". Costs a forward and a backward pass: callers explain only what may be shown.
    """
    whys = [""] * len(windows)
    chosen = np.flatnonzero(sides != FLAT)
    if len(chosen) == 0:
        return whys
    x = torch.from_numpy(np.array(windows[chosen], dtype=np.float32)).transpose(1, 2)
    std = net.norm_std[None, :, None]
    mean = net.norm_mean[None, :, None]
    with torch.enable_grad():
        z = ((x - mean) / std).detach().requires_grad_(True)
        logits, _ = net(z * std + mean)
        probs = torch.softmax(logits[..., -1] / temperature, dim=-1).mean(dim=1)
        side = torch.from_numpy(sides[chosen].astype(np.int64))
        picked = torch.log(probs.gather(1, side[:, None]).clamp_min(1e-12)).sum()
        (grad,) = torch.autograd.grad(picked, z)
    contrib = (grad * z).sum(dim=2).detach().numpy()
    for row, i in zip(contrib, chosen, strict=True):
        whys[i] = _why(row, int(sides[i]), top)
    return whys


def _why(contrib: np.ndarray, side: int, top: int) -> str:
    order = np.argsort(-np.abs(contrib))[:top]
    parts = [f"{FEATURES[j].phrase} ({'for' if contrib[j] > 0 else 'against'})" for j in order if contrib[j] != 0]
    return f"{LABELS[side]}: " + ", ".join(parts) if parts else LABELS[side]
