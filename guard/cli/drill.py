"""`guard drill SCENARIO [--scripted] [--json]` and `guard drill history`: run kill-switch drills, list past ones."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from guard import codec, logs
from guard.config import load_config
from guard.drill.scenarios import SCENARIOS, scenario
from guard.paths import StatePaths


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `guard drill`."""
    drill_cmd = sub.add_parser(
        "drill",
        help="run a kill-switch drill against the simulated exchange, or list past drills",
        description="Drills run a daemon of their own (state in <state dir>/drills/<time>-<scenario>/home) and "
        "write report.md, report.json and chart.png beside it. Exit 0 when every bound was met.",
    )
    drill_cmd.add_argument(
        "scenario",
        metavar="SCENARIO",
        choices=(*SCENARIOS, "history"),
        help=f"one of {', '.join(SCENARIOS)}; or `history` to list past drills",
    )
    drill_cmd.add_argument(
        "--scripted",
        action="store_true",
        help="an automated operator kills after a set delay (CI); without it a person at `guard tui` is told "
        "'DRILL: ...' and their reaction time is measured",
    )
    drill_cmd.add_argument("--json", action="store_true", help="print the report as JSON")
    drill_cmd.set_defaults(handler=drill)


def drill(args: argparse.Namespace) -> int:
    """Run a drill and write its reports; exit 0 when it met every bound, 1 when it did not."""
    from guard.drill.options import DrillOptions
    from guard.drill.report import format_history, history, result_plain, write_reports
    from guard.drill.runner import run_drill

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
