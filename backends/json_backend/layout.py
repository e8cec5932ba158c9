"""Where everything lives inside a JSON store directory.

::

    <root>/tributestore.json                      marker: format and schema version
    <root>/.lock                                  store-wide write lock (flock)
    <root>/.lock.queue                            the writers' queue in front of it (FairLock)
    <root>/.generation                            commit counter: odd while a commit touches files
    <root>/journal.json                           only while a commit is in flight
    <root>/guilds/<guild_id>/guild.json           the guild and its settings
    <root>/guilds/<guild_id>/tributes/<ID>.json   a tribute with inventory, prompt, file list
    <root>/blobs/<sha[:2]>/<sha>                  file bytes, content-addressed
    <root>/blobs/<sha[:2]>/<sha>.refs/<ref>       one marker per (guild, tribute, file name)
    <root>/tombstones/<guild_id>/<ID>             a composite primary's record of a deleted fallback tribute
    <root>/tombstones/origins/<sha256>            the same, by the fallback record's own (origin) key

Only validated ids and hex digests ever become path components (file names
never do), and every path built is checked to stay inside the root.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from tributestore.errors import StorageError

MARKER_NAME = "tributestore.json"
LOCK_NAME = ".lock"
#: Commit counter lock-free readers validate against (odd while a commit is writing files).
GENERATION_NAME = ".generation"
JOURNAL_NAME = "journal.json"
GUILDS_DIR = "guilds"
BLOBS_DIR = "blobs"
GUILD_FILE = "guild.json"
TRIBUTES_DIR = "tributes"
TRIBUTE_SUFFIX = ".json"
REFS_SUFFIX = ".refs"
TOMBSTONES_DIR = "tombstones"
#: Under ``tombstones/``: deleted fallback records named by their origin key (not a guild id).
ORIGINS_DIR = "origins"

FORMAT_NAME = "tributestore-json"
SCHEMA_VERSION = 1

_SAFE_PART_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
SHA_RE = re.compile(r"^[0-9a-f]{64}$")
TRIBUTE_ID_RE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,63}$")


def list_dir(directory: Path) -> set[str]:
    """The names of ``directory``'s entries, hidden ones (``.``) left out; empty when it is gone."""
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return set()
    except OSError as error:
        raise StorageError(f"cannot list {directory}: {error.strerror}") from None
    return {name for name in names if not name.startswith(".")}


def ref_name(guild_id: int, tribute_id: str, name: str) -> str:
    """A path-safe, collision-free marker name for one (guild, tribute, file name) owner."""
    key = f"{guild_id}\x00{tribute_id}\x00{name}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(key).hexdigest()


class Layout:
    """Builds (and checks) every path of a store rooted at ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.realpath(root))
        self._root_str = str(self.root)
        self.marker = self.root / MARKER_NAME
        self.lock = self.root / LOCK_NAME
        self.generation = self.root / GENERATION_NAME
        self.journal = self.root / JOURNAL_NAME
        self.guilds = self.root / GUILDS_DIR
        self.blobs = self.root / BLOBS_DIR

    # ----------------------------------------------------------- checking
    def inside(self, path: Path) -> Path:
        """``path`` itself, after checking it resolves inside the root."""
        resolved = os.path.realpath(path)
        if resolved != self._root_str and not resolved.startswith(self._root_str + os.sep):
            raise StorageError(f"refusing path {path}: it resolves outside the store {self.root}")
        return path

    def _join(self, *parts: str) -> Path:
        for part in parts:
            if not _SAFE_PART_RE.match(part) or part in (".", ".."):
                raise StorageError(f"refusing unsafe path component {part!r} in store {self.root}")
        return self.inside(self.root.joinpath(*parts))

    def rel(self, path: Path) -> str:
        """``path`` relative to the root, with ``/`` separators (for messages and the journal)."""
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def from_rel(self, rel: str) -> Path:
        """The path a journal entry names, checked to be inside the root."""
        if not isinstance(rel, str) or not rel or rel.startswith("/") or "\x00" in rel:
            raise StorageError(f"refusing journal path {rel!r} in store {self.root}")
        parts = rel.split("/")
        if any(part in ("", ".", "..") or "\\" in part for part in parts):
            raise StorageError(f"refusing journal path {rel!r} in store {self.root}")
        return self.inside(self.root.joinpath(*parts))

    # -------------------------------------------------------------- paths
    def guild_file(self, guild_id: int) -> Path:
        return self._join(GUILDS_DIR, str(int(guild_id)), GUILD_FILE)

    def tributes_dir(self, guild_id: int) -> Path:
        return self._join(GUILDS_DIR, str(int(guild_id)), TRIBUTES_DIR)

    def tribute_file(self, guild_id: int, tribute_id: str) -> Path:
        if not TRIBUTE_ID_RE.match(tribute_id):
            raise StorageError(f"refusing unsafe tribute id {tribute_id!r} in store {self.root}")
        return self._join(GUILDS_DIR, str(int(guild_id)), TRIBUTES_DIR, tribute_id + TRIBUTE_SUFFIX)

    def tombstone_file(self, guild_id: int, tribute_id: str) -> Path:
        """``tombstones/<guild_id>/<TRIBUTE_ID>``: the fallback copy of that tribute is deleted."""
        if not TRIBUTE_ID_RE.match(tribute_id):
            raise StorageError(f"refusing unsafe tribute id {tribute_id!r} in store {self.root}")
        return self._join(TOMBSTONES_DIR, str(int(guild_id)), tribute_id)

    def origin_tombstone_file(self, origin_key: str) -> Path:
        """``tombstones/origins/<sha256 of the key>``: a fallback record deleted by its own key."""
        digest = hashlib.sha256(origin_key.encode("utf-8", "surrogatepass")).hexdigest()
        return self._join(TOMBSTONES_DIR, ORIGINS_DIR, digest)

    def _check_sha(self, sha: str) -> str:
        if not SHA_RE.match(sha):
            raise StorageError(f"refusing blob name {sha!r} in store {self.root}: not a sha256 digest")
        return sha

    def blob_file(self, sha: str) -> Path:
        sha = self._check_sha(sha)
        return self._join(BLOBS_DIR, sha[:2], sha)

    def refs_dir(self, sha: str) -> Path:
        sha = self._check_sha(sha)
        return self._join(BLOBS_DIR, sha[:2], sha + REFS_SUFFIX)

    def ref_file(self, sha: str, guild_id: int, tribute_id: str, name: str) -> Path:
        sha = self._check_sha(sha)
        return self._join(BLOBS_DIR, sha[:2], sha + REFS_SUFFIX, ref_name(guild_id, tribute_id, name))

    def kind_rank(self, path: Path) -> int:
        """Commit order: blobs (0), blob refs (1), guild files (2), tribute files and the rest (3).

        Writes are applied in increasing rank and deletions in decreasing rank,
        so a lock-free reader never sees a tribute naming a blob not yet there.
        """
        rel = self.rel(path)
        if rel.startswith(BLOBS_DIR + "/"):
            return 1 if path.parent.name.endswith(REFS_SUFFIX) else 0
        if path.name == GUILD_FILE:
            return 2
        return 3
