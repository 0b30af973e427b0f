"""`guard replay DATA [--model DIR] --operator approve-all|guarded|never [--leverage X] [--json]`."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from pathlib import Path

from guard import logs
from guard.config import Config, load_config
from guard.domain import Bar
from guard.errors import BadInput
from guard.feed.history import read_bars
from guard.model.artifact import load_model
from guard.paths import StatePaths
from guard.replay.engine import ReplayEngine, ReplayOptions
from guard.replay.history import SymbolHistory
from guard.replay.operator import OperatorPolicy, ScriptedOperator
from guard.replay.report import to_plain, write_reports
from guard.replay.result import ReplayResult


def load_histories(paths: list[str]) -> list[SymbolHistory]:
    """Read history files (several may hold the same symbol, for different periods) into arrays.

    Raises:
        BadInput: a file is unreadable, or two files repeat a bar of the same symbol.
    """
    by_symbol: dict[str, list[Bar]] = {}
    for path in paths:
        for bar in read_bars(path):
            by_symbol.setdefault(bar.symbol, []).append(bar)
    out = []
    for symbol, bars in by_symbol.items():
        bars.sort(key=lambda b: b.open_time)
        for a, b in pairwise(bars):
            if a.open_time == b.open_time:
                raise BadInput(f"{symbol}: two bars open at {a.open_time} (do the files overlap?)")
        out.append(SymbolHistory.from_bars(bars))
    return out


def parse_leverage(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        value = Decimal(text.rstrip("xX"))
    except InvalidOperation:
        raise BadInput(f"--leverage {text!r}: a number between 1 and 20, e.g. 5 or 5x") from None
    if not value.is_finite() or not 1 <= value <= 20:
        raise BadInput(f"--leverage {text}: must be between 1 and the hard cap of 20")
    return value


def run_replay(
    config: Config, data: list[str], model_dir: str, options: ReplayOptions, directory: Path
) -> ReplayResult:
    """Replay history files into `directory` (journal and reports)."""
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


def replay(args: argparse.Namespace) -> int:
    """Run the replay, write its reports; exit 0 unless an invariant was violated."""
    config = load_config(args.config)
    logs.configure(level="error", fmt=config.log.format)
    leverage = parse_leverage(args.leverage)
    policy = OperatorPolicy(args.operator)
    options = ReplayOptions(
        operator=ScriptedOperator(policy, min_confidence=args.min_confidence),
        leverage=leverage,
        intrabar=not args.close_only,
        explain=args.explain,
    )
    if args.out:
        directory = Path(args.out)
    else:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        stem = Path(args.data[0]).stem
        lev = f"{leverage}x" if leverage is not None else "policy"
        directory = StatePaths(config.state_dir).replays / f"{stamp}-{stem}-{policy.value}-{lev}"
    result = run_replay(config, args.data, args.model or config.model.path, options, directory)
    if args.json:
        print(json.dumps(to_plain(result), indent=1, default=str))
    else:
        print((directory / "report.md").read_text())
        print(f"reports: {directory}/report.md, report.json, equity.png")
    return 1 if result.violations else 0
