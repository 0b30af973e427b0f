"""A proposal's trace as an operator or an auditor reads it (`guard journal show`), or as JSON for machines.

Sections, in the order a reader asks: the outcome in one line; the proposal as first queued (trade,
levels, liquidation, confidence, novelty, model and its hash, source, why, the risk checks); each
later version; the decision with what was shown; the orders and their outcomes; the position and
what became of it; then every step with its time (UTC) and its event number in the journal.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from guard import codec
from guard.domain import DecisionKind, OrderPurpose, Proposal, ProposalStatus, RiskCheck
from guard.journal.export import iso_time
from guard.journal.phrases import ending, purpose_name, quote_of
from guard.journal.positions import PositionLife
from guard.journal.proposal_trace import OrderTrace, ProposalTrace

_LABEL = 14
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def printable(text: str) -> str:
    """`text` with what could forge or hide lines on a terminal made visible: control characters (a newline, an
    escape sequence), line and paragraph separators and bidirectional overrides become `\\x1b`-style escapes.

    Reasons, "why" texts and ids come from people and from sources outside guard; printed raw, a reason could
    add a line saying `Outcome: REJECTED` to an audit, clear the screen, or reverse what follows it.
    """
    if text.isprintable():
        return text
    return "".join(
        ch.encode("unicode_escape").decode("ascii")
        if ch in _BIDI or unicodedata.category(ch) in ("Cc", "Zl", "Zp")
        else ch
        for ch in text
    )


def outcome(t: ProposalTrace) -> str:
    """The proposal's fate in one line: `FILLED: bought 0.05 BTC/USDT:USDT at 100000.0 (approved by alice);
    position closed by P000001's take-profit at 104000.0: ... net +194.90 USDT`."""
    status = t.status
    when = iso_time(t.status_at)
    reason = t.status_reason
    if status is ProposalStatus.FILLED:
        entry = _entry(t)
        assert entry is not None  # FILLED is set by an entry's fill
        verb = "bought" if entry.request.side.value == "buy" else "sold"
        decided = f" ({_decided_by(t)})" if t.decision is not None else ""
        position = f"; position {ending(t.positions[-1], t.kill)}" if t.positions else ""
        partial = f" of {entry.request.qty}" if entry.filled != entry.request.qty else ""
        return (
            f"FILLED: {verb} {entry.filled}{partial} {entry.request.symbol} at {entry.average_price}{decided}{position}"
        )
    if status is ProposalStatus.SUBMITTED:
        entry = _entry(t)
        state = f"entry order {entry.status.value}" if entry is not None else "entry order sent"
        if entry is not None and entry.request.limit_price is not None:
            state += f", resting at limit {entry.request.limit_price}"
        return f"SUBMITTED ({_decided_by(t)}): {state}"
    if status in (ProposalStatus.APPROVED, ProposalStatus.OVERRIDDEN):
        return f"{status.value} ({_decided_by(t)}) at {when}: no order on record"
    if status is ProposalStatus.REJECTED:
        by = t.decision.operator if t.decision is not None else "an operator"
        return f"REJECTED by {by} at {when}: " + (f'"{reason}"' if reason else "no reason given")
    if status is ProposalStatus.KILLED:
        kill = f" (KILL by {t.kill.operator}: {t.kill.reason})" if t.kill is not None else ""
        return f"KILLED at {when} while pending, by the kill switch{kill}"
    if status is ProposalStatus.PENDING:
        return f"PENDING: version {t.last.version} awaits a decision (expires {iso_time(t.last.expires_at)})"
    return f"{status.value} at {when}: {reason}"


def render(t: ProposalTrace) -> str:
    """The story as text, one section after another."""
    first = t.first
    lines = [
        f"{t.proposal_id}  {first.side.value} {first.qty} {first.symbol} at {first.leverage}x",
        f"Outcome: {outcome(t)}",
        f"(times UTC; the journal held {t.journal_events:,} events; #N is an event's number in it)",
        "",
        f"Proposal, as first queued (#{t.versions[0].seq}, {iso_time(t.versions[0].at)})",
        *_proposal_lines(t),
    ]
    if len(t.versions) > 1:
        lines += ["", "Versions"]
        for v in t.versions:
            why = f" ({v.reason})" if v.reason else ""
            lines.append(f"  v{v.proposal.version}  #{v.seq:<7} {iso_time(v.at)}  {v.cause}{why}: {_terms(v.proposal)}")
    lines += ["", "Decision", *_decision_lines(t)]
    if t.refusals:
        lines += ["", "Commands refused"]
        lines += [f"  {iso_time(s.at)}  #{s.seq:<7} {s.text}" for s in t.steps if s.kind == "refused"]
    lines += ["", "Orders"]
    lines += [_order_line(o) for o in t.orders] or ["  none: nothing was sent to a broker for it"]
    lines += ["", "Position"]
    lines += [line for life in t.positions for line in _position_line(life, t)] or ["  none: it never filled"]
    lines += ["", "Timeline"]
    lines += [f"  {iso_time(s.at)}  #{s.seq:<7} {s.text}" for s in t.steps]
    # Every line above is one line by construction: whatever else a value carried is made visible, not obeyed.
    return "\n".join(map(printable, lines))


def to_plain(t: ProposalTrace) -> dict[str, Any]:
    """The trace as JSON-ready data: the journal's own values (Decimals as strings, times in epoch
    milliseconds, with ISO 8601 UTC beside the main ones), plus the outcome line."""
    return {
        "proposal_id": t.proposal_id,
        "status": t.status.value,
        "status_at": t.status_at,
        "status_time": iso_time(t.status_at) if t.status_at else None,
        "status_reason": t.status_reason,
        "outcome": outcome(t),
        "journal_events": t.journal_events,
        "proposal": codec.to_plain(t.first),
        "versions": [
            {
                "seq": v.seq,
                "at": v.at,
                "time": iso_time(v.at),
                "cause": v.cause,
                "reason": v.reason,
                "proposal": codec.to_plain(v.proposal),
            }
            for v in t.versions
        ],
        "model": None
        if t.model is None
        else {
            "model_id": t.model.model_id,
            "model_hash": t.model.model_hash,
            "acknowledged_by": t.model.acknowledged_by,
            "acknowledged_at": t.model.acknowledged_at,
            "config_hash": t.model.config_hash,
            "consistent": t.model.consistent,
        },
        "approvals": [codec.to_plain(a) for a in t.approvals],
        "decision": None if t.decision is None else codec.to_plain(t.decision),
        "refusals": [codec.to_plain(r) for r in t.refusals],
        "orders": [
            {
                "request": codec.to_plain(o.request),
                "submitted_seq": o.submitted_seq,
                "submitted_at": o.submitted_at,
                "venue_order_id": o.venue_order_id,
                "status": o.status.value,
                "filled": str(o.filled),
                "average_price": None if o.average_price is None else str(o.average_price),
                "fees": str(o.fees),
                "fills": [codec.to_plain(f) for f in o.fills],
                "ended_at": o.ended_at,
                "reason": o.reason,
            }
            for o in t.orders
        ],
        "positions": [_position_plain(life) for life in t.positions],
        "kill": None if t.kill is None else codec.to_plain(t.kill),
        "timeline": [
            {"seq": s.seq, "at": s.at, "time": iso_time(s.at), "kind": s.kind, "text": s.text} for s in t.steps
        ],
    }


# --- sections ------------------------------------------------------------------------------------


def _row(label: str, text: str) -> str:
    return f"  {label:<{_LABEL}}{text}"


def _proposal_lines(t: ProposalTrace) -> list[str]:
    p = t.first
    quote = quote_of(p.symbol)
    price = f"limit {p.limit_price}, mark {p.price}" if p.limit_price is not None else f"priced at {p.price}"
    lines = [
        _row(
            "trade",
            f"{p.order_type.value} {p.side.value} {p.qty} {p.symbol} at {p.leverage}x ({price}; "
            f"notional {p.notional:.2f} {quote})",
        ),
        _row("stop", str(p.stop) if p.stop is not None else "none"),
        _row("take-profit", str(p.take_profit) if p.take_profit is not None else "none"),
        _row("liquidation", _liquidation(p)),
        _row("confidence", f"{p.confidence:.0%}" + ("" if t.model is not None else " (no model: given by the source)")),
        _row("novelty", f"{p.novelty:.2f}" + (" — NOVEL: the model is guessing" if p.novel else "")),
        _row("model", _model(t)),
        _row("source", p.source),
        _row("why", p.why or "(none given)"),
        _row("expires", f"{iso_time(p.expires_at)} ({(p.expires_at - p.created_at) / 1000:g} s to decide)"),
    ]
    return lines + _checks("risk checks", p.checks)


def _liquidation(p: Proposal) -> str:
    if p.liquidation_price is None:
        return "none (no leverage risk)"
    chance = "<0.1%" if p.p_liquidation < 0.001 else f"{p.p_liquidation:.1%}"
    sigma = f", {p.liquidation_distance_sigma:.1f}σ away" if p.liquidation_distance_sigma is not None else ""
    return f"{p.liquidation_price}; P(liquidation) {chance} before the horizon{sigma}"


def _model(t: ProposalTrace) -> str:
    m = t.model
    if m is None:
        return "none: not a model proposal"
    if not m.model_hash:
        return f"{m.model_id or '(no id)'}; hash NOT ON RECORD (no model acknowledgment for this session's config)"
    ack = f"acknowledged by {m.acknowledged_by} at {iso_time(m.acknowledged_at)}" if m.acknowledged_at else ""
    check = "" if m.consistent else "; the model id does not name this hash"
    return f"{m.model_id}, sha256 {m.model_hash} ({ack}){check}"


def _checks(label: str, checks: tuple[RiskCheck, ...]) -> list[str]:
    if not checks:
        return [_row(label, "none recorded")]
    return [_row(label if i == 0 else "", f"{c.verdict.value:<5} {c.name}: {c.reason}") for i, c in enumerate(checks)]


def _decision_lines(t: ProposalTrace) -> list[str]:
    lines = [
        f"  approval 1 of 2 by {a.operator} on version {a.version} at {iso_time(a.at)}"
        + (f': "{a.reason}"' if a.reason else "")
        for a in t.approvals
    ]
    d = t.decision
    if d is None:
        pending = t.status is ProposalStatus.PENDING
        return [*lines, "  none: " + ("it is still pending" if pending else "nobody decided")]
    verb = {DecisionKind.APPROVE: "approved", DecisionKind.OVERRIDE: "overridden", DecisionKind.REJECT: "rejected"}
    counted = [a.operator for a in t.approvals if a.version == d.shown.version]
    eyes = f" (second of two approvals; first by {counted[-1]})" if counted else ""
    lines.append(f"  {verb[d.kind]} by {d.operator} at {iso_time(d.at)} on version {d.shown.version}{eyes}")
    lines.append(_row("reason", f'"{d.reason}"' if d.reason else "(none given)"))
    if d.diff:
        lines.append(_row("changed", "; ".join(d.diff)))
        if d.confirmed_risk_increase:
            lines.append(_row("", "the operator confirmed the increase of risk"))
    lines.append(_row("as shown", _terms(d.shown)))
    if d.result is not None:
        lines.append(_row("executes", _terms(d.result)))
    if d.shown.checks == t.first.checks:
        return [*lines, _row("checks shown", "the risk checks above, as queued")]
    return lines + _checks("checks shown", d.shown.checks)


def _terms(p: Proposal) -> str:
    parts = [f"{p.side.value} {p.qty} at {p.leverage}x", f"price {p.price}"]
    if p.limit_price is not None:
        parts.append(f"limit {p.limit_price}")
    parts += [f"{name} {value}" for name, value in (("stop", p.stop), ("TP", p.take_profit)) if value is not None]
    if p.liquidation_price is not None:
        parts.append(f"liq {p.liquidation_price}")
    return ", ".join(parts)


def _order_line(o: OrderTrace) -> str:
    r = o.request
    purpose = purpose_name(r.purpose)
    level = f" limit {r.limit_price}" if r.limit_price is not None else ""
    level += f" trigger {r.trigger_price}" if r.trigger_price is not None else ""
    what = f"{r.order_type.value} {r.side.value} {r.qty}{level}"
    fate = o.status.value
    if o.fills:
        fate += f" {o.filled} at {o.average_price}, fee {o.fees}"
    if o.reason:
        fate += f": {o.reason}"
    return f"  {purpose:<12}{r.client_order_id}  {what} — {fate}"


def _position_line(life: PositionLife, t: ProposalTrace) -> list[str]:
    others = ", ".join(p for p in life.proposals if p != t.proposal_id)
    if t.proposal_id not in life.proposals:
        also = f"; entered by {others or 'no proposal'}, which this entry reduced"
    else:
        also = f"; also entered by {others}" if others else ""
    side = "long" if life.side.value == "buy" else "short"
    lines = [
        f"  #{life.number} {side} {life.symbol}: opened {iso_time(life.opened_at)} at {life.entry_price} "
        f"(largest size {life.max_qty}{also})"
    ]
    if life.closed_at is not None:
        lines.append(f"     ended {iso_time(life.closed_at)}: {ending(life, t.kill)}")
    else:
        lines.append(f"     {ending(life, t.kill)}")
    return lines


def _position_plain(life: PositionLife) -> dict[str, Any]:
    plain: dict[str, Any] = codec.to_plain(life)
    plain["net_pnl"] = str(life.net_pnl)
    return plain


def _entry(t: ProposalTrace) -> OrderTrace | None:
    return next((o for o in t.orders if o.request.purpose is OrderPurpose.ENTRY), None)


def _decided_by(t: ProposalTrace) -> str:
    d = t.decision
    if d is None:
        return "no decision on record"
    first = [a.operator for a in t.approvals if a.version == d.shown.version]
    who = f"{first[-1]} and {d.operator}" if first else d.operator
    return {"approve": "approved", "override": "overridden", "reject": "rejected"}[d.kind.value] + f" by {who}"
