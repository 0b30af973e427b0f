"""One replay from files to reports: the histories and the model loaded, a fresh journal, the engine, the reports."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

from guard.config import Config
from guard.domain import MarketKind
from guard.errors import BadInput
from guard.markets.files import resolve_specs
from guard.model.artifact import load_model
from guard.replay.engine import ReplayEngine, ReplayOptions
from guard.replay.fates import read_fates
from guard.replay.history import load_histories
from guard.replay.inline import run_to_end
from guard.replay.money import desk_config, first_and_last, in_account_currency, plan_conversion
from guard.replay.report import write_reports
from guard.replay.result import ReplayResult
from guard.timeframes import timeframe_ms


def run_replay(
    config: Config,
    data: Sequence[str],
    model_dir: str,
    options: ReplayOptions,
    directory: Path,
    *,
    spec_files: Sequence[str] = (),
    converts: Sequence[str] = (),
    notes: Callable[[str], None] | None = None,
) -> ReplayResult:
    """Replay history files into `directory`: its journal.db, report.md, report.json and equity.png.

    Each symbol is priced with its market spec: from `spec_files`, else the spec file saved beside its
    history, else guard's built-in spec where it describes the symbol (`guard.markets.resolve_specs`).

    Money is counted in the account's currency (USDT): markets that count it in another currency need
    its price over the replay (`converts`, "BTC/USDT=FILE"; see `guard.replay.money`).

    Args:
        converts: conversion series, "PAIR=FILE" each.
        notes: called with one line per symbol saying which spec is used, and one per guess in it.

    Raises:
        BadInput: unreadable or overlapping history files, a symbol with no spec, money in another currency with
            no conversion for it, an unusable model, or a journal already in `directory`.
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
    first, last = first_and_last([h.open_times for h in histories], timeframe_ms(histories[0].timeframe))
    conversion = plan_conversion(records, converts, first, last)
    spot = [s for s, r in records.items() if r.spec.kind is MarketKind.SPOT]
    if options.leverage is not None and spot and notes is not None:
        notes(f"--leverage {options.leverage} does not apply to {', '.join(spot)}: spot orders are 1x")
    model = load_model(model_dir)
    directory.mkdir(parents=True, exist_ok=True)
    journal = directory / "journal.db"
    if journal.exists():
        raise BadInput(f"{journal} exists: a replay writes a fresh journal (choose another --out)")
    specs = {symbol: record.spec for symbol, record in records.items()}
    on_desk = config if conversion is None else desk_config(config, conversion.rate(first))
    engine = ReplayEngine(on_desk, model, histories, options, journal, specs)
    result = run_to_end(engine.run())
    result = dataclasses.replace(result, fates=read_fates(journal))
    if conversion is not None:
        result = in_account_currency(result, conversion, config)
    if spot and len(spot) == len(records) and options.leverage is not None:
        result = dataclasses.replace(result, leverage=f"1 (spot: --leverage {options.leverage} does not apply)")
    write_reports(result, directory, [Path(d).name for d in data])
    return result
