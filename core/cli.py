"""The ``tributestore`` command.

Every library error becomes one line on stderr and the exit code of its
class (see :mod:`tributestore.errors`).  Anything else is a bug (here or in a
plugin): one line naming it, exit code 70, the traceback with ``TRIBUTESTORE_DEBUG=1``.

Start-up: at import only click is loaded.  Each command imports what it uses
(rich, the store, the copier, the backends) when it runs, and plugin commands
are added when first needed (``--help``, a name that is not built in,
``tributestore backends``), so ``tributestore --help`` loads the plugin modules
but none of their backends.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from . import __version__
from .defaults import BACKUP_SCHEME, EXAMPLE_URL, LEGACY_EXAMPLE_URL
from .errors import (
    ConfigError,
    CorruptDataError,
    StorageError,
    StoreNotFoundError,
    TributeStoreError,
    VerificationError,
)

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import TaskID

    from .backup import RestoreCounts
    from .copier import CopyReport
    from .hookspecs import BackendSpec
    from .models import Counts
    from .store import OnConflict, TributeStore
    from .urls import OpenMode, StoreURL


class LazyConsole:
    """A rich console built on first use (importing rich costs every command that prints nothing)."""

    def __init__(self, stderr: bool = False) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            # user data is never markup
            self._console = Console(stderr=self._stderr, highlight=False, soft_wrap=True, markup=False)
        return self._console

    def print(self, *objects: Any) -> None:
        self.console.print(*objects)

    @property
    def is_terminal(self) -> bool:
        return self.console.is_terminal


out = LazyConsole()
err = LazyConsole(stderr=True)
#: Set (to anything) to see the traceback of an internal error instead of its one line.
DEBUG_ENV = "TRIBUTESTORE_DEBUG"
#: The exit code of an internal error (a bug), BSD's ``EX_SOFTWARE``.
INTERNAL_ERROR_EXIT = 70


def open_for_cli(url: str | None, mode: OpenMode) -> TributeStore:
    """Open a store named on the command line: ``read`` for anything only read (must exist)."""
    from .config import open_store

    return open_store(url, mode=mode)


class NoteHandler(logging.Handler):
    """Shows the library's notices (a store created on first use) as one line each on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        err.print(f"tributestore: note: {record.getMessage()}")


@contextmanager
def library_notes() -> Iterator[None]:
    logger = logging.getLogger("tributestore")
    handler = NoteHandler(logging.INFO)
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


class PluginGroup(click.Group):
    """The ``tributestore`` group: plugin commands are added when a name is not built in, or for a listing."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        _plugin_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and not getattr(self, "_plugin_commands_added", False):
            _plugin_commands()
            command = super().get_command(ctx, cmd_name)
        return command


@click.group(
    cls=PluginGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    help=f"""Storage for THGBot tributes: inspect stores and move data between backends.

    A store is named by a URL whose scheme picks the backend plugin
    ('tributestore backends' lists them, with an example URL each;
    'tributestore config --help' explains URLs and where the default store
    comes from).

    Migrate a legacy THGBot data directory: tributestore copy {LEGACY_EXAMPLE_URL} {EXAMPLE_URL}
    """,
)
@click.version_option(__version__, prog_name="tributestore")
def cli() -> None:
    pass


@cli.command()
def backends() -> None:
    """List the installed backends, then every plugin (entry-point group 'tributestore') and its hooks."""
    from rich.table import Table

    from .plugins import registry

    _plugin_commands()  # a plugin whose commands fail is named here too
    found = registry()
    table = Table("backend", "URL schemes", "plugin", "about")
    for name in sorted(found.by_name):
        spec = found.by_name[name]
        table.add_row(name, ", ".join(spec.schemes), found.plugin_of[name], spec.summary)
    out.print(table)
    # Whole lines, never cut to a table cell (a pipe or a narrow terminal): they are copied.
    out.print("example URLs:")
    for name in sorted(found.by_name):
        if found.by_name[name].example:
            out.print(f"  {name}: {found.by_name[name].example}")
    out.print("plugins (entry-point group 'tributestore') and the hooks they implement:")
    for plugin, hooks in sorted(found.plugin_hooks.items()):
        shown = ", ".join(hook.removeprefix("tributestore_") for hook in hooks) or "none"
        out.print(f"  {plugin}: {shown}")
    for problem in found.load_errors:
        err.print(f"warning: {problem}")


@cli.command(
    help=f"""Show which store URL would be opened and where that choice came from.

    \b
    A store URL's scheme picks the backend ('tributestore backends' lists them):
      {EXAMPLE_URL}         a file, relative to the current directory
      {EXAMPLE_URL.replace(":///", ":////srv/")}    an absolute path (four slashes)
    Without URL the store comes from, first match wins:
      1. the environment variable TRIBUTESTORE_URL;
      2. the [store] table (url = "...") of the TOML file named by
         TRIBUTESTORE_CONFIG, else ./tributestore.toml;
      3. the default: an SQLite file tributestore.db in $SNAP_DATA when set,
         else in the user data directory (~/.local/share/tributestore on
         Linux), else in the current directory; an existing ./tributestore.db
         (the old default) keeps being used.
    """
)
@click.argument("url", required=False)
def config(url: str | None) -> None:
    from .config import resolve_config
    from .plugins import registry
    from .urls import mask_password

    resolved = resolve_config(url)
    out.print(f"url: {resolved.url.display}")
    out.print(f"from: {resolved.source}")
    if resolved.notice:
        out.print(f"note: {resolved.notice}")
    spec = registry().for_url(resolved.url)
    out.print(f"backend: {spec.name}")
    for key in sorted(resolved.url.options):
        out.print(f"option {key}: {mask_password(resolved.url.options[key])}")
    # A composite's stores, each as a plain URL is shown, before what opening would refuse of them.
    try:
        _show_children(resolved.url, "")
        unshown = None
    except TributeStoreError as error:
        unshown = error
    # What opening the URL would refuse, refused here too (nothing is created): a composite's
    # fallback, opened for reading, must exist (StoreNotFoundError, exit 3, as opening says it).
    registry().check_url(resolved.url)
    if unshown is not None:
        raise unshown
    _show_path(resolved.url, "", spec)


def _show_children(url: StoreURL, indent: str) -> None:
    """Each child store of ``url`` (a composite's fallback and primary): URL, backend, options,
    open mode, and the absolute path and whether it exists, as ``config`` shows a plain URL."""
    from .plugins import registry
    from .urls import mask_password

    for option, child in registry().child_urls(url):
        spec = registry().for_url(child)
        out.print(f"{indent}{option}: {child.display}")
        out.print(f"{indent}  backend: {spec.name}")
        for key in sorted(child.options):
            out.print(f"{indent}  option {key}: {mask_password(child.options[key])}")
        if child.must_exist:
            out.print(f"{indent}  opened for reading: it must exist")
        else:
            out.print(f"{indent}  opened for writing: created when missing")
        _show_children(child, indent + "  ")
        _show_path(child, indent + "  ", spec)


def _show_path(url: StoreURL, indent: str, spec: BackendSpec) -> None:
    """The absolute path a file store's URL names and whether it exists (with what another
    backend says it is); nothing for a server or an in-memory store."""
    from .plugins import registry

    if not url.path or url.netloc or url.path == ":memory:":
        return
    path = url.local_path().absolute()
    exists = path.exists()
    state = "exists" if exists else "does not exist" if url.must_exist else "does not exist yet"
    out.print(f"{indent}path: {path} ({state})")
    hint = registry().hint(url, spec) if exists else None
    if hint:
        out.print(f"{indent}note: {hint}")


@cli.command()
@click.argument("url", required=False)
def stats(url: str | None) -> None:
    """Count guilds, tributes, items, equipped items, prompts and files in a store.

    URL is the store (default: the configured one, see 'tributestore config --help').
    """
    from rich.table import Table

    with open_for_cli(url, "read") as store:
        counts = store.counts()
        table = Table("entity", "count", title=store.url)
        for name, value in counts.model_dump().items():
            table.add_row(name, str(value))
        for name, value in store.details().items():
            table.add_row(name, str(value))
        out.print(table)


@cli.command()
@click.argument("url", required=False)
@click.option(
    "--remove-incomplete-backups",
    is_flag=True,
    help="Delete the incomplete backups found (a copy killed while backing up leaves one).",
)
def check(url: str | None, remove_incomplete_backups: bool) -> None:
    """Check a store's integrity (orphans, foreign keys, schema version, file hashes, search index).

    URL is the store (default: the configured one, see 'tributestore config --help').
    The check reads one committed state: writes in progress are waited for or
    read again, never reported as damage (a lock not obtained in time is an
    error, exit code 5). It also names incomplete backups (backup-* directories
    without their manifest) in ./tributestore-backups and in the
    tributestore-backups directory beside the store's file or directory;
    --remove-incomplete-backups deletes them (never one being written).
    Exits with status 1 when a problem is found.
    """
    from .backup import MANIFEST_NAME, backup_dirs_for, find_incomplete_backups, remove_incomplete_backup
    from .config import resolve_config
    from .plugins import registry
    from .urls import same_identity

    resolved = resolve_config(url).url
    with open_for_cli(url, "read") as store:
        problems = store.check()
        for note in getattr(store, "notes", ()):  # what opening it repaired, losing nothing
            out.print(f"note: {note}")
    store_path = None
    if resolved.path and not resolved.netloc and resolved.path != ":memory:":
        store_path = resolved.local_path()
    here = registry().identity(resolved)
    for backup in find_incomplete_backups(backup_dirs_for(store_path)):
        if backup.of is not None and here is not None and not same_identity(backup.of, here):
            continue  # another store's incomplete backup (its check names it)
        if backup.in_progress:
            out.print(f"note: backup {backup.path} is being written by another process (skipped)")
        elif backup.foreign is not None:
            problems.append(
                f"incomplete backup {backup.path} (no {MANIFEST_NAME}) holds {backup.foreign!r}, "
                "which no backup holds: inspect and remove it by hand"
            )
        elif remove_incomplete_backups:
            remove_incomplete_backup(backup)
            out.print(f"removed incomplete backup {backup.path}")
        else:
            problems.append(
                f"incomplete backup {backup.path} (no {MANIFEST_NAME}: a copy or restore was interrupted "
                "while backing up; restore refuses it); remove it with --remove-incomplete-backups"
            )
    if not problems:
        out.print(f"no problems found in {store.url}")
        return
    for problem in problems:
        out.print(f"problem: {problem}")
    raise click.exceptions.Exit(1)


@contextmanager
def ctrl_c_remembered() -> Iterator[threading.Event]:
    """While a long job runs: a Ctrl-C raises KeyboardInterrupt as usual and is also remembered.

    A KeyboardInterrupt raised inside code that cannot pass it on (pydantic building a validator
    at first use reports it as "Exception ignored" and goes on) would be lost, and the job would
    run to its end as if no Ctrl-C had come; :class:`BarProgress` raises a remembered one again at
    its next step.  Outside the main thread, nothing is installed.
    """
    noticed = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield noticed
        return

    def interrupt(signum: int, frame: object) -> None:
        noticed.set()
        raise KeyboardInterrupt

    unraisable = sys.unraisablehook

    def quietly(info: Any) -> None:  # the swallowed Ctrl-C is raised again: no traceback for it
        if not (isinstance(info.exc_type, type) and issubclass(info.exc_type, KeyboardInterrupt)):
            unraisable(info)

    previous = signal.signal(signal.SIGINT, interrupt)
    sys.unraisablehook = quietly
    try:
        yield noticed
    finally:
        sys.unraisablehook = unraisable
        signal.signal(signal.SIGINT, previous)


class BarProgress:
    """A rich progress bar on stderr, drawn only when stderr is a terminal; with ``interrupted``
    (see :func:`ctrl_c_remembered`), each step raises a Ctrl-C that was swallowed on the way."""

    def __init__(self, interrupted: threading.Event | None = None) -> None:
        self._interrupted = interrupted
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("{task.description:>10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err.console,
            disable=not err.is_terminal,
            transient=True,
        )
        self._task: TaskID | None = None
        #: The phase last started (the copier's "checking", "copying", "verifying").
        self.phase: str | None = None

    def __enter__(self) -> BarProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def _raise_a_lost_ctrl_c(self) -> None:
        if self._interrupted is not None and self._interrupted.is_set():
            self._interrupted.clear()
            raise KeyboardInterrupt

    def start(self, phase: str, total: int | None) -> None:
        self._raise_a_lost_ctrl_c()
        self.phase = phase
        if self._task is not None:
            self._progress.remove_task(self._task)
        self._task = self._progress.add_task(phase, total=total)

    def advance(self, amount: int = 1) -> None:
        self._raise_a_lost_ctrl_c()
        if self._task is not None:
            self._progress.advance(self._task, amount)


def print_report(report: CopyReport, source_counts: Counts) -> None:
    from rich.table import Table

    from .models import Counts
    from .urls import path_url

    title = "plan (dry run)" if report.dry_run else "copy report"
    table = Table("entity", "in source", "written", title=f"{title}: {report.source} -> {report.destination}")
    written = report.written.model_dump()
    for name, value in source_counts.model_dump().items():
        table.add_row(name, str(value), "-" if report.dry_run else str(written.get(name, 0)))
    out.print(table)
    out.print(
        f"tributes: {report.new} new, {report.identical} already identical, "
        f"{report.conflicting} conflicting (on conflict: {report.on_conflict})"
    )
    if report.tombstoned:
        out.print(
            f"not copied: {report.tombstoned} tribute(s) deleted from the destination during the "
            "transition window (its tombstones; --ignore-tombstones brings them back)"
        )
    if report.tombstones_carried:
        out.print(
            f"tombstones: {report.tombstones_carried} carried (tributes deleted during the transition "
            "window stay deleted behind the destination too)"
        )
    for line in report.conflicts:
        out.print(f"conflict: {line}")
    if not report.dry_run and report.written == Counts():
        if report.conflicting or report.tombstoned:
            kept = report.conflicting + report.tombstoned
            out.print(
                f"nothing written: every source tribute is already identical in the destination but "
                f"{kept}, kept as the destination has it (no backup made)"
            )
        else:
            out.print("nothing to write: the destination already holds every source tribute (no backup made)")
    if report.backup is not None:
        out.print(f"backup of the destination: {report.backup}")
        # Quoted for the shell (a composite's URL holds '&'), so the line runs as printed.
        backup_url = shlex.quote(path_url(BACKUP_SCHEME, report.backup))
        out.print(f"  undo with: tributestore restore {backup_url} {shlex.quote(report.destination)}")
        if "***" in report.destination:
            out.print("  (the destination's password is shown as ***: write it there before running this)")
    if report.destination_only:
        more = (
            f" and {report.destination_only - len(report.destination_only_named)} more"
            if (report.destination_only > len(report.destination_only_named))
            else ""
        )
        out.print(
            f"note: the destination also holds {report.destination_only} tribute(s) the source does not, "
            f"left as they are: {', '.join(report.destination_only_named)}{more} (a copy run again with "
            "other guild options leaves the tributes the first run placed)"
        )
    for line in report.warnings:
        out.print(f"warning: {line}")
    if report.verified:
        if report.ok:
            out.print("verified: every copied tribute is identical in source and destination")
            if report.independent:
                out.print(
                    "verified independently: every item, equipped item, prompt text and image of the "
                    "raw legacy files is in the destination"
                )
        else:
            for line in report.differences:
                out.print(f"MISMATCH: {line}")


def count_differences(lines: list[str]) -> int:
    """The differences ``lines`` report: a capped independent check's last line
    ("raw source data: ... and N more missing ...") stands for the N it does not list."""
    unlisted = "raw source data: ... and "
    return sum(int(line[len(unlisted) :].split()[0]) if line.startswith(unlisted) else 1 for line in lines)


ON_CONFLICT = click.Choice(["fail", "skip", "overwrite"])


@cli.command(
    help=f"""Copy every guild and tribute from SOURCE to DESTINATION, then verify.

    SOURCE and DESTINATION are store URLs of any backends, e.g. a legacy THGBot
    directory to SQLite:

        tributestore copy {LEGACY_EXAMPLE_URL} {EXAMPLE_URL}

    Streaming and batched; a re-run after an interruption finishes the job.
    Exits 0 when verified identical, 7 on a mismatch, 4 on conflicts.
    """
)
@click.argument("source")
@click.argument("destination")
@click.option(
    "--on-conflict",
    type=ON_CONFLICT,
    default="fail",
    show_default=True,
    help="A tribute that exists in DESTINATION with other content: fail (before writing anything), "
    "skip it, or overwrite it. Identical tributes are always skipped, so a re-run resumes.",
)
@click.option("--dry-run", is_flag=True, help="Only print what would be copied; write nothing.")
@click.option("--no-verify", is_flag=True, help="Skip the final per-tribute digest comparison.")
@click.option(
    "--backup-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("tributestore-backups"),
    show_default=True,
    help="Where the destination is exported (as a JSON store) before it is changed, "
    "when it already holds data.",
)
@click.option("--no-backup", is_flag=True, help="Do not back up the destination.")
@click.option(
    "--ignore-tombstones",
    is_flag=True,
    help="Also copy tributes the destination records as deleted (a composite primary's tombstones). "
    "By default they are not copied, so deleted tributes never come back.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Tributes written per destination transaction (an interrupted copy keeps whole "
    "tributes only, and a re-run finishes it).",
)
def copy(
    source: str,
    destination: str,
    on_conflict: OnConflict,
    dry_run: bool,
    no_verify: bool,
    backup_dir: Path,
    no_backup: bool,
    ignore_tombstones: bool,
    batch_size: int,
) -> None:
    from .copier import copy_store

    refuse_one_store(source, destination)
    bar: BarProgress | None = None
    try:
        with (
            ctrl_c_remembered() as interrupted,
            open_for_cli(source, "read") as src,
            open_destination(destination, dry_run) as dst,
            BarProgress(interrupted) as bar,
        ):
            source_counts = src.counts()
            report = copy_store(
                src,
                dst,
                on_conflict=on_conflict,
                dry_run=dry_run,
                verify=not no_verify,
                backup_dir=None if no_backup else backup_dir,
                batch_size=batch_size,
                progress=bar,
                respect_tombstones=not ignore_tombstones,
            )
    except KeyboardInterrupt:
        err.print(
            "tributestore: interrupted; the destination holds whole tributes only. "
            "Re-running the same command resumes (tributes already copied are skipped)."
        )
        raise click.exceptions.Exit(130) from None
    except TributeStoreError as error:
        if bar is None or bar.phase != "copying":
            raise
        # Stopped part-way through the writes (a lost connection, a full disk, a lock held too long).
        err.print(
            f"tributestore: error: {error}; the copy stopped part-way: the destination holds whole "
            "tributes only, and re-running the same command resumes (tributes already copied are skipped)"
        )
        raise click.exceptions.Exit(error.exit_code) from None
    print_report(report, source_counts)
    if not report.ok:
        raise VerificationError(f"{count_differences(report.differences)} difference(s) found after the copy")


def refuse_one_store(source: str, destination: str, *, source_is: str = "source", job: str = "copy") -> None:
    """A copy (or restore) of a store onto itself (another spelling of its path, a symlink, the
    legacy directory under another scheme) would compare the store with itself: refused."""
    from .urls import parse_store_url, same_place

    first, second = parse_store_url(source), parse_store_url(destination)
    if same_place(first, second):
        raise ConfigError(
            f"{source_is} {first.display!r} and destination {second.display!r} are the same store: "
            f"nothing to {job}, and nothing a verification could check"
        )


@contextmanager
def open_destination(url: str, dry_run: bool) -> Iterator[TributeStore | None]:
    """The copy destination: created when missing, except by a dry run, which creates nothing."""
    if not dry_run:
        with open_for_cli(url, "write") as store:
            yield store
        return
    try:
        store = open_for_cli(url, "read")
    except StoreNotFoundError as error:
        err.print(f"tributestore: dry run: the destination does not exist yet ({error})")
        yield None
        return
    with store:
        yield store


@cli.command()
@click.argument("source")
@click.argument("destination")
@click.option("--subset", is_flag=True, help="Allow DESTINATION to hold tributes SOURCE lacks.")
@click.option(
    "--independent",
    is_flag=True,
    help="SOURCE is a legacy THGBot directory: instead of comparing with tributestore's reading of "
    "it, re-read its raw files with the simplest code and check that every item, equipped item, "
    "prompt text and image is in DESTINATION.",
)
def verify(source: str, destination: str, subset: bool, independent: bool) -> None:
    """Compare two stores tribute by tribute (content digests and file bytes).

    Exits 0 when identical, 7 listing every difference otherwise.
    """
    from .copier import verify_stores

    with (
        ctrl_c_remembered() as interrupted,
        open_for_cli(source, "read") as src,
        open_for_cli(destination, "read") as dst,
        BarProgress(interrupted) as bar,
    ):
        if independent:
            found = src.independent_check(dst)
            if found is None:
                raise ConfigError(
                    f"--independent needs raw source files (a legacy directory); {src.url} has none"
                )
            differences = [f"raw source data: {line}" for line in found]
        else:
            differences = verify_stores(src, dst, subset=subset, progress=bar)
        total = src.counts().tributes
    for line in differences:
        out.print(f"MISMATCH: {line}")
    if differences:
        raise VerificationError(
            f"{count_differences(differences)} difference(s) between {source} and {destination}"
        )
    if independent:
        out.print(
            f"verified independently: every item, equipped item, prompt text and image of the raw "
            f"files of {source} is in {destination}"
        )
    else:
        out.print(f"identical: {total} tribute(s) compared")


@cli.command()
@click.argument("backup")
@click.argument("destination")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--accept-unverified",
    is_flag=True,
    help="Restore a backup that has no manifest (made by an older tributestore), "
    "after an integrity check; its completeness cannot be verified.",
)
@click.option(
    "--backup-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where DESTINATION is exported (as a JSON store) before it is changed, when it holds data "
    "[default: the directory BACKUP is in, else tributestore-backups].",
)
@click.option("--no-backup", is_flag=True, help="Do not back up DESTINATION before changing it.")
@click.option(
    "--into-other-store",
    is_flag=True,
    help="Restore the backup into a store other than the one it was taken of (refused otherwise).",
)
def restore(
    backup: str,
    destination: str,
    yes: bool,
    accept_unverified: bool,
    backup_dir: Path | None,
    no_backup: bool,
    into_other_store: bool,
) -> None:
    """Roll DESTINATION back to BACKUP (a backup directory written by 'copy' or 'restore').

    BACKUP must exist, be whole (its manifest, written last when the backup was
    made, must match its content) and be a backup of DESTINATION itself (its
    manifest records which store it was taken of; --into-other-store restores
    it elsewhere). Otherwise nothing is changed. Tributes not in the backup are
    deleted from DESTINATION, the others replaced; the question (or, with --yes,
    a line) says how many. DESTINATION, when it holds data, is first backed up
    as 'copy' does (--backup-dir, --no-backup), and the command that undoes the
    restore is printed.

    \b
    Example (the copy report prints the exact command; absolute paths take four slashes):
      tributestore restore json:////srv/bot/tributestore-backups/backup-20261127-101500-000000 sqlite:///thg.db
    """
    from .backup import DEFAULT_BACKUP_DIR, backup_root, backup_store, check_backup, restore_backup
    from .config import open_url, resolve_config
    from .plugins import registry

    refuse_one_store(backup, destination, source_is="backup", job="restore")
    target = resolve_config(destination).url
    registry().check_url(target)  # a bad destination URL: before any question
    resolved = resolve_config(backup).url
    root = backup_root(resolved)
    stage, saved = "checking", None
    try:
        with ctrl_c_remembered() as interrupted, open_url(resolved, "read") as src:
            try:
                with BarProgress(interrupted) as bar:
                    found = check_backup(src, root, accept_unverified=accept_unverified, progress=bar)
            except CorruptDataError as error:  # a damaged part of the backup, met while checking it
                raise VerificationError(f"backup {backup} is damaged: {error}; nothing was changed") from None
            if found.problems:
                raise VerificationError(f"{found.problems[0]}; nothing was changed" + _more(found.problems))
            for note in found.notes:
                err.print(f"tributestore: note: {note}")
            _refuse_another_store(found.manifest, backup, destination, target, into_other_store)
            with BarProgress(interrupted) as bar:
                planned, empty = _restore_plan(src, destination, bar)
            where = None if no_backup else backup_dir or (root.parent if root else Path(DEFAULT_BACKUP_DIR))
            if empty:
                safety = f"{destination} is empty: nothing to back up first"
            elif where is None:
                safety = f"{destination} is NOT backed up first (--no-backup)"
            else:
                safety = f"{destination} is backed up first into {where.resolve()}"
            what = f"restore {destination} from {backup}: {planned.describe()}; {safety}"
            if yes:
                out.print(what)
            elif not _confirmed(f"{what[0].upper()}{what[1:]}. Go ahead?"):
                err.print("tributestore: restore cancelled; nothing was changed")
                raise click.exceptions.Exit(1)
            with open_for_cli(destination, "write") as dst:
                if where is not None and dst.counts() != _no_counts():
                    stage = "backing up"
                    with BarProgress(interrupted) as bar:
                        saved = backup_store(dst, where, progress=bar)
                    _print_undo(saved, dst.url)
                stage = "restoring"
                with BarProgress(interrupted) as bar:
                    done = restore_backup(src, dst, progress=bar)
                kept = sorted(
                    {g.guild_id for g in dst.list_guilds()} - {g.guild_id for g in src.list_guilds()}
                )
    except KeyboardInterrupt:
        err.print(f"tributestore: interrupted; {_restore_left(stage, destination, saved)}")
        raise click.exceptions.Exit(130) from None
    except TributeStoreError as error:
        if stage != "restoring":
            raise
        # Stopped part-way through the writes (a lost connection, a full disk, a lock held too long).
        err.print(
            f"tributestore: error: {error}; the restore stopped part-way: "
            f"{_restore_left(stage, destination, saved)}"
        )
        raise click.exceptions.Exit(error.exit_code) from None
    if done.differences:
        raise VerificationError(f"restore incomplete: {done.differences[0]}")
    for guild_id in kept:  # said, never passed over in silence
        err.print(
            f"tributestore: note: guild {guild_id} was added to {destination} after the backup; its row "
            "(settings only, no tributes) is kept: guild rows are never deleted"
        )
    out.print(
        f"restored {destination} from {backup}: {done.describe()}"
        + (" (verified against its manifest)" if found.verified else " (verified against the backup)")
    )


def _restore_left(stage: str, destination: str, saved: Path | None) -> str:
    """What an interrupted restore left, by the stage it stopped in."""
    if stage != "restoring":
        return f"{destination} was not changed"
    before = f"; its backup from before the restore is {saved}" if saved is not None else ""
    return (
        f"{destination} is partly restored (whole tributes only); re-running the same command finishes "
        f"the restore{before}"
    )


def _no_counts() -> Counts:
    from .models import Counts

    return Counts()


def _refuse_another_store(
    manifest: dict[str, Any] | None, backup: str, destination: str, target: StoreURL, allowed: bool
) -> None:
    """A backup restored into another store than the one it was taken of (its manifest's ``store``)
    would silently replace that store's content: refused unless ``allowed``."""
    from .plugins import registry
    from .urls import describe_identity, same_identity

    taken_of = manifest.get("store") if manifest is not None else None
    if not isinstance(taken_of, dict):
        named = (
            f" (it names {manifest['source']!r})" if manifest is not None and manifest.get("source") else ""
        )
        err.print(
            f"tributestore: note: backup {backup} does not record which store it was taken of{named}: it "
            f"was made by an older tributestore, so it is not checked that it is a backup of {destination}"
        )
        return
    here = registry().identity(target)
    if here is not None and same_identity(taken_of, here):
        return
    shown = f"{destination} ({describe_identity(here)})" if here is not None else destination
    if allowed:
        err.print(
            f"tributestore: note: backup {backup} was taken of {describe_identity(taken_of)}; restoring it "
            f"into {shown} as --into-other-store asks"
        )
        return
    raise ConfigError(
        f"backup {backup} was taken of {describe_identity(taken_of)}, not of {shown}; nothing was changed "
        "(--into-other-store restores it there anyway)"
    )


def _restore_plan(
    backup: TributeStore, destination: str, progress: BarProgress
) -> tuple[RestoreCounts, bool]:
    """What restoring ``backup`` into ``destination`` will do, and whether the destination is empty
    (or does not exist yet): read only, nothing is created."""
    from .backup import plan_restore

    try:
        dst = open_for_cli(destination, "read")
    except StoreNotFoundError:
        return plan_restore(backup, None, progress=progress), True
    with dst:
        return plan_restore(backup, dst, progress=progress), dst.counts() == _no_counts()


def _print_undo(saved: Path, destination: str) -> None:
    """Where the destination was backed up, and the command (quoted for the shell) that restores it."""
    from .urls import path_url

    out.print(f"backup of the destination: {saved}")
    backup_url = shlex.quote(path_url(BACKUP_SCHEME, saved))
    out.print(f"  undo with: tributestore restore {backup_url} {shlex.quote(destination)}")
    if "***" in destination:
        out.print("  (the destination's password is shown as ***: write it there before running this)")


def _confirmed(question: str) -> bool:
    """The user's yes; no answer at all (end of input, as from a script) is a no."""
    try:
        return click.confirm(question)
    except click.exceptions.Abort:
        err.print("")
        return False


def _more(problems: list[str]) -> str:
    return f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""


@cli.command("finish-window")
@click.argument("url", required=False)
def finish_window(url: str | None) -> None:
    """End the transition window of a composite store (default: the configured one).

    Copies every tribute that still lives only in the fallback into the primary,
    never one deleted during the window (its tombstone), then checks that every
    record of the fallback is in the primary or deleted, and says so: the
    fallback is then no longer needed. Re-running is safe.
    """
    from .backend import TransitionWindow
    from .config import resolve_config
    from .plugins import registry

    resolved = resolve_config(url).url
    spec = registry().check_url(resolved)
    if not spec.children:  # refused before anything is opened or created
        raise ConfigError(
            f"{resolved.display} is not a transition window (a composite store with a primary and a "
            "fallback); nothing was opened"
        )
    for option in spec.children:  # those the window would open for writing: the primary
        if (spec.child_mode(resolved, option) if spec.child_mode else resolved.mode) == "write":
            _primary_exists(resolved, option)
    try:
        with ctrl_c_remembered() as interrupted, open_for_cli(url, "write") as store:
            window = store.backend
            if not isinstance(window, TransitionWindow):
                raise ConfigError(
                    f"{store.url} is not a transition window "
                    "(a composite store with a primary and a fallback)"
                )
            with BarProgress(interrupted) as bar:
                result = window.finish_window(progress=bar)
    except KeyboardInterrupt:
        err.print(
            "tributestore: interrupted; every tribute moved so far is whole in the primary, the others "
            "are still read from the fallback. Re-running finish-window resumes."
        )
        raise click.exceptions.Exit(130) from None
    out.print(f"copied into the primary: {result.promoted} tribute(s) that lived only in the fallback")
    out.print(f"deleted during the window and kept deleted: {result.deleted} tribute(s)")
    if result.left:
        shown = ", ".join(f"{tid} in guild {gid}" for gid, tid in result.left[:20])
        raise VerificationError(
            f"{len(result.left)} fallback tribute(s) are still only in the fallback: {shown}"
        )
    out.print(
        f"every record of the fallback {result.fallback} is in the primary or deleted: the fallback is no "
        f'longer needed. Point the configuration at the primary alone (url = "{result.primary}").'
    )


def _primary_exists(url: StoreURL, option: str) -> None:
    """A window ends in the primary the bot has been writing: a mistyped one would be created
    empty and declared finished.  Opened for reading, it must exist (:class:`StoreNotFoundError`)."""
    import dataclasses

    from .plugins import registry
    from .urls import parse_store_url

    value = url.option(option) or ""
    primary = dataclasses.replace(parse_store_url(value, url.base_dir), mode="read")
    try:
        registry().open_backend(primary).close()
    except StoreNotFoundError as error:
        raise StoreNotFoundError(
            f"the window's {option} {primary.display} does not exist ({error}); the window ends in the "
            f"store the bot has been writing: check the {option} URL"
        ) from None


def _plugin_commands() -> None:
    """Commands that plugins add (``tributestore_register_commands``), added once.

    A plugin cannot replace a built-in command, and a plugin that fails here
    costs its commands only (a warning), never the built-in ones: ``tributestore
    backends`` is how a broken plugin is diagnosed.
    """
    if getattr(cli, "_plugin_commands_added", False):
        return
    cli._plugin_commands_added = True  # type: ignore[attr-defined]
    try:
        from .plugins import registry

        hooks = registry().hooks
        if hooks is None:
            return
        extra = click.Group()
        hooks.register_commands(extra)
    except Exception as error:  # noqa: BLE001 - a broken plugin must not break the CLI
        err.print(f"tributestore: warning: plugin commands not loaded: {error}")
        return
    for name, command in extra.commands.items():
        if name in cli.commands:
            err.print(f"tributestore: warning: plugin command {name!r} clashes with a built-in one; ignored")
        else:
            cli.add_command(command, name)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: run the CLI, turning errors into messages and exit codes.

    Run as the process's command (no ``argv``: ``sys.argv`` is read), once the command's
    outcome is known a Ctrl-C no longer raises: it ends the process at once, as SIGINT's
    default action, instead of printing a KeyboardInterrupt traceback from whatever
    interpreter shutdown was doing (a thread pool joined, a stream flushed).  Called with
    ``argv`` (from Python, a test), the caller's signal handling is left alone.
    """
    try:
        code = _run(argv)
    except KeyboardInterrupt:  # arrived while an outcome was being reported
        code = 130
    if argv is None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    sys.exit(code)


def _run(argv: Sequence[str] | None) -> int:
    """The CLI's exit code; every error shown as one line."""
    try:
        with library_notes():
            result = cli.main(
                args=list(argv) if argv is not None else None, prog_name="tributestore", standalone_mode=False
            )
    except click.exceptions.Abort:
        err.print("tributestore: aborted")
        return 130
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except TributeStoreError as error:
        err.print(f"tributestore: error: {error}")
        return error.exit_code
    except KeyboardInterrupt:
        err.print("tributestore: interrupted")
        return 130
    except OSError as error:
        err.print(f"tributestore: error: {StorageError(str(error))}")
        return StorageError.exit_code
    except Exception as error:  # a bug here or in a plugin: one line, the traceback on request
        if os.environ.get(DEBUG_ENV):
            raise
        where = _raised_in(error)
        err.print(
            f"tributestore: internal error: {type(error).__name__}: {error}{where} "
            f"(a bug: please report it; {DEBUG_ENV}=1 shows the traceback)"
        )
        return INTERNAL_ERROR_EXIT
    return result if isinstance(result, int) else 0


def _raised_in(error: BaseException) -> str:
    """`` (in module.function)`` of the innermost frame that raised ``error``, for bug reports."""
    trace = error.__traceback__
    if trace is None:
        return ""
    while trace.tb_next is not None:
        trace = trace.tb_next
    frame = trace.tb_frame
    return f" (in {frame.f_globals.get('__name__', '?')}.{frame.f_code.co_name})"
