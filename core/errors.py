"""The library's exception hierarchy.

Every error the library raises on purpose derives from :class:`TributeStoreError`,
so a caller (the CLI, a bot) can catch that one class and show ``str(error)``:
messages are one line and name the field, key, file or value at fault.
"""

from __future__ import annotations


class TributeStoreError(Exception):
    """Base class of every error raised by tributestore."""

    #: Process exit code the CLI uses for this kind of error.
    exit_code: int = 1


class InvalidInputError(TributeStoreError, ValueError):
    """A value was rejected before anything was written (bad id, wrong type, ...)."""

    exit_code = 2


class NotFoundError(TributeStoreError, LookupError):
    """The guild, tribute, prompt, file or item asked for does not exist."""

    exit_code = 3


class StoreNotFoundError(NotFoundError):
    """A store opened for reading does not exist; nothing was created. The message names the path."""


class AlreadyExistsError(TributeStoreError):
    """Creating something that already exists (same guild and id, same file name)."""

    exit_code = 4


class CapacityError(TributeStoreError):
    """An inventory or equipped slot limit would be exceeded."""

    exit_code = 4


class ReadOnlyStoreError(TributeStoreError):
    """A write was attempted on a store opened read-only (e.g. a legacy directory)."""

    exit_code = 4


class ConfigError(TributeStoreError):
    """The configuration (URL, environment variable, TOML file) is unusable."""

    exit_code = 2


class UnknownBackendError(ConfigError):
    """A URL names a backend no installed plugin provides."""


class StorageError(TributeStoreError):
    """The backend could not read or write its data (I/O error, locked, corrupt)."""

    exit_code = 5


class LockTimeoutError(StorageError):
    """A write lock was not obtained within the configured timeout; the message names the lock."""


class CorruptDataError(StorageError):
    """Stored data exists but cannot be understood; the message names the file or table."""


class SchemaVersionError(StorageError):
    """The stored data has a schema version this code cannot handle."""


class LegacyFormatError(TributeStoreError):
    """A legacy THGBot file is malformed; the message names the file and key."""

    exit_code = 6


class VerificationError(TributeStoreError):
    """Source and destination differ after a copy or on ``verify``."""

    exit_code = 7
