"""`guard replay DATA [--model DIR] --operator approve-all|guarded|never [--leverage X] [--json]`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path

from guard import logs
from guard.config import load_config
from guard.errors import BadInput
from guard.paths import StatePaths
from guard.replay.operator import OperatorPolicy, ScriptedOperator


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `guard replay`."""
    replay_cmd = sub.add_parser(
        "replay",
        help="run history through features, model, proposals, risk, approval, paper broker and journal",
        description="Writes report.md, report.json, equity.png and the replay's journal to "
        "<state dir>/replays/<time>-<name>/. Exit 0 when the replay completed without an invariant violation.",
    )
    replay_cmd.add_argument("data", nargs="+", metavar="DATA", help="history files (CSV or Parquet, guard's format)")
    replay_cmd.add_argument("--model", default=None, metavar="DIR", help="model directory (default: model.path)")
    replay_cmd.add_argument(
        "--spec",
        action="append",
        default=[],
        metavar="FILE",
        help="a market spec file (guard.market-specs/1, as `guard history fetch|import` write beside the bars); "
        "repeatable; wins over the spec saved beside the history and over guard's built-in specs",
    )
    replay_cmd.add_argument(
        "--convert",
        action="append",
        default=[],
        metavar="PAIR=FILE",
        help="the price of the markets' money currency in the account's USDT, e.g. BTC/USDT=btc-usdt-1h.csv for "
        "ETH/BTC (a history file covering the replay); required when the markets count money in another currency",
    )
    replay_cmd.add_argument(
        "--operator",
        required=True,
        choices=tuple(p.value for p in OperatorPolicy),
        help="the scripted operator: approve everything; approve only when every check passes, confidence >= "
        "--min-confidence and the input is not novel; or never approve",
    )
    replay_cmd.add_argument(
        "--min-confidence",
        type=float,
        default=0.6,
        metavar="X",
        help="the guarded operator's confidence floor (default 0.6)",
    )
    replay_cmd.add_argument(
        "--leverage",
        default=None,
        metavar="X",
        help="replay every proposal at this leverage (1..20; above 3x the replay records the "
        "leverage acknowledgment); default: the policy's. Spot markets trade at 1x: it does not "
        "apply to them",
    )
    replay_cmd.add_argument(
        "--close-only",
        action="store_true",
        help="marks at bar closes only (default: each bar's extremes are visited before its close)",
    )
    replay_cmd.add_argument("--explain", action="store_true", help="compute each proposal's 'why' (slow)")
    replay_cmd.add_argument("--out", default=None, metavar="DIR", help="report directory (default: under replays/)")
    replay_cmd.add_argument("--json", action="store_true", help="print the report as JSON")
    replay_cmd.set_defaults(handler=replay)


def parse_leverage(text: str | None) -> Decimal | None:
    """--leverage as a number between 1 and the hard cap (a trailing x is allowed); None when not given."""
    if text is None:
        return None
    try:
        value = Decimal(text.rstrip("xX"))
    except InvalidOperation:
        raise BadInput(f"--leverage {text!r}: a number between 1 and 20, e.g. 5 or 5x") from None
    if not value.is_finite() or not 1 <= value <= 20:
        raise BadInput(f"--leverage {text}: must be between 1 and the hard cap of 20")
    return value


def replay(args: argparse.Namespace) -> int:
    """Run the replay, write its reports; exit 0 unless an invariant was violated."""
    from guard.replay.engine import ReplayOptions
    from guard.replay.report import to_plain
    from guard.replay.run import run_replay

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
    result = run_replay(
        config,
        args.data,
        args.model or config.model.path,
        options,
        directory,
        spec_files=args.spec,
        converts=args.convert,
        notes=lambda line: print(line, file=sys.stderr),
    )
    if args.json:
        print(json.dumps(to_plain(result), indent=1, default=str))
    else:
        print((directory / "report.md").read_text())
        print(f"reports: {directory}/report.md, report.json, equity.png")
    return 1 if result.violations else 0
