"""Replay reports a person reads: Markdown, JSON and an equity-curve PNG.

Numbers come from the replay's journal as it committed (counts) and from the books at the
end (money); the equity curve is marked at every bar close with the positions held then.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from guard.replay.fates import Fate, Fates, ProposalEnd, fates_plain
from guard.replay.fit import fit_banner, fit_warnings
from guard.replay.result import ModelOutlook, ReplayResult
from guard.wording import count, utc_minute

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
EQUITY_PNG = "equity.png"


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.1%}"


def _brier(x: float | None) -> str:
    return "—" if x is None else f"{x:.4f}"


def liquidation_rate(r: ReplayResult) -> float | None:
    """Liquidated positions as a fraction of positions opened."""
    opened = sum(r.stats.positions_opened.values())
    return r.stats.liquidations / opened if opened else None


def summary(r: ReplayResult) -> dict[str, Any]:
    """The headline figures, as plain values."""
    t = r.tracker
    opened = sum(r.stats.positions_opened.values())
    return {
        "symbols": list(r.symbols),
        "bars": r.bars,
        "from": _when(r.first_ms),
        "to": _when(r.last_ms),
        "model": r.model_id,
        "operator": r.operator,
        "leverage": r.leverage,
        "currency": r.currency,
        "money_note": r.money_note,
        "starting_balance": float(r.starting_balance),
        "final_equity": round(float(r.final_equity), 2),
        "pnl": round(float(r.pnl), 2),
        "return": float(r.pnl / r.starting_balance),
        "max_drawdown": r.max_drawdown,
        "realized_pnl": round(float(r.realized_pnl), 2),
        "fees": round(float(r.fees), 2),
        "funding": round(float(r.funding), 2),
        "liquidation_losses": round(float(r.liquidation_losses), 2),
        "positions_opened": opened,
        "liquidations": r.stats.liquidations,
        "liquidation_rate": liquidation_rate(r),
        "proposals": r.stats.proposals,
        "approved": r.stats.approved,
        "rejected": r.stats.rejected,
        "refused": r.stats.refused,
        "fills": r.stats.fills,
        "stops": r.stats.stops,
        "take_profits": r.stats.take_profits,
        "funding_payments": r.stats.funding_payments,
        "reducing_latches": r.stats.reducing_latches,
        "rearms": r.stats.rearms,
        "model_paused": r.stats.model_paused,
        "open_positions_at_end": r.open_positions,
        "hit_rate": t.hit_rate,
        "mean_confidence": t.mean_confidence,
        "scored": t.scored,
        "brier": t.brier,
        "claimed_brier": t.claimed_brier,
        "in_sample_bars": r.outlook.in_sample_bars,
        "model_data_window": [utc_minute(r.outlook.training_start_ms), utc_minute(r.outlook.training_end_ms)],
        "model_fit": {
            "warnings": fit_warnings(r.outlook),
            "synthetic": r.outlook.synthetic,
            "trained_symbols": list(r.outlook.trained_symbols),
            "scored_bars": r.outlook.scored_bars,
            "scored_fraction": r.outlook.scored_bars / r.outlook.bars if r.outlook.bars else None,
            "novelty_quantiles": dict(zip(("p10", "p50", "p90", "p99"), r.outlook.novelty.quantiles, strict=False)),
            "novel_share": r.outlook.novelty.novel_share,
            "too_old_bars": r.outlook.too_old_bars,
            "max_age_days": r.outlook.max_age_days,
        },
        "best_confidence": r.outlook.best_confidence,
        "confident_bars": r.outlook.confident_bars,
        "violations": list(r.violations),
        "seconds": round(r.seconds, 3),
        "bars_per_second": round(r.bars_per_second),
        "journal": str(r.journal),
    }


def to_plain(r: ReplayResult) -> dict[str, Any]:
    """The whole report as JSON-ready values."""
    t = r.tracker
    return {
        **summary(r),
        "calibration": [
            {
                "lo": b.lo,
                "hi": b.hi,
                "live_count": b.live_count,
                "live_confidence": b.live_confidence,
                "live_hit_rate": b.live_hit_rate,
                "claimed_hit_rate": b.claimed_hit_rate,
                "claimed_count": b.claimed_count,
            }
            for b in t.buckets
        ],
        "fates": fates_plain(r.fates) if r.fates is not None else None,
        "by_leverage": r.by_leverage,
        "positions_opened_by_leverage": r.stats.positions_opened,
        "liquidated_by_leverage": r.stats.liquidated,
    }


def markdown(r: ReplayResult, data: Sequence[str] = ()) -> str:
    """The report as Markdown."""
    s = summary(r)
    t = r.tracker
    lines = [
        f"# Replay: {', '.join(r.symbols)} — {r.operator}, leverage {r.leverage}",
        "",
        f"{r.bars:,} bars from {s['from']} to {s['to']} UTC"
        + (f" ({', '.join(data)})" if data else "")
        + f", model `{r.model_id}`, in {r.seconds:.1f} s ({r.bars_per_second:,.0f} bars/s).",
        "",
        *fit_banner(r.outlook),
        *([in_sample_warning(r.outlook, r.bars), ""] if r.outlook.in_sample_bars else []),
        *([f"> {r.money_note}", ""] if r.money_note else []),
        "| | |",
        "|---|---|",
        f"| PnL | {s['pnl']:,.2f} {r.currency} ({s['return']:+.2%} of {s['starting_balance']:,.0f}) |",
        f"| max drawdown | {s['max_drawdown']:.2%} |",
        f"| realized / fees / funding | {s['realized_pnl']:,.2f} / {s['fees']:,.2f} / {s['funding']:,.2f} |",
        f"| liquidations | {s['liquidations']} of {s['positions_opened']} positions opened "
        f"({_pct(s['liquidation_rate'])}), {s['liquidation_losses']:,.2f} {r.currency} of margin lost |",
        f"| proposals | {s['proposals']:,} queued, {s['approved']:,} approved, {s['rejected']:,} rejected by the "
        f"operator, {s['refused']:,} not queued (every end below) |",
        f"| exits | {s['stops']:,} stops, {s['take_profits']:,} take-profits, "
        f"{s['funding_payments']} funding payments |",
        f"| daily loss limit | latched REDUCING {count(s['reducing_latches'], 'time')}, re-armed {s['rearms']} |",
        f"| positions open at the end | {s['open_positions_at_end']} |",
        f"| invariant violations | {len(r.violations)} |",
        "",
    ]
    if r.fates is not None and r.fates.ends:
        lines += fates_section(r.fates)
    if not r.stats.proposals and not r.stats.refused:  # else the table says the desk refused them
        lines += [f"**No proposals.** {why_no_proposals(r.outlook)}", ""]
    if r.stats.model_paused:
        lines += [f"**The live tracker paused the model**: {r.stats.model_paused}. No proposals after that.", ""]
    lines += [
        "## The model and these bars",
        "",
        fit_figures(r.outlook),
        "",
        "## The model against its card",
        "",
        (
            f"{count(t.scored, 'proposal')} settled at the horizon: hit rate {_pct(t.hit_rate)} where the model "
            f"claimed {_pct(t.mean_confidence)} on average; Brier {_brier(t.brier)} against "
            f"{_brier(t.claimed_brier)} if the card were right."
            if t.scored
            else "No proposal settled at its horizon: nothing to hold against the card."
        ),
        "",
        "| confidence | proposals | live hit rate | card's hit rate (test split) |",
        "|---|---|---|---|",
        *[
            f"| {b.lo:.2f}–{b.hi:.2f} | {b.live_count} | {_pct(b.live_hit_rate)} | {_pct(b.claimed_hit_rate)} |"
            for b in t.buckets
            if b.live_count
        ],
        "",
        "## Per leverage level",
        "",
        "| leverage | proposals | approved | positions opened | liquidated | fraction liquidated |",
        "|---|---|---|---|---|---|",
        *[
            f"| {lev}x | {int(v['proposals'])} | {int(v['approved'])} | {int(v['positions'])} | {int(v['liquidated'])} "
            f"| {_pct(v['liquidated'] / v['positions'] if v['positions'] else None)} |"
            for lev, v in r.by_leverage.items()
        ],
        "",
        f"![equity]({EQUITY_PNG})",
        "",
        f"Journal: `{r.journal}` (`guard journal verify` reads it with GUARD_HOME set to its directory).",
        "",
    ]
    return "\n".join(lines)


LISTED = 200
"""The Markdown lists this many proposals' ends one by one (report.json lists them all)."""


def fates_section(f: Fates) -> list[str]:
    """Every proposal's end: the counts per fate (they add up to the proposals made), then each proposal."""
    details = f.details()
    made = len(f.ends)
    lines = [
        "## Every proposal's end",
        "",
        f"{count(made, 'proposal')} made: {f.queued:,} queued by the desk"
        + (f", {made - f.queued:,} not queued (the desk refused them on arrival)" if made > f.queued else "")
        + ". Each ended in exactly one way:",
        "",
        "| end | proposals | of which |",
        "|---|---|---|",
        *[
            f"| {fate} | {n:,} | {', '.join(f'{d} {k:,}' for d, k in details.get(fate, {}).items())} |"
            for fate, n in f.counts().items()
        ],
        f"| **total** | **{made:,}** | |",
        "",
        "<details><summary>each proposal</summary>",
        "",
        "| proposal | bar time | symbol | side | end | why |",
        "|---|---|---|---|---|---|",
        *[
            f"| {e.proposal_id or '—'} | {_when(e.at)} | {e.symbol} | {e.side.value} | {e.fate} "
            f"| {_why(e).replace('|', '/')} |"
            for e in f.ends[:LISTED]
        ],
        *(["", f"...and {made - LISTED:,} more in report.json."] if made > LISTED else []),
        "",
        "</details>",
        "",
    ]
    return lines


def _why(e: ProposalEnd) -> str:
    """A proposal's end in a few words: the journaled reason, and the category when it adds something."""
    if e.fate is Fate.FILLED:
        return f"{e.reason}; {e.detail}"
    return e.reason or e.detail


def in_sample_warning(o: ModelOutlook, bars: int) -> str:
    """A replay on bars the model was trained on flatters it: say so before any figure. Time is all there is to
    go on (the training bars are not stored), so for a model trained on simulated data the overlap may be
    another simulation's bars: the sentence says "where"."""
    return (
        f"> **In-sample: {o.in_sample_bars:,} of these {bars:,} bars ({o.in_sample_bars / bars:.0%}) fall in the "
        f"time window of the model's training data ({utc_minute(o.training_start_ms)} to "
        f"{utc_minute(o.training_end_ms)}).** Where they are the bars it learned from, it looks better on them "
        "than it will on bars it has never seen: replay history from outside that window for a fair figure."
    )


def fit_figures(o: ModelOutlook) -> str:
    """How much of the history the model could read, how novel it looked, and how old the model was on it."""
    spread = o.novelty
    scored = f"{o.scored_bars:,} of {o.bars:,} bars ({_pct(o.scored_bars / o.bars if o.bars else None)})"
    novelty = (
        "novelty p10/p50/p90/p99 "
        + " / ".join(f"{q:.2f}" for q in spread.quantiles)
        + f", {_pct(spread.novel_share)} flagged novel"
        if spread.quantiles
        else "no novelty scores"
    )
    age = (
        f"; past model.max_age_days = {o.max_age_days:g} on {count(o.too_old_bars, 'confident bar')} (no proposal)"
        if o.too_old_bars
        else f"; never past model.max_age_days = {o.max_age_days:g} on these bars"
    )
    trained = "synthetic data" if o.synthetic else "data its card does not call synthetic"
    return (
        f"The model scored {scored}: {novelty}{age}. It was trained on {trained}"
        + (f" ({o.trained_on})" if o.trained_on else "")
        + "."
    )


def why_no_proposals(o: ModelOutlook) -> str:
    """What stopped every proposal, from what the model said over the history."""
    if o.confident_bars and o.too_old_bars == o.confident_bars:
        return (
            f"The model was confident on {count(o.confident_bars, 'bar')}, every one of them after its age limit "
            f"(model.max_age_days = {o.max_age_days:g}, on the bars' time): as live, an expired model proposes "
            "nothing. Retrain it on data near these bars."
        )
    if o.best_confidence is None:
        return (
            "The model named no side on any bar: it saw no trade, or no stretch of the history was long enough "
            "for it to answer."
        )
    if not o.confident_bars:
        return (
            f"The model named a side on {count(o.sided_bars, 'bar')}, at most {o.best_confidence:.0%} confident: "
            f"below proposals.min_confidence ({o.min_confidence:.0%}). Lower it only if you mean to act on "
            "weaker calls."
        )
    return (
        f"The model was at least {o.min_confidence:.0%} confident on {count(o.confident_bars, 'bar')}, and the "
        "policy proposed on none of them: novel inputs (model.novelty_policy = suppress), or a size below the "
        "market's minimum."
    )


def equity_chart(
    results: Sequence[ReplayResult],
    path: Path,
    title: str = "",
    rows: Sequence[Sequence[ReplayResult]] = (),
    row_labels: Sequence[str] = (),
) -> None:
    """Equity curves (one panel each, side by side, same scale) with drawdown shaded.

    Args:
        rows: several rows of results instead of `results` (one row per variant).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = [list(r) for r in rows] if rows else [list(results)]
    n = max(len(r) for r in grid)
    fig, axes = plt.subplots(len(grid), n, figsize=(max(6.0, 3.2 * n), 4.2 * len(grid)), sharey=True, squeeze=False)
    for k, row in enumerate(grid):
        if row_labels:
            axes[k][0].annotate(row_labels[k], (0, 1.18), xycoords="axes fraction", fontsize=10, weight="bold")
        for ax, r in zip(axes[k], row, strict=False):
            _panel(ax, r)
        axes[k][0].set_ylabel("equity, USDT")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _panel(ax: Any, r: ReplayResult) -> None:
    days = (r.times - r.times[0]) / 86_400_000
    peaks = np.maximum.accumulate(r.equity)
    ax.plot(days, r.equity, lw=1.0, color="tab:blue")
    ax.fill_between(days, r.equity, peaks, color="tab:red", alpha=0.25, lw=0)
    ax.axhline(float(r.starting_balance), color="gray", lw=0.8, ls="--")
    for at, kind, _symbol in r.stats.markers:
        if kind == "liquidation":
            ax.axvline((at - r.times[0]) / 86_400_000, color="tab:red", lw=0.8)
    rate = liquidation_rate(r)
    label = "leverage by the policy" if r.leverage == "policy" else f"{r.leverage}x"
    ax.set_title(
        f"{label}: PnL {float(r.pnl):+,.0f}, DD {r.max_drawdown:.1%}\nliquidated {r.stats.liquidations} ({_pct(rate)})",
        fontsize=9,
    )
    ax.set_xlabel("days (red fill: drawdown; red lines: liquidations)", fontsize=8)
    ax.grid(alpha=0.3)


def write_reports(r: ReplayResult, directory: Path, data: Sequence[str] = ()) -> tuple[Path, Path, Path]:
    """Write report.md, report.json and equity.png."""
    directory.mkdir(parents=True, exist_ok=True)
    md, js, png = directory / REPORT_MD, directory / REPORT_JSON, directory / EQUITY_PNG
    js.write_text(json.dumps(to_plain(r), indent=1, default=str))
    md.write_text(markdown(r, data))
    equity_chart([r], png, f"{', '.join(r.symbols)} — {r.operator}")
    return md, js, png
