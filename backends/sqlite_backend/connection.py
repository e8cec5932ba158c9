"""Engine setup and error translation for the SQL backend (SQLite and PostgreSQL).

Dialect-specific pieces live here in small functions: the per-connection
pragmas, the ``BEGIN`` each transaction starts with, the PostgreSQL write lock,
and the upsert statement (whose ``ON CONFLICT ... DO UPDATE`` form SQLite 3.24+
shares with PostgreSQL).

Transactions follow SQLAlchemy's documented pysqlite recipe ("Serializable
isolation / Savepoints / Transactional DDL"): the driver's own implicit
transaction handling is switched off (``isolation_level = None``) and the
``begin`` event emits the ``BEGIN`` itself, so savepoints and DDL behave and a
write transaction can start with ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dataset
from sqlalchemy import Connection, Engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import QueuePool, StaticPool

from tributestore.errors import CorruptDataError, LockTimeoutError, StorageError

#: ``Connection.info`` key telling the ``begin`` listener which BEGIN to emit.
BEGIN_KEY = "tributestore_begin"

#: Synchronous levels accepted by the ``synchronous`` URL option.
SYNCHRONOUS_LEVELS = ("NORMAL", "FULL", "EXTRA")


def sqlite_pragmas(*, timeout: float, synchronous: str, wal: bool) -> list[str]:
    """Statements run on every new SQLite connection.

    ``synchronous=FULL`` by default: in WAL mode it fsyncs the log at every
    commit, so a change the bot confirmed survives a power cut or OS crash
    (``NORMAL`` keeps the file consistent but may lose the last commits).
    Writes happen at human speed (one per command), so the fsync costs nothing
    noticeable; bulk copies may pass ``?synchronous=normal``.
    """
    statements = [
        "PRAGMA foreign_keys = ON",
        f"PRAGMA busy_timeout = {int(timeout * 1000)}",
        f"PRAGMA synchronous = {synchronous}",
    ]
    if wal:
        statements.append("PRAGMA journal_mode = WAL")
    return statements


def begin_statement(dialect: str, *, write: bool) -> str | None:
    """The statement starting a transaction (``None``: let the driver begin)."""
    if dialect != "sqlite":
        return None
    # IMMEDIATE takes the write lock up front: two processes doing
    # read-modify-write serialize instead of one failing (or losing an update)
    # when it upgrades a read lock.
    return "BEGIN IMMEDIATE" if write else "BEGIN"


def upsert_statement(table: str, columns: Sequence[str], key: Sequence[str]) -> str:
    """``INSERT`` that replaces the non-key columns of an existing row (never deletes it).

    (``INSERT OR REPLACE`` would delete the old row first, firing ``ON DELETE CASCADE``.)
    """
    names = ", ".join(columns)
    values = ", ".join(f":{column}" for column in columns)
    updates = ", ".join(f"{column} = excluded.{column}" for column in columns if column not in key)
    action = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
    return f"INSERT INTO {table} ({names}) VALUES ({values}) ON CONFLICT ({', '.join(key)}) {action}"


def open_sqlite_engine(
    path: Path | None, *, timeout: float, synchronous: str
) -> tuple[dataset.Database, Engine]:
    """A ``dataset`` database (and its engine) on an SQLite file, or in memory when ``path`` is None.

    The DBAPI connection is made by ``creator`` so any file name works (no
    URL escaping); a file gets a :class:`QueuePool` (a connection per thread in
    use), memory a :class:`StaticPool` (one connection, hence one database).
    """
    target = ":memory:" if path is None else str(path)

    def creator() -> sqlite3.Connection:
        return sqlite3.connect(target, timeout=timeout, check_same_thread=False, isolation_level=None)

    db = dataset.connect(
        "sqlite://",
        engine_kwargs={
            "creator": creator,
            "poolclass": StaticPool if path is None else QueuePool,
        },
        sqlite_wal_mode=False,  # added below for files only, dataset cannot tell (creator)
        on_connect_statements=sqlite_pragmas(timeout=timeout, synchronous=synchronous, wal=path is not None),
    )
    engine = db.engine
    assert engine is not None

    @event.listens_for(engine, "connect")
    def _no_driver_transactions(dbapi_connection: Any, _record: Any) -> None:
        # The recipe: pysqlite must not BEGIN/COMMIT on its own.
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        statement = conn.info.pop(BEGIN_KEY, None) or begin_statement("sqlite", write=False)
        if statement:
            conn.exec_driver_sql(statement)

    return db, engine


def translate_error(error: BaseException, where: str, timeout: float) -> StorageError:
    """A one-line :class:`StorageError` for a driver/SQLAlchemy/OS error, naming the database."""
    original = getattr(error, "orig", None) or error
    message = str(original).strip().splitlines()[0] if str(original).strip() else type(original).__name__
    lowered = message.lower()
    if "locked" in lowered or "busy" in lowered:
        return LockTimeoutError(
            f"{where} is locked by another process or thread (gave up after {timeout:g} s): {message}"
        )
    if "not a database" in lowered or "malformed" in lowered or "encrypted" in lowered:
        return CorruptDataError(f"{where} is not a usable SQLite database: {message}")
    if "unable to open" in lowered or isinstance(original, OSError):
        return StorageError(f"cannot open {where}: {message}")
    if "readonly" in lowered or "read-only" in lowered:
        return StorageError(f"{where} cannot be written (read-only file or directory): {message}")
    return StorageError(f"{where}: {message}")


#: Errors translated at the backend's boundary.
DRIVER_ERRORS: tuple[type[BaseException], ...] = (sa_exc.SQLAlchemyError, sqlite3.Error, OSError)


# ------------------------------------------------------------------ PostgreSQL
def open_postgres_engine(
    sqlalchemy_url: str, *, schema: str | None, timeout: float
) -> tuple[dataset.Database, Engine]:
    """A ``dataset`` database (and its engine) on a PostgreSQL server, through psycopg 3.

    Every connection gets ``search_path`` set to ``schema`` (when given), so the
    same unqualified SQL as on SQLite reaches that schema's tables, and
    ``lock_timeout`` set to ``timeout``: a writer waiting longer for the write
    lock (or any row lock) gives up with an error instead of hanging.
    """
    settings = [f"-c lock_timeout={max(1, int(timeout * 1000))}"]
    if schema is not None:
        settings.append(f"-c search_path={schema}")
    db = dataset.connect(
        sqlalchemy_url,
        engine_kwargs={
            "poolclass": QueuePool,
            "pool_pre_ping": True,
            "connect_args": {"options": " ".join(settings), "connect_timeout": max(2, int(timeout))},
        },
    )
    engine = db.engine
    assert engine is not None
    return db, engine


def advisory_lock_key(schema: str) -> int:
    """The 64-bit advisory lock key that serializes the writers of one schema (stable across processes)."""
    digest = hashlib.blake2b(f"tributestore:{schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


#: Serializes ``CREATE EXTENSION`` between stores of different schemas (it is database-wide).
EXTENSION_LOCK_KEY = advisory_lock_key("(create extension)")

#: The statement a PostgreSQL write transaction starts with (``:key`` is the schema's lock key).
#:
#: Why an advisory lock rather than SERIALIZABLE: every public write is a
#: read-modify-write (read the inventory, change it in Python, write it back)
#: run inside ``with store.transaction():``, whose body, possibly the caller's
#: own code, cannot be re-run, so the serialization failures SERIALIZABLE
#: reports could not be retried here.  A transaction-scoped advisory lock per
#: schema makes writers queue exactly as SQLite's ``BEGIN IMMEDIATE`` does
#: (across processes and machines sharing the server), is released by COMMIT or
#: ROLLBACK (even when the client dies), and never blocks readers (MVCC).
#: Write transactions run at READ COMMITTED, so every statement after the lock
#: sees all that earlier writers committed (a REPEATABLE READ snapshot could
#: predate the lock and lose their updates).
POSTGRES_WRITE_LOCK = "SELECT pg_advisory_xact_lock(:key)"


def translate_postgres_error(error: BaseException, where: str, timeout: float) -> StorageError:
    """A one-line :class:`StorageError` for a driver/SQLAlchemy error, naming the server and schema."""
    original = getattr(error, "orig", None) or error
    message = str(original).strip().splitlines()[0] if str(original).strip() else type(original).__name__
    lowered = message.lower()
    if "lock timeout" in lowered:
        return LockTimeoutError(
            f"{where} is locked by another process or machine (gave up after {timeout:g} s): {message}"
        )
    if "connection" in lowered and ("refused" in lowered or "failed" in lowered or "timeout" in lowered):
        return StorageError(f"cannot connect to {where}: {message}")
    if isinstance(error, sa_exc.InterfaceError | sa_exc.OperationalError) and "connect" in lowered:
        return StorageError(f"cannot connect to {where}: {message}")
    return StorageError(f"{where}: {message}")
