"""The model card: config.json told in plain English for the person who approves the trades."""

from __future__ import annotations

from typing import Any

from guard.features import FEATURES, WARMUP_BARS, WINDOW
from guard.timeframes import timeframe_ms
from guard.wording import utc_minute

SYNTHETIC_WARNING = "This model was trained on synthetic data — a demonstration, not a trading edge."
_EDGE_POINTS = 0.02
"""Accuracy above the base rate, in points, below which the card says there is no edge."""
_BRIER_MARGIN = 0.005
"""Brier improvement over the training frequencies below which the card says there is no edge."""


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f} %"


def _duration(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    return f"{seconds / 60:g} min"


def _compare(model: float, baseline: float, lower_is_better: bool, margin: float) -> str:
    """ "better than", "worse than" or "no better than", from the numbers themselves."""
    gain = (baseline - model) if lower_is_better else (model - baseline)
    if gain > margin:
        return "better than"
    if gain < -margin:
        return "worse than"
    return "no better than"


def verdict(metrics: dict[str, Any]) -> str:
    """One honest sentence on whether the model beats guessing, built from its own numbers.

    Each comparison's wording ("better than", "no better than", "worse than") is derived from
    the figures it states, so the sentence cannot contradict the table below it.
    """
    accuracy, base = metrics["accuracy"], metrics["base_rate"]
    brier, brier_base = metrics["brier"], metrics["brier_baseline"]
    acc_words = _compare(accuracy, base, lower_is_better=False, margin=_EDGE_POINTS)
    brier_words = _compare(brier, brier_base, lower_is_better=True, margin=_BRIER_MARGIN)
    facts = (
        f"On its test split it is right {_pct(accuracy)} of the time — {acc_words} the {_pct(base)} of always "
        f"guessing the most common outcome — and its Brier score ({brier:.3f}) is {brier_words} predicting the "
        f"training frequencies ({brier_base:.3f})."
    )
    directional = metrics.get("directional", {})
    if directional.get("count") == 0 or directional.get("share") == 0:
        facts += " It named no side on any test window, so it made no call that could become a proposal."
    if acc_words == "better than" and brier_words == "better than":
        return (
            f"{facts} That is a measurement on one stretch of history, not a promise: markets change, and a "
            "backtest looks like proof and is not."
        )
    return f"**No edge.** {facts} Treat its proposals as noise with honest error bars."


def _calibration_note(m: dict[str, Any]) -> list[str]:
    before, after = m.get("ece_directional_uncalibrated"), m.get("ece_directional")
    what = "directional calls"
    if before is None or after is None:
        before, after, what = m["ece_uncalibrated"], m["ece"], "top answers"
    if after > before + 0.002:
        text = (
            f"Temperature scaling, fitted on the validation split, did not carry to the test split here "
            f"(ECE of its {what} {before:.4f} before, {after:.4f} after): the two periods differ, which is "
            "itself a warning about how far any calibration carries across time."
        )
    elif abs(after - before) <= 0.002:
        text = (
            f"The ensemble was already close to calibrated: temperature scaling changed the test ECE of its {what} "
            f"little ({before:.4f} before, {after:.4f} after)."
        )
    else:
        return []
    return [text, ""]


def _groups(m: dict[str, Any]) -> list[str]:
    groups = m.get("by_group")
    if not groups:
        return []
    lines = [
        "The same test split, by part of the data:",
        "",
        "| part | windows | accuracy | base rate |",
        "|---|---|---|---|",
    ]
    for name, g in groups.items():
        lines.append(f"| {name} | {g['windows']:,} | {_pct(g['accuracy'])} | {_pct(g['base_rate'])} |")
    return [*lines, ""]


def _ece_rows(m: dict[str, Any]) -> list[str]:
    rows = []
    if m.get("ece_directional") is not None:
        before = m.get("ece_directional_uncalibrated")
        rows.append(
            f"| **ECE of its directional calls** | {m['ece_directional']:.4f} | "
            + (f"{before:.4f} before temperature scaling |" if before is not None else "– |")
        )
    elif "ece_directional" in m:
        rows.append("| ECE of its directional calls | – (it named no side) | – |")
    rows.append(
        f"| ECE, all three outcomes | {m['ece']:.4f} | {m['ece_uncalibrated']:.4f} before temperature scaling |"
    )
    return rows


def _directional_section(m: dict[str, Any]) -> list[str]:
    d = m["directional"]
    count = d.get("count", round(d["share"] * m.get("test_windows", 0)))
    if not d["buckets"] or count == 0:
        return [
            f"**It named no side on any of its {m.get('test_windows', 0):,} test windows**: flat was likelier "
            "than up and down every time. There is no hit rate to claim and nothing for the live tracker to hold "
            "it to, and on data like this it would propose nothing.",
            "",
        ]
    lines = [
        "Test-split windows where it named a side, grouped by its confidence. This is the claim the live "
        "tracker holds it to: a model whose live hit rate falls clearly below it is paused.",
        "",
        "| confidence | windows | mean confidence | hit rate |",
        "|---|---|---|---|",
        *[
            f"| {b['lo']:.2f}–{b['hi']:.2f} | {b['count']:,} | {_pct(b['confidence'])} | {_pct(b['hit_rate'])} |"
            for b in d["buckets"]
        ],
        "",
        f"It named a side for {_pct(d['share'])} of test windows; those sides came true "
        f"{_pct(d['hit_rate'])} of the time. With the default `proposals.min_confidence` of "
        "0.55 only the rows from 0.55 up would become proposals.",
    ]
    if d.get("decided_hit_rate") is not None and d.get("break_even_hit_rate") is not None:
        words = "above" if d["decided_hit_rate"] > d["break_even_hit_rate"] else "not above"
        lines.append(
            f"Of its calls that reached a barrier ({d['decided']:,}), {_pct(d['decided_hit_rate'])} reached its "
            f"side's first — {words} the {_pct(d['break_even_hit_rate'])} a call needs to pay a round-trip cost "
            f"of {d['cost_bps']:g} bps at these barrier distances."
        )
    return [*lines, ""]


def _markets(source: dict[str, Any]) -> list[str]:
    """The market spec of each symbol (what its prices and money are in), and filled bars left out."""
    lines = [
        f"- Market: {m['described']}" + (f"; guessed: {'; '.join(m['guesses'])}" if m.get("guesses") else "")
        for m in source.get("markets") or []
    ]
    filled = sum(int(f.get("filled_dropped", 0)) for f in source.get("files") or [])
    if filled:
        lines.append(
            f"- {filled:,} filled bars (gaps filled flat by `guard history import --fill-gaps`) were left "
            "out: no window or label reaches across them."
        )
    return lines


def _real_shifts(m: dict[str, Any]) -> list[str]:
    shifts = m.get("novelty_real_shifts")
    if shifts is None:
        return [
            "",
            "Real regime shifts: not measured when this model was built (backtesting.py's sample data "
            "was not installed: `pip install -e '.[bench]'`).",
        ]
    lines = [
        "",
        "On real regime shifts — the same method fitted on each market's own history before the shift, scored "
        "on the shift against the ordinary weeks before it (guard/model/regimes.py says how each is dated; "
        '"held out": added after the method was chosen on the others, to check it). The method was chosen '
        "among the designs docs/model.md lists on the shifts not marked held out, so its figures there flatter "
        "it (selection bias); the held-out ones do not:",
        "",
        "| shift | novelty AUROC | 60-bar volatility AUROC | flagged at 0.95: ordinary / shift windows |",
        "|---|---|---|---|",
        *[
            f"| {r['name']} ({r['start']} to {r['end']}, {r['timeframe']}){' — held out' if r.get('held_out') else ''} "
            f"| {r['novelty_auroc']:.3f} | {r['volatility_auroc']:.3f} | "
            + (f"{_pct(r['flagged_ordinary'])} / {_pct(r['flagged_regime'])} |" if "flagged_regime" in r else "– |")
            for r in shifts
        ],
        "",
    ]
    beats = [r["name"] for r in shifts if r["novelty_auroc"] >= r["volatility_auroc"] + 0.10]
    below = [r["name"] for r in shifts if r["novelty_auroc"] < r["volatility_auroc"]]
    lines.append(
        f"Novelty beats 60-bar volatility by 0.10 AUROC or more on {len(beats)} of {len(shifts)} shifts"
        + (f" ({', '.join(beats)})" if beats else "")
        + "."
        + (
            f" It ranks the shift *below* the weeks before it on {', '.join(below)}: there the weeks before were "
            "quieter than the history it was fitted on and the shift no louder than that history, so novelty — "
            "which compares with the training data, in both directions — finds the quiet weeks the stranger "
            'ones, while volatility, which only asks "louder than before?", ranks the shift first. Novelty '
            "says when the model is outside its experience, not when the market has changed."
            if below
            else ""
        )
    )
    lines += [
        "",
        "These measure the method, not this model's fitted reference: on a market or timeframe unlike its "
        "training data this model's novelty is high nearly everywhere. Measure it on your data with "
        "`guard model eval`.",
    ]
    return lines


def render_card(config: dict[str, Any], weights_sha256: str) -> str:
    """Render README.md for an artifact's config."""
    m = config["metrics"]
    training = config["training"]
    source = config["data_source"]
    barrier = config["barrier"]
    tf = config["timeframe"]
    bar_s = timeframe_ms(tf) / 1000
    horizon_s = barrier["horizon_bars"] * bar_s
    splits = training["splits"]
    lines: list[str] = [f"# Model card: {config['name']}", ""]
    if source.get("synthetic"):
        lines += [f"> **{SYNTHETIC_WARNING}**", ""]
    lines += [
        f"A deep ensemble of {config['init_args']['members']} small causal convolutional networks "
        f"({config['parameters']:,} parameters in all) that reads the last {WINDOW} {tf} bars of one symbol "
        f"and says how likely the price is to rise by a set distance, fall by it, or do neither within "
        f"the next {barrier['horizon_bars']} bars ({_duration(horizon_s)}). It proposes; a person approves.",
        "",
        verdict(m),
        "",
        "## What it looks at",
        "",
        f"Each {tf} bar becomes {len(FEATURES)} numbers; the model sees the last {WINDOW} of them "
        f"(it needs {WARMUP_BARS} contiguous bars before its first answer). Inputs are standardised with "
        "the training split's mean and standard deviation (stored in config.json).",
        "",
        "| feature | meaning |",
        "|---|---|",
        *[f"| `{f.name}` | {f.description} |" for f in FEATURES],
        "",
        f"Feature schema hash `{config['feature_schema_hash'][:16]}…`: guard refuses to load this model if "
        "its feature code changes.",
        "",
        "## What it predicts",
        "",
        "From a bar's close it draws a take-profit barrier and a stop at "
        f"±{barrier['k']:g}·σ·√{barrier['horizon_bars']} in log price (σ: the 60-bar volatility per bar) "
        f"and predicts which is touched first within {barrier['horizon_bars']} bars: **up**, **down**, "
        "or **flat** (neither, or both in one bar — "
        "from bars alone nobody can tell which came first).",
        "",
        f"Its probabilities are calibrated by temperature scaling (T = {config['calibration']['temperature']:.3f}, "
        "fitted on the validation split). The proposed side is the likelier of up and down unless flat is "
        "likelier than both; **confidence** is the calibrated probability of that side. A proposal's stop "
        "and take-profit sit on the barriers.",
        "",
        "## How it was trained and tested",
        "",
        f"- Data: {source.get('description', 'unknown')}.",
        *([f"- {source['note']}"] if source.get("note") else []),
        f"- Symbols: {', '.join(dict.fromkeys(config['symbols']))} ({len(config['symbols'])} series); timeframe {tf}.",
        *_markets(source),
        f"- Window: {utc_minute(training['window']['start_ms'])} to {utc_minute(training['window']['end_ms'])}, "
        f"split by time for every symbol alike: train {splits['train']['windows']:,} windows, validation "
        f"{splits['validation']['windows']:,} (early stopping, calibration, novelty reference), test "
        f"{splits['test']['windows']:,} (from {utc_minute(splits['test']['start_ms'])}). An embargo of "
        f"{splits['embargo_bars']} bars between splits keeps any bar a label looked at out of later windows.",
        f"- Seed {training['seed']}, at most {training['epochs']} epochs with early stopping (patience "
        f"{training['patience']}); stopped after {training['epochs_run']}, kept epoch {training['best_epoch']}. "
        f"Trained on {training['threads']} CPU threads with torch {training['torch']}.",
        "",
        "Measured once, on the test split, after every choice was made:",
        "",
        "| metric | model | baseline |",
        "|---|---|---|",
        f"| accuracy | {_pct(m['accuracy'])} | {_pct(m['base_rate'])} (most common outcome) |",
        f"| Brier score (lower is better) | {m['brier']:.4f} | {m['brier_baseline']:.4f} (training frequencies) |",
        f"| log loss | {m['nll']:.4f} | {m['nll_baseline']:.4f} (training frequencies) |",
        *_ece_rows(m),
        f"| novelty AUROC, volatility ×{m['shift_factor']:g} (synthetic) | {m['novelty_auroc']:.3f} | 0.5 (chance) |",
        *[
            f"| novelty AUROC, {r['name']} (real{', held out' if r.get('held_out') else ''}) | "
            f"{r['novelty_auroc']:.3f} | {r['volatility_auroc']:.3f} (60-bar volatility) |"
            for r in m.get("novelty_real_shifts") or []
        ],
        "",
        *_calibration_note(m),
        *_groups(m),
        "Outcomes on the test split: "
        + ", ".join(f"{k} {_pct(v)}" for k, v in m["label_share_test"].items())
        + " (training: "
        + ", ".join(f"{k} {_pct(v)}" for k, v in m["label_share_train"].items())
        + ").",
        "",
        "## How often it was right, by confidence",
        "",
        *_directional_section(m),
        "Reliability of its top answer (all three outcomes), 15 bins:",
        "",
        "| confidence | windows | mean confidence | came true |",
        "|---|---|---|---|",
        *[
            f"| {b['lo']:.2f}–{b['hi']:.2f} | {b['count']:,} | {_pct(b['confidence'])} | {_pct(b['hit_rate'])} |"
            for b in m["reliability"]
        ],
        "",
        "## Novelty: when the model is guessing",
        "",
        "Every answer carries a novelty score: how unlike the training data the input is, as a percentile "
        "of validation windows (0.5 is typical, 0.99 is stranger than 99 % of them). It measures the size of "
        "each of the 123 one-bar moves the window reads against the training bars' usual move at the same hour "
        "of day (so an ordinary quiet night or busy afternoon is not novel), ranks it among the training bars', "
        "averages the ranks over all 123 and over the last 16, and measures how far those averages sit from the "
        "training windows' — in either direction: a market moving much more, or much less (quiet, stale), than "
        "the one it learnt on. It does not measure change against the recent past: a market louder than last "
        "month but no louder than the training data is not novel. Above the threshold "
        f"(`model.novelty_threshold`, {config['novelty']['threshold']:g}) the proposal is flagged "
        "**novel — the model is guessing**, and guard asks for an extra confirmation or drops it "
        "(`model.novelty_policy`).",
        "",
        f"Checked on the test split replayed with volatility ×{m['shift_factor']:g} (synthetic): AUROC "
        f"{m['novelty_auroc']:.3f}; {_pct(m['novel_rate_shifted'])} of those windows were flagged, against "
        f"{_pct(m['novel_rate_in_distribution'])} of ordinary test windows.",
        *_real_shifts(m),
    ]
    extra = {k: v for k, v in m.items() if k.startswith("novelty_auroc_")}
    for key, value in extra.items():
        lines.append(f"Also: {key.removeprefix('novelty_auroc_').replace('_', ' ')}: AUROC {value:.3f}.")
    lines += [
        "",
        "## Age",
        "",
        f"Its data ends {utc_minute(training['window']['end_ms'])}. guard reports its age (that date to now) with "
        "every answer, and past `model.max_age_days` (30 by default) stops proposing with it and says why. "
        "Markets drift; a model does not notice.",
        "",
        "## Known limits and risks",
        "",
        "- It is a statistical summary of one stretch of history. Accuracy and calibration measured there say "
        "nothing certain about tomorrow; regimes it never saw (crashes, listings, halts, new participants) "
        "can make it confidently wrong. Novelty catches some of this, not all.",
        "- It sees only one symbol's bars (and funding, where present). It knows nothing about order books, "
        "news, other markets, fees, slippage, funding payments or liquidation — the risk checks do.",
        "- Barrier outcomes use bar highs and lows: a stop can be hit inside a bar in ways bars do not show, "
        "and real fills slip past barriers.",
        "- Confidence is calibrated on average, not for any single trade; a 60 % call is wrong 4 times in 10.",
        "- The live tracker pauses it when its record falls clearly below these claims, which takes a number "
        "of resolved proposals — losses happen before the pause, by design of any statistical test.",
    ]
    if source.get("synthetic"):
        lines.append(
            "- **Synthetic data.** Any pattern it found is a property of guard's simulator, not of a real market. "
            "Do not read its test numbers as evidence of anything you could trade."
        )
    lines += [
        "",
        "## Out of scope",
        "",
        "- Trading real money, or any use without a person approving each trade.",
        "- Timeframes or markets other than the one it was trained on; spot, options, illiquid tokens.",
        "- Sizing positions on its own: guard's sizing policy and risk limits do that, and may say no.",
        '- Explaining markets: its "why" lists which inputs pushed its answer, not causes.',
        "",
        "## Reproduce",
        "",
        "```",
        training["command"],
        "```",
        "",
    ]
    files = source.get("files") or []
    if files:
        lines += ["Training data (sha256 of each file, to check you have the same):", ""]
        lines += [
            f"- `{f['path']}`: {f.get('symbol', '')} {f.get('bars', '?'):,} bars, sha256 `{f['sha256'][:16]}…`"
            for f in files
        ]
        lines.append("")
    lines += [
        f"Same seed, data, torch version and thread count give the same weights (sha256 `{weights_sha256[:16]}…`).",
        "",
        "## Retrain on real history",
        "",
        "```",
        "guard history fetch --exchange binanceusdm --symbol BTC/USDT:USDT --timeframe 1m \\",
        "    --since 2025-06-01 --out data/btc-1m.parquet",
        "guard history fetch --exchange binanceusdm --symbol ETH/USDT:USDT --timeframe 1m \\",
        "    --since 2025-06-01 --out data/eth-1m.parquet",
        "guard train data/btc-1m.parquet data/eth-1m.parquet --out models/real-1m --seed 7",
        "guard model show models/real-1m",
        "```",
        "",
        'then set `model.path = "models/real-1m"` in config.toml. Read the new card before you use it: '
        "on real history expect accuracy close to the base rate.",
        "",
    ]
    return "\n".join(lines)
