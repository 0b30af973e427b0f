"""The model artifact on disk: write it, check it, load it — or refuse it with a clear reason.

A model is a directory::

    models/NAME/
      weights.pt    the network's state_dict (tensors only; loaded with weights_only=True)
      config.json   architecture + init args, feature schema and hash, normalisation, label
                    map, barrier parameters, calibration, training window, data source, metrics
      README.md     the model card, in plain English
      sha256        "<hex>  <file>" for the three files above (`sha256sum -c sha256` checks it)

The model hash is the sha256 of the `sha256` file, so it covers weights, config and card.
Loading builds the network from config.json, then loads the weights strictly: any missing,
extra or differently-shaped tensor is refused, as is a file whose checksum does not match,
a config for a different feature schema, or anything torch cannot read.

torch is imported only when weights are read, so `guard model show` works without it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import structlog

from guard.errors import ModelFileError
from guard.features import N_FEATURES, schema_hash
from guard.model.labels import LABELS, BarrierParams
from guard.model.novelty import METHOD as NOVELTY_METHOD, SPANS as NOVELTY_SPANS
from guard.timeframes import timeframe_ms

if TYPE_CHECKING:
    from guard.model.network import EnsembleTCN
    from guard.model.training import TrainResult

log = structlog.get_logger(__name__)

FORMAT = "guard-model/1"
WEIGHTS = "weights.pt"
CONFIG = "config.json"
CARD = "README.md"
CHECKSUMS = "sha256"
FILES = (WEIGHTS, CONFIG, CARD)
_REQUIRED = (
    "format",
    "name",
    "architecture",
    "init_args",
    "timeframe",
    "feature_schema_hash",
    "normalisation",
    "label_map",
    "barrier",
    "calibration",
    "training",
    "data_source",
    "metrics",
)


@dataclass(frozen=True, slots=True, eq=False)
class ArtifactInfo:
    """A model directory whose checksums and config have been verified (no weights read)."""

    path: Path
    name: str
    model_hash: str
    """sha256 of the `sha256` file: one identifier for weights, config and card together."""
    config: Mapping[str, Any]
    card: str

    @property
    def model_id(self) -> str:
        return f"{self.name}-{self.model_hash[:10]}"


@dataclass(frozen=True, slots=True, eq=False)
class LoadedModel:
    """A verified model, its network built and in eval mode."""

    info: ArtifactInfo
    net: EnsembleTCN
    temperature: float
    barrier: BarrierParams
    timeframe: str
    training_start_ms: int
    """Open time of the first bar of the data the model was built from."""
    training_end_ms: int
    """Close time of the last bar of the data the model was built from."""

    @property
    def model_id(self) -> str:
        return self.info.model_id

    @property
    def model_hash(self) -> str:
        return self.info.model_hash

    @property
    def card(self) -> str:
        return self.info.card

    @property
    def metrics(self) -> Mapping[str, Any]:
        return self.info.config["metrics"]  # type: ignore[no-any-return]  # config.json: training wrote a mapping

    @property
    def horizon_bars(self) -> int:
        return self.barrier.horizon_bars

    @property
    def bar_seconds(self) -> float:
        return timeframe_ms(self.timeframe) / 1000.0

    @property
    def horizon_seconds(self) -> float:
        return self.horizon_bars * self.bar_seconds

    @property
    def synthetic(self) -> bool:
        return bool(self.info.config["data_source"].get("synthetic", False))


# --- reading ----------------------------------------------------------------------------


def verify_artifact(path: Path | str) -> ArtifactInfo:
    """Check a model directory's files, checksums and config without reading the weights.

    Raises:
        ModelFileError: naming the file and what is wrong with it.
    """
    root = Path(path)
    if not root.is_dir():
        raise ModelFileError(f"{root}: no such model directory")
    for name in (*FILES, CHECKSUMS):
        if not (root / name).is_file():
            raise ModelFileError(f"{root / name}: missing; a model directory holds {', '.join((*FILES, CHECKSUMS))}")
    try:
        checksum_text = (root / CHECKSUMS).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as e:
        raise ModelFileError(f"{root / CHECKSUMS}: cannot be read: {e}") from e
    expected = _parse_checksums(root / CHECKSUMS, checksum_text)
    for name in FILES:
        actual = _sha256_file(root / name)
        if actual != expected[name]:
            raise ModelFileError(
                f"{root / name}: checksum mismatch (sha256 file says {expected[name][:12]}…, the file is "
                f"{actual[:12]}…): it is corrupt, truncated or was changed after training"
            )
    try:
        config = json.loads((root / CONFIG).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError(f"{root / CONFIG}: not valid JSON: {e}") from e
    _check_config(root, config)
    card = (root / CARD).read_text(encoding="utf-8")
    model_hash = hashlib.sha256(checksum_text.encode("ascii")).hexdigest()
    return ArtifactInfo(root, str(config["name"]), model_hash, MappingProxyType(config), card)


def load_model(path: Path | str) -> LoadedModel:
    """Verify a model directory and build its network from it.

    Raises:
        ModelFileError: for a missing, corrupt, truncated, tampered, schema-mismatched or
            shape-mismatched file, with the file and the reason.
    """
    info = verify_artifact(path)
    import torch

    from guard.model.network import EnsembleTCN

    config = info.config
    weights = info.path / WEIGHTS
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a bad file; all mean "unreadable"
        raise ModelFileError(f"{weights}: cannot be read as a torch state_dict: {e}") from e
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelFileError(f"{weights}: not a state_dict of tensors")
    try:
        net = EnsembleTCN(**config["init_args"])
    except (TypeError, ValueError, RuntimeError) as e:
        raise ModelFileError(f"{info.path / CONFIG}: init_args do not build an EnsembleTCN: {e}") from e
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        detail = "; ".join(line.strip() for line in first[1:4]) or first[0]
        raise ModelFileError(f"{weights}: the weights do not fit the architecture in config.json ({detail})") from e
    _check_novelty_reference(weights, net)
    norm = config["normalisation"]
    net.set_normalisation(
        torch.tensor(norm["mean"], dtype=torch.float32), torch.tensor(norm["std"], dtype=torch.float32)
    )
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    barrier = config["barrier"]
    loaded = LoadedModel(
        info=info,
        net=net,
        temperature=float(config["calibration"]["temperature"]),
        barrier=BarrierParams(k=float(barrier["k"]), horizon_bars=int(barrier["horizon_bars"])),
        timeframe=str(config["timeframe"]),
        training_start_ms=int(config["training"]["window"]["start_ms"]),
        training_end_ms=int(config["training"]["window"]["end_ms"]),
    )
    log.info("model.loaded", model_id=loaded.model_id, path=str(info.path))
    return loaded


def _check_novelty_reference(weights: Path, net: EnsembleTCN) -> None:
    """Refuse a novelty reference that could not come from training: a zero or negative scale would divide a
    move by nothing, unsorted quantiles would rank nonsense (training writes neither)."""
    buffers = {name: tensor.double().numpy() for name, tensor in net.named_buffers() if name.startswith("novelty_")}
    scales = (buffers["novelty_hour_scale"], buffers["novelty_spread"])
    ordered = (buffers["novelty_bar_quantiles"], buffers["novelty_ref_distance"])
    if (
        not all(np.isfinite(a).all() and (a > 0).all() for a in scales)
        or not all(np.isfinite(a).all() and (np.diff(a) >= 0).all() for a in ordered)
        or not np.isfinite(buffers["novelty_mean"]).all()
    ):
        raise ModelFileError(
            f"{weights}: its novelty reference is not one training writes (a scale that is not "
            "positive, or quantiles out of order): retrain the model"
        )


def _parse_checksums(path: Path, text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or len(parts[0]) != 64 or any(ch not in "0123456789abcdef" for ch in parts[0]):
            raise ModelFileError(f"{path}: line {number} is not '<sha256 hex>  <file>'")
        found[parts[1].lstrip("*")] = parts[0]
    missing = [name for name in FILES if name not in found]
    if missing:
        raise ModelFileError(f"{path}: no checksum for {', '.join(missing)}")
    return found


def _check_config(root: Path, config: Any) -> None:
    where = root / CONFIG
    if not isinstance(config, dict):
        raise ModelFileError(f"{where}: must be a JSON object")
    missing = [key for key in _REQUIRED if key not in config]
    if missing:
        raise ModelFileError(f"{where}: missing {', '.join(missing)}")
    if config["format"] != FORMAT:
        raise ModelFileError(f"{where}: format {config['format']!r}; this guard reads {FORMAT!r}")
    if config["feature_schema_hash"] != schema_hash():
        raise ModelFileError(
            f"{where}: built for feature schema {str(config['feature_schema_hash'])[:12]}…, but this guard "
            f"computes features with schema {schema_hash()[:12]}…: retrain the model with this version"
        )
    method = config.get("novelty", {}).get("method") if isinstance(config.get("novelty"), dict) else None
    if method != NOVELTY_METHOD:
        raise ModelFileError(
            f"{where}: novelty was fitted as {method or 'an older method'}, but this guard computes novelty "
            f"as {NOVELTY_METHOD}: retrain the model with this version"
        )
    norm = config["normalisation"]
    for key in ("mean", "std"):
        values = norm.get(key) if isinstance(norm, dict) else None
        if not isinstance(values, list) or len(values) != N_FEATURES:
            raise ModelFileError(f"{where}: normalisation.{key} must list {N_FEATURES} numbers")
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            raise ModelFileError(f"{where}: normalisation.{key} must be finite numbers")
    if any(v <= 0 for v in norm["std"]):
        raise ModelFileError(f"{where}: normalisation.std must be positive")
    if config["label_map"] != {str(i): name for i, name in enumerate(LABELS)}:
        raise ModelFileError(f"{where}: label_map must be {dict(enumerate(LABELS))}")
    temperature = config["calibration"].get("temperature") if isinstance(config["calibration"], dict) else None
    if not isinstance(temperature, (int, float)) or not math.isfinite(temperature) or temperature <= 0:
        raise ModelFileError(f"{where}: calibration.temperature must be a positive number")
    try:
        BarrierParams(float(config["barrier"]["k"]), int(config["barrier"]["horizon_bars"]))
        timeframe_ms(str(config["timeframe"]))
        int(config["training"]["window"]["start_ms"]), int(config["training"]["window"]["end_ms"])
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFileError(f"{where}: barrier, timeframe or training.window is malformed: {e}") from e
    if not isinstance(config["init_args"], dict):
        raise ModelFileError(f"{where}: init_args must be an object")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- writing ----------------------------------------------------------------------------


def save_artifact(
    result: TrainResult,
    out: Path | str,
    *,
    name: str,
    data_source: Mapping[str, Any],
    command: str,
) -> ArtifactInfo:
    """Write a trained model as an artifact directory (files replaced atomically) and verify it.

    Args:
        result: what `guard.model.training.train` returned.
        out: the directory to write (created if needed).
        name: the model's name (its id is name + the first 10 hex digits of its hash).
        data_source: description, files with their sha256, and "synthetic": bool.
        command: the exact command that reproduces this model.
    """
    import io

    import torch

    from guard.features import FEATURE_NAMES, schema
    from guard.model.card import render_card

    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(result.net.state_dict(), buffer)
    weights = buffer.getvalue()
    params = result.params
    config: dict[str, Any] = {
        "format": FORMAT,
        "name": name,
        "architecture": "EnsembleTCN",
        "init_args": result.net.init_args(),
        "parameters": result.metrics["parameters"],
        "receptive_field": result.net.receptive_field,
        "timeframe": result.timeframe,
        "symbols": list(result.symbols),
        "feature_schema": schema(),
        "feature_schema_hash": schema_hash(),
        "normalisation": {
            "features": list(FEATURE_NAMES),
            "mean": [float(x) for x in result.norm_mean],
            "std": [float(x) for x in result.norm_std],
        },
        "label_map": {str(i): label for i, label in enumerate(LABELS)},
        "barrier": {"k": params.barrier.k, "horizon_bars": params.barrier.horizon_bars},
        "calibration": {"method": "temperature scaling on the validation split", "temperature": result.temperature},
        "novelty": {
            "method": NOVELTY_METHOD,
            "description": "each of the 123 one-bar returns the window reads, as a size relative to the "
            "training bars' mean at the same hour of day, ranked among the training bars'; the "
            "mean rank over all 123 and over the last 16; the larger squared z-score of the two "
            "against the training windows', as a percentile of validation windows "
            "(guard.model.novelty)",
            "spans": list(NOVELTY_SPANS),
            "threshold": params.novelty_threshold,
        },
        "training": {
            "seed": params.seed,
            "epochs": params.epochs,
            "epochs_run": result.metrics["epochs_run"],
            "best_epoch": result.best_epoch,
            "patience": params.patience,
            "batch_size": params.batch_size,
            "chunk": params.chunk,
            "learning_rate": params.learning_rate,
            "weight_decay": params.weight_decay,
            "threads": params.threads,
            "torch": torch.__version__.split("+")[0],
            "window": dict(result.splits["data"]),  # type: ignore[call-overload]  # first bar to last close
            "splits": result.splits,
            "command": command,
        },
        "data_source": dict(data_source),
        "metrics": result.metrics,
    }
    config_text = json.dumps(config, indent=2, sort_keys=False) + "\n"
    card = render_card(config, weights_sha256=hashlib.sha256(weights).hexdigest())
    contents = {WEIGHTS: weights, CONFIG: config_text.encode(), CARD: card.encode()}
    checksums = "".join(f"{hashlib.sha256(contents[n]).hexdigest()}  {n}\n" for n in FILES)
    for file_name, data in (*contents.items(), (CHECKSUMS, checksums.encode())):
        tmp = root / f".{file_name}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, root / file_name)
    info = verify_artifact(root)
    log.info("model.saved", model_id=info.model_id, path=str(root))
    return info
