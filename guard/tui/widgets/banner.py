"""The banner: trading state in colour and in words, money, operators, feeds, model, connection."""

from __future__ import annotations

import time

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from guard.api.protocol import StatusView
from guard.domain import TradingState
from guard.tui import render
from guard.tui.model import LinkState, Notice


class Banner(Widget):
    """Three lines at the top of the main screen; red the moment the daemon says HALTED."""

    DEFAULT_CSS = """
    Banner {
        height: 3;
        padding: 0 1;
        background: $boost;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    Banner.-reducing { background: $warning 25%; }
    Banner.-halted { background: $error 45%; }
    Banner.-down { background: $error 70%; }
    """

    status: reactive[StatusView | None] = reactive(None)
    """The daemon's last status; None before the first snapshot."""
    link: reactive[LinkState] = reactive(LinkState)
    """The connection to the daemon; when it is down everything shown is marked stale."""
    notice: reactive[Notice | None] = reactive(None)
    """A command sent and not yet echoed (a kill), or why it failed."""
    clock: reactive[float] = reactive(0.0)
    """Local monotonic seconds, ticked once a second for "down for 12 s"."""

    shown: tuple[str, float] = ("", 0.0)
    """What the last render put on screen ("HALTED", "DISCONNECTED", ...) and when (perf_counter)."""

    def watch_status(self) -> None:
        self._restyle()

    def watch_link(self) -> None:
        self._restyle()

    def _restyle(self) -> None:
        state = self.status.trading_state if self.status else None
        self.set_class(not self.link.up, "-down")
        self.set_class(self.link.up and state is TradingState.HALTED, "-halted")
        self.set_class(self.link.up and state is TradingState.REDUCING, "-reducing")

    def render(self) -> Text:
        status, link = self.status, self.link
        lines = [self._state_line(status, link), self._money_line(status, link), self._health_line(status, link)]
        text = Text("\n").join(lines)
        text.no_wrap = True
        text.overflow = "ellipsis"
        if not link.up:
            self.shown = ("DISCONNECTED", time.perf_counter())
        else:
            self.shown = (status.trading_state.value if status else "", time.perf_counter())
        return text

    def _state_line(self, status: StatusView | None, link: LinkState) -> Text:
        line = Text()
        if not link.up:
            line.append(" DISCONNECTED ", "bold white on red")
            retry = f", next try in {link.retry_in:.1f} s" if link.attempt else ""
            down = f" for {max(0.0, self.clock - link.since):.0f} s" if link.since is not None else ""
            line.append(f" reconnecting{retry} — {link.reason}{down}", "bold")
            if status is not None:
                line.append(f" · last known: {status.trading_state.value} (stale)", "dim")
        elif status is None:
            line.append(" CONNECTING ", "bold black on yellow")
        else:
            state = status.trading_state
            line.append(f" {state.value} ", render.STATE_STYLE[state])
            line.append(" " + (status.state_reason or render.STATE_WORDS[state]))
            if status.kill_in_progress:
                line.append(" · kill switch cleaning up", "bold")
            line.append(" · " + (", ".join(status.operators) or "no operator attached"), "dim")
            line.append(f" · {status.exchange} → {status.broker}", "dim")
        if self.notice is not None:
            line.append("  ")
            line.append(self.notice.text, self.notice.style)
        return line

    def _money_line(self, status: StatusView | None, link: LinkState) -> Text:
        if status is None:
            return Text("")
        line = Text(style="" if link.up else "dim")
        line.append("equity ")
        line.append(render.money(status.equity), "bold")
        line.append("  today ")
        line.append(render.signed(status.daily_pnl), render.pnl_style(status.daily_pnl))
        line.append("  open ")
        line.append(render.signed(status.unrealized_pnl), render.pnl_style(status.unrealized_pnl))
        line.append(f"  free {render.money(status.free)}")
        line.append(f"  · queue {status.pending}")
        if status.throttle_latched:
            line.append("  · THROTTLE LATCHED", "bold red")
        return line

    def _health_line(self, status: StatusView | None, link: LinkState) -> Text:
        if status is None:
            return Text("")
        line = Text(style="" if link.up else "dim")
        bad = [f for f in status.feeds if not f.healthy]
        line.append("feeds ")
        if not bad:
            line.append(f"✓ {len(status.feeds)} ok", "green")
        else:
            for feed in bad:
                line.append(f"✗ {render.base(feed.symbol)} {feed.reason} ", "bold red")
            line.append(f"({len(status.feeds) - len(bad)} ok)")
        model = status.model
        line.append(" · model ")
        if not model.loaded:
            line.append(model.reason or "none", "dim")
            return line
        line.append(model.model_id or "?")
        if model.age_days is not None:
            line.append(f" {model.age_days:.1f}d old", "bold red" if model.expired else "")
        if model.last_novelty is not None:
            line.append(f" · novelty {model.last_novelty:.2f}")
        if model.paused:
            line.append(" · PAUSED", "bold yellow")
        if model.reason:
            line.append(f" · {model.reason}", "yellow")
        elif status.trading_state is TradingState.HALTED:
            line.append(" · not proposing while HALTED", "yellow")
        else:
            line.append(" · proposing", "green")
        return line
