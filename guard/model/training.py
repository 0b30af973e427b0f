"""Training: features and labels in, a calibrated ensemble with honest test metrics out.

The split is chronological and shared by every symbol: the first 70 % of the time range
trains, the next 15 % validates (early stopping, temperature, novelty reference), the last
15 % tests. Between splits an embargo of H + WARMUP_BARS bars is dropped, so no bar that a
training label looked at is ever inside a later window, and no label crosses a split.

Metrics are measured once, on the test split, after every choice has been made.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import structlog
import torch
import torch.nn.functional as F

from guard.errors import BadInput
from guard.features import N_FEATURES, WARMUP_BARS, FeatureSeries, build_series_arrays
from guard.model import calibration, novelty
from guard.model.evaluation import calibration_figures
from guard.model.inference import NoveltyReference, forward_series, outputs
from guard.model.labels import LABELS, UNKNOWN, BarrierParams, triple_barrier_labels
from guard.model.network import N_QUANTILES, EnsembleTCN, parameter_count
from guard.model.synthetic import scale_volatility
from guard.timeframes import timeframe_ms

log = structlog.get_logger(__name__)

MAX_PARAMETERS = 200_000


@dataclass(frozen=True, slots=True)
class TrainParams:
    """Everything that shapes a trained model besides its data."""

    epochs: int = 60
    seed: int = 7
    channels: int = 24
    members: int = 3
    kernel_size: int = 4
    dilations: tuple[int, ...] = (1, 4, 16)
    barrier: BarrierParams = field(default_factory=BarrierParams)
    train_share: float = 0.70
    val_share: float = 0.15
    chunk: int = 128
    """Consecutive outputs per training sample (one forward pass covers all of them)."""
    batch_size: int = 32
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 8
    """Epochs without a better validation NLL before stopping."""
    threads: int = 2
    """torch threads while training (results are reproducible for a given count)."""
    shift_factor: float = 5.0
    """Volatility multiplier of the held-out regime-shift windows used to test novelty."""
    novelty_threshold: float = 0.95
    max_reference: int = 50_000
    """Cap on windows used to fit the novelty reference (a random, seeded subsample)."""
    cost_bps: float = 12.0
    """Round-trip cost of a trade in bps (taker fee and slippage, both ways) for the break-even hit rate."""


@dataclass(frozen=True, slots=True)
class Progress:
    """One training step, for a progress bar."""

    epoch: int
    epochs: int
    step: int
    steps: int
    train_loss: float
    val_nll: float | None
    best_epoch: int
    epoch_done: bool = False
    """This update follows the epoch's validation pass."""


@dataclass(frozen=True, slots=True, eq=False)
class TrainResult:
    """A trained, calibrated model and what is known about it."""

    net: EnsembleTCN
    temperature: float
    norm_mean: np.ndarray
    norm_std: np.ndarray
    params: TrainParams
    timeframe: str
    symbols: tuple[str, ...]
    metrics: dict[str, object]
    splits: dict[str, object]
    """Boundaries (ms), window counts and embargo of the train/validation/test split."""
    history: tuple[tuple[float, float], ...]
    """(train loss, validation NLL) per epoch."""
    best_epoch: int
    seconds: float


@dataclass(frozen=True, slots=True, eq=False)
class _Data:
    rows: np.ndarray
    """(N, F) raw rows of every series end to end, NaN where not defined."""
    labels: np.ndarray
    split: np.ndarray
    """-1 unused, 0 train, 1 validation, 2 test."""
    close_times: np.ndarray
    sigma: np.ndarray
    """(N,) per-bar σ (NaN during warm-up)."""
    returns: np.ndarray
    """(N,) one-bar log returns (NaN at each segment's first bar)."""
    open_times: np.ndarray
    offsets: tuple[int, ...]
    boundaries: tuple[int, int]
    embargo_ms: int


def train(
    series: Sequence[FeatureSeries],
    params: TrainParams,
    on_progress: Callable[[Progress], None] | None = None,
) -> TrainResult:
    """Train, calibrate and evaluate an ensemble on the given series.

    Raises:
        BadInput: when the data cannot make a model (mixed timeframes, too little data).
    """
    started = time.monotonic()
    old_threads = torch.get_num_threads()
    torch.set_num_threads(params.threads)
    try:
        return _train(series, params, on_progress, started)
    finally:
        torch.set_num_threads(old_threads)


def _train(
    series: Sequence[FeatureSeries],
    params: TrainParams,
    on_progress: Callable[[Progress], None] | None,
    started: float,
) -> TrainResult:
    if not series:
        raise BadInput("no training data")
    timeframes = {s.timeframe for s in series}
    if len(timeframes) != 1:
        raise BadInput(f"training data mixes timeframes {sorted(timeframes)}: one model, one timeframe")
    timeframe = series[0].timeframe
    data = _prepare(series, params)
    counts = {name: int((data.split == i).sum()) for i, name in enumerate(("train", "validation", "test"))}
    for name, n in counts.items():
        if n < 200:
            raise BadInput(f"only {n} {name} windows: {_shortage(series, params.barrier.horizon_bars)}")
    torch.manual_seed(params.seed)
    rng = np.random.default_rng(params.seed)
    net = EnsembleTCN(N_FEATURES, params.channels, params.members, params.kernel_size, params.dilations)
    if parameter_count(net) > MAX_PARAMETERS:
        raise BadInput(f"{parameter_count(net)} parameters: the model must stay under {MAX_PARAMETERS}")
    train_rows = data.rows[data.split == 0]
    mean = np.nanmean(train_rows, axis=0).astype(np.float64)
    std = np.nanstd(train_rows, axis=0).astype(np.float64)
    std = np.where(std > 1e-12, std, 1.0)  # a constant feature (funding absent) passes through unscaled
    net.set_normalisation(torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32))

    clean = np.where(np.isnan(data.rows), mean[None, :], data.rows).astype(np.float32)
    rf = net.receptive_field
    padded = np.concatenate((np.repeat(mean[None, :].astype(np.float32), rf - 1, axis=0), clean))
    train_targets = np.where(data.split == 0, data.labels, UNKNOWN).astype(np.int64)
    val_mask = data.split == 1

    optimiser = torch.optim.AdamW(net.parameters(), lr=params.learning_rate, weight_decay=params.weight_decay)
    best_nll, best_epoch, best_state = math.inf, 0, copy.deepcopy(net.state_dict())
    history: list[tuple[float, float]] = []
    n = len(clean)
    for epoch in range(1, params.epochs + 1):
        phase = int(rng.integers(params.chunk))
        starts = np.arange(phase, n - params.chunk + 1, params.chunk)
        starts = starts[[(train_targets[s : s + params.chunk] >= 0).any() for s in starts]]
        rng.shuffle(starts)
        batches = [starts[i : i + params.batch_size] for i in range(0, len(starts), params.batch_size)]
        net.train()
        losses = []
        for step, batch in enumerate(batches, 1):
            x = torch.from_numpy(np.stack([padded[s : s + params.chunk + rf - 1] for s in batch])).transpose(1, 2)
            y = torch.from_numpy(np.stack([train_targets[s : s + params.chunk] for s in batch]))
            logits, _ = net(x)
            b, m, _, length = logits.shape
            target = y[:, None, :].expand(b, m, length).reshape(-1)
            loss = F.cross_entropy(logits.permute(0, 1, 3, 2).reshape(-1, 3), target, ignore_index=UNKNOWN)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimiser.step()
            losses.append(loss.item())
            if on_progress is not None:
                on_progress(
                    Progress(
                        epoch,
                        params.epochs,
                        step,
                        len(batches),
                        float(np.mean(losses)),
                        history[-1][1] if history else None,
                        best_epoch,
                    )
                )
        net.eval()
        logits_all, _ = forward_series(net, data.rows)
        val_nll = calibration.nll(calibration.ensemble_probs(logits_all[val_mask]), data.labels[val_mask])
        history.append((float(np.mean(losses)), val_nll))
        if val_nll < best_nll - 1e-5:
            best_nll, best_epoch, best_state = val_nll, epoch, copy.deepcopy(net.state_dict())
        log.debug("train.epoch", epoch=epoch, train_loss=history[-1][0], val_nll=val_nll)
        if on_progress is not None:
            on_progress(
                Progress(
                    epoch,
                    params.epochs,
                    len(batches),
                    len(batches),
                    history[-1][0],
                    val_nll,
                    best_epoch,
                    epoch_done=True,
                )
            )
        if epoch - best_epoch >= params.patience:
            break
    net.load_state_dict(best_state)
    net.eval()

    logits_all, _ = forward_series(net, data.rows)
    temperature = calibration.fit_temperature(logits_all[val_mask], data.labels[val_mask])
    statistic = _fit_novelty(net, data, params, rng)
    metrics = _evaluate(net, logits_all, statistic, data, temperature, series, params)
    metrics["parameters"] = parameter_count(net)
    metrics["epochs_run"] = len(history)
    metrics["best_epoch"] = best_epoch
    seconds = time.monotonic() - started
    b1, b2 = data.boundaries
    train_times = data.close_times[data.split == 0]
    splits = {
        "train": {"windows": counts["train"], "start_ms": int(train_times.min()), "end_ms": int(train_times.max())},
        "validation": {
            "windows": counts["validation"],
            "start_ms": b1,
            "end_ms": int(data.close_times[val_mask].max()),
        },
        "test": {"windows": counts["test"], "start_ms": b2, "end_ms": int(data.close_times[data.split == 2].max())},
        "embargo_bars": data.embargo_ms // timeframe_ms(timeframe),
        "data": {
            "start_ms": int(min(int(s.open_times[0]) for s in series)),
            "end_ms": int(max(int(s.close_times[-1]) for s in series)),
        },
    }
    return TrainResult(
        net=net,
        temperature=temperature,
        norm_mean=mean,
        norm_std=std,
        params=params,
        timeframe=timeframe,
        symbols=tuple(s.symbol for s in series),
        metrics=metrics,
        splits=splits,
        history=tuple(history),
        best_epoch=best_epoch,
        seconds=seconds,
    )


def _prepare(series: Sequence[FeatureSeries], params: TrainParams) -> _Data:
    rows, labels, times, sigmas, returns, opens, offsets = [], [], [], [], [], [], []
    offset = 0
    for s in series:
        lab = triple_barrier_labels(s.highs, s.lows, s.closes, s.sigma, s.segment_starts, params.barrier)
        lab = np.where(s.ready, lab, UNKNOWN).astype(np.int8)
        rows.append(s.rows)
        labels.append(lab)
        times.append(s.close_times)
        sigmas.append(s.sigma)
        returns.append(s.returns)
        opens.append(s.open_times)
        offsets.append(offset)
        offset += len(s)
    all_rows = np.concatenate(rows)
    all_labels = np.concatenate(labels)
    all_times = np.concatenate(times)
    valid = all_labels != UNKNOWN
    if not valid.any():
        raise BadInput(f"no labelled windows: {_shortage(series, params.barrier.horizon_bars)}")
    t0, t1 = int(all_times[valid].min()), int(all_times[valid].max())
    b1 = t0 + int((t1 - t0) * params.train_share)
    b2 = t0 + int((t1 - t0) * (params.train_share + params.val_share))
    embargo_ms = (params.barrier.horizon_bars + WARMUP_BARS) * timeframe_ms(series[0].timeframe)
    split = np.full(len(all_labels), -1, dtype=np.int8)
    split[valid & (all_times < b1 - embargo_ms)] = 0
    split[valid & (all_times >= b1) & (all_times < b2 - embargo_ms)] = 1
    split[valid & (all_times >= b2)] = 2
    return _Data(
        all_rows,
        all_labels,
        split,
        all_times,
        np.concatenate(sigmas),
        np.concatenate(returns),
        np.concatenate(opens),
        tuple(offsets),
        (b1, b2),
        embargo_ms,
    )


def _shortage(series: Sequence[FeatureSeries], horizon: int) -> str:
    """Why the history gives too few labelled windows: its gaps when they are the cause, else its length.

    A labelled window needs WARMUP_BARS contiguous bars and `horizon` more after it; every gap (a missing
    bar, or a filled one, which training leaves out) starts the count again.
    """
    need = WARMUP_BARS + horizon
    total = sum(len(s) for s in series)
    pieces = [int(n) for s in series for n in np.diff(np.append(s.segment_starts, len(s)))]
    gaps = len(pieces) - len(series)
    with_gaps = sum(max(0, n - need + 1) for n in pieces)
    without = sum(max(0, len(s) - need + 1) for s in series)
    if gaps and with_gaps < 0.5 * without:
        short = sum(n < need for n in pieces)
        lost = sum(min(n, need - 1) for n in pieces)
        return (
            f"{gaps:,} gaps split the history into {len(pieces):,} pieces ({short:,} shorter than the {need} "
            f"contiguous bars a labelled window needs: {WARMUP_BARS} for the window, {horizon} for its horizon; "
            f"the longest {max(pieces):,}), so {lost:,} of {total:,} bars end no labelled window. Fetch the "
            "missing bars (`guard history "
            "fetch` resumes) or train on a longer timeframe (`guard history resample`); filled bars are never "
            "trained on, so filling gaps does not help"
        )
    return f"need more history ({total:,} bars; at least a few thousand per symbol)"


def _subsample(index: np.ndarray, cap: int, rng: np.random.Generator) -> np.ndarray:
    if len(index) <= cap:
        return index
    return np.sort(rng.choice(index, size=cap, replace=False))


def _fit_novelty(
    net: EnsembleTCN,
    data: _Data,
    params: TrainParams,
    rng: np.random.Generator,
) -> np.ndarray:
    """Fit the novelty reference: move sizes and the statistic's centre on training bars and windows,
    distances on validation windows.

    Returns the novelty statistic of every row of `data` (NaN where no full window ends).
    """
    train = data.split == 0
    hour_scale = novelty.fit_hour_scale(data.returns[train], data.open_times[train])
    quantiles = novelty.fit_bar_quantiles(
        novelty.bar_values(data.returns[train], data.open_times[train], hour_scale), N_QUANTILES
    )
    partial = novelty.Reference(hour_scale, quantiles, np.zeros(novelty.N_STAT), np.ones(novelty.N_STAT))
    statistic = np.full((len(data.rows), novelty.N_STAT), np.nan)
    for start, stop in zip(data.offsets, (*data.offsets[1:], len(data.rows)), strict=True):
        statistic[start:stop] = novelty.series_statistic(data.returns[start:stop], data.open_times[start:stop], partial)
    train_idx = _subsample(np.flatnonzero(train), params.max_reference, rng)
    mean, spread = novelty.fit_center(statistic[train_idx])
    val_idx = _subsample(np.flatnonzero(data.split == 1), params.max_reference, rng)
    ref_distance = novelty.reference(novelty.distance(statistic[val_idx], mean, spread), N_QUANTILES)
    with torch.no_grad():
        net.novelty_hour_scale.copy_(torch.from_numpy(hour_scale))
        net.novelty_bar_quantiles.copy_(torch.from_numpy(quantiles))
        net.novelty_mean.copy_(torch.from_numpy(mean))
        net.novelty_spread.copy_(torch.from_numpy(spread))
        net.novelty_ref_distance.copy_(torch.from_numpy(ref_distance))
    return statistic


def _evaluate(
    net: EnsembleTCN,
    logits: np.ndarray,
    statistic: np.ndarray,
    data: _Data,
    temperature: float,
    series: Sequence[FeatureSeries],
    params: TrainParams,
) -> dict[str, object]:
    test = data.split == 2
    y = data.labels[test].astype(np.int64)
    ref = NoveltyReference.of(net)
    out = outputs(logits[test], statistic[test], temperature, ref)
    raw = calibration.ensemble_probs(logits[test].astype(np.float64))
    train_share = np.bincount(data.labels[data.split == 0], minlength=3) / (data.split == 0).sum()
    width = params.barrier.k * data.sigma[test] * math.sqrt(params.barrier.horizon_bars)
    figures = calibration_figures(
        out.probs,
        y,
        baseline_shares=train_share,
        barrier_width=width,
        cost=params.cost_bps / 1e4,
        raw_probs=raw,
    )
    shifted = _shifted_novelty(net, series, data, temperature, params)
    label_share_test = figures.pop("label_share")
    figures.pop("windows")
    return {
        **figures,
        "temperature": round(temperature, 4),
        "novelty_auroc": round(calibration.auroc(out.novelty, shifted), 4),
        "novel_rate_in_distribution": round(float((out.novelty >= params.novelty_threshold).mean()), 4),
        "novel_rate_shifted": round(float((shifted >= params.novelty_threshold).mean()), 4),
        "novelty_threshold": params.novelty_threshold,
        "shift_factor": params.shift_factor,
        "label_share_train": {LABELS[i]: round(float(train_share[i]), 4) for i in range(3)},
        "label_share_test": label_share_test,
        "test_windows": int(test.sum()),
    }


def _shifted_novelty(
    net: EnsembleTCN, series: Sequence[FeatureSeries], data: _Data, temperature: float, params: TrainParams
) -> np.ndarray:
    """Novelty of the test period replayed with volatility × shift_factor."""
    b2 = data.boundaries[1]
    ref = NoveltyReference.of(net)
    scores = []
    for s in series:
        times = s.close_times
        first = int(np.searchsorted(times, b2))
        start = max(0, first - WARMUP_BARS + 1)
        if len(s) - start < WARMUP_BARS:
            continue
        o, h, lo, c = scale_volatility(
            s.opens[start:], s.highs[start:], s.lows[start:], s.closes[start:], params.shift_factor
        )
        # volume is left alone: only the price regime shifts
        shifted = build_series_arrays(s.symbol, s.timeframe, s.open_times[start:], o, h, lo, c, s.volumes[start:])
        logits, _ = forward_series(net, shifted.rows)
        ready = shifted.ready
        scores.append(outputs(logits[ready], ref.series(shifted)[ready], temperature, ref).novelty)
    if not scores:
        raise BadInput("no test windows long enough for the novelty check")
    return np.concatenate(scores)
