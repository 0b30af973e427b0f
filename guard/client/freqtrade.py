"""freqtrade advisor mode: a strategy asks guard before it enters, and a person decides.

    from guard.client.freqtrade import GuardAdvisor

    class MyStrategy(IStrategy):
        def bot_start(self, **kwargs) -> None:
            self.advisor = GuardAdvisor(source="freqtrade", timeframe=self.timeframe)

        def confirm_trade_entry(self, pair, order_type, amount, rate, time_in_force, current_time, entry_tag,
                                side, **kwargs) -> bool:
            return self.advisor.confirm_entry(pair, amount, side, entry_tag=entry_tag)

        def confirm_trade_exit(self, pair, trade, order_type, amount, rate, time_in_force, exit_reason,
                               current_time, **kwargs) -> bool:
            return self.advisor.confirm_exit(pair, amount, trade.is_short, exit_reason)

freqtrade calls `confirm_trade_entry` right before it places an entry; returning False skips the entry. The
advisor proposes the entry to guard (priced, risk-checked, shown to a person) and waits for the decision
within the candle budget: only a fill says yes. Rejected, expired, killed, refused, failed, no answer in
time, or guard unreachable: no. Keep guard's `approval.ttl_seconds` at or below the budget, so guard expires
an unanswered proposal before freqtrade stops waiting (else a person could still approve it after freqtrade
moved on). Protective exits (stops, liquidation, forced exits) never wait on a person; signal exits may ask,
and go ahead when guard cannot be asked. The advisor never raises: freqtrade takes an exception as yes.

This module imports nothing from freqtrade: it runs inside freqtrade's process with only guard's client (and
aiohttp, msgspec) installed there. It logs with the standard library, as freqtrade does.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

from guard.client.decisions import Decision, Refused
from guard.client.errors import DecisionTimeout, GuardClientError, ProposalRefused
from guard.client.sync import GuardClient

log = logging.getLogger(__name__)

PROTECTIVE_EXITS = frozenset(
    {"stop_loss", "stoploss_on_exchange", "trailing_stop_loss", "liquidation", "force_exit", "emergency_exit"}
)
"""Exit reasons that never wait on a person: a stop must not queue behind a decision."""
_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


def candle_seconds(timeframe: str) -> float:
    """`5m` -> 300.0. Raises ValueError for what is not a freqtrade timeframe."""
    unit = timeframe[-1:]
    if unit not in _SECONDS or not timeframe[:-1].isdigit():
        raise ValueError(f"timeframe {timeframe!r}: expected e.g. 1m, 5m, 1h, 1d")
    return float(int(timeframe[:-1]) * _SECONDS[unit])


class GuardAdvisor:
    """Asks guard, and so a person, before a freqtrade strategy trades."""

    def __init__(
        self,
        source: str | None = None,
        *,
        timeframe: str | None = None,
        budget_seconds: float | None = None,
        budget_fraction: float = 0.5,
        leverage: Decimal | float = 1,
        symbols: Mapping[str, str] | None = None,
        ask_exits: bool = True,
        home: str | Path | None = None,
        url: str | None = None,
        token: str | None = None,
    ) -> None:
        """
        Args:
            source: the source name (`guard source add NAME`); default `GUARD_SOURCE`.
            timeframe: the strategy's timeframe: the budget is `budget_fraction` of one candle.
            budget_seconds: how long to wait for a person, instead (one of the two is needed).
            leverage: the leverage to propose (guard caps it; above its conservative limit a person acknowledges).
            symbols: freqtrade pair -> guard symbol, where they differ (default: the same name).
            ask_exits: ask a person before signal exits too (protective exits never ask).
            home, url, token: where guard is and the source's token, as `GuardClient` (default: the environment).
        """
        if budget_seconds is None:
            if timeframe is None:
                raise ValueError("give the strategy's timeframe (or budget_seconds): no answer within it means no")
            budget_seconds = candle_seconds(timeframe) * budget_fraction
        self.budget_seconds = float(budget_seconds)
        self.leverage = Decimal(str(leverage))
        self.symbols = dict(symbols or {})
        self.ask_exits = ask_exits
        self.client = GuardClient(source, home=home, url=url, token=token)
        self.last_decision: Decision | None = None
        """What guard answered last (None: it could not be asked, or the budget ran out)."""
        self._warned_ttl = False

    def confirm_entry(self, pair: str, amount: float, side: str, *, entry_tag: str | None = None) -> bool:
        """True only when a person approved the entry and guard filled it; freqtrade then enters. Anything else is
        False, whatever goes wrong: freqtrade treats an exception from `confirm_trade_entry` as yes."""
        direction = "sell" if side == "short" else "buy"
        why = f"freqtrade {side} entry" + (f" ({entry_tag})" if entry_tag else "")
        return self._ask(pair, direction, amount, why, unasked=False)

    def confirm_exit(self, pair: str, amount: float, is_short: bool, exit_reason: str) -> bool:
        """True at once for a protective exit (or with `ask_exits` off), and when guard cannot be asked (an exit
        reduces risk: an unreachable guard must not hold a position open); else only when a person approved it
        (rejected or unanswered, freqtrade asks again on its next candle)."""
        if not self.ask_exits or exit_reason in PROTECTIVE_EXITS:
            return True
        side = "buy" if is_short else "sell"
        return self._ask(pair, side, amount, f"freqtrade exit ({exit_reason})", unasked=True)

    def close(self) -> None:
        self.client.close()

    def _ask(self, pair: str, side: str, amount: float, why: str, *, unasked: bool) -> bool:
        """Whether guard filled the proposal; `unasked` when guard could not be asked at all."""
        symbol = self.symbols.get(pair, pair)
        self.last_decision = None
        client = self.client
        try:
            pid = client.propose(symbol, side, qty=Decimal(str(amount)), leverage=self.leverage, why=why)
            queued = client.proposal(pid).proposal
            self._check_ttl(queued.expires_at - queued.created_at)
            decision: Decision = client.wait_decision(pid, self.budget_seconds)
        except ProposalRefused as e:
            decision = Refused(e.reason)
        except DecisionTimeout as e:
            log.warning("guard: no decision on %s %s within %g s, so no (%s)", side, pair, self.budget_seconds, e)
            return False
        except GuardClientError as e:  # guard unreachable, credential refused
            log.error("guard: could not ask about %s %s (%s): answering %s", side, pair, e, unasked)
            return unasked
        except Exception:  # our bug or an absurd input: never an exception, which freqtrade would take as yes
            log.exception("guard: asking about %s %s failed: answering %s", side, pair, unasked)
            return unasked
        self.last_decision = decision
        log.log(logging.INFO if decision.filled else logging.WARNING, "guard: %s %s: %s", side, pair, decision)
        return decision.filled

    def _check_ttl(self, ttl_ms: int) -> None:
        """Say once, loudly, when guard would keep a proposal open longer than this advisor waits for it."""
        if ttl_ms / 1000 > self.budget_seconds and not self._warned_ttl:
            self._warned_ttl = True
            log.warning(
                "guard keeps proposals open %g s but this advisor waits %g s: a person could approve an entry "
                "after freqtrade gave up on it, and guard would trade it; set guard's approval.ttl_seconds to at "
                "most %g",
                ttl_ms / 1000,
                self.budget_seconds,
                self.budget_seconds,
            )
