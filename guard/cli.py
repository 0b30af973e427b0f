"""The `guard` command line: parses arguments and calls in. No logic lives here.

Exit codes: 0 success, 1 failure, 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from guard.errors import BadInput, GuardError

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="guard",
        description="A human-in-the-loop trade approval daemon for crypto paper trading.",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="PATH",
        help="config file (default ./config.toml; defaults apply when it does not exist)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    # >>> config
    config = sub.add_parser("config", help="validate a config file")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser("check", help="exit 0 when valid, 2 naming the offending key when not")
    check.add_argument("path", nargs="?", type=Path, default=None)
    check.set_defaults(handler=_lazy("guard.commands", "config_check"))
    # <<< config

    # >>> journal
    journal = sub.add_parser("journal", help="verify, export or follow the audit journal")
    journal_sub = journal.add_subparsers(dest="journal_command", required=True)
    verify = journal_sub.add_parser("verify", help="check the hash chain of every event")
    verify.set_defaults(handler=_lazy("guard.journal.commands", "verify"))
    export = journal_sub.add_parser("export", help="write every event as CSV or Parquet")
    export.add_argument("--format", choices=("csv", "parquet"), default="csv")
    export.add_argument("--out", type=Path, default=None, help="file to write (default: stdout for CSV)")
    export.set_defaults(handler=_lazy("guard.journal.commands", "export"))
    tail = journal_sub.add_parser("tail", help="print the last events, and follow new ones")
    tail.add_argument("-n", type=int, default=20, help="how many past events to print")
    tail.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    tail.set_defaults(handler=_lazy("guard.journal.commands", "tail"))
    # <<< journal

    # >>> sim (feed and simulated exchange)
    scenarios = (
        "price: calm, trend, regime-shift (volatility x5 for an hour), flash-crash (-30%% in a minute, "
        "then recovery); faults, played after 30 s and then every 120 s of simulated time: feed-stall, "
        "disconnect-storm, 429-storm, 5xx-burst, malformed, nan-price, out-of-order, duplicate-bars"
    )
    sim = sub.add_parser("sim", help="run the simulated exchange (Binance USDⓈ-M API) on loopback")
    sim.add_argument("--port", type=int, default=None, help="loopback port (default: config, 0 = any free)")
    sim.add_argument("--scenario", default=None, metavar="NAME", help=scenarios)
    sim.add_argument("--speed", type=float, default=None, metavar="X", help="simulated seconds per real second")
    sim.add_argument("--seed", type=int, default=None, help="seed of the price process")
    sim.add_argument("--history", default=None, metavar="FILE", help="serve this history file (1m bars)")
    sim.set_defaults(handler=_lazy("guard.sim.commands", "run"))
    # <<< sim

    # >>> history
    history = sub.add_parser("history", help="download or import OHLCV history files (CSV or Parquet)")
    history_sub = history.add_subparsers(dest="history_command", required=True)
    hfetch = history_sub.add_parser("fetch", help="download closed bars through ccxt; resumable")
    hfetch.add_argument("--exchange", required=True, metavar="ID", help='a ccxt exchange id, or "sim"')
    hfetch.add_argument("--symbol", required=True, metavar="S", help="ccxt unified symbol, e.g. BTC/USDT:USDT")
    hfetch.add_argument("--timeframe", required=True, metavar="TF", help="1m, 5m, 15m, 1h, ...")
    hfetch.add_argument("--since", default=None, metavar="DATE", help="first bar, e.g. 2024-01-01 (UTC)")
    hfetch.add_argument("--limit", type=int, default=None, metavar="N", help="most bars to fetch")
    hfetch.add_argument("--out", required=True, metavar="FILE", help="output .csv or .parquet")
    hfetch.set_defaults(handler=_lazy("guard.feed.commands", "fetch"))
    himport = history_sub.add_parser("import", help="check a timestamp,open,high,low,close,volume CSV")
    himport.add_argument("file", metavar="FILE")
    himport.add_argument("--out", required=True, metavar="FILE", help="output .csv or .parquet")
    himport.add_argument("--symbol", default=None, help="ccxt symbol (default: from the file name)")
    himport.add_argument("--timeframe", default=None, help="default: the rows' spacing")
    himport.add_argument("--skip-bad", action="store_true", help="write the good rows, report the bad")
    himport.set_defaults(handler=_lazy("guard.feed.commands", "import_"))
    # <<< history

    # >>> model
    train = sub.add_parser("train", help="train a model on history files and write its artifact and card")
    train.add_argument("data", nargs="+", metavar="DATA", help="history files (CSV or Parquet, guard's format)")
    train.add_argument("--out", required=True, metavar="DIR", help="model directory to write")
    train.add_argument("--epochs", type=int, default=60, metavar="N", help="most epochs (early stopping)")
    train.add_argument("--seed", type=int, default=7, metavar="N", help="random seed: same data and seed, same model")
    train.add_argument("--name", default="", help="model name (default: the directory's name)")
    train.add_argument("--horizon-bars", type=int, default=30, metavar="H", help="label horizon in bars")
    train.add_argument("--barrier-k", type=float, default=1.0, metavar="K", help="barriers at ±K·σ·√H")
    train.add_argument("--members", type=int, default=3, metavar="N", help="ensemble members (at least 3)")
    train.add_argument("--channels", type=int, default=24, metavar="N", help="hidden channels per member")
    train.add_argument("--threads", type=int, default=2, metavar="N", help="torch threads while training")
    train.add_argument("--source", default="", metavar="TEXT", help="where the data came from, for the card")
    train.add_argument("--synthetic", action="store_true", help="the data is simulated: the card says so")
    train.set_defaults(handler=_lazy("guard.model.commands", "train"))
    model = sub.add_parser("model", help="inspect a trained model")
    model_sub = model.add_subparsers(dest="model_command", required=True)
    show = model_sub.add_parser("show", help="verify a model directory and print its card")
    show.add_argument("dir", metavar="DIR")
    show.set_defaults(handler=_lazy("guard.model.commands", "model_show"))
    mev = model_sub.add_parser(
        "eval", help="measure a model on any history: calibration, hit rates, novelty against volatility",
        description="ECE (all outcomes and directional calls), Brier against base rates, hit rates against the "
        "break-even after costs, and novelty AUROC for a regime window against 60-bar volatility.",
    )
    mev.add_argument("data", nargs="+", metavar="DATA", help="history files (CSV or Parquet, guard's format)")
    mev.add_argument("--model", default=None, metavar="DIR", help="model directory (default: model.path)")
    mev.add_argument("--regime-start", default=None, metavar="DATE", help="first day (UTC) of the regime novelty "
                     "should flag (default: each series' most volatile stretch)")
    mev.add_argument("--regime-end", default=None, metavar="DATE", help="last day (UTC) of that regime")
    mev.add_argument("--cost-bps", type=float, default=None, metavar="BPS",
                     help="round-trip cost for the break-even hit rate (default: 2 x (paper taker fee + slippage))")
    mev.add_argument("--json", action="store_true", help="print the figures as JSON")
    mev.add_argument("--out", default=None, metavar="DIR", help="write report.json, bars.parquet, reliability.png")
    mev.set_defaults(handler=_lazy("guard.model.commands", "model_eval"))
    # <<< model

    # >>> daemon
    up = sub.add_parser("up", help="start the daemon if none is running, then attach the operator console")
    up.add_argument("--operator", help="your operator id (default: guard.operator or $USER)")
    up.add_argument("--no-tui", action="store_true", help="start the daemon and print its status only")
    up.set_defaults(handler=_lazy("guard.control", "up"))
    down = sub.add_parser("down", help="stop the daemon gracefully (positions are left as they are)")
    down.set_defaults(handler=_lazy("guard.control", "down"))
    daemon = sub.add_parser("daemon", help="run the daemon in the foreground")
    daemon.add_argument("--log-format", choices=("auto", "json", "console"), default=None)
    daemon.set_defaults(handler=_lazy("guard.control", "daemon"))
    status = sub.add_parser("status", help="trading state, positions, feed and model health")
    status.add_argument("--json", action="store_true", help="the full snapshot as JSON")
    status.set_defaults(handler=_lazy("guard.control", "status"))
    kill = sub.add_parser("kill", help="the kill switch: halt, cancel, flatten (works with no console attached)")
    kill.add_argument("--reason", default="", help="why (recorded in the journal)")
    kill.add_argument("--operator", help="your operator id (default: guard.operator or $USER)")
    kill.set_defaults(handler=_lazy("guard.control", "kill"))
    # <<< daemon

    # >>> tui
    tui = sub.add_parser("tui", help="attach the operator console to the running daemon (quitting leaves it running)")
    tui.add_argument("--operator", help="your operator id (default: guard.operator or $USER)")
    tui.set_defaults(handler=_lazy("guard.tui.app", "main"))
    # <<< tui

    # >>> drill
    drills = ("flash-crash", "feed-stall", "operator-disconnect", "model-hang", "exchange-outage", "runaway-model")
    drill = sub.add_parser(
        "drill",
        help="run a kill-switch drill against the simulated exchange, or list past drills",
        description="Drills run a daemon of their own (state in <state dir>/drills/<time>-<scenario>/home) and "
        "write report.md, report.json and chart.png beside it. Exit 0 when every bound was met.",
    )
    drill.add_argument(
        "scenario", metavar="SCENARIO", choices=(*drills, "history"),
        help=f"one of {', '.join(drills)}; or `history` to list past drills",
    )
    drill.add_argument(
        "--scripted", action="store_true",
        help="an automated operator kills after a set delay (CI); without it a person at `guard tui` is told "
        "'DRILL: ...' and their reaction time is measured",
    )
    drill.add_argument("--json", action="store_true", help="print the report as JSON")
    drill.set_defaults(handler=_lazy("guard.drill.commands", "drill"))

    replay = sub.add_parser(
        "replay",
        help="run history through features, model, proposals, risk, approval, paper broker and journal",
        description="Writes report.md, report.json, equity.png and the replay's journal to "
        "<state dir>/replays/<time>-<name>/. Exit 0 when the replay completed without an invariant violation.",
    )
    replay.add_argument("data", nargs="+", metavar="DATA", help="history files (CSV or Parquet, guard's format)")
    replay.add_argument("--model", default=None, metavar="DIR", help="model directory (default: model.path)")
    replay.add_argument(
        "--operator", required=True, choices=("approve-all", "guarded", "never"),
        help="the scripted operator: approve everything; approve only when every check passes, confidence >= "
        "--min-confidence and the input is not novel; or never approve",
    )
    replay.add_argument("--min-confidence", type=float, default=0.6, metavar="X",
                        help="the guarded operator's confidence floor (default 0.6)")
    replay.add_argument("--leverage", default=None, metavar="X",
                        help="replay every proposal at this leverage (1..20; above 3x the replay records the "
                        "leverage acknowledgment); default: the policy's")
    replay.add_argument("--close-only", action="store_true",
                        help="marks at bar closes only (default: each bar's extremes are visited before its close)")
    replay.add_argument("--explain", action="store_true", help="compute each proposal's 'why' (slow)")
    replay.add_argument("--out", default=None, metavar="DIR", help="report directory (default: under replays/)")
    replay.add_argument("--json", action="store_true", help="print the report as JSON")
    replay.set_defaults(handler=_lazy("guard.replay.commands", "replay"))
    # <<< drill

    return parser


def _lazy(module: str, name: str) -> Handler:
    """Import a command's module only when it runs, so `guard kill` never waits on torch."""

    def run(args: argparse.Namespace) -> int:
        import importlib

        handler: Handler = getattr(importlib.import_module(module), name)
        return handler(args)

    return run


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except BadInput as e:
        print(f"guard: {e}", file=sys.stderr)
        return 2
    except GuardError as e:
        print(f"guard: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
