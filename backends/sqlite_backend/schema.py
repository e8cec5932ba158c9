"""The relational schema: SQLAlchemy Core tables, versioned, brought up to date by migrations.

The tables are declared once, here, as :class:`~sqlalchemy.Table` objects of
:data:`METADATA`; SQLAlchemy renders their DDL for each dialect (``INTEGER`` /
``BLOB`` on SQLite, ``BIGINT`` / ``BYTEA`` on PostgreSQL).  Text keys that
results are ordered by (tribute ids, file names) use ``COLLATE "C"`` on
PostgreSQL, whose default collation (``en_US``) would put ``D1_F`` and ``D1F``
the other way round: code point order, as Python and SQLite sort.

``schema_version`` holds one row, the version of the tables.  Opening a store
runs :func:`migrate` inside the opening write transaction (DDL is
transactional on both dialects), so a database is never left half migrated:
an empty database gets every table at :data:`CURRENT_VERSION`; an older one
gets the steps of :data:`UPGRADES` past its version, in order.  A database
written by newer code than this one is refused.

The full-text index (FTS5 on SQLite, ``pg_trgm`` on PostgreSQL) lives in
:mod:`.search`, outside the versioned schema: it is an accelerator created on
open when the database can provide it.  So is :data:`index_pending`, the
marker of an index a bulk import dropped (see ``SqlBackend.bulk_import``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NoReturn

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Connection,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    delete,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.schema import CreateColumn

from tributestore.errors import CorruptDataError, SchemaVersionError

from .common import CURRENT_VERSION as CURRENT_VERSION

#: Snowflakes and counters: 64-bit (plain ``INTEGER`` on SQLite, so ``guild_id`` stays the rowid).
Id = BigInteger().with_variant(Integer(), "sqlite")
#: Text keys results are ordered by: code point order on every dialect.
Key = Text().with_variant(Text(collation="C"), "postgresql")

METADATA = MetaData()

schema_version = Table("schema_version", METADATA, Column("version", Integer, nullable=False))


def _owner(parent: str = "tributes") -> list[Column[int] | Column[str] | ForeignKeyConstraint]:
    """``guild_id, tribute_id``, leading the primary key, and the foreign key to the owning row."""
    return [
        Column("guild_id", Id, primary_key=True, autoincrement=False),
        Column("tribute_id", Key, primary_key=True),
        ForeignKeyConstraint(
            ["guild_id", "tribute_id"], [f"{parent}.guild_id", f"{parent}.tribute_id"], ondelete="CASCADE"
        ),
    ]


# Version 1.  Every foreign key and every lookup is the leading part of a primary key
# ((guild_id) for tributes, (guild_id, tribute_id) for the rest), and item_key (the
# full-text rowid) has its UNIQUE index; the search fallback is a scan by nature.
guilds = Table(
    "guilds",
    METADATA,
    Column("guild_id", Id, primary_key=True, autoincrement=False),
    Column("log_channel_id", Id),
    Column("category_id", Id),
    Column("gm_id", Id),
    Column("admin_id", Id),
)
tributes = Table(
    "tributes",
    METADATA,
    Column("guild_id", Id, ForeignKey("guilds.guild_id", ondelete="CASCADE"), primary_key=True),
    Column("tribute_id", Key, primary_key=True),
    Column("name", Text),
    Column("user_id", Id),
    Column("user_mention", Text),
    Column("face_claim_url", Text),
    Column("prompt_channel_id", Id),
    Column("created_at", Text),
    Column("updated_at", Text),
)
inventories = Table(
    "inventories",
    METADATA,
    *_owner(),
    Column("capacity", Integer, nullable=False),
    Column("equipped_capacity", Integer, nullable=False),
)
inventory_items = Table(
    "inventory_items",
    METADATA,
    *_owner(),
    Column("slot", Text, CheckConstraint("slot IN ('items', 'equipped')"), primary_key=True),
    Column("number", Integer, CheckConstraint("number >= 1"), primary_key=True, autoincrement=False),
    Column("item", Text, nullable=False),
    Column("item_folded", Text, nullable=False),
    Column("item_key", Id, nullable=False, unique=True),
)
prompts = Table(
    "prompts",
    METADATA,
    *_owner(),
    Column("message", Text, nullable=False),
    Column("channel_id", Id),
    Column("created_at", Text),
    Column("updated_at", Text),
)
prompt_files = Table(
    "prompt_files",
    METADATA,
    *_owner("prompts"),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("file_name", Text, nullable=False),
)
files = Table(
    "files",
    METADATA,
    *_owner(),
    Column("name", Key, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("media_type", Text, nullable=False),
    Column("size", Id, nullable=False),
    Column("sha256", Text, nullable=False),
    Column("created_at", Text),
    Column("data", LargeBinary, nullable=False),
)
# Version 2: tombstones, so the store can be the primary of a composite.  A row says "the
# fallback's copy of this tribute was deleted"; no foreign key, since the tribute it names is
# (by then) gone from this store.  Version 3: ``origin_key`` also names the fallback record by
# the fallback's own key (a legacy THGBot id, global across guilds), so the record stays
# deleted even if guild inference changes.
tombstones = Table(
    "tombstones",
    METADATA,
    Column("guild_id", Id, primary_key=True, autoincrement=False),
    Column("tribute_id", Key, primary_key=True),
    Column("deleted_at", Text, nullable=False),
    Column("origin_key", Key),
    Index("tombstones_by_origin", "origin_key"),
)
#: Outside the versioned schema, like the search index it describes: a row ``('search', since)``
#: says a bulk import dropped the search index and has not rebuilt it yet (an import in
#: progress, or one that was interrupted).  Created by the first import that drops the index.
index_pending = Table(
    "search_index_pending",
    METADATA,
    Column("name", Text, primary_key=True),
    Column("since", Text, nullable=False),
    #: ``host:pid`` of the importing process: an open rebuilds the index only once it is gone.
    Column("owner", Text),
)
V1_TABLES = (guilds, tributes, inventories, inventory_items, prompts, prompt_files, files)


#: Whether a table of that name exists (in the store's schema on PostgreSQL).
HasTable = Callable[[str], bool]


def _to_v2(conn: Connection) -> None:
    tombstones.create(conn)  # at its version 3 shape: the next step then only checks


def _to_v3(conn: Connection) -> None:
    """Add ``origin_key`` (and its index) to a version 2 ``tombstones``."""
    if "origin_key" not in {column["name"] for column in inspect(conn).get_columns("tombstones")}:
        column = CreateColumn(tombstones.c.origin_key).compile(dialect=conn.dialect)
        # Core has no ALTER TABLE ... ADD COLUMN construct (alembic's is for migration scripts).
        conn.execute(text(f"ALTER TABLE tombstones ADD COLUMN {column}"))
    for index in tombstones.indexes:
        index.create(conn, checkfirst=True)


#: Upgrades in order: ``(version, step)``; each step brings the schema from the version before.
UPGRADES: Sequence[tuple[int, Callable[[Connection], None]]] = ((2, _to_v2), (3, _to_v3))


def read_version(conn: Connection) -> int | None:
    """The stored schema version; ``None`` when the table has no row."""
    rows = conn.execute(select(schema_version.c.version)).all()
    if len(rows) > 1:
        raise CorruptDataError(f"table schema_version holds {len(rows)} rows instead of one")
    return None if not rows else int(rows[0][0])


def refuse_newer(version: int, where: str) -> NoReturn:
    raise SchemaVersionError(
        f"{where} has schema version {version}, newer than this tributestore "
        f"understands ({CURRENT_VERSION}); upgrade tributestore to open it"
    )


def migrate(conn: Connection, where: str, has_table: HasTable) -> int:
    """Bring the schema to :data:`CURRENT_VERSION`; the version found (0: none).  The caller
    holds a write transaction."""
    if not has_table(schema_version.name):
        schema_version.create(conn)
    version = read_version(conn) or 0
    if version > CURRENT_VERSION:
        refuse_newer(version, where)
    if version == CURRENT_VERSION:
        return version
    found = version
    if version == 0:
        METADATA.create_all(conn, tables=[*V1_TABLES, tombstones], checkfirst=True)
    else:
        for target, step in UPGRADES:
            if target > version:
                step(conn)
    conn.execute(delete(schema_version))
    conn.execute(insert(schema_version).values(version=CURRENT_VERSION))
    return found
