"""The relational schema: explicit DDL, versioned, applied by ordered migrations.

``schema_version`` holds one row, the version of the tables below.  Opening a
store runs every migration newer than that row, in order, inside the opening
transaction (SQLite DDL is transactional), so a file is never left half
migrated.  A file written by newer code than this one is refused.

The DDL is kept portable (standard types, ``ON DELETE CASCADE``, composite keys)
except for the column types, taken from :func:`column_types` per dialect, so the
same migrations create the schema on PostgreSQL (``postgresql:`` URLs).  The SQLite-only
full-text index lives in :mod:`.search`, outside the versioned schema: it is an
accelerator created on open when the SQLite build can provide it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NoReturn

from sqlalchemy import Connection, text

from tributestore.errors import CorruptDataError, SchemaVersionError

#: Column types per dialect: ``id`` for snowflakes and counters (64-bit), ``blob`` for bytes,
#: ``key`` for the text keys results are ordered by (tribute ids, file names).  PostgreSQL
#: orders text by the database's collation (``en_US`` puts ``D1_F`` and ``D1F`` the other way
#: round), so keys there use ``COLLATE "C"``: code point order, as Python and SQLite sort.
_TYPES: dict[str, dict[str, str]] = {
    "sqlite": {"id": "INTEGER", "blob": "BLOB", "key": "TEXT"},
    "postgresql": {"id": "BIGINT", "blob": "BYTEA", "key": 'TEXT COLLATE "C"'},
}


def column_types(dialect: str) -> dict[str, str]:
    return _TYPES.get(dialect, _TYPES["sqlite"])


_V1 = """
CREATE TABLE guilds (
    guild_id {id} NOT NULL PRIMARY KEY,
    log_channel_id {id},
    category_id {id},
    gm_id {id},
    admin_id {id}
);
CREATE TABLE tributes (
    guild_id {id} NOT NULL REFERENCES guilds (guild_id) ON DELETE CASCADE,
    tribute_id {key} NOT NULL,
    name TEXT,
    user_id {id},
    user_mention TEXT,
    face_claim_url TEXT,
    prompt_channel_id {id},
    created_at TEXT,
    updated_at TEXT,
    PRIMARY KEY (guild_id, tribute_id)
);
CREATE TABLE inventories (
    guild_id {id} NOT NULL,
    tribute_id {key} NOT NULL,
    capacity INTEGER NOT NULL,
    equipped_capacity INTEGER NOT NULL,
    PRIMARY KEY (guild_id, tribute_id),
    FOREIGN KEY (guild_id, tribute_id) REFERENCES tributes (guild_id, tribute_id) ON DELETE CASCADE
);
CREATE TABLE inventory_items (
    guild_id {id} NOT NULL,
    tribute_id {key} NOT NULL,
    slot TEXT NOT NULL CHECK (slot IN ('items', 'equipped')),
    number INTEGER NOT NULL CHECK (number >= 1),
    item TEXT NOT NULL,
    item_folded TEXT NOT NULL,
    item_key {id} NOT NULL UNIQUE,
    PRIMARY KEY (guild_id, tribute_id, slot, number),
    FOREIGN KEY (guild_id, tribute_id) REFERENCES tributes (guild_id, tribute_id) ON DELETE CASCADE
);
CREATE TABLE prompts (
    guild_id {id} NOT NULL,
    tribute_id {key} NOT NULL,
    message TEXT NOT NULL,
    channel_id {id},
    created_at TEXT,
    updated_at TEXT,
    PRIMARY KEY (guild_id, tribute_id),
    FOREIGN KEY (guild_id, tribute_id) REFERENCES tributes (guild_id, tribute_id) ON DELETE CASCADE
);
CREATE TABLE prompt_files (
    guild_id {id} NOT NULL,
    tribute_id {key} NOT NULL,
    position INTEGER NOT NULL,
    file_name TEXT NOT NULL,
    PRIMARY KEY (guild_id, tribute_id, position),
    FOREIGN KEY (guild_id, tribute_id) REFERENCES prompts (guild_id, tribute_id) ON DELETE CASCADE
);
CREATE TABLE files (
    guild_id {id} NOT NULL,
    tribute_id {key} NOT NULL,
    name {key} NOT NULL,
    kind TEXT NOT NULL,
    media_type TEXT NOT NULL,
    size {id} NOT NULL,
    sha256 TEXT NOT NULL,
    created_at TEXT,
    data {blob} NOT NULL,
    PRIMARY KEY (guild_id, tribute_id, name),
    FOREIGN KEY (guild_id, tribute_id) REFERENCES tributes (guild_id, tribute_id) ON DELETE CASCADE
);
"""
# Indexes: every foreign key and every lookup is the leading part of a primary
# key above ((guild_id) for tributes, (guild_id, tribute_id) for the rest), and
# item_key (the full-text rowid) has its UNIQUE index; the search fallback is a
# scan of inventory_items by nature.  So version 1 needs no extra index.

# Version 2: tombstones, so the store can be the primary of a composite store.
# A row says "the fallback's copy of this tribute was deleted"; no foreign key,
# since the tribute it names is (by then) gone from this store.
_V2 = """
CREATE TABLE tombstones (
    guild_id {id} NOT NULL,
    tribute_id {key} NOT NULL,
    deleted_at TEXT NOT NULL,
    PRIMARY KEY (guild_id, tribute_id)
);
"""

# Version 3: a tombstone may also name the fallback record by the fallback's own key (a legacy
# THGBot id, global across guilds), so the record stays deleted even if guild inference changes.
_V3 = """
ALTER TABLE tombstones ADD COLUMN origin_key {key};
CREATE INDEX tombstones_by_origin ON tombstones (origin_key);
"""

#: Migrations in order: ``(version, statements)``; each brings the schema to ``version``.
MIGRATIONS: Sequence[tuple[int, str]] = ((1, _V1), (2, _V2), (3, _V3))
CURRENT_VERSION = MIGRATIONS[-1][0]


def split_statements(script: str) -> list[str]:
    """The statements of a DDL script: each ends with ``;`` at the end of a line,
    a ``CREATE TRIGGER`` at its ``END;`` line (its body holds ``;`` of its own)."""
    statements: list[str] = []
    current: list[str] = []
    in_trigger = False
    for line in script.strip().splitlines():
        current.append(line)
        stripped = line.strip()
        if stripped.startswith("CREATE TRIGGER"):
            in_trigger = True
        if (in_trigger and stripped == "END;") or (not in_trigger and stripped.endswith(";")):
            statements.append("\n".join(current).strip().rstrip(";"))
            current, in_trigger = [], False
    if "".join(current).strip():
        statements.append("\n".join(current).strip())
    return statements


def read_version(conn: Connection) -> int | None:
    """The stored schema version; ``None`` when the table has no row (or does not exist)."""
    rows = conn.execute(text("SELECT version FROM schema_version")).all()
    if len(rows) > 1:
        raise CorruptDataError(f"table schema_version holds {len(rows)} rows instead of one")
    return None if not rows else int(rows[0][0])


def refuse_newer(version: int, where: str) -> NoReturn:
    raise SchemaVersionError(
        f"{where} has schema version {version}, newer than this tributestore "
        f"understands ({CURRENT_VERSION}); upgrade tributestore to open it"
    )


def migrate(conn: Connection, dialect: str, where: str, has_table: Callable[[str], bool]) -> int:
    """Bring the schema to :data:`CURRENT_VERSION`; the caller holds a write transaction."""
    if not has_table("schema_version"):
        conn.execute(text("CREATE TABLE schema_version (version INTEGER NOT NULL)"))
    version = read_version(conn) or 0
    if version > CURRENT_VERSION:
        refuse_newer(version, where)
    if version == CURRENT_VERSION:
        return version
    types = column_types(dialect)
    for target, script in MIGRATIONS:
        if target <= version:
            continue
        for statement in split_statements(script.format(**types)):
            conn.execute(text(statement))
        version = target
    conn.execute(text("DELETE FROM schema_version"))
    conn.execute(text("INSERT INTO schema_version (version) VALUES (:v)"), {"v": version})
    return version
