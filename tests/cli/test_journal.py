"""`guard journal tail` lines, as an operator reads them."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from guard.cli import main
from guard.events import AccountFunded, KillCompleted
from guard.journal.store import Journal


def test_tail_rounds_measured_durations_to_three_decimals(guard_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A duration measured as a float is shown to the microsecond (`elapsed_ms=2.727`), not with its binary noise."""
    journal = Journal(guard_home / "journal.db", threaded=False)
    journal.append(
        [
            AccountFunded(1_767_225_600_000, "USDT", Decimal(10_000)),
            KillCompleted(1_767_225_601_000, True, 2, 1, 2.7268500000445783),
        ],
        durable=True,
    )
    journal.close()
    assert main(["journal", "tail", "-n", "1"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert "KillCompleted" in line and "elapsed_ms=2.727 " in line + " "
    assert "flat=true" in line and "orders_cancelled=2" in line and "positions_flattened=1" in line
