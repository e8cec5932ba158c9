"""The SQL backend's URL checks that need no database library: ``tributestore config`` runs
them (see :func:`check_url`) without importing SQLAlchemy or a driver; the dialects use them
when they open a store."""

from __future__ import annotations

import re
from pathlib import Path

from tributestore.errors import ConfigError
from tributestore.urls import StoreURL

#: SQLite's ``synchronous`` levels a URL may ask for.
SYNCHRONOUS_LEVELS = ("NORMAL", "FULL", "EXTRA")
_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def check_url(url: StoreURL) -> None:
    """The URL's path and option values as opening reads them (:class:`ConfigError`)."""
    url.seconds("timeout", 0.0)
    url.flag("fts", default=True)
    if url.backend in ("postgresql", "postgres"):
        schema_option(url)
        return
    synchronous_level(url)
    database_path(url)


def synchronous_level(url: StoreURL) -> str:
    """The ``synchronous`` option (default ``FULL``), checked."""
    level = (url.option("synchronous") or "FULL").upper()
    if level not in SYNCHRONOUS_LEVELS:
        raise ConfigError(
            f"store URL {url.display!r}: synchronous={level.lower()!r} is not one of "
            f"{', '.join(known.lower() for known in SYNCHRONOUS_LEVELS)}"
        )
    return level


def database_path(url: StoreURL) -> Path | None:
    """The SQLite file, or ``None`` for an in-memory database (only ``sqlite:///:memory:``).

    A path naming a directory is refused in every mode (and by ``tributestore config``): it
    can be no database file, and saying it "does not exist" sent users looking for a typo."""
    if url.path == ":memory:" and not url.netloc:
        return None
    if not url.path and not url.netloc:
        raise ConfigError(
            f"store URL {url.display!r} names no database: write sqlite:///thg.db (relative), "
            "sqlite:////abs/thg.db (absolute), or sqlite:///:memory: for an in-memory one"
        )
    path = url.local_path()
    try:
        directory = path.is_dir()
    except OSError:  # not looked up here: opening says what the system refused
        directory = False
    if directory:
        raise ConfigError(
            f"store URL {url.display!r}: {path.absolute()} is a directory, not an SQLite database "
            "file (an SQLite store is one file: name the file, not its directory); nothing was created"
        )
    return path


def schema_option(url: StoreURL) -> str | None:
    """The ``schema`` option, checked (a plain identifier: it is written into ``search_path``)."""
    value = url.option("schema")
    if value is None:
        return None
    if not _SCHEMA_RE.match(value):
        raise ConfigError(
            f"store URL {url.display!r}: schema={value!r} must be 1-63 characters "
            "a-z, 0-9 or '_', not starting with a digit"
        )
    return value
