"""One replay from files to reports: the histories and the model loaded, a fresh journal, the engine, the reports."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from guard.config import Config
from guard.errors import BadInput
from guard.model.artifact import load_model
from guard.replay.engine import ReplayEngine, ReplayOptions
from guard.replay.history import load_histories
from guard.replay.report import write_reports
from guard.replay.result import ReplayResult


def run_replay(
    config: Config, data: Sequence[str], model_dir: str, options: ReplayOptions, directory: Path
) -> ReplayResult:
    """Replay history files into `directory`: its journal.db, report.md, report.json and equity.png.

    Raises:
        BadInput: unreadable or overlapping history files, an unusable model, or a journal already in `directory`.
    """
    histories = load_histories(data)
    model = load_model(model_dir)
    directory.mkdir(parents=True, exist_ok=True)
    journal = directory / "journal.db"
    if journal.exists():
        raise BadInput(f"{journal} exists: a replay writes a fresh journal (choose another --out)")
    engine = ReplayEngine(config, model, histories, options, journal)
    result = asyncio.run(engine.run())
    write_reports(result, directory, [Path(d).name for d in data])
    return result
