"""Copy everything from one store to another: streaming, resumable, verified.

The copy runs in passes over the source, each streaming tribute by tribute:

1. **plan**: compare every source tribute with the destination: *new*,
   *identical* (same content digest: already copied, e.g. by a run that was
   interrupted) or *conflicting* (exists with other content).  With
   ``on_conflict="fail"`` any conflict stops the copy here, before anything
   is written.  ``dry_run`` stops here too and reports the plan.
2. **backup**: when the destination already holds data, it is first exported
   to a tributestore JSON directory (restore it with :func:`restore_backup`).
3. **copy**: guilds, then tributes in batches, one destination transaction
   per batch, so a crash leaves whole tributes only.  Identical tributes are
   skipped, so a re-run after a crash finishes the job.
4. **verify**: per-tribute digests of source and destination are compared,
   and every copied file's bytes re-hashed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from .digest import GUILD_ROW, Key, bundle_digest, compare_stores
from .errors import AlreadyExistsError, InvalidInputError, ReadOnlyStoreError, VerificationError
from .models import Counts, FileInfo, Guild, TributeBundle
from .store import OnConflict, TributeStore
from .urls import StoreURL

MAX_LISTED = 20


class Progress(Protocol):
    """Where the copier reports progress (the CLI draws a bar; the default is silent)."""

    def start(self, phase: str, total: int | None) -> None: ...

    def advance(self, amount: int = 1) -> None: ...


class SilentProgress:
    def start(self, phase: str, total: int | None) -> None:
        pass

    def advance(self, amount: int = 1) -> None:
        pass


@dataclass
class CopyReport:
    """What a copy found, did and verified."""

    source: str
    destination: str
    on_conflict: OnConflict
    dry_run: bool = False
    new: int = 0
    identical: int = 0
    conflicting: int = 0
    conflicts: list[str] = field(default_factory=list)
    guilds_written: int = 0
    written: Counts = field(default_factory=Counts)
    backup: Path | None = None
    warnings: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    verified: bool = False

    @property
    def ok(self) -> bool:
        return not self.differences


def _count(bundle: TributeBundle) -> Counts:
    return Counts(
        tributes=1,
        items=len(bundle.inventory.items),
        equipped=len(bundle.inventory.equipped),
        prompts=int(bundle.prompt is not None),
        files=len(bundle.files),
    )


def _add(total: Counts, more: Counts) -> Counts:
    data = total.model_dump()
    for name, value in more.model_dump().items():
        data[name] += value
    return Counts(**data)


def _describe(key: Key) -> str:
    return f"tribute {key[1]} in guild {key[0]}"


def _state(destination: TributeStore, bundle: TributeBundle) -> str:
    """'new', 'identical' or 'conflicting' for one source tribute."""
    key = bundle.tribute.key
    if not destination.has_tribute(*key):
        return "new"
    existing = destination.export_tribute(*key)
    return "identical" if bundle_digest(existing) == bundle_digest(bundle) else "conflicting"


def _guild_plan(source: TributeStore, destination: TributeStore) -> tuple[list[Guild], list[Guild]]:
    """Source guilds to write, and those whose destination settings differ."""
    to_write, differing = [], []
    for guild in source.list_guilds():
        try:
            existing: Guild | None = destination.get_guild(guild.guild_id)
        except LookupError:
            existing = None
        if existing != guild:
            to_write.append(guild)
            if existing is not None:
                differing.append(guild)
    return to_write, differing


def _batches(bundles: Iterator[TributeBundle], size: int) -> Iterator[list[TributeBundle]]:
    batch: list[TributeBundle] = []
    for bundle in bundles:
        batch.append(bundle)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def copy_store(
    source: TributeStore,
    destination: TributeStore,
    *,
    on_conflict: OnConflict = "fail",
    dry_run: bool = False,
    verify: bool = True,
    backup_dir: Path | None = None,
    batch_size: int = 100,
    progress: Progress | None = None,
) -> CopyReport:
    """Copy every guild and tribute of ``source`` into ``destination`` (see module doc).

    Raises :class:`AlreadyExistsError` on conflicts with ``on_conflict="fail"``
    (nothing written); returns a report whose ``differences`` list what
    verification found (empty when the copy is exact).
    """
    if on_conflict not in ("fail", "skip", "overwrite"):
        raise InvalidInputError(f"invalid on_conflict: {on_conflict!r} (use fail, skip or overwrite)")
    if batch_size < 1:
        raise InvalidInputError(f"invalid batch_size: must be at least 1 (got {batch_size})")
    if destination.read_only and not dry_run:
        raise ReadOnlyStoreError(f"destination {destination.url} is read-only")
    progress = progress or SilentProgress()
    report = CopyReport(source.url, destination.url, on_conflict, dry_run=dry_run)
    report.warnings = list(getattr(source, "warnings", ()))
    total = source.counts().tributes

    # 1. plan
    guilds, differing_guilds = _guild_plan(source, destination)
    for guild in differing_guilds:
        report.conflicts.append(f"guild {guild.guild_id}: settings differ")
    conflicting: set[Key] = set()
    identical: set[Key] = set()
    # An empty destination holds nothing to compare with: every tribute is new,
    # and the plan reads nothing more from it.
    empty_destination = next(iter(destination.iter_tributes()), None) is None
    progress.start("checking", total)
    for bundle in source.iter_bundles():
        state = "new" if empty_destination else _state(destination, bundle)
        if state == "new":
            report.new += 1
        elif state == "identical":
            report.identical += 1
            identical.add(bundle.tribute.key)
        else:
            report.conflicting += 1
            conflicting.add(bundle.tribute.key)
            report.conflicts.append(f"{_describe(bundle.tribute.key)}: exists with other content")
        progress.advance()
    if report.conflicts and on_conflict == "fail":
        shown = "; ".join(report.conflicts[:MAX_LISTED])
        more = len(report.conflicts) - MAX_LISTED
        raise AlreadyExistsError(
            f"{len(report.conflicts)} conflict(s) in {destination.url}, nothing written "
            f"(use --on-conflict skip or overwrite): {shown}" + (f"; and {more} more" if more > 0 else "")
        )
    if dry_run:
        return report

    # 2. backup
    if backup_dir is not None and destination.counts() != Counts():
        report.backup = backup_store(destination, backup_dir)

    # 3. copy
    if on_conflict == "overwrite" or not differing_guilds:
        guilds_to_write = guilds
    else:
        guilds_to_write = [g for g in guilds if g not in differing_guilds]
    with destination.transaction():
        for guild in guilds_to_write:
            destination.put_guild(guild.guild_id, **guild.model_dump(exclude={"guild_id"}))
    report.guilds_written = len(guilds_to_write)

    def read_source(info: FileInfo) -> bytes:
        return source.read_file(info.guild_id, info.tribute_id, info.name)

    progress.start("copying", total)
    for batch in _batches(source.iter_bundles(), batch_size):
        with destination.transaction():
            to_write = []
            for bundle in batch:
                key = bundle.tribute.key
                if key in identical or key in conflicting:
                    # Re-checked: the destination may have changed since the plan.
                    state = _state(destination, bundle)
                    if state == "identical" or (state == "conflicting" and on_conflict == "skip"):
                        continue
                # A tribute planned as new is written without reading it back first:
                # it is replaced if another writer created it meanwhile.
                to_write.append(bundle)
            destination._import_replacing(to_write, read_source)
            for bundle in to_write:
                report.written = _add(report.written, _count(bundle))
        progress.advance(len(batch))

    # 4. verify
    if verify:
        skipped: set[Key] = set()
        if on_conflict == "skip":
            skipped = conflicting | {(g.guild_id, GUILD_ROW) for g in differing_guilds}
        report.differences = verify_stores(
            source, destination, subset=True, ignore=skipped, progress=progress
        )
        report.verified = True
    return report


def verify_stores(
    source: TributeStore,
    destination: TributeStore,
    *,
    subset: bool = False,
    ignore: set[Key] | None = None,
    progress: Progress | None = None,
) -> list[str]:
    """Every difference between two stores, as lines naming the tribute (empty: identical)."""
    progress = progress or SilentProgress()
    progress.start("verifying", source.counts().tributes)
    return [
        str(difference)
        for difference in compare_stores(
            source, destination, subset=subset, on_source_tribute=progress.advance
        )
        if not (ignore and difference.key in ignore)
    ]


def backup_store(store: TributeStore, backup_dir: Path) -> Path:
    """Export ``store`` whole into a new tributestore JSON directory under ``backup_dir``."""
    from .config import open_url  # local: config imports the plugins

    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    target = backup_dir.resolve() / f"backup-{stamp}"
    # A StoreURL built directly: the directory name may hold '?' or '%', which a URL would misread.
    with open_url(StoreURL(raw=f"json:///{target}", scheme="json", path=str(target))) as backup:
        report = copy_store(store, backup, on_conflict="fail", verify=True)
    if not report.ok:
        raise VerificationError(f"backup {target} differs from {store.url}: {report.differences[0]}")
    return target


def restore_backup(backup: TributeStore, destination: TributeStore) -> list[str]:
    """Make ``destination`` equal to ``backup``: tributes not in it are deleted, others overwritten.

    Returns the differences left (empty on success).
    """
    keep = {t.key for t in backup.iter_tributes()}
    extra = [t.key for t in destination.iter_tributes() if t.key not in keep]
    with destination.transaction():
        for guild_id, tribute_id in extra:
            destination.delete_tribute(guild_id, tribute_id)
    copy_store(backup, destination, on_conflict="overwrite", verify=False)
    # Guild rows have no delete operation: a guild the failed copy added stays, empty.
    return [
        line
        for line in verify_stores(backup, destination, subset=False)
        if not line.endswith("guild only in destination")
    ]
