"""The few backend names core itself needs, in one place.

Core names no backend package; everything backend-specific (URL examples,
hints, sample data) comes from the plugin that owns the scheme.  These are
the exceptions, and why:

- the embedded default store, used when nothing is configured;
- the backup format: ``copy`` backs a destination up as a tributestore JSON
  directory, and ``check`` recognises one by its top-level entries.
"""

from __future__ import annotations

#: The scheme and file name of the embedded default store (see :mod:`tributestore.config`).
DEFAULT_SCHEME = "sqlite"
DEFAULT_FILE = "tributestore.db"
#: Example URLs for help texts: the default backend (a file in the working directory) and a
#: legacy THGBot data directory, the usual source of a copy.  ``tributestore backends`` shows
#: every installed backend's own example.
EXAMPLE_URL = f"{DEFAULT_SCHEME}:///thg.db"
LEGACY_EXAMPLE_URL = "thgbot:///config"

#: The backend a backup is written with (its URL scheme).
BACKUP_SCHEME = "json"
#: Top-level entries a JSON store (hence a backup) directory may hold, besides the backup manifest.
BACKUP_STORE_ENTRIES = frozenset({"tributestore.json", "guilds", "blobs", "tombstones", "journal.json"})
