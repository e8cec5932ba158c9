"""tributestore: plugin-based storage for THGBot tributes, inventories, prompts and files."""

from .config import open_store
from .errors import (
    AlreadyExistsError,
    CapacityError,
    ConfigError,
    CorruptDataError,
    InvalidInputError,
    LegacyFormatError,
    LockTimeoutError,
    NotFoundError,
    ReadOnlyStoreError,
    SchemaVersionError,
    StorageError,
    StoreNotFoundError,
    TributeStoreError,
    UnknownBackendError,
    VerificationError,
)
from .hookspecs import BackendSpec, hookimpl
from .models import Counts, FileInfo, Guild, Inventory, ItemHit, Prompt, Tribute, TributeBundle
from .store import TributeStore
from .urls import StoreURL

__version__ = "0.1.0"

__all__ = [
    "AlreadyExistsError",
    "BackendSpec",
    "CapacityError",
    "ConfigError",
    "CorruptDataError",
    "Counts",
    "FileInfo",
    "Guild",
    "InvalidInputError",
    "Inventory",
    "ItemHit",
    "LegacyFormatError",
    "LockTimeoutError",
    "NotFoundError",
    "Prompt",
    "ReadOnlyStoreError",
    "SchemaVersionError",
    "StorageError",
    "StoreNotFoundError",
    "StoreURL",
    "Tribute",
    "TributeBundle",
    "TributeStore",
    "TributeStoreError",
    "UnknownBackendError",
    "VerificationError",
    "__version__",
    "hookimpl",
    "open_store",
]
