"""Ending the transition window never brings a deleted tribute back.

A tribute deleted through the composite (SQLite primary, legacy fallback)
stays deleted when the window ends, whether by ``tributestore finish-window``
or by a ``tributestore copy`` of the legacy directory into the primary, even
when the legacy reader later infers another guild for it.  The destination is
read back with plain ``sqlite3``, independently of tributestore.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from urllib.parse import quote

import pytest
from helpers import RecordingProgress
from helpers import run_cli as run

from tributestore import open_store

pytestmark = pytest.mark.backend("composite")

GA, GB = 111111111111111111, 222222222222222222
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24


def window_url(primary: str, fallback: str) -> str:
    return f"composite:?primary={quote(primary, safe='')}&fallback={quote(fallback, safe='')}"


def tributes_in(db: Path) -> set[tuple[int, str]]:
    """(guild_id, tribute_id) of every tribute row, read with plain sqlite3."""
    with sqlite3.connect(db) as conn:
        return {(int(g), str(t)) for g, t in conn.execute("SELECT guild_id, tribute_id FROM tributes")}


def legacy_dir(root: Path, image_guild: int) -> Path:
    """Two tributes whose guild is inferred only from their image folder."""
    (root / "inventories").mkdir(parents=True)
    (root / "inventories" / "inventories.json").write_text(
        json.dumps(
            {
                "X1F": {"capacity": 10, "items": {"1": "Rope"}},
                "X2M": {"capacity": 10, "items": {"1": "Bread"}},
            },
            indent=2,
        )
    )
    (root / "config").mkdir()
    (root / "config" / "config.json").write_text(
        json.dumps({str(GA): {"log_channel_id": None}, str(GB): {"log_channel_id": None}})
    )
    folder = root / "prompt_images" / str(image_guild)
    folder.mkdir(parents=True)
    (folder / "X1F_1700000000.png").write_bytes(PNG)
    (folder / "X2M_1700000001.png").write_bytes(PNG + b"2")
    return root


def test_copy_after_the_window_keeps_deleted_tributes_deleted(tmp_path: Path) -> None:
    assert run("sample-legacy", "legacy", cwd=tmp_path).returncode == 0
    url = window_url(f"sqlite:///{tmp_path}/thg.db", f"thgbot:///{tmp_path}/legacy")
    with open_store(url) as window:
        total = window.counts().tributes
        victim = next(iter(window.iter_tributes()))
        window.delete_tribute(*victim.key)
        assert not window.has_tribute(*victim.key)
    for extra in ([], ["--on-conflict", "skip"]):
        result = run("copy", *extra, "thgbot:///legacy", "sqlite:///thg.db", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "not copied: 1 tribute(s) deleted from the destination" in result.stdout
        assert victim.key not in tributes_in(tmp_path / "thg.db")
        assert len(tributes_in(tmp_path / "thg.db")) == total - 1
    # Bringing them back is an explicit choice.
    result = run("copy", "--ignore-tombstones", "thgbot:///legacy", "sqlite:///thg.db", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert victim.key in tributes_in(tmp_path / "thg.db")


def test_a_shifted_guild_guess_does_not_resurrect_a_delete(tmp_path: Path) -> None:
    legacy = legacy_dir(tmp_path / "legacy", image_guild=GA)
    url = window_url(f"sqlite:///{tmp_path}/thg.db", f"thgbot:///{legacy}")
    with open_store(url) as window:
        assert window.has_tribute(GA, "X1F")
        window.delete_tribute(GA, "X1F")
    # A later snapshot of the legacy directory puts the images in the other guild's folder:
    # the reader now infers guild GB for X1F.
    (legacy / "prompt_images" / str(GA)).rename(legacy / "prompt_images" / str(GB))
    with open_store(url) as window:
        assert not window.has_tribute(GB, "X1F"), "the deleted legacy record came back"
        assert window.has_tribute(GB, "X2M")
    result = run("copy", "--on-conflict", "skip", f"thgbot:///{legacy}", "sqlite:///thg.db", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    found = tributes_in(tmp_path / "thg.db")
    assert not any(tid == "X1F" for _gid, tid in found), found
    assert (GB, "X2M") in found


def test_finish_window_moves_the_rest_and_says_the_fallback_is_done(tmp_path: Path) -> None:
    assert run("sample-legacy", "legacy", cwd=tmp_path).returncode == 0
    url = window_url("sqlite:///thg.db", "thgbot:///legacy")
    with open_store(window_url(f"sqlite:///{tmp_path}/thg.db", f"thgbot:///{tmp_path}/legacy")) as w:
        tributes = list(w.iter_tributes())
        w.delete_tribute(*tributes[0].key)
        w.add_item(*tributes[1].key, "Promoted by a write")
    result = run("finish-window", url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"copied into the primary: {len(tributes) - 2} tribute(s)" in result.stdout
    assert "deleted during the window and kept deleted: 1 tribute(s)" in result.stdout
    assert "the fallback is no longer needed" in result.stdout
    found = tributes_in(tmp_path / "thg.db")
    assert len(found) == len(tributes) - 1 and tributes[0].key not in found
    with sqlite3.connect(tmp_path / "thg.db") as conn:
        items = [row[0] for row in conn.execute("SELECT item FROM inventory_items")]
    assert "Promoted by a write" in items
    again = run("finish-window", url, cwd=tmp_path)
    assert again.returncode == 0 and "copied into the primary: 0 tribute(s)" in again.stdout
    stats = run("stats", url, cwd=tmp_path)
    assert re.search(r"tributes only in the fallback\s*│ 0\s", stats.stdout), stats.stdout


def test_finish_window_reports_its_progress(tmp_path: Path) -> None:
    """finish-window ran silent for half a minute: the work reports its two passes over the
    fallback (the CLI draws them as a bar on a terminal's stderr)."""
    assert run("sample-legacy", "legacy", cwd=tmp_path).returncode == 0
    with open_store(window_url(f"sqlite:///{tmp_path}/thg.db", f"thgbot:///{tmp_path}/legacy")) as w:
        tributes = list(w.iter_tributes())
        w.delete_tribute(*tributes[0].key)
        recorder = RecordingProgress()
        report = w.backend.finish_window(progress=recorder)  # type: ignore[attr-defined]
    total = len(tributes)
    assert report.promoted == total - 1 and report.deleted == 1
    assert recorder.phases == [["moving", total, total], ["checking", total, total]]


def test_finish_window_needs_a_composite(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path}/thg.db"):
        pass
    result = run("finish-window", "sqlite:///thg.db", cwd=tmp_path)
    assert result.returncode == 2 and "not a transition window" in result.stderr


@pytest.mark.parametrize("url", ["sqlite:///typo.db", "json:///typo-dir"])
def test_finish_window_on_a_store_that_is_no_composite_creates_nothing(tmp_path: Path, url: str) -> None:
    result = run("finish-window", url, cwd=tmp_path)
    assert result.returncode == 2 and "nothing was opened" in result.stderr, result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("primary", ["sqlite:///thg_tpyo.db", "json:///typo-dir"])
def test_finish_window_with_a_mistyped_primary_creates_nothing(tmp_path: Path, primary: str) -> None:
    """A window ends in the primary the bot has been writing: a mistyped one was created empty,
    filled from the fallback and declared finished ("point the configuration at the primary
    alone"), losing every write and deletion of the window."""
    assert run("sample-legacy", "legacy", cwd=tmp_path).returncode == 0
    result = run("finish-window", window_url(primary, "thgbot:///legacy"), cwd=tmp_path)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "the window's primary" in result.stderr and "does not exist" in result.stderr
    assert "no longer needed" not in result.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["legacy"]


@pytest.mark.parametrize("on_conflict", ["skip", "fail"])
def test_a_copy_into_the_primary_while_the_bot_writes_loses_none_of_its_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], on_conflict: str
) -> None:
    """The bot runs during the copy of the legacy directory into its primary: after the first
    tributes landed it deletes a tribute the copy planned as new (a tombstone) and adds an item to
    another (copied up whole into the primary). The copy wrote both anyway, from the plan: the
    deleted one came back, the bot's item was lost. Decided again under each batch's write lock:
    the deleted one stays deleted, the bot's version is kept (said as a conflict)."""
    from tributestore.cli import main
    from tributestore_memory.hooks import recording

    assert run("sample-legacy", "legacy", cwd=tmp_path).returncode == 0
    legacy, db = tmp_path / "legacy", tmp_path / "thg.db"
    open_store(f"sqlite:///{db}").close()
    with open_store(f"thgbot:///{legacy}", mode="read") as source:
        keys = [t.key for t in source.iter_tributes()]
    deleted, changed = keys[-1], keys[-2]
    bot_url = window_url(f"sqlite:///{db}", f"thgbot:///{legacy}")
    done: list[bool] = []

    class BotAfterTwoCommits(list):  # type: ignore[type-arg]
        def append(self, event: object) -> None:
            super().append(event)
            commits = [e for e in self if e.hook == "transaction_committed" and e.store.url.startswith("sql")]
            if len(commits) == 2 and not done:  # the guild rows, then the first tribute
                done.append(True)
                with open_store(bot_url) as bot:
                    bot.delete_tribute(*deleted)
                    bot.add_item(*changed, "Given by the bot", force=True)

    copy = ["copy", f"thgbot:///{legacy}", f"sqlite:///{db}", "--no-backup", "--batch-size", "1"]
    with recording() as recorder:
        recorder.events = BotAfterTwoCommits()
        with pytest.raises(SystemExit) as finished:
            main([*copy, "--on-conflict", on_conflict])
    out = capsys.readouterr().out
    assert done
    assert deleted not in tributes_in(db)
    with sqlite3.connect(db) as conn:
        items = [
            row[0]
            for row in conn.execute("SELECT item FROM inventory_items WHERE tribute_id = ?", (changed[1],))
        ]
    assert "Given by the bot" in items
    assert f"tribute {changed[1]} in guild {changed[0]}: created in the destination by another writer" in out
    assert f"tribute {deleted[1]} in guild {deleted[0]}: deleted in the destination during the copy" in out
    assert finished.value.code == (0 if on_conflict == "skip" else 7), out


@pytest.mark.parametrize("new_primary", ["json:///moved", "sqlite:///moved.db"])
def test_moving_the_primary_mid_window_carries_its_tombstones(tmp_path: Path, new_primary: str) -> None:
    """A copy of the primary to another store dropped its tombstones: a composite of the new
    primary and the same fallback showed the deleted tribute again, and finish-window brought it
    back. A tribute deleted and created again keeps living (its tombstone does not hold it back)."""
    assert run("sample-legacy", "legacy", cwd=tmp_path).returncode == 0
    with open_store(window_url(f"sqlite:///{tmp_path}/thg.db", f"thgbot:///{tmp_path}/legacy")) as w:
        tributes = list(w.iter_tributes())
        gone, again = tributes[0].key, tributes[1].key
        w.delete_tribute(*gone)
        w.delete_tribute(*again)
        w.create_tribute(*again, name="Back again")
    result = run("copy", "sqlite:///thg.db", new_primary, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "tombstones: 2 carried" in result.stdout
    moved = window_url(new_primary, "thgbot:///legacy")
    with open_store(
        window_url(new_primary.replace(":///", f":///{tmp_path}/"), f"thgbot:///{tmp_path}/legacy")
    ) as w:
        keys = {t.key for t in w.iter_tributes()}
        assert gone not in keys and again in keys
        assert w.get_tribute(*again).name == "Back again"
    finish = run("finish-window", moved, cwd=tmp_path)
    assert finish.returncode == 0, finish.stdout + finish.stderr
    with open_store(new_primary.replace(":///", f":///{tmp_path}/"), mode="read") as primary:
        keys = {t.key for t in primary.iter_tributes()}
    assert gone not in keys and again in keys
    rerun = run("copy", "sqlite:///thg.db", new_primary, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "nothing to write" in rerun.stdout or "already identical" in rerun.stdout


def test_restoring_a_backup_brings_back_a_tribute_deleted_after_it(tmp_path: Path) -> None:
    """A restore makes the primary equal to the backup: a tribute deleted (tombstoned) through the
    composite after the backup was made comes back; the restore copied around it as a copy of the
    legacy directory does, and then reported itself incomplete."""
    from tributestore.backup import backup_store, restore_backup

    assert run("sample-legacy", "legacy", cwd=tmp_path).returncode == 0
    primary = f"sqlite:///{tmp_path}/thg.db"
    assert run("copy", "thgbot:///legacy", "sqlite:///thg.db", cwd=tmp_path).returncode == 0
    with open_store(primary) as store:
        backup = backup_store(store, tmp_path / "backups")
    with open_store(window_url(primary, f"thgbot:///{tmp_path}/legacy")) as window:
        gone = next(iter(window.iter_tributes())).key
        window.delete_tribute(*gone)
    with open_store(f"json:///{backup}", mode="read") as source, open_store(primary) as destination:
        report = restore_backup(source, destination)
        assert report.differences == []
        assert destination.has_tribute(*gone)


def test_one_guilds_legacy_files_deleted_leaves_the_others_and_their_images_checked(tmp_path: Path) -> None:
    """Every guild's LEGACY_FILES shared one origin key: deleting one guild's hid all of them, and
    finish-window dropped their images saying the fallback could go. And a copy of the legacy
    directory into the primary expected the images of deleted tributes (a top-level image of a
    deleted tribute's prompt, the deleted LEGACY_FILES' images): exit 7 on every run."""
    assert run("sample-legacy", "legacy", cwd=tmp_path).returncode == 0
    kept_guild, deleted_guild = 1395951775160340551, 1288877766655544433
    url = window_url(f"sqlite:///{tmp_path}/thg.db", f"thgbot:///{tmp_path}/legacy")
    with open_store(url) as window:
        window.delete_tribute(deleted_guild, "LEGACY_FILES")
        window.delete_tribute(kept_guild, "D7F")  # its prompt shows prompt_images/tracker jackers.png
        assert window.get_tribute(kept_guild, "LEGACY_FILES") is not None
    copied = run("copy", "thgbot:///legacy", "sqlite:///thg.db", "--no-backup", cwd=tmp_path)
    assert copied.returncode == 0, copied.stdout + copied.stderr
    assert "verified independently" in copied.stdout
    finish = run("finish-window", window_url("sqlite:///thg.db", "thgbot:///legacy"), cwd=tmp_path)
    assert finish.returncode == 0, finish.stdout + finish.stderr
    assert "kept deleted: 2 tribute(s)" in finish.stdout
    found = tributes_in(tmp_path / "thg.db")
    assert (kept_guild, "LEGACY_FILES") in found and (deleted_guild, "LEGACY_FILES") not in found
    with sqlite3.connect(tmp_path / "thg.db") as conn:
        conn.execute("DELETE FROM files WHERE name = 'ZZZ_1770000000.png'")  # a kept guild's orphan
    result = run("verify", "--independent", "thgbot:///legacy", "sqlite:///thg.db", cwd=tmp_path)
    assert result.returncode == 7 and "ZZZ_1770000000.png" in result.stdout, result.stdout


def test_a_tribute_deleted_after_the_primary_was_copied_is_named_by_the_next_copy(tmp_path: Path) -> None:
    """Moving the primary, copied once, then a tribute deleted in the old primary, copied again:
    the tombstone was carried, the new primary kept the tribute in front of it (a copy never
    deletes), and the copy said 'verified': a composite over the new primary showed it again."""
    assert run("sample-legacy", "legacy", cwd=tmp_path).returncode == 0
    old_window = window_url(f"sqlite:///{tmp_path}/thg.db", f"thgbot:///{tmp_path}/legacy")
    with open_store(old_window) as w:
        key = next(iter(w.iter_tributes())).key
        w.add_item(*key, "copied up", force=True)
    assert run("copy", "sqlite:///thg.db", "json:///moved", cwd=tmp_path).returncode == 0
    with open_store(old_window) as w:
        w.delete_tribute(*key)
    again = run("copy", "sqlite:///thg.db", "json:///moved", cwd=tmp_path)
    assert again.returncode == 7, again.stdout + again.stderr
    assert (
        f"tribute {key[1]} in guild {key[0]}: deleted in the source (its tombstone carried)" in again.stdout
    )
    with open_store(f"json:///{tmp_path}/moved") as moved:
        moved.delete_tribute(*key)
    settled = run("copy", "sqlite:///thg.db", "json:///moved", cwd=tmp_path)
    assert settled.returncode == 0, settled.stdout + settled.stderr
