"""The risk acknowledgments, in plain words: what the operator is agreeing to before typing it.

The daemon decides which acknowledgments it waits for, the exact phrases and the rules they
explain (its heartbeat timeout, its dead-man policy, the leverage above which the acknowledgment is
needed: `StatusView.policy`); this module only says, in words a person reads once and remembers,
what they mean. It never reads the console's own config: the daemon is the one that acts.
"""

from __future__ import annotations

from rich.text import Text

from guard.api.protocol import DeskPolicy, StatusView
from guard.domain import AcknowledgmentKind
from guard.tui.screens.dialogs import TypedConfirmScreen

_DEADMAN = {
    "hold": "are left as they are (with their stops)",
    "reduce": "are halved with reduce-only orders",
    "flatten": "are closed with reduce-only orders",
}


def _leverage_table() -> str:
    # 1/L of the entry price takes the whole margin; the maintenance margin makes it a little less.
    return "  ".join(f"{lev}x ≈ {100 / lev:.0f}%" for lev in (3, 5, 10, 20))


def _policy(status: StatusView | None) -> DeskPolicy | None:
    return status.policy if status is not None else None


def leverage_threshold(status: StatusView | None) -> str:
    """ "above 3x": the leverage the daemon needs the acknowledgment above (its words; "above the conservative
    limit" when it has not said)."""
    policy = _policy(status)
    if policy is None:
        return "above the conservative limit"
    return f"above {policy.leverage_acknowledgment_above.normalize():f}x"


def _deadman_sentence(policy: DeskPolicy | None) -> str:
    if policy is None:
        return (
            "The daemon has not said its heartbeat timeout or dead-man policy yet (wait for it to connect): with no "
            "operator heartbeat for that long its dead-man switch fires and pending proposals expire."
        )
    what = _DEADMAN.get(policy.deadman_policy, policy.deadman_policy)
    return (
        f"With no operator heartbeat for {policy.heartbeat_timeout_seconds:g} s its dead-man switch fires: pending "
        f"proposals expire and open positions {what}."
    )


def model_risk_text(status: StatusView | None) -> Text:
    """Why the model's proposals need an acknowledgment, and what happens if this console goes away (the
    daemon's heartbeat timeout and dead-man policy, as the daemon runs them)."""
    model = status.model if status else None
    who = model.model_id if model and model.model_id else "the model"
    age = f", trained on data that ends {model.age_days:.1f} days ago," if model and model.age_days is not None else ""
    text = Text()
    text.append("What the model does. ", "bold")
    text.append(
        f"{who}{age} reads recent price bars and proposes a trade when it estimates that a move is more likely "
        "than not. Its confidence is calibrated on data it never trained on: 70% should mean it was right about "
        "7 times in 10 there. Press m for its card: what it was trained on, and its limits.\n\n"
    )
    text.append("What it does not know. ", "bold")
    text.append(
        "News, liquidity, other people's orders, anything that did not happen in its training window. When the "
        "market looks unlike its training data the proposal is marked NOVEL: the model is guessing, and you "
        "will be asked to confirm.\n\n"
    )
    text.append("A backtest is not proof. ", "bold")
    text.append(
        "Results on past data look better than the future will: chance, overfitting, and a market that changes. "
        "Its live hit rate is tracked next to what it claimed (press l); a model clearly below its claim is "
        "paused.\n\n"
    )
    text.append("Leverage. ", "bold")
    text.append(
        "A move against the position of about 100/L % takes the whole margin: "
        f"{_leverage_table()} — a little less, once the exchange keeps its maintenance margin. At 20x a 5% "
        "move liquidates you. Liquidation triggers on the mark price, and fast markets jump past stops.\n\n"
    )
    text.append("If this console disconnects. ", "bold")
    text.append(
        f"The daemon keeps running and nothing new executes without a person. {_deadman_sentence(_policy(status))} "
        "The kill switch always wins: ctrl+k here (K outside a text field), `guard kill` from a shell.\n\n"
    )
    text.append("Only you approve. ", "bold")
    text.append("The model proposes; nothing trades until a person approves it. This is paper trading.")
    return text


def leverage_text(status: StatusView | None) -> Text:
    """What leverage above the daemon's threshold does, before the operator types the leverage acknowledgment."""
    policy = _policy(status)
    cap = f"{policy.hard_leverage_cap.normalize():f}x" if policy else "its hard cap"
    text = Text()
    text.append(f"Leverage {leverage_threshold(status)}. ", "bold")
    text.append(
        "Leverage multiplies every move. A move against the position of about 100/L % takes the whole margin: "
        f"{_leverage_table()} — a little less, once the exchange keeps its maintenance margin. "
        "At 20x an ordinary 5% move liquidates the position; a fast market gaps straight through a stop.\n\n"
    )
    text.append("What guard does. ", "bold")
    text.append(
        f"It never goes above {cap}, whatever anyone types. Proposals and overrides {leverage_threshold(status)} "
        "are blocked until this acknowledgment is on record; it is journaled with your operator id and bound to "
        "this config: change the config and you will be asked again."
    )
    return text


def acknowledgment_screen(kind: AcknowledgmentKind, status: StatusView | None, error: str = "") -> TypedConfirmScreen:
    """The typed-confirmation screen for one acknowledgment, with the daemon's exact phrase and rules."""
    phrases = dict(status.acknowledgment_phrases) if status else {}
    phrase = phrases.get(kind, "")
    if kind is AcknowledgmentKind.LEVERAGE:
        title = f"Acknowledge leverage {leverage_threshold(status)}"
        return TypedConfirmScreen(title, leverage_text(status), phrase, error, kind=kind)
    return TypedConfirmScreen("Before the model may propose trades", model_risk_text(status), phrase, error, kind=kind)


def rearm_screen(status: StatusView | None, error: str = "") -> TypedConfirmScreen:
    """The typed re-arm: leaving HALTED or REDUCING is a deliberate act."""
    phrase = status.rearm_phrase if status else "RE-ARM"
    state = status.trading_state.value if status else "HALTED"
    reason = status.state_reason if status and status.state_reason else "no reason recorded"
    body = Text()
    body.append(f"Trading is {state}: {reason}.\n\n", "bold")
    body.append(
        "Re-arming returns trading to ACTIVE: proposals may be approved and executed again. Check first that "
        "whatever made you (or the daemon) stop is understood: positions, feeds, the model's health."
    )
    return TypedConfirmScreen("Re-arm trading", body, phrase, error, submit="re-arm")
