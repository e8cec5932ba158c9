"""A PostgreSQL server for the tests, found or started by the tests themselves.

:func:`provide` tries, in order:

1. ``TRIBUTESTORE_TEST_POSTGRES_URL``: that server (it must answer);
2. the local server, ``TRIBUTESTORE_TEST_POSTGRES_LOCAL`` (default
   ``postgresql://postgres@127.0.0.1:5432/test``), when it answers; its database is
   created when missing;
3. a throwaway server started from the installed binaries (``initdb``/``pg_ctl`` on
   PATH, from ``pg_config --bindir`` or under ``/usr/lib/postgresql/*/bin``) in a
   temporary directory, on a free port of 127.0.0.1, trust auth.  ``initdb`` refuses
   to run as root, so as root the server runs as the ``postgres`` user (or ``nobody``).

When none works it raises :class:`NoServer` with one line saying how to provide one.

:func:`prepare` (called by conftest.py once the tests are selected) does this once per
session when a selected test uses the ``server_url`` fixture, keeps the server for the
session, and otherwise skips those tests with that one line (:func:`fold_skip` makes it
one ``-ra`` line per test file); under ``CI=true`` it ends the run with that line as a failure.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

URL_VARIABLE = "TRIBUTESTORE_TEST_POSTGRES_URL"
LOCAL_VARIABLE = "TRIBUTESTORE_TEST_POSTGRES_LOCAL"
LOCAL_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
DATABASE = "test"
HOW_TO = (
    f"set {URL_VARIABLE}=postgresql://user@host:port/database, start a local server on "
    "127.0.0.1:5432 (bash scripts/ensure-postgres.sh), or install the PostgreSQL server "
    "binaries (initdb, pg_ctl; Debian: apt-get install postgresql)"
)
#: Options of tributestore's URLs that libpq does not know.
_STORE_OPTIONS = frozenset({"schema", "timeout", "fts"})


class NoServer(RuntimeError):
    """No PostgreSQL server could be found or started; the message is one line."""


def _libpq_url(url: str, **replace: str) -> str:
    """``url`` as libpq takes it: postgresql://, no store options, ``replace`` applied to the path."""
    parts = urlsplit(url)
    scheme = "postgresql"
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k not in _STORE_OPTIONS])
    path = f"/{replace['dbname']}" if "dbname" in replace else parts.path
    return urlunsplit((scheme, parts.netloc, path, query, ""))


def _display(url: str) -> str:
    """``url`` without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _connect(url: str, timeout: int = 3) -> Any:
    import psycopg

    return psycopg.connect(_libpq_url(url), connect_timeout=timeout, autocommit=True)


def answers(url: str) -> str | None:
    """``None`` when ``url`` accepts a connection, else the (one-line) reason."""
    import psycopg

    try:
        _connect(url).close()
    except psycopg.Error as error:
        return " ".join(str(error).split())
    return None


def ensure_database(url: str) -> bool:
    """Connect to ``url``'s server, creating its database if missing; False when the server is unreachable."""
    import psycopg
    from psycopg import sql

    if answers(url) is None:
        return True
    dbname = urlsplit(url).path.lstrip("/") or DATABASE
    try:
        with _connect(_libpq_url(url, dbname="postgres")) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    except psycopg.Error:
        return False
    return answers(url) is None


def find_binaries() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, or None."""
    candidates: list[Path] = []
    if (initdb := shutil.which("initdb")) and shutil.which("pg_ctl"):
        candidates.append(Path(initdb).parent)
    if pg_config := shutil.which("pg_config"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True)
            candidates.append(Path(out.stdout.strip()))
    versioned = glob.glob("/usr/lib/postgresql/*/bin") + glob.glob("/usr/pgsql-*/bin")
    versioned.sort(key=lambda p: [int(n) for n in re.findall(r"\d+", Path(p).parent.name)], reverse=True)
    candidates += map(Path, versioned)
    for directory in candidates:
        if all(os.access(directory / name, os.X_OK) for name in ("initdb", "pg_ctl")):
            return directory
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _unprivileged_user() -> pwd.struct_passwd | None:
    """The user the server runs as: None (this one) unless running as root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise NoServer("initdb refuses root and neither a 'postgres' nor a 'nobody' user exists")


@contextlib.contextmanager
def throwaway_server(bindir: Path) -> Iterator[str]:
    """Start a temporary server from ``bindir``'s binaries; yield its URL; stop and delete it."""
    user = _unprivileged_user()
    base = Path(tempfile.mkdtemp(prefix="tributestore-pg-"))
    data, log = base / "data", base / "server.log"
    run_as: dict[str, object] = {}
    if user is not None:
        os.chown(base, user.pw_uid, user.pw_gid)
        run_as = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
    env = {**os.environ, "HOME": str(base), "LC_ALL": "C"}

    def run(*args: str) -> None:
        command = [str(bindir / args[0]), *args[1:]]
        done = subprocess.run(command, cwd=base, env=env, capture_output=True, text=True, **run_as)
        if done.returncode:
            output = " ".join((done.stderr or done.stdout).split())[-400:]
            if log.exists():
                output += " | log: " + " ".join(log.read_text(errors="replace").split())[-400:]
            raise NoServer(f"the throwaway server's {args[0]} {args[1]} failed ({bindir}): {output}")

    started = False
    try:
        run("initdb", "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "-N")
        for attempt in range(3):  # the free port may be taken before the server binds it
            port = _free_port()
            options = f"-h 127.0.0.1 -p {port} -k {base} -c fsync=off"
            try:
                run("pg_ctl", "start", "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60")
            except NoServer:
                if attempt == 2:
                    raise
            else:
                break
        started = True
        url = f"postgresql://postgres@127.0.0.1:{port}/{DATABASE}"
        if not ensure_database(url):
            raise NoServer(f"the throwaway server on port {port} does not answer: {answers(url)}")
        yield url
    finally:
        if started:
            with contextlib.suppress(NoServer):
                run("pg_ctl", "stop", "-D", str(data), "-m", "immediate", "-w", "-t", "60")
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def provide() -> Iterator[str]:
    """Yield the URL of a server for the tests (see the module docstring); raise :class:`NoServer`."""
    if explicit := os.environ.get(URL_VARIABLE, "").strip():
        if (reason := answers(explicit)) is not None:
            raise NoServer(f"{URL_VARIABLE}={_display(explicit)} does not answer: {reason}")
        yield explicit
        return
    local = os.environ.get(LOCAL_VARIABLE, "").strip() or LOCAL_DEFAULT
    if ensure_database(local):
        yield local
        return
    bindir = find_binaries()
    if bindir is None:
        raise NoServer(f"no PostgreSQL server: {local} does not answer, initdb/pg_ctl are missing; {HOW_TO}")
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(throwaway_server(bindir))
        except NoServer as error:
            raise NoServer(f"no PostgreSQL server: {local} does not answer and {error}; {HOW_TO}") from None
        yield url


_URL = pytest.StashKey[str]()
_REASON = pytest.StashKey[str]()
_FOLD = pytest.StashKey[bool]()


def in_ci() -> bool:
    """``CI`` is set to a true value (CI services set ``CI=true``)."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}


def _start(config: pytest.Config) -> None:
    if _URL in config.stash or _REASON in config.stash:
        return
    if importlib.util.find_spec("psycopg") is None:
        config.stash[_REASON] = "the PostgreSQL tests need psycopg: pip install tributestore[postgres]"
        return
    stack = contextlib.ExitStack()
    try:
        config.stash[_URL] = stack.enter_context(provide())
    except NoServer as error:
        config.stash[_REASON] = str(error)
    else:
        config.add_cleanup(stack.close)


def _give_up(reason: str) -> None:
    pytest.exit(f"PostgreSQL tests (CI=true): {reason}", returncode=pytest.ExitCode.TESTS_FAILED)


def prepare(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Provide the server when a selected test uses ``server_url``; else skip those tests (CI: fail)."""
    needing = [item for item in items if "server_url" in getattr(item, "fixturenames", ())]
    if not needing:
        return
    _start(config)
    if (reason := config.stash.get(_REASON, None)) is not None:
        if in_ci():
            _give_up(reason)
        for item in needing:
            item.add_marker(pytest.mark.skip(reason=reason))
            item.stash[_FOLD] = True


def fold_skip(item: pytest.Item, report: pytest.TestReport) -> None:
    """Report the skips :func:`prepare` added at the test file, no line: ``-ra`` shows one line per file."""
    if item.stash.get(_FOLD, False) and report.skipped and isinstance(report.longrepr, tuple):
        report.longrepr = (str(item.path), None, report.longrepr[2])


def session_url(config: pytest.Config) -> str:
    """The server's URL for the ``server_url`` fixture (started here if :func:`prepare` did not run)."""
    _start(config)
    if (reason := config.stash.get(_REASON, None)) is not None:
        if in_ci():
            _give_up(reason)
        pytest.skip(reason)
    return config.stash[_URL]
