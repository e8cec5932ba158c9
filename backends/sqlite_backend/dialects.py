"""What differs between SQLite and PostgreSQL, in one place: a dialect object per database.

:func:`dialect_for` picks :class:`SqliteDialect` (``sqlite:``) or
:class:`PostgresDialect` (``postgresql:``) from the URL; the backend
(:class:`~.store.SqlBackend`) and its transactions (:mod:`.connection`) ask it
for everything dialect-specific and share all the rest:

- the URL (a file or ``:memory:``; a server, a schema and libpq options) and
  the connection set-up (pragmas; ``search_path`` and ``lock_timeout``);
- locking: SQLite writers take a place in a fair queue (``<database>-queue``,
  :class:`~tributestore.fairlock.FairLock`) then ``BEGIN IMMEDIATE``;
  PostgreSQL writers take ``pg_advisory_xact_lock`` (see :class:`PostgresDialect`);
- upserts (``INSERT ... ON CONFLICT``, each dialect's own construct);
- the search index (FTS5 trigram or ``pg_trgm``, see :mod:`.search`) and the
  exact substring test (``instr`` or ``strpos``);
- bulk writes (raw ``executemany`` on SQLite, ``COPY`` on PostgreSQL) and
  dropping the search index for a bulk import (see ``SqlBackend.bulk_import``);
- integrity checks and the translation of driver errors into one-line
  :class:`~tributestore.errors.StorageError`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlencode

from sqlalchemy import (
    Connection,
    Engine,
    Executable,
    RootTransaction,
    String,
    Table,
    bindparam,
    create_engine,
    event,
    func,
    inspect,
    make_url,
    text,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import QueuePool, StaticPool
from sqlalchemy.schema import CreateSchema

from tributestore.errors import (
    ConfigError,
    CorruptDataError,
    LockTimeoutError,
    StorageError,
    StoreNotFoundError,
)
from tributestore.fairlock import FairLock
from tributestore.urls import StoreURL

from . import schema, search, search_plan
from .common import DEFAULT_TIMEOUT
from .schema import METADATA, inventory_items
from .urlcheck import database_path, schema_option, synchronous_level

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql

#: Synchronous levels accepted by the SQLite ``synchronous`` URL option.
#: URL schemes of PostgreSQL (``postgresql+psycopg2`` and other drivers are refused).
POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
#: PostgreSQL URL options the store reads itself; the others go to libpq.
POSTGRES_OPTIONS = frozenset({"schema", "timeout", "fts"})
#: ``Connection.info`` key telling SQLite's ``begin`` listener which BEGIN to emit.
_BEGIN_KEY = "tributestore_begin"


class Dialect(Protocol):
    """What the SQL backend asks of a database kind (see the module documentation)."""

    #: SQLAlchemy's name of the dialect.
    name: str
    #: The database, for messages ("SQLite database /srv/thg.db").
    where: str
    #: Seconds a writer waits for the write lock.
    timeout: float
    #: Whether the data lives only as long as the process.
    ephemeral: bool
    #: Whether every thread shares one connection (SQLite in memory): its users take turns.
    shared_connection: bool
    #: Errors translated at the backend's boundary.
    driver_errors: tuple[type[BaseException], ...]
    #: Whether the search index's integrity check must run in a write transaction.
    index_check_writes: bool
    #: The least share of the tributes stored an import must bring for dropping the search
    #: index and building it again at its end to pay (``SqlBackend.bulk_import``): the
    #: rebuild indexes every item, the row-by-row maintenance only the new ones.  ``None``:
    #: never dropped.
    defer_index_share: float | None

    def connect(self) -> Engine: ...

    def writers_queue(self) -> AbstractContextManager[float | None]:
        """Hold a writer's place until its transaction ends; yields the deadline of the wait."""
        ...

    def begin(self, conn: Connection, *, write: bool, deadline: float | None) -> RootTransaction:
        """Start the connection's transaction, holding the write lock when ``write``."""
        ...

    def upsert(self, table: Table) -> Executable:
        """``INSERT`` of a whole row that replaces the non-key columns of an existing one."""
        ...

    def insert_ignore(self, table: Table) -> Executable:
        """``INSERT`` that leaves an existing row (same primary key) as it is."""
        ...

    def has_table(self, conn: Connection, name: str) -> bool: ...

    def prepare(self, conn: Connection) -> None:
        """Create what holds the tables (a PostgreSQL schema), in the opening write transaction."""
        ...

    def has_index(self, conn: Connection) -> bool: ...

    def index_unavailable(self) -> str | None:
        """Why no search index can be made here (``None``: it can)."""
        ...

    def ensure_index(self, conn: Connection) -> str | None:
        """Create the search index when missing; ``None`` on success, else why not."""
        ...

    def search_query(self, folded_query: str, use_index: bool) -> search.SearchQuery:
        """The exact substring test on ``item_folded``, and the index's narrowing condition."""
        ...

    def write_rows(self, conn: Connection, table: Table, rows: Iterable[tuple[Any, ...]]) -> None:
        """Insert ``rows`` (tuples in the table's column order) the fastest way, in the transaction."""
        ...

    def index_present(self, conn: Connection) -> bool:
        """Whether the search index exists now (a bulk import may have dropped it since opening)."""
        ...

    def index_usable(self, conn: Connection) -> bool:
        """Whether a search may use the index's query now (else it must scan)."""
        ...

    def drop_index(self, conn: Connection) -> None:
        """Drop the search index and what maintains it (a bulk import rebuilds it at its end)."""
        ...

    def integrity_problems(self, conn: Connection) -> list[str]: ...

    def index_problems(self, conn: Connection, use_index: bool) -> list[str]: ...

    def created(self, had_schema: bool) -> str | None:
        """Where opening created the store; ``None`` when it existed."""
        ...

    def details(self, use_index: bool) -> dict[str, int]: ...

    def translate(self, error: BaseException) -> StorageError: ...


# The search conditions, built once; their values are bound parameters (search.SearchQuery).
_SQLITE_SCAN = (func.instr(inventory_items.c.item_folded, bindparam("query", type_=String())) > 0,)
_SQLITE_FTS = (*_SQLITE_SCAN, search.fts_condition())
_POSTGRES_SCAN = (func.strpos(inventory_items.c.item_folded, bindparam("query", type_=String())) > 0,)
_POSTGRES_TRIGRAM = (*_POSTGRES_SCAN, search.trigram_condition())


def dialect_for(url: StoreURL) -> Dialect:
    """The dialect of a ``sqlite:`` or ``postgresql:`` URL (options checked, nothing opened)."""
    if url.backend in ("postgresql", "postgres"):  # a driver other than psycopg is refused there
        return PostgresDialect(url)
    return SqliteDialect(url)


def _upsert(statement: sqlite.Insert | postgresql.Insert, table: Table) -> Executable:
    """``statement`` (the dialect's INSERT) replacing every non-key column of an existing row."""
    keys = [column.name for column in table.primary_key]
    updates = {c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys}
    return statement.on_conflict_do_update(index_elements=keys, set_=updates)


#: What PostgreSQL and psycopg say when the server ends a connection that was open (not one refused).
_CONNECTION_LOST = (
    "terminating connection",
    "server closed the connection",
    "connection has been closed unexpectedly",
    "the connection is lost",
    "connection is closed",
)


#: What the server says when a connection names a database it does not have.
_NO_DATABASE = re.compile(r'database "(.*)" does not exist')


def _first_line(error: BaseException) -> str:
    original = getattr(error, "orig", None) or error
    message = str(original).strip()
    return message.splitlines()[0] if message else type(original).__name__


#: Table names of tributestore's schema, any version (``search_index_pending`` comes and goes).
_OUR_TABLES = frozenset(table.name for table in METADATA.sorted_tables) | {"search_index_pending"}


def refuse_foreign(names: Iterable[str], where: str) -> None:
    """Refuse another program's database (tables named as tributestore's, without its
    ``schema_version``), before anything is written to it: creating tributestore's tables
    beside them would fail half-way, and reading them would misread that program's data.
    A legacy THGBot ``thgbot.db`` (its own ``tributes`` table) is the likely one."""
    found = set(names)
    clashing = sorted((found & _OUR_TABLES) - {schema.schema_version.name})
    if clashing and schema.schema_version.name not in found:
        raise ConfigError(
            f"{where} is not a tributestore store: it holds tables named as tributestore's "
            f"({', '.join(clashing)}) but no schema_version table (another program's database, "
            "such as a legacy THGBot thgbot.db, to be read as thgbot:///DIRECTORY?); nothing was changed"
        )


def _refuse_foreign(raw: sqlite3.Connection, where: str, unless_ours: str | None) -> None:
    """:func:`refuse_foreign` on a new connection, before its switch to WAL changes the file; with
    ``unless_ours`` (the message: opened for reading), a file without ``schema_version`` too."""
    try:
        names = [row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    except sqlite3.Error:
        return  # not a database, locked, ...: the open reports it as it does for any file
    try:
        refuse_foreign(names, where)
        if unless_ours is not None and schema.schema_version.name not in names:
            raise StoreNotFoundError(unless_ours)
    except (ConfigError, StoreNotFoundError):
        raw.close()
        raise


def _switch_to_wal(raw: sqlite3.Connection, timeout: float) -> None:
    """``PRAGMA journal_mode = WAL``, tried again until ``timeout`` (negative: no end) while
    SQLite answers "database is locked".

    SQLite gives that answer at once, without waiting its busy timeout, when the file is
    not in WAL mode yet and another connection holds its write lock: several processes
    opening a new store together met it (2-3 % of connections with 8 processes), as does
    a store switched back to a rollback journal while a writer works in it.
    """
    deadline = None if timeout < 0 else time.monotonic() + timeout
    pause = 0.001
    while True:
        try:
            raw.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            message = str(error).lower()
            if ("locked" not in message and "busy" not in message) or (
                deadline is not None and time.monotonic() >= deadline
            ):
                raw.close()
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)


def _looked_up(path: Path, check: Callable[[Path], bool]) -> bool:
    """``check(path)`` (``Path.exists``, ``Path.is_file``), an error other than "no such file"
    (permission denied on a directory above it, I/O error) being a :class:`StorageError`."""
    try:
        return check(path)
    except OSError as error:
        raise StorageError(f"cannot access SQLite database {path.absolute()}: {error.strerror}") from None


# --------------------------------------------------------------------------- SQLite
class SqliteDialect:
    """A file (WAL, fair writers' queue, ``BEGIN IMMEDIATE``) or a private in-memory database."""

    name = "sqlite"
    shared_connection: bool
    driver_errors: tuple[type[BaseException], ...] = (sa_exc.SQLAlchemyError, sqlite3.Error, OSError)
    index_check_writes = True  # FTS5's check is an INSERT
    # Measured (10k tributes, 105k items): the triggers cost about 20 times the rebuild per item.
    defer_index_share: float | None = 0.1

    def __init__(self, url: StoreURL) -> None:
        self.timeout = url.seconds("timeout", DEFAULT_TIMEOUT)
        self.synchronous = synchronous_level(url)
        self.path = database_path(url)
        self.ephemeral = self.shared_connection = self.path is None
        self.where = "in-memory SQLite database" if self.path is None else f"SQLite database {self.path}"
        if self.path is None and url.must_exist:
            raise StoreNotFoundError(
                f"store {url.display!r} is an in-memory database, which is always empty: "
                "it cannot be opened for reading"
            )
        if self.path is not None and url.must_exist and not _looked_up(self.path, Path.is_file):
            raise url.missing("no SQLite database file", self.path)
        self.new_file = self.path is not None and not _looked_up(self.path, Path.exists)
        #: Opened for reading: a file without tributestore's tables is refused before a connection
        #: switches it to WAL (which would change another program's database, or write a header
        #: into an empty file).
        self.refused_unless_ours = (
            None
            if not url.must_exist
            else f"{self.where} ({url.display}) holds no tributestore tables (no schema_version); "
            "nothing was created"
        )
        #: The writers' queue (files only: in memory the shared connection's lock serializes).
        self.queue = (
            None
            if self.path is None
            else FairLock(
                self.path,
                what=self.where,
                exclusive=False,
                # Beside the real file, as SQLite puts -wal and -shm: one queue whatever the path's spelling.
                queue_path=Path(f"{os.path.realpath(self.path)}-queue"),
            )
        )

    def connect(self) -> Engine:
        """An engine on the file (a :class:`QueuePool`: a connection per thread in use) or on
        memory (a :class:`StaticPool`: one connection, hence one database).

        Transactions follow SQLAlchemy's pysqlite recipe ("Serializable isolation /
        Savepoints / Transactional DDL"): the driver's own transaction handling is
        off and the ``begin`` event emits the ``BEGIN``, so a write can start with
        ``BEGIN IMMEDIATE`` and savepoints behave.  ``synchronous=FULL`` by default:
        in WAL mode a confirmed change survives a power cut.
        """
        path = self.path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.is_dir():
                raise StorageError(f"cannot open {self.where}: it is a directory")
        target = ":memory:" if path is None else str(path)
        pragmas = [
            "PRAGMA foreign_keys = ON",
            f"PRAGMA busy_timeout = {int(self.timeout * 1000)}",
            f"PRAGMA synchronous = {self.synchronous}",
        ]

        def creator() -> sqlite3.Connection:  # any file name works: no URL escaping
            raw = sqlite3.connect(target, timeout=self.timeout, check_same_thread=False, isolation_level=None)
            for pragma in pragmas:
                raw.execute(pragma)
            if path is not None:
                _refuse_foreign(raw, self.where, self.refused_unless_ours)  # before WAL changes the file
                _switch_to_wal(raw, self.timeout)
            return raw

        engine = create_engine(
            "sqlite://", creator=creator, poolclass=StaticPool if path is None else QueuePool
        )

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql(conn.info.pop(_BEGIN_KEY, None) or "BEGIN")

        return engine

    @contextmanager
    def writers_queue(self) -> Iterator[float | None]:
        if self.queue is None:
            yield None
            return
        deadline = None if self.timeout < 0 else time.monotonic() + self.timeout
        with self.queue.hold(self.timeout):
            yield deadline

    def begin(self, conn: Connection, *, write: bool, deadline: float | None) -> RootTransaction:
        if not write:
            return conn.begin()
        # IMMEDIATE takes the write lock up front: two processes doing read-modify-write
        # serialize instead of one failing (or losing an update) when it upgrades a read lock.
        conn.info[_BEGIN_KEY] = "BEGIN IMMEDIATE"
        if deadline is None:
            return conn.begin()
        # What the queue left of the timeout is BEGIN IMMEDIATE's busy timeout, then restored.
        raw = conn.connection.dbapi_connection
        assert raw is not None
        raw.execute(f"PRAGMA busy_timeout = {max(1, int((deadline - time.monotonic()) * 1000))}")
        try:
            return conn.begin()
        finally:
            raw.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")

    def upsert(self, table: Table) -> Executable:
        return _upsert(sqlite.insert(table), table)

    def insert_ignore(self, table: Table) -> Executable:
        return sqlite.insert(table).on_conflict_do_nothing()

    def has_table(self, conn: Connection, name: str) -> bool:
        return inspect(conn).has_table(name)

    def prepare(self, conn: Connection) -> None:
        pass

    def has_index(self, conn: Connection) -> bool:
        missing = search.fts_missing(conn)
        if search.FTS_TABLE not in missing and not search.sqlite_has_trigram():
            raise StorageError(
                f"{self.where} has a full-text index (FTS5 trigram) this SQLite library "
                "cannot maintain; use SQLite 3.34 or newer with FTS5"
            )
        return not missing and search_plan.has_text_index(conn)

    def index_unavailable(self) -> str | None:
        if search.sqlite_has_trigram():
            return None
        return f"SQLite {sqlite3.sqlite_version} has no FTS5 trigram tokenizer (3.34+)"

    def ensure_index(self, conn: Connection) -> str | None:
        if not search.ensure_fts(conn):
            return self.index_unavailable()
        search_plan.ensure_text_index(conn)  # short queries (1-2 characters) list distinct texts
        return None

    def write_rows(self, conn: Connection, table: Table, rows: Iterable[tuple[Any, ...]]) -> None:
        # The driver's own executemany on the transaction's connection: SQLAlchemy's per-row
        # parameter processing costs more than SQLite's insert itself.
        raw = conn.connection.dbapi_connection
        assert raw is not None
        raw.executemany(_insert_sql(table), rows)

    def index_present(self, conn: Connection) -> bool:
        raw = conn.connection.dbapi_connection  # asked before every search: the driver's own call
        assert raw is not None
        return raw.execute(_FTS_EXISTS, (search.FTS_TABLE,)).fetchone() is not None

    def index_usable(self, conn: Connection) -> bool:
        # The FTS table exists only whole: a bulk import drops it (and its triggers) together.
        return self.index_present(conn)

    def drop_index(self, conn: Connection) -> None:
        triggers = conn.exec_driver_sql(_FTS_TRIGGERS, (f"%{search.FTS_TABLE}%",)).scalars().all()
        for trigger in triggers:
            conn.exec_driver_sql(f'DROP TRIGGER IF EXISTS "{trigger}"')
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {search.FTS_TABLE}")
        for index in (search_plan.TEXT_INDEX, search_plan.OLD_TEXT_INDEX):
            conn.exec_driver_sql(f"DROP INDEX IF EXISTS {index}")

    def search_query(self, folded_query: str, use_index: bool) -> search.SearchQuery:
        phrase = search.fts_phrase(folded_query) if use_index else None
        if phrase is None:
            return search.SearchQuery("sqlite scan", _SQLITE_SCAN, {"query": folded_query})
        return search.SearchQuery("sqlite fts", _SQLITE_FTS, {"query": folded_query, "phrase": phrase})

    def integrity_problems(self, conn: Connection) -> list[str]:
        problems: list[str] = []
        results = [str(row[0]) for row in conn.exec_driver_sql("PRAGMA integrity_check")]
        if results != ["ok"]:
            problems.extend(f"{self.where}: integrity check: {result}" for result in results)
        for table, rowid, parent, _fk in conn.exec_driver_sql("PRAGMA foreign_key_check"):
            problems.append(f"{self.where}: row {rowid} of table {table} refers to a missing {parent} row")
        return problems

    def index_problems(self, conn: Connection, use_index: bool) -> list[str]:
        if not use_index and search.FTS_TABLE in search.fts_missing(conn):
            return []  # fts=off, or no trigram tokenizer here: searches scan, as they should
        problems = search.fts_problems(conn)
        if use_index and not search_plan.has_text_index(conn):
            problems.append(search_plan.TEXT_INDEX_MISSING)
        return [f"{self.where}: {problem}" for problem in problems]

    def created(self, had_schema: bool) -> str | None:
        return str(self.path.absolute()) if self.new_file and self.path is not None else None

    def details(self, use_index: bool) -> dict[str, int]:
        return {}

    def _unwritable_directory(self) -> str:
        """Why a store that exists cannot be opened in a directory tributestore may not write."""
        if self.path is None or not self.path.is_file():
            return ""
        directory = self.path.absolute().parent
        if os.access(directory, os.W_OK):
            return ""
        return (
            f" (its directory {directory} is not writable, and SQLite must create "
            f"{self.path.name}-wal and {self.path.name}-shm beside a store in WAL mode, even to read it: "
            "copy the file to a writable directory)"
        )

    def translate(self, error: BaseException) -> StorageError:
        message = _first_line(error)
        lowered = message.lower()
        if "locked" in lowered or "busy" in lowered:
            return LockTimeoutError(
                f"{self.where} is locked by another process or thread "
                f"(gave up after {self.timeout:g} s): {message}"
            )
        if "not a database" in lowered or "malformed" in lowered or "encrypted" in lowered:
            return CorruptDataError(f"{self.where} is not a usable SQLite database: {message}")
        if "unable to open" in lowered or isinstance(getattr(error, "orig", None) or error, OSError):
            return StorageError(f"cannot open {self.where}: {message}{self._unwritable_directory()}")
        if "readonly" in lowered or "read-only" in lowered:
            return StorageError(f"{self.where} cannot be written (read-only file or directory): {message}")
        return StorageError(f"{self.where}: {message}")


_FTS_EXISTS = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
#: The triggers keeping the FTS table in step with inventory_items (see search.py).
_FTS_TRIGGERS = (
    "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'inventory_items' AND sql LIKE ?"
)
_inserts: dict[str, str] = {}


def _insert_sql(table: Table) -> str:
    """``INSERT INTO table (every column) VALUES (?, ...)``, built once per table."""
    sql = _inserts.get(table.name)
    if sql is None:
        names = [column.name for column in table.columns]
        marks = ", ".join("?" * len(names))
        sql = _inserts[table.name] = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})"
    return sql


# --------------------------------------------------------------------------- PostgreSQL
class PostgresDialect:
    """A schema on a PostgreSQL server, through psycopg 3.

    Writers take a transaction-scoped advisory lock per schema first thing.  Why
    not SERIALIZABLE: every public write is a read-modify-write run inside
    ``with store.transaction():``, whose body, possibly the caller's own code,
    cannot be re-run, so serialization failures could not be retried.  The
    advisory lock makes writers queue exactly as SQLite's ``BEGIN IMMEDIATE``
    does (across processes and machines sharing the server, served in order),
    is released by COMMIT or ROLLBACK (even when the client dies), and never
    blocks readers (MVCC).  Writes run at READ COMMITTED, so every statement
    after the lock sees all that earlier writers committed (a REPEATABLE READ
    snapshot could predate the lock and lose their updates); reads run at
    REPEATABLE READ: one snapshot that never waits for a writer.
    """

    name = "postgresql"
    ephemeral = False
    shared_connection = False
    driver_errors: tuple[type[BaseException], ...] = (sa_exc.SQLAlchemyError, OSError)
    index_check_writes = False
    # Never dropped: DROP INDEX takes an ACCESS EXCLUSIVE lock on the items, which waits for every
    # open read (a verification, a backup) and queues every search of every bot behind it.  The
    # COPY path with the GIN index kept measured 0.67 of a plain COPY (10k tributes): enough.
    defer_index_share: float | None = None

    def __init__(self, url: StoreURL) -> None:
        require_driver()
        import psycopg  # the bulk path's COPY runs on the driver's connection: its errors too

        self.driver_errors = (*PostgresDialect.driver_errors, psycopg.Error)
        self.timeout = url.seconds("timeout", DEFAULT_TIMEOUT)
        self.schema = schema_option(url)
        self.url = sqlalchemy_url(url)
        parsed = make_url(self.url)
        server = f"{parsed.host}:{parsed.port or 5432}" if parsed.host else "the local socket"
        self.where = f"PostgreSQL database {parsed.database or '(default)'} on {server}"
        if self.schema is not None:
            self.where += f", schema {self.schema}"
        self.server = server
        self.display = url.display
        self.lock_key = 0

    def connect(self) -> Engine:
        """An engine whose connections reach the schema unqualified (``search_path``) and give up
        waiting for a lock after the timeout (``lock_timeout``)."""
        settings = [f"-c lock_timeout={max(1, int(self.timeout * 1000))}"]
        if self.schema is not None:
            settings.append(f"-c search_path={self.schema}")
        engine = create_engine(
            self.url,
            poolclass=QueuePool,
            # Every checkout is checked (one round trip): a connection the server closed (a
            # restart, a failover, an idle timeout) is replaced, never the caller's error.
            pool_pre_ping=True,
            connect_args={"options": " ".join(settings), "connect_timeout": max(2, int(self.timeout))},
        )
        try:
            with engine.connect() as conn:
                current = self.schema or conn.execute(text("SELECT current_schema()")).scalar()
        except BaseException as error:
            engine.dispose()
            missing = self._missing_database(error)
            if missing is not None:
                raise missing from None
            raise
        if current is None:
            engine.dispose()
            raise ConfigError(
                f"{self.where}: no schema of the server's search_path exists; "
                "name one with ?schema=NAME (it is created when missing)"
            )
        self.lock_key = advisory_lock_key(str(current))
        return engine

    def _missing_database(self, error: BaseException) -> StoreNotFoundError | None:
        """The error for a database the server says does not exist (``None`` for any other error).

        A store is a schema in a database: tributestore creates the schema and its tables, never
        the database (that needs rights a bot's role should not hold), in either mode.  The
        server's refusal carries no SQLSTATE on the client side, hence its message."""
        found = _NO_DATABASE.search(_first_line(error))
        if found is None:
            return None
        name = found.group(1)
        return StoreNotFoundError(
            f"store {self.display!r}: PostgreSQL database {name} does not exist on {self.server}; "
            f"tributestore creates schemas and tables, never databases: create it (createdb {name}, "
            "as a role allowed to) or ask the server's administrator; nothing was created"
        )

    def writers_queue(self) -> AbstractContextManager[float | None]:
        return nullcontext(None)  # pg_advisory_xact_lock serves writers in order

    def begin(self, conn: Connection, *, write: bool, deadline: float | None) -> RootTransaction:
        conn.execution_options(isolation_level="READ COMMITTED" if write else "REPEATABLE READ")
        transaction = conn.begin()
        if write:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": self.lock_key})
        return transaction

    def upsert(self, table: Table) -> Executable:
        from sqlalchemy.dialects import postgresql  # not loaded by a sqlite: open (start-up)

        return _upsert(postgresql.insert(table), table)

    def insert_ignore(self, table: Table) -> Executable:
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table).on_conflict_do_nothing()

    def has_table(self, conn: Connection, name: str) -> bool:
        return inspect(conn).has_table(name, schema=self.schema)

    def prepare(self, conn: Connection) -> None:
        if self.schema is not None:
            conn.execute(CreateSchema(self.schema, if_not_exists=True))

    def has_index(self, conn: Connection) -> bool:
        return search.has_trigram_index(conn) and search_plan.has_text_index(conn)

    def index_unavailable(self) -> str | None:
        return None

    def ensure_index(self, conn: Connection) -> str | None:
        problem = search.ensure_trigram_index(conn, EXTENSION_LOCK_KEY)
        if problem is None:
            search_plan.ensure_text_index(conn)  # short queries (1-2 characters) list distinct texts
        return problem

    def write_rows(self, conn: Connection, table: Table, rows: Iterable[tuple[Any, ...]]) -> None:
        """``COPY ... FROM STDIN`` on the transaction's own psycopg connection."""
        raw: Any = conn.connection.dbapi_connection
        names = ", ".join(column.name for column in table.columns)
        with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def index_present(self, conn: Connection) -> bool:
        return search.has_trigram_index(conn)

    def index_usable(self, conn: Connection) -> bool:
        return True  # the trigram query keeps its exact test: without the index it scans, as correct

    def drop_index(self, conn: Connection) -> None:
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {search.TRIGRAM_INDEX}")

    def search_query(self, folded_query: str, use_index: bool) -> search.SearchQuery:
        if not use_index:
            return search.SearchQuery("postgres scan", _POSTGRES_SCAN, {"query": folded_query})
        params = {"query": folded_query, "pattern": search.like_pattern(folded_query)}
        return search.SearchQuery("postgres trigram", _POSTGRES_TRIGRAM, params)

    def integrity_problems(self, conn: Connection) -> list[str]:
        return []  # foreign keys and checks are enforced by the server, never deferred

    def index_problems(self, conn: Connection, use_index: bool) -> list[str]:
        problems: list[str] = []
        if use_index and not search.has_trigram_index(conn):
            problems.append(
                f"{self.where}: trigram index {search.TRIGRAM_INDEX} is missing "
                "(searches scan); the next open for writing recreates it"
            )
        if use_index and not search_plan.has_text_index(conn):
            problems.append(f"{self.where}: {search_plan.TEXT_INDEX_MISSING}")
        return problems

    def created(self, had_schema: bool) -> str | None:
        return None if had_schema else self.where

    def details(self, use_index: bool) -> dict[str, int]:
        """``trigram_index``: 1 when searches use the pg_trgm index, 0 when they scan."""
        return {"trigram_index": int(use_index)}

    def translate(self, error: BaseException) -> StorageError:
        message = _first_line(error)
        lowered = message.lower()
        if "lock timeout" in lowered:
            return LockTimeoutError(
                f"{self.where} is locked by another process or machine "
                f"(gave up after {self.timeout:g} s): {message}"
            )
        if any(sign in lowered for sign in _CONNECTION_LOST):
            return StorageError(
                f"lost the connection to {self.where} (the server ended it: a restart, a failover, "
                f"an administrator): {message}; what its unfinished transaction wrote was not written"
            )
        if "connection" in lowered and ("refused" in lowered or "failed" in lowered or "timeout" in lowered):
            return StorageError(f"cannot connect to {self.where}: {message}")
        if isinstance(error, sa_exc.InterfaceError | sa_exc.OperationalError) and "connect" in lowered:
            return StorageError(f"cannot connect to {self.where}: {message}")
        if "permission denied" in lowered or "must be owner" in lowered:
            return StorageError(
                f"{self.where}: the role is not allowed to do this: {message} (writing needs SELECT, "
                "INSERT, UPDATE and DELETE on the store's tables; creating or upgrading a store also "
                "needs CREATE on the database, for schema=, or on the schema: ask the owner to grant them)"
            )
        return StorageError(f"{self.where}: {message}")


def require_driver() -> None:
    """Raise :class:`ConfigError` when psycopg 3 is not installed."""
    if importlib.util.find_spec("psycopg") is None:
        raise ConfigError(
            "the PostgreSQL backend needs the psycopg driver: pip install tributestore[postgres]"
        )


def sqlalchemy_url(url: StoreURL) -> str:
    """The SQLAlchemy URL (``postgresql+psycopg://...``) for a store URL, without the store's options."""
    if url.scheme not in POSTGRES_SCHEMES:
        raise ConfigError(
            f"store URL {url.display!r}: driver {url.scheme!r} is not supported; "
            "write postgresql://user@host:5432/database (psycopg 3)"
        )
    query = urlencode([(key, value) for key, value in url.options.items() if key not in POSTGRES_OPTIONS])
    result = f"postgresql+psycopg://{url.netloc}/{url.path}" + (f"?{query}" if query else "")
    try:
        make_url(result)
    except (ArgumentError, ValueError) as error:
        raise ConfigError(f"store URL {url.display!r} is not a PostgreSQL URL: {error}") from None
    return result


def advisory_lock_key(schema: str) -> int:
    """The 64-bit advisory lock key that serializes the writers of one schema (stable across processes)."""
    digest = hashlib.blake2b(f"tributestore:{schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


#: Serializes ``CREATE EXTENSION`` between stores of different schemas (it is database-wide).
EXTENSION_LOCK_KEY = advisory_lock_key("(create extension)")
