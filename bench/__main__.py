"""Run benchmarks and print one JSON object per figure.

python -m bench               run every benchmark and rewrite docs/BENCHMARKS.md
python -m bench NAME...       run only these and rewrite their sections of docs/BENCHMARKS.md
python -m bench --quick ...   smaller runs, printed only (a smoke test; the doc is left alone)
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


def write_doc(results: dict[str, tuple[list[dict[str, Any]], float]]) -> None:
    """Rewrite the sections of the benchmarks just run and keep the others as they were."""
    sections = _sections(DOC.read_text()) if DOC.exists() else {}
    for name, (figures, seconds) in results.items():
        sections[name] = _section(name, figures, seconds)
    header = [
        "# Benchmarks",
        "",
        "Produced by `python -m bench` (every benchmark) or `python -m bench NAME...` (those; the other sections",
        "stay as they were). Each section says when and where it was run; `met` compares with the issue's target.",
        "",
    ]
    order = [n for n in available() if n in sections] + sorted(set(sections) - set(available()))
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text("\n".join(header) + "\n" + "\n".join(sections[n] for n in order))


def _sections(text: str) -> dict[str, str]:
    sections: dict[str, str] = {}
    for chunk in text.split("\n## ")[1:]:
        name = chunk.split("\n", 1)[0].strip()
        sections[name] = "## " + chunk.rstrip("\n") + "\n"
    return sections


def _section(name: str, figures: list[dict[str, Any]], seconds: float) -> str:
    module = importlib.import_module(f"bench.{name}")
    lines = [
        f"## {name}",
        "",
        (module.__doc__ or "").strip(),
        "",
        f"`python -m bench {name}` — run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, "
        f"Python {platform.python_version()}, {_cpus()} CPUs; took {seconds:.0f} s.",
        "",
        "| figure | value | unit | p50 | p99 | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in figures:
        met = f.get("met")
        met_text = "" if met is None else ("yes" if met else "**no**")
        lines.append(
            f"| {f['figure']} | {_fmt(f.get('value'))} | {f.get('unit', '')} | {_fmt(f.get('p50'))} "
            f"| {_fmt(f.get('p99'))} | {f.get('target', '')} | {met_text} |"
        )
    notes = list(dict.fromkeys(f["note"] for f in figures if f.get("note")))  # figures may share one note
    return "\n".join([*lines, "", *[f"- {n}" for n in notes], ""])


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
    results = {}
    for name in args.names or available():
        started = time.monotonic()
        results[name] = (run(name, args.quick), time.monotonic() - started)
    if not args.quick:
        write_doc(results)
        print(f"wrote {DOC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
