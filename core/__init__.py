"""tributestore: plugin-based storage for THGBot tributes, inventories, prompts and files.

``import tributestore`` is cheap: only the exceptions are loaded with the
package; every other public name is imported on first use (PEP 562), so a
process pays for pydantic, pluggy and a backend only when it uses them (a bot
calls :func:`open_store`, which needs them; ``tributestore --help`` does not).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from .config import open_store
    from .hookspecs import BackendSpec, hookimpl
    from .models import Counts, FileInfo, Guild, Inventory, ItemHit, Prompt, Tribute, TributeBundle
    from .store import TributeStore
    from .urls import StoreURL

__version__ = "0.1.0"

#: The public names imported on first use, and the submodule each comes from.
_LAZY: dict[str, str] = {
    "open_store": "config",
    "BackendSpec": "hookspecs",
    "hookimpl": "hookspecs",
    "Counts": "models",
    "FileInfo": "models",
    "Guild": "models",
    "Inventory": "models",
    "ItemHit": "models",
    "Prompt": "models",
    "Tribute": "models",
    "TributeBundle": "models",
    "TributeStore": "store",
    "StoreURL": "urls",
}


#: Submodules reachable as attributes (``tributestore.models.Tribute`` after ``import tributestore``).
_SUBMODULES = frozenset(
    {"aio", "backend", "backup", "config", "copier", "digest", "hookspecs", "models", "plugins"}
    | {"store", "testing", "urls", "defaults", "fairlock", "cli", "compat", "backends"}
)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


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
