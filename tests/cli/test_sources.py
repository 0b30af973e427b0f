"""`guard source resume NAME --reason` from a shell: a person lets a paused source propose again; `guard status`
shows it paused until then."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from guard.paths import StatePaths
from tests.cli.conftest import Shell


async def _flood(shell: Shell, name: str, count: int) -> list[bool]:
    """`count` proposals at once from source `name`, as its program would send them; whether each was taken."""
    paths = StatePaths(shell.home)
    token = (paths.root / "sources" / f"{name}.token").read_text().strip()
    async with aiohttp.ClientSession(
        connector=aiohttp.UnixConnector(path=str(paths.socket)), headers={"Authorization": f"Bearer {token}"}
    ) as http:

        async def one(i: int) -> bool:
            frame = {"v": 2, "type": "Propose", "id": f"f{i}", "symbol": "BTC/USDT:USDT", "side": "buy", "qty": "0.001"}
            async with http.post("http://guard/v1/commands", data=json.dumps(frame)) as response:
                return bool((await response.json())["ok"])

        return list(await asyncio.gather(*(one(i) for i in range(count))))


def test_a_person_resumes_a_flooding_source_from_the_shell(shell: Shell) -> None:
    """A source latched for flooding shows PAUSED in `guard status`; `guard source resume` (with a reason) lets it
    propose again; resuming a source that is not paused exits 1 and says so."""
    assert shell.run("source", "add", "looper").returncode == 0
    asyncio.run(_flood(shell, "looper", 30))
    status = shell.run("status")
    assert "source   looper: PAUSED (flood:" in status.stdout, status.stdout
    resumed = shell.run("source", "resume", "looper", "--reason", "fixed its loop")
    assert resumed.returncode == 0 and "resumed" in resumed.stdout, resumed.stderr
    assert "looper: proposing" in shell.run("status").stdout
    again = shell.run("source", "resume", "looper", "--reason", "twice")
    assert again.returncode == 1 and "not paused" in again.stderr
