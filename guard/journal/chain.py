"""Reading the journal and proving it whole: the hash chain, the decoding of rows, and the anchor.

Each row's hash covers the previous row's hash, its sequence number, its type and its stored text,
so a changed, removed or reordered row breaks the chain. A chain cannot tell that its end is missing:
that is what the anchor (`guard.journal.anchor`) is for. The daemon reads its journal through
`checked_entries()` at start, so it never runs on a journal whose chain or length it cannot verify.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from guard import codec
from guard.errors import DecodeError, JournalCorrupt, JournalError
from guard.events import EVENT_TYPES, Event
from guard.journal.anchor import AnchorPoint, anchor_path, read_anchor
from guard.journal.database import Row
from guard.journal.links import Encoded, chain_hash as chain_hash, link_rows

GENESIS_HASH = "0" * 64


@dataclass(frozen=True, slots=True)
class Entry:
    """One journaled event with its place in the chain."""

    seq: int
    event: Event
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class VerifyReport:
    events: int
    ok: bool
    problem: str = ""
    first_bad_seq: int | None = None
    note: str = ""
    """Something a reader should know that does not make the journal bad (e.g. there is no anchor)."""


def encode_events(events: Iterable[Event]) -> list[Encoded]:
    """Each event as the journal stores it, not yet linked: its time, its type's name and its JSON (encoded once)."""
    encode = codec.encode
    return [(event.at, type(event).__name__, encode(event)) for event in events]


def chain_rows(prev_hash: str, seq: int, events: Iterable[Event]) -> list[Row]:
    """The rows of `events` appended after event `seq` whose hash is `prev_hash`."""
    return link_rows(prev_hash, seq, encode_events(events))


def encode_event(event: Event) -> str:
    """An event's payload as the journal stores it (and the hash chain covers): its JSON, tag included."""
    return codec.encode(event).decode()


def decode_event(seq: int, type_name: str, payload: str | bytes) -> Event:
    """A row's payload as the event its `type` column names.

    Rows written before events were tagged (sorted keys, no "type" inside) decode the same way:
    the class comes from the column, and a "type" inside the payload, when there is one, must agree.
    """
    cls = EVENT_TYPES.get(type_name)
    if cls is None:
        raise JournalCorrupt(f"event {seq}: unknown event type {type_name!r}")
    try:
        # decode returns an instance of `cls`, an Event class from EVENT_TYPES (typed as its base there).
        return codec.decode(cls, payload, root=f"event {seq} ({type_name})")  # type: ignore[return-value]
    except DecodeError as e:
        raise JournalCorrupt(f"event {seq}: {e}") from e


class BrokenChain(JournalCorrupt):
    """A row that does not fit the chain; `seq` is the first bad event, `good` how many came before it."""

    def __init__(self, message: str, seq: int | None, good: int) -> None:
        super().__init__(message)
        self.seq = seq
        self.good = good


def _connect_read_only(path: Path) -> sqlite3.Connection:
    try:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as e:
        raise JournalError(f"cannot read the journal {path}: {e}") from e


def read_entries(path: Path | str, after_seq: int = 0, types: Collection[str] | None = None) -> Iterator[Entry]:
    """Read a journal file's events in order, decoded, without checking the chain (tools, exports).

    Args:
        after_seq: only the events after this sequence number.
        types: only the events of these type names; the others are not even decoded, which is what makes a
            question about a few events fast on a journal of a million closed bars. None for every event.
    """
    conn = _connect_read_only(Path(path))
    sql = "SELECT seq, type, payload, prev_hash, hash FROM events WHERE seq > ?"
    params: list[int | str] = [after_seq]
    if types is not None:
        names = sorted(types)
        sql += f" AND type IN ({', '.join('?' * len(names))})"
        params += names
    try:
        rows = conn.execute(sql + " ORDER BY seq", params)
        for seq, type_name, payload, prev_hash, digest in rows:
            yield Entry(seq, decode_event(seq, type_name, payload), prev_hash, digest)
    except sqlite3.Error as e:
        raise JournalError(f"cannot read the journal {path}: {e}") from e
    finally:
        conn.close()


def last_seq(path: Path | str) -> int:
    """The sequence number of the journal's last event (0 when it has none), without reading any event."""
    conn = _connect_read_only(Path(path))
    try:
        (seq,) = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
        return int(seq)
    except sqlite3.Error as e:
        raise JournalError(f"cannot read the journal {path}: {e}") from e
    finally:
        conn.close()


def checked_entries(path: Path | str, anchor: AnchorPoint | None) -> Iterator[Entry]:
    """Every event in order, each checked against the chain; at the end, the journal must reach `anchor`.

    Raises:
        BrokenChain: a row is missing, altered, re-linked or undecodable, the file cannot be read, or the
            journal does not reach the anchor (it was rolled back, cut short, or swapped for another).
    """
    path = Path(path)
    conn = _connect_read_only(path)
    good = 0
    prev = GENESIS_HASH
    first_hash = ""
    anchored_hash = ""
    try:
        rows = conn.execute("SELECT seq, at, type, payload, prev_hash, hash FROM events ORDER BY seq")
        for seq, at, type_name, payload, prev_hash, digest in rows:
            if seq != good + 1:
                raise BrokenChain(f"sequence jumps from {good} to {seq}", seq, good)
            if prev_hash != prev:
                raise BrokenChain(f"event {seq} does not follow event {seq - 1}", seq, good)
            if chain_hash(prev_hash, seq, type_name, payload) != digest:
                raise BrokenChain(f"event {seq} was altered (hash mismatch)", seq, good)
            try:
                event = decode_event(seq, type_name, payload)
            except JournalCorrupt as e:
                raise BrokenChain(str(e), seq, good) from e
            if event.at != at:
                raise BrokenChain(f"event {seq} was altered (time column changed)", seq, good)
            if seq == 1:
                first_hash = digest
            if anchor is not None and seq == anchor.seq:
                anchored_hash = digest
            yield Entry(seq, event, prev_hash, digest)
            prev = digest
            good = seq
    except sqlite3.DatabaseError as e:
        raise BrokenChain(f"unreadable journal after event {good}: {e}", None, good) from e
    finally:
        conn.close()
    if anchor is None:
        return
    if good and first_hash != anchor.first_hash:
        raise BrokenChain(
            "this is not the journal the anchor was written for (its first event differs): "
            "the file was replaced by another journal",
            1,
            0,
        )
    if good < anchor.seq:
        lost = anchor.seq - good
        raise BrokenChain(
            f"the journal ends at event {good}, but event {anchor.seq} had been committed: {lost} committed "
            "events are missing (a deleted or lost WAL file, a file cut short, or an older copy put back)",
            good + 1,
            good,
        )
    if anchored_hash != anchor.hash:
        raise BrokenChain(
            f"event {anchor.seq} is not the event that was committed there (the journal was rewritten)",
            anchor.seq,
            anchor.seq - 1,
        )


def verify(path: Path | str) -> VerifyReport:
    """Check every row (contiguous, unaltered, decodable, unbroken chain) and that the journal reaches its
    anchor. A journal without an anchor (written before anchors existed) is checked as far as it goes."""
    path = Path(path)
    if not path.exists():
        return VerifyReport(0, False, f"no journal at {path}")
    anchor = read_anchor(anchor_path(path))
    count = 0
    try:
        for entry in checked_entries(path, anchor):
            count = entry.seq
    except BrokenChain as e:
        return VerifyReport(e.good, False, str(e), e.seq)
    except JournalError as e:
        return VerifyReport(count, False, str(e))
    unanchored = anchor is None and count > 0
    note = "no anchor file: whether events were lost at the end cannot be checked" if unanchored else ""
    return VerifyReport(count, True, note=note)
