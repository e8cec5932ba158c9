"""Legacy directories built the way the THGBot bot wrote them, one per class of the migration issue.

Each test builds a directory, runs the real command line (``tributestore copy thgbot:///src
sqlite:///dst.db`` in a subprocess, the working directory a temporary one) and reads the
destination with plain ``sqlite3`` queries written here, independently of the project's
legacy reader and of its stores.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

#: Selected by the tox factor json (see tests/conftest.py): these tests run once per Python.
pytestmark = pytest.mark.backend("json")

GA = 1395951775160340551
GB = 1402233445566778899
GC = 1288877766655544433
PNG_A = b"\x89PNG\r\n\x1a\n" + b"A" * 40
PNG_B = b"\x89PNG\r\n\x1a\n" + b"B" * 40
CLI = [str(Path(sys.executable).with_name("tributestore"))]


# ---------------------------------------------------------------- helpers
def write(root: Path, rel: str, content: Any) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def make_db(root: Path, script: str, rows: dict[str, list[tuple[Any, ...]]]) -> None:
    conn = sqlite3.connect(root / "thgbot.db")
    conn.executescript(script)
    for table, values in rows.items():
        conn.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(values[0]))})", values)
    conn.commit()
    conn.close()


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "250"}
    env.pop("TRIBUTESTORE_URL", None)
    env.pop("TRIBUTESTORE_CONFIG", None)
    return subprocess.run(
        [*CLI, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300, check=False
    )


def copy(
    tmp: Path, source: str = "thgbot:///src", expect: int = 0, *extra: str
) -> subprocess.CompletedProcess[str]:
    done = run(tmp, "copy", source, "sqlite:///dst.db", *extra)
    assert done.returncode == expect, done.stdout + done.stderr
    return done


class Dest:
    """The destination database, read with plain SQL."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path)

    def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        return list(self.conn.execute(sql, args))

    def guild_of(self, tid: str) -> list[int]:
        return [r[0] for r in self.rows("SELECT guild_id FROM tributes WHERE tribute_id = ?", tid)]

    def items(self, tid: str, slot: str = "items") -> list[str]:
        return [
            r[0]
            for r in self.rows(
                "SELECT item FROM inventory_items WHERE tribute_id = ? AND slot = ? ORDER BY number",
                tid,
                slot,
            )
        ]

    def prompt(self, tid: str) -> tuple[str, int | None]:
        (row,) = self.rows("SELECT message, channel_id FROM prompts WHERE tribute_id = ?", tid)
        return row[0], row[1]

    def prompt_files(self, tid: str) -> list[str]:
        sql = "SELECT file_name FROM prompt_files WHERE tribute_id = ? ORDER BY position"
        return [r[0] for r in self.rows(sql, tid)]

    def files(self, tid: str) -> dict[str, tuple[str, bytes]]:
        sql = "SELECT name, kind, data FROM files WHERE tribute_id = ?"
        return {r[0]: (r[1], bytes(r[2])) for r in self.rows(sql, tid)}

    def all_hashes(self) -> set[str]:
        return {r[0] for r in self.rows("SELECT sha256 FROM files")}

    def kept(self, tid: str, kind: str = "legacy_conflict") -> list[dict[str, Any]]:
        return [json.loads(data) for k, data in self.files(tid).values() if k == kind]


@pytest.fixture
def src(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    root.mkdir()
    return root


TRIBUTES = (
    "CREATE TABLE tributes (id INTEGER PRIMARY KEY, tribute_id TEXT UNIQUE, tribute_name TEXT,"
    " user_id INTEGER, user_mention TEXT, guild_id INTEGER, created_at INTEGER,"
    " face_claim_url TEXT, prompt_channel_id INTEGER);"
)
PROMPTS = (
    "CREATE TABLE prompts (id INTEGER PRIMARY KEY, tribute_id TEXT UNIQUE, message TEXT,"
    " channel_id INTEGER, created_at INTEGER);"
)


# ------------------------------------------------------------- class 2
def test_class2_thgbot_db_prompt_wins_and_the_stale_json_one_is_kept(src: Path, tmp_path: Path) -> None:
    make_db(
        src,
        TRIBUTES + PROMPTS,
        {
            "tributes": [
                (1, "d1f", "Old Name", 1, "<@1>", GA, 1, None, None),
                (2, "D1F", "Glimmer", 2, "<@2>", GA, 2, None, None),
            ],
            "prompts": [(1, "D1F", "Newer text from the database.", 77, 1770000000)],
        },
    )
    write(src, "prompts/prompt_info.json", {"D1F": {"message": "Stale JSON text.", "channel": "55"}})
    copy(tmp_path)
    dest = Dest(tmp_path / "dst.db")
    assert dest.prompt("D1F") == ("Newer text from the database.", 77)
    assert dest.rows("SELECT name, user_id FROM tributes WHERE tribute_id = 'D1F'") == [("Glimmer", 2)]
    values = [doc["value"] for doc in dest.kept("D1F")]
    assert {"message": "Stale JSON text.", "channel": "55"} in values
    assert any(v.get("tribute_name") == "Old Name" and v.get("user_id") == 1 for v in values)


# ------------------------------------------------------------- class 3
def test_class3_single_guild_images_same_names_and_absolute_paths(src: Path, tmp_path: Path) -> None:
    write(src, "config/config.json", {str(GA): {}, str(GB): {}})
    write(
        src,
        "prompts/prompt_info.json",
        {
            "D1F": {"message": "a", "channel": "1", "image": "arena map.png"},  # single-guild era
            "D2M": {"message": "b", "image": f"/var/snap/thgbot/common/prompt_images/{GB}/D2M_1.png"},
        },
    )
    write(src, "inventories/inventories.json", {"D1F": {"items": {"1": "Knife"}}})
    write(src, "prompt_images/arena map.png", PNG_A)
    write(src, f"prompt_images/{GA}/D1F.png", PNG_A + b"1")
    write(src, f"prompt_images/{GB}/D1F.png", PNG_B + b"1")  # same name, other guild, other bytes
    write(src, f"prompt_images/{GA}/D2M_1.png", PNG_A + b"2")  # the inferred guild's folder
    write(src, f"prompt_images/{GB}/D2M_1.png", PNG_B + b"2")  # the folder the path names
    write(src, f"prompt_images/{GB}/SPOILER_banner image.png", PNG_B + b"3")  # nobody's
    copy(tmp_path)
    dest = Dest(tmp_path / "dst.db")
    assert dest.prompt_files("D1F") == ["arena map.png"]
    assert dest.files("D1F")["arena map.png"][1] == PNG_A
    held = dest.all_hashes()
    for path in (src / "prompt_images").rglob("*"):
        if path.is_file():
            assert hashlib.sha256(path.read_bytes()).hexdigest() in held, path
    d2m = dest.guild_of("D2M")
    (name,) = dest.prompt_files("D2M")
    (data,) = [r[0] for r in dest.rows("SELECT data FROM files WHERE tribute_id='D2M' AND name=?", name)]
    assert bytes(data) == PNG_B + b"2", d2m


# ------------------------------------------------------------- class 4
def test_class4_long_content_migrates_and_oversize_is_a_policy(src: Path, tmp_path: Path) -> None:
    long_item, huge_item = "x" * 5000, "y" * 7000
    message = "z" * 30000
    write(src, "config/config.json", {str(GA): {}})
    write(src, "inventories/inventories.json", {"D1F": {"items": {"1": long_item, "2": huge_item}}})
    write(src, "prompts/prompt_info.json", {"D1F": {"message": message}, "d1f": {"message": message + "!"}})
    copy(tmp_path, "thgbot:///src", 0)
    dest = Dest(tmp_path / "dst.db")
    items = dest.items("D1F")
    assert items[0] == long_item and items[1].startswith("y" * 5000) and len(items[1]) == 6000
    assert huge_item in [doc["original"] for doc in dest.kept("D1F", "legacy_original")]
    assert dest.prompt("D1F")[0] == message
    assert [doc["value"]["message"] for doc in dest.kept("D1F")] == [message + "!"]
    (tmp_path / "dst.db").unlink()
    refused = copy(tmp_path, "thgbot:///src?oversize=fail", expect=6)
    assert "oversize" in refused.stderr and not (tmp_path / "dst.db").exists()


# ------------------------------------------------------------- class 5
def test_class5_mixed_flat_and_per_guild_config(src: Path, tmp_path: Path) -> None:
    write(
        src,
        "config/config.json",
        {
            "guild_id": GA,
            "log_channel_id": 11,
            "gm_id": 12,
            str(GA): {"log_channel_id": 21, "category_id": 22},
            str(GB): {"log_channel_id": 31, "category_id": None},
        },
    )
    write(src, "inventories/inventories.json", {"D1F": {}})
    copy(tmp_path, "thgbot:///src?guild=" + str(GA))
    dest = Dest(tmp_path / "dst.db")
    rows = dest.rows("SELECT guild_id, log_channel_id, category_id, gm_id FROM guilds ORDER BY guild_id")
    assert rows == [(GA, 21, 22, 12), (GB, 31, None, None)]


# ------------------------------------------------------------- class 6
@pytest.mark.parametrize("rel", ["inventories/inventories.json", "thgbot.db", "prompts/prompt_info.json"])
def test_class6_top_level_files_linking_outside_are_refused(src: Path, tmp_path: Path, rel: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    if rel == "thgbot.db":
        make_db(outside, TRIBUTES, {"tributes": [(1, "D1F", "Secret", 1, "<@1>", GA, 1, None, None)]})
        target = outside / "thgbot.db"
    else:
        target = write(outside, "x.json", {"D1F": {"message": "secret"}})
    write(src, "config/config.json", {str(GA): {}})
    (src / rel).parent.mkdir(parents=True, exist_ok=True)
    (src / rel).symlink_to(target)
    refused = copy(tmp_path, expect=6)
    assert "outside the data directory" in refused.stderr
    assert not (tmp_path / "dst.db").exists()


# ------------------------------------------------------------- class 7
def test_class7_unassigned_tributes_guild_option_and_map(src: Path, tmp_path: Path) -> None:
    write(src, "config/config.json", {str(GA): {}, str(GB): {}, str(GC): {}})
    write(src, "inventories/inventories.json", {"D1F": {}, "D2F": {}, "D3F": {}})
    stats = run(tmp_path, "stats", "thgbot:///src")
    assert stats.returncode == 0 and "unassigned_tributes" in stats.stdout
    (line,) = [line for line in stats.stdout.splitlines() if "unassigned_tributes" in line]
    assert line.split()[-2] == "3", line
    check = run(tmp_path, "check", "thgbot:///src")
    assert check.returncode == 1 and "no known guild" in check.stdout
    write(tmp_path, "map.toml", f'D1F = {GB}\nd2f = "{GC}"\n')
    copy(tmp_path, f"thgbot:///src?guild={GA}&guild_map=map.toml")
    dest = Dest(tmp_path / "dst.db")
    assert (dest.guild_of("D1F"), dest.guild_of("D2F"), dest.guild_of("D3F")) == ([GB], [GC], [GA])
    assert dest.rows("SELECT COUNT(*) FROM tributes WHERE guild_id = 0") == [(0,)]


def test_class7_composite_fallback_carries_the_guild_option(src: Path, tmp_path: Path) -> None:
    write(src, "config/config.json", {str(GA): {}, str(GB): {}})
    write(src, "inventories/inventories.json", {"D4F": {"items": {"1": "Rope"}}})
    write(
        tmp_path,
        "tributestore.toml",
        f'[store]\nurl = "composite:"\nprimary = "sqlite:///thg.db"\nfallback = "thgbot:///src?guild={GB}"\n',
    )
    code = (
        "from tributestore import open_store\nwith open_store() as s: print(s.get_inventory({}, 'D4F').items)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code.format(GB)], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and "['Rope']" in done.stdout, done.stderr


# ------------------------------------------------------------- class 8
def test_class8_equivalent_bad_values_alike_and_check_reports(src: Path, tmp_path: Path) -> None:
    write(src, "config/config.json", {str(GA): {}})
    write(
        src,
        "inventories/inventories.json",
        {"D1F": {"items": {"1": "Knife", "2": None, "3": "", "4": "Rope", "5": "Bad\u0000\ud800"}}},
    )
    write(src, "prompts/prompt_info.json", {"D1F": {"message": "m", "image": ["..", "../x.png", None, ""]}})
    copy(tmp_path, "thgbot:///src", 0)
    dest = Dest(tmp_path / "dst.db")
    assert dest.items("D1F") == ["Knife", "Rope", "Bad\ufffd\ufffd"]
    assert [doc["original"] for doc in dest.kept("D1F", "legacy_original")] == ["Bad\u0000\ud800"]
    check = run(tmp_path, "check", "thgbot:///src")
    assert check.returncode == 1 and "U+FFFD" in check.stdout


# ------------------------------------------------------------- the thgbot: URL
def test_stats_of_a_thgbot_url_and_json_url_refused_naming_it(src: Path, tmp_path: Path) -> None:
    write(src, "config/config.json", {str(GA): {}})
    write(src, "inventories/inventories.json", {"D1F": {"items": {"1": "Knife", "2": "Rope"}}})
    before = sorted(p.relative_to(src) for p in src.rglob("*"))
    stats = run(tmp_path, "stats", "thgbot:///src")
    assert stats.returncode == 0, stats.stdout + stats.stderr
    cells = [[cell for cell in line.split() if cell not in ("│", "|")] for line in stats.stdout.splitlines()]
    counted = {row[0]: row[1] for row in cells if len(row) == 2}
    assert (counted.get("tributes"), counted.get("items")) == ("1", "2"), stats.stdout
    for command in (("stats", "json:///src"), ("copy", "json:///src", "sqlite:///dst.db")):
        refused = run(tmp_path, *command)
        assert refused.returncode != 0, refused.stdout
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and "open it read-only as thgbot:///src" in lines[0], refused.stderr
    assert not (tmp_path / "dst.db").exists()
    assert sorted(p.relative_to(src) for p in src.rglob("*")) == before


def test_sample_legacy_then_the_copy_it_prints(tmp_path: Path) -> None:
    """The set-up script's path: the plugin's sample-legacy command, then the copy it suggests."""
    written = run(tmp_path, "sample-legacy", "sample-config")
    assert written.returncode == 0, written.stdout + written.stderr
    (suggested,) = [line for line in written.stdout.splitlines() if line.startswith("migrate it with: ")]
    command = suggested.removeprefix("migrate it with: tributestore ").split()
    assert command == ["copy", "thgbot:///sample-config", "sqlite:///thg.db"], suggested
    copied = run(tmp_path, *command)
    assert copied.returncode == 0, copied.stdout + copied.stderr
    assert "verified independently" in copied.stdout
    again = run(tmp_path, "sample-legacy", "sample-config")
    assert again.returncode == 2 and "already exists" in again.stderr
    nowhere = run(tmp_path, "sample-legacy", "no/such/folder/sample")
    assert nowhere.returncode == 2 and "does not exist" in nowhere.stderr, nowhere.stderr
    assert "Traceback" not in nowhere.stderr and not (tmp_path / "no").exists()
    # written beside the target, then renamed: nothing of the staging copy is left
    assert not [path.name for path in tmp_path.iterdir() if path.name.startswith(".sample-config")]
