"""Connections and transactions of the SQL backend, the same for every dialect.

Each thread gets its own connection for a transaction or a snapshot:

- :meth:`Connections.transaction`: the outermost call waits for the write lock
  (the dialect's: SQLite's fair queue then ``BEGIN IMMEDIATE``, PostgreSQL's
  advisory lock), so read-modify-write sequences of several threads and
  processes serialize and none loses an update; nested calls join it through a
  savepoint (a failing nested block undoes only its own writes).
- :meth:`Connections.snapshot`: one read transaction held across a multi-part
  read (SQLite's deferred ``BEGIN``, PostgreSQL's REPEATABLE READ).
- :meth:`Connections.reading`: the thread's transaction or snapshot, else a
  short read transaction of its own, so each read sees a consistent state.

Driver errors leave as one-line :class:`~tributestore.errors.StorageError`
(:meth:`Connections.errors`), translated by the dialect.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress

from sqlalchemy import Connection, RootTransaction

from tributestore.errors import StorageError

from .dialects import Dialect


class _Local(threading.local):
    def __init__(self) -> None:
        #: This thread's write transaction.
        self.conn: Connection | None = None
        #: This thread's snapshot (read transaction).
        self.read_conn: Connection | None = None


class Connections:
    """An engine and the per-thread connections of its transactions (see the module documentation)."""

    def __init__(self, dialect: Dialect, url: str) -> None:
        self.dialect = dialect
        self.url = url
        self.closed = False
        self._local = _Local()
        # One shared connection (SQLite in memory): its users take turns.
        self._lock = threading.RLock() if dialect.shared_connection else None
        with self.errors():
            self.engine = dialect.connect()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.engine.dispose()

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Turn driver errors into one-line :class:`StorageError` naming the database."""
        try:
            yield
        except self.dialect.driver_errors as error:
            raise self.dialect.translate(error) from None

    def _turn(self) -> AbstractContextManager[object]:
        return self._lock if self._lock is not None else nullcontext()

    def check_open(self) -> None:
        """Raise :class:`StorageError` when :meth:`close` was called."""
        if self.closed:
            raise StorageError(f"{self.dialect.where} ({self.url}) is closed")

    def _start(self, *, write: bool, deadline: float | None = None) -> tuple[Connection, RootTransaction]:
        self.check_open()
        conn = self.engine.connect()
        try:
            return conn, self.dialect.begin(conn, write=write, deadline=deadline)
        except BaseException:
            conn.close()
            raise

    @property
    def joined(self) -> bool:
        """Whether this thread is inside a transaction or a snapshot (its reads join it)."""
        return self._local.conn is not None or self._local.read_conn is not None

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction (nested: a savepoint of the outer one); yields its connection."""
        current = self._local.conn
        if current is not None:
            with self.errors():
                savepoint = current.begin_nested()
            try:
                yield current
            except BaseException:
                with self.errors():
                    if savepoint.is_active:
                        savepoint.rollback()
                raise
            with self.errors():
                savepoint.commit()
            return
        if self._local.read_conn is not None and self._lock is not None:
            raise StorageError(f"{self.dialect.where}: cannot write inside store.snapshot() (one connection)")
        with self._turn(), self.dialect.writers_queue() as deadline:
            with self.errors():
                conn, transaction = self._start(write=True, deadline=deadline)
            self._local.conn = conn
            try:
                try:
                    yield conn
                except BaseException:
                    with suppress(*self.dialect.driver_errors):  # the original error matters more
                        transaction.rollback()
                    raise
                with self.errors():
                    transaction.commit()
            finally:
                self._local.conn = None
                with suppress(*self.dialect.driver_errors):
                    conn.close()

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """One read transaction for this thread's reads (joins a transaction or snapshot)."""
        local = self._local
        if local.conn is not None or local.read_conn is not None:
            yield
            return
        with self._turn():
            with self.errors():
                conn, transaction = self._start(write=False)
            local.read_conn = conn
            try:
                yield
                with self.errors():
                    transaction.commit()
            finally:
                local.read_conn = None
                with suppress(*self.dialect.driver_errors):
                    conn.close()

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """The thread's transaction (or snapshot) connection, else one in a read transaction of its own."""
        current = self._local.conn or self._local.read_conn
        if current is not None:
            with self.errors():
                yield current
            return
        with self._turn(), self.errors():
            conn, transaction = self._start(write=False)
            try:
                yield conn
                transaction.commit()
            finally:
                conn.close()

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """The thread's transaction connection, else one in a write transaction of its own."""
        current = self._local.conn
        if current is not None:
            with self.errors():
                yield current
            return
        with self.transaction() as conn, self.errors():
            yield conn
