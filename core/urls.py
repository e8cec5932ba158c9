"""Store URLs: ``scheme:///relative/path``, ``scheme:////absolute/path``, ``?key=value`` options.

The path convention is SQLAlchemy's for SQLite, used by every file-based
backend: after ``scheme:///`` comes the path, absolute when it starts with
``/``.  A relative path resolves against ``base_dir`` (the directory of the
config file that named it, else the current directory).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from .errors import ConfigError

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
        if not self.path:
            raise ConfigError(f"store URL {self.display!r} names no path (expected {self.scheme}:///path)")
        path = Path(self.path)
        return path if path.is_absolute() else (self.base_dir / path)

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


def parse_store_url(
    url: str, base_dir: Path | None = None, extra_options: dict[str, str] | None = None
) -> StoreURL:
    """Split a store URL; raise :class:`ConfigError` naming it when it has no scheme."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(f"store URL must be a non-empty string (got {url!r})")
    url = url.strip()
    match = _SCHEME_RE.match(url)
    if not match or len(match.group(1)) == 1:  # 'C:' is a Windows drive, not a scheme
        raise ConfigError(
            f"store URL {mask_password(url)!r} has no scheme: write e.g. sqlite:///thg.db or json:///data"
        )
    scheme = match.group(1).lower()
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
    if "\x00" in path:
        raise ConfigError(f"store URL {mask_password(url)!r} contains a NUL byte")
    options = dict(parse_qsl(query, keep_blank_values=True))
    options.update(extra_options or {})
    return StoreURL(
        raw=url,
        scheme=scheme,
        path=path,
        netloc=netloc,
        options=options,
        base_dir=base_dir or Path.cwd(),
    )
