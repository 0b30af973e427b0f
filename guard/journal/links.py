"""The hash chain's links: each row's hash covers the previous row's hash, its sequence number, its type and
its stored text.

One definition for every writer: the journal on the appender's thread and replay's writer process
(`guard.journal.offload`) both link rows here, so their chains cannot drift. Imports nothing heavy: the
writer process loads it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from guard.journal.database import Row

Encoded = tuple[int, str, bytes]
"""One event as the journal stores it, before it is linked: (at, type name, payload as UTF-8 JSON bytes)."""


def chain_hash(prev_hash: str, seq: int, type_name: str, payload: str) -> str:
    return hashlib.sha256(f"{prev_hash}|{seq}|{type_name}|{payload}".encode()).hexdigest()


def link_rows(prev_hash: str, seq: int, encoded: Iterable[Encoded]) -> list[Row]:
    """The rows of `encoded` events appended after event `seq` whose hash is `prev_hash`.

    The row stores the payload's text, and the chain hashes its bytes: the same digest as `chain_hash` of
    the row (spelled out here, not called: the journal runs this for every event).
    """
    rows = []
    sha256 = hashlib.sha256
    for at, type_name, payload in encoded:
        seq += 1
        h = sha256(f"{prev_hash}|{seq}|{type_name}|".encode())
        h.update(payload)
        digest = h.hexdigest()
        rows.append((seq, at, type_name, payload.decode(), prev_hash, digest))
        prev_hash = digest
    return rows
