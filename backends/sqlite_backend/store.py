"""The SQL backend: tribute documents in relational tables, on SQLite or PostgreSQL.

One class, :class:`SqlBackend`, serves both; what differs (URL, connection
set-up, locking, upserts, the search index, integrity checks, error messages)
is its dialect object (:mod:`.dialects`).  Tables are SQLAlchemy Core tables
(:mod:`.schema`); reads and writes are Core statements built once.

SQLite: ``sqlite:///relative.db`` / ``sqlite:////absolute.db`` name a file (in
``write`` mode it and its directory are created; in ``read`` mode it must
already be a tributestore database); ``sqlite:///:memory:`` a private
in-memory database.  Options: ``timeout`` (seconds to wait for a lock, default
30), ``synchronous`` (``full``, the default, ``normal`` or ``extra``) and
``fts`` (``off``: no full-text index, searches scan).

PostgreSQL: ``postgresql://user[:password]@host[:port]/database`` (also
``postgres://`` and ``postgresql+psycopg://``).  Several bot processes, on one
machine or many, share it.  Options: ``schema`` (created when missing;
default: the first schema of the server's ``search_path``), ``timeout``,
``fts``; any other (``sslmode``, ...) goes to libpq.

A document is the rows of one tribute in ``tributes``, ``inventories``,
``inventory_items``, ``prompts``, ``prompt_files`` and ``files``.
:meth:`SqlBackend.load` reads them in one snapshot; :meth:`SqlBackend.save`
with the ``previous`` document writes only the parts that changed (appending
an item inserts one row), without it replaces the document whole.
:meth:`SqlBackend.import_documents` (the copier's batches) writes through the
driver (``executemany`` on SQLite, ``COPY`` on PostgreSQL); inside
:meth:`SqlBackend.bulk_import` it drops the search index for a large import,
which the end of the import (or the next open, after a crash) builds again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import Any

from pydantic import ValidationError
from sqlalchemy import (
    ColumnElement,
    Connection,
    Executable,
    Row,
    RowMapping,
    Select,
    Table,
    delete,
    func,
    inspect,
    select,
    tuple_,
    update,
)

from tributestore.backend import FileData
from tributestore.errors import (
    CorruptDataError,
    LockTimeoutError,
    NotFoundError,
    StorageError,
    StoreNotFoundError,
)
from tributestore.models import (
    Counts,
    FileInfo,
    Guild,
    HitPosition,
    ItemHit,
    Tribute,
    TributeBundle,
    describe_validation_error,
    utcnow,
)
from tributestore.urls import StoreURL

from . import schema, search, search_plan
from .common import model, to_text
from .connection import Connections
from .dialects import dialect_for, refuse_foreign
from .documents import (
    FILE_DATA,
    ONE,
    SPAN,
    TRIBUTE,
    in_span,
    of_key,
    replace,
    row,
    update_document,
    write_documents,
)
from .fast_read import read, tribute_rows
from .schema import files, guilds, index_pending, inventory_items, prompts, tombstones, tributes

log = logging.getLogger("tributestore")

#: Tributes per page when streaming (keyset pagination: one short query per page).
PAGE_SIZE = 200
#: Smallest import (tributes) worth dropping the search index for (see :meth:`SqlBackend.bulk_import`).
DEFER_INDEX_MIN = 1000
_KEYS_IN_SPAN = select(tributes.c.guild_id, tributes.c.tribute_id).where(in_span(tributes))
_DELETE_TRIBUTE = delete(tributes).where(of_key(tributes))
#: A tombstone recorded without an origin key gets the one a later deletion names.
_SET_ORIGIN = update(tombstones).where(of_key(tombstones, "key_"), tombstones.c.origin_key.is_(None))


def open_sql_backend(url: StoreURL) -> SqlBackend:
    """The opener the plugin registers for ``sqlite:`` and ``postgresql:`` URLs."""
    return SqlBackend(url)


class SqlBackend:
    """A :class:`~tributestore.backend.Backend` in SQL tables (see the module documentation),
    with the :class:`~tributestore.backend.Tombstones` and :class:`~tributestore.backend.BulkImport`
    capabilities."""

    read_only = False

    def __init__(self, url: StoreURL) -> None:
        self.dialect = dialect_for(url)
        self.url = url.display
        self.where = self.dialect.where
        self.ephemeral = self.dialect.ephemeral
        self.warnings: list[str] = []
        self.created: str | None = None
        #: Whether searches use the full-text index (FTS5 trigram, pg_trgm).
        self.use_fts = False
        self.want_fts = False
        self._text_state = search_plan.TextIndexState()  # what searches learned of the text index
        #: Whether this backend's imports drop the search index (inside :meth:`bulk_import`).
        self.defer_index = False
        self.db = Connections(self.dialect, self.url)
        self._upserts: dict[str, Executable] = {}
        try:
            self._open(url.must_exist, url.flag("fts", default=True))
        except BaseException:
            self.close()
            raise

    def _open(self, must_exist: bool, want_index: bool) -> None:
        """Migrate and index when needed.

        A read transaction looks first, so opening an up-to-date database takes no
        write lock: opening does not wait for a writer of another process.
        """
        dialect = self.dialect
        with self.db.reading() as conn, self.db.errors():
            had_schema = dialect.has_table(conn, schema.schema_version.name)
            version = schema.read_version(conn) if had_schema else None
            indexed = dialect.has_index(conn)
            # A bulk import still running drops the index again at its next batch: rebuilding
            # it here would only make this open slow (seconds at a million items).
            importing = not indexed and had_schema and self._importer_alive(conn)
            others = [] if had_schema else sorted(inspect(conn).get_table_names())
            refuse_foreign(others, self.where)  # SQLite's connections did already (before WAL)
        if version is None and must_exist:
            raise StoreNotFoundError(
                f"{self.where} ({self.url}) holds no tributestore tables (no schema_version); "
                "nothing was created"
            )
        if version is not None and version > schema.CURRENT_VERSION:
            schema.refuse_newer(version, self.where)
        problem = dialect.index_unavailable() if want_index else None
        if importing:
            problem = "a bulk import in progress rebuilds it at its end"
        elif must_exist and want_index and not indexed and problem is None:
            # Opened for reading (a copy source, a backup): the store is read, not repaired.
            problem = "opened for reading; the next open for writing builds it"
        building = want_index and not importing and not must_exist
        if version != schema.CURRENT_VERSION or (building and not indexed and problem is None):
            with self.db.transaction() as conn, self.db.errors():
                dialect.prepare(conn)
                found = schema.migrate(conn, self.where, lambda name: dialect.has_table(conn, name))
                if building:
                    problem = dialect.ensure_index(conn)
                    indexed = problem is None
                    if indexed:  # a bulk import dropped it and never finished: rebuilt now
                        self._clear_pending(conn)
            if 0 < found < schema.CURRENT_VERSION:
                # Said once (committed), like a store created on first use: the store changed,
                # even when opened for reading, and an older tributestore now refuses it.
                log.warning(
                    "upgraded the schema of %s (%s) from version %d to %d: tributestore versions "
                    "older than this one can no longer open it",
                    self.where,
                    self.url,
                    found,
                    schema.CURRENT_VERSION,
                )
        if others and not must_exist:
            log.warning(
                "added tributestore's tables to %s (%s), which already held other tables (%s)",
                self.where,
                self.url,
                ", ".join(others[:5]) + (", ..." if len(others) > 5 else ""),
            )
        # While an import runs, each search checks whether the index is back (and scans until then).
        self.use_fts = want_index and (indexed or importing)
        #: Whether this store should have a search index (``check`` names what is missing of it).
        self.want_fts = want_index and dialect.index_unavailable() is None
        self.created = dialect.created(had_schema)
        if want_index and (importing or not self.use_fts):
            self.warnings.append(
                f"{self.where}: no full-text index, searches scan every item ({problem or 'index missing'})"
            )

    # ------------------------------------------------------------------ life
    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.db.transaction():
            yield

    def snapshot(self) -> AbstractContextManager[None]:
        return self.db.snapshot()

    def connection(self) -> AbstractContextManager[Connection]:
        """The thread's connection: its transaction's or snapshot's, else one in a read transaction
        of its own (for a plugin keeping its own tables in the store's transactions)."""
        return self.db.reading()

    def _upsert(self, table: Table) -> Executable:
        """The dialect's upsert of ``table``, built once."""
        statement = self._upserts.get(table.name)
        if statement is None:
            statement = self._upserts[table.name] = self.dialect.upsert(table)
        return statement

    # ---------------------------------------------------------------- guilds
    def put_guild(self, guild: Guild) -> None:
        with self.db.writing() as conn:
            conn.execute(self._upsert(guilds), row(guild, guilds))

    def get_guild(self, guild_id: int) -> Guild | None:
        with self.db.reading() as conn:
            found = conn.execute(select(guilds).where(guilds.c.guild_id == guild_id)).mappings().first()
        return None if found is None else model(Guild, dict(found), self.where, guilds.name)

    def list_guilds(self) -> list[Guild]:
        with self.db.reading() as conn:
            rows = conn.execute(select(guilds).order_by(guilds.c.guild_id)).mappings().all()
        return [model(Guild, dict(found), self.where, guilds.name) for found in rows]

    # ------------------------------------------------------------- documents
    def get_tribute(self, guild_id: int, tribute_id: str) -> Tribute | None:
        with self.db.reading() as conn:
            found = conn.execute(TRIBUTE, {"guild_id": guild_id, "tribute_id": tribute_id}).mappings().first()
        return None if found is None else model(Tribute, dict(found), self.where, tributes.name)

    def present(self, keys: Sequence[tuple[int, str]]) -> set[tuple[int, str]]:
        wanted = set(keys)
        found: set[tuple[int, str]] = set()
        by_guild: dict[int, list[str]] = {}
        for guild_id, tribute_id in wanted:
            by_guild.setdefault(guild_id, []).append(tribute_id)
        with self.db.reading() as conn:
            for guild_id, ids in by_guild.items():
                for start in range(0, len(ids), 500):  # within every database's bound-parameter limit
                    query = select(tributes.c.tribute_id).where(
                        tributes.c.guild_id == guild_id, tributes.c.tribute_id.in_(ids[start : start + 500])
                    )
                    found.update((guild_id, str(tid)) for (tid,) in conn.execute(query))
        return found & wanted

    def load(self, guild_id: int, tribute_id: str) -> TributeBundle | None:
        with self.db.reading() as conn:
            found = read(conn, ONE, {"guild_id": guild_id, "tribute_id": tribute_id}, self.where)
        return found[0] if found else None

    def save(
        self, document: TributeBundle, files: Mapping[str, bytes], previous: TributeBundle | None
    ) -> None:
        with self.db.writing() as conn:
            if previous is None:
                replace(conn, document, files)
            else:
                update_document(conn, self._upsert, document, files, previous)

    def delete(self, guild_id: int, tribute_id: str) -> None:
        # ON DELETE CASCADE removes the inventory, items (and their index rows), prompt and files.
        with self.db.writing() as conn:
            conn.execute(
                delete(tributes).where(of_key(tributes)), {"guild_id": guild_id, "tribute_id": tribute_id}
            )

    def read_file(self, info: FileInfo) -> bytes:
        params = {"guild_id": info.guild_id, "tribute_id": info.tribute_id, "names": [info.name]}
        with self.db.reading() as conn:
            found = conn.execute(FILE_DATA, params).first()
        if found is None:
            raise NotFoundError(
                f"file {info.name!r} not found for tribute {info.tribute_id} in guild {info.guild_id}"
            )
        return bytes(found.data)

    def iter_tributes(self, guild_id: int | None) -> Iterator[Tribute]:
        for page in self._pages(guild_id):
            yield from page

    def iter_documents(self, guild_id: int | None) -> Iterator[TributeBundle]:
        """Every document, a page of tribute keys at a time: each page's span of keys read in one
        read transaction (four queries), so each document is one committed state of its tribute
        (one deleted since the page was listed is skipped, one created inside the span is
        included).  The listing reads keys alone: the documents' rows are validated once, there."""
        columns = select(tributes.c.guild_id, tributes.c.tribute_id)
        for keys in self._listing(columns, guild_id):
            first, last = keys[0], keys[-1]
            span = {"g0": first.guild_id, "t0": first.tribute_id, "g1": last.guild_id, "t1": last.tribute_id}
            with self.db.reading() as conn:
                documents = read(conn, SPAN, span, self.where)
            yield from documents  # the read transaction is over: a slow consumer holds nothing

    def _pages(self, guild_id: int | None) -> Iterator[list[Tribute]]:
        """Tributes in key order, a page per short query (no transaction held between pages)."""
        for rows in self._listing(select(tributes), guild_id):
            yield tribute_rows(rows, self.where)

    def _listing(self, columns: Select[Any], guild_id: int | None) -> Iterator[Sequence[Row[Any]]]:
        """Rows of ``columns`` of the tributes in key order, :data:`PAGE_SIZE` per short query."""
        key = tuple_(tributes.c.guild_id, tributes.c.tribute_id)
        listing = columns.order_by(tributes.c.guild_id, tributes.c.tribute_id).limit(PAGE_SIZE)
        if guild_id is not None:
            listing = listing.where(tributes.c.guild_id == guild_id)
        after = listing
        while True:
            with self.db.reading() as conn:
                rows = conn.execute(after).all()
            if rows:
                yield rows
            if len(rows) < PAGE_SIZE:
                return
            last = rows[-1]
            after = listing.where(key > tuple_(last.guild_id, last.tribute_id))

    # ------------------------------------------------------------ bulk import
    def import_documents(self, documents: Sequence[TributeBundle], file_data: FileData) -> None:
        """The copier's bulk write: a batch of whole documents, one statement (or ``COPY``) per
        table through the driver, in one transaction; inside :meth:`bulk_import` worth deferring
        the index for, the search index is dropped first (see there)."""
        keys = sorted(d.tribute.key for d in documents)
        if not keys:
            return
        with self.db.transaction() as conn, self.db.errors():
            if self.defer_index:
                self._drop_index(conn)
            if len(set(keys)) != len(keys):  # the same tribute twice: one after the other
                for document in documents:
                    given = {info.name: _file(file_data, info) for info in document.files}
                    replace(conn, document, given)
                return
            span = {"g0": keys[0][0], "t0": keys[0][1], "g1": keys[-1][0], "t1": keys[-1][1]}
            wanted = set(keys)
            existing = [
                {"guild_id": g, "tribute_id": t}
                for g, t in conn.execute(_KEYS_IN_SPAN, span)
                if (g, t) in wanted
            ]
            if existing:  # replaced whole, as import_tribute(overwrite)
                conn.execute(_DELETE_TRIBUTE, existing)
            write_documents(conn, self.dialect.write_rows, documents, file_data)

    @contextmanager
    def bulk_import(self, tributes: int) -> Iterator[None]:
        """Around the :meth:`import_documents` batches of one import of about ``tributes``
        tributes: when that is large (at least :data:`DEFER_INDEX_MIN`, and the dialect's
        ``defer_index_share`` of the tributes stored), the search index is dropped by the
        first batch and built once, in bulk, at the end (:meth:`finish_import`), instead of
        being maintained row by row (10k tributes into SQLite: 1.3 s instead of 7 s).

        The store stays honest meanwhile, for every process: the batch that drops the index
        also writes the marker row (:data:`~.schema.index_pending`), in the same transaction;
        searches use the index only while it exists (SQLite: the FTS table and its triggers
        are dropped together; PostgreSQL: the trigram query scans without its index) and
        :meth:`check` reports the marker.  Each batch drops the index again if another
        process rebuilt it meanwhile.  An import killed before its end leaves the marker:
        the next open of the store for writing (not ``fts=off``) rebuilds the index and clears it.  On an
        error the index is rebuilt too; on ``KeyboardInterrupt`` (or any non-``Exception``)
        it is left to the next open.
        """
        self.defer_index = self._worth_deferring(tributes)
        try:
            yield
        except Exception:
            with suppress(Exception):  # the import's own error matters more
                self.finish_import()
            raise
        finally:
            self.defer_index = False
        self.finish_import()

    def finish_import(self) -> None:
        """Rebuild the search index a bulk import dropped and clear its marker, in one
        transaction (nothing to do when no marker is set)."""
        self.defer_index = False
        with self.db.transaction() as conn, self.db.errors():
            if not self._pending(conn):
                return
            if not self.dialect.index_present(conn) and self.dialect.index_unavailable() is None:
                self.dialect.ensure_index(conn)
            self._clear_pending(conn)

    def _worth_deferring(self, tributes: int) -> bool:
        share = self.dialect.defer_index_share
        if share is None or tributes < DEFER_INDEX_MIN:
            return False
        with self.db.reading() as conn:
            if not self.dialect.index_present(conn):
                return False
            stored = int(conn.execute(select(func.count()).select_from(schema.tributes)).scalar_one())
        return tributes >= share * stored

    def _drop_index(self, conn: Connection) -> None:
        """Drop the search index, the marker saying so written in the same transaction."""
        if not self.dialect.index_present(conn):
            return  # dropped by an earlier batch (the marker is there)
        index_pending.create(conn, checkfirst=True)
        conn.execute(delete(index_pending))
        conn.execute(
            index_pending.insert().values(name="search", since=to_text(utcnow()), owner=_this_process())
        )
        self.dialect.drop_index(conn)

    def _pending(self, conn: Connection) -> bool:
        """Whether the marker of a dropped search index is set."""
        if not self.dialect.has_table(conn, index_pending.name):
            return False
        return conn.execute(select(index_pending.c.name)).first() is not None

    def _importer_alive(self, conn: Connection) -> bool:
        """Whether the process that set the marker of a dropped index still runs (on this host;
        a marker of another host, or without an owner, counts as a finished import)."""
        if not self.dialect.has_table(conn, index_pending.name):
            return False
        owner = conn.execute(select(index_pending.c.owner)).scalar()
        process, _, started = (owner or "").rpartition("@")
        host, _, pid = process.rpartition(":")
        return host == socket.gethostname() and pid.isdigit() and _running(int(pid), started)

    def _clear_pending(self, conn: Connection) -> None:
        if self.dialect.has_table(conn, index_pending.name):
            conn.execute(delete(index_pending))

    # ------------------------------------------------------------ tombstones
    def put_tombstone(self, guild_id: int, tribute_id: str, origin_key: str | None) -> None:
        values = {"guild_id": guild_id, "tribute_id": tribute_id, "deleted_at": to_text(utcnow())}
        with self.db.writing() as conn:
            conn.execute(self.dialect.insert_ignore(tombstones), dict(values, origin_key=origin_key))
            if origin_key is not None:  # a tombstone recorded earlier without one: it gets this one
                key = {"key_guild_id": guild_id, "key_tribute_id": tribute_id}
                conn.execute(_SET_ORIGIN, dict(key, origin_key=origin_key))

    def has_tombstone(self, guild_id: int, tribute_id: str) -> bool:
        query = select(tombstones.c.guild_id).where(of_key(tombstones))
        with self.db.reading() as conn:
            return conn.execute(query, {"guild_id": guild_id, "tribute_id": tribute_id}).first() is not None

    def has_origin_tombstone(self, origin_key: str) -> bool:
        query = select(tombstones.c.guild_id).where(tombstones.c.origin_key == origin_key).limit(1)
        with self.db.reading() as conn:
            return conn.execute(query).first() is not None

    def iter_tombstones(self) -> Iterator[tuple[int, str, str | None]]:
        query = select(tombstones.c.guild_id, tombstones.c.tribute_id, tombstones.c.origin_key).order_by(
            tombstones.c.guild_id, tombstones.c.tribute_id
        )
        with self.db.reading() as conn:
            rows = [(int(g), str(t), None if o is None else str(o)) for g, t, o in conn.execute(query)]
        yield from rows

    def count_tombstones(self) -> int:
        with self.db.reading() as conn:
            return int(conn.execute(select(func.count()).select_from(tombstones)).scalar_one())

    # ------------------------------------------------------------ whole store
    def search_items(self, folded_query: str, guild_id: int | None) -> Iterator[ItemHit]:
        yield from self._hits(folded_query, guild_id, None)

    def search_page(
        self, folded_query: str, guild_id: int | None, after: HitPosition | None, limit: int
    ) -> list[ItemHit]:
        with self.db.reading() as conn:
            use_index = self.use_fts and self.dialect.index_usable(conn)
            rows = search_plan.search_page(
                conn,
                folded_query,
                guild_id,
                after,
                limit,
                use_index=use_index,
                text_state=self._text_state,
            )
        return [self._hit(found) for found in rows]

    def _hits(
        self, folded_query: str, guild_id: int | None, page: dict[str, Any] | None
    ) -> Iterator[ItemHit]:
        """The hits of a search (one page of them when ``page`` has the paging parameters).

        The index is used only when it exists in this read transaction: a bulk import
        (:meth:`bulk_import`) may have dropped it since the store was opened.
        """
        with self.db.reading() as conn:
            query = self.dialect.search_query(folded_query, self.use_fts and self.dialect.index_usable(conn))
            statement: Select[Any] = search.search_statement(
                query, guild_id is not None, paged=page is not None
            )
            params = {**query.params, **(page or {})}
            if guild_id is not None:
                params["guild_id"] = guild_id
            rows = conn.execute(statement, params).mappings().all()
        for found in rows:
            yield self._hit(found)

    def _hit(self, found: RowMapping) -> ItemHit:
        try:  # no timestamps: validated directly (model()'s per-row work halves the speed)
            return ItemHit.model_validate(dict(found))
        except ValidationError as error:
            raise CorruptDataError(
                f"{self.where}, table inventory_items: {describe_validation_error(error, 'row')}"
            ) from None

    def counts(self) -> Counts:
        def count(table: Table, *where: ColumnElement[bool]) -> Any:
            return select(func.count()).select_from(table).where(*where).scalar_subquery()

        slot = inventory_items.c.slot
        query = select(
            count(guilds).label("guilds"),
            count(tributes).label("tributes"),
            count(inventory_items, slot == "items").label("items"),
            count(inventory_items, slot == "equipped").label("equipped"),
            count(prompts).label("prompts"),
            count(files).label("files"),
        )
        with self.db.reading() as conn:
            return Counts(**conn.execute(query).mappings().one())

    def details(self) -> dict[str, int]:
        return self.dialect.details(self.use_fts)

    def check(self) -> list[str]:
        """Problems: the database's own integrity, schema version, file bytes, items, search index.

        Reads one snapshot, so writes in flight are not seen half-done; SQLite's
        full-text index check (an INSERT) runs in a write transaction of its own.
        A lock not obtained within the timeout raises
        :class:`~tributestore.errors.LockTimeoutError`: "busy" is never reported as damage, nor
        is a closed store (a :class:`~tributestore.errors.StorageError`, as every call after close).
        """
        self.db.check_open()
        try:
            with self.db.snapshot(), self.db.reading() as conn:
                problems = self.dialect.integrity_problems(conn)
                problems.extend(self._check_version(conn))
                problems.extend(self._check_files(conn))
                problems.extend(self._check_items(conn))
                pending = self._check_pending(conn)
                problems.extend(pending)
                if not self.dialect.index_check_writes and not pending:
                    problems.extend(self.dialect.index_problems(conn, self.want_fts))
            if self.dialect.index_check_writes and not pending:
                problems.extend(self._index_problems_locked())
        except LockTimeoutError:
            raise
        except StorageError as error:
            return [str(error)]
        return problems

    def _index_problems_locked(self) -> list[str]:
        """The index check under the write lock (as an INSERT, in a read transaction it fails with
        "database is locked" whenever a writer is active); inside a transaction or snapshot, there."""
        if self.db.joined:
            with self.db.reading() as conn:
                return self.dialect.index_problems(conn, self.want_fts)
        try:
            with self.db.transaction() as conn:
                return self.dialect.index_problems(conn, self.want_fts)
        except LockTimeoutError:
            raise
        except StorageError:  # a read-only file or directory: the check cannot run there
            return []

    def _check_pending(self, conn: Connection) -> list[str]:
        """The marker of a search index a bulk import dropped (a leftover beside a rebuilt index is not)."""
        if not self._pending(conn) or self.dialect.index_present(conn):
            return []
        return [
            f"{self.where}: search index is stale (dropped by a bulk import in progress or "
            "interrupted): searches scan every item until the import finishes or the store "
            "is next opened for writing (by the bot, or a copy into it), which rebuilds it"
        ]

    def _check_version(self, conn: Connection) -> list[str]:
        try:
            version = schema.read_version(conn)
        except CorruptDataError as error:
            return [f"{self.where}: {error}"]
        if version != schema.CURRENT_VERSION:
            return [f"{self.where}: schema version is {version}, expected {schema.CURRENT_VERSION}"]
        return []

    def _check_files(self, conn: Connection) -> list[str]:
        problems: list[str] = []
        listing = select(files.c.guild_id, files.c.tribute_id, files.c.name, files.c.size, files.c.sha256)
        for guild_id, tribute_id, name, size, sha256 in conn.execute(listing).all():
            params = {"guild_id": guild_id, "tribute_id": tribute_id, "names": [name]}
            found = conn.execute(FILE_DATA, params).first()
            data = b"" if found is None else bytes(found.data or b"")
            label = f"{self.where}: file {name!r} of tribute {tribute_id} in guild {guild_id}"
            if len(data) != size:
                problems.append(f"{label} holds {len(data)} bytes, its metadata says {size}")
            elif hashlib.sha256(data).hexdigest() != sha256:
                problems.append(f"{label} does not match its sha256")
        return problems

    def _check_items(self, conn: Connection) -> list[str]:
        problems: list[str] = []
        item = inventory_items.c
        gaps = (
            select(item.guild_id, item.tribute_id, item.slot, func.count(), func.max(item.number))
            .group_by(item.guild_id, item.tribute_id, item.slot)
            .having(func.count() != func.max(item.number))
        )
        for guild_id, tribute_id, slot, count, highest in conn.execute(gaps):
            problems.append(
                f"{self.where}: {slot} of tribute {tribute_id} in guild {guild_id} are not numbered "
                f"1..{count} (highest number {highest})"
            )
        listing = select(item.guild_id, item.tribute_id, item.slot, item.number, item.item, item.item_folded)
        for guild_id, tribute_id, slot, number, text, folded in conn.execute(listing):
            if text.casefold() != folded:
                problems.append(
                    f"{self.where}: {slot} {number} of tribute {tribute_id} in guild {guild_id}: "
                    "item_folded is not item.casefold() (search would miss it)"
                )
        return problems


def _file(file_data: FileData, info: FileInfo) -> bytes:
    return file_data(info) if callable(file_data) else file_data[info.name]


def _this_process() -> str:
    """``host:pid@start``: the start time tells a reused process id from the importer."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}@{_start_time(pid)}"


def _start_time(pid: int) -> str:
    """When the process started, in clock ticks since boot (Linux); '' where unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()
    except OSError:
        return ""
    return fields[19].decode() if len(fields) > 19 else ""


def _running(pid: int, started: str) -> bool:
    """Whether the process of that id that started then still runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        pass
    except OSError:
        return False
    return not started or _start_time(pid) in ("", started)
