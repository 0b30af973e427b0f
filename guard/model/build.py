"""A model artifact from history files: what `guard train` and `python -m guard.model.default` share.

`TrainRequest` is everything a training run was asked to do, and the `guard train` line that reproduces it;
`run_training` reads the files, trains and writes the artifact, drawing its progress on a stream if given.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from guard.errors import BadInput
from guard.markets.record import SpecRecord
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
    spec: tuple[str, ...] = ()
    """Spec files (`--spec`): each symbol's market spec when none is saved beside its history."""

    def command(self) -> str:
        """The `guard train` command line that reproduces this request."""
        parts = [
            "guard",
            "train",
            *self.data,
            "--out",
            self.out,
            "--epochs",
            str(self.epochs),
            "--seed",
            str(self.seed),
        ]
        defaults = TrainRequest(data=(), out="")
        for flag, attr in (
            ("--name", "name"),
            ("--horizon-bars", "horizon_bars"),
            ("--barrier-k", "barrier_k"),
            ("--members", "members"),
            ("--channels", "channels"),
            ("--threads", "threads"),
            ("--source", "source"),
        ):
            value = getattr(self, attr)
            if value != getattr(defaults, attr):
                parts += [flag, str(value)]
        for path in self.spec:
            parts += ["--spec", path]
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
    from guard.markets.files import resolve_specs
    from guard.model.artifact import save_artifact
    from guard.model.data import read_history
    from guard.model.labels import BarrierParams
    from guard.model.training import TrainParams, train as train_model

    if request.epochs < 1:
        raise BadInput(f"--epochs {request.epochs}: must be at least 1")
    if request.members < 3:
        raise BadInput(f"--members {request.members}: a deep ensemble needs at least 3")
    if request.horizon_bars < 1 or request.barrier_k <= 0 or request.channels < 1 or request.threads < 1:
        raise BadInput("--horizon-bars, --barrier-k, --channels and --threads must be positive")
    history = read_history(request.data)
    # every symbol is trained on as the market it is: its spec from --spec, beside the history, or built in
    records = resolve_specs(history.symbols, request.data, request.spec)
    if stream is not None:
        for record in records.values():
            stream.write(f"market {record.describe()}\n")
            stream.writelines(f"  guessed: {guess}\n" for guess in record.guesses)
        stream.writelines(f"{line}\n" for line in history.notes())
    params = TrainParams(
        epochs=request.epochs,
        seed=request.seed,
        channels=request.channels,
        members=request.members,
        barrier=BarrierParams(request.barrier_k, request.horizon_bars),
        threads=request.threads,
        novelty_threshold=novelty_threshold,
        cost_bps=cost_bps,
    )
    progress = TrainingProgress(stream) if stream is not None else None
    result = train_model(history.series, params, on_progress=progress)
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
        "files": list(history.files),
        "markets": [market_record(record) for record in records.values()],
    }
    if source_note:
        source["note"] = source_note
    name = request.name or Path(request.out).name
    return save_artifact(result, request.out, name=name, data_source=source, command=command or request.command())


def market_record(record: SpecRecord) -> dict[str, Any]:
    """A market spec as a model's config records it: what the prices and money of its data are in."""
    spec = record.spec
    return {
        "symbol": spec.symbol,
        "kind": spec.kind.value,
        "base": spec.base,
        "quote": spec.quote,
        "settle": record.settle,
        "tick_size": format(spec.tick_size.normalize(), "f"),
        "step_size": format(spec.step_size.normalize(), "f"),
        "source": record.source,
        "guesses": list(record.guesses),
        "described": record.describe(),
    }
