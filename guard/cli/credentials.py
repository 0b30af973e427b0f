"""`guard operator add|list|revoke|rotate NAME` and `guard source add|list|revoke NAME`: one credential each.

An operator's credential is their identity: the daemon knows who spoke from the token alone, and four-eyes
counts credentials. A source's credential (a freqtrade bot, an LLM agent, a script, an alert) may only
propose. Tokens are written once, to files only their owner can read; the daemon keeps only their hashes
and sees a change without a restart.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from datetime import UTC, datetime

from guard.cli._common import OPERATOR_HELP, operator_id
from guard.config import load_config
from guard.paths import StatePaths


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `guard operator ...` and `guard source ...`."""
    for scope, noun, can in (
        ("operator", "an operator", "decides, kills, re-arms and changes limits as NAME"),
        ("source", "a proposal source", "may only propose (and read the fate of its own proposals)"),
    ):
        group = sub.add_parser(scope, help=f"manage {noun}'s credential: one token each ({can})")
        group_sub = group.add_subparsers(dest=f"{scope}_command", required=True)
        add = group_sub.add_parser("add", help=f"issue a token for {noun} named NAME")
        add.add_argument("name", metavar="NAME")
        add.set_defaults(handler=_add, scope=scope)
        listing = group_sub.add_parser("list", help="every credential of this kind, active and revoked")
        listing.set_defaults(handler=_list, scope=scope)
        revoke = group_sub.add_parser("revoke", help="stop NAME's token at once (its file is removed)")
        revoke.add_argument("name", metavar="NAME")
        revoke.set_defaults(handler=_revoke, scope=scope)
        if scope == "operator":
            rotate = group_sub.add_parser("rotate", help="a new token for NAME; the old one stops at once")
            rotate.add_argument("name", metavar="NAME")
            rotate.set_defaults(handler=_rotate, scope=scope)
        else:
            resume = group_sub.add_parser(
                "resume", help="let NAME propose again after guard paused it (its record, or a flood): a person's call"
            )
            resume.add_argument("name", metavar="NAME")
            resume.add_argument("--reason", required=True, help="why (recorded in the journal)")
            resume.add_argument("--operator", help=OPERATOR_HELP)
            resume.set_defaults(handler=_resume, scope=scope)


def _store(args: argparse.Namespace) -> object:
    from guard.api.credentials import CredentialStore

    return CredentialStore(StatePaths(load_config(args.config).state_dir).root)


def _add(args: argparse.Namespace) -> int:
    from guard.api.credentials import CredentialStore, Scope

    store = _store(args)
    assert isinstance(store, CredentialStore)
    scope = Scope(args.scope)
    store.add(args.name, scope)
    path = store.token_file(args.name, scope)
    print(f"{scope.value} {args.name}: token written to {path} (mode 0600)")
    if scope is Scope.OPERATOR:
        print(f"  `guard tui --operator {args.name}` and `guard kill --operator {args.name}` use it, no typing needed")
    else:
        print("  give it to the program that proposes (or set GUARD_TOKEN); it may only propose: see docs/sources.md")
    return 0


def _rotate(args: argparse.Namespace) -> int:
    from guard.api.credentials import CredentialStore, Scope

    store = _store(args)
    assert isinstance(store, CredentialStore)
    store.rotate(args.name)
    print(f"operator {args.name}: new token in {store.token_file(args.name, Scope.OPERATOR)}; the old one is refused")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from guard.api.credentials import CredentialStore

    store = _store(args)
    assert isinstance(store, CredentialStore)
    info = store.revoke(args.name)
    print(f"{info.scope.value} {args.name}: revoked; its token is refused from the next request on")
    return 0


def _resume(args: argparse.Namespace) -> int:
    from guard.api.client import ApiClient
    from guard.api.protocol import ResumeSource

    config = load_config(args.config)
    operator = operator_id(config, args.operator)
    command = ResumeSource(id=f"resume-{uuid.uuid4().hex[:12]}", source=args.name, reason=args.reason)
    reply = asyncio.run(ApiClient.from_config(config, operator=operator).command(command, operator))
    if not reply.ok:
        print(f"resume refused: {reply.reason}", file=sys.stderr)
        return 1
    print(f"source {args.name}: resumed by {operator}; its proposals are taken again (its record stays)")
    return 0


def _list(args: argparse.Namespace) -> int:
    from guard.api.credentials import CredentialStore, Scope

    store = _store(args)
    assert isinstance(store, CredentialStore)
    scope = Scope(args.scope)
    entries = [c for c in store.entries() if c.scope is scope]
    if not entries:
        print(f"no {scope.value} credentials (`guard {scope.value} add NAME`); the shared token is for one person")
        return 0
    for c in entries:
        state = "active" if c.active else f"revoked {_when(c.revoked_at)}"
        rotated = f", rotated {_when(c.rotated_at)}" if c.rotated_at else ""
        print(f"{c.name:<24} {state:<28} issued {_when(c.created_at)}{rotated}")
    return 0


def _when(ms: int | None) -> str:
    return "" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
