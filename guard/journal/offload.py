"""Replay's journal writer in a process of its own: it links and writes the rows on the machine's other core.

A long replay's journal spent most of its time off the desk's work: linking each row into the hash chain
(a sha256 and the row's text) and writing it to SQLite. Here the replay's thread only encodes its events
(their payload bytes, `guard.journal.links.Encoded`) and sends them in batches to a writer process, which
links them with the very function the journal uses (`link_rows`) and writes them with the journal's own
`write_rows`. A process, not a thread: the hashing and SQLite's calls hold the GIL long enough that a writer
thread took the time back from the replay. Started with `subprocess`, not `multiprocessing` (its spawn
re-imports the parent's `__main__`, and a fork is unsafe in a process running torch's threads).

On the writer's stdin: frames, each a 4-byte little-endian length and a msgpack list of encoded events; one
frame is one transaction. An empty frame closes: the writer closes the database (SQLite checkpoints it) and
answers on stdout with one msgpack value, ["ok", last_seq, last_hash, first_hash] ("" when it did not write
event 1). On any failure it answers ["error", why] at once and exits. At the end of stdin without a close
(the replay died) it exits without a word. This module imports nothing heavy: the writer process loads it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import sqlite3
import struct
import subprocess
import sys
from pathlib import Path
from typing import IO, Any, NoReturn

import msgspec

import guard
from guard.errors import JournalError
from guard.journal.database import connect, write_rows
from guard.journal.links import Encoded, link_rows

_HEADER = struct.Struct("<I")
FRAME_ROWS = 1024
"""Events sent to the writer in one frame (~0.5 MB): it fits the enlarged pipe (`PIPE_BYTES`), so sending it is
one copy into the kernel, never a wait for the writer to read."""
PIPE_BYTES = 1 << 20
"""The pipe's capacity the replay asks for (Linux's default most an unprivileged process may set)."""
CHECKPOINT_EVERY_PAGES = 32
"""The writer copies its WAL into the database every 32 pages (2 MB at a replay's 64 KiB pages), as it goes and on
its own core. With SQLite's default (1,000 pages: 64 MB, more than a 200,000-bar replay's journal) the whole
journal was copied at the close, ~100 ms of a 200,000-bar replay's waiting for its writer."""
CLOSE_TIMEOUT_S = 120.0
"""How long closing waits for the writer to write its last frame and checkpoint before it is killed."""


class WriterProcess:
    """The replay's side of a writer process: sends it encoded events, and learns at close where the chain ends.

    Every failure of the writer (it died, its write failed, it was sent a bad frame) raises `JournalError` at
    the next `send` or at `close`, once the process is reaped: nothing is left behind.
    """

    def __init__(self, path: Path, synchronous: str, page_limit: int | None, seq: int, prev_hash: str) -> None:
        """Start a writer for the journal at `path` (it exists), whose last event is `seq` with `prev_hash`."""
        # The writer runs the same guard as this process, wherever that was imported from.
        root = str(Path(guard.__file__).resolve().parent.parent)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
        args = [str(path), synchronous, str(page_limit or 0), str(seq), prev_hash]
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", __name__, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
            )
        except OSError as e:
            raise JournalError(f"cannot start the journal's writer process: {e}") from e
        self._encode = msgspec.msgpack.Encoder().encode
        stdin: IO[bytes] = self._proc.stdin  # type: ignore[assignment]  # a PIPE
        with contextlib.suppress(OSError, AttributeError):  # a smaller pipe only makes sends wait more often
            fcntl.fcntl(stdin.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)

    def send(self, encoded: list[Encoded]) -> None:
        """Hand the writer the next events of the chain (one transaction), without waiting for it."""
        proc = self._proc
        if proc.poll() is not None:
            self._fail("it stopped")
        body = self._encode(encoded)
        stdin: IO[bytes] = proc.stdin  # type: ignore[assignment]  # a PIPE
        try:
            stdin.write(_HEADER.pack(len(body)))
            stdin.write(body)
            stdin.flush()
        except OSError:  # a broken pipe: the writer is gone
            self._fail("it stopped")

    def close(self) -> tuple[int, str, str]:
        """Close the journal: the writer's last seq, last hash and first hash once all it was sent is written."""
        try:
            out, _ = self._proc.communicate(_HEADER.pack(0), timeout=CLOSE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            raise JournalError(f"the journal's writer process did not finish in {CLOSE_TIMEOUT_S:.0f} s") from None
        answer = _answer(out)
        if answer[0] != "ok" or len(answer) != 4:
            raise JournalError(f"the journal's writer process failed: {_why(answer, self._proc.returncode)}")
        return int(answer[1]), str(answer[2]), str(answer[3])

    def kill(self) -> None:
        """Stop the writer at once (what it wrote stays; what it was still sent is lost) and reap it."""
        self._proc.kill()
        self._proc.communicate()

    def _fail(self, what: str) -> NoReturn:
        out, _ = self._proc.communicate()  # it exited, or its stdin is broken: reap it
        raise JournalError(f"the journal's writer process failed ({what}): {_why(_answer(out), self._proc.returncode)}")


def _answer(out: bytes) -> list[Any]:
    try:
        answer = msgspec.msgpack.decode(out)
    except msgspec.DecodeError:
        return []
    return answer if isinstance(answer, list) and answer else []


def _why(answer: list[Any], returncode: int | None) -> str:
    if len(answer) == 2 and answer[0] == "error":
        return str(answer[1])
    return f"it exited with status {returncode} without an answer"


# --- the writer process ---------------------------------------------------------------


def _read(source: IO[bytes], size: int) -> bytes | None:
    data = source.read(size)
    return data if len(data) == size else None


def write(
    source: IO[bytes], path: Path, synchronous: str, page_limit: int | None, seq: int, prev_hash: str
) -> list[Any]:
    """Link and write every frame from `source` until the close; the answer (None: the replay went away)."""
    decode = msgspec.msgpack.Decoder(list[Encoded]).decode
    settings: dict[int, tuple[str, int]] = {}
    first_hash = ""
    conn = connect(path, synchronous)
    conn.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_EVERY_PAGES}")
    try:
        while True:
            header = _read(source, _HEADER.size)
            if header is None:
                return []
            (size,) = _HEADER.unpack(header)
            if size == 0:
                break
            body = _read(source, size)
            if body is None:
                return []
            rows = link_rows(prev_hash, seq, decode(body))
            if not rows:
                continue
            error = write_rows(conn, (rows,), synchronous=synchronous, page_limit=page_limit, settings=settings)
            if error is not None:
                return ["error", str(error)]
            if rows[0][0] == 1:
                first_hash = rows[0][5]
            seq, prev_hash = rows[-1][0], rows[-1][5]
    finally:
        conn.close()
    return ["ok", seq, prev_hash, first_hash]


def main(argv: list[str]) -> int:
    path, synchronous, page_limit, seq, prev_hash = argv
    # A Ctrl-C reaches the whole process group: the replay closes its journal then, and the writer must still
    # be there to write the rest. It ends with its stdin, as it does when the replay dies.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        answer = write(sys.stdin.buffer, Path(path), synchronous, int(page_limit) or None, int(seq), prev_hash)
    except (msgspec.DecodeError, sqlite3.Error, ValueError, UnicodeDecodeError) as e:
        answer = ["error", f"{type(e).__name__}: {e}"]
    if not answer:
        return 1
    try:
        sys.stdout.buffer.write(msgspec.msgpack.encode(answer))
        sys.stdout.buffer.flush()
    except OSError:
        return 1
    return 0 if answer[0] == "ok" else 1


if __name__ == "__main__":
    # By now the database is closed and the answer flushed: the interpreter's own teardown (~20 ms) is only time
    # the replay would wait for at its close. An exception out of main still ends the usual way, with its trace.
    os._exit(main(sys.argv[1:]))
