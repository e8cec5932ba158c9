"""Choosing a store by configuration: ``open_store()``.

Where the URL comes from, first match wins:

1. the ``url`` argument;
2. the environment variable ``TRIBUTESTORE_URL``;
3. the ``[store]`` table of a TOML file: the one ``TRIBUTESTORE_CONFIG`` names,
   else ``tributestore.toml`` in the current directory if there is one;
4. the embedded default, an SQLite file ``tributestore.db`` (see :func:`default_store`):
   in ``$SNAP_DATA`` when set (a snap's writable data directory), else in the
   platform's user data directory (``platformdirs``, e.g.
   ``~/.local/share/tributestore``), else in the current directory.  A store
   that already exists at the old default, ``./tributestore.db``, keeps being
   used, with a one-line notice, never replaced by an empty one elsewhere.

In the TOML file, ``url`` names the store and every other key of ``[store]``
is an option for the backend (as ``?key=value`` would be); relative paths
resolve against the file's own directory::

    [store]
    url = "sqlite:///thg.db"
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .defaults import DEFAULT_FILE, DEFAULT_SCHEME
from .errors import ConfigError
from .urls import OPEN_MODES, OpenMode, StoreURL, parse_store_url, path_url

if TYPE_CHECKING:
    from .store import TributeStore

ENV_URL = "TRIBUTESTORE_URL"
ENV_CONFIG = "TRIBUTESTORE_CONFIG"
DEFAULT_CONFIG_FILE = "tributestore.toml"
ENV_SNAP_DATA = "SNAP_DATA"

log = logging.getLogger("tributestore")


@dataclass(frozen=True)
class ResolvedConfig:
    """The URL chosen and where it came from (shown by ``tributestore config``)."""

    url: StoreURL
    source: str
    #: Said once when the store is opened (the old default location still in use).
    notice: str | None = None


def default_store() -> ResolvedConfig:
    """The embedded default store, and which rule chose its place."""
    old = Path.cwd() / DEFAULT_FILE
    snap = os.environ.get(ENV_SNAP_DATA, "").strip()
    if snap:
        place, rule = Path(snap) / DEFAULT_FILE, f"default: ${ENV_SNAP_DATA} (a snap's data directory)"
    else:
        import platformdirs  # local: only the default store needs it

        try:
            place = platformdirs.user_data_path("tributestore") / DEFAULT_FILE
            rule = "default: the user data directory (platformdirs)"
        except Exception:  # noqa: BLE001 - no home directory: the working directory is left
            place, rule = old, "default: the working directory (no user data directory)"
    notice = None
    if old.is_file() and old.absolute() != place.absolute():
        notice = (
            f"using the existing store {old.absolute()} at the old default location (the working "
            f"directory); a new install would use {place}"
        )
        place, rule = old, "default: the existing store in the working directory (the old default location)"
    return ResolvedConfig(parse_store_url(path_url(DEFAULT_SCHEME, place.absolute())), rule, notice)


def _read_toml_store(path: Path) -> tuple[str, dict[str, str]]:
    import tomllib  # local: only a config file needs it

    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except OSError as error:
        raise ConfigError(f"config file {path}: cannot read it: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path}: invalid TOML: {error}") from None
    table = document.get("store")
    if not isinstance(table, dict):
        raise ConfigError(f"config file {path}: no [store] table")
    url = table.get("url")
    if not isinstance(url, str) or not url:
        raise ConfigError(f"config file {path}: [store] url must be a non-empty string (got {url!r})")
    options: dict[str, str] = {}
    for key, value in table.items():
        if key == "url":
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        if not isinstance(value, str | int | float):
            raise ConfigError(f"config file {path}: [store] {key} must be a string or number (got {value!r})")
        options[key] = str(value)
    return url, options


def resolve_config(url: str | None = None, config_file: str | Path | None = None) -> ResolvedConfig:
    """Find the store URL by the rules above, without opening anything."""
    if url is not None:  # only None means "not given": an empty or false value is a mistake, said
        return ResolvedConfig(parse_store_url(url), "argument")
    if config_file is not None and (
        not isinstance(config_file, str | os.PathLike) or not str(os.fspath(config_file)).strip()
    ):
        raise ConfigError(
            f"config_file must be the path of a TOML file (got {str(config_file)[:60]!r}, "
            f"a {type(config_file).__name__})"
        )
    env_url = os.environ.get(ENV_URL, "").strip()
    if env_url:
        return ResolvedConfig(parse_store_url(env_url), f"environment variable {ENV_URL}")
    named = config_file or os.environ.get(ENV_CONFIG, "").strip() or None
    if named is not None:
        path = Path(named)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
    else:
        path = Path(DEFAULT_CONFIG_FILE)
        if not path.is_file():
            return default_store()
    raw_url, options = _read_toml_store(path)
    base_dir = path.resolve().parent
    return ResolvedConfig(parse_store_url(raw_url, base_dir, options), f"config file {path}")


def open_url(url: StoreURL, mode: OpenMode | None = None) -> TributeStore:
    """Open a parsed URL with the backend that claims its scheme (in ``mode``, default the URL's)."""
    if mode is not None and mode not in OPEN_MODES:
        raise ConfigError(f"open mode must be 'read' or 'write' (got {str(mode)[:40]!r})")
    from .plugins import registry  # local: ``tributestore config`` resolves without loading plugins

    return registry().open(url, mode)


def open_store(
    url: str | None = None, *, config_file: str | Path | None = None, mode: OpenMode = "write"
) -> TributeStore:
    """Open the configured store (see the module docstring for the rules).

    ``mode="write"`` (a bot's default) creates the store on first use and logs
    where; ``mode="read"`` refuses, with :class:`~tributestore.errors.StoreNotFoundError`
    naming the resolved path, a store that does not exist, and creates nothing.
    """
    resolved = resolve_config(url, config_file)
    if resolved.notice:
        log.warning("%s", resolved.notice)
    return open_url(resolved.url, mode)
