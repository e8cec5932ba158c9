"""What the legacy THGBot bot did for every search and every change (the benchmarks' baseline).

Shared by ``python -m benchmarks`` and :mod:`benchmarks.search_1m`.
"""

from __future__ import annotations

import json
from pathlib import Path

#: A legacy hit: inventory key, slot, item number, item text.
LegacyHit = tuple[str, str, int, str]


def legacy_search(path: Path, query: str) -> list[LegacyHit]:
    """What the old bot did for every search: load the whole file, then scan it."""
    with path.open(encoding="utf-8") as handle:
        data = json.load(handle)
    folded = query.casefold()
    hits = []
    for key, inventory in data.items():
        for slot in ("items", "equipped"):
            for number, item in (inventory.get(slot) or {}).items():
                if folded in item.casefold():
                    hits.append((key, slot, int(number), item))
    return hits


def legacy_add(path: Path, key: str, item: str) -> None:
    """What the old bot did for every change: load, modify, rewrite the whole file indented."""
    with path.open(encoding="utf-8") as handle:
        data = json.load(handle)
    items = data[key].setdefault("items", {})
    items[str(len(items) + 1)] = item
    with path.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=4)
