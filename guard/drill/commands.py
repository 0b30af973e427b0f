"""`guard drill SCENARIO [--scripted] [--json]` and `guard drill history`: the command-line side of drills."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from guard import codec, logs
from guard.config import load_config
from guard.drill.report import format_history, history, result_plain, write_reports
from guard.drill.runner import DrillOptions, run_drill
from guard.drill.scenarios import scenario
from guard.paths import StatePaths


def drill(args: argparse.Namespace) -> int:
    """Run a drill and write its reports; exit 0 when it met every bound, 1 when it did not."""
    config = load_config(args.config)
    # The report is the output: only errors go to the log while a drill runs.
    logs.configure(level="error", fmt=config.log.format)
    drills = StatePaths(config.state_dir).drills
    if args.scenario == "history":
        rows = history(drills)
        if args.json:
            print(json.dumps([codec.to_plain(r) for r in rows], indent=1, default=str))
        else:
            print(format_history(rows))
        return 0
    sc = scenario(args.scenario)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    directory = drills / f"{stamp}-{sc.name}"
    options = DrillOptions(scripted=args.scripted)

    def announce(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    announce(f"drill {sc.name}: {sc.title} ({'scripted' if args.scripted else 'operator-driven'})")
    result = asyncio.run(run_drill(config, sc, options, directory / "home", announce))
    md, js, png = write_reports(result, directory)
    if args.json:
        print(json.dumps(result_plain(result), indent=1, allow_nan=False, default=str))
    else:
        print(md.read_text())
        print(f"reports: {md}\n         {js}\n         {png}")
    return 0 if result.passed else 1
