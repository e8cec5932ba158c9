"""Copy everything from one store to another: streaming, resumable, verified.

The copy runs in passes over the source, each streaming tribute by tribute:

1. **plan**: compare every source tribute with the destination: *new*,
   *identical* (same content digest: already copied, e.g. by a run that was
   interrupted) or *conflicting* (exists with other content).  With
   ``on_conflict="fail"`` any conflict stops the copy here, before anything
   is written.  ``dry_run`` stops here too and reports the plan.
2. **backup**: when the destination already holds data and the copy will
   write something, it is first exported to a backup directory (see
   :mod:`tributestore.backup`; nothing to write means no backup).
3. **copy**: guilds, then tributes in batches, one destination transaction
   per batch, so a crash leaves whole tributes only.  Identical tributes are
   skipped, so a re-run after a crash finishes the job.
4. **verify**: per-tribute digests of source and destination are compared,
   and every copied file's bytes re-hashed.  A legacy source's independent
   check of its raw files takes the destination's documents from this same
   stream (the destination is read once for both).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .digest import GUILD_ROW, Key, compare_stores, same_content
from .errors import AlreadyExistsError, InvalidInputError, ReadOnlyStoreError, StorageError
from .models import Counts, Guild, TributeBundle
from .store import OnConflict, TributeStore

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
    #: Source tributes the destination records as deleted (a composite primary's tombstones): not copied.
    tombstoned: int = 0
    conflicts: list[str] = field(default_factory=list)
    written: Counts = field(default_factory=Counts)
    backup: Path | None = None
    warnings: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    verified: bool = False
    #: Whether the destination was also checked against the raw source files (a legacy directory).
    independent: bool = False
    #: Tributes the destination holds and the source does not (left as they are): how many, the
    #: first few named ("D1F in guild 0").
    destination_only: int = 0
    destination_only_named: list[str] = field(default_factory=list)
    #: Tombstones of the source recorded in the destination by this copy (a primary moved mid-window).
    tombstones_carried: int = 0

    @property
    def ok(self) -> bool:
        return not self.differences


def _count(bundles: list[TributeBundle]) -> Counts:
    """What a batch of bundles holds."""
    return Counts(
        tributes=len(bundles),
        items=sum(len(bundle.inventory.items) for bundle in bundles),
        equipped=sum(len(bundle.inventory.equipped) for bundle in bundles),
        prompts=sum(bundle.prompt is not None for bundle in bundles),
        files=sum(len(bundle.files) for bundle in bundles),
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
    return "identical" if same_content(destination.export_tribute(*key), bundle) else "conflicting"


def _guild_plan(source: TributeStore, destination: TributeStore | None) -> tuple[list[Guild], list[Guild]]:
    """Source guilds to write, and those whose destination settings differ."""
    to_write, differing = [], []
    for guild in source.list_guilds():
        existing: Guild | None = None
        if destination is not None:
            try:
                existing = destination.get_guild(guild.guild_id)
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


@dataclass
class CopyPlan:
    """What the plan pass decided: guild rows to write and tributes to re-check."""

    guilds: list[Guild]
    differing_guilds: list[Guild]
    identical: set[Key] = field(default_factory=set)
    conflicting: set[Key] = field(default_factory=set)
    tombstoned: set[Key] = field(default_factory=set)
    #: Tributes planned as new that another writer created during the copy: kept as it wrote them.
    concurrent: set[Key] = field(default_factory=set)

    def guilds_to_write(self, on_conflict: OnConflict) -> list[Guild]:
        if on_conflict == "overwrite" or not self.differing_guilds:
            return self.guilds
        return [g for g in self.guilds if g not in self.differing_guilds]

    def writes_anything(self, report: CopyReport) -> bool:
        overwriting = report.conflicting and report.on_conflict == "overwrite"
        return bool(report.new or overwriting or self.guilds_to_write(report.on_conflict))


def _has_tombstones(destination: TributeStore | None) -> bool:
    return destination is not None and destination.tombstone_count() > 0


def _deleted_in(destination: TributeStore | None, source: TributeStore, key: Key) -> bool:
    """Whether the destination records the source tribute as deleted.  A tombstone the source
    holds too (one carried by an earlier copy) does not count: the source's tribute was created
    again after that deletion, and lives on."""
    if destination is None or not destination.is_tombstoned(*key, source.origin_key(*key)):
        return False
    return not source.is_tombstoned(*key)


def _classify(plan: CopyPlan, report: CopyReport, key: Key, state: str) -> None:
    """Count one source tribute as new, identical, conflicting or tombstoned."""
    if state == "tombstoned":
        report.tombstoned += 1
        plan.tombstoned.add(key)
    elif state == "new":
        report.new += 1
    elif state == "identical":
        report.identical += 1
        plan.identical.add(key)
    else:
        report.conflicting += 1
        plan.conflicting.add(key)
        report.conflicts.append(f"{_describe(key)}: exists with other content")


def plan_copy(
    source: TributeStore,
    destination: TributeStore | None,
    report: CopyReport,
    progress: Progress,
    *,
    respect_tombstones: bool = True,
) -> CopyPlan:
    """Classify every source tribute as new, identical, conflicting or tombstoned.

    ``destination=None`` (a dry run into a store not created yet): all new.  A
    tribute the destination records as deleted (by key, or by the source's own
    origin key) is *tombstoned* and never copied, unless ``respect_tombstones``
    is false: ending a transition window must not bring deleted tributes back.
    """
    guilds, differing = _guild_plan(source, destination)
    plan = CopyPlan(guilds, differing)
    for guild in differing:
        report.conflicts.append(f"guild {guild.guild_id}: settings differ")
    # An empty destination holds nothing to compare with: every tribute is new, and the plan
    # reads nothing more from it.  The source is still read whole, so a tribute it cannot
    # give (a damaged row or file) stops the copy before anything is written.
    empty = destination is None or next(iter(destination.iter_tributes()), None) is None
    tombstones = respect_tombstones and _has_tombstones(destination)
    progress.start("checking", source.counts().tributes)
    for bundle in source.iter_bundles():
        key = bundle.tribute.key
        if tombstones and _deleted_in(destination, source, key):
            state = "tombstoned"
        elif empty or destination is None:
            state = "new"
        else:
            state = _state(destination, bundle)
        _classify(plan, report, key, state)
        progress.advance()
    return plan


def _refuse_conflicts(report: CopyReport, destination_url: str) -> None:
    shown = "; ".join(report.conflicts[:MAX_LISTED])
    more = len(report.conflicts) - MAX_LISTED
    raise AlreadyExistsError(
        f"{len(report.conflicts)} conflict(s) in {destination_url}, nothing written "
        f"(use --on-conflict skip or overwrite): {shown}" + (f"; and {more} more" if more > 0 else "")
    )


def write_copy(
    source: TributeStore,
    destination: TributeStore,
    plan: CopyPlan,
    report: CopyReport,
    *,
    batch_size: int,
    progress: Progress,
    respect_tombstones: bool = True,
) -> None:
    """Write guild rows, then tributes in batches (one destination transaction each)."""
    guilds = plan.guilds_to_write(report.on_conflict)
    if guilds:
        with destination.transaction():
            for guild in guilds:
                destination.put_guild(guild.guild_id, **guild.model_dump(exclude={"guild_id"}))
    report.written = report.written.model_copy(update={"guilds": len(guilds)})

    recheck = plan.identical | plan.conflicting
    total = source.counts().tributes
    progress.start("copying", total)
    # One large import: the destination may build its search index once, at the end.  Its
    # size is what will be written (a re-run that finds its tributes identical writes little).
    overwriting = len(plan.conflicting) if report.on_conflict == "overwrite" else 0
    # Tombstones are never cleared: while their count is the plan's, no tribute was deleted since.
    tombstones_seen = destination.tombstone_count() if respect_tombstones else 0
    with destination.bulk_import(report.new + overwriting):
        for batch in _batches(source.iter_bundles(), batch_size):
            with destination.transaction():  # the write lock: no other writer until the batch is in
                deletions = respect_tombstones and destination.tombstone_count() != tombstones_seen
                present = destination.present([b.tribute.key for b in batch if b.tribute.key not in recheck])
                to_write = [
                    bundle
                    for bundle in batch
                    if bundle.tribute.key not in plan.tombstoned
                    and _to_write(source, destination, plan, report, bundle, recheck, deletions, present)
                ]
                if to_write:
                    destination.import_many(to_write, source.read_bundle_file)
            if to_write:
                report.written = _add(report.written, _count(to_write))
            progress.advance(len(batch))


def _to_write(
    source: TributeStore,
    destination: TributeStore,
    plan: CopyPlan,
    report: CopyReport,
    bundle: TributeBundle,
    recheck: set[Key],
    deletions: bool,
    present: set[Key],
) -> bool:
    """Whether to write a source tribute, decided again under the batch's write lock: another
    writer (a bot running during the copy) may have deleted the tribute since the plan (its
    tombstone, looked up when ``deletions``: never brought back) or created it (not replaced,
    unless ``overwrite``)."""
    key = bundle.tribute.key
    if deletions and _deleted_in(destination, source, key):
        if key not in plan.tombstoned:
            plan.tombstoned.add(key)
            report.tombstoned += 1
            report.warnings.append(
                f"{_describe(key)}: deleted in the destination during the copy: not copied"
            )
        return False
    if key in recheck:
        return _still_to_write(destination, bundle, report)
    if key not in present:  # the batch's one lookup of what exists
        return True
    # Planned as new, created meanwhile by another writer.
    state = _state(destination, bundle)
    if state == "identical":
        return False
    if report.on_conflict == "overwrite":
        return True
    plan.concurrent.add(key)
    report.conflicts.append(
        f"{_describe(key)}: created in the destination by another writer during the copy; "
        "kept as the destination has it"
    )
    return False


def _still_to_write(destination: TributeStore, bundle: TributeBundle, report: CopyReport) -> bool:
    """For a tribute planned identical or conflicting: re-checked, the destination may have changed."""
    state = _state(destination, bundle)
    return not (state == "identical" or (state == "conflicting" and report.on_conflict == "skip"))


def copy_store(
    source: TributeStore,
    destination: TributeStore | None,
    *,
    on_conflict: OnConflict = "fail",
    dry_run: bool = False,
    verify: bool = True,
    backup_dir: Path | None = None,
    batch_size: int = 1000,
    progress: Progress | None = None,
    respect_tombstones: bool = True,
) -> CopyReport:
    """Copy every guild and tribute of ``source`` into ``destination`` (see module doc).

    ``destination=None`` is allowed for a dry run only: a destination that does
    not exist yet, planned as empty.  Raises :class:`AlreadyExistsError` on
    conflicts with ``on_conflict="fail"`` (nothing written); returns a report
    whose ``differences`` list what verification found (empty when exact).
    """
    if on_conflict not in ("fail", "skip", "overwrite"):
        raise InvalidInputError(
            f"invalid on_conflict: {str(on_conflict)[:40]!r} (use fail, skip or overwrite)"
        )
    if batch_size < 1:
        raise InvalidInputError(f"invalid batch_size: must be at least 1 (got {batch_size})")
    if destination is None and not dry_run:
        raise InvalidInputError("copy_store needs a destination store (None is for a dry run only)")
    if destination is not None and not dry_run:
        _check_writable(destination)
    progress = progress or SilentProgress()
    destination_url = destination.url if destination is not None else "(not created yet)"
    report = CopyReport(source.url, destination_url, on_conflict, dry_run=dry_run)
    report.warnings = list(source.warnings)

    plan = plan_copy(source, destination, report, progress, respect_tombstones=respect_tombstones)
    if report.conflicts and on_conflict == "fail":
        _refuse_conflicts(report, destination_url)
    if dry_run or destination is None or not plan.writes_anything(report):
        if destination is not None and not dry_run:
            _carry_tombstones(source, destination, report)
        return _verified(source, destination, plan, report, verify=verify and not dry_run, progress=progress)
    if backup_dir is not None and destination.counts() != Counts():
        from .backup import backup_store  # local: backups open a store through the plugins

        report.backup = backup_store(destination, backup_dir)
    write_copy(
        source,
        destination,
        plan,
        report,
        batch_size=batch_size,
        progress=progress,
        respect_tombstones=respect_tombstones,
    )
    _carry_tombstones(source, destination, report)
    return _verified(source, destination, plan, report, verify=verify, progress=progress)


def _carry_tombstones(source: TributeStore, destination: TributeStore, report: CopyReport) -> None:
    """The source's tombstones recorded in the destination, after its tributes (a tombstone first
    would hold back a tribute the source created again after deleting it)."""
    held = source.tombstone_count()
    if not held:
        return
    listed = source.list_tombstones()
    if listed is None or not destination.supports_tombstones:
        why = "the source cannot list them" if listed is None else "the destination cannot record them"
        report.warnings.append(
            f"the source's {held} tombstone(s) were not carried ({why}): a composite with this "
            "destination as its primary would show those deleted fallback tributes again"
        )
        return
    report.tombstones_carried = destination.carry_tombstones(listed)


def _check_writable(destination: TributeStore) -> None:
    if destination.read_only:
        raise ReadOnlyStoreError(f"destination {destination.url} is read-only")
    if destination.ephemeral:
        raise InvalidInputError(
            f"destination {destination.url} is an in-memory store: the copy would be lost at exit"
        )


def _verified(
    source: TributeStore,
    destination: TributeStore | None,
    plan: CopyPlan,
    report: CopyReport,
    *,
    verify: bool,
    progress: Progress,
) -> CopyReport:
    """Compare source and destination tribute by tribute (when ``verify``), into the report."""
    if not verify or destination is None:
        return report
    skipped: set[Key] = set(plan.tombstoned)
    if plan.concurrent:  # said in report.conflicts; with --on-conflict fail, a difference too
        skipped |= plan.concurrent if report.on_conflict == "skip" else set()
    if report.on_conflict == "skip":
        skipped |= plan.conflicting | {(g.guild_id, GUILD_ROW) for g in plan.differing_guilds}
    checker = source.independent_checker(destination)
    # The independent check, when it can, takes the destination's documents the verification
    # reads (one stream of the destination instead of two).
    with checker if checker is not None else nullcontext() as held:
        report.differences = verify_stores(
            source,
            destination,
            subset=True,
            ignore=skipped,
            progress=progress,
            on_destination=held.hold if held is not None else None,
            on_destination_only=lambda key: _destination_only(report, key),
        )
        try:
            raw = held.finish() if held is not None else source.independent_check(destination)
        except StorageError as error:  # the copy is written and verified: report it, not verified
            raw = [f"the independent check could not run: {error}"]
    report.differences += _tombstone_differences(source, destination)
    report.verified = True
    if raw is not None:
        report.independent = True
        report.differences += [f"raw source data: {line}" for line in raw]
    return report


def _tombstone_differences(source: TributeStore, destination: TributeStore) -> list[str]:
    """Tombstones of the source the destination lacks (when both list them)."""
    listed = source.list_tombstones() if source.tombstone_count() else None
    if not listed or not destination.supports_tombstones:
        return []
    lines = [
        f"tombstone of tribute {tid} in guild {gid} missing in the destination (a deleted tribute "
        "could come back)"
        for gid, tid, origin in listed
        if not destination.is_tombstoned(gid, tid)
        or (origin is not None and not destination.has_origin_tombstone(origin))
    ]
    # Deleted in the source after an earlier copy: a copy never deletes, so the destination's
    # tribute lives on in front of its own tombstone, and a composite over it shows it again.
    keys = [(gid, tid) for gid, tid, _ in listed]
    kept = sorted(destination.present(keys) - source.present(keys))
    lines += [
        f"tribute {tid} in guild {gid}: deleted in the source (its tombstone carried) but still in the "
        "destination, where it would show again: delete it there (or copy into an empty destination)"
        for gid, tid in kept
    ]
    return lines


def _destination_only(report: CopyReport, key: Key) -> None:
    report.destination_only += 1
    if len(report.destination_only_named) < MAX_LISTED:
        report.destination_only_named.append(f"{key[1]} in guild {key[0]}")


def verify_stores(
    source: TributeStore,
    destination: TributeStore,
    *,
    subset: bool = False,
    ignore: set[Key] | None = None,
    progress: Progress | None = None,
    on_destination: Callable[[TributeBundle], None] | None = None,
    on_destination_only: Callable[[Key], None] | None = None,
) -> list[str]:
    """Every difference between two stores, as lines naming the tribute (empty: identical).

    ``on_destination`` is given every document of the destination as it is read; with
    ``subset``, ``on_destination_only`` the key of each tribute only the destination holds
    (no difference then)."""
    progress = progress or SilentProgress()
    progress.start("verifying", source.counts().tributes)
    lines: list[str] = []
    for difference in compare_stores(
        source,
        destination,
        subset=subset and on_destination_only is None,
        on_source_tribute=progress.advance,
        on_destination_document=on_destination,
    ):
        if ignore and difference.key in ignore:
            continue
        if subset and on_destination_only is not None and difference.what.endswith("only in destination"):
            if difference.key[1] != GUILD_ROW:
                on_destination_only(difference.key)
            continue
        lines.append(str(difference))
    return lines
