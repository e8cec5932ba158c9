"""An append-only audit log of inventory changes: a small, real tributestore plugin.

When a player disputes an item ("I had the knife before the feast!"), the
gamemakers need its history.  This plugin writes one JSON line per inventory
change, for every store the process opens, to the file named by the
environment variable ``TRIBUTESTORE_AUDIT_LOG`` (nothing is written while it is
unset)::

    {"at": "2026-02-17T19:02:11.503+00:00", "store": "sqlite:///thg.db",
     "guild_id": 1395951775160340551, "tribute_id": "D1F", "tribute": "Katniss",
     "action": "equipped", "item": "Knife", "slot": "equipped"}

``action`` is one of ``added``, ``removed``, ``equipped`` (moved from the items to
the equipped items) and ``unequipped``; ``slot`` is where the item is after an
addition or a move, where it was before a removal.  A tribute created with items
(an import) logs them as added, a deleted one logs them as removed.

It uses only what the ``tributestore_transaction_committed`` hook hands over: the
tribute documents before and after each committed transaction.  No backend is
asked anything, so it works the same over SQLite, JSON, PostgreSQL, the
composite or a third-party backend, and logs only what really committed (a
rolled-back transaction is never reported).  The ``tributestore_store_opened``
hook only checks that the log can be written, so a bad path stops the bot at
start-up instead of losing entries later.

Installing it
-------------
A plugin is found through the ``tributestore`` entry-point group.  Copy this
file into your bot's package (say ``mybot/audit_log.py``) and declare it in the
package's ``pyproject.toml``::

    [project.entry-points.tributestore]
    audit_log = "mybot.audit_log"

then reinstall the package (``pip install -e .``): every ``open_store()`` of the
process now logs, and ``tributestore backends`` lists the plugin.  The store URL
cannot carry the log's path: backends refuse options they do not know (an
unknown option is most often a path cut at a ``?``), so the path comes from the
environment, like the store URL itself may.

Tracing an item
---------------
``python audit_log.py LOG ITEM [GUILD_ID]`` prints every line mentioning the item
(case-insensitively), oldest first; :func:`trace` does the same from Python.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tributestore import ConfigError, TributeBundle, TributeStore, hookimpl
from tributestore.hookspecs import Changes, TributeChange

#: The environment variable naming the log file (JSON lines, appended).
LOG_ENV = "TRIBUTESTORE_AUDIT_LOG"

Entry = dict[str, Any]

_write_lock = threading.Lock()


def log_path() -> Path | None:
    """The log file the environment names, ``None`` when auditing is off."""
    value = os.environ.get(LOG_ENV, "").strip()
    return Path(value) if value else None


# ------------------------------------------------------------------- hooks
@hookimpl
def tributestore_store_opened(store: TributeStore) -> None:
    """Refuse to open a store whose changes could not be logged."""
    path = log_path()
    if path is None or store.read_only:
        return
    try:
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as error:
        raise ConfigError(f"audit log {path} ({LOG_ENV}) cannot be written: {error.strerror}") from None


@hookimpl
def tributestore_transaction_committed(store: TributeStore, changes: Changes) -> None:
    """Append one line per item added, removed, equipped or unequipped by the transaction."""
    path = log_path()
    if path is None:
        return
    at = datetime.now(UTC).isoformat(timespec="milliseconds")
    lines = [
        json.dumps({"at": at, "store": store.url, **entry}, ensure_ascii=False)
        for change in changes.tributes
        for entry in inventory_entries(change)
    ]
    if not lines:
        return
    # One write per transaction, in append mode: lines of concurrent writers never interleave.
    with _write_lock, path.open("a", encoding="utf-8") as log:
        log.write("".join(line + "\n" for line in lines))


# ------------------------------------------------------------------ diffing
def inventory_entries(change: TributeChange) -> list[Entry]:
    """What one tribute's change did to its inventory, one entry per item moved, added or removed."""
    items_before, equipped_before = _held(change.before)
    items_after, equipped_after = _held(change.after)
    document = change.after or change.before
    name = document.tribute.name if document is not None else None
    who = {"guild_id": change.guild_id, "tribute_id": change.tribute_id, "tribute": name}

    added_items = _added(items_before, items_after)
    removed_items = _added(items_after, items_before)
    added_equipped = _added(equipped_before, equipped_after)
    removed_equipped = _added(equipped_after, equipped_before)
    entries: list[Entry] = []
    for item in _take_common(removed_items, added_equipped):
        entries.append({**who, "action": "equipped", "item": item, "slot": "equipped"})
    for item in _take_common(removed_equipped, added_items):
        entries.append({**who, "action": "unequipped", "item": item, "slot": "items"})
    for slot, items in (("items", removed_items), ("equipped", removed_equipped)):
        entries.extend({**who, "action": "removed", "item": item, "slot": slot} for item in items)
    for slot, items in (("items", added_items), ("equipped", added_equipped)):
        entries.extend({**who, "action": "added", "item": item, "slot": slot} for item in items)
    return entries


def _held(document: TributeBundle | None) -> tuple[list[str], list[str]]:
    """The items and equipped items of a document (none for an absent tribute)."""
    if document is None:
        return [], []
    return document.inventory.items, document.inventory.equipped


def _added(old: Sequence[str], new: Sequence[str]) -> list[str]:
    """The entries of ``new`` that ``old`` does not hold (as a multiset), in ``new``'s order."""
    spare = Counter(old)
    added = []
    for item in new:
        if spare[item]:
            spare[item] -= 1
        else:
            added.append(item)
    return added


def _take_common(left: list[str], right: list[str]) -> list[str]:
    """Remove from both lists the items they share (as a multiset) and return those, in ``left``'s order."""
    common = []
    for item in list(left):
        if item in right:
            left.remove(item)
            right.remove(item)
            common.append(item)
    return common


# ------------------------------------------------------------------ reading
def read_log(path: Path) -> Iterator[Entry]:
    """Every entry of the log, oldest first."""
    with path.open(encoding="utf-8") as log:
        for line in log:
            if line.strip():
                yield json.loads(line)


def trace(path: Path, item: str, guild_id: int | None = None) -> list[Entry]:
    """Every entry whose item contains ``item`` (case-insensitively), of one guild or all, oldest first."""
    folded = item.casefold()
    return [
        entry
        for entry in read_log(path)
        if folded in str(entry["item"]).casefold() and (guild_id is None or entry["guild_id"] == guild_id)
    ]


def describe(entry: Entry) -> str:
    """One entry as a sentence for a gamemaker."""
    who = entry["tribute_id"] + (f" ({entry['tribute']})" if entry.get("tribute") else "")
    what = f"{entry['action']} {entry['item']!r} [{entry['slot']}]"
    return f"{entry['at']}  guild {entry['guild_id']}  {who}: {what}"


def main(argv: Sequence[str]) -> int:
    if len(argv) not in (2, 3):
        print("usage: python audit_log.py LOG ITEM [GUILD_ID]", file=sys.stderr)
        return 2
    guild_id = int(argv[2]) if len(argv) == 3 else None
    for entry in trace(Path(argv[0]), argv[1], guild_id):
        print(describe(entry))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
