"""The path a person takes, in a real terminal: `guard up`, the acknowledgment, an approval, the kill.

`guard up` runs in tmux; the test types with send-keys and reads the screen with capture-pane, then
checks the journal. The embedded sim plays a trend fast enough for the default model to propose
within seconds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from guard.domain import AcknowledgmentKind, DecisionKind, TradingState
from guard.events import AcknowledgmentRecorded, DecisionRecorded, Event, TradingStateChanged
from guard.journal.chain import read_entries

REPO = Path(__file__).resolve().parents[2]
GUARD = [sys.executable, "-m", "guard"]

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")


class Terminal:
    """One tmux session running a command at a fixed size."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], size: tuple[int, int] = (100, 30)) -> None:
        self.name = name
        shell = " ".join(f"'{part}'" for part in command)
        exports = " ".join(f"{k}='{v}'" for k, v in env.items())
        # COLUMNS/LINES (pytest sets them) would override the pane's real size.
        command_line = f"env -u COLUMNS -u LINES {exports} {shell}"
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", name, "-x", str(size[0]), "-y", str(size[1]), command_line], check=True
        )

    def screen(self) -> str:
        result = subprocess.run(["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True)
        return result.stdout

    def send(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


def wait(condition: Callable[[], bool], what: str, within: float, term: Terminal | None = None) -> None:
    """Poll a condition on the screen or the journal, which have no event to wait on."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            screen = term.screen() if term is not None else ""
            raise AssertionError(f"timed out waiting for {what}; the screen:\n{screen}")
        time.sleep(0.1)


def events(journal: Path, kind: type[Event]) -> list[Event]:
    if not journal.exists():
        return []
    return [e.event for e in read_entries(journal) if isinstance(e.event, kind)]


def test_guard_up_in_tmux_acknowledge_approve_then_kill(tmp_path: Path) -> None:
    """A person types the acknowledgment, approves a model proposal and pulls the kill switch; the journal agrees."""
    home = tmp_path / "home"
    config = tmp_path / "config.toml"
    config.write_text(
        f'[sim]\nscenario = "trend"\nspeed = 240.0\n\n[model]\npath = "{REPO / "models" / "default"}"\n\n'
        "[approval]\nttl_seconds = 120.0\n\n"
        # Proposals more often than the cautious defaults, so a slow machine sees one in time.
        "[proposals]\nmin_confidence = 0.45\n\n[risk]\nmin_confidence = 0.45\n",
        encoding="utf-8",
    )
    env = {"GUARD_HOME": str(home), "PATH": os.environ.get("PATH", ""), "TERM": "xterm-256color"}
    journal = home / "journal.db"
    timings: dict[str, float] = {}
    started = time.monotonic()
    term = Terminal(f"guard-e2e-{os.getpid()}", [*GUARD, "--config", str(config), "up", "--operator", "e2e"], env)
    try:
        wait(lambda: "Type exactly" in term.screen(), "the risk acknowledgment screen", within=40, term=term)
        timings["acknowledgment shown"] = time.monotonic() - started
        screen = term.screen()
        assert "backtest is not proof" in screen or "A backtest" in screen
        term.send("i understand the model can be wrong", "Enter")
        wait(lambda: events(journal, AcknowledgmentRecorded), "the acknowledgment in the journal", within=10)

        def approved() -> bool:
            if events(journal, DecisionRecorded):
                return True
            # Approve the selected proposal when the card offers it; otherwise look at the next one.
            if "a approve · o override · r reject" in term.screen():
                timings.setdefault("first approvable proposal shown", time.monotonic() - started)
                term.send("a")
            else:
                term.send("j")
            return False

        wait(approved, "an approval in the journal", within=90, term=term)
        timings["approved"] = time.monotonic() - started
        term.send("K")
        wait(lambda: "HALTED" in term.screen(), "HALTED on screen", within=10, term=term)
        timings["halted on screen"] = time.monotonic() - started
    finally:
        term.close()
        subprocess.run([*GUARD, "--config", str(config), "down"], env={**os.environ, **env}, capture_output=True)
    print("e2e timings (s since `guard up`):", {k: round(v, 1) for k, v in timings.items()})

    (ack,) = events(journal, AcknowledgmentRecorded)
    assert (ack.kind, ack.operator) == (AcknowledgmentKind.MODEL_PROPOSALS, "e2e")
    decision = events(journal, DecisionRecorded)[0]
    assert (decision.kind, decision.operator, decision.shown.source) == (DecisionKind.APPROVE, "e2e", "model")
    halts = [e for e in events(journal, TradingStateChanged) if e.state is TradingState.HALTED]
    assert [h.operator for h in halts] == ["e2e"]
    assert time.monotonic() - started < 60


def test_guard_up_in_tmux_at_80x24_ok_reason_rejects_and_ctrl_k_in_a_field_kills(tmp_path: Path) -> None:
    """At 80×24 a person types `r`, `OK`, Enter in one burst (a rejection with the reason "OK", no kill), approves
    one (the positions line is on screen with no key pressed), then presses ctrl+k inside the reject dialog's
    field: HALTED is in front."""
    home = tmp_path / "home"
    config = tmp_path / "config.toml"
    config.write_text(
        f'[sim]\nscenario = "trend"\nspeed = 240.0\n\n[model]\npath = "{REPO / "models" / "default"}"\n\n'
        "[approval]\nttl_seconds = 120.0\n\n"
        "[proposals]\nmin_confidence = 0.45\n\n[risk]\nmin_confidence = 0.45\n",
        encoding="utf-8",
    )
    env = {"GUARD_HOME": str(home), "PATH": os.environ.get("PATH", ""), "TERM": "xterm-256color"}
    journal = home / "journal.db"
    command = [*GUARD, "--config", str(config), "up", "--operator", "e2e"]
    term = Terminal(f"guard-e2e80-{os.getpid()}", command, env, size=(80, 24))
    offered = "a approve · o override · r reject"
    try:
        wait(lambda: "Type exactly" in term.screen(), "the risk acknowledgment screen", within=60, term=term)
        term.send("i understand the model can be wrong", "Enter")
        wait(lambda: events(journal, AcknowledgmentRecorded), "the acknowledgment in the journal", within=10)
        wait(lambda: offered in term.screen(), "a proposal to decide on", within=90, term=term)
        term.send("r", "OK", "Enter")  # one burst, as fast as a terminal delivers it
        wait(lambda: events(journal, DecisionRecorded), "the rejection in the journal", within=10, term=term)

        def approved() -> bool:
            if any(d.kind is DecisionKind.APPROVE for d in events(journal, DecisionRecorded)):
                return True
            if offered in term.screen():
                term.send("a")
            return False

        wait(approved, "an approval in the journal", within=90, term=term)
        assert term.screen().splitlines()[-3].startswith(" Positions ")  # above the keys, with no key pressed
        wait(lambda: offered in term.screen(), "another proposal", within=90, term=term)
        term.send("r", "not this one")
        wait(lambda: "Reject P0" in term.screen(), "the reject dialog", within=10, term=term)
        term.send("C-k")
        wait(lambda: "HALTED" in term.screen().splitlines()[0], "HALTED at the top of the screen", 10, term)
        wait(lambda: "Reject P0" not in term.screen(), "the dialog gone", within=10, term=term)
    finally:
        term.close()
        subprocess.run([*GUARD, "--config", str(config), "down"], env={**os.environ, **env}, capture_output=True)

    decisions = events(journal, DecisionRecorded)
    assert (decisions[0].kind, decisions[0].reason, decisions[0].operator) == (DecisionKind.REJECT, "OK", "e2e")
    assert [d.kind for d in decisions[1:]] == [DecisionKind.APPROVE]
    halts = [e for e in events(journal, TradingStateChanged) if e.state is TradingState.HALTED]
    assert [h.operator for h in halts] == ["e2e"] and halts[0].at > decisions[-1].at
