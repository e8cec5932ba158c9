"""A typo never looks like success: stores opened for reading must exist, restore checks its backup.

Every test runs the real CLI in a subprocess, in a temporary working directory,
and asserts the exit code, the one-line message, that the destination is
byte-for-byte unchanged where it must be, and that no file was created.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import run_cli as run

from tributestore import ConfigError, StoreNotFoundError, open_store
from tributestore.backup import MANIFEST_NAME

#: Selected by the tox factor sqlite (see tests/conftest.py): these tests run once per Python.
pytestmark = pytest.mark.backend("sqlite")

GUILD = 1395951775160340551
#: Tributes the bundled sample legacy directory holds.
SAMPLE_TRIBUTES = 21


def tribute_count(db: Path) -> int:
    """Tribute rows of an SQLite store, read with plain sqlite3."""
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM tributes").fetchone()[0])


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (hidden ones too) with its bytes."""
    files = {}
    for directory, _dirs, names in os.walk(root):
        for name in names:
            path = Path(directory) / name
            files[str(path.relative_to(root))] = path.read_bytes()
    return files


def one_line_error(result: subprocess.CompletedProcess[str], code: int, *needles: str) -> None:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    message = result.stderr.strip()
    assert message.count("\n") == 0, message
    for needle in needles:
        assert needle in message, (needle, message)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A working directory holding a legacy directory and its SQLite copy."""
    assert run("sample-legacy", "legacy", cwd=tmp_path).returncode == 0
    result = run("copy", "thgbot:///legacy", "sqlite:///thg.db", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return tmp_path


def make_backup(work: Path) -> Path:
    """Change the destination through a copy that overwrites: the copy backs it up first."""
    with open_store(f"json:///{work}/changed") as store:
        store.create_tribute(GUILD, "NEW1", name="Newcomer")
    result = run("copy", "--on-conflict", "skip", "json:///changed", "sqlite:///thg.db", cwd=work)
    assert result.returncode == 0, result.stderr
    backups = sorted((work / "tributestore-backups").iterdir())
    assert len(backups) == 1
    return backups[0]


# ------------------------------------------------------------------ restore
def test_restore_with_three_slashes_names_the_path_meant(work: Path) -> None:
    backup = make_backup(work)
    before = snapshot(work)
    result = run("restore", "--yes", f"json:///{str(backup).lstrip('/')}", "sqlite:///thg.db", cwd=work)
    one_line_error(result, 3, str(work / str(backup).lstrip("/")), f"json:///{backup}", "nothing was created")
    assert snapshot(work) == before


def test_restore_refuses_a_mistyped_backup_name(work: Path) -> None:
    backup = make_backup(work)
    before = snapshot(work)
    result = run("restore", "--yes", f"json:///{backup}x", "sqlite:///thg.db", cwd=work)
    one_line_error(result, 3, f"{backup}x does not exist")
    assert snapshot(work) == before


def test_restore_refuses_a_backup_without_manifest(work: Path) -> None:
    backup = make_backup(work)
    (backup / MANIFEST_NAME).unlink()  # what a copy killed while backing up leaves
    before = snapshot(work)
    result = run("restore", "--yes", f"json:///{backup}", "sqlite:///thg.db", cwd=work)
    one_line_error(result, 7, MANIFEST_NAME, "incomplete", "nothing was changed")
    assert snapshot(work) == before
    # An old backup (no manifest) is restored only when the user says so, with a note.
    result = run("restore", "--yes", "--accept-unverified", f"json:///{backup}", "sqlite:///thg.db", cwd=work)
    assert result.returncode == 0, result.stderr
    assert "completeness cannot be verified" in result.stderr
    assert tribute_count(work / "thg.db") == SAMPLE_TRIBUTES


def test_restore_refuses_a_backup_onto_itself(work: Path) -> None:
    backup = make_backup(work)
    before = snapshot(work)
    result = run("restore", "--yes", f"json:///{backup}", f"json:///{backup}/.", cwd=work)
    one_line_error(result, 2, "are the same store", "nothing to restore")
    assert snapshot(work) == before


def test_restore_refuses_a_backup_that_differs_from_its_manifest(work: Path) -> None:
    backup = make_backup(work)
    victim = next((backup / "guilds" / str(GUILD) / "tributes").glob("*.json"))
    victim.unlink()
    before = snapshot(work)
    result = run("restore", "--yes", f"json:///{backup}", "sqlite:///thg.db", cwd=work)
    one_line_error(result, 7, "listed in its manifest is missing", "nothing was changed")
    assert snapshot(work) == before


@pytest.mark.parametrize("answer", ["n\n", "\n", ""])
def test_restore_answered_no_changes_nothing_and_exits_1(work: Path, answer: str) -> None:
    """No, an empty answer (the default is no) and no answer at all (end of input) alike."""
    backup = make_backup(work)
    before = snapshot(work)
    result = run("restore", f"json:///{backup}", "sqlite:///thg.db", cwd=work, stdin=answer)
    assert result.returncode == 1, result.stderr
    assert "restore cancelled; nothing was changed" in result.stderr
    assert snapshot(work) == before


def test_restore_of_a_whole_backup_is_verified(work: Path) -> None:
    backup = make_backup(work)
    assert tribute_count(work / "thg.db") == SAMPLE_TRIBUTES + 1
    result = run("restore", "--yes", f"json:///{backup}", "sqlite:///thg.db", cwd=work)
    assert result.returncode == 0, result.stderr
    assert "verified against its manifest" in result.stdout
    assert tribute_count(work / "thg.db") == SAMPLE_TRIBUTES


def other_store(work: Path) -> Path:
    """Another store beside thg.db: the sample and three tributes of its own."""
    assert run("copy", "thgbot:///legacy", "sqlite:///other.db", cwd=work).returncode == 0
    with open_store(f"sqlite:///{work}/other.db") as store:
        for number in range(3):
            store.create_tribute(GUILD, f"OWN{number}", name="only in other")
    return work / "other.db"


def test_a_backup_records_where_its_store_is_and_is_not_restored_into_another(work: Path) -> None:
    """The manifest names the store by its resolved path (the URL was relative); restoring the
    backup into another store would replace that store's content: refused, exit 2, one line
    naming the store the backup is of, unless --into-other-store."""
    backup = make_backup(work)
    manifest = json.loads((backup / MANIFEST_NAME).read_text())
    assert manifest["source"] == "sqlite:///thg.db"  # as given
    assert manifest["store"] == {"kind": "file", "path": str((work / "thg.db").resolve())}
    other = other_store(work)
    before = snapshot(work)
    result = run("restore", "--yes", f"json:///{backup}", "sqlite:///other.db", cwd=work)
    one_line_error(result, 2, f"was taken of {(work / 'thg.db').resolve()}", "not of sqlite:///other.db")
    assert "--into-other-store" in result.stderr and "nothing was changed" in result.stderr
    assert snapshot(work) == before
    # Another spelling of the store it was taken of (absolute, through a symlink) is that store.
    (work / "link").symlink_to(work)
    result = run("restore", "--yes", f"json:///{backup}", f"sqlite:///{work}/link/thg.db", cwd=work)
    assert result.returncode == 0, result.stderr
    # Asked for, it is restored there, with a note.
    result = run(
        "restore", "--yes", "--into-other-store", f"json:///{backup}", "sqlite:///other.db", cwd=work
    )
    assert result.returncode == 0, result.stderr
    assert "restoring it into sqlite:///other.db" in " ".join(result.stderr.split())
    assert tribute_count(other) == SAMPLE_TRIBUTES


def test_a_backup_made_before_manifests_named_their_store_is_restored_with_a_note(work: Path) -> None:
    backup = make_backup(work)
    manifest = json.loads((backup / MANIFEST_NAME).read_text())
    del manifest["store"]
    (backup / MANIFEST_NAME).write_text(json.dumps(manifest))
    other = other_store(work)
    result = run("restore", "--yes", f"json:///{backup}", "sqlite:///other.db", cwd=work)
    assert result.returncode == 0, result.stderr
    assert "does not record which store it was taken of (it names 'sqlite:///thg.db')" in " ".join(
        result.stderr.split()
    )
    assert tribute_count(other) == SAMPLE_TRIBUTES


def test_restore_says_in_numbers_what_it_will_do(work: Path) -> None:
    """The question (and the line printed with --yes) counts the tributes deleted, replaced, added."""
    backup = make_backup(work)  # thg.db now holds NEW1, which the backup lacks
    with open_store(f"sqlite:///{work}/thg.db") as store:
        store.add_item(GUILD, "D1F", "changed since the backup")
        store.delete_tribute(GUILD, "D1M")
    expected = "1 tribute(s) deleted, 1 replaced, 1 added, 19 unchanged"
    before = snapshot(work)
    result = run("restore", f"json:///{backup}", "sqlite:///thg.db", cwd=work, stdin="n\n")
    assert result.returncode == 1, result.stderr
    question = " ".join(result.stdout.split())
    assert expected in question and "is backed up first into" in question, question
    assert snapshot(work) == before
    result = run("restore", "--yes", f"json:///{backup}", "sqlite:///thg.db", cwd=work)
    assert result.returncode == 0, result.stderr
    said = " ".join(result.stdout.split())
    assert f"restore sqlite:///thg.db from json:///{backup}: {expected}" in said
    assert (
        f"restored sqlite:///thg.db from json:///{backup}: {expected} (verified against its manifest)" in said
    )


def test_restore_backs_up_the_destination_first_and_prints_the_undo(work: Path) -> None:
    """The wrong backup restored (here into another store, on purpose) can be undone: the command
    printed restores the destination as it was."""
    backup = make_backup(work)
    other = other_store(work)
    result = run(
        "restore", "--yes", "--into-other-store", f"json:///{backup}", "sqlite:///other.db", cwd=work
    )
    assert result.returncode == 0, result.stderr
    assert tribute_count(other) == SAMPLE_TRIBUTES
    saved = sorted(set((work / "tributestore-backups").iterdir()) - {backup})
    assert len(saved) == 1 and (saved[0] / MANIFEST_NAME).is_file()  # beside the backup restored
    assert f"backup of the destination: {saved[0]}" in result.stdout
    (undo,) = [
        line.split("undo with: ", 1)[1] for line in result.stdout.splitlines() if "undo with: " in line
    ]
    assert undo == f"tributestore restore {shlex.quote(f'json:///{saved[0]}')} sqlite:///other.db"
    cli = f"{sys.executable} -c 'from tributestore.cli import main; main()'"
    shell = subprocess.run(
        ["bash", "-c", undo.replace("tributestore", cli, 1) + " --yes"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shell.returncode == 0, shell.stderr
    assert tribute_count(other) == SAMPLE_TRIBUTES + 3


def test_restore_backup_options_and_an_empty_destination(work: Path) -> None:
    backup = make_backup(work)
    backups = set((work / "tributestore-backups").iterdir())
    result = run("restore", "--yes", "--no-backup", f"json:///{backup}", "sqlite:///thg.db", cwd=work)
    assert result.returncode == 0, result.stderr
    assert "NOT backed up first (--no-backup)" in result.stdout and "undo with" not in result.stdout
    assert set((work / "tributestore-backups").iterdir()) == backups
    result = run(
        "restore", "--yes", "--backup-dir", "elsewhere", f"json:///{backup}", "sqlite:///thg.db", cwd=work
    )
    assert result.returncode == 0, result.stderr
    (saved,) = (work / "elsewhere").iterdir()
    assert f"backup of the destination: {saved}" in result.stdout
    # An empty destination (here one that does not exist yet) has nothing to back up.
    result = run("restore", "--yes", "--into-other-store", f"json:///{backup}", "sqlite:///new.db", cwd=work)
    assert result.returncode == 0, result.stderr
    assert "sqlite:///new.db is empty: nothing to back up first" in " ".join(result.stdout.split())
    assert "undo with" not in result.stdout
    assert set((work / "tributestore-backups").iterdir()) == backups
    assert tribute_count(work / "new.db") == SAMPLE_TRIBUTES


def test_restore_names_a_guild_row_the_undone_copy_added(work: Path) -> None:
    """Guild rows are never deleted: a guild the copy brought stays, and restore says so."""
    with open_store(f"json:///{work}/changed") as store:
        store.put_guild(777, log_channel_id=42)
        store.create_tribute(777, "NEW1")
    assert (
        run("copy", "--on-conflict", "skip", "json:///changed", "sqlite:///thg.db", cwd=work).returncode == 0
    )
    (backup,) = (work / "tributestore-backups").iterdir()
    result = run("restore", "--yes", f"json:///{backup}", "sqlite:///thg.db", cwd=work)
    assert result.returncode == 0, result.stderr
    assert (
        "note: guild 777 was added to sqlite:///thg.db after the backup; its row (settings only, "
        "no tributes) is kept"
    ) in " ".join(result.stderr.split())
    with open_store(f"sqlite:///{work}/thg.db", mode="read") as store:
        assert store.list_tributes(777) == []


# ------------------------------------------------------- sources must exist
@pytest.mark.parametrize(
    ("source", "shown"),
    [
        ("json:///nonexistent/dir", "nonexistent/dir"),
        ("json:////abs/missing", "/abs/missing"),
        ("json:relative", "relative"),
        ("sqlite:///nope.db", "nope.db"),
    ],
)
def test_copy_from_a_missing_source_creates_nothing(tmp_path: Path, source: str, shown: str) -> None:
    result = run("copy", source, "sqlite:///x.db", cwd=tmp_path)
    one_line_error(result, 3, shown, "does not exist", "nothing was created")
    assert snapshot(tmp_path) == {}
    assert not Path("/abs/missing").exists()


@pytest.mark.parametrize("command", ["check", "stats"])
def test_read_commands_on_a_missing_store_create_nothing(tmp_path: Path, command: str) -> None:
    for url in ("json:///typo", "sqlite:///typo.db"):
        result = run(command, url, cwd=tmp_path)
        one_line_error(result, 3, str(tmp_path / url.split("///")[1]))
    result = run("verify", "sqlite:///a.db", "json:///b", cwd=tmp_path)
    one_line_error(result, 3, str(tmp_path / "a.db"))
    assert snapshot(tmp_path) == {}


def test_a_directory_that_is_not_a_store_is_refused_for_reading(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("buy rope\n")
    before = snapshot(tmp_path)
    result = run("copy", "json:///notes", "sqlite:///x.db", cwd=tmp_path)
    one_line_error(result, 3, "not a tributestore JSON store", str(tmp_path / "notes"))
    assert snapshot(tmp_path) == before  # no .lock, no x.db


def test_an_sqlite_path_naming_a_directory_says_so_in_every_mode(tmp_path: Path) -> None:
    """A directory named as an SQLite file is said to be one, by every command and mode alike
    (reading said it 'does not exist', which sent users looking for a typo), creating nothing."""
    (tmp_path / "d.db").mkdir()
    assert run("sample-legacy", "legacy", cwd=tmp_path).returncode == 0
    before = snapshot(tmp_path)
    shown = f"{tmp_path / 'd.db'} is a directory, not an SQLite database file"
    for command in (
        ("stats", "sqlite:///d.db"),
        ("check", f"sqlite:///{tmp_path}/d.db"),
        ("config", "sqlite:///d.db"),
        ("verify", "sqlite:///d.db", "thgbot:///legacy"),
        ("copy", "sqlite:///d.db", "json:///x"),
        ("copy", "thgbot:///legacy", "sqlite:///d.db"),
        ("copy", "--dry-run", "thgbot:///legacy", "sqlite:///d.db"),
    ):
        result = run(*command, cwd=tmp_path)
        one_line_error(result, 2, shown, "nothing was created")
        assert "does not exist" not in result.stderr, command
    for mode in ("read", "write"):
        with pytest.raises(ConfigError, match="is a directory, not an SQLite database file"):
            open_store(f"sqlite:///{tmp_path}/d.db", mode=mode)  # type: ignore[arg-type]
    # What the directory is, when another backend knows it: in config as on opening.
    for command in ("config", "stats"):
        result = run(command, "sqlite:///legacy", cwd=tmp_path)
        one_line_error(result, 2, "is a directory", "open it read-only as thgbot:///legacy")
    assert snapshot(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.db", "legacy"]
    assert list((tmp_path / "d.db").iterdir()) == []


def test_a_missing_relative_path_is_shown_resolved_never_as_a_guess_at_the_root(tmp_path: Path) -> None:
    """sqlite:///thgg.db that does not exist: the hint named sqlite:////thgg.db (at /, not meant).
    It now says where the relative path was looked for; 'did you mean' only when the path taken
    as absolute exists (three slashes typed for four)."""
    result = run("stats", "sqlite:///thg_missing_here.db", cwd=tmp_path)
    one_line_error(result, 3, f"{tmp_path / 'thg_missing_here.db'} does not exist", f"taken from {tmp_path}")
    assert ":////thg_missing_here.db" not in result.stderr and "did you mean" not in result.stderr
    (tmp_path / "real.db").touch()  # the relative twin does not exist, the absolute one does
    relative = str(tmp_path / "real.db").lstrip("/")
    result = run("stats", f"sqlite:///{relative}", cwd=tmp_path)
    one_line_error(result, 3, f"did you mean the absolute path {tmp_path / 'real.db'}?")
    assert f"write sqlite:///{tmp_path / 'real.db'}" in result.stderr
    assert snapshot(tmp_path) == {"real.db": b""}


def test_question_mark_and_hash_in_a_directory_name(tmp_path: Path) -> None:
    odd = tmp_path / "we?ird#dir"
    with open_store(f"json:///{str(odd).replace('?', '%3F').replace('#', '%23')}") as store:
        store.create_tribute(GUILD, "D1F")
    before = snapshot(tmp_path)
    cut = run("stats", f"json:///{odd}", cwd=tmp_path)
    one_line_error(cut, 2, "'#'", "%23")
    question = tmp_path / "a?b"
    cut = run("stats", f"json:///{question}", cwd=tmp_path)
    one_line_error(cut, 2, "unknown option 'b'", f"the path would be {tmp_path / 'a'}", "%3F")
    assert snapshot(tmp_path) == before
    encoded = run("stats", f"json:///{str(odd).replace('?', '%3F').replace('#', '%23')}", cwd=tmp_path)
    assert encoded.returncode == 0, encoded.stderr
    assert "│ tributes │ 1" in encoded.stdout


def test_sqlite_with_two_slashes_is_an_error_not_memory(work: Path) -> None:
    before = snapshot(work)
    result = run("copy", "thgbot:///legacy", "sqlite://thg2.db", cwd=work)
    one_line_error(result, 2, "host part 'thg2.db'", "sqlite:///thg2.db")
    result = run("copy", "thgbot:///legacy", "sqlite://", cwd=work)
    one_line_error(result, 2, "sqlite:///:memory:")
    result = run("copy", "thgbot:///legacy", "sqlite:///:memory:", cwd=work)
    one_line_error(result, 2, "in-memory", "lost at exit")
    assert snapshot(work) == before


# ------------------------------------------------------ no stray files
def test_refused_destination_gets_no_lock_file(work: Path) -> None:
    (work / "photos").mkdir()
    (work / "photos" / "cat.png").write_bytes(b"\x89PNG")
    before = snapshot(work)
    result = run("copy", "thgbot:///legacy", "json:///photos", cwd=work)
    one_line_error(result, 5, "is not empty and is not a tributestore JSON store", "cat.png")
    assert snapshot(work) == before


def test_refused_legacy_source_gets_no_lock_file(work: Path) -> None:
    (work / "legacy" / "inventories" / "inventories.json").write_text("{not json")
    before = snapshot(work)
    result = run("copy", "thgbot:///legacy", "sqlite:///other.db", cwd=work)
    one_line_error(result, 6, "inventories.json")
    assert snapshot(work) == before


def test_dry_run_writes_nothing_anywhere(work: Path) -> None:
    before = snapshot(work)
    result = run("copy", "--dry-run", "thgbot:///legacy", "sqlite:///new.db", cwd=work)
    assert result.returncode == 0, result.stderr
    assert f"{SAMPLE_TRIBUTES} new" in result.stdout and "does not exist yet" in result.stderr
    result = run("copy", "--dry-run", "thgbot:///legacy", "json:///newdir", cwd=work)
    assert result.returncode == 0, result.stderr
    assert snapshot(work) == before
    assert not (work / "new.db").exists() and not (work / "newdir").exists()


def test_a_copy_that_writes_nothing_makes_no_backup(work: Path) -> None:
    before = snapshot(work)
    result = run("copy", "thgbot:///legacy", "sqlite:///thg.db", cwd=work)
    assert result.returncode == 0, result.stderr
    assert f"{SAMPLE_TRIBUTES} already identical" in result.stdout and "no backup made" in result.stdout
    assert not (work / "tributestore-backups").exists()
    assert snapshot(work) == before


# ------------------------------------------------------------ messages
def test_copy_report_counts_guilds_once(tmp_path: Path) -> None:
    assert run("sample-legacy", "legacy", cwd=tmp_path).returncode == 0
    result = run("copy", "thgbot:///legacy", "sqlite:///thg.db", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "│ guilds   │ 4         │ 4       │" in result.stdout
    assert "guilds written:" not in result.stdout
    assert f"created a new sqlite store at {tmp_path / 'thg.db'}" in result.stderr


def test_check_and_config_show_a_composites_parts(work: Path) -> None:
    assert run("copy", "sqlite:///thg.db", "json:///fallback", cwd=work).returncode == 0
    url = "composite:?primary=sqlite:///thg.db&fallback=json:///fallback"
    result = run("check", url, cwd=work)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == (
        "no problems found in composite:?primary=sqlite:///thg.db&fallback=json:///fallback"
    )
    result = run("config", url, cwd=work)
    assert "option primary: sqlite:///thg.db" in result.stdout
    assert "option fallback: json:///fallback" in result.stdout


def test_interrupted_copy_says_rerunning_resumes(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path}/big.db") as store, store.transaction():
        for number in range(600):
            store.create_tribute(GUILD, f"T{number}")
            store.add_item(GUILD, f"T{number}", f"item {number}")
    command = [sys.executable, "-c", "from tributestore.cli import main; main()", "copy"]
    process = subprocess.Popen(
        [*command, "sqlite:///big.db", "json:///x"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not (tmp_path / "x" / "guilds").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Re-running the same command resumes" in err and "Traceback" not in err
    result = run("copy", "sqlite:///big.db", "json:///x", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "verified" in result.stdout


# ------------------------------------------------------------- library
def test_library_read_mode_refuses_and_write_mode_logs_creation(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreNotFoundError, match="nothing was created"):
        open_store("sqlite:///bot.db", mode="read")
    assert snapshot(tmp_path) == {}
    with caplog.at_level(logging.WARNING, logger="tributestore"), open_store("sqlite:///bot.db"):
        pass
    assert [r.getMessage() for r in caplog.records] == [
        f"created a new sqlite store at {tmp_path / 'bot.db'} (sqlite:///bot.db)"
    ]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tributestore"), open_store("sqlite:///bot.db", mode="read"):
        pass
    assert caplog.records == []


def test_a_composite_with_a_mistyped_fallback_creates_no_primary(tmp_path: Path) -> None:
    assert run("sample-legacy", "config", cwd=tmp_path).returncode == 0
    (tmp_path / "tributestore.toml").write_text(
        '[store]\nurl = "composite:"\nprimary = "sqlite:///thg.db"\nfallback = "thgbot:///confg?guild=7"\n'
    )
    before = snapshot(tmp_path)
    result = run(
        "copy",
        "thgbot:///config",
        "composite:?primary=sqlite:///thg.db&fallback=thgbot:///confg",
        cwd=tmp_path,
    )
    one_line_error(result, 3, str(tmp_path / "confg"), "does not exist")
    bot = subprocess.run(
        [sys.executable, "-c", "from tributestore import open_store; open_store()"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bot.returncode != 0 and "StoreNotFoundError" in bot.stderr and "confg does not exist" in bot.stderr
    assert snapshot(tmp_path) == before, "the primary was created although the fallback is missing"


def test_the_printed_undo_command_runs_as_printed_for_a_composite_destination(tmp_path: Path) -> None:
    """A composite's URL holds '&': the report quotes it, so the line pasted into a shell restores."""
    open_store(f"json:///{tmp_path}/fallback").close()
    destination = "composite:?primary=sqlite:///p.db&fallback=json:///fallback"
    with open_store(f"json:///{tmp_path}/first") as store:
        store.create_tribute(GUILD, "D1F", name="before")
    with open_store(f"json:///{tmp_path}/second") as store:
        store.create_tribute(GUILD, "D1F", name="after")
    assert run("copy", "json:///first", destination, "--no-backup", cwd=tmp_path).returncode == 0
    result = run("copy", "--on-conflict", "overwrite", "json:///second", destination, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (undo,) = [
        line.split("undo with: ", 1)[1] for line in result.stdout.splitlines() if "undo with: " in line
    ]
    cli = f"{sys.executable} -c 'from tributestore.cli import main; main()'"
    shell = subprocess.run(
        ["bash", "-c", undo.replace("tributestore", cli, 1) + " --yes"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shell.returncode == 0, shell.stderr
    with open_store(f"sqlite:///{tmp_path}/p.db", mode="read") as primary:
        assert primary.get_tribute(GUILD, "D1F").name == "before"


def test_restore_refuses_a_bad_destination_url_before_asking(work: Path) -> None:
    backup = make_backup(work)
    result = run("restore", f"json:///{backup}", "sqlite://thg.db", cwd=work, stdin="y\n")
    assert result.returncode == 2 and "host part" in result.stderr, result.stderr
    assert "Replace the content" not in result.stdout + result.stderr


def _swallowing(function: str) -> str:
    """A script running the CLI with ``tributestore.copier.<function>`` first losing a SIGINT sent
    to the process: its KeyboardInterrupt raised where Python can only report it as "Exception
    ignored" (a finaliser here; pydantic-core building a validator did the same)."""
    return (
        "import os, signal\n"
        "import tributestore.copier as copier\n"
        f"real = copier.{function}\n"
        "class Finaliser:\n"
        "    def __del__(self):\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "        for _ in range(100000):\n"
        "            pass\n"
        "def swallowing(*args, **kwargs):\n"
        "    Finaliser()\n"
        "    return real(*args, **kwargs)\n"
        f"copier.{function} = swallowing\n"
        "from tributestore.cli import main\n"
        "main()\n"
    )


def test_a_ctrl_c_swallowed_on_the_way_still_stops_a_verify(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path}/a.db") as store:
        store.create_tribute(GUILD, "T1")
    result = subprocess.run(
        [sys.executable, "-c", _swallowing("compare_stores"), "verify", "sqlite:///a.db", "sqlite:///a.db"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 130 and "aborted" in result.stderr, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr


def test_a_ctrl_c_swallowed_on_the_way_still_stops_the_copy(tmp_path: Path) -> None:
    """A KeyboardInterrupt raised where it cannot pass (pydantic building a validator at first use
    reports it as "Exception ignored" and goes on) was lost: the interrupted copy ran to its end and
    exited 0.  The CLI remembers the Ctrl-C and the copy's next step raises it again."""
    with open_store(f"sqlite:///{tmp_path}/big.db") as store, store.transaction():
        for number in range(30):
            store.create_tribute(GUILD, f"T{number}")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            _swallowing("write_copy"),
            "copy",
            "sqlite:///big.db",
            "json:///x",
            "--batch-size",
            "5",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 130, result.stdout + result.stderr
    assert "Re-running the same command resumes" in result.stderr
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr
