"""A cross-process write lock that serves its waiters in arrival order.

Polling a lock (``filelock`` retries every 50 ms, SQLite's busy handler sleeps
between retries) lets a process committing back to back win every race: a
writer measured waiting 14 s against one such process.  :class:`FairLock` puts
a ticket queue in front of the real lock:

* ``<lock>.queue`` holds the last ticket number handed out.  A writer takes a
  short mutex (an OFD byte-range lock on byte 0 of that file), takes ticket
  ``t = last + 1``, locks byte ``BASE + t`` (its place in the queue) and drops
  the mutex.
* It then waits, blocking in the kernel (no polling), for byte
  ``BASE + t - 1``: its predecessor's place, released when that writer is done
  (or has died: the kernel releases a dead process's locks).
* Only then does it take the lock proper (``flock`` on ``<lock>`` for the JSON
  backend; ``BEGIN IMMEDIATE`` for SQLite), which mutual exclusion rests on: a
  waiter that gives up or dies can only let its successor start *waiting* for
  the lock proper early, never enter beside its holder.

So writers enter in the order they took their tickets, each waiting at most
for the writers queued before it.  Locks are per open file description, so
threads of one process queue exactly as processes do.  A wait longer than the
timeout raises :class:`LockTimeoutError` naming the lock.

Byte-range OFD locks are Linux-only (``fcntl.F_OFD_SETLKW``); elsewhere the
queue is skipped and only the lock proper is taken (blocking, not fair).
"""

from __future__ import annotations

import errno
import os
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from .errors import LockTimeoutError, StorageError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

#: Queue places are bytes ``BASE + ticket`` of the queue file (byte 0 is the mutex).
BASE = 1 << 20
_OFD_SETLK: int | None = getattr(fcntl, "F_OFD_SETLK", None)
_OFD_SETLKW: int | None = getattr(fcntl, "F_OFD_SETLKW", None)
QUEUED = _OFD_SETLKW is not None


def _flock_struct(kind: int, start: int) -> bytes:
    # struct flock {short l_type; short l_whence; off_t l_start; off_t l_len; pid_t l_pid;}
    return struct.pack("hhqqi4x", kind, os.SEEK_SET, start, 1, 0)


def _range_lock(fd: int, start: int, *, wait: bool) -> bool:
    """Write-lock byte ``start`` of ``fd`` (an OFD lock: owned by this open file, not the process)."""
    assert fcntl is not None and _OFD_SETLK is not None and _OFD_SETLKW is not None
    try:
        fcntl.fcntl(fd, _OFD_SETLKW if wait else _OFD_SETLK, _flock_struct(fcntl.F_WRLCK, start))
    except OSError as error:
        if not wait and error.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _range_unlock(fd: int, start: int) -> None:
    assert fcntl is not None and _OFD_SETLK is not None
    fcntl.fcntl(fd, _OFD_SETLK, _flock_struct(fcntl.F_UNLCK, start))


def wait_blocking(acquire: Callable[[], object], release: Callable[[], object], timeout: float) -> bool:
    """Run the blocking ``acquire`` in a helper thread; whether it succeeded within ``timeout``.

    A blocking lock call cannot be interrupted, so on timeout the helper is
    abandoned: when it gets the lock later it calls ``release`` at once.
    ``timeout < 0`` waits forever (in this thread).
    """
    if timeout < 0:
        acquire()
        return True
    guard = threading.Lock()
    done = threading.Event()
    state: dict[str, object] = {}

    def run() -> None:
        try:
            acquire()
        except BaseException as error:  # noqa: BLE001 - handed to the waiting thread
            with guard:
                state["error"] = error
        else:
            with guard:
                if state.get("abandoned"):
                    with suppress(OSError):
                        release()
                    return
                state["got"] = True
        finally:
            done.set()

    threading.Thread(target=run, name="tributestore-lock-wait", daemon=True).start()
    done.wait(timeout)
    with guard:
        if "error" in state:
            raise state["error"]  # type: ignore[misc]
        if state.get("got"):
            return True
        state["abandoned"] = True
        return False


class FairLock:
    """Writers of every process and thread queue for ``path`` in arrival order (module docstring).

    ``exclusive=False`` keeps the queue only: the caller takes the lock proper
    itself (SQLite's ``BEGIN IMMEDIATE``) once :meth:`hold` has let it through.
    """

    def __init__(
        self, path: Path, *, what: str, exclusive: bool = True, queue_path: Path | None = None
    ) -> None:
        self.path = path
        self.queue_path = queue_path or path.with_name(path.name + ".queue")
        self.what = what
        self.exclusive = exclusive

    def _timeout_error(self, timeout: float, position: str) -> LockTimeoutError:
        return LockTimeoutError(
            f"{self.what} is locked by another process or thread: gave up after {timeout:g} s "
            f"waiting for the write lock {self.path} ({position})"
        )

    def _open(self, path: Path) -> int:
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise StorageError(f"cannot lock {self.path}: {error.strerror}") from None

    @contextmanager
    def hold(self, timeout: float) -> Iterator[None]:
        """Hold the lock (queue place and, when ``exclusive``, the lock proper) inside the block."""
        deadline = None if timeout < 0 else time.monotonic() + timeout

        def left() -> float:
            return -1.0 if deadline is None else max(0.0, deadline - time.monotonic())

        queue_fd = self._open(self.queue_path) if QUEUED else None
        place: int | None = None
        lock_fd: int | None = None
        try:
            if queue_fd is not None:
                place = self._enqueue(queue_fd)
                if place > 1:
                    self._wait_place(place - 1, left(), timeout)
            if self.exclusive:
                lock_fd = self._open(self.path)
                self._flock(lock_fd, left(), timeout)
            yield
        finally:
            if lock_fd is not None:
                os.close(lock_fd)  # closing the only descriptor releases the flock
            if queue_fd is not None:
                os.close(queue_fd)  # ... and the queue place

    @contextmanager
    def try_hold(self) -> Iterator[bool]:
        """The lock proper if it is free right now (yields ``True``), else ``False``; never waits."""
        assert self.exclusive
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            yield False
            return
        try:
            try:
                assert fcntl is not None
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    def _enqueue(self, fd: int) -> int:
        """Take the next ticket and lock its queue place; returns the ticket."""
        try:
            _range_lock(fd, 0, wait=True)  # the mutex: held for a read and a write
            try:
                raw = os.pread(fd, 20, 0)
                try:
                    last = int(raw.split(b"\n", 1)[0] or b"0")
                except ValueError:
                    last = 0
                ticket = last + 1
                os.pwrite(fd, b"%019d\n" % ticket, 0)
                _range_lock(fd, BASE + ticket, wait=False)
                return ticket
            finally:
                _range_unlock(fd, 0)
        except OSError as error:
            raise StorageError(f"cannot lock {self.path}: {error.strerror}") from None

    def _wait_place(self, ticket: int, budget: float, timeout: float) -> None:
        """Wait until queue place ``ticket`` (the predecessor's) is free."""
        try:
            other = os.open(self.queue_path, os.O_RDWR)
        except OSError as error:
            raise StorageError(f"cannot lock {self.path}: {error.strerror}") from None
        released = False

        def acquire() -> None:
            _range_lock(other, BASE + ticket, wait=True)

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                os.close(other)

        try:
            if _range_lock(other, BASE + ticket, wait=False) or wait_blocking(acquire, release, budget):
                release()
                return
        except OSError as error:
            release()
            raise StorageError(f"cannot lock {self.path}: {error.strerror}") from None
        raise self._timeout_error(timeout, "queued behind another writer")

    def _flock(self, fd: int, budget: float, timeout: float) -> None:
        assert fcntl is not None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        except OSError as error:
            raise StorageError(f"cannot lock {self.path}: {error.strerror}") from None
        # Someone outside the queue (a waiter that gave up, an older tributestore) holds it.
        waiter = os.dup(fd)  # the same open file: its flock is ours
        closed = False

        def release() -> None:
            nonlocal closed
            if not closed:
                closed = True
                with suppress(OSError):
                    fcntl.flock(waiter, fcntl.LOCK_UN)
                os.close(waiter)

        try:
            got = wait_blocking(lambda: fcntl.flock(waiter, fcntl.LOCK_EX), release, budget)
        except OSError as error:
            raise StorageError(f"cannot lock {self.path}: {error.strerror}") from None
        if not got:
            raise self._timeout_error(timeout, "held by another writer")
        os.close(waiter)  # fd (same open file) keeps the lock


__all__ = ["QUEUED", "FairLock", "wait_blocking"]
