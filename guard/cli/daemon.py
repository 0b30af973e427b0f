"""`guard up | down | daemon | status | kill`: run the daemon, and talk to it from a shell."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import TYPE_CHECKING

from guard.cli._common import OPERATOR_HELP, operator_id
from guard.cli.orders import order_line
from guard.config import Config, load_config
from guard.domain import TradingState
from guard.paths import StatePaths
from guard.wording import count

if TYPE_CHECKING:
    from guard.api.protocol import Snapshot, StatusView


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `guard up`, `down`, `daemon`, `status` and `kill`."""
    up_cmd = sub.add_parser("up", help="start the daemon if none is running, then attach the operator console")
    up_cmd.add_argument("--operator", help=OPERATOR_HELP)
    up_cmd.add_argument("--no-tui", action="store_true", help="start the daemon and print its status only")
    up_cmd.set_defaults(handler=up)
    down_cmd = sub.add_parser("down", help="stop the daemon gracefully (positions are left as they are)")
    down_cmd.set_defaults(handler=down)
    daemon_cmd = sub.add_parser("daemon", help="run the daemon in the foreground")
    daemon_cmd.add_argument("--log-format", choices=("auto", "json", "console"), default=None)
    daemon_cmd.set_defaults(handler=daemon)
    status_cmd = sub.add_parser("status", help="trading state, positions, feed and model health")
    status_cmd.add_argument("--json", action="store_true", help="the full snapshot as JSON")
    status_cmd.set_defaults(handler=status)
    kill_cmd = sub.add_parser("kill", help="the kill switch: halt, cancel, flatten (works with no console attached)")
    kill_cmd.add_argument("--reason", default="", help="why (recorded in the journal)")
    kill_cmd.add_argument("--operator", help=OPERATOR_HELP)
    kill_cmd.set_defaults(handler=kill)


def daemon(args: argparse.Namespace) -> int:
    """Run the daemon in the foreground until SIGTERM or ctrl+c."""
    from guard.daemon import run_daemon  # the heavy imports (ccxt, the model) only where they are needed

    config = load_config(args.config)
    return run_daemon(config, fmt=args.log_format)


def up(args: argparse.Namespace) -> int:
    """Start the daemon if none runs, then attach the operator console (or print the status with --no-tui)."""
    from guard import daemonctl

    config = load_config(args.config)
    since = daemonctl.log_size(StatePaths(config.state_dir))
    started = daemonctl.start_background(config, args.config)
    print(("starting the guard daemon" if started else "the guard daemon is already running") + "...", file=sys.stderr)
    asyncio.run(daemonctl.wait_until_up(config, process=started, since=since))
    if args.no_tui:
        return _print_status(config, as_json=False)
    from guard.tui.app import run_tui

    return run_tui(config, operator_id(config, args.operator))


def down(args: argparse.Namespace) -> int:
    """Stop the daemon gracefully: pending proposals expire, positions are left as they are."""
    from guard import daemonctl

    if daemonctl.stop(load_config(args.config)) is None:
        print("no guard daemon is running", file=sys.stderr)
    else:
        print("guard daemon stopped", file=sys.stderr)
    return 0


def kill(args: argparse.Namespace) -> int:
    """The kill switch from a shell: over the API, or by signal if the API does not answer in a second."""
    from guard import daemonctl

    config = load_config(args.config)
    operator = operator_id(config, args.operator)
    reason = args.reason or "guard kill from a shell"
    outcome = daemonctl.kill(config, operator, reason)
    if outcome.reply is None:
        print(
            f"the API did not answer ({outcome.api_error}); sent SIGUSR1 to the daemon (pid {outcome.signalled_pid}): "
            "it halts and flattens"
        )
        return 0
    if not outcome.reply.ok:
        print(f"kill refused: {outcome.reply.reason}", file=sys.stderr)
        return 1
    print(f"HALTED: kill switch pulled by {operator} ({reason}). Re-arm from the console (ctrl+r) when ready.")
    return 0


def status(args: argparse.Namespace) -> int:
    """Print the daemon's trading state, account, venue, feeds, model, queue and positions (or all of it as JSON)."""
    return _print_status(load_config(args.config), as_json=args.json)


def _print_status(config: Config, *, as_json: bool) -> int:
    from guard import codec
    from guard.api.client import ApiClient

    snapshot = asyncio.run(ApiClient.from_config(config, operator=operator_id(config)).snapshot())
    print(json.dumps(codec.to_plain(snapshot), indent=2) if as_json else describe_status(snapshot))
    return 0


def _model_activity(s: StatusView) -> str:
    """As the console's header says it: a model with nothing wrong still does not propose while HALTED."""
    if s.model.reason:
        return f" — not proposing: {s.model.reason}"
    return " — not proposing while HALTED" if s.trading_state is TradingState.HALTED else " — proposing"


def describe_status(snapshot: Snapshot) -> str:
    """The status as the lines `guard status` prints."""
    s = snapshot.status
    lines = [
        f"trading  {s.trading_state.value}" + (f" ({s.state_reason})" if s.state_reason else ""),
        f"account  equity {s.equity:.2f}  balance {s.balance:.2f}  free {s.free:.2f}  "
        f"unrealized {s.unrealized_pnl:+.2f}  today {s.daily_pnl:+.2f}",
        f"venue    {s.exchange} -> {s.broker} broker",
        f"operators {', '.join(s.operators) or 'none attached'}",
        "feeds    "
        + "  ".join(f"{f.symbol}: {'ok' if f.healthy else 'UNHEALTHY (' + f.reason + ')'}" for f in s.feeds),
        f"model    {s.model.model_id or 'none'}"
        + (f", {s.model.age_days:.1f} days old" if s.model.age_days is not None else "")
        + _model_activity(s),
        f"queue    {count(s.pending, 'pending proposal')}",
    ]
    for source in s.sources:
        record = "no record" if source.hit_rate is None else f"right {source.hit_rate:.0%} of {source.settled} settled"
        state = f"PAUSED ({source.reason})" if source.paused else "proposing"
        lines.append(f"source   {source.name}: {state}; {record}")
    for view in snapshot.positions:
        p = view.position
        pnl = f"{view.unrealized_pnl:+.2f}" if view.unrealized_pnl is not None else "?"
        lines.append(f"position {p.symbol} {p.qty} @ {p.entry_price:.2f} {p.leverage}x  PnL {pnl}")
    lines += [f"order    {order_line(o, s.server_time)}" for o in s.orders]
    return "\n".join(lines)
