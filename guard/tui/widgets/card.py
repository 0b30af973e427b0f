"""The decision card: everything the daemon says about the selected proposal, in plain words."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.style import Style
from rich.text import Text
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget

from guard.api.protocol import ProposalView
from guard.api.sourcing import SourceView
from guard.domain import TradingState, Verdict
from guard.tui import render
from guard.tui.availability import needs_leverage_acknowledgment

WIDE = 90
"""From this width on, every risk check gets its own line."""


class DecisionCard(Widget):
    """The selected proposal: what, how sure, how novel, how close to liquidation, what blocks it."""

    DEFAULT_CSS = """
    DecisionCard {
        height: 1fr;
        padding: 0 1;
    }
    """

    view: reactive[ProposalView | None] = reactive(None)
    """The selected proposal's latest view from the daemon (None: nothing pending)."""
    stale: reactive[bool] = reactive(False, toggle_class="-stale")
    """True while disconnected: the card shows the last known view, marked stale."""
    blocker: reactive[str] = reactive("")
    """Why approve/override is greyed out right now ("" when they are not)."""
    leverage_acknowledged: reactive[bool] = reactive(True)
    """Whether the leverage acknowledgment is on record (to offer it when it is what blocks)."""
    trading_state: reactive[TradingState | None] = reactive(None)
    """The daemon's trading state (the empty card says what HALTED means)."""
    sources: reactive[tuple[SourceView, ...]] = reactive(())
    """The proposal sources' records, from the status (a source's proposal is shown beside its record)."""

    shown: tuple[str, float] = ("", 0.0)
    """The proposal id (and version) the last render showed, and when (perf_counter)."""
    drawn: ProposalView | None = None
    """The view the last render put on screen: what a key pressed now refers to."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._text_console = Console(width=400, color_system="truecolor", legacy_windows=False)
        self._strips: list[Strip] = []
        self._drawn_key: tuple[object, ...] | None = None

    # The card redraws on every cursor move: its lines are wrapped once per change (the line API), not
    # converted and wrapped again by every frame that touches the screen.

    def render_line(self, y: int) -> Strip:
        width, height = self.content_size
        key = (
            self.view,
            self.stale,
            self.blocker,
            self.leverage_acknowledged,
            self.trading_state,
            self.sources,
            width,
            height,
        )
        if key != self._drawn_key:
            self._drawn_key = key
            view = self.view
            self.shown = (f"{view.proposal.id} v{view.proposal.version}" if view else "", time.perf_counter())
            self.drawn = view
            style = Style(dim=True) if self.stale else None
            lines = self.render().wrap(self._text_console, max(1, width))
            if len(lines) > height and width >= WIDE:
                # A check per line does not fit: the short form keeps every warning and block in sight.
                lines = self.render(wide=False).wrap(self._text_console, max(1, width))
            self._strips = [
                Strip(line.render(self._text_console)).adjust_cell_length(width).apply_style(style)
                if style
                else Strip(line.render(self._text_console)).adjust_cell_length(width)
                for line in lines
            ]
        return self._strips[y] if y < len(self._strips) else Strip.blank(width)

    def render(self, wide: bool | None = None) -> Text:
        """The card as text (the line renderer wraps it; tests read it).

        Args:
            wide: Every risk check on its own line (default: when the card is at least `WIDE` columns).
        """
        view = self.view
        if view is None:
            if self.stale:
                return Text("STALE — disconnected: the queue was empty when last seen; it may not be now.", "bold red")
            if self.trading_state is TradingState.HALTED:
                return Text(
                    "HALTED: the kill switch emptied the queue and nothing trades until a person re-arms (ctrl+r).",
                    "bold red",
                )
            return Text("No pending proposal. New ones appear in the queue above, oldest first.", "dim")
        p = view.proposal
        wide = self.size.width >= WIDE if wide is None else wide
        lines: list[Text] = [self._title(view)]
        if self.stale:
            lines.append(Text("STALE — disconnected: this is the last known view, not the live one", "bold red"))
        lines.append(self._actions(view))
        lines.append(self._claim(view) if view.source is not None else self._confidence(view))
        lines.append(self._novelty(view))
        if p.why:
            lines.append(Text.assemble(("Why  ", "bold"), p.why))
        lines.append(self._liquidation(view))
        lines.extend(self._checks(view, wide))
        return Text("\n").join(lines)

    def _title(self, view: ProposalView) -> Text:
        p = view.proposal
        title = Text()
        title.append(f"{p.id} v{p.version}  ", "bold")
        side_style = "bold green" if p.side.value == "buy" else "bold magenta"
        title.append(f"{p.side.value.upper()} {render.quantity(p.qty)} {p.symbol}", side_style)
        kind = f"limit {render.price(p.limit_price)}" if p.limit_price is not None else "market"
        title.append(f"  {kind} · priced at {render.price(p.price)} · {render.quantity(p.leverage)}x")
        title.append(f" · stop {render.price(p.stop)} · take-profit {render.price(p.take_profit)}")
        title.append(f" · {p.source}" + (f" {p.model_id}" if p.model_id else ""), "dim")
        return title

    def _actions(self, view: ProposalView) -> Text:
        if needs_leverage_acknowledgment(view, self.leverage_acknowledged):
            # The daemon's own words say above which leverage (its conservative limit, at most 5x).
            why = next(c.reason for c in view.proposal.checks if c.name == "leverage")
            return Text(f"✗ blocked: {why} — press a to read and record it", "bold yellow")
        if self.blocker:
            return Text(f"✗ approve/override unavailable: {self.blocker}", "bold red")
        text = Text("a approve · o override · r reject", "bold green")
        if view.needs_two_approvals:
            text.append(f" · four-eyes: {len(view.approvals)} of 2 approvals ({', '.join(view.approvals)})", "yellow")
        return text

    def _confidence(self, view: ProposalView) -> Text:
        p = view.proposal
        if not render.from_model(p):
            return Text.assemble(
                ("Confidence ", "bold"), (render.NO_MODEL, "bold"), f" — proposed by {p.source}: no calibrated figure"
            )
        text = Text.assemble(("Confidence ", "bold"), render.confidence_bar(p.confidence, 10))
        if view.hit_rate_at_confidence is not None:
            text.append(f" — right {view.hit_rate_at_confidence:.0%} of the time at this confidence (held-out test)")
        else:
            text.append(" — no track record at this confidence", "dim")
        if view.live_hit_rate_at_confidence is not None:
            text.append(f"; live {view.live_hit_rate_at_confidence:.0%}")
        return text

    def _claim(self, view: ProposalView) -> Text:
        """A source's proposal: who sent it, what it claims, and its record as guard graded it (no model figures)."""
        p, source = view.proposal, view.source
        assert source is not None
        record = next((s for s in self.sources if s.name == source.name), None)
        hit_rate, settled = record.at(p.confidence) if record is not None else (None, 0)
        text = Text.assemble(("From ", "bold"), (source.name, "bold cyan"), " — no model figures: ")
        if p.confidence <= 0:
            text.append("no claimed confidence")
        elif hit_rate is None:
            text.append(f"claims {p.confidence:.0%}, claimed, uncalibrated", "yellow")
            text.append(" (no settled record at this confidence yet)", "dim")
        else:
            text.append(f"claims {p.confidence:.0%}; right {hit_rate:.0%} of {settled} settled at it")
        if source.paused:
            text.append(f"\nSOURCE PAUSED — {source.reason}", "bold red")
        return text

    def _novelty(self, view: ProposalView) -> Text:
        p = view.proposal
        if not render.from_model(p):
            return Text.assemble(
                ("Novelty ", "bold"), (render.NO_MODEL, "bold"), " — nothing measured how unusual the market is"
            )
        if p.novel:
            return Text(
                f"NOVEL {p.novelty:.2f} — the market looks unlike the model's training data: it is guessing",
                "bold magenta",
            )
        return Text.assemble(("Novelty ", "bold"), f"{p.novelty:.2f} (percentile against its training data)")

    def _liquidation(self, view: ProposalView) -> Text:
        p = view.proposal
        text = Text.assemble(("Liquidation ", "bold"))
        if p.liquidation_price is None:
            text.append("none at this leverage")
        else:
            distance = view.liquidation_distance_pct
            sigma = p.liquidation_distance_sigma
            close = distance is not None and abs(distance) < 5
            text.append(render.price(p.liquidation_price), "bold red" if close else "")
            text.append(f" ({render.pct(distance, sign=True)}")
            text.append(f", {sigma:.1f}σ)" if sigma is not None else ")")
        basis = "model est." if render.from_model(p) else "from the market's volatility"
        text.append(f" · P(liq) {render.probability(p.p_liquidation)} ({basis})")
        text.append(f" · fee ≈ {render.money(view.fee_estimate)}")
        return text

    def _checks(self, view: ProposalView, wide: bool) -> list[Text]:
        checks = view.proposal.checks
        if wide:
            lines = [Text(f"Risk checks (as priced, v{view.proposal.version})", "bold")]
            for check in checks:
                mark, style = render.VERDICT_MARK[check.verdict]
                lines.append(Text.assemble("  ", (mark, style), f" {check.name}: ", (check.reason, "dim")))
            return lines
        line = Text.assemble(("Checks ", "bold"), render.check_badges(checks))
        for check in checks:
            if check.verdict is not Verdict.PASS:
                mark, style = render.VERDICT_MARK[check.verdict]
                line.append(f"  {mark} {check.name}: {check.reason}", style)
        return [line]
