"""Inventory search: an FTS5 trigram index on SQLite, a plain substring scan elsewhere.

Results must be exactly Python's ``folded_query in item.casefold()``.  Every
query therefore keeps the exact substring test on ``item_folded`` (filled with
``item.casefold()`` by Python); the full-text index only narrows the rows to
test.  The index is an external-content FTS5 table over ``item_folded`` with
the ``trigram`` tokenizer (``case_sensitive 1``: the text is already folded, and
the tokenizer's own case folding is not ``casefold``), keyed by
``inventory_items.item_key`` (a real column, so ``VACUUM`` cannot renumber it
as it may the implicit rowid) and kept in sync by triggers.  A trigram index can
only answer queries of three characters or more; shorter ones scan.

On PostgreSQL the accelerator is a GIN index with ``pg_trgm``'s
``gin_trgm_ops`` on ``item_folded``, used by an escaped ``LIKE '%q%'``
(``strpos`` still decides); without the extension the search is a ``strpos`` scan.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from .schema import split_statements

FTS_TABLE = "inventory_items_fts"
#: Shortest query the trigram index can answer.
MIN_FTS_QUERY = 3

_FTS_DDL = f"""
CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(
    item_folded, content='inventory_items', content_rowid='item_key',
    tokenize='trigram case_sensitive 1'
);
CREATE TRIGGER inventory_items_fts_insert AFTER INSERT ON inventory_items BEGIN
    INSERT INTO {FTS_TABLE} (rowid, item_folded) VALUES (new.item_key, new.item_folded);
END;
CREATE TRIGGER inventory_items_fts_delete AFTER DELETE ON inventory_items BEGIN
    INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rowid, item_folded)
        VALUES ('delete', old.item_key, old.item_folded);
END;
CREATE TRIGGER inventory_items_fts_update AFTER UPDATE ON inventory_items BEGIN
    INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rowid, item_folded)
        VALUES ('delete', old.item_key, old.item_folded);
    INSERT INTO {FTS_TABLE} (rowid, item_folded) VALUES (new.item_key, new.item_folded);
END;
INSERT INTO {FTS_TABLE} ({FTS_TABLE}) VALUES ('rebuild')
"""

_trigram_supported: bool | None = None


def sqlite_has_trigram() -> bool:
    """Whether this process's SQLite library has FTS5 with the trigram tokenizer (3.34+)."""
    global _trigram_supported
    if _trigram_supported is None:
        probe = sqlite3.connect(":memory:")
        try:
            probe.execute("CREATE VIRTUAL TABLE probe USING fts5(x, tokenize='trigram case_sensitive 1')")
            _trigram_supported = True
        except sqlite3.Error:
            _trigram_supported = False
        finally:
            probe.close()
    return _trigram_supported


def has_fts_table(conn: Connection) -> bool:
    row = conn.execute(
        text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name"), {"name": FTS_TABLE}
    ).first()
    return row is not None


def ensure_fts(conn: Connection) -> bool:
    """Create (and fill) the full-text index when missing and possible; whether it exists.

    The caller holds the write transaction that opened the store.
    """
    if has_fts_table(conn):
        return True
    if not sqlite_has_trigram():
        return False
    for statement in split_statements(_FTS_DDL):
        conn.execute(text(statement))
    return True


def fts_phrase(folded_query: str) -> str:
    """The query as one FTS5 phrase: in double quotes, internal quotes doubled."""
    return '"' + folded_query.replace('"', '""') + '"'


def substring_condition(dialect: str) -> str:
    """SQL true when ``item_folded`` contains ``:q`` (exactly, no pattern characters)."""
    if dialect == "postgresql":
        return "strpos(i.item_folded, :q) > 0"
    return "instr(i.item_folded, :q) > 0"


def like_pattern(folded_query: str) -> str:
    """The query with ``LIKE``'s special characters escaped (escape character ``\\``)."""
    return folded_query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_statement(
    folded_query: str, guild_id: int | None, *, dialect: str, use_fts: bool
) -> tuple[str, dict[str, Any]]:
    """SQL and parameters listing the matching items in (guild, tribute, slot, number) order."""
    conditions = [substring_condition(dialect)]
    params: dict[str, Any] = {"q": folded_query}
    if dialect == "postgresql":
        if use_fts:  # lets the planner use the trigram index; strpos above stays the exact test
            conditions.append("i.item_folded LIKE '%' || :pattern || '%' ESCAPE '\\'")
            params["pattern"] = like_pattern(folded_query)
    elif use_fts and len(folded_query) >= MIN_FTS_QUERY:
        conditions.append(f"i.item_key IN (SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :phrase)")
        params["phrase"] = fts_phrase(folded_query)
    if guild_id is not None:
        conditions.append("i.guild_id = :guild_id")
        params["guild_id"] = guild_id
    sql = (
        "SELECT i.guild_id, i.tribute_id, i.slot, i.number, i.item FROM inventory_items AS i"
        f" WHERE {' AND '.join(conditions)}"
        " ORDER BY i.guild_id, i.tribute_id,"
        " CASE i.slot WHEN 'items' THEN 0 ELSE 1 END, i.number"
    )
    return sql, params


def fts_problems(conn: Connection) -> list[str]:
    """Problems the FTS5 integrity check finds (index out of step with the items)."""
    if not has_fts_table(conn):
        return []
    try:
        conn.execute(text(f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rank) VALUES ('integrity-check', 1)"))
    except DBAPIError as error:  # reported as a problem, not raised
        orig = getattr(error, "orig", error)
        return [f"full-text index {FTS_TABLE} does not match inventory_items: {orig}"]
    return []


# ------------------------------------------------------------------ PostgreSQL
TRIGRAM_INDEX = "inventory_items_folded_trgm"


def has_trigram_index(conn: Connection) -> bool:
    """Whether the current schema's ``inventory_items`` has the trigram index."""
    row = conn.execute(
        text("SELECT 1 FROM pg_indexes WHERE schemaname = current_schema() AND indexname = :name"),
        {"name": TRIGRAM_INDEX},
    ).first()
    return row is not None


def trigram_schema(conn: Connection) -> str | None:
    """The schema ``pg_trgm`` is installed in, or ``None`` when it is not installed."""
    row = conn.execute(
        text(
            "SELECT n.nspname FROM pg_extension AS e JOIN pg_namespace AS n ON n.oid = e.extnamespace"
            " WHERE e.extname = 'pg_trgm'"
        )
    ).first()
    return None if row is None else str(row[0])


def ensure_trigram_index(conn: Connection, extension_lock_key: int) -> str | None:
    """Create ``pg_trgm`` (when missing) and the GIN index; ``None`` on success, else why not.

    The caller holds the write transaction that opened the store.  The
    extension is database-wide and goes to schema ``public`` (not the store's
    schema, whose ``DROP ... CASCADE`` would take every store's index with it);
    the operator class is named with the schema the extension really lives in.
    Each attempt runs in a savepoint, so a refusal (no privilege, extension not
    installed on the server) leaves the transaction usable: search then scans.
    """
    if has_trigram_index(conn):
        return None
    try:
        with conn.begin_nested():
            where = trigram_schema(conn)
            if where is None:
                # CREATE EXTENSION IF NOT EXISTS still races with itself across sessions.
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": extension_lock_key})
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"))
                where = trigram_schema(conn) or "public"
            quoted = '"' + where.replace('"', '""') + '"'
            conn.execute(
                text(
                    f"CREATE INDEX IF NOT EXISTS {TRIGRAM_INDEX}"
                    f" ON inventory_items USING gin (item_folded {quoted}.gin_trgm_ops)"
                )
            )
    except DBAPIError as error:
        orig = getattr(error, "orig", error)
        return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    return None
