"""The copy-paste examples of docs/sources.md, as the test suite runs them.

Each example is a fenced code block whose first line is `# example: NAME`; `example(NAME)` returns its text.
A test that runs an example runs exactly what a reader copies.
"""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "sources.md"
_BLOCK = re.compile(r"^```[a-z]*\n(# example: ([\w.-]+)\n.*?)^```$", re.MULTILINE | re.DOTALL)


def examples() -> dict[str, str]:
    """Every example in docs/sources.md, by name."""
    return {m.group(2): m.group(1) for m in _BLOCK.finditer(DOC.read_text(encoding="utf-8"))}


def example(name: str) -> str:
    found = examples()
    if name not in found:
        raise KeyError(f"docs/sources.md has no example {name!r}; it has {sorted(found)}")
    return found[name]
