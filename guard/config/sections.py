"""The config's sections: what every setting is, its default and what it allows (the config reference).

Each section is a frozen msgspec Struct that refuses unknown keys. A setting's type says what is
allowed: an `Annotated[..., Meta(...)]` range, a `Literal` choice, an exact `Decimal` for money with
its `Money` range. The attribute docstrings are the reference; config.toml says the same in its comments.
"""

from __future__ import annotations

import hashlib
import json
import os
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import msgspec
from msgspec import Meta

from guard.config.rules import Money, Says
from guard.domain import HARD_LEVERAGE_CAP
from guard.timeframes import TIMEFRAME_MS

MIN_HEARTBEAT_TIMEOUT = 1.0
"""No console answers within less than a second across a network and a busy loop."""

LIVE_TIMEFRAMES = tuple(name for name in TIMEFRAME_MS if name in ("1m", "3m", "5m", "15m", "1h"))
"""exchange.timeframe's choices: bar lengths from guard.domain's one table (TIMEFRAME_MS), the same five as
always (the longer ones are for history, replay and training, not the live daemon)."""
if TYPE_CHECKING:
    Timeframe = str
else:
    Timeframe = Literal[LIVE_TIMEFRAMES]
Stream = Literal["bars", "trades", "ticker", "mark", "book"]
Broker = Literal["paper", "sandbox"]
FeedTransport = Literal["auto", "rest"]
NoveltyPolicy = Literal["confirm", "suppress"]
Synchronous = Literal["full", "normal"]
ApiTransport = Literal["unix", "tcp"]
DeadmanPolicy = Literal["hold", "reduce", "flatten"]
LogLevel = Literal["debug", "info", "warning", "error"]
LogFormat = Literal["auto", "json", "console"]

Leverage = Annotated[float, Meta(ge=1, le=float(HARD_LEVERAGE_CAP))]
Fraction = Annotated[float, Meta(ge=0, le=1)]
Port = Annotated[int, Meta(ge=0, le=65535)]
PositiveMoney = Annotated[Decimal, Money(gt=Decimal(0))]
Symbol = Annotated[
    str,
    Meta(pattern=r"^[^/\s]+/[^/\s]+$"),
    Says('each must be a ccxt unified symbol like "BTC/USDT:USDT" or "BTC/USDT"'),
]


class Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every config section: frozen, keyword-only, no unknown keys."""


class GuardSection(Section, frozen=True):
    state_dir: Annotated[str, Meta(min_length=1)] = ".guard"
    """Where the journal, control socket, token and pidfile live. GUARD_HOME overrides it."""
    operator: Annotated[str, Meta(max_length=64)] = ""
    """Operator id used by `guard tui` and `guard kill` when none is given; empty means $USER."""


class ExchangeSection(Section, frozen=True):
    id: Annotated[str, Meta(min_length=1)] = "sim"
    """A ccxt exchange id (e.g. "binanceusdm"), or "sim" for the embedded simulated exchange."""
    symbols: Annotated[tuple[Symbol, ...], Meta(min_length=1)] = ("BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT")
    """ccxt unified symbols to watch and trade; "X/USDT:USDT" is a linear perpetual, "X/USDT" spot."""
    timeframe: Timeframe = "1m"
    """Bar size the model sees."""
    broker: Broker = "paper"
    """Where approved orders go: guard's own paper broker, or the exchange's sandbox/testnet."""
    timeout_seconds: Annotated[float, Meta(gt=0, le=120)] = 10.0
    """Timeout of every request to the exchange."""
    credentials_env: Annotated[
        str, Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$"), Says("must be an environment variable name (A-Z, 0-9, _)")
    ] = "GUARD_SANDBOX"
    """Prefix of the environment variables holding the sandbox API key and secret
    (`<prefix>_API_KEY`, `<prefix>_API_SECRET`). Keys are never read from a config file."""
    recv_window_seconds: Annotated[float, Meta(gt=0, le=60)] = 5.0
    """How long after signing the venue may still accept a request (Binance's recvWindow). An
    order the venue has not heard of once this (plus a second for clock skew) has passed since
    an ambiguous answer was never accepted."""
    order_lookups: Annotated[int, Meta(ge=1, le=100)] = 8
    """Lookups by client order id after an ambiguous answer (timeout, network error, 5xx) before
    the order is recorded UNKNOWN and trading goes REDUCING. The order is never sent again."""
    deadman_seconds: Annotated[float, Meta(ge=0, le=600)] = 60.0
    """Countdown of the venue's own dead-man switch (Binance countdownCancelAll), refreshed every
    quarter of it: if guard dies, the venue cancels its open orders — resting stops included —
    but never closes positions. 0 leaves it disarmed."""
    reconcile_seconds: Annotated[float, Meta(gt=0, le=300)] = 2.0
    """How often the sandbox broker asks the venue for fills of resting orders, resolves orders in
    doubt, compares positions, and — while the kill switch has trading HALTED — re-checks that
    everything is cancelled and flat, retrying what is not."""


class FeedSection(Section, frozen=True):
    stale_after_seconds: Annotated[float, Meta(gt=0, le=3600)] = 15.0
    """A symbol with no market event for this long is stale: no proposals, approvals blocked.
    With `transport = "rest"` it must be longer than `poll_interval_seconds`."""
    max_reconnect_delay_seconds: Annotated[float, Meta(gt=0, le=600)] = 30.0
    """Ceiling of the reconnect backoff (which also honours Retry-After)."""
    poll_interval_seconds: Annotated[float, Meta(gt=0, le=60)] = 2.0
    """REST polling interval for exchanges without WebSocket streams."""
    transport: FeedTransport = "auto"
    """"auto" streams over WebSocket where ccxt.pro supports the venue, else polls REST;
    "rest" always polls REST."""
    streams: Annotated[tuple[Stream, ...], Meta(min_length=1)] = ("bars", "trades", "ticker", "mark", "book")
    """Streams watched per symbol: any of bars, trades, ticker, mark, book."""
    min_reconnect_delay_seconds: Annotated[float, Meta(gt=0, le=60)] = 0.5
    """First reconnect delay; it doubles per failure (with jitter) up to the maximum (never above it)."""
    invalid_hold_seconds: Annotated[float, Meta(ge=0, le=3600)] = 5.0
    """A refused event or an unfillable gap keeps the symbol unhealthy for this long."""
    queue_size: Annotated[int, Meta(ge=10, le=1_000_000)] = 10_000
    """Events buffered between the feed and its consumer (about a second of a busy market);
    when full, the feed waits and ccxt's own bounded caches take up the slack."""
    max_backfill_trades: Annotated[int, Meta(ge=0, le=1_000_000)] = 3_000
    """Largest trade gap filled from REST; a larger one is counted lost (bars incomplete).
    Filling holds the live stream: Binance serves 1,000 trades per request at weight 20."""
    trades_cache: Annotated[int, Meta(ge=100, le=100_000)] = 5_000
    """Trades ccxt.pro keeps per symbol between our reads (its default is 1,000). Overflow is
    detected by trade id and backfilled; a larger cache overflows less often."""
    book_depth: Annotated[int, Meta(ge=1, le=1000)] = 10
    """Levels per side kept from each order book update."""
    bars_from_trades: bool = False
    """Build bars from the trade stream even where the venue streams klines."""


class SimSection(Section, frozen=True):
    seed: Annotated[int, Meta(ge=0)] = 22
    """Seed of the simulated price process: the same seed gives the same market. The default's opening
    minutes give the demonstration model something to say at once (a demo, not evidence)."""
    scenario: Annotated[str, Meta(min_length=1)] = "trend"
    """Scenario the simulated exchange plays (see `guard sim --help`). The default trends, so the
    demonstration model has something to say; on "calm" it rarely proposes, as its card explains."""
    speed: Annotated[float, Meta(gt=0, le=10000)] = 60.0
    """Simulated seconds per real second (60: a one-minute bar every second, so a demo is lively)."""
    port: Port = 0
    """Loopback port of the simulated exchange; 0 picks a free one."""
    history: str = ""
    """Optional history file (CSV or Parquet) to serve instead of the generated process."""
    url: Annotated[str, Meta(pattern=r"^(https?://\S+)?$"), Says("must be empty or an http:// address")] = ""
    """Address of an already running `guard sim` (e.g. "http://127.0.0.1:8800") to use instead of
    embedding one; empty embeds the simulated exchange in the daemon."""
    history_bars: Annotated[int, Meta(ge=0, le=1_000_000)] = 10_080
    """1-minute bars of made-up past the simulator starts with (REST history, backfills)."""
    trades_per_tick: Annotated[int, Meta(ge=1, le=100)] = 10
    """Trades printed per 5 simulated seconds per symbol (sets the trade stream's rate)."""


class ModelSection(Section, frozen=True):
    path: Annotated[str, Meta(min_length=1)] = "models/default"
    """Directory of the model artifact (weights, config.json, README.md model card, sha256)."""
    enabled: bool = True
    """Let the model propose (proposals still need a typed risk acknowledgment on record)."""
    novelty_threshold: Annotated[float, Meta(gt=0, lt=1)] = 0.95
    """Novelty percentile above which the model is "guessing"."""
    novelty_policy: NoveltyPolicy = "confirm"
    """What to do with a novel proposal: require an extra confirmation, or drop it."""
    max_age_days: Annotated[float, Meta(gt=0)] = 30.0
    """Past this age (training data end to now) the model stops proposing."""
    inference_timeout_seconds: Annotated[float, Meta(gt=0, le=60)] = 2.0
    """An inference slower than this is abandoned: no proposal, model health shows why."""
    live_shortfall: Annotated[float, Meta(gt=0, le=0.5)] = 0.10
    """How far (absolute) the live hit rate must sit below the model's stated confidence for the
    sequential test to call the record "clearly below its claim" and pause the model."""
    live_false_pause_rate: Annotated[float, Meta(gt=0, le=0.1)] = 0.001
    """Bounds chance pauses: a model performing as claimed is paused by chance at most about
    once per 1 / this many settled proposals."""


class ProposalsSection(Section, frozen=True):
    equity_fraction: Annotated[float, Meta(gt=0, le=1)] = 0.05
    """Margin committed per proposal at full confidence, as a fraction of equity."""
    min_leverage: Leverage = 1.0
    """Leverage proposed at the lowest confidence. At most `max_leverage`, and at most
    `risk.max_leverage` (the policy never proposes above the risk limit)."""
    max_leverage: Leverage = 3.0
    """Leverage proposed at the highest confidence (capped at `risk.max_leverage`)."""
    min_confidence: Fraction = 0.55
    """The model does not propose below this calibrated confidence. At least `risk.min_confidence`
    (below it the model would propose what risk blocks) and below `full_size_confidence`."""
    cooldown_bars: Annotated[int, Meta(ge=0, le=100_000)] = 5
    """Bars to wait after a proposal on a symbol before proposing on it again."""
    full_size_confidence: Annotated[float, Meta(gt=0, le=1)] = 0.75
    """Confidence at which size and leverage reach their maximum; at min_confidence they are
    half size and min_leverage."""


class ApprovalSection(Section, frozen=True):
    ttl_seconds: Annotated[float, Meta(gt=0, le=3600)] = 30.0
    """A proposal nobody answers within this time expires (no answer means no)."""
    collar_bps: Annotated[float, Meta(gt=0, le=5000)] = 50.0
    """If the mark moved more than this since pricing, approval is refused and it is re-priced."""
    max_pending: Annotated[int, Meta(ge=1, le=100_000)] = 200
    """Queue bound; proposals beyond it are refused and counted."""


class RiskSection(Section, frozen=True):
    max_leverage: Leverage = 3.0
    """The conservative leverage limit; above it (and always above 5x) needs a leverage
    acknowledgment on record. Nothing ever exceeds 20x."""
    max_order_notional: PositiveMoney = Decimal(25_000)
    """Largest notional of one order, in quote currency (at most 1,000,000,000)."""
    max_position_notional: PositiveMoney = Decimal(50_000)
    """Largest notional of the position in one symbol (at most 1,000,000,000)."""
    max_gross_exposure: PositiveMoney = Decimal(100_000)
    """Largest sum of absolute position notionals across symbols (at most 1,000,000,000)."""
    daily_loss_limit: PositiveMoney = Decimal(1_000)
    """Loss (realized + unrealized, since 00:00 UTC) that latches trading into REDUCING
    (at most 1,000,000,000)."""
    max_orders_per_minute: Annotated[int, Meta(ge=1, le=10_000)] = 20
    """Execution throttle: the next order beyond this latches entries off until re-enabled."""
    min_confidence: Fraction = 0.55
    """Proposals below this confidence are blocked."""
    liquidation_buffer: Annotated[float, Meta(ge=0, le=0.5)] = 0.05
    """Warn when the stop sits within this fraction of the entry-to-liquidation distance of it."""


class PaperSection(Section, frozen=True):
    starting_balance: PositiveMoney = Decimal(10_000)
    """USDT credited to the paper account on first start (at most 1,000,000,000)."""
    maker_fee_bps: Annotated[float, Meta(ge=0, le=100)] = 2.0
    """Fee for orders that rest on the book (Binance USDⓈ-M regular tier: 2 bps)."""
    taker_fee_bps: Annotated[float, Meta(ge=0, le=100)] = 5.0
    """Fee for orders that take liquidity (Binance USDⓈ-M regular tier: 5 bps)."""
    slippage_bps: Annotated[float, Meta(ge=0, le=1000)] = 1.0
    """Slippage of a small market order with no book known."""
    slippage_size_bps_per_million: Annotated[float, Meta(ge=0, le=10_000)] = 10.0
    """Extra slippage per 1,000,000 of notional (with no book known)."""
    slippage_vol_multiplier: Annotated[float, Meta(ge=0, le=100)] = 0.1
    """Extra slippage as a multiple of the per-bar volatility (σ, in bps)."""
    funding_interval_hours: Annotated[float, Meta(gt=0, le=24)] = 8.0
    """Funding is paid at every multiple of this interval (UTC)."""
    default_funding_rate: Annotated[float, Meta(ge=-0.01, le=0.01)] = 0.0001
    """Funding rate per interval when the feed has none (Binance's base rate: 0.01 %)."""


class JournalSection(Section, frozen=True):
    synchronous: Synchronous = "full"
    """SQLite synchronous level for operator decisions and orders. "full" fsyncs each commit."""


class ApiSection(Section, frozen=True):
    transport: ApiTransport = "unix"
    """Serve the control API on a unix socket in the state directory, or on TCP."""
    host: Annotated[str, Meta(min_length=1)] = "127.0.0.1"
    """TCP bind address; only loopback addresses are accepted."""
    port: Port = 8765
    """TCP port (0 picks a free one)."""
    metrics: bool = False
    """Serve `/metrics` (Prometheus' text format, read-only, no token) on a loopback TCP port of its own, for a
    stock Prometheus to scrape. Off, the only `/metrics` is the control API's, behind the token."""
    metrics_port: Port = 9464
    """The metrics listener's port (0 picks a free one)."""
    metrics_host: Annotated[str, Meta(min_length=1)] = "127.0.0.1"
    """Where the metrics listener binds; only loopback addresses are accepted."""


class OperatorsSection(Section, frozen=True):
    heartbeat_timeout_seconds: Annotated[float, Meta(ge=MIN_HEARTBEAT_TIMEOUT, le=3600)] = 30.0
    """With no operator heartbeat for this long, the dead-man switch fires. At least a second: no
    console can answer faster (a console beats every 5 s, so below 10 s an idle one counts as gone;
    drills use that to make the switch fire)."""
    deadman_policy: DeadmanPolicy = "hold"
    """What happens to open positions when the dead-man switch fires."""
    kill_cancels_stops: bool = True
    """The kill switch cancels resting stops and take-profits at once with every other order (true),
    or keeps them working until positions are confirmed flat (false), so a flatten that fails does
    not leave a naked position."""
    four_eyes_notional: Annotated[Decimal, Money(ge=Decimal(0))] = Decimal(0)
    """Proposals at or above this notional need two different operators (0 = off; at most
    1,000,000,000)."""
    four_eyes_leverage: Annotated[float, Meta(ge=0, le=float(HARD_LEVERAGE_CAP))] = 0.0
    """Proposals at or above this leverage need two different operators (0 = off)."""


class LogSection(Section, frozen=True):
    level: LogLevel = "info"
    """The least severe level logged."""
    format: LogFormat = "auto"
    """"auto" is pretty on a terminal and JSON otherwise."""


HASHED_SECTIONS = ("exchange", "model", "proposals", "approval", "risk", "paper", "operators")
"""The sections that shape trading decisions: acknowledgments bind to their hash."""
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), allow_nan=False)


class Config(msgspec.Struct, frozen=True, kw_only=True):
    guard: GuardSection = msgspec.field(default_factory=GuardSection)
    exchange: ExchangeSection = msgspec.field(default_factory=ExchangeSection)
    feed: FeedSection = msgspec.field(default_factory=FeedSection)
    sim: SimSection = msgspec.field(default_factory=SimSection)
    model: ModelSection = msgspec.field(default_factory=ModelSection)
    proposals: ProposalsSection = msgspec.field(default_factory=ProposalsSection)
    approval: ApprovalSection = msgspec.field(default_factory=ApprovalSection)
    risk: RiskSection = msgspec.field(default_factory=RiskSection)
    paper: PaperSection = msgspec.field(default_factory=PaperSection)
    journal: JournalSection = msgspec.field(default_factory=JournalSection)
    api: ApiSection = msgspec.field(default_factory=ApiSection)
    operators: OperatorsSection = msgspec.field(default_factory=OperatorsSection)
    log: LogSection = msgspec.field(default_factory=LogSection)
    source: str = "(defaults)"
    """The file this config was read from."""

    @property
    def state_dir(self) -> Path:
        """The runtime state directory; the environment variable GUARD_HOME wins."""
        return Path(os.environ.get("GUARD_HOME") or self.guard.state_dir).expanduser()

    def hash(self) -> str:
        """sha256 of every setting that shapes trading decisions; acknowledgments bind to it.

        The canonical JSON of those sections (sorted keys, no spaces, Decimals as text): the same
        text the dataclass config hashed, so acknowledgments already journaled still match.
        """
        relevant = {name: msgspec.to_builtins(getattr(self, name)) for name in HASHED_SECTIONS}
        return hashlib.sha256(_CANONICAL.encode(relevant).encode()).hexdigest()
