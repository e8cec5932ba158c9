"""Store URLs: ``scheme:///relative/path``, ``scheme:////absolute/path``, ``?key=value`` options.

The path convention is SQLAlchemy's for SQLite, used by every file-based
backend: after ``scheme:///`` comes the path, absolute when it starts with
``/``.  A relative path resolves against ``base_dir`` (the directory of the
config file that named it, else the current directory).

A path keeps every character: ``?`` starts the options and ``#`` is refused,
so a path holding either is written percent-encoded (``%3F``, ``%23``; a
``%`` itself is ``%25``).  Percent escapes in the path are decoded.

Every URL is opened in a *mode* (:data:`OpenMode`): ``"read"`` (the store must
already exist: copy and verify sources, backups being restored, read-only
commands) or ``"write"`` (the store may be created on first use: a bot's
``open_store()``, a copy destination).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from .errors import ConfigError, StoreNotFoundError

#: How a store is opened: ``read`` never creates anything, ``write`` may create the store.
OpenMode = Literal["read", "write"]
OPEN_MODES: tuple[OpenMode, ...] = ("read", "write")

_SCHEME_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")
_PASSWORD_RE = re.compile(r"(://[^:/@?#\s]*):[^@/?#\s]*@")
MAX_SECONDS = 24 * 3600


def mask_password(raw: str) -> str:
    """The URL (and any URL nested in its options) with passwords shown as ``***``, for messages."""
    return _PASSWORD_RE.sub(r"\1:***@", unquote(raw))


@dataclass(frozen=True)
class StoreURL:
    """A parsed store URL, as handed to a backend's opener."""

    raw: str
    scheme: str
    #: ``scheme:///path`` part: '' when the URL has none (``composite:``).
    path: str = ""
    #: Network location for server URLs (``postgresql://user@host:5432/db``).
    netloc: str = ""
    options: dict[str, str] = field(default_factory=dict)
    base_dir: Path = field(default_factory=Path.cwd)
    #: ``read``: the store must exist, and nothing may be created; ``write``: may be created.
    mode: OpenMode = "write"

    @property
    def must_exist(self) -> bool:
        """Whether the opener must refuse (with :meth:`missing`) a store that does not exist yet."""
        return self.mode == "read"

    def missing(self, what: str, path: Path | None = None) -> StoreNotFoundError:
        """The error for a store opened for reading that does not exist (nothing was created).

        Names the path as resolved and, for a relative path whose absolute
        twin exists (``json:///srv/x`` typed for ``/srv/x``), the URL meant;
        for any other relative path, the directory it was resolved against.
        """
        if path is None:
            return StoreNotFoundError(f"store {self.display!r} does not exist ({what}); nothing was created")
        resolved = path.absolute()
        message = f"store {self.display!r}: {what}: {resolved} does not exist; nothing was created"
        if not Path(self.path).is_absolute():
            absolute = Path("/") / self.path
            if absolute.exists():  # three slashes typed for four: the likely mistake
                hint = f"{self.scheme}:////{quote_path(str(absolute).lstrip('/'))}"
                message += f" (did you mean the absolute path {absolute}? write {hint})"
            else:  # the path as looked for; never a guess at a root-level twin that is not there
                message += (
                    f" (a relative path, taken from {self.base_dir.absolute()}; "
                    "an absolute path takes four slashes)"
                )
        return StoreNotFoundError(message)

    @property
    def display(self) -> str:
        """The URL for messages: decoded, passwords masked."""
        return mask_password(self.raw)

    @property
    def backend(self) -> str:
        """The scheme without a driver suffix: ``postgresql+psycopg`` -> ``postgresql``."""
        return self.scheme.split("+", 1)[0]

    def local_path(self) -> Path:
        """The filesystem path this URL names, resolved against ``base_dir``."""
        if self.netloc:
            host = mask_password(f"x://{self.netloc}")[4:]
            raise ConfigError(
                f"store URL {self.display!r} has a host part {host!r}, which a file store cannot use: "
                f"write {self.scheme}:///{host}{'/' + self.path if self.path else ''} (relative) "
                f"or {self.scheme}:////abs/path (absolute)"
            )
        if not self.path:
            raise ConfigError(f"store URL {self.display!r} names no path (expected {self.scheme}:///path)")
        path = Path(self.path)
        return path if path.is_absolute() else (self.base_dir / path)

    def check_options(self, known: tuple[str, ...], backend: str) -> None:
        """Refuse options the backend does not know, naming the path that would have been opened.

        An unknown option is most often part of a path cut at a ``?``: never
        open the shortened path silently.
        """
        unknown = sorted(set(self.options) - set(known))
        if not unknown:
            return
        where = ""
        if self.path and not self.netloc:
            where = f"; the path would be {self.local_path().absolute()}"
        raise ConfigError(
            f"store URL {self.display!r}: unknown option {unknown[0]!r} for the {backend} backend "
            f"(known: {', '.join(known) or 'none'}){where}; a '?' or '#' in a path is written %3F or %23"
        )

    def option(self, key: str, default: str | None = None) -> str | None:
        return self.options.get(key, default)

    def seconds(self, key: str, default: float) -> float:
        """A duration option in seconds, from 0 to one day."""
        value = self.options.get(key)
        if value is None:
            return default
        try:
            seconds = float(value)
        except ValueError:
            seconds = -1.0
        if not 0 <= seconds <= MAX_SECONDS:  # also refuses nan and inf
            raise ConfigError(
                f"store URL {self.display!r}: {key}={value!r} is not a number of seconds (0-{MAX_SECONDS})"
            )
        return seconds

    def flag(self, key: str, default: bool = False) -> bool:
        """A boolean option: 1/true/yes/on or 0/false/no/off."""
        value = self.options.get(key)
        if value is None:
            return default
        lowered = value.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"store URL {self.display!r}: option {key}={value!r} is not a boolean")


def quote_path(path: str) -> str:
    """A path as written in a store URL: ``%``, ``?`` and ``#`` percent-encoded."""
    return path.replace("%", "%25").replace("?", "%3F").replace("#", "%23")


def path_url(scheme: str, path: Path | str) -> str:
    """The store URL of a filesystem path (``scheme:////abs`` for an absolute one)."""
    return f"{scheme}:///{quote_path(str(path))}"


def parse_store_url(
    url: str,
    base_dir: Path | None = None,
    extra_options: dict[str, str] | None = None,
    *,
    mode: OpenMode = "write",
) -> StoreURL:
    """Split a store URL; raise :class:`ConfigError` naming it when it has no scheme."""
    if mode not in OPEN_MODES:
        raise ConfigError(f"open mode must be 'read' or 'write' (got {str(mode)[:40]!r})")
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"store URL must be a non-empty string (got {url!r})")
    url = url.strip()
    match = _SCHEME_RE.match(url)
    if not match or len(match.group(1)) == 1:  # 'C:' is a Windows drive, not a scheme
        raise ConfigError(
            f"store URL {mask_password(url)!r} has no scheme: write e.g. sqlite:///thg.db or json:///data"
        )
    scheme = match.group(1).lower()
    if "#" in url:
        raise ConfigError(
            f"store URL {mask_password(url)!r} contains '#': a '#' in a path or option is written %23"
        )
    rest = url[match.end() :]
    query = ""
    if "?" in rest:
        rest, query = rest.split("?", 1)
    netloc = ""
    path = ""
    if rest.startswith("///"):
        path = rest[3:]
    elif rest.startswith("//"):
        parts = urlsplit(url)
        netloc, path = parts.netloc, parts.path.lstrip("/")
    else:
        path = rest
    path = unquote(path)
    if "\x00" in path:
        raise ConfigError(f"store URL {mask_password(url)!r} contains a NUL byte")
    options: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in options:  # which one was meant is not for us to guess
            raise ConfigError(f"store URL {mask_password(url)!r} gives option {key!r} twice; give it once")
        options[key] = value
    for key, value in (extra_options or {}).items():
        if key in options and options[key] != value:
            raise ConfigError(
                f"option {key!r} is given both in the store URL {mask_password(url)!r} and beside it "
                "(a config file's [store] key); give it once"
            )
        options[key] = value
    return StoreURL(
        raw=url,
        scheme=scheme,
        path=path,
        netloc=netloc,
        options=options,
        base_dir=base_dir or Path.cwd(),
        mode=mode,
    )


#: Schemes whose URL path names a local file or directory (the built-in file stores).
FILE_SCHEMES = frozenset({"sqlite", "json", "thgbot"})
#: Schemes of a database server: a database (and schema) on a host.
SERVER_SCHEMES = frozenset({"postgresql", "postgres"})


def same_place(first: StoreURL, second: StoreURL) -> bool:
    """Whether two URLs name one store: the same file or directory of the built-in file
    stores (however spelled, symlinks followed, whatever the schemes), or the same
    PostgreSQL database and schema (whoever connects).  An in-memory store is never the
    same place as another.  Any other scheme (a plugin's): the same scheme, host part and
    options with paths that differ only in spelling (``a/`` and ``a``, ``./a``) name one."""
    schemes = {first.backend, second.backend}
    if schemes <= SERVER_SCHEMES:
        return _server_place(first) == _server_place(second)
    if not schemes & (FILE_SCHEMES | SERVER_SCHEMES):
        named = first.path or first.netloc or first.options
        return bool(named) and (
            first.backend == second.backend
            and first.netloc == second.netloc
            and first.options == second.options
            and _spelled_alike(first, second)
        )
    if not schemes <= FILE_SCHEMES or first.netloc or second.netloc:
        return False
    if not first.path or not second.path or ":memory:" in (first.path, second.path):
        return False
    one, other = first.local_path(), second.local_path()
    if os.path.realpath(one) == os.path.realpath(other):
        return True
    try:  # hard links: two names, one file
        return os.path.samefile(one, other)
    except OSError:  # one of them does not exist (yet)
        return False


def _spelled_alike(first: StoreURL, second: StoreURL) -> bool:
    """Whether two paths of a plugin's URLs are one path spelled two ways (resolved against their
    base directories when relative; a path that is no filesystem path compares as written)."""
    if first.path == second.path and first.base_dir == second.base_dir:
        return True
    if not first.path or not second.path:
        return False

    def resolved(url: StoreURL) -> str:
        path = Path(url.path)
        return os.path.realpath(path if path.is_absolute() else url.base_dir / path)

    return resolved(first) == resolved(second)


def _server_place(url: StoreURL) -> tuple[str, str, str]:
    """Host and port (from the URL, or its ``host``/``port`` options: a socket), database, schema."""
    host = (url.netloc.rpartition("@")[2] or url.options.get("host", "")).lower()
    if ":" not in host.rpartition("]")[2]:
        host += f":{url.options.get('port', '5432')}"
    return (host, url.path, url.options.get("schema", "public"))


def place_of(url: StoreURL) -> dict[str, str] | None:
    """An absolute identity of the store ``url`` names, however it is spelled (what
    :func:`same_place` compares): a file store's resolved path (symlinks followed), a
    PostgreSQL store's host and port, database and schema.  ``None`` for any other store
    (in memory, a plugin's, a composite: see :meth:`BackendRegistry.identity`)."""
    if url.backend in SERVER_SCHEMES:
        host, database, schema = _server_place(url)
        return {"kind": "postgresql", "host": host, "database": database, "schema": schema}
    if url.backend in FILE_SCHEMES and not url.netloc and url.path and url.path != ":memory:":
        return {"kind": "file", "path": os.path.realpath(url.local_path())}
    return None


def same_identity(first: dict[str, object], second: dict[str, object]) -> bool:
    """Whether two identities (:func:`place_of`, a composite's) name one store; two names of
    one file (a hard link) are one store."""
    if first == second:
        return True
    if first.get("kind") != second.get("kind"):
        return False
    if first.get("kind") == "file":
        try:
            return os.path.samefile(str(first.get("path")), str(second.get("path")))
        except OSError:
            return False
    children, others = first.get("children"), second.get("children")
    if isinstance(children, dict) and isinstance(others, dict) and set(children) == set(others):
        return all(same_identity(children[name], others[name]) for name in children)
    return False


def describe_identity(identity: dict[str, object]) -> str:
    """An identity for messages: a path, a database, a composite's children."""
    kind = identity.get("kind")
    if kind == "file":
        return str(identity.get("path"))
    if kind == "postgresql":
        return (
            f"PostgreSQL database {identity.get('database')!s} on {identity.get('host')!s}, "
            f"schema {identity.get('schema')!s}"
        )
    children = identity.get("children")
    if isinstance(children, dict):
        parts = ", ".join(f"{name} {describe_identity(child)}" for name, child in children.items())
        return f"{kind} store ({parts})"
    return str(kind)
