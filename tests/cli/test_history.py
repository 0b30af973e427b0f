"""The progress bar `guard history fetch` draws while it downloads."""

from __future__ import annotations

import io

from guard.cli.history import ProgressBar


def test_a_progress_bar_left_short_ends_its_line_on_close() -> None:
    """On a terminal, a bar that never reached 100 % (the venue had fewer bars, or the fetch failed) is ended
    by close(), so the next output starts a line instead of running on from the bar."""
    terminal = _Terminal()
    bar = ProgressBar(terminal, "sim BTC/USDT:USDT 1m")
    bar(50, 150)
    bar.close()
    assert terminal.getvalue().endswith("50/150 bars\n")
    finished = _Terminal()
    bar = ProgressBar(finished, "sim BTC/USDT:USDT 1m")
    bar(150, 150)
    bar.close()
    assert finished.getvalue() == "\rsim BTC/USDT:USDT 1m [" + "#" * 30 + "] 100% 150/150 bars\n"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True
