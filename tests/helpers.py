"""Small helpers several test modules share: running the real CLI, the three local store URLs,
and opening a store as a user whom file modes stop."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest

from tributestore import open_store

if TYPE_CHECKING:
    from tributestore import TributeStore
    from tributestore.backends.sqlite_backend.store import SqlBackend

CLI = [sys.executable, "-c", "from tributestore.cli import main; main()"]


def run_cli(*args: str, cwd: Path | None = None, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``tributestore ARGS`` in a subprocess (in ``cwd``), its output as text."""
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, input=stdin, timeout=300)


def local_store_url(backend: str, tmp: Path) -> str:
    """A fresh ``sqlite``, ``json`` or ``composite`` (SQLite primary, empty JSON fallback) in ``tmp``."""
    if backend == "sqlite":
        return f"sqlite:///{tmp}/thg.db"
    if backend == "json":
        return f"json:///{tmp}/store"
    open_store(f"json:///{tmp}/f").close()  # an empty fallback: a fallback is only read, it must exist
    primary = quote(f"sqlite:///{tmp}/p.db", safe="")
    fallback = quote(f"json:///{tmp}/f", safe="")
    return f"composite:?primary={primary}&fallback={fallback}"


def open_denied(url: str, mode: str) -> str:
    """What opening ``url`` raises when the path's modes deny access: ``"<exception class>:
    <message>"``, or ``"opened"``.  Root is run without the capabilities that let it past modes."""
    script = (
        "import sys\n"
        "from tributestore import open_store\n"
        "from tributestore.errors import StorageError\n"
        "try:\n"
        "    open_store(sys.argv[1], mode=sys.argv[2]).close()\n"
        "except StorageError as error:\n"
        "    print(f'StorageError: {error}')\n"
        "except BaseException as error:\n"
        "    print(f'{type(error).__name__}: {error}')\n"
        "else:\n"
        "    print('opened')\n"
    )
    command = [sys.executable, "-c", script, url, mode]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("root, and no setpriv to drop the capabilities that ignore file modes")
        command = [setpriv, "--bounding-set", "-dac_override,-dac_read_search", *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode:
        pytest.skip(f"cannot run the opening process: {done.stderr.strip()[-300:]}")
    return done.stdout.strip()


def sql_backend(store: TributeStore) -> SqlBackend:
    """The full SQL backend of a store on SQLite or PostgreSQL, for tests that look inside it: a
    reopened SQLite file starts on the light reader (backends/sqlite_backend/light.py), which opens
    the full backend on demand."""
    from tributestore.backends.sqlite_backend.light import LightSqlBackend
    from tributestore.backends.sqlite_backend.store import SqlBackend

    backend = store.backend
    if isinstance(backend, LightSqlBackend):
        backend = backend.full()
    assert isinstance(backend, SqlBackend), backend
    return backend


def statements_of(store: TributeStore, call: Callable[[], object]) -> list[tuple[str, Any]]:
    """The SQL statements ``call`` sends to a store's database (SQLite or PostgreSQL), with
    their parameters, in order."""
    from sqlalchemy import event

    sent: list[tuple[str, Any]] = []

    def record(_conn: object, _cursor: object, statement: str, parameters: Any, *_args: object) -> None:
        sent.append((statement, parameters))

    engine = sql_backend(store).db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return sent


class RecordingProgress:
    """A progress object (the copier's ``Progress``) that records each phase, its total and how far
    it advanced."""

    def __init__(self) -> None:
        self.phases: list[list[object]] = []

    def start(self, phase: str, total: int | None) -> None:
        self.phases.append([phase, total, 0])

    def advance(self, amount: int = 1) -> None:
        self.phases[-1][2] += amount  # type: ignore[operator]
