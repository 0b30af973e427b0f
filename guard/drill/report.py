"""Drill reports a person reads: Markdown, JSON and one chart, in the state directory's drills/.

Each drill gets its own directory, `drills/<UTC time>-<scenario>/`, holding `report.md`,
`report.json`, `chart.png` and `home/` (the drill daemon's own journal, token and log).
`guard drill history` reads the JSON files back.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guard import codec
from guard.drill.figures import DrillResult
from guard.wording import count

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
CHART = "chart.png"


@dataclass(frozen=True, slots=True)
class DrillSummary:
    """One line of `guard drill history`."""

    directory: Path
    scenario: str
    mode: str
    started_at: str
    passed: bool
    detection_s: float | None
    reaction_s: float | None
    halted_ms: float | None
    last_cancel_ms: float | None
    flat_ms: float | None
    positions_left: int
    orders_left: int
    violations: int


def result_plain(result: DrillResult) -> dict[str, Any]:
    """The report's JSON: every figure, the named moments, and the chart's data."""
    plain: dict[str, Any] = codec.to_plain(result)
    plain["samples"] = [
        {
            "t": round(s.t, 4),
            "marks": s.marks,
            "positions": {k: list(v) for k, v in s.positions.items()},
            "equity": round(s.equity, 4),
        }
        for s in result.samples
    ]
    return plain


def _ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1000:.1f} ms"


def _s(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds:.3f} s"


def _who(r: DrillResult) -> str:
    """Who drove the drill, each name once: "scripted operator", "operator-driven: alice pulled the kill"."""
    if r.mode == "scripted":
        return "scripted operator"
    if r.killed_by:
        return f"operator-driven: {r.killed_by} pulled the kill"
    return "operator-driven: nobody pulled the kill, the drill did"


def _would_have(loss: float) -> str:
    """A loss in words with its sign taken into account: "would have lost 9.23 USDT", "would have gained 9.23"."""
    if round(loss, 2) == 0:
        return "would have ended even"
    return f"would have {'lost' if loss > 0 else 'gained'} {abs(loss):.2f} USDT"


def markdown(result: DrillResult) -> str:
    """The report as Markdown."""
    r = result
    verdict = "PASSED" if r.passed else "FAILED"
    b = r.bounds
    rows = [
        ("detection (fault → alert on the operator's client)", _s(r.detection_s), f"≤ {b['detection_s']:g} s"),
        ("reaction (alert → kill sent)", _s(r.reaction_s), "scripted delay" if r.mode == "scripted" else "a person"),
        ("time to HALTED in the journal (new orders blocked)", _ms(r.halted_s), f"≤ {b['halted_ms']:g} ms"),
        (
            "time to HALTED acknowledged to the operator",
            "—" if r.halted_ack_ms is None else f"{r.halted_ack_ms:.1f} ms",
            "",
        ),
        ("time to the last order cancelled", _ms(r.last_cancel_s), ""),
        ("time to flat (positions re-read flat)", _ms(r.flat_s), f"≤ {b['flat_s']:g} s"),
        ("kill, as the daemon measured it", "—" if r.kill_internal_ms is None else f"{r.kill_internal_ms:.1f} ms", ""),
        ("positions left at the end", str(r.positions_left), "0"),
        ("open orders left at the end", str(r.orders_left), "0"),
        ("invariant violations", str(len(r.violations)), "0"),
    ]
    lines = [
        f"# Drill: {r.scenario} — {verdict}",
        "",
        f"{r.title}.",
        "",
        f'Started {r.started_at} ({_who(r)}). Detected by the `{r.detected_by}` alert: "{r.alert_text}".',
        "",
        "| figure | measured | bound |",
        "|---|---|---|",
        *[f"| {a} | {m} | {bound} |" for a, m, bound in rows],
        "",
        "## Each order cancelled (from the kill)",
        "",
        ", ".join(f"{t * 1000:.1f} ms" for t in r.cancels_s) or "none were open",
        "",
        "## Money",
        "",
        f"- Loss from the fault to flat: {r.loss_at_flat:.2f} USDT "
        f"({count(r.positions_flattened, 'position')} flattened, {count(r.orders_cancelled, 'order')} cancelled).",
        f"- Counterfactual, no kill: the positions held at the kill, kept to the end of the observation "
        f"window, {_would_have(r.counterfactual_loss)}.",
        f"- The kill {'saved' if r.counterfactual_loss >= r.loss_at_flat else 'cost'} "
        f"{abs(r.counterfactual_loss - r.loss_at_flat):.2f} USDT against holding, over this window only.",
        "",
    ]
    if r.scenario == "runaway-model":
        lines += [f"Execution throttle latched: {'yes' if r.throttle_latched else 'NO'}.", ""]
    if r.failures:
        lines += ["## Failures", "", *[f"- {f}" for f in r.failures], ""]
    if r.violations:
        lines += ["## Invariant violations", "", *[f"- {v}" for v in r.violations], ""]
    if r.problems:
        lines += ["## Problems the kill switch reported", "", *[f"- {p}" for p in r.problems], ""]
    if r.notes:
        lines += ["## Notes", "", *[f"- {n}" for n in r.notes], ""]
    lines += [
        "## Timeline (seconds from the fault)",
        "",
        *[f"- {k}: {v:+.3f}" for k, v in sorted(r.timeline.items(), key=lambda kv: kv[1])],
        "",
        f"![price, positions and events]({CHART})",
        "",
        f"The drill daemon's journal is in `{r.home}` (`GUARD_HOME={r.home} guard journal verify`).",
        "",
    ]
    return "\n".join(lines)


def chart(result: DrillResult, path: Path) -> None:
    """Price, positions and events on one time axis, as a PNG (matplotlib, Agg: never a display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = result.samples
    fig, (ax_price, ax_pos) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True, height_ratios=(3, 2))
    t = [s.t for s in samples]
    symbols = sorted({k for s in samples for k in s.marks})
    for symbol in symbols:
        base = next((s.marks[symbol] for s in samples if symbol in s.marks and s.t >= 0), None)
        base = base or next((s.marks[symbol] for s in samples if symbol in s.marks), 1.0)
        ax_price.plot(t, [100 * (s.marks.get(symbol, math.nan) / base - 1) for s in samples], label=symbol, lw=1.2)
    ax_price.set_ylabel("price, % from the fault")
    for symbol in symbols:
        ax_pos.step(
            t,
            [s.positions.get(symbol, (0.0, 0.0))[0] * s.marks.get(symbol, 0.0) for s in samples],
            where="post",
            label=symbol,
            lw=1.2,
        )
    ax_pos.set_ylabel("position notional, USDT")
    ax_pos.set_xlabel("seconds from the fault")
    moments = [
        ("event", "fault", "tab:red"),
        ("detected", "alert seen", "tab:orange"),
        ("kill_sent", "kill sent", "black"),
        ("halted_reply", "HALTED ack", "tab:purple"),
    ]
    for key, label, colour in moments:
        if key in result.timeline:
            for ax in (ax_price, ax_pos):
                ax.axvline(result.timeline[key], color=colour, lw=1, ls="--", label=label if ax is ax_price else None)
    kill = result.timeline.get("kill_sent")
    if kill is not None:
        for c in result.cancels_s:
            ax_pos.axvline(kill + c, color="tab:gray", lw=0.6, alpha=0.6)
        if result.flat_s is not None:
            ax_pos.axvline(kill + result.flat_s, color="darkgreen", lw=1.5, ls="-.", label="flat")
    for tt, kind, _symbol in result.journal_events:
        if kind in ("fill", "liquidation"):
            ax_pos.plot([tt], [0], marker="v" if kind == "fill" else "X", color="tab:blue", ms=5)
    ax_price.legend(loc="best", fontsize=8, ncol=2)
    ax_pos.legend(loc="best", fontsize=8)
    verdict = "passed" if result.passed else "FAILED"
    ax_price.set_title(f"drill {result.scenario} ({result.mode}): {verdict}")
    for ax in (ax_price, ax_pos):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_reports(result: DrillResult, directory: Path) -> tuple[Path, Path, Path]:
    """Write report.md, report.json and chart.png into the drill's directory."""
    directory.mkdir(parents=True, exist_ok=True)
    md, js, png = directory / REPORT_MD, directory / REPORT_JSON, directory / CHART
    js.write_text(json.dumps(result_plain(result), indent=1, allow_nan=False, default=str))
    md.write_text(markdown(result))
    chart(result, png)
    return md, js, png


def history(drills: Path) -> list[DrillSummary]:
    """Past drills, oldest first, from their JSON reports (unreadable ones are skipped)."""
    out: list[DrillSummary] = []
    if not drills.exists():
        return out
    for directory in sorted(p for p in drills.iterdir() if p.is_dir()):
        try:
            data = json.loads((directory / REPORT_JSON).read_text())
        except (OSError, ValueError):
            continue
        out.append(
            DrillSummary(
                directory=directory,
                scenario=data["scenario"],
                mode=data["mode"],
                started_at=data["started_at"],
                passed=bool(data["passed"]),
                detection_s=data.get("detection_s"),
                reaction_s=data.get("reaction_s"),
                halted_ms=None if data.get("halted_s") is None else data["halted_s"] * 1000,
                last_cancel_ms=None if data.get("last_cancel_s") is None else data["last_cancel_s"] * 1000,
                flat_ms=None if data.get("flat_s") is None else data["flat_s"] * 1000,
                positions_left=int(data["positions_left"]),
                orders_left=int(data["orders_left"]),
                violations=len(data.get("violations", [])),
            )
        )
    return out


def format_history(rows: Sequence[DrillSummary]) -> str:
    """`guard drill history` as a table."""
    if not rows:
        return "no drills yet: run one with `guard drill SCENARIO --scripted`"

    def f(v: float | None, digits: int = 1) -> str:
        return "—" if v is None else f"{v:.{digits}f}"

    header = (
        f"{'started':20} {'scenario':20} {'mode':9} {'result':7} {'detect s':>8} {'react s':>8} "
        f"{'halt ms':>8} {'cancel ms':>9} {'flat ms':>8} {'left':>5} {'viol':>4}"
    )
    lines = [header]
    for r in rows:
        lines.append(
            f"{r.started_at:20} {r.scenario:20} {r.mode:9} {'pass' if r.passed else 'FAIL':7} "
            f"{f(r.detection_s, 3):>8} {f(r.reaction_s, 3):>8} {f(r.halted_ms):>8} {f(r.last_cancel_ms):>9} "
            f"{f(r.flat_ms):>8} {r.positions_left + r.orders_left:>5} {r.violations:>4}"
        )
    return "\n".join(lines)
