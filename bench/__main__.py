"""Run benchmarks and print one JSON object per figure.

python -m bench               run every benchmark and rewrite docs/BENCHMARKS.md
python -m bench NAME...       run only these and print their figures
python -m bench --list        list the benchmarks
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).parent
DOC = BENCH_DIR.parent / "docs" / "BENCHMARKS.md"


def available() -> list[str]:
    return sorted(p.stem for p in BENCH_DIR.glob("*.py") if not p.stem.startswith("_"))


def run(name: str, quick: bool) -> list[dict[str, Any]]:
    module = importlib.import_module(f"bench.{name}")
    figures = []
    for figure in module.run(quick=quick):
        figure = {"bench": name, **figure}
        print(json.dumps(figure), flush=True)
        figures.append(figure)
    return figures


def write_doc(results: dict[str, list[dict[str, Any]]], seconds: float) -> None:
    lines = [
        "# Benchmarks",
        "",
        "Produced by `python -m bench` (every benchmark; this file is rewritten by it).",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, "
        f"Python {platform.python_version()}, {_cpus()} CPUs; took {seconds:.0f} s.",
        "",
    ]
    for name, figures in results.items():
        module = importlib.import_module(f"bench.{name}")
        lines += [f"## {name}", "", (module.__doc__ or "").strip(), "", f"`python -m bench {name}`", ""]
        lines += ["| figure | value | unit | p50 | p99 | target | met |", "|---|---|---|---|---|---|---|"]
        for f in figures:
            met = f.get("met")
            met_text = "" if met is None else ("yes" if met else "**no**")
            lines.append(
                f"| {f['figure']} | {_fmt(f.get('value'))} | {f.get('unit', '')} | {_fmt(f.get('p50'))} "
                f"| {_fmt(f.get('p99'))} | {f.get('target', '')} | {met_text} |"
            )
        notes = [f["note"] for f in figures if f.get("note")]
        lines += ["", *[f"- {n}" for n in notes], ""]
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text("\n".join(lines))


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _cpus() -> int:
    import os

    return os.cpu_count() or 1


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("names", nargs="*")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke test")
    args = parser.parse_args()
    args.names = [n.replace("-", "_") for n in args.names]  # module names cannot hold "-": venue-faults is venue_faults
    if args.list:
        print("\n".join(available()))
        return 0
    unknown = [n for n in args.names if n not in available()]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available())}", file=sys.stderr)
        return 2
    started = time.monotonic()
    results = {name: run(name, args.quick) for name in (args.names or available())}
    if not args.names and not args.quick:
        write_doc(results, time.monotonic() - started)
        print(f"wrote {DOC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
