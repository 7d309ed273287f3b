"""docs/benchmarks.md is written by several benchmark modules; each owns one block.

A block sits between ``<!-- bench.NAME -->`` and ``<!-- /bench.NAME -->`` and
a module replaces only its own, so running one benchmark never erases another's
results (``make bench`` runs several; ``bench.rollout`` runs on its own).
"""

from __future__ import annotations

from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def write_section(owner: str, text: str, doc: Path = DOC, first: bool = False) -> None:
    """Replace ``owner``'s block in ``doc`` (append it, or put it first, when new)."""
    start, end = f"<!-- {owner} -->", f"<!-- /{owner} -->"
    block = f"{start}\n{text.strip()}\n{end}"
    current = doc.read_text(encoding="utf-8") if doc.exists() else ""
    if start in current and end in current:
        i = current.index(start)
        j = current.index(end) + len(end)
        updated = current[:i] + block + current[j:]
    elif first:
        updated = block + ("\n\n" + current.lstrip() if current.strip() else "")
    else:
        updated = (current.rstrip() + "\n\n" if current.strip() else "") + block
    doc.write_text(updated.rstrip() + "\n", encoding="utf-8")
