"""Inventory search: the query, and the index that narrows it on each dialect.

Results must be exactly Python's ``folded_query in item.casefold()``.  Every
query therefore keeps the exact substring test on ``item_folded`` (filled with
``item.casefold()`` by Python); an index only narrows the rows to test.

- SQLite: an external-content FTS5 table over ``item_folded`` with the
  ``trigram`` tokenizer (``case_sensitive 1``: the text is already folded, and
  the tokenizer's own case folding is not ``casefold``), keyed by
  ``inventory_items.item_key`` (a real column, so ``VACUUM`` cannot renumber
  it as it may the implicit rowid) and kept in sync by triggers.  A trigram
  index only answers queries of three characters or more; shorter ones scan.
- PostgreSQL: a GIN index with ``pg_trgm``'s ``gin_trgm_ops`` on
  ``item_folded``, used by an escaped ``LIKE '%q%'``; without the extension
  the search scans.

The virtual table, its triggers and the trigram index are hand-written SQL:
SQLAlchemy Core has no construct for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Integer,
    Select,
    String,
    bindparam,
    case,
    column,
    select,
    table,
    text,
    tuple_,
)
from sqlalchemy.exc import DBAPIError

from tributestore.models import HitPosition

from .common import FTS_TABLE as FTS_TABLE
from .common import FTS_TRIGGERS as FTS_TRIGGERS
from .common import sqlite_has_trigram as sqlite_has_trigram
from .schema import inventory_items

#: Shortest query the trigram index can answer.
MIN_FTS_QUERY = 3
TRIGRAM_INDEX = "inventory_items_folded_trgm"

_FTS_DDL = (
    f"""CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(
        item_folded, content='inventory_items', content_rowid='item_key',
        tokenize='trigram case_sensitive 1')""",
    f"""CREATE TRIGGER inventory_items_fts_insert AFTER INSERT ON inventory_items BEGIN
        INSERT INTO {FTS_TABLE} (rowid, item_folded) VALUES (new.item_key, new.item_folded);
    END""",
    f"""CREATE TRIGGER inventory_items_fts_delete AFTER DELETE ON inventory_items BEGIN
        INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rowid, item_folded)
            VALUES ('delete', old.item_key, old.item_folded);
    END""",
    f"""CREATE TRIGGER inventory_items_fts_update AFTER UPDATE ON inventory_items BEGIN
        INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rowid, item_folded)
            VALUES ('delete', old.item_key, old.item_folded);
        INSERT INTO {FTS_TABLE} (rowid, item_folded) VALUES (new.item_key, new.item_folded);
    END""",
    f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}) VALUES ('rebuild')",
)
_fts = table(FTS_TABLE, column("rowid"), column(FTS_TABLE))
#: Every part the index needs (the triggers are those of :data:`_FTS_DDL`).
FTS_PARTS = (FTS_TABLE, *FTS_TRIGGERS)
_FTS_NAMES = "SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger') AND name IN (?, ?, ?, ?)"


@dataclass(frozen=True)
class SearchQuery:
    """A search as a dialect runs it: which prepared statement (``kind``) and its parameters.

    The statements themselves are built once per kind (:func:`search_statement`), so a
    search pays neither SQLAlchemy's statement construction nor its cache-key walk.
    """

    kind: str
    conditions: tuple[ColumnElement[bool], ...]
    params: dict[str, Any]


HitSelect = Select[tuple[int, str, str, int, str]]
_statements: dict[tuple[str, bool, bool], HitSelect] = {}


def search_statement(query: SearchQuery, by_guild: bool, paged: bool = False) -> HitSelect:
    """The prepared statement of ``query``'s kind (built on first use, see :func:`build_statement`)."""
    key = (query.kind, by_guild, paged)
    statement = _statements.get(key)
    if statement is None:
        statement = _statements[key] = build_statement(query.conditions, by_guild, paged)
    return statement


def build_statement(conditions: tuple[ColumnElement[bool], ...], by_guild: bool, paged: bool) -> HitSelect:
    """The matching items in (guild, tribute, "items" before "equipped", number) order.

    ``conditions`` are the dialect's: the exact substring test and, when an index can
    answer, the condition that lets it narrow the rows; their values are bound
    parameters (``SearchQuery.params``), and ``guild_id`` too when ``by_guild``.  A
    ``paged`` statement returns at most ``limit`` hits sorting after the position
    ``after_guild, after_tribute, after_slot, after_number`` (see :func:`page_params`).
    """
    items = inventory_items.c
    slot_order = case((items.slot == "items", 0), else_=1)
    statement = select(items.guild_id, items.tribute_id, items.slot, items.number, items.item).where(
        *conditions
    )
    if by_guild:
        statement = statement.where(items.guild_id == bindparam("guild_id", type_=BigInteger()))
    statement = statement.order_by(items.guild_id, items.tribute_id, slot_order, items.number)
    if not paged:
        return statement
    after = tuple_(
        bindparam("after_guild", type_=BigInteger()),
        bindparam("after_tribute", type_=String()),
        bindparam("after_slot", type_=Integer()),
        bindparam("after_number", type_=Integer()),
    )
    position = tuple_(items.guild_id, items.tribute_id, slot_order, items.number)
    return statement.where(position > after).limit(bindparam("limit", type_=Integer()))


def page_params(after: HitPosition | None, limit: int) -> dict[str, Any]:
    """The parameters of a paged statement: from the first hit when ``after`` is ``None``."""
    guild, tribute, slot, number = after if after is not None else (-1, "", 0, 0)
    return {
        "after_guild": guild,
        "after_tribute": tribute,
        "after_slot": slot,
        "after_number": number,
        "limit": limit,
    }


# ------------------------------------------------------------------ SQLite
def fts_missing(conn: Connection) -> list[str]:
    """The parts of the full-text index that do not exist (the FTS5 table, the triggers keeping it
    in step with ``inventory_items``), in :data:`FTS_PARTS` order; empty when it is whole.

    A trigger removed by hand leaves the table answering searches while every later write is
    missing from it: such an index is as good as none.
    """
    names = set(conn.exec_driver_sql(_FTS_NAMES, (FTS_TABLE, *FTS_TRIGGERS)).scalars())
    return [name for name in FTS_PARTS if name not in names]


def ensure_fts(conn: Connection) -> bool:
    """Create (and fill) the full-text index when missing or incomplete and possible; whether it
    exists.  An incomplete one (a trigger missing) is dropped and built again from the items.

    The caller holds the write transaction that opened the store.
    """
    missing = fts_missing(conn)
    if not missing:
        return True
    if not sqlite_has_trigram():
        return False
    if len(missing) < len(FTS_PARTS):
        for trigger in FTS_TRIGGERS:
            conn.exec_driver_sql(f'DROP TRIGGER IF EXISTS "{trigger}"')
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {FTS_TABLE}")
    for statement in _FTS_DDL:
        conn.exec_driver_sql(statement)
    return True


def fts_phrase(folded_query: str) -> str | None:
    """The query as one FTS5 phrase (quotes doubled); ``None``: too short for trigrams."""
    if len(folded_query) < MIN_FTS_QUERY:
        return None
    return '"' + folded_query.replace('"', '""') + '"'


def fts_condition() -> ColumnElement[bool]:
    """Items whose index entry holds the phrase bound as ``phrase``."""
    return inventory_items.c.item_key.in_(
        select(_fts.c.rowid).where(_fts.c[FTS_TABLE].match(bindparam("phrase", type_=String())))
    )


def fts_problems(conn: Connection) -> list[str]:
    """What is missing of the full-text index, else what FTS5's integrity check finds (index
    out of step with the items)."""
    missing = fts_missing(conn)
    if len(missing) == len(FTS_PARTS):
        return [
            f"full-text index {FTS_TABLE} is missing: searches scan every item; "
            "the next open for writing builds it"
        ]
    if missing:
        return [
            f"full-text index incomplete ({', '.join(missing)} missing): searches scan every item, "
            "or miss the items written since; the next open for writing rebuilds it"
        ]
    try:
        conn.exec_driver_sql(f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rank) VALUES ('integrity-check', 1)")
    except DBAPIError as error:  # reported as a problem, not raised
        orig = getattr(error, "orig", error)
        return [f"full-text index {FTS_TABLE} does not match inventory_items: {orig}"]
    return []


# ------------------------------------------------------------------ PostgreSQL
#: Whether the current schema holds the index named ``:name`` (``pg_class`` itself: asked
#: before every search, and half the time of the ``pg_indexes`` view).
HAS_INDEX_SQL = (
    "SELECT 1 FROM pg_class WHERE relname = :name AND relkind = 'i' "
    "AND relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())"
)


def has_trigram_index(conn: Connection) -> bool:
    """Whether the current schema's ``inventory_items`` has the trigram index."""
    return conn.execute(text(HAS_INDEX_SQL), {"name": TRIGRAM_INDEX}).first() is not None


def _trigram_schema(conn: Connection) -> str | None:
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
            where = _trigram_schema(conn)
            if where is None:
                # CREATE EXTENSION IF NOT EXISTS still races with itself across sessions.
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": extension_lock_key})
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"))
                where = _trigram_schema(conn) or "public"
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


def trigram_condition() -> ColumnElement[bool]:
    """``item_folded LIKE 'pattern' ESCAPE '\\'``: the trigram index can answer it.

    The pattern is written into the statement (``literal_execute``, quoted by the
    dialect), not sent as a parameter: once psycopg prepares a statement run often, the
    server may switch to a generic plan, made without the pattern, that walks the key
    index and tests every item (a miss of ``unobtainium`` went from 4 to 500 ms).
    """
    return inventory_items.c.item_folded.like(
        bindparam("pattern", type_=String(), literal_execute=True), escape="\\"
    )


def like_pattern(folded_query: str) -> str:
    """``%q%`` with LIKE's special characters escaped (for :func:`trigram_condition`)."""
    escaped = folded_query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
