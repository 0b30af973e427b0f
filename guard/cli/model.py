"""`guard train` and `guard model show`: train a model on history files, and read a model's card."""

from __future__ import annotations

import argparse
import sys

from guard import logs
from guard.config import load_config
from guard.model.build import DEFAULT_EPOCHS, DEFAULT_SEED, TrainRequest, run_training  # torch when it trains


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `guard train` and `guard model show`."""
    train_cmd = sub.add_parser("train", help="train a model on history files and write its artifact and card")
    train_cmd.add_argument("data", nargs="+", metavar="DATA", help="history files (CSV or Parquet, guard's format)")
    train_cmd.add_argument("--out", required=True, metavar="DIR", help="model directory to write")
    train_cmd.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, metavar="N",
                           help="most epochs (early stopping)")
    train_cmd.add_argument("--seed", type=int, default=DEFAULT_SEED, metavar="N",
                           help="random seed: same data and seed, same model")
    train_cmd.add_argument("--name", default="", help="model name (default: the directory's name)")
    train_cmd.add_argument("--horizon-bars", type=int, default=30, metavar="H", help="label horizon in bars")
    train_cmd.add_argument("--barrier-k", type=float, default=1.0, metavar="K", help="barriers at ±K·σ·√H")
    train_cmd.add_argument("--members", type=int, default=3, metavar="N", help="ensemble members (at least 3)")
    train_cmd.add_argument("--channels", type=int, default=24, metavar="N", help="hidden channels per member")
    train_cmd.add_argument("--threads", type=int, default=2, metavar="N", help="torch threads while training")
    train_cmd.add_argument("--source", default="", metavar="TEXT", help="where the data came from, for the card")
    train_cmd.add_argument("--synthetic", action="store_true", help="the data is simulated: the card says so")
    train_cmd.set_defaults(handler=train)
    model = sub.add_parser("model", help="inspect a trained model")
    model_sub = model.add_subparsers(dest="model_command", required=True)
    show = model_sub.add_parser("show", help="verify a model directory and print its card")
    show.add_argument("dir", metavar="DIR")
    show.set_defaults(handler=model_show)


def train(args: argparse.Namespace) -> int:
    """guard train DATA... --out DIR [--epochs N] [--seed N] [...]."""
    config = load_config(args.config)
    logs.configure(level="warning", fmt=config.log.format)
    request = TrainRequest(
        data=tuple(args.data), out=args.out, epochs=args.epochs, seed=args.seed, name=args.name,
        horizon_bars=args.horizon_bars, barrier_k=args.barrier_k, members=args.members,
        channels=args.channels, threads=args.threads, source=args.source, synthetic=args.synthetic,
    )
    info = run_training(request, stream=sys.stderr, novelty_threshold=config.model.novelty_threshold)
    metrics = info.config["metrics"]
    print(f"{info.path}: model {info.model_id}")
    print(
        f"  test: accuracy {metrics['accuracy']:.3f} (base rate {metrics['base_rate']:.3f}), "
        f"Brier {metrics['brier']:.4f} (baseline {metrics['brier_baseline']:.4f}), ECE {metrics['ece']:.4f}, "
        f"novelty AUROC {metrics['novelty_auroc']:.3f}"
    )
    print(f"  read its card: guard model show {info.path}")
    return 0


def model_show(args: argparse.Namespace) -> int:
    """guard model show DIR: verify the artifact's checksums and print its card."""
    from guard.model.artifact import verify_artifact

    info = verify_artifact(args.dir)
    sys.stdout.write(info.card if info.card.endswith("\n") else info.card + "\n")
    print(f"\n(model id {info.model_id}; sha256 of the checksum file {info.model_hash})")
    return 0
