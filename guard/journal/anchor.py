"""The journal's anchor: how far the journal had durably reached, kept outside the SQLite file.

SQLite alone cannot tell a rolled-back journal from a quiet one: a lost WAL, a file cut short or an
older copy put back all read as a shorter, perfectly valid chain. After every commit the journal
writes its last sequence number and hash (and the hash of its first event, which names the journal)
into a small file beside it; at start the journal must reach that point with that hash.

The file has two fixed-size slots written alternately, each with a checksum, so a write torn by a
crash leaves the other slot intact. Writes are in place (no new disk blocks, so a full disk does not
stop them) and not fsynced: after a power loss the anchor may lag the journal, which only weakens the
check; it can never claim more than the journal committed, because it is written after the commit.
"""

from __future__ import annotations

import os
import sqlite3
import zlib
from dataclasses import dataclass
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

_MAGIC = b"guard-anchor-1"
_SLOT = 256
_HASH_LEN = 64


@dataclass(frozen=True, slots=True)
class AnchorPoint:
    """A point the journal had reached: it must still reach it, with the same hashes."""

    seq: int
    hash: str
    first_hash: str
    """Hash of event 1: which journal this anchor belongs to."""


def anchor_path(journal_path: Path) -> Path:
    return journal_path.with_name(journal_path.name + ".anchor")


def _encode(point: AnchorPoint) -> bytes:
    body = b" ".join((_MAGIC, str(point.seq).encode(), point.hash.encode(), point.first_hash.encode()))
    line = body + b" " + f"{zlib.crc32(body):08x}".encode() + b"\n"
    return line.ljust(_SLOT, b"\0")


def _decode(slot: bytes) -> AnchorPoint | None:
    line = slot.rstrip(b"\0").rstrip(b"\n")
    parts = line.split(b" ")
    if len(parts) != 5 or parts[0] != _MAGIC:
        return None
    body = b" ".join(parts[:4])
    try:
        if int(parts[4], 16) != zlib.crc32(body):
            return None
        seq = int(parts[1])
    except ValueError:
        return None
    digest, first = parts[2].decode("ascii", "replace"), parts[3].decode("ascii", "replace")
    if seq < 1 or len(digest) != _HASH_LEN or len(first) != _HASH_LEN:
        return None
    return AnchorPoint(seq, digest, first)


def _slots(path: Path) -> list[tuple[int, AnchorPoint]]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    found = ((i, _decode(data[i * _SLOT : (i + 1) * _SLOT])) for i in (0, 1))
    return [(i, p) for i, p in found if p is not None]


def read_anchor(path: Path) -> AnchorPoint | None:
    """The furthest valid point in the anchor file, or None when there is no usable anchor."""
    return max((p for _, p in _slots(path)), key=lambda p: p.seq, default=None)


class AnchorWriter:
    """Keeps the anchor file of one journal up to date. Used only by the journal's writer."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # Allocated once, at full size: later writes overwrite in place and need no new blocks.
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < 2 * _SLOT:
                os.pwrite(fd, b"\0" * (2 * _SLOT), 0)
        except OSError:
            os.close(fd)
            raise
        self._fd: int | None = fd
        slots = _slots(path)
        # Overwrite the older slot first: the newest point stays readable until its successor is whole.
        newest = max(slots, key=lambda s: s[1].seq, default=None)
        self._next_slot = 0 if newest is None else 1 - newest[0]

    def write(self, point: AnchorPoint) -> None:
        """Record that the journal has committed up to `point`. A failure is logged, never raised: the
        anchor then lags, which weakens the start-up check but cannot make it refuse a good journal."""
        if self._fd is None:
            return
        try:
            os.pwrite(self._fd, _encode(point), self._next_slot * _SLOT)
            self._next_slot ^= 1
        except OSError as e:
            log.error("journal_anchor_write_failed", path=str(self.path), error=str(e))

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def adopt(journal_path: Path) -> AnchorPoint | None:
    """Anchor a journal that has none at its last event, after the caller verified its chain. Returns the
    point, or None when the journal already has an anchor (or no events)."""
    target = anchor_path(journal_path)
    if read_anchor(target) is not None:
        return None
    conn = sqlite3.connect(f"file:{journal_path}?mode=ro", uri=True)
    try:
        last = conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        first = conn.execute("SELECT hash FROM events WHERE seq = 1").fetchone()
    finally:
        conn.close()
    if last is None or first is None:
        return None
    point = AnchorPoint(int(last[0]), str(last[1]), str(first[0]))
    writer = AnchorWriter(target)
    try:
        writer.write(point)
    finally:
        writer.close()
    return point
