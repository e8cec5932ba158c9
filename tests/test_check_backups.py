"""``tributestore check`` names incomplete backups beside a store and removes them only on request.

A backup is whole once its manifest (``tributestore-backup.json``) is written,
last.  A copy killed while backing up leaves a ``backup-*`` directory without
one; ``check`` lists it (exit 1), ``check --remove-incomplete-backups`` deletes
it, and a backup another process is writing right now (its ``.lock.backup``
held) is neither reported nor removed.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest
from helpers import run_cli as run

from tributestore import backup as backup_module
from tributestore import open_store
from tributestore.backup import IN_PROGRESS_NAME, MANIFEST_NAME, backup_store, find_incomplete_backups

#: Selected by the tox factor json (see tests/conftest.py): these tests run once per Python.
pytestmark = pytest.mark.backend("json")

GUILD = 4242


def make_store(path: Path) -> str:
    url = f"sqlite:///{path}"
    with open_store(url) as store:
        store.create_tribute(GUILD, "D1F", name="Katniss")
        store.add_item(GUILD, "D1F", "bow")
    return url


def killed_backup(store_url: str, backup_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A backup interrupted after its data and before its manifest (as a killed copy leaves it)."""

    def killed(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(backup_module, "_write_manifest", killed)
    with open_store(store_url) as store, pytest.raises(KeyboardInterrupt):
        backup_store(store, backup_dir)
    monkeypatch.undo()
    (found,) = backup_dir.iterdir()
    assert not (found / MANIFEST_NAME).exists()
    return found


def test_incomplete_backup_in_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = make_store(tmp_path / "thg.db")
    incomplete = killed_backup(url, tmp_path / "tributestore-backups", monkeypatch)
    with open_store(url) as store:
        whole = backup_store(store, tmp_path / "tributestore-backups")
    result = run("check", url, cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"incomplete backup {incomplete}" in result.stdout
    assert "--remove-incomplete-backups" in result.stdout
    assert str(whole) not in result.stdout  # a whole backup is not reported
    assert incomplete.exists()  # reported only

    result = run("check", url, "--remove-incomplete-backups", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"removed incomplete backup {incomplete}" in result.stdout
    assert not incomplete.exists() and whole.exists()
    assert run("check", url, cwd=tmp_path).returncode == 0


def test_incomplete_backup_beside_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "srv"
    data.mkdir()
    url = make_store(data / "thg.db")
    incomplete = killed_backup(url, data / "tributestore-backups", monkeypatch)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run("check", f"sqlite:///{data / 'thg.db'}", cwd=elsewhere)
    assert result.returncode == 1 and f"incomplete backup {incomplete}" in result.stdout


def test_another_stores_incomplete_backup_is_not_this_stores_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A killed backup of a.db in ./tributestore-backups made 'check' of every store checked from
    that directory exit 1 (b.db, sound, listed a.db's backup as its problem)."""
    first, second = make_store(tmp_path / "a.db"), make_store(tmp_path / "b.db")
    incomplete = killed_backup(first, tmp_path / "tributestore-backups", monkeypatch)
    result = run("check", second, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert str(incomplete) not in result.stdout
    result = run("check", "sqlite:///a.db", cwd=tmp_path)  # its own store, however spelled
    assert result.returncode == 1 and f"incomplete backup {incomplete}" in result.stdout


def test_backup_being_written_is_left_alone(tmp_path: Path) -> None:
    url = make_store(tmp_path / "thg.db")
    writing = tmp_path / "tributestore-backups" / "backup-20260101-000000-000000"
    writing.mkdir(parents=True)
    fd = os.open(writing / IN_PROGRESS_NAME, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as backup_store holds it while it writes
        (found,) = find_incomplete_backups([tmp_path / "tributestore-backups"])
        assert found.in_progress
        result = run("check", url, "--remove-incomplete-backups", cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "being written by another process" in result.stdout
        assert writing.exists()
    finally:
        os.close(fd)
    result = run("check", url, cwd=tmp_path)  # its writer gone: now it is incomplete
    assert result.returncode == 1 and "incomplete backup" in result.stdout


def test_a_directory_holding_other_files_is_never_removed(tmp_path: Path) -> None:
    url = make_store(tmp_path / "thg.db")
    odd = tmp_path / "tributestore-backups" / "backup-mine"
    odd.mkdir(parents=True)
    (odd / "notes.txt").write_text("keep me\n")
    result = run("check", url, "--remove-incomplete-backups", cwd=tmp_path)
    assert result.returncode == 1 and "inspect and remove it by hand" in result.stdout
    assert (odd / "notes.txt").exists()


def test_a_backup_the_destination_changed_under_is_removed_and_the_copy_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bot writing the destination while a copy backs it up: the backup fails its own
    verification.  It is removed (``check`` called it "interrupted" though nothing was), and the
    copy's one-line error says the destination changed while it was backed up, that nothing was
    written, and what to do.  The bot's write lands (a second connection to the file) after the
    backup's copy and before its verification, deterministically."""
    from tributestore import copier
    from tributestore.cli import main

    url = make_store(tmp_path / "thg.db")
    with open_store(f"json:///{tmp_path}/src") as source:
        source.create_tribute(GUILD, "D2M", name="Peeta")
    real = copier.verify_stores
    bot_wrote: list[bool] = []

    def bot_writes_first(*args: object, **kwargs: object) -> list[str]:
        if not bot_wrote:  # the backup's verification: the first one of the copy
            with open_store(url) as bot:
                bot.add_item(GUILD, "D1F", "written by the bot meanwhile")
            bot_wrote.append(True)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(copier, "verify_stores", bot_writes_first)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stopped:
        main(["copy", f"json:///{tmp_path}/src", url])
    assert stopped.value.code == 7 and bot_wrote
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    (message,) = [line for line in stderr.splitlines() if not line.startswith("tributestore: note: ")]
    assert message.startswith("tributestore: error: "), stderr
    for needle in (
        "changed while it was being backed up",
        "a bot running on it",
        "tribute D1F",
        "nothing was written to it",
        "was removed",
        "Stop what writes to it",
        "--no-backup",
    ):
        assert needle in message, (needle, message)
    assert list((tmp_path / "tributestore-backups").glob("backup-*")) == []
    with open_store(url, mode="read") as destination:
        assert not destination.has_tribute(GUILD, "D2M")  # nothing written
        assert "written by the bot meanwhile" in destination.get_inventory(GUILD, "D1F").items
    monkeypatch.undo()
    result = run("check", url, cwd=tmp_path)
    assert result.returncode == 0 and "incomplete backup" not in result.stdout, result.stdout
