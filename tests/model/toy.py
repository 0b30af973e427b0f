"""Helpers for the model tests: a toy market and a tiny training recipe."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from guard.features import FeatureSeries, build_series
from guard.model.artifact import ArtifactInfo, LoadedModel, load_model, save_artifact
from guard.model.labels import BarrierParams
from guard.model.synthetic import toy_bars
from guard.model.training import TrainParams, TrainResult, train

TOY = {"drift_persistence": 0.97, "drift_share": 0.5}
"""A toy market with short-lived trends: a little for the model to learn, quickly."""

TINY = TrainParams(
    epochs=10, channels=12, barrier=BarrierParams(1.0, 10), patience=4, threads=2, seed=3, learning_rate=3e-3
)


@dataclass(frozen=True, slots=True)
class Trained:
    series: tuple[FeatureSeries, ...]
    result: TrainResult
    info: ArtifactInfo
    path: Path
    model: LoadedModel


def toy_series(n: int = 6000, symbols: int = 3, seed: int = 0, **kwargs: float) -> tuple[FeatureSeries, ...]:
    return tuple(
        build_series(toy_bars(f"T{i}/USDT:USDT", n, seed=seed + i, **{**TOY, **kwargs})) for i in range(symbols)
    )


def train_toy(path: Path, params: TrainParams = TINY, n: int = 6000) -> Trained:
    series = toy_series(n=n)
    result = train(series, params)
    info = save_artifact(
        result,
        path,
        name="toy",
        data_source={"description": "toy market (tests)", "synthetic": True, "files": []},
        command="pytest tests/model",
    )
    return Trained(series, result, info, path, load_model(path))
