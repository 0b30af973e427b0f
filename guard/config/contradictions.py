"""Settings checked against each other: contradictions that the daemon would trip over or that make a
setting meaningless (a confidence floor above full size, a model proposing what risk blocks)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable

from guard.config.sections import Config
from guard.errors import ConfigProblem


def contradictions(config: Config, bad: set[str]) -> list[ConfigProblem]:
    """Every contradiction among settings none of which is itself wrong (keys or sections in `bad`):
    a wrong setting's default stands in for it, which would make up a contradiction."""
    return [
        problem
        for keys, check in CHECKS
        if not any(key in bad or key.split(".", 1)[0] in bad for key in keys)
        for problem in check(config)
    ]


def is_loopback(host: str) -> bool:
    """True for hosts that can only be reached from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _leverage_range(c: Config) -> Iterable[ConfigProblem]:
    p = c.proposals
    if p.min_leverage > p.max_leverage:
        yield ConfigProblem(
            "proposals.min_leverage", p.min_leverage, f"must be <= proposals.max_leverage ({p.max_leverage:g})"
        )


def _leverage_above_risk(c: Config) -> Iterable[ConfigProblem]:
    if c.proposals.min_leverage > c.risk.max_leverage:
        yield ConfigProblem(
            "proposals.min_leverage",
            c.proposals.min_leverage,
            f"must be <= risk.max_leverage ({c.risk.max_leverage:g}): the policy never proposes above the risk limit",
        )


def _confidence_range(c: Config) -> Iterable[ConfigProblem]:
    p = c.proposals
    if p.min_confidence >= p.full_size_confidence:
        yield ConfigProblem(
            "proposals.min_confidence",
            p.min_confidence,
            f"must be < proposals.full_size_confidence ({p.full_size_confidence:g}): size grows from half at "
            "min_confidence to full at full_size_confidence",
        )


def _confidence_below_risk(c: Config) -> Iterable[ConfigProblem]:
    if c.proposals.min_confidence < c.risk.min_confidence:
        yield ConfigProblem(
            "proposals.min_confidence",
            c.proposals.min_confidence,
            f"must be >= risk.min_confidence ({c.risk.min_confidence:g}): below it the model proposes what risk blocks",
        )


def _reconnect_range(c: Config) -> Iterable[ConfigProblem]:
    f = c.feed
    if f.min_reconnect_delay_seconds > f.max_reconnect_delay_seconds:
        yield ConfigProblem(
            "feed.min_reconnect_delay_seconds",
            f.min_reconnect_delay_seconds,
            f"must be <= feed.max_reconnect_delay_seconds ({f.max_reconnect_delay_seconds:g})",
        )


def _poll_within_staleness(c: Config) -> Iterable[ConfigProblem]:
    f = c.feed
    if f.transport == "rest" and f.poll_interval_seconds >= f.stale_after_seconds:
        yield ConfigProblem(
            "feed.poll_interval_seconds",
            f.poll_interval_seconds,
            f'must be < feed.stale_after_seconds ({f.stale_after_seconds:g}) with feed.transport = "rest": '
            "every symbol would be stale between polls",
        )


def _api_loopback(c: Config) -> Iterable[ConfigProblem]:
    if c.api.transport == "tcp" and not is_loopback(c.api.host):
        yield ConfigProblem(
            "api.host",
            c.api.host,
            "must be a loopback address (127.0.0.1, ::1 or localhost): the control API is never exposed",
        )


def _metrics_loopback(c: Config) -> Iterable[ConfigProblem]:
    if c.api.metrics and not is_loopback(c.api.metrics_host):
        yield ConfigProblem(
            "api.metrics_host",
            c.api.metrics_host,
            "must be a loopback address (127.0.0.1, ::1 or localhost): metrics are never exposed",
        )


CHECKS: tuple[tuple[frozenset[str], Callable[[Config], Iterable[ConfigProblem]]], ...] = (
    (frozenset(["proposals.min_leverage", "proposals.max_leverage"]), _leverage_range),
    (frozenset(["proposals.min_leverage", "risk.max_leverage"]), _leverage_above_risk),
    (frozenset(["proposals.min_confidence", "proposals.full_size_confidence"]), _confidence_range),
    (frozenset(["proposals.min_confidence", "risk.min_confidence"]), _confidence_below_risk),
    (frozenset(["feed.min_reconnect_delay_seconds", "feed.max_reconnect_delay_seconds"]), _reconnect_range),
    (frozenset(["feed.poll_interval_seconds", "feed.stale_after_seconds", "feed.transport"]), _poll_within_staleness),
    (frozenset(["api.transport", "api.host"]), _api_loopback),
    (frozenset(["api.metrics", "api.metrics_host"]), _metrics_loopback),
)
"""Checks of settings against each other, each with the keys it reads: skipped when one of them is itself
wrong (its default stands in, which would make up a contradiction)."""
