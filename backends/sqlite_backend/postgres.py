"""The ``postgresql`` backend: the SQL backend's store on a PostgreSQL server (psycopg 3).

``postgresql://user[:password]@host[:port]/database`` (also ``postgres://`` and
``postgresql+psycopg://``; SQLAlchemy gets ``postgresql+psycopg://``).  Several
bot processes, on one machine or many, open the same URL and share the data.
URL options: ``schema`` (the PostgreSQL schema holding the tables, created when
missing; default: the first schema of the server's ``search_path``),
``timeout`` (seconds to wait for the write lock or a connection, default 30)
and ``fts`` (``off``: no trigram index, searches scan).  Any other option
(``sslmode``, ``application_name``, ...) is passed to libpq.

It is the SQLite store with the dialect differences swapped in: the same
migrations with BIGINT/BYTEA (and ``COLLATE "C"`` text keys), the same upserts
(``ON CONFLICT``), savepoints for nested transactions, a ``pg_trgm`` GIN index
instead of FTS5, and instead of ``BEGIN IMMEDIATE`` a transaction-scoped
advisory lock per schema taken first in every write transaction (see
:data:`~.connection.POSTGRES_WRITE_LOCK` for why).  Reads run in a REPEATABLE
READ transaction each: a consistent snapshot that never waits for a writer.
"""

from __future__ import annotations

import importlib.util
import re
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Connection, inspect, make_url, text
from sqlalchemy.exc import ArgumentError

from tributestore.errors import ConfigError, StorageError
from tributestore.store import TributeStore
from tributestore.urls import StoreURL

from . import schema, search
from .connection import (
    DRIVER_ERRORS,
    EXTENSION_LOCK_KEY,
    POSTGRES_WRITE_LOCK,
    advisory_lock_key,
    open_postgres_engine,
    translate_postgres_error,
)
from .store import SqliteStore, _timeout_option

#: URL schemes of the backend (``postgresql+psycopg2`` and other drivers are refused).
SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
#: URL options the store reads itself; the others go to libpq.
STORE_OPTIONS = frozenset({"schema", "timeout", "fts"})
_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def open_postgres_store(url: StoreURL) -> TributeStore:
    """The opener the plugin registers for ``postgresql:`` URLs."""
    return PostgresStore(url)


def require_driver() -> None:
    """Raise :class:`ConfigError` when psycopg 3 is not installed."""
    if importlib.util.find_spec("psycopg") is None:
        raise ConfigError(
            "the PostgreSQL backend needs the psycopg driver: pip install tributestore[postgres]"
        )


def sqlalchemy_url(url: StoreURL) -> str:
    """The SQLAlchemy URL (``postgresql+psycopg://...``) for a store URL, without the store's options."""
    if url.scheme not in SCHEMES:
        raise ConfigError(
            f"store URL {url.display!r}: driver {url.scheme!r} is not supported; "
            "write postgresql://user@host:5432/database (psycopg 3)"
        )
    query = urlencode([(key, value) for key, value in url.options.items() if key not in STORE_OPTIONS])
    result = f"postgresql+psycopg://{url.netloc}/{url.path}" + (f"?{query}" if query else "")
    try:
        make_url(result)
    except (ArgumentError, ValueError) as error:
        raise ConfigError(f"store URL {url.display!r} is not a PostgreSQL URL: {error}") from None
    return result


def schema_option(url: StoreURL) -> str | None:
    value = url.option("schema")
    if value is None:
        return None
    if not _SCHEMA_RE.match(value):
        raise ConfigError(
            f"store URL {url.display!r}: schema={value!r} must be 1-63 characters "
            "a-z, 0-9 or '_', not starting with a digit"
        )
    return value


class PostgresStore(SqliteStore):
    """A :class:`TributeStore` in one PostgreSQL schema (see the module docstring)."""

    def __init__(self, url: StoreURL) -> None:  # the SQLite constructor opens a file: not called
        require_driver()
        self.url = url.display
        self.timeout = _timeout_option(url)
        self.schema = schema_option(url)
        target = sqlalchemy_url(url)
        parsed = make_url(target)
        server = f"{parsed.host}:{parsed.port or 5432}" if parsed.host else "the local socket"
        self.where = f"PostgreSQL database {parsed.database or '(default)'} on {server}"
        if self.schema is not None:
            self.where += f", schema {self.schema}"
        self.path = None
        self._must_exist = url.must_exist
        self._local = threading.local()
        self._memory_lock = None
        self._queue = None  # writers queue in pg_advisory_xact_lock, which serves them in order
        self._closed = False
        #: Why searches scan instead of using the trigram index (``None``: they use it, or fts=off).
        self.trigram_problem: str | None = None
        try:
            self._db, self._engine = open_postgres_engine(target, schema=self.schema, timeout=self.timeout)
        except DRIVER_ERRORS as error:
            raise self._translate(error) from None
        self.dialect = self._engine.dialect.name
        want_fts = url.flag("fts", default=True)
        try:
            self._lock_key = advisory_lock_key(self.schema or self._current_schema())
            existed = self._has_store_tables()
            self.use_fts = self._prepare_schema(want_fts) and want_fts
        except BaseException:
            self.close()
            raise
        if not existed:
            self.created = self.where
        if want_fts and not self.use_fts:
            self.warnings = [
                f"{self.where}: no pg_trgm trigram index, searches scan every item "
                f"({self.trigram_problem or 'index missing'})"
            ]

    # ----------------------------------------------------------- dialect hooks
    def _translate(self, error: BaseException) -> StorageError:
        return translate_postgres_error(error, self.where, self.timeout)

    def _begin(self, conn: Connection, *, write: bool) -> Any:
        # READ COMMITTED for writes: each statement after the lock sees every earlier
        # writer's commit.  REPEATABLE READ for reads: one snapshot for the whole read.
        conn.execution_options(isolation_level="READ COMMITTED" if write else "REPEATABLE READ")
        transaction = conn.begin()
        if write:
            conn.execute(text(POSTGRES_WRITE_LOCK), {"key": self._lock_key})
        return transaction

    def _has_table(self, conn: Connection) -> Callable[[str], bool]:
        return lambda name: inspect(conn).has_table(name, schema=self.schema)

    def _has_store_tables(self) -> bool:
        with self._connection() as conn:
            return self._has_table(conn)("schema_version")

    def _current_schema(self) -> str:
        with self._connection() as conn:
            current = conn.execute(text("SELECT current_schema()")).scalar()
        if current is None:
            raise ConfigError(
                f"{self.where}: no schema of the server's search_path exists; "
                "name one with ?schema=NAME (it is created when missing)"
            )
        return str(current)

    def _prepare_schema(self, want_fts: bool) -> bool:
        """Create the schema, migrate and index when needed; whether the trigram index exists.

        As on SQLite, a read transaction looks first, so opening an up-to-date
        store takes no write lock.
        """
        with self._connection() as conn:
            has_table = self._has_table(conn)
            version = schema.read_version(conn) if has_table("schema_version") else None
            indexed = version is not None and search.has_trigram_index(conn)
        if version is None and self._must_exist:
            self._refuse_missing_schema()
        if version is not None and version > schema.CURRENT_VERSION:
            schema.refuse_newer(version, self.where)
        if version == schema.CURRENT_VERSION and (indexed or not want_fts):
            return indexed
        with self.transaction(), self._connection() as conn:
            if self.schema is not None:
                conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
            schema.migrate(conn, self.dialect, self.where, self._has_table(conn))
            if not want_fts:
                return search.has_trigram_index(conn)
            self.trigram_problem = search.ensure_trigram_index(conn, EXTENSION_LOCK_KEY)
            return self.trigram_problem is None

    # ------------------------------------------------------------- reports
    def details(self) -> dict[str, int]:
        """``trigram_index``: 1 when searches use the pg_trgm index, 0 when they scan."""
        return {"trigram_index": int(self.use_fts)}

    def _check(self, conn: Connection) -> list[str]:
        problems = super()._check(conn)
        if self.use_fts and not search.has_trigram_index(conn):
            problems.append(
                f"{self.where}: trigram index {search.TRIGRAM_INDEX} is missing "
                "(searches scan); reopening the store recreates it"
            )
        return problems
