"""The copy's yardstick: what the machine can do for a legacy -> SQLite copy (issue 13).

Run as a whole process, as the copy is: ``python benchmarks/limit.py LEGACY TARGET``.

``TARGET`` is a fresh store file the backend created (its own tables, indexes and
FTS5 table), with its full-text triggers dropped beforehand by :func:`prepare`. The
process then does the least a copy must:

1. ``json.load`` the legacy ``inventories.json`` and ``prompt_info.json``, read the
   bot's ``tributes`` table and ``config.json``;
2. build the same guild, tribute, inventory, item (with its folded text, and the
   full-text rowid) and prompt rows the copy writes;
3. ``executemany`` them in one transaction, foreign keys on, WAL, ``synchronous=FULL``
   (the backend's settings);
4. build the trigram index once, in bulk (``INSERT INTO fts(fts) VALUES('rebuild')``),
   in the same transaction.

No validation, no conflict rules, no verification: a floor, not a copy. Imports only
the standard library, so interpreter start-up is the same floor the copy starts from.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

FTS_TABLE = "inventory_items_fts"


def prepare(target: Path) -> None:
    """Drop the full-text triggers of a store file just created by the backend (untimed)."""
    conn = sqlite3.connect(target, isolation_level=None)
    triggers = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")]
    for name in triggers:
        conn.execute(f'DROP TRIGGER "{name}"')
    conn.close()


def rows_of(legacy: Path) -> dict[str, list[tuple[object, ...]]]:
    """The rows a copy of the legacy directory writes (bar files), read the plainest way."""
    config = json.loads((legacy / "config" / "config.json").read_text(encoding="utf-8"))
    with (legacy / "inventories" / "inventories.json").open(encoding="utf-8") as handle:
        inventories = json.load(handle)
    with (legacy / "prompts" / "prompt_info.json").open(encoding="utf-8") as handle:
        prompts = json.load(handle)
    db = sqlite3.connect(f"file:{legacy / 'thgbot.db'}?mode=ro", uri=True)
    people = {
        row[0].upper(): row[1:]
        for row in db.execute(
            "SELECT tribute_id, tribute_name, user_id, user_mention, guild_id, created_at FROM tributes"
        )
    }
    db.close()
    guild_of: dict[str, int] = {}
    out: dict[str, list[tuple[object, ...]]] = {
        "guilds": [(int(g), s.get("log_channel_id"), s.get("category_id")) for g, s in config.items()],
        "tributes": [],
        "inventories": [],
        "inventory_items": [],
        "prompts": [],
    }
    item_key = 0
    for key, inventory in inventories.items():
        tid = key.upper()
        name, user, mention, guild, created = people[tid]
        guild_of[tid] = guild
        out["tributes"].append((guild, tid, name, user, mention, str(created)))
        out["inventories"].append(
            (guild, tid, inventory.get("capacity", 10), inventory.get("equipped_capacity", 5))
        )
        for slot in ("items", "equipped"):
            for number, item in (inventory.get(slot) or {}).items():
                item_key += 1
                out["inventory_items"].append(
                    (guild, tid, slot, int(number), item, item.casefold(), item_key)
                )
    for tid, prompt in prompts.items():
        channel = prompt.get("channel")
        out["prompts"].append((guild_of[tid], tid, prompt["message"], int(channel) if channel else None))
    return out


INSERTS = {
    "guilds": "INSERT INTO guilds (guild_id, log_channel_id, category_id) VALUES (?, ?, ?)",
    "tributes": "INSERT INTO tributes (guild_id, tribute_id, name, user_id, user_mention, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?)",
    "inventories": "INSERT INTO inventories (guild_id, tribute_id, capacity, equipped_capacity)"
    " VALUES (?, ?, ?, ?)",
    "inventory_items": "INSERT INTO inventory_items"
    " (guild_id, tribute_id, slot, number, item, item_folded, item_key) VALUES (?, ?, ?, ?, ?, ?, ?)",
    "prompts": "INSERT INTO prompts (guild_id, tribute_id, message, channel_id) VALUES (?, ?, ?, ?)",
}


def write(target: Path, rows: dict[str, list[tuple[object, ...]]]) -> int:
    """Insert every row in one transaction and build the trigram index; the number of rows."""
    conn = sqlite3.connect(target, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("BEGIN IMMEDIATE")
    for table, statement in INSERTS.items():
        conn.executemany(statement, rows[table])
    conn.execute(f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}) VALUES ('rebuild')")
    conn.execute("COMMIT")
    conn.close()
    return sum(len(rows[table]) for table in INSERTS)


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        sys.exit("usage: python benchmarks/limit.py LEGACY_DIR TARGET_DB")
    print(write(Path(argv[1]), rows_of(Path(argv[0]))))


if __name__ == "__main__":
    main(sys.argv[1:])
