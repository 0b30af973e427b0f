"""`guard mcp`: serve the Model Context Protocol over stdio for an LLM agent, with a source's credential.

An agent's MCP configuration runs it, e.g. `{"command": "guard", "args": ["mcp", "--source", "agent"]}`. The
agent may read and propose; a person decides (see docs/sources.md).
"""

from __future__ import annotations

import argparse
import os

from guard.config import load_config
from guard.errors import BadInput


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `guard mcp`."""
    parser = sub.add_parser(
        "mcp",
        help="the Model Context Protocol over stdio, for LLM agents (propose only: a person decides)",
    )
    parser.add_argument(
        "--source",
        metavar="NAME",
        default=None,
        help="the source whose credential the agent uses (`guard source add NAME`; default $GUARD_SOURCE)",
    )
    parser.set_defaults(handler=_mcp)


def _mcp(args: argparse.Namespace) -> int:
    try:
        from guard.mcp.tools import serve
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] != "mcp":
            raise
        raise BadInput("`guard mcp` needs the mcp package: pip install 'guard[mcp]'") from None
    source = args.source or os.environ.get("GUARD_SOURCE") or None
    if source is None and not os.environ.get("GUARD_TOKEN"):
        raise BadInput("say which source the agent is: `guard mcp --source NAME` (issued by `guard source add NAME`)")
    serve(source, load_config(args.config).state_dir)
    return 0
