"""The console's log: structlog to a file in the state directory, never to the terminal it draws on."""

from __future__ import annotations

import logging

import structlog

from guard.paths import StatePaths


def log_to_file(paths: StatePaths) -> None:
    """Send structlog and stdlib logging to <state>/tui.log as JSON lines (one configure per process)."""
    paths.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    handler = logging.FileHandler(paths.root / "tui.log", encoding="utf-8")
    stamp = structlog.processors.TimeStamper(fmt="iso", utc=True)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_log_level, stamp],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            stamp,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
