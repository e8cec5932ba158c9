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
