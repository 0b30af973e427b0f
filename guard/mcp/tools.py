"""The tools `guard mcp` offers an agent, built on `guard.client` with a source's credential."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

from guard import codec
from guard.api.source_views import ProposalFate
from guard.client import AsyncGuardClient, Decision, DecisionTimeout, GuardClientError, ProposalRefused
from guard.client.decisions import decision_of

Amount = str | float
"""A number as the agent writes it: text ("0.01", exact) or a JSON number."""
MAX_WAIT_SECONDS = 600.0
"""The longest one `wait_for_decision` call waits (call it again to wait longer)."""

INSTRUCTIONS = """\
guard is a human-in-the-loop gate in front of a trading account. You may read the market, the positions and
your own proposals, and you may PROPOSE trades. A person decides every trade: they approve it, change it or
reject it, and a proposal nobody answers expires (no answer means no). You cannot approve, reject, execute,
cancel, close, kill or change limits: there are no tools for that, and your credential is refused for it.
Propose with a short, honest reason (`why`) and, if you have one, your confidence (0 to 1): guard shows it to
the person as your claim and grades it against what actually happens."""

_READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
_PROPOSE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)


def build_server(client: AsyncGuardClient) -> MCPServer[Any]:
    """An MCP server whose tools read through, and propose through, `client` (a source's credential)."""
    server: MCPServer[Any] = MCPServer("guard", instructions=INSTRUCTIONS)

    @server.tool(annotations=_READ)
    async def market_status() -> dict[str, Any]:
        """Read guard's trading state (ACTIVE, REDUCING or HALTED, and why), whether a person is present to
        decide (with nobody there proposals are refused), the latest price per symbol, feed health and equity."""
        view = await _call(client.status())
        plain = codec.to_plain(view)
        del plain["positions"]
        return dict(plain)

    @server.tool(annotations=_READ)
    async def positions() -> dict[str, Any]:
        """Read the account's open positions: size, entry, leverage, mark, unrealized PnL, liquidation distance."""
        view = await _call(client.status())
        return {"positions": codec.to_plain(view.positions)}

    @server.tool(annotations=_READ)
    async def my_proposals(limit: int = 20) -> dict[str, Any]:
        """Read your own proposals, newest first, each with its fate: PENDING (a person has not decided yet),
        FILLED, REJECTED (with the person's reason), EXPIRED (nobody answered), KILLED or FAILED."""
        fates = await _call(client.my_proposals(max(1, min(limit, 200))))
        return {"proposals": [_fate(f) for f in fates]}

    @server.tool(annotations=_READ)
    async def proposal_status(proposal_id: str) -> dict[str, Any]:
        """Read one of your proposals and where it stands (see my_proposals)."""
        return _fate(await _call(client.proposal(proposal_id)))

    @server.tool(annotations=_PROPOSE)
    async def propose(
        symbol: str,
        side: str,
        why: str,
        qty: Amount | None = None,
        notional: Amount | None = None,
        equity_fraction: Amount | None = None,
        leverage: Amount = "1",
        stop: Amount | None = None,
        take_profit: Amount | None = None,
        limit_price: Amount | None = None,
        confidence: float | None = None,
    ) -> dict[str, Any]:
        """Ask a person to approve a trade. This does NOT trade: guard prices the proposal, runs its risk checks
        and puts it in front of a person, who approves, changes or rejects it; unanswered, it expires.

        Args:
            symbol: a symbol guard trades, e.g. "BTC/USDT:USDT" (see market_status).
            side: "buy" or "sell".
            why: the reason, in a sentence: the person reads it.
            qty: size in base units. Give exactly one of qty, notional (quote currency) or equity_fraction (0-1).
            notional: size in quote currency (e.g. USDT).
            equity_fraction: size as a fraction of equity (0 to 1).
            leverage: leverage, e.g. "2" (guard caps it; above its conservative limit a person must acknowledge).
            stop: stop-loss price. take_profit: take-profit price. limit_price: a limit entry price.
            confidence: your own confidence 0..1, shown to the person as claimed and graded by guard.

        Returns the proposal id; call wait_for_decision with it to learn what the person decided.
        """
        terms = {"qty": qty, "notional": notional, "equity_fraction": equity_fraction, "stop": stop}
        terms |= {"take_profit": take_profit, "limit_price": limit_price}
        set_terms: dict[str, Any] = {k: v for k, v in terms.items() if v is not None}
        try:
            pid = await _call(
                client.propose(symbol, side, leverage=leverage, confidence=confidence, why=why, **set_terms)
            )
        except ValueError as e:
            raise ToolError(str(e)) from None
        return {
            "proposal_id": pid,
            "status": "PENDING",
            "next": "a person decides; call wait_for_decision with this id to learn the outcome",
        }

    @server.tool(annotations=_READ)
    async def wait_for_decision(proposal_id: str, timeout_seconds: float = 60.0) -> dict[str, Any]:
        """Wait (up to timeout_seconds, at most 600) for the person's decision on one of your proposals. Returns
        the outcome: filled (with price and quantity), rejected (with the reason), expired, killed or failed;
        or pending when nobody has decided yet (call again, or leave it: unanswered, it expires)."""
        try:
            decision = await _call(client.wait_decision(proposal_id, max(0.0, min(timeout_seconds, MAX_WAIT_SECONDS))))
        except DecisionTimeout as e:
            return {"proposal_id": proposal_id, "outcome": "pending", "text": str(e)}
        return _decision(decision)

    return server


async def _call(awaitable: Any) -> Any:
    """The client's answer; its errors become tool errors the agent reads (what went wrong, what to do)."""
    try:
        return await awaitable
    except ProposalRefused as e:
        raise ToolError(f"guard refused the proposal: {e.reason}") from None
    except DecisionTimeout:
        raise
    except GuardClientError as e:
        raise ToolError(str(e)) from None


def _decision(decision: Decision) -> dict[str, Any]:
    plain: dict[str, Any] = {"outcome": type(decision).__name__.lower(), "text": str(decision)}
    plain |= {
        k: str(getattr(decision, k))
        for k in ("proposal_id", "reason", "decided_by", "price", "qty")
        if hasattr(decision, k)
    }
    return plain


def _fate(fate: ProposalFate) -> dict[str, Any]:
    p = fate.proposal
    plain: dict[str, Any] = {
        "proposal_id": p.id,
        "status": fate.status.value,
        "symbol": p.symbol,
        "side": p.side.value,
        "qty": str(p.qty),
        "leverage": str(p.leverage),
        "price": str(p.price),
        "liquidation_price": None if p.liquidation_price is None else str(p.liquidation_price),
        "risk_checks": [f"{c.name}: {c.verdict.value}" + (f" ({c.reason})" if c.reason else "") for c in p.checks],
        "expires_at_ms": p.expires_at,
        "decided_by": fate.decided_by,
        "reason": fate.reason,
    }
    decision = decision_of(fate)
    if decision is not None:
        plain["outcome"] = _decision(decision)
    return plain


def serve(source: str | None, home: Path) -> None:
    """Serve the tools over stdio until the agent closes the connection."""
    build_server(AsyncGuardClient(source, home=home)).run("stdio")
