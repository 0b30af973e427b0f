"""Fixed daemon pictures, built from the real protocol and domain types, for deterministic screens."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from guard.api.protocol import (
    Alert,
    DeskPolicy,
    LoggedEvent,
    ModelStatus,
    PositionView,
    ProposalView,
    Snapshot,
    StatusView,
)
from guard.domain import (
    AcknowledgmentKind,
    FeedHealth,
    MarketKind,
    OrderType,
    Position,
    Proposal,
    ProposalStatus,
    RiskCheck,
    Side,
    TradingState,
    Verdict,
)

NOW = 1_767_225_600_000
"""2026-01-01 00:00:00 UTC, the daemon's clock in every scene."""
BTC, ETH, SOL = "BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"
CHECK_NAMES = (
    "trading_state",
    "feed",
    "leverage",
    "order_notional",
    "position_notional",
    "gross_exposure",
    "daily_loss",
    "throttle",
    "confidence",
    "duplicate",
    "stop",
)


def checks(**not_passing: tuple[Verdict, str]) -> tuple[RiskCheck, ...]:
    """All eleven checks passing, except those named."""
    return tuple(RiskCheck(n, *not_passing.get(n, (Verdict.PASS, "ok"))) for n in CHECK_NAMES)


def proposal_view(
    n: int,
    symbol: str,
    side: Side,
    qty: str,
    leverage: str,
    price: str,
    *,
    confidence: float,
    novelty: float,
    age_s: int,
    liquidation: str | None,
    distance: float | None,
    sigma: float | None,
    why: str,
    novel: bool = False,
    verdicts: dict[str, tuple[Verdict, str]] | None = None,
    why_not: str = "",
    version: int = 1,
) -> ProposalView:
    """One pending proposal as the daemon would describe it, created `age_s` seconds before NOW."""
    p = Decimal(price)
    sign = 1 if side is Side.BUY else -1
    proposal = Proposal(
        id=f"P{n:06d}",
        version=version,
        symbol=symbol,
        side=side,
        qty=Decimal(qty),
        leverage=Decimal(leverage),
        order_type=OrderType.MARKET,
        limit_price=None,
        stop=(p * (1 - sign * Decimal("0.004"))).quantize(Decimal("0.1")),
        take_profit=(p * (1 + sign * Decimal("0.006"))).quantize(Decimal("0.1")),
        price=p,
        liquidation_price=Decimal(liquidation) if liquidation else None,
        p_liquidation=0.0004,
        liquidation_distance_sigma=sigma,
        confidence=confidence,
        novelty=novelty,
        novel=novel,
        sigma=0.0002,
        horizon_seconds=1800.0,
        model_id="default-b5a14ef9b7",
        why=why,
        source="model",
        created_at=NOW - age_s * 1000,
        expires_at=NOW - age_s * 1000 + 30_000,
        checks=checks(**(verdicts or {})),
    )
    return ProposalView(
        proposal=proposal,
        status=ProposalStatus.PENDING,
        can_approve=not why_not,
        why_not=why_not,
        approvals=(),
        needs_two_approvals=False,
        liquidation_distance_pct=distance,
        fee_estimate=(proposal.notional * Decimal("0.0005")).quantize(Decimal("0.01")),
        hit_rate_at_confidence=0.66 if confidence >= 0.65 else 0.57,
        live_hit_rate_at_confidence=0.61,
    )


def status(state: TradingState = TradingState.ACTIVE, reason: str = "", pending: int = 4) -> StatusView:
    return StatusView(
        trading_state=state,
        state_reason=reason,
        equity=Decimal("10184.52"),
        balance=Decimal("10000.00"),
        free=Decimal("8913.20"),
        unrealized_pnl=Decimal("184.52"),
        daily_pnl=Decimal("-41.77"),
        operators=("alice",),
        operator_present=True,
        feeds=(FeedHealth(BTC, True, ""), FeedHealth(ETH, True, ""), FeedHealth(SOL, True, "")),
        model=ModelStatus(True, "default-b5a14ef9b7", 1.2, False, False, "", 0.41, 3.1, True),
        leverage_acknowledged=False,
        throttle_latched=False,
        pending=pending,
        exchange="sim",
        broker="paper",
        server_time=NOW,
        acknowledgment_phrases=(
            (AcknowledgmentKind.MODEL_PROPOSALS, "I UNDERSTAND THE MODEL CAN BE WRONG"),
            (AcknowledgmentKind.LEVERAGE, "I UNDERSTAND LEVERAGE CAN LIQUIDATE ME"),
        ),
        policy=DeskPolicy(
            heartbeat_timeout_seconds=30.0,
            deadman_policy="hold",
            leverage_acknowledgment_above=Decimal(3),
            conservative_leverage=Decimal(3),
            hard_leverage_cap=Decimal(20),
        ),
    )


def oldest(version: int = 1) -> ProposalView:
    """P000001, the oldest proposal in the queue (re-priced: a later version of it)."""
    return proposal_view(
        1,
        BTC,
        Side.BUY,
        "0.05",
        "3",
        "100000.0",
        confidence=0.72,
        novelty=0.41,
        age_s=6,
        liquidation="67002.0",
        distance=-33.0,
        sigma=41.2,
        why="buy 72% — up: the 15-bar return (for), 60-bar volatility (for)",
        verdicts={"stop": (Verdict.WARN, "stop 99600.0 is within 1.2% of the entry")},
        version=version,
    )


def proposals() -> tuple[ProposalView, ...]:
    return (
        oldest(),
        proposal_view(
            2,
            ETH,
            Side.SELL,
            "1.2",
            "2",
            "4000.00",
            confidence=0.64,
            novelty=0.97,
            novel=True,
            age_s=4,
            liquidation="5980.00",
            distance=49.5,
            sigma=60.3,
            why="sell 64% — down: volume spike (for)",
        ),
        proposal_view(
            3,
            SOL,
            Side.BUY,
            "25",
            "8",
            "200.00",
            confidence=0.58,
            novelty=0.33,
            age_s=2,
            liquidation="175.80",
            distance=-12.1,
            sigma=9.8,
            why="buy 58% — up: funding (for)",
            verdicts={
                "leverage": (
                    Verdict.BLOCK,
                    "8x is above the conservative limit of 3x: it needs a leverage acknowledgment on record",
                )
            },
            why_not="blocked by risk checks: leverage: 8x is above the conservative limit of 3x",
        ),
        proposal_view(
            4,
            BTC,
            Side.BUY,
            "0.02",
            "2",
            "100050.0",
            confidence=0.61,
            novelty=0.52,
            age_s=1,
            liquidation="50300.0",
            distance=-49.7,
            sigma=61.0,
            why="buy 61% — up: the 15-bar return (for)",
            verdicts={"duplicate": (Verdict.BLOCK, "duplicates P000001 (BTC/USDT:USDT buy), still pending")},
            why_not="blocked by risk checks: duplicate: duplicates P000001 (BTC/USDT:USDT buy), still pending",
        ),
    )


def positions() -> tuple[PositionView, ...]:
    eth = Position(
        ETH, MarketKind.LINEAR, Decimal("-0.8"), Decimal("4050.00"), Decimal(2), Decimal("1620.00"), Decimal("6030.00")
    )
    sol = Position(
        SOL, MarketKind.LINEAR, Decimal("10"), Decimal("190.00"), Decimal(3), Decimal("633.33"), Decimal("127.40")
    )
    # A short at 1.1x: its liquidation price has six figures and its PnL is small (seen running together).
    btc = Position(
        BTC,
        MarketKind.LINEAR,
        Decimal("-0.003"),
        Decimal("84365.8"),
        Decimal("1.1"),
        Decimal("230.10"),
        Decimal("160420.3"),
    )
    return (
        PositionView(btc, Decimal("84395.0"), Decimal("-0.09"), 90.1),
        PositionView(eth, Decimal("4000.00"), Decimal("40.00"), 50.75),
        PositionView(sol, Decimal("200.00"), Decimal("100.00"), 36.3),
    )


def prices() -> dict[str, tuple[float, ...]]:
    def walk(start: float, step: float) -> tuple[float, ...]:
        return tuple(start * (1 + step * ((i * 7) % 11 - 5) / 100 + i * step / 50) for i in range(60))

    return {BTC: walk(99_800.0, 0.02), ETH: walk(4_010.0, -0.03), SOL: walk(198.0, 0.05)}


def events() -> tuple[LoggedEvent, ...]:
    texts = [
        ("SessionStarted", "daemon started (journal 3f2a, previous session ended cleanly)"),
        ("AcknowledgmentRecorded", "model proposals acknowledged by alice"),
        ("OrderFilled", "SELL 0.8 ETH/USDT:USDT at 4050.00 (taker, fee 1.62)"),
        ("OrderFilled", "BUY 10 SOL/USDT:USDT at 190.00 (taker, fee 0.95)"),
        ("ProposalQueued", "P000001 proposed: buy 0.05 BTC/USDT:USDT at 3x, confidence 72%"),
        ("ProposalQueued", "P000002 proposed: sell 1.2 ETH/USDT:USDT at 2x, confidence 64%"),
    ]
    return tuple(LoggedEvent(i + 1, NOW - (60 - i * 10) * 1000, t, text) for i, (t, text) in enumerate(texts))


def alerts() -> tuple[Alert, ...]:
    return (Alert(NOW - 45_000, "warning", "feed", "SOL/USDT:USDT market data gap (backfilled)"),)


def snapshot(state: TradingState = TradingState.ACTIVE, reason: str = "") -> Snapshot:
    """The daemon's whole picture: four pending proposals (one novel, two blocked), two positions."""
    views = proposals() if state is not TradingState.HALTED else ()
    return Snapshot(
        status=status(state, reason, pending=len(views)),
        proposals=views,
        positions=positions(),
        events=events(),
        alerts=alerts(),
        prices=prices(),
    )


def halted() -> Snapshot:
    """After the kill switch: HALTED, the queue emptied, the kill in the log and the alerts."""
    base = snapshot(TradingState.HALTED, "kill switch pulled by alice: kill switch pressed in the console")
    kill = LoggedEvent(7, NOW - 500, "TradingStateChanged", "ACTIVE -> HALTED by alice: kill switch pressed")
    alert = Alert(NOW - 500, "critical", "trading_state", "HALTED: kill switch pulled by alice")
    return msgspec.structs.replace(base, events=(*base.events, kill), alerts=(*base.alerts, alert))
