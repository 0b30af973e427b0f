"""Replay prices each market with its own spec: the one saved beside the history, one passed, or a refusal."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

import pytest

from guard.config import Config, SimSection
from guard.domain import MarketSpec
from guard.errors import BadInput
from guard.events import ProposalQueued
from guard.feed.fetch import FetchResult, fetch_history, parse_since
from guard.feed.history import write_bars
from guard.feed.importer import import_plain_csv
from guard.journal.chain import read_entries
from guard.markets import SpecRecord, read_specs, spec_path, write_specs
from guard.replay.engine import ReplayOptions
from guard.replay.operator import OperatorPolicy, ScriptedOperator
from guard.replay.run import run_replay
from guard.sim.process import generate_history
from guard.sim.server import SimExchange
from tests.replay.test_cli import _guard

ROOT = Path(__file__).resolve().parents[2]
MODEL = str(ROOT / "models" / "default")
T0 = 1_767_225_600_000
XRP = "XRP/USDT:USDT"


def _token_csv(path: Path, scale: float) -> Path:
    """The simulator's XRP trend (1,500 1m bars) scaled to another price level, written with 8 decimals and
    timestamps in seconds, as an exchange export of a low-priced token might be."""
    bars = generate_history([XRP], T0, 1_500, scenario="trend", seed=31)[XRP]
    path.write_text(
        "timestamp,open,high,low,close,volume\n"
        + "".join(
            f"{b.open_time // 1000},{b.open * scale:.8f},{b.high * scale:.8f},{b.low * scale:.8f},"
            f"{b.close * scale:.8f},{b.volume:.1f}\n"
            for b in bars
        )
    )
    return path


def _proposals(journal: Path) -> list[ProposalQueued]:
    return [e.event for e in read_entries(journal) if isinstance(e.event, ProposalQueued)]


def _with_tick(s: MarketSpec, tick: Decimal) -> MarketSpec:
    return MarketSpec(
        symbol=s.symbol,
        base=s.base,
        quote=s.quote,
        kind=s.kind,
        tick_size=tick,
        step_size=s.step_size,
        min_qty=s.min_qty,
        min_notional=s.min_notional,
        maker_fee=s.maker_fee,
        taker_fee=s.taker_fee,
        max_leverage=s.max_leverage,
        tiers=s.tiers,
        contract_size=s.contract_size,
    )


def _on_tick(value: Decimal | None, tick: Decimal) -> bool:
    return value is not None and value % tick == 0


def test_replay_token_at_0_002_every_price_on_its_tick(tmp_path: Path) -> None:
    """A perpetual priced 0.002, imported with its tick guessed from 8 decimals, replays with every price,
    stop and take-profit on that tick and apart from each other (not `px 0.0020 stop 0.0019 tp 0.0020`)."""
    imported = import_plain_csv(_token_csv(tmp_path / "TKN_USDT_USDT-1m-futures.csv", 0.002 / 0.6))
    history = tmp_path / "tkn.csv"
    write_bars(history, imported.bars)
    write_specs(spec_path(history), [imported.spec])
    tick = Decimal("0.00000001")
    assert imported.spec.spec.tick_size == tick
    notes: list[str] = []
    options = ReplayOptions(operator=ScriptedOperator(OperatorPolicy.APPROVE_ALL))
    result = run_replay(Config(), [str(history)], MODEL, options, tmp_path / "out", notes=notes.append)
    queued = _proposals(tmp_path / "out" / "journal.db")
    assert result.violations == () and len(queued) > 3
    for event in queued:
        p = event.proposal
        assert all(_on_tick(x, tick) for x in (p.price, p.stop, p.take_profit)), p
        assert p.stop != p.price != p.take_profit
    assert any("tick 0.00000001 guessed from the prices' decimals" in n for n in notes)


def test_replay_spec_round_trip_through_fetch_from_simulator(tmp_path: Path) -> None:
    """`fetch_history` from the simulator (ccxt over loopback) saves the venue's spec — its tick, step, minimums
    and its own leverage brackets — and a replay of the fetched bars prices with it; --spec overrides it."""
    out = tmp_path / "xrp.csv"

    async def fetch() -> FetchResult:
        async with SimExchange(SimSection(), (*Config().exchange.symbols, XRP)) as sim:
            return await fetch_history("sim", XRP, "1m", out, since=parse_since("2020-01-01"), limit=1_500, sim=sim)

    result = asyncio.run(fetch())
    saved = read_specs(spec_path(out))[XRP]
    assert saved == result.spec and saved.guesses == () and saved.settle == "USDT"
    assert (saved.spec.tick_size, saved.spec.step_size) == (Decimal("0.0001"), Decimal("0.1"))
    options = ReplayOptions(operator=ScriptedOperator(OperatorPolicy.APPROVE_ALL))
    run_replay(Config(), [str(out)], MODEL, options, tmp_path / "a")
    queued = _proposals(tmp_path / "a" / "journal.db")
    assert queued and all(_on_tick(e.proposal.stop, Decimal("0.0001")) for e in queued)
    given = write_specs(
        tmp_path / "coarse.spec.json",
        [SpecRecord(spec=_with_tick(saved.spec, Decimal("0.001")), source="a person", settle="USDT")],
    )
    run_replay(Config(), [str(out)], MODEL, options, tmp_path / "b", spec_files=[str(given)])
    assert all(_on_tick(e.proposal.price, Decimal("0.001")) for e in _proposals(tmp_path / "b" / "journal.db"))


def test_replay_symbol_without_spec_refused_before_running(tmp_path: Path) -> None:
    """A history of a symbol guard has no spec for, with none saved or given, is refused with what to pass."""
    bars = generate_history([XRP], T0, 300, seed=4)[XRP]
    history = tmp_path / "xrp.csv"
    write_bars(history, bars)
    options = ReplayOptions(operator=ScriptedOperator(OperatorPolicy.NEVER))
    with pytest.raises(BadInput, match="no market spec for XRP/USDT:USDT"):
        run_replay(Config(), [str(history)], MODEL, options, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_replay_cli_spec_option_and_refusal(guard_home: Path, tmp_path: Path) -> None:
    """`guard replay` exits 2 naming --spec when a symbol has no spec, and replays with --spec FILE."""
    history = tmp_path / "xrp.csv"
    write_bars(history, generate_history([XRP], T0, 1_500, scenario="trend", seed=31)[XRP])
    refused = _guard(guard_home, "replay", str(history), "--operator", "never", "--model", MODEL)
    assert refused.returncode == 2 and "--spec FILE" in refused.stderr
    spec = import_plain_csv(_token_csv(tmp_path / "XRPUSDT-1m.csv", 1.0)).spec
    given = write_specs(tmp_path / "xrp.spec.json", [spec])
    done = _guard(
        guard_home,
        "replay",
        str(history),
        "--operator",
        "approve-all",
        "--model",
        MODEL,
        "--spec",
        str(given),
        "--out",
        str(tmp_path / "r"),
        "--json",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["bars"] == 1_500
    assert "market XRP/USDT:USDT" in done.stderr and "guessed" in done.stderr
