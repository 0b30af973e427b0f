"""config.toml -> frozen, typed, validated settings.

Every section is a frozen dataclass; the attribute docstrings below are the config reference.
Loading rejects unknown keys, wrong types and out-of-range values, naming the key, the value
and what is allowed. Each part of guard receives its own section, never the whole config.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import math
import os
import tomllib
import typing
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

from guard import codec
from guard.domain import HARD_LEVERAGE_CAP
from guard.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("config.toml")


def setting(
    default: Any,
    *,
    ge: float | None = None,
    le: float | None = None,
    gt: float | None = None,
    choices: tuple[str, ...] | None = None,
) -> Any:
    """A config field with its allowed range, checked at load time."""
    meta = {"ge": ge, "le": le, "gt": gt, "choices": choices}
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda: tuple(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True, slots=True)
class GuardSection:
    state_dir: str = setting(".guard")
    """Where the journal, control socket, token and pidfile live. GUARD_HOME overrides it."""
    operator: str = setting("")
    """Operator id used by `guard tui` and `guard kill` when none is given; empty means $USER."""


@dataclass(frozen=True, slots=True)
class ExchangeSection:
    id: str = setting("sim")
    """A ccxt exchange id (e.g. "binanceusdm"), or "sim" for the embedded simulated exchange."""
    symbols: tuple[str, ...] = setting(("BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"))
    """ccxt unified symbols to watch and trade; "X/USDT:USDT" is a linear perpetual, "X/USDT" spot."""
    timeframe: str = setting("1m", choices=("1m", "3m", "5m", "15m", "1h"))
    """Bar size the model sees."""
    broker: str = setting("paper", choices=("paper", "sandbox"))
    """Where approved orders go: guard's own paper broker, or the exchange's sandbox/testnet."""
    timeout_seconds: float = setting(10.0, gt=0, le=120)
    """Timeout of every request to the exchange."""
    credentials_env: str = setting("GUARD_SANDBOX")
    """Prefix of the environment variables holding the sandbox API key and secret
    (`<prefix>_API_KEY`, `<prefix>_API_SECRET`). Keys are never read from a config file."""
    recv_window_seconds: float = setting(5.0, gt=0, le=60)
    """How long after signing the venue may still accept a request (Binance's recvWindow). An
    order the venue has not heard of once this (plus a second for clock skew) has passed since
    an ambiguous answer was never accepted."""
    order_lookups: int = setting(8, ge=1, le=100)
    """Lookups by client order id after an ambiguous answer (timeout, network error, 5xx) before
    the order is recorded UNKNOWN and trading goes REDUCING. The order is never sent again."""
    deadman_seconds: float = setting(60.0, ge=0, le=600)
    """Countdown of the venue's own dead-man switch (Binance countdownCancelAll), refreshed every
    quarter of it: if guard dies, the venue cancels its open orders — resting stops included —
    but never closes positions. 0 leaves it disarmed."""
    reconcile_seconds: float = setting(2.0, gt=0, le=300)
    """How often the sandbox broker asks the venue for fills of resting orders, resolves orders in
    doubt, compares positions, and — while the kill switch has trading HALTED — re-checks that
    everything is cancelled and flat, retrying what is not."""


@dataclass(frozen=True, slots=True)
class FeedSection:
    stale_after_seconds: float = setting(15.0, gt=0, le=3600)
    """A symbol with no market event for this long is stale: no proposals, approvals blocked."""
    max_reconnect_delay_seconds: float = setting(30.0, gt=0, le=600)
    """Ceiling of the reconnect backoff (which also honours Retry-After)."""
    poll_interval_seconds: float = setting(2.0, gt=0, le=60)
    """REST polling interval for exchanges without WebSocket streams."""
    transport: str = setting("auto", choices=("auto", "rest"))
    """"auto" streams over WebSocket where ccxt.pro supports the venue, else polls REST;
    "rest" always polls REST."""
    streams: tuple[str, ...] = setting(("bars", "trades", "ticker", "mark", "book"))
    """Streams watched per symbol: any of bars, trades, ticker, mark, book."""
    min_reconnect_delay_seconds: float = setting(0.5, gt=0, le=60)
    """First reconnect delay; it doubles per failure (with jitter) up to the maximum."""
    invalid_hold_seconds: float = setting(5.0, ge=0, le=3600)
    """A refused event or an unfillable gap keeps the symbol unhealthy for this long."""
    queue_size: int = setting(10_000, ge=10, le=1_000_000)
    """Events buffered between the feed and its consumer (about a second of a busy market);
    when full, the feed waits and ccxt's own bounded caches take up the slack."""
    max_backfill_trades: int = setting(3_000, ge=0, le=1_000_000)
    """Largest trade gap filled from REST; a larger one is counted lost (bars incomplete).
    Filling holds the live stream: Binance serves 1,000 trades per request at weight 20."""
    trades_cache: int = setting(5_000, ge=100, le=100_000)
    """Trades ccxt.pro keeps per symbol between our reads (its default is 1,000). Overflow is
    detected by trade id and backfilled; a larger cache overflows less often."""
    book_depth: int = setting(10, ge=1, le=1000)
    """Levels per side kept from each order book update."""
    bars_from_trades: bool = setting(False)
    """Build bars from the trade stream even where the venue streams klines."""


@dataclass(frozen=True, slots=True)
class SimSection:
    seed: int = setting(22, ge=0)
    """Seed of the simulated price process: the same seed gives the same market. The default's opening
    minutes give the demonstration model something to say at once (a demo, not evidence)."""
    scenario: str = setting("trend")
    """Scenario the simulated exchange plays (see `guard sim --help`). The default trends, so the
    demonstration model has something to say; on "calm" it rarely proposes, as its card explains."""
    speed: float = setting(60.0, gt=0, le=10000)
    """Simulated seconds per real second (60: a one-minute bar every second, so a demo is lively)."""
    port: int = setting(0, ge=0, le=65535)
    """Loopback port of the simulated exchange; 0 picks a free one."""
    history: str = setting("")
    """Optional history file (CSV or Parquet) to serve instead of the generated process."""
    url: str = setting("")
    """Address of an already running `guard sim` (e.g. "http://127.0.0.1:8800") to use instead of
    embedding one; empty embeds the simulated exchange in the daemon."""
    history_bars: int = setting(10_080, ge=0, le=1_000_000)
    """1-minute bars of made-up past the simulator starts with (REST history, backfills)."""
    trades_per_tick: int = setting(10, ge=1, le=100)
    """Trades printed per 5 simulated seconds per symbol (sets the trade stream's rate)."""


@dataclass(frozen=True, slots=True)
class ModelSection:
    path: str = setting("models/default")
    """Directory of the model artifact (weights, config.json, README.md, sha256)."""
    enabled: bool = setting(True)
    """Let the model propose (still needs a typed risk acknowledgment on record)."""
    novelty_threshold: float = setting(0.95, gt=0, le=1)
    """Novelty percentile above which the model is "guessing"."""
    novelty_policy: str = setting("confirm", choices=("confirm", "suppress"))
    """What to do with a novel proposal: require an extra confirmation, or drop it."""
    max_age_days: float = setting(30.0, gt=0)
    """Past this age (training data end to now) the model stops proposing."""
    inference_timeout_seconds: float = setting(2.0, gt=0, le=60)
    """An inference slower than this is abandoned: no proposal, model health shows why."""
    live_shortfall: float = setting(0.10, gt=0, le=0.5)
    """How far (absolute) the live hit rate must sit below the model's stated confidence for the
    sequential test to call the record "clearly below its claim" and pause the model."""
    live_false_pause_rate: float = setting(0.001, gt=0, le=0.1)
    """Bounds chance pauses: a model performing as claimed is paused by chance at most about
    once per 1 / this many settled proposals."""


@dataclass(frozen=True, slots=True)
class ProposalsSection:
    equity_fraction: float = setting(0.05, gt=0, le=1)
    """Margin committed per proposal at full confidence, as a fraction of equity."""
    min_leverage: float = setting(1.0, ge=1, le=float(HARD_LEVERAGE_CAP))
    """Leverage proposed at the lowest confidence."""
    max_leverage: float = setting(3.0, ge=1, le=float(HARD_LEVERAGE_CAP))
    """Leverage proposed at the highest confidence."""
    min_confidence: float = setting(0.55, ge=0, le=1)
    """The model does not propose below this calibrated confidence."""
    cooldown_bars: int = setting(5, ge=0)
    """Bars to wait after a proposal on a symbol before proposing on it again."""
    full_size_confidence: float = setting(0.75, gt=0, le=1)
    """Confidence at which size and leverage reach their maximum; at min_confidence they are
    half size and min_leverage."""


@dataclass(frozen=True, slots=True)
class ApprovalSection:
    ttl_seconds: float = setting(30.0, gt=0, le=3600)
    """A proposal nobody answers within this time expires (no answer means no)."""
    collar_bps: float = setting(50.0, gt=0, le=5000)
    """If the mark moved more than this since pricing, approval is refused and it is re-priced."""
    max_pending: int = setting(200, ge=1, le=100_000)
    """Queue bound; proposals beyond it are refused and counted."""


@dataclass(frozen=True, slots=True)
class RiskSection:
    max_leverage: float = setting(3.0, ge=1, le=float(HARD_LEVERAGE_CAP))
    """The conservative leverage limit; above it (and always above 5x) needs a leverage
    acknowledgment on record. Nothing ever exceeds 20x."""
    max_order_notional: Decimal = setting(Decimal(25_000), gt=0)
    """Largest notional of one order, in quote currency."""
    max_position_notional: Decimal = setting(Decimal(50_000), gt=0)
    """Largest notional of the position in one symbol."""
    max_gross_exposure: Decimal = setting(Decimal(100_000), gt=0)
    """Largest sum of absolute position notionals across symbols."""
    daily_loss_limit: Decimal = setting(Decimal(1_000), gt=0)
    """Loss (realized + unrealized, since 00:00 UTC) that latches trading into REDUCING."""
    max_orders_per_minute: int = setting(20, ge=1, le=10_000)
    """Execution throttle: the next order beyond this latches entries off until re-enabled."""
    min_confidence: float = setting(0.55, ge=0, le=1)
    """Proposals below this confidence are blocked."""
    liquidation_buffer: float = setting(0.05, ge=0, le=0.5)
    """Warn when the stop sits within this fraction of the entry-to-liquidation distance of it."""


@dataclass(frozen=True, slots=True)
class PaperSection:
    starting_balance: Decimal = setting(Decimal(10_000), gt=0)
    """USDT credited to the paper account on first start."""
    maker_fee_bps: float = setting(2.0, ge=0, le=100)
    """Fee for orders that rest on the book (Binance USDⓈ-M regular tier: 2 bps)."""
    taker_fee_bps: float = setting(5.0, ge=0, le=100)
    """Fee for orders that take liquidity (Binance USDⓈ-M regular tier: 5 bps)."""
    slippage_bps: float = setting(1.0, ge=0, le=1000)
    """Slippage of a small market order with no book known."""
    slippage_size_bps_per_million: float = setting(10.0, ge=0, le=10_000)
    """Extra slippage per 1,000,000 of notional (with no book known)."""
    slippage_vol_multiplier: float = setting(0.1, ge=0, le=100)
    """Extra slippage as a multiple of the per-bar volatility (σ, in bps)."""
    funding_interval_hours: float = setting(8.0, gt=0, le=24)
    """Funding is paid at every multiple of this interval (UTC)."""
    default_funding_rate: float = setting(0.0001, ge=-0.01, le=0.01)
    """Funding rate per interval when the feed has none (Binance's base rate: 0.01 %)."""


@dataclass(frozen=True, slots=True)
class JournalSection:
    synchronous: str = setting("full", choices=("full", "normal"))
    """SQLite synchronous level for operator decisions and orders. "full" fsyncs each commit."""


@dataclass(frozen=True, slots=True)
class ApiSection:
    transport: str = setting("unix", choices=("unix", "tcp"))
    """Serve the control API on a unix socket in the state directory, or on TCP."""
    host: str = setting("127.0.0.1")
    """TCP bind address; only loopback addresses are accepted."""
    port: int = setting(8765, ge=0, le=65535)
    """TCP port (0 picks a free one)."""


@dataclass(frozen=True, slots=True)
class OperatorsSection:
    heartbeat_timeout_seconds: float = setting(30.0, gt=0, le=3600)
    """With no operator heartbeat for this long, the dead-man switch fires."""
    deadman_policy: str = setting("hold", choices=("hold", "reduce", "flatten"))
    """What happens to open positions when the dead-man switch fires."""
    kill_cancels_stops: bool = setting(True)
    """The kill switch cancels resting stops and take-profits at once with every other order (true),
    or keeps them working until positions are confirmed flat (false), so a flatten that fails does
    not leave a naked position."""
    four_eyes_notional: Decimal = setting(Decimal(0), ge=0)
    """Proposals at or above this notional need two different operators (0 = off)."""
    four_eyes_leverage: float = setting(0.0, ge=0, le=float(HARD_LEVERAGE_CAP))
    """Proposals at or above this leverage need two different operators (0 = off)."""


@dataclass(frozen=True, slots=True)
class LogSection:
    level: str = setting("info", choices=("debug", "info", "warning", "error"))
    format: str = setting("auto", choices=("auto", "json", "console"))
    """"auto" is pretty on a terminal and JSON otherwise."""


@dataclass(frozen=True, slots=True)
class Config:
    guard: GuardSection = field(default_factory=GuardSection)
    exchange: ExchangeSection = field(default_factory=ExchangeSection)
    feed: FeedSection = field(default_factory=FeedSection)
    sim: SimSection = field(default_factory=SimSection)
    model: ModelSection = field(default_factory=ModelSection)
    proposals: ProposalsSection = field(default_factory=ProposalsSection)
    approval: ApprovalSection = field(default_factory=ApprovalSection)
    risk: RiskSection = field(default_factory=RiskSection)
    paper: PaperSection = field(default_factory=PaperSection)
    journal: JournalSection = field(default_factory=JournalSection)
    api: ApiSection = field(default_factory=ApiSection)
    operators: OperatorsSection = field(default_factory=OperatorsSection)
    log: LogSection = field(default_factory=LogSection)
    source: str = field(default="(defaults)", compare=False)
    """The file this config was read from."""

    @property
    def state_dir(self) -> Path:
        """The runtime state directory; the environment variable GUARD_HOME wins."""
        return Path(os.environ.get("GUARD_HOME") or self.guard.state_dir).expanduser()

    def hash(self) -> str:
        """sha256 of every setting that shapes trading decisions; acknowledgments bind to it."""
        relevant = {
            name: codec.to_plain(getattr(self, name))
            for name in ("exchange", "model", "proposals", "approval", "risk", "paper", "operators")
        }
        return hashlib.sha256(codec.dumps(relevant).encode()).hexdigest()


def load_config(path: Path | str | None = None) -> Config:
    """Read and validate a config file. A missing default path gives the defaults.

    Raises:
        ConfigError: naming the key, the value and what is allowed.
    """
    explicit = path is not None
    path = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    if not path.exists():
        if explicit:
            raise ConfigError("path", str(path), "no such file")
        return Config()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError("(file)", str(path), f"not valid TOML: {e}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError("(file)", str(path), f"cannot be read: {e}") from e
    return config_from_dict(raw, source=str(path))


def config_from_dict(raw: dict[str, Any], source: str = "(dict)") -> Config:
    """Validate a parsed TOML document into a Config."""
    sections = {}
    for name, value in raw.items():
        section_cls = _section_types().get(name)
        if section_cls is None:
            allowed = ", ".join(sorted(_section_types()))
            raise ConfigError(name, value, f"unknown section; allowed: {allowed}", source)
        if not isinstance(value, dict):
            raise ConfigError(name, value, "must be a table ([section])", source)
        sections[name] = _build_section(name, section_cls, value, source)
    config = Config(**sections, source=source)
    _check_cross_field(config, source)
    return config


@cache
def _section_types() -> dict[str, type]:
    hints = typing.get_type_hints(Config)
    return {f.name: hints[f.name] for f in dataclasses.fields(Config) if f.name != "source"}


def replace_setting(section: Any, name: str, key: str, value: Any, source: str = "(command)") -> Any:
    """A copy of a section with one setting changed, validated exactly like the config file.

    Raises:
        ConfigError: unknown key, wrong type or out of range, naming `name.key`.
    """
    return _build_section(name, type(section), {**_plain_fields(section), key: value}, source)


def _plain_fields(section: Any) -> dict[str, Any]:
    """A section's current values in the form a TOML file would give them."""
    out = {}
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        out[f.name] = str(value) if isinstance(value, Decimal) else list(value) if isinstance(value, tuple) else value
    return out


def _build_section(name: str, cls: type, values: dict[str, Any], source: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in values.items():
        dotted = f"{name}.{key}"
        if key not in fields:
            raise ConfigError(dotted, value, f"unknown key; allowed: {', '.join(fields)}", source)
        kwargs[key] = _coerce(dotted, hints[key], fields[key].metadata, value, source)
    return cls(**kwargs)


def _coerce(key: str, tp: Any, meta: Any, value: Any, source: str) -> Any:
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(key, value, "must be true or false", source)
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(key, value, "must be a string", source)
        choices = meta.get("choices")
        if choices and value not in choices:
            raise ConfigError(key, value, f"must be one of {', '.join(choices)}", source)
        return value
    if typing.get_origin(tp) is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(key, value, "must be a list of non-empty strings", source)
        if not value:
            raise ConfigError(key, value, "must not be empty", source)
        if len(set(value)) != len(value):
            raise ConfigError(key, value, "must not repeat an entry", source)
        return tuple(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, value, "must be a whole number", source)
        _check_range(key, value, meta, source)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(key, value, "must be a finite number", source)
        _check_range(key, value, meta, source)
        return float(value)
    if tp is Decimal:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ConfigError(key, value, "must be a number", source)
        try:
            dec = Decimal(str(value))
        except InvalidOperation:
            raise ConfigError(key, value, "must be a number", source) from None
        if not dec.is_finite():
            raise ConfigError(key, value, "must be a finite number", source)
        _check_range(key, dec, meta, source)
        return dec
    raise ConfigError(key, value, f"unsupported setting type {tp!r}", source)


def _check_range(key: str, value: Any, meta: Any, source: str) -> None:
    ge, le, gt = meta.get("ge"), meta.get("le"), meta.get("gt")
    parts = []
    if gt is not None:
        parts.append(f"> {gt:g}")
    if ge is not None:
        parts.append(f">= {ge:g}")
    if le is not None:
        parts.append(f"<= {le:g}")
    ok = (gt is None or value > gt) and (ge is None or value >= ge) and (le is None or value <= le)
    if not ok:
        raise ConfigError(key, value, f"must be {' and '.join(parts)}", source)


def _check_cross_field(config: Config, source: str) -> None:
    p = config.proposals
    if p.min_leverage > p.max_leverage:
        raise ConfigError(
            "proposals.min_leverage",
            p.min_leverage,
            f"must be <= proposals.max_leverage ({p.max_leverage:g})",
            source,
        )
    for symbol in config.exchange.symbols:
        if "/" not in symbol:
            raise ConfigError(
                "exchange.symbols",
                symbol,
                'each must be a ccxt unified symbol like "BTC/USDT:USDT" or "BTC/USDT"',
                source,
            )
    if config.api.transport == "tcp" and not is_loopback(config.api.host):
        raise ConfigError(
            "api.host",
            config.api.host,
            "must be a loopback address (127.0.0.1, ::1 or localhost): the control API is never exposed",
            source,
        )


def is_loopback(host: str) -> bool:
    """True for hosts that can only be reached from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
