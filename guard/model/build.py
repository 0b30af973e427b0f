"""A model artifact from history files: what `guard train` and `python -m guard.model.default` share.

`TrainRequest` is everything a training run was asked to do, and the `guard train` line that reproduces it;
`run_training` reads the files, trains and writes the artifact, drawing its progress on a stream if given.
"""

from __future__ import annotations

import hashlib
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from guard.errors import BadInput
from guard.wording import count

DEFAULT_EPOCHS = 60
DEFAULT_SEED = 7


class TrainingProgress:
    """A one-line progress bar on stderr (plain lines, once per epoch, when not a terminal)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._tty = bool(getattr(stream, "isatty", lambda: False)())
        self._last = 0.0

    def __call__(self, p: Any) -> None:
        end_of_epoch = bool(p.epoch_done)
        now = time.monotonic()
        if self._tty:
            if not end_of_epoch and now - self._last < 0.1:
                return
            self._last = now
            share = ((p.epoch - 1) + p.step / max(p.steps, 1)) / p.epochs
            bar = "#" * int(share * 30)
            val = f" val {p.val_nll:.4f}" if p.val_nll is not None else ""
            self._stream.write(
                f"\rtraining [{bar:<30}] epoch {p.epoch}/{p.epochs} step {p.step}/{p.steps} "
                f"loss {p.train_loss:.4f}{val} best epoch {p.best_epoch}   "
            )
        elif end_of_epoch:
            self._stream.write(
                f"epoch {p.epoch}/{p.epochs}: loss {p.train_loss:.4f} val {p.val_nll:.4f} best epoch {p.best_epoch}\n"
            )
        self._stream.flush()

    def done(self) -> None:
        if self._tty:
            self._stream.write("\n")
            self._stream.flush()


@dataclass(frozen=True, slots=True)
class TrainRequest:
    """Everything `guard train` was asked to do (also what reproduces it)."""

    data: tuple[str, ...]
    out: str
    epochs: int = DEFAULT_EPOCHS
    seed: int = DEFAULT_SEED
    name: str = ""
    horizon_bars: int = 30
    barrier_k: float = 1.0
    members: int = 3
    channels: int = 24
    threads: int = 2
    source: str = ""
    synthetic: bool = False

    def command(self) -> str:
        """The `guard train` command line that reproduces this request."""
        parts = ["guard", "train", *self.data, "--out", self.out, "--epochs", str(self.epochs),
                 "--seed", str(self.seed)]
        defaults = TrainRequest(data=(), out="")
        for flag, attr in (("--name", "name"), ("--horizon-bars", "horizon_bars"), ("--barrier-k", "barrier_k"),
                           ("--members", "members"), ("--channels", "channels"), ("--threads", "threads"),
                           ("--source", "source")):
            value = getattr(self, attr)
            if value != getattr(defaults, attr):
                parts += [flag, str(value)]
        if self.synthetic:
            parts.append("--synthetic")
        return " ".join(shlex.quote(p) for p in parts)


def run_training(
    request: TrainRequest,
    *,
    stream: TextIO | None = None,
    novelty_threshold: float = 0.95,
    cost_bps: float = 12.0,
    extra_metrics: Any = None,
    command: str | None = None,
    source_note: str = "",
) -> Any:
    """Read the data, train, and write the artifact; return its ArtifactInfo.

    Args:
        cost_bps: round-trip trading cost for the card's break-even hit rate (default: 2 x (5 bps taker
            fee + 1 bp slippage), guard's paper defaults).
        extra_metrics: optional callable(TrainResult) -> dict merged into the metrics.
        command: the reproduction command for the card (default: the `guard train` line).
        source_note: one more sentence about the data, for the card.

    Raises:
        BadInput: unreadable data, bad arguments, or too little data.
    """
    from guard.features import build_series
    from guard.feed.history import read_bars
    from guard.model.artifact import save_artifact
    from guard.model.labels import BarrierParams
    from guard.model.training import TrainParams
    from guard.model.training import train as train_model

    if request.epochs < 1:
        raise BadInput(f"--epochs {request.epochs}: must be at least 1")
    if request.members < 3:
        raise BadInput(f"--members {request.members}: a deep ensemble needs at least 3")
    if request.horizon_bars < 1 or request.barrier_k <= 0 or request.channels < 1 or request.threads < 1:
        raise BadInput("--horizon-bars, --barrier-k, --channels and --threads must be positive")
    series, files = [], []
    for path in request.data:
        bars = read_bars(path)
        if not bars:
            raise BadInput(f"{path}: no bars")
        by_symbol: dict[str, list[Any]] = {}
        for bar in bars:
            by_symbol.setdefault(bar.symbol, []).append(bar)
        series += [build_series(b) for b in by_symbol.values()]
        files.append({
            "path": path,
            "sha256": _sha256(Path(path)),
            "bars": len(bars),
            "symbol": ", ".join(by_symbol),
        })
    params = TrainParams(
        epochs=request.epochs, seed=request.seed, channels=request.channels, members=request.members,
        barrier=BarrierParams(request.barrier_k, request.horizon_bars), threads=request.threads,
        novelty_threshold=novelty_threshold, cost_bps=cost_bps,
    )
    progress = TrainingProgress(stream) if stream is not None else None
    result = train_model(series, params, on_progress=progress)
    if progress is not None:
        progress.done()
    if extra_metrics is not None:
        result.metrics.update(extra_metrics(result))
    from guard.model.regimes import card_figures

    # the novelty method on real regime shifts (None, and the card says so, without backtesting.py)
    result.metrics["novelty_real_shifts"] = card_figures()
    source = {
        "description": request.source or count(len(request.data), "history file"),
        "synthetic": request.synthetic,
        "files": files,
    }
    if source_note:
        source["note"] = source_note
    name = request.name or Path(request.out).name
    return save_artifact(result, request.out, name=name, data_source=source, command=command or request.command())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
