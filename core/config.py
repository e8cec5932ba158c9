"""Choosing a store by configuration: ``open_store()``.

Where the URL comes from, first match wins:

1. the ``url`` argument;
2. the environment variable ``TRIBUTESTORE_URL``;
3. the ``[store]`` table of a TOML file: the one ``TRIBUTESTORE_CONFIG`` names,
   else ``tributestore.toml`` in the current directory if there is one;
4. the embedded default, an SQLite file ``tributestore.db`` in the current directory.

In the TOML file, ``url`` names the store and every other key of ``[store]``
is an option for the backend (as ``?key=value`` would be); relative paths
resolve against the file's own directory::

    [store]
    url = "sqlite:///thg.db"
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError
from .plugins import registry
from .store import TributeStore
from .urls import OPEN_MODES, OpenMode, StoreURL, parse_store_url

ENV_URL = "TRIBUTESTORE_URL"
ENV_CONFIG = "TRIBUTESTORE_CONFIG"
DEFAULT_CONFIG_FILE = "tributestore.toml"
DEFAULT_URL = "sqlite:///tributestore.db"


@dataclass(frozen=True)
class ResolvedConfig:
    """The URL chosen and where it came from (shown by ``tributestore config``)."""

    url: StoreURL
    source: str


def _read_toml_store(path: Path) -> tuple[str, dict[str, str]]:
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
    if url:
        return ResolvedConfig(parse_store_url(url), "argument")
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
            return ResolvedConfig(parse_store_url(DEFAULT_URL), "default")
    raw_url, options = _read_toml_store(path)
    base_dir = path.resolve().parent
    return ResolvedConfig(parse_store_url(raw_url, base_dir, options), f"config file {path}")


def open_url(url: StoreURL, mode: OpenMode | None = None) -> TributeStore:
    """Open a parsed URL with the backend that claims its scheme (in ``mode``, default the URL's)."""
    if mode is not None and mode not in OPEN_MODES:
        raise ConfigError(f"open mode must be 'read' or 'write' (got {str(mode)[:40]!r})")
    return registry().open(url, mode)


def open_store(
    url: str | None = None, *, config_file: str | Path | None = None, mode: OpenMode = "write"
) -> TributeStore:
    """Open the configured store (see the module docstring for the rules).

    ``mode="write"`` (a bot's default) creates the store on first use and logs
    where; ``mode="read"`` refuses, with :class:`~tributestore.errors.StoreNotFoundError`
    naming the resolved path, a store that does not exist, and creates nothing.
    """
    return open_url(resolve_config(url, config_file).url, mode)
