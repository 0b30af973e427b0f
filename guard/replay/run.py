"""One replay from files to reports: the histories and the model loaded, a fresh journal, the engine, the reports."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

from guard.config import Config
from guard.errors import BadInput
from guard.markets.files import resolve_specs
from guard.model.artifact import load_model
from guard.replay.engine import ReplayEngine, ReplayOptions
from guard.replay.fates import read_fates
from guard.replay.history import load_histories
from guard.replay.report import write_reports
from guard.replay.result import ReplayResult


def run_replay(
    config: Config,
    data: Sequence[str],
    model_dir: str,
    options: ReplayOptions,
    directory: Path,
    *,
    spec_files: Sequence[str] = (),
    notes: Callable[[str], None] | None = None,
) -> ReplayResult:
    """Replay history files into `directory`: its journal.db, report.md, report.json and equity.png.

    Each symbol is priced with its market spec: from `spec_files`, else the spec file saved beside its
    history, else guard's built-in spec where it describes the symbol (`guard.markets.resolve_specs`).

    Args:
        notes: called with one line per symbol saying which spec is used, and one per guess in it.

    Raises:
        BadInput: unreadable or overlapping history files, a symbol with no spec, an unusable model, or a
            journal already in `directory`.
    """
    histories = load_histories(data)
    records = resolve_specs([h.symbol for h in histories], data, spec_files)
    if notes is not None:
        for record in records.values():
            notes(f"market {record.describe()}")
            for guess in record.guesses:
                notes(f"  guessed: {guess}")
        filled = {h.symbol: h.filled_count for h in histories if h.filled_count}
        for symbol, n in filled.items():
            notes(f"{symbol}: {n} filled bars (gaps filled flat, no trading): the model reads them as quiet bars")
    model = load_model(model_dir)
    directory.mkdir(parents=True, exist_ok=True)
    journal = directory / "journal.db"
    if journal.exists():
        raise BadInput(f"{journal} exists: a replay writes a fresh journal (choose another --out)")
    specs = {symbol: record.spec for symbol, record in records.items()}
    engine = ReplayEngine(config, model, histories, options, journal, specs)
    result = asyncio.run(engine.run())
    result = dataclasses.replace(result, fates=read_fates(journal))
    write_reports(result, directory, [Path(d).name for d in data])
    return result
