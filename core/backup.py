"""Backups a copy makes of its destination, and restoring them.

A backup is a tributestore JSON store directory plus a manifest,
``tributestore-backup.json``, written *last*, after the backup was verified
against the store it was taken from.  The manifest lists the content digest
of every tribute and guild row, so :func:`check_backup` can tell a whole
backup from one a killed copy left half-written (no manifest) or one changed
since (digests differ) before :func:`restore_backup` touches anything.

While a backup is being written, its writer holds an exclusive ``flock`` on
``<backup>/.lock.backup``; :func:`find_incomplete_backups` (``tributestore
check``) thus tells a backup in progress (skipped) from one a killed copy
left behind (named, and removed only on request).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .copier import Progress, SilentProgress
from .defaults import BACKUP_SCHEME, BACKUP_STORE_ENTRIES
from .digest import bundle_digest, file_problems, same_content
from .errors import CorruptDataError, StorageError, VerificationError
from .models import Guild
from .store import TributeStore
from .urls import StoreURL, path_url

#: The manifest file in a backup directory; its presence means the backup is whole.
MANIFEST_NAME = "tributestore-backup.json"
MANIFEST_FORMAT = "tributestore-backup"
MANIFEST_VERSION = 1
#: The directory ``copy`` writes backups into by default (relative to where it runs).
DEFAULT_BACKUP_DIR = "tributestore-backups"
#: Held (flock) by the process writing a backup; its name starts with the JSON store's ``.lock``.
IN_PROGRESS_NAME = ".lock.backup"
#: Written first into a backup: which store it is of, so an incomplete one is told apart from
#: another store's (``check`` names only its own store's).
SOURCE_NAME = ".tributestore-backup-of.json"
#: Top-level entries a backup directory may hold.
_STORE_ENTRIES = BACKUP_STORE_ENTRIES | {MANIFEST_NAME}

if sys.platform != "win32":
    import fcntl


def guild_digest(guild: Guild) -> str:
    return json.dumps(guild.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def _digests(store: TributeStore, progress: Progress | None = None) -> tuple[dict[str, str], dict[str, str]]:
    guilds = {str(guild.guild_id): guild_digest(guild) for guild in store.list_guilds()}
    tributes = {}
    for bundle in store.iter_bundles():
        tributes[f"{bundle.tribute.guild_id}/{bundle.tribute.tribute_id}"] = bundle_digest(bundle)
        if progress is not None:
            progress.advance()
    return guilds, tributes


class _Phases:
    """A progress whose phases are named ``<prefix> <phase>`` (a backup's own copy and verification)."""

    def __init__(self, progress: Progress, prefix: str) -> None:
        self._progress, self._prefix = progress, prefix

    def start(self, phase: str, total: int | None) -> None:
        self._progress.start(f"{self._prefix} {phase}", total)

    def advance(self, amount: int = 1) -> None:
        self._progress.advance(amount)


def backup_store(store: TributeStore, backup_dir: Path, *, progress: Progress | None = None) -> Path:
    """Export ``store`` whole into a new backup directory under ``backup_dir``; return its path.

    ``progress`` hears of the export's phases as ``backup checking``, ``backup copying`` and
    ``backup verifying``."""
    from .config import open_url  # local: config imports the plugins
    from .copier import copy_store

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    target = backup_dir.resolve() / f"backup-{stamp}"
    # A StoreURL built directly: the directory name may hold '?' or '%', which a URL would misread.
    url = StoreURL(raw=path_url(BACKUP_SCHEME, target), scheme=BACKUP_SCHEME, path=str(target))
    with _in_progress(target):
        with open_url(url, "write") as backup:
            _mark_source(target, store)
            report = copy_store(
                store,
                backup,
                on_conflict="fail",
                verify=True,
                progress=_Phases(progress, "backup") if progress is not None else None,
            )
            if report.ok:
                guilds, tributes = _digests(backup)
                _write_manifest(target, store, guilds, tributes)
        if not report.ok:
            # Not a backup, and not an interrupted one either (which ``check`` would call it): gone.
            raise VerificationError(
                f"{store.url} changed while it was being backed up (another process wrote it: is a bot "
                f"running on it?): {report.differences[0]}; nothing was written to it, and "
                f"{_discarded(target)}. Stop what writes to it and run the command again, or pass "
                "--no-backup to go without a backup"
            )
    return target


def _mark_source(target: Path, store: TributeStore) -> None:
    """Record which store the backup is being taken of (best effort: a backup does not need it)."""
    identity = store_identity(store)
    if identity is not None:
        with suppress(OSError):
            (target / SOURCE_NAME).write_text(json.dumps(identity, sort_keys=True) + "\n", encoding="utf-8")


def backup_of(path: Path) -> dict[str, object] | None:
    """Which store the backup at ``path`` was being taken of (``None``: not recorded)."""
    try:
        found = json.loads((path / SOURCE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _discarded(target: Path) -> str:
    """Remove a backup that failed its verification; what became of it, for the error."""
    try:
        shutil.rmtree(target)
    except OSError as error:
        return f"the failed backup {target} could not be removed ({error.strerror}): remove it by hand"
    return f"the backup that failed its verification ({target}) was removed"


@contextmanager
def _in_progress(target: Path) -> Iterator[None]:
    """Create the backup directory and hold its in-progress lock while the backup is written."""
    try:
        target.mkdir(parents=True)
        fd = os.open(target / IN_PROGRESS_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise StorageError(f"cannot create backup directory {target}: {error.strerror}") from None
    try:
        if sys.platform != "win32":
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
        with suppress(OSError):
            (target / IN_PROGRESS_NAME).unlink()
    finally:
        os.close(fd)


def store_identity(store: TributeStore) -> dict[str, object] | None:
    """An absolute identity of the store (a file's resolved path; a PostgreSQL host, database and
    schema; a composite's children), recorded in a backup's manifest so that ``restore`` can
    tell the store a backup was taken of; ``None`` when it is not known (a store built directly,
    or of a plugin's backend)."""
    from .plugins import registry  # local: the plugins import the store

    return registry().identity(store.opened_url) if store.opened_url is not None else None


def _write_manifest(
    target: Path, store: TributeStore, guilds: dict[str, str], tributes: dict[str, str]
) -> None:
    manifest = {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "source": store.url,
        #: Where the store is, however its URL was spelled (``source`` is as it was given).
        "store": store_identity(store),
        "created_at": datetime.now(UTC).isoformat(),
        "guilds": guilds,
        "tributes": tributes,
    }
    _write_last(target / MANIFEST_NAME, json.dumps(manifest, indent=1, sort_keys=True).encode())


def _write_last(path: Path, data: bytes) -> None:
    """Write the manifest durably: temp file, fsync, rename, fsync the directory."""
    temp = path.with_name(f".{path.name}.tmp")
    with temp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    temp.replace(path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


@dataclass
class BackupCheck:
    """What :func:`check_backup` found: ``problems`` empty means safe to restore."""

    verified: bool
    problems: list[str]
    notes: list[str]
    #: The backup's manifest (``None``: it has none).
    manifest: dict[str, Any] | None = None


def read_manifest(root: Path) -> dict[str, Any] | None:
    """The manifest of the backup directory ``root``, or ``None`` when it has none."""
    path = root / MANIFEST_NAME
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise StorageError(f"cannot read {path}: {error.strerror}") from None
    try:
        manifest = json.loads(raw)
    except ValueError as error:
        raise CorruptDataError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise CorruptDataError(f"{path}: not a tributestore backup manifest")
    if not isinstance(manifest.get("guilds"), dict) or not isinstance(manifest.get("tributes"), dict):
        raise CorruptDataError(f"{path}: manifest lacks its guild and tribute digests")
    return manifest


def check_backup(
    backup: TributeStore, root: Path | None, *, accept_unverified: bool, progress: Progress | None = None
) -> BackupCheck:
    """Whether ``backup`` (a directory at ``root``) is whole and unchanged, before any restore.

    Without a manifest the backup is incomplete or older than manifests: it is
    refused unless ``accept_unverified``, and then only when ``check()`` passes.
    ``progress`` hears of two passes over the backup's tributes: ``checking backup`` (their
    digests), then ``checking files`` (their bytes).
    """
    progress = progress or SilentProgress()
    manifest = read_manifest(root) if root is not None else None
    if manifest is None:
        where = root if root is not None else backup.url
        if not accept_unverified:
            return BackupCheck(
                False,
                [
                    f"backup {where} has no {MANIFEST_NAME}: it is incomplete (a copy or restore was "
                    "interrupted while backing up) or was made by an older tributestore "
                    "(--accept-unverified restores an old backup after an integrity check)"
                ],
                [],
            )
        problems = backup.check()
        note = f"backup {where} has no manifest: its completeness cannot be verified"
        return BackupCheck(False, problems, [note] if not problems else [])
    total = backup.counts().tributes
    progress.start("checking backup", total)
    guilds, tributes = _digests(backup, progress)
    problems = _manifest_differences(manifest, guilds, tributes, root)
    progress.start("checking files", total)
    for bundle in backup.iter_bundles():
        problems.extend(file_problems(backup, bundle))
        progress.advance()
        if len(problems) > 20:
            break
    return BackupCheck(True, problems, [], manifest)


def _manifest_differences(
    manifest: dict[str, Any], guilds: dict[str, str], tributes: dict[str, str], root: Path | None
) -> list[str]:
    problems = []
    pairs = (("guild", manifest["guilds"], guilds), ("tribute", manifest["tributes"], tributes))
    for kind, expected, found in pairs:
        for key in sorted(set(expected) | set(found)):
            if key not in found:
                problems.append(f"backup {root}: {kind} {key} listed in its manifest is missing")
            elif key not in expected:
                problems.append(f"backup {root}: {kind} {key} is not in its manifest")
            elif expected[key] != found[key]:
                problems.append(f"backup {root}: {kind} {key} changed since the backup was made")
    return problems


def backup_root(url: StoreURL) -> Path | None:
    """The directory of a backup URL (``None`` for a store that is not a directory)."""
    if url.backend != BACKUP_SCHEME:
        return None
    root = url.local_path()
    if not root.exists():
        raise url.missing("no backup directory", root)
    return root


@dataclass
class IncompleteBackup:
    """A ``backup-*`` directory without its manifest (:func:`find_incomplete_backups`)."""

    path: Path
    #: Another process is writing it right now (its in-progress lock is held): not incomplete yet.
    in_progress: bool
    #: It holds entries no backup holds: never removed by :func:`remove_incomplete_backup`.
    foreign: str | None = None
    #: Which store it was being taken of (:func:`backup_of`; ``None``: not recorded).
    of: dict[str, object] | None = None


def backup_dirs_for(store_path: Path | None, cwd: Path | None = None) -> list[Path]:
    """Where backups of a store are looked for: ``./tributestore-backups`` (where ``copy`` ran,
    its default) and ``tributestore-backups`` beside the store's own file or directory."""
    found: list[Path] = []
    candidates = [(cwd or Path.cwd()) / DEFAULT_BACKUP_DIR]
    if store_path is not None:
        candidates.append(store_path.absolute().parent / DEFAULT_BACKUP_DIR)
    for candidate in candidates:
        resolved = candidate.resolve()
        if resolved not in found:
            found.append(resolved)
    return found


def _held_by_writer(path: Path) -> bool:
    """Whether a live process holds ``path``'s in-progress lock (False when there is none)."""
    if sys.platform == "win32":
        return False
    try:
        fd = os.open(path / IN_PROGRESS_NAME, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def find_incomplete_backups(directories: Iterable[Path]) -> list[IncompleteBackup]:
    """The ``backup-*`` directories in ``directories`` that have no manifest, in name order."""
    result = []
    for directory in directories:
        try:
            entries = sorted(directory.iterdir())
        except OSError:  # missing, or not a directory
            continue
        for path in entries:
            if not path.name.startswith("backup-") or not path.is_dir() or (path / MANIFEST_NAME).exists():
                continue
            foreign = None
            for entry in sorted(os.listdir(path)):
                if entry not in _STORE_ENTRIES and not entry.startswith("."):
                    foreign = entry
                    break
            result.append(IncompleteBackup(path, _held_by_writer(path), foreign, backup_of(path)))
    return result


def remove_incomplete_backup(backup: IncompleteBackup) -> None:
    """Delete an incomplete backup directory (refused when in progress or holding other files)."""
    if backup.in_progress or _held_by_writer(backup.path):
        raise StorageError(f"backup {backup.path} is being written by another process: not removed")
    if backup.foreign is not None or (backup.path / MANIFEST_NAME).exists():
        raise StorageError(f"{backup.path} does not look like an incomplete backup: not removed")
    try:
        shutil.rmtree(backup.path)
    except OSError as error:
        raise StorageError(f"cannot remove {backup.path}: {error.strerror}") from None


@dataclass
class RestoreCounts:
    """What a restore does (or did) to the destination's tributes."""

    deleted: int = 0
    replaced: int = 0
    added: int = 0
    unchanged: int = 0

    def describe(self) -> str:
        return (
            f"{self.deleted} tribute(s) deleted, {self.replaced} replaced, {self.added} added, "
            f"{self.unchanged} unchanged"
        )


@dataclass
class RestoreReport(RestoreCounts):
    """What :func:`restore_backup` did; ``differences`` left (empty on success)."""

    differences: list[str] = field(default_factory=list)


def plan_restore(
    backup: TributeStore, destination: TributeStore | None, *, progress: Progress | None = None
) -> RestoreCounts:
    """What restoring ``backup`` into ``destination`` would do (``None``: a store not created
    yet), tribute by tribute: one merge of both stores' streams, nothing written.  ``progress``
    hears of one phase, ``comparing``, advancing per tribute of the backup."""
    progress = progress or SilentProgress()
    progress.start("comparing", backup.counts().tributes)
    counts = RestoreCounts()
    theirs = destination.iter_bundles() if destination is not None else iter(())
    mine = backup.iter_bundles()
    left, right = next(mine, None), next(theirs, None)
    while left is not None or right is not None:
        if right is None or (left is not None and left.tribute.key < right.tribute.key):
            counts.added += 1
            left = next(mine, None)
            progress.advance()
        elif left is None or right.tribute.key < left.tribute.key:
            counts.deleted += 1
            right = next(theirs, None)
        else:
            if same_content(left, right):
                counts.unchanged += 1
            else:
                counts.replaced += 1
            left, right = next(mine, None), next(theirs, None)
            progress.advance()
    return counts


def restore_backup(
    backup: TributeStore, destination: TributeStore, *, progress: Progress | None = None
) -> RestoreReport:
    """Make ``destination`` equal to ``backup``: tributes not in it are deleted, others overwritten.

    Returns what it did and the differences left (empty on success).  Check the
    backup first with :func:`check_backup`.  ``progress`` (default silent) hears of each
    phase and its total: ``deleting``, then the copy's ``checking`` and ``copying``, then
    ``verifying``.
    """
    from .copier import copy_store, verify_stores

    progress = progress or SilentProgress()
    keep = {t.key for t in backup.iter_tributes()}
    extra = [t.key for t in destination.iter_tributes() if t.key not in keep]
    progress.start("deleting", len(extra))
    with destination.transaction():
        for guild_id, tribute_id in extra:
            destination.delete_tribute(guild_id, tribute_id)
            progress.advance()
    # Equal to the backup: a tribute the destination tombstoned after the backup comes back too
    # (it then lives in the primary, which a composite reads first).
    copied = copy_store(
        backup,
        destination,
        on_conflict="overwrite",
        verify=False,
        progress=progress,
        respect_tombstones=False,
    )
    # Guild rows have no delete operation: a guild the failed copy added stays, empty.
    differences = [
        line
        for line in verify_stores(backup, destination, subset=False, progress=progress)
        if not line.endswith("guild only in destination")
    ]
    return RestoreReport(
        deleted=len(extra),
        replaced=copied.conflicting,
        added=copied.new,
        unchanged=copied.identical,
        differences=differences,
    )


__all__ = [
    "BACKUP_SCHEME",
    "DEFAULT_BACKUP_DIR",
    "MANIFEST_NAME",
    "BackupCheck",
    "IncompleteBackup",
    "RestoreCounts",
    "RestoreReport",
    "backup_dirs_for",
    "backup_root",
    "backup_store",
    "check_backup",
    "find_incomplete_backups",
    "plan_restore",
    "read_manifest",
    "remove_incomplete_backup",
    "restore_backup",
    "store_identity",
]
