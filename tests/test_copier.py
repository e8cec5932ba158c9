"""tributestore copy: legacy -> SQLite -> JSON, conflicts, resume after a kill, backup and restore."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
from helpers import RecordingProgress as PhaseRecorder
from helpers import run_cli

from tributestore import AlreadyExistsError, CorruptDataError, TributeStore, open_store
from tributestore.backup import backup_store, check_backup, plan_restore, restore_backup
from tributestore.copier import copy_store, verify_stores
from tributestore.models import Counts

#: Selected by the tox factor sqlite (see tests/conftest.py): these tests run once per Python.
pytestmark = pytest.mark.backend("sqlite")

SAMPLE = resources.files("tributestore.backends.thgbot_backend") / "sample_legacy"


@pytest.fixture
def legacy() -> Iterator[TributeStore]:
    with resources.as_file(SAMPLE) as path, open_store(f"thgbot:///{path}") as store:
        yield store


def bundles(store: TributeStore) -> list[object]:
    return [b.model_dump() for b in store.iter_bundles()]


def file_bytes(store: TributeStore) -> dict[tuple[int, str, str], bytes]:
    return {
        (f.guild_id, f.tribute_id, f.name): store.read_file(f.guild_id, f.tribute_id, f.name)
        for b in store.iter_bundles()
        for f in b.files
    }


def test_legacy_to_sqlite_to_json_keeps_every_field(legacy: TributeStore, tmp_path: Path) -> None:
    assert legacy.counts().tributes > 10
    with open_store(f"sqlite:///{tmp_path}/thg.db") as sqlite, open_store(f"json:///{tmp_path}/js") as js:
        first = copy_store(legacy, sqlite)
        assert first.ok and first.verified and first.written.tributes == legacy.counts().tributes
        assert first.warnings == list(legacy.warnings)
        second = copy_store(sqlite, js)
        assert second.ok
        for store in (sqlite, js):
            assert bundles(store) == bundles(legacy)
            assert store.list_guilds() == legacy.list_guilds()
            assert file_bytes(store) == file_bytes(legacy)
            assert store.counts() == legacy.counts()
        assert verify_stores(legacy, js) == []


def test_rerun_is_idempotent(legacy: TributeStore, tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path}/thg.db") as dst:
        copy_store(legacy, dst)
        again = copy_store(legacy, dst, backup_dir=tmp_path / "backups")
        assert again.ok and again.new == 0 and again.identical == legacy.counts().tributes
        assert again.written == Counts()


def test_conflicts_fail_skip_overwrite(tmp_path: Path) -> None:
    with open_store(f"json:///{tmp_path}/src") as src, open_store(f"sqlite:///{tmp_path}/dst.db") as dst:
        src.create_tribute(1, "D1F", name="source")
        src.add_item(1, "D1F", "Knife")
        src.create_tribute(1, "D2F", name="new one")
        dst.create_tribute(1, "D1F", name="destination")
        with pytest.raises(AlreadyExistsError, match="D1F"):
            copy_store(src, dst)
        assert not dst.has_tribute(1, "D2F"), "a failed plan must write nothing"
        plan = copy_store(src, dst, on_conflict="skip", dry_run=True)
        assert (plan.new, plan.conflicting) == (1, 1) and not dst.has_tribute(1, "D2F")
        skipped = copy_store(src, dst, on_conflict="skip")
        assert skipped.ok and dst.get_tribute(1, "D1F").name == "destination" and dst.has_tribute(1, "D2F")
        overwritten = copy_store(src, dst, on_conflict="overwrite")
        assert overwritten.ok and dst.get_tribute(1, "D1F").name == "source"
        assert verify_stores(src, dst) == []


def test_backup_and_restore(tmp_path: Path) -> None:
    with open_store(f"json:///{tmp_path}/src") as src, open_store(f"sqlite:///{tmp_path}/dst.db") as dst:
        src.create_tribute(1, "D1F", name="from source")
        src.create_tribute(1, "D3F")
        dst.create_tribute(1, "D1F", name="original")
        dst.add_item(1, "D1F", "Original knife")
        report = copy_store(src, dst, on_conflict="overwrite", backup_dir=tmp_path / "backups")
        assert report.backup is not None and report.backup.parent == (tmp_path / "backups").resolve()
        assert dst.get_tribute(1, "D1F").name == "from source"
        with open_store(f"json:///{report.backup}") as backup:
            done = restore_backup(backup, dst)
        assert done.differences == []
        assert (done.deleted, done.replaced, done.added, done.unchanged) == (1, 1, 0, 0)
        assert dst.get_tribute(1, "D1F").name == "original" and not dst.has_tribute(1, "D3F")
        assert dst.get_inventory(1, "D1F").items == ["Original knife"]


def test_backup_check_plan_and_restore_report_their_progress(tmp_path: Path) -> None:
    """A restore of 20,000 tributes ran silent for half a minute: each step of it reports its
    phases and totals (the CLI draws them as a bar on a terminal's stderr)."""
    with open_store(f"json:///{tmp_path}/src") as src, open_store(f"sqlite:///{tmp_path}/dst.db") as dst:
        for number in range(3):
            src.create_tribute(1, f"S{number}")
            dst.create_tribute(1, f"S{number}", name="original")
        dst.create_tribute(1, "D9F")
        made = PhaseRecorder()
        saved = backup_store(dst, tmp_path / "backups", progress=made)
        assert made.phases == [
            ["backup checking", 4, 4],
            ["backup copying", 4, 4],
            ["backup verifying", 4, 4],
        ]
        copy_store(src, dst, on_conflict="overwrite", verify=False)  # 3 replaced; D9F kept
        dst.delete_tribute(1, "D9F")
        dst.create_tribute(1, "NEW", name="after the backup")
        with open_store(f"json:///{saved}", mode="read") as backup:
            checked = PhaseRecorder()
            assert check_backup(backup, saved, accept_unverified=False, progress=checked).problems == []
            assert checked.phases == [["checking backup", 4, 4], ["checking files", 4, 4]]
            planned = PhaseRecorder()
            counts = plan_restore(backup, dst, progress=planned)
            assert (counts.deleted, counts.replaced, counts.added, counts.unchanged) == (1, 3, 1, 0)
            assert planned.phases == [["comparing", 4, 4]]
            restored = PhaseRecorder()
            done = restore_backup(backup, dst, progress=restored)
        assert done.differences == [] and (done.deleted, done.replaced, done.added) == (1, 3, 1)
        assert restored.phases == [
            ["deleting", 1, 1],
            ["checking", 4, 4],
            ["copying", 4, 4],
            ["verifying", 4, 4],
        ]


def test_restoring_a_backup_with_a_damaged_file_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    with open_store(f"json:///{tmp_path}/src") as src, open_store(f"sqlite:///{tmp_path}/dst.db") as dst:
        src.create_tribute(1, "D1F", name="from source")
        dst.create_tribute(1, "D1F", name="original")
        dst.add_file(1, "D1F", "a.png", b"original bytes")
        report = copy_store(src, dst, on_conflict="overwrite", backup_dir=tmp_path / "backups")
    assert report.backup is not None
    (blob,) = [
        p for p in (report.backup / "blobs").rglob("*") if p.is_file() and p.read_bytes() == b"original bytes"
    ]
    blob.write_bytes(b"garbage")
    result = run_cli("restore", f"json:///{report.backup}", f"sqlite:///{tmp_path}/dst.db", "--yes")
    assert result.returncode == 7, result.stderr
    assert "is damaged" in result.stderr and result.stderr.rstrip().endswith("nothing was changed")
    with open_store(f"sqlite:///{tmp_path}/dst.db", mode="read") as dst:
        assert dst.get_tribute(1, "D1F").name == "from source"


def test_verify_lists_differences(tmp_path: Path) -> None:
    with open_store(f"json:///{tmp_path}/a") as a, open_store(f"sqlite:///{tmp_path}/b.db") as b:
        a.create_tribute(1, "D1F")
        a.create_tribute(1, "D2F")
        copy_store(a, b)
        b.add_item(1, "D1F", "extra")
        b.create_tribute(1, "D9F")
        a.delete_tribute(1, "D2F")
        differences = verify_stores(a, b)
        assert differences == [
            "tribute D1F in guild 1: inventory differ",
            "tribute D2F in guild 1: only in destination",
            "tribute D9F in guild 1: only in destination",
        ]
        cli = [sys.executable, "-c", "from tributestore.cli import main; main()"]
        result = subprocess.run(
            [*cli, "verify", f"json:///{tmp_path}/a", f"sqlite:///{tmp_path}/b.db"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 7 and "D1F" in result.stdout and "Traceback" not in result.stderr


def _make_source(url: str, tributes: int) -> None:
    with open_store(url) as store, store.transaction():
        for n in range(tributes):
            tid = f"T{n:04d}"
            store.create_tribute(7, tid, name=f"tribute {n}")
            for item in range(5):
                store.add_item(7, tid, f"item {item} of {tid}")
            store.add_file(7, tid, f"{tid}_1700000000.png", b"\x89PNG" + tid.encode())
            store.set_prompt(7, tid, f"prompt of {tid}", files=[f"{tid}_1700000000.png"])


@pytest.mark.parametrize("destination", ["json", "sqlite"])
def test_copy_killed_then_rerun_ends_identical(tmp_path: Path, destination: str) -> None:
    source_url = f"sqlite:///{tmp_path}/src.db"
    _make_source(source_url, 300)
    dst_url = f"json:///{tmp_path}/dst" if destination == "json" else f"sqlite:///{tmp_path}/dst.db"
    command = [
        sys.executable,
        "-c",
        "from tributestore.cli import main; main()",
        "copy",
        source_url,
        dst_url,
        "--batch-size",
        "1",
        "--no-backup",
    ]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path)
    killed_at = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and child.poll() is None:
        written = _written(tmp_path, destination)
        if written >= 20:
            os.kill(child.pid, signal.SIGKILL)
            killed_at = written
            break
        time.sleep(0.01)
    child.wait(timeout=60)
    assert killed_at is not None, "the copy finished before it could be killed; make the source larger"
    with open_store(dst_url) as dst:
        partial = dst.counts().tributes
    assert 0 < partial < 300
    rerun = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "verified" in rerun.stdout
    with open_store(source_url) as src, open_store(dst_url) as dst:
        assert verify_stores(src, dst) == []


def _written(tmp_path: Path, destination: str) -> int:
    if destination == "json":
        tributes = tmp_path / "dst" / "guilds" / "7" / "tributes"
        return len(list(tributes.glob("*.json"))) if tributes.is_dir() else 0
    import sqlite3

    path = tmp_path / "dst.db"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as connection:
            return int(connection.execute("select count(*) from tributes").fetchone()[0])
    except sqlite3.Error:
        return 0


class RecordingProgress:
    def __init__(self) -> None:
        self.phases: dict[str, list[int | None]] = {}
        self.current = ""

    def start(self, phase: str, total: int | None) -> None:
        self.current = phase
        self.phases[phase] = [total, 0]

    def advance(self, amount: int = 1) -> None:
        done = self.phases[self.current][1]
        assert done is not None
        self.phases[self.current][1] = done + amount


def test_progress_reaches_the_total_in_every_phase(legacy: TributeStore, tmp_path: Path) -> None:
    progress = RecordingProgress()
    with open_store(f"sqlite:///{tmp_path}/thg.db") as dst:
        copy_store(legacy, dst, progress=progress, batch_size=7)
    total = legacy.counts().tributes
    assert progress.phases == {phase: [total, total] for phase in ("checking", "copying", "verifying")}


def test_skip_keeps_differing_guild_settings_and_still_verifies(tmp_path: Path) -> None:
    with open_store(f"json:///{tmp_path}/src") as src, open_store(f"sqlite:///{tmp_path}/dst.db") as dst:
        src.put_guild(1, log_channel_id=10)
        src.create_tribute(1, "D1F")
        dst.put_guild(1, log_channel_id=99)
        report = copy_store(src, dst, on_conflict="skip")
        assert report.ok, report.differences
        assert report.conflicts == ["guild 1: settings differ"]
        assert dst.get_guild(1).log_channel_id == 99 and dst.has_tribute(1, "D1F")
        assert verify_stores(src, dst) == ["guild 1: guild settings differ"]


def test_backup_directory_names_are_taken_literally(tmp_path: Path) -> None:
    odd = tmp_path / "backups?create=false&x=%41"
    with open_store(f"json:///{tmp_path}/src") as src, open_store(f"sqlite:///{tmp_path}/dst.db") as dst:
        src.create_tribute(1, "D1F")
        dst.create_tribute(1, "D9F")
        report = copy_store(src, dst, backup_dir=odd)
    assert report.backup is not None and report.backup.parent == odd.resolve()
    assert (report.backup / "tributestore.json").is_file()


def test_a_damaged_source_tribute_stops_the_copy_before_anything_is_written(tmp_path: Path) -> None:
    """The plan reads every source tribute, even into an empty destination: a source that cannot
    be read whole is found before the first write, not after half the tributes were copied."""
    with open_store(f"sqlite:///{tmp_path}/src.db") as src, src.transaction():
        for number in range(450):  # more than a page of the SQL listing (200)
            src.create_tribute(1, f"T{number:03d}", name=f"Tribute {number}")
    with sqlite3.connect(tmp_path / "src.db") as raw:  # a hand-edited row, counted but unreadable
        assert raw.execute("UPDATE inventories SET capacity = -1 WHERE tribute_id = 'T449'").rowcount == 1
    with (
        open_store(f"sqlite:///{tmp_path}/src.db", mode="read") as src,
        open_store(f"json:///{tmp_path}/dst") as dst,
    ):
        assert src.counts().tributes == 450
        with pytest.raises(CorruptDataError, match="capacity"):
            copy_store(src, dst, batch_size=50)
        assert dst.counts().tributes == 0


def test_a_copy_into_a_store_holding_more_names_what_it_left(tmp_path: Path) -> None:
    """Not a difference (a copy may go into a fuller store), but said: a re-run with other guild
    options leaves the first run's tributes where it put them, and the user must see that."""
    with open_store(f"json:///{tmp_path}/src") as src:
        src.create_tribute(1, "D1F")
    with open_store(f"sqlite:///{tmp_path}/dst.db") as dst:
        dst.create_tribute(0, "D1F")
        dst.create_tribute(1, "D2F")
    result = run_cli("copy", f"json:///{tmp_path}/src", f"sqlite:///{tmp_path}/dst.db", "--no-backup")
    assert result.returncode == 0, result.stderr
    assert (
        "note: the destination also holds 2 tribute(s) the source does not, left as they are: "
        "D1F in guild 0, D2F in guild 1"
    ) in result.stdout
    with open_store(f"json:///{tmp_path}/src") as src, open_store(f"sqlite:///{tmp_path}/dst.db") as dst:
        report = copy_store(src, dst)
    assert (report.destination_only, report.destination_only_named, report.ok) == (
        2,
        ["D1F in guild 0", "D2F in guild 1"],
        True,
    )
