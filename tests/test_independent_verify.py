"""``verify --independent``: the destination checked against the raw legacy files, not the reader.

The destination is damaged behind tributestore's back with plain ``sqlite3``;
the independent check must name every lost item, equipped item, prompt text
and image by file and key, while the ordinary comparison (against the
reader's own interpretation) cannot see a loss the reader itself made.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
from helpers import run_cli as run

from tributestore import TributeStore, open_store

pytestmark = pytest.mark.backend("sqlite")

GUILD = 111111111111111111
PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 24


@pytest.fixture
def migrated(tmp_path: Path) -> Path:
    legacy = tmp_path / "legacy"
    (legacy / "inventories").mkdir(parents=True)
    (legacy / "inventories" / "inventories.json").write_text(
        json.dumps(
            {
                "D1F": {
                    "capacity": 10,
                    "items": {"1": "Rope", "2": "Rope", "3": "Bread"},
                    "equipped": {"1": "Knife"},
                },
                "d2m": {"capacity": 10, "items": {"1": "Canteen"}},
            },
            indent=2,
        )
    )
    (legacy / "prompts").mkdir()
    (legacy / "prompts" / "prompt_info.json").write_text(
        json.dumps(
            {"D1F": {"message": "Run to the cornucopia.", "channel": "5", "image": "D1F_1700000000.png"}}
        )
    )
    (legacy / "config").mkdir()
    (legacy / "config" / "config.json").write_text(json.dumps({str(GUILD): {"log_channel_id": None}}))
    (legacy / "prompt_images" / str(GUILD)).mkdir(parents=True)
    (legacy / "prompt_images" / str(GUILD) / "D1F_1700000000.png").write_bytes(PNG)
    result = run("copy", "thgbot:///legacy", "sqlite:///thg.db", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verified independently" in result.stdout
    return tmp_path


def sql(work: Path, statement: str) -> None:
    with sqlite3.connect(work / "thg.db") as conn:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(statement)


def test_intact_copy_passes(migrated: Path) -> None:
    result = run("verify", "--independent", "thgbot:///legacy", "sqlite:///thg.db", cwd=migrated)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == (
        "verified independently: every item, equipped item, prompt text and image of the raw files "
        "of thgbot:///legacy is in sqlite:///thg.db"
    )


def test_every_loss_is_named_by_file_and_key(migrated: Path) -> None:
    sql(migrated, "DELETE FROM inventory_items WHERE item = 'Rope' AND number = 2")
    sql(migrated, "DELETE FROM inventory_items WHERE slot = 'equipped'")
    sql(migrated, "UPDATE prompts SET message = 'something else'")
    sql(migrated, "DELETE FROM files")
    result = run("verify", "--independent", "thgbot:///legacy", "sqlite:///thg.db", cwd=migrated)
    assert result.returncode == 7, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    expected = [
        'inventories/inventories.json ["D1F"]["items"]: item "Rope" missing in the destination (1 of 2)',
        'inventories/inventories.json ["D1F"]["equipped"]: item "Knife" missing in the destination (0 of 1)',
        'prompts/prompt_info.json ["D1F"]: prompt text "Run to the cornucopia." missing in the destination',
        f"prompt_images/{GUILD}/D1F_1700000000.png: file bytes",
    ]
    for needle in expected:
        assert any(needle in line for line in lines), (needle, lines)
    assert not any("Canteen" in line or "Bread" in line for line in lines)


def test_damaged_file_bytes_are_named_though_their_recorded_digest_matches(migrated: Path) -> None:
    """The check reads the destination's bytes: the sha256 the store records is not the file."""
    sql(migrated, "UPDATE files SET data = x'00' WHERE name = 'D1F_1700000000.png'")
    result = run("verify", "--independent", "thgbot:///legacy", "sqlite:///thg.db", cwd=migrated)
    assert result.returncode == 7, result.stdout + result.stderr
    assert (
        f"prompt_images/{GUILD}/D1F_1700000000.png: the destination's copy holds other bytes: "
        "'D1F_1700000000.png' of tribute D1F (sha256 6e340b9cffb3, expected"
    ) in result.stdout


def test_a_lost_image_is_named_though_its_bytes_are_there_under_another_name(migrated: Path) -> None:
    """Two raw images with the same bytes: each needs its own file in the destination."""
    (migrated / "legacy" / "prompt_images" / str(GUILD) / "D2M_1700000001.png").write_bytes(PNG)
    result = run("copy", "thgbot:///legacy", "sqlite:///thg2.db", cwd=migrated)
    assert result.returncode == 0, result.stdout + result.stderr
    with sqlite3.connect(migrated / "thg2.db") as conn:
        conn.execute("DELETE FROM files WHERE name = 'D2M_1700000001.png'")
    result = run("verify", "--independent", "thgbot:///legacy", "sqlite:///thg2.db", cwd=migrated)
    assert result.returncode == 7, result.stdout + result.stderr
    assert (
        f"prompt_images/{GUILD}/D2M_1700000001.png: file 'D2M_1700000001.png' missing in the destination "
        "(its bytes are there only under other names: 'D1F_1700000000.png' of tribute D1F)"
    ) in result.stdout
    assert "D1F_1700000000.png:" not in result.stdout


def test_a_copy_whose_independent_check_cannot_run_is_reported_not_verified(migrated: Path) -> None:
    """The raw files changed under the copy (here: made unreadable JSON after the source was
    opened): the copy's report says the check could not run, and the copy is not "ok"."""
    from tributestore.copier import copy_store

    with open_store(f"thgbot:///{migrated}/legacy", mode="read") as source:
        (migrated / "legacy" / "inventories" / "inventories.json").write_text('{"D1F": {"items": [')
        with open_store(f"sqlite:///{migrated}/other.db") as destination:
            report = copy_store(source, destination)
    assert not report.ok
    raw = [line for line in report.differences if "raw source data" in line]
    assert len(raw) == 1 and "\n" not in raw[0], raw
    assert raw[0].startswith(
        f"raw source data: the independent check could not run: independent check of {migrated}/legacy: "
        "cannot read the raw legacy files: "
    ), raw


@pytest.mark.parametrize("name", ["inventories/inventories.json", "prompts/prompt_info.json"])
def test_a_byte_order_mark_is_read_by_both_readers(migrated: Path, name: str) -> None:
    """The bot's reader skips a UTF-8 BOM; the independent check did not, and failed the copy."""
    path = migrated / "legacy" / name
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    result = run("copy", "thgbot:///legacy", "sqlite:///bom.db", cwd=migrated)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verified independently" in result.stdout


def test_independent_needs_a_legacy_source(migrated: Path) -> None:
    result = run("verify", "--independent", "sqlite:///thg.db", "sqlite:///thg.db", cwd=migrated)
    assert result.returncode == 2 and "legacy directory" in result.stderr


def test_a_copy_checks_the_raw_files_with_the_documents_it_verifies(migrated: Path) -> None:
    """The copier's verification hands the destination's documents to the independent check
    (one stream of the destination): a loss the plan skips is still named."""
    sql(migrated, "DELETE FROM inventory_items WHERE item = 'Rope' AND number = 2")
    result = run("copy", "thgbot:///legacy", "sqlite:///thg.db", "--on-conflict", "skip", cwd=migrated)
    assert result.returncode == 7, result.stdout + result.stderr
    lost = 'raw source data: inventories/inventories.json ["D1F"]["items"]: item "Rope" missing'
    assert lost in result.stdout
    assert "Canteen" not in result.stdout and "Bread" not in result.stdout


def test_the_checker_names_what_the_documents_it_is_given_lack(migrated: Path) -> None:
    def missing(legacy: TributeStore, copied: TributeStore, knives: bool) -> list[str]:
        checker = legacy.independent_checker(copied)
        assert checker is not None
        with checker as held:
            for bundle in copied.iter_bundles():
                if not knives and bundle.tribute.tribute_id == "D1F":
                    inventory = bundle.inventory.model_copy(update={"equipped": []})
                    bundle = bundle.model_copy(update={"inventory": inventory})
                held.hold(bundle)
            return held.finish()

    with (
        open_store(f"thgbot:///{migrated / 'legacy'}", mode="read") as legacy,
        open_store(f"sqlite:///{migrated / 'thg.db'}", mode="read") as copied,
    ):
        assert copied.independent_checker(legacy) is None  # not a legacy store
        assert missing(legacy, copied, knives=True) == []
        lines = missing(legacy, copied, knives=False)
    assert len(lines) == 1 and 'item "Knife" missing in the destination (0 of 1)' in lines[0], lines


@pytest.mark.parametrize(
    ("held", "raw", "kept"),
    [
        ("D5M.png", "D5M.png", True),
        ("D5M.png", " D5M.png ", True),
        ("D5M (prompt_images 1402233445566778899).png", "D5M.png", True),
        ("D5M2 (prompt_images 1).png", "D5M.png", False),
        ("D5M (prompt_images 1).jpg", "D5M.png", False),
        ("banner.jpg", "D2F_1771000000.jpg", False),
    ],
)
def test_which_destination_names_are_a_raw_images(held: str, raw: str, kept: bool) -> None:
    from tributestore.backends.thgbot_backend.presence import _kept_as

    assert _kept_as(held, raw) is kept


# ------------------------------------------------------------------ thgbot.db as SQLite reads it
def era3(tmp_path: Path) -> tuple[Path, sqlite3.Connection]:
    """A legacy directory whose prompts live in ``thgbot.db``; the connection is left open."""
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    conn = sqlite3.connect(legacy / "thgbot.db", isolation_level=None)
    conn.execute("CREATE TABLE tributes (tribute_id TEXT UNIQUE, tribute_name TEXT, guild_id INTEGER)")
    conn.execute("CREATE TABLE prompts (tribute_id TEXT UNIQUE, message TEXT, channel_id TEXT)")
    conn.execute(f"INSERT INTO tributes VALUES ('D1F', 'Katniss', {GUILD}), ('D2M', 'Peeta', {GUILD})")
    conn.execute("INSERT INTO prompts VALUES ('D1F', 'Committed prompt text.', '5')")
    return legacy, conn


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``root``: its bytes and modification time."""
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) for p in root.rglob("*")}


def test_database_text_that_is_not_utf8_is_checked_not_refused(tmp_path: Path) -> None:
    """A prompt in thgbot.db that is not UTF-8: the reader stores it with U+FFFD and keeps the
    original as a file; the check could not decode it ('could not run', exit 7). It runs, passes
    the copy, and still names the text when the destination loses it."""
    _, conn = era3(tmp_path)
    conn.execute(
        "UPDATE prompts SET message = CAST(x'466f6720726f6c6c7320ff' AS TEXT) WHERE tribute_id = 'D1F'"
    )
    conn.close()
    result = run("copy", "thgbot:///legacy", "sqlite:///thg.db", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verified independently" in result.stdout
    sql(tmp_path, "UPDATE prompts SET message = 'something else'")
    sql(tmp_path, "DELETE FROM files WHERE kind = 'legacy_original'")
    result = run("verify", "--independent", "thgbot:///legacy", "sqlite:///thg.db", cwd=tmp_path)
    assert result.returncode == 7, result.stdout + result.stderr
    assert "thgbot.db table prompts row 1: prompt text" in result.stdout and "missing" in result.stdout


def test_a_leftover_hot_journal_is_rolled_back_in_a_private_copy(tmp_path: Path) -> None:
    """The bot read thgbot.db as SQLite does (a hot journal rolled back): the check did not, read
    the uncommitted rows, and failed every copy; reading must not write the directory either."""
    legacy, conn = era3(tmp_path)
    db = legacy / "thgbot.db"
    conn.execute("PRAGMA cache_size = 1")  # spill the uncommitted change into thgbot.db itself
    conn.execute("BEGIN")
    conn.execute("UPDATE prompts SET message = 'UNCOMMITTED prompt text' WHERE tribute_id = 'D1F'")
    conn.execute("CREATE TABLE filler (x)")
    conn.executemany("INSERT INTO filler VALUES (?)", [("x" * 1000,)] * 300)
    hot = {name: (legacy / name).read_bytes() for name in ("thgbot.db", "thgbot.db-journal")}
    conn.execute("ROLLBACK")
    conn.close()
    for name, content in hot.items():
        (legacy / name).write_bytes(content)
    assert b"UNCOMMITTED" in db.read_bytes()
    before = snapshot(legacy)
    result = run("copy", "thgbot:///legacy", "sqlite:///thg.db", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verified independently" in result.stdout
    assert snapshot(legacy) == before

    sql(tmp_path, "UPDATE prompts SET message = 'something else'")
    result = run("verify", "--independent", "thgbot:///legacy", "sqlite:///thg.db", cwd=tmp_path)
    assert result.returncode == 7, result.stdout + result.stderr
    assert 'prompt text "Committed prompt text." missing in the destination' in result.stdout
    assert "UNCOMMITTED" not in result.stdout
    assert snapshot(legacy) == before


def test_a_wal_not_checkpointed_is_read_in_a_private_copy(tmp_path: Path) -> None:
    """Rows committed to thgbot.db-wal only: the bot saw them, so the check expects them (it read
    the stale main file, reported the old text missing and never checked the rows only in the WAL)."""
    legacy, conn = era3(tmp_path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("UPDATE prompts SET message = 'Changed in the WAL.' WHERE tribute_id = 'D1F'")
    conn.execute("INSERT INTO prompts VALUES ('D2M', 'Only in the WAL.', '5')")
    files = {name: (legacy / name).read_bytes() for name in ("thgbot.db", "thgbot.db-wal")}
    conn.close()  # checkpoints and removes the WAL: put the files back as they were before
    for name, content in files.items():
        (legacy / name).write_bytes(content)
    (legacy / "thgbot.db-shm").unlink(missing_ok=True)
    assert b"Only in the WAL." not in (legacy / "thgbot.db").read_bytes()
    before = snapshot(legacy)
    result = run("copy", "thgbot:///legacy", "sqlite:///thg.db", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verified independently" in result.stdout
    assert snapshot(legacy) == before

    sql(tmp_path, "DELETE FROM prompts WHERE tribute_id = 'D2M'")
    result = run("verify", "--independent", "thgbot:///legacy", "sqlite:///thg.db", cwd=tmp_path)
    assert result.returncode == 7, result.stdout + result.stderr
    assert 'thgbot.db table prompts row 2: prompt text "Only in the WAL." missing' in result.stdout
    assert snapshot(legacy) == before


# ------------------------------------------------------------------ keys that are no tribute id
LONG_KEY = "THE_VERY_LONG_EVENT_NAME_THAT_GOES_ON_AND_ON_AND_ON_AND_ON_AND_ON_"


def _cut(sanitised: str) -> str:
    """The documented id of a sanitised key over 64 characters."""
    return sanitised[:51].rstrip("_-") + "-" + hashlib.sha256(sanitised.encode()).hexdigest()[:12].upper()


def test_free_text_and_long_prompt_keys_are_looked_up_under_their_sanitised_id(migrated: Path) -> None:
    """The check looked a prompt up under the key upper-cased ("RUE'S_GIFT", 67 characters) where
    no tribute is: the reader stores it under the documented sanitised id (RUE_S_GIFT, cut at 64)."""
    path = migrated / "legacy" / "prompts" / "prompt_info.json"
    prompts = json.loads(path.read_text())
    prompts["Rue's gift"] = {"message": "A sponsor sends Rue a gift.", "channel": "5"}
    prompts[LONG_KEY + "A"] = {"message": "prompt A", "channel": "5"}
    prompts[LONG_KEY + "B"] = {"message": "prompt B", "channel": "5"}
    path.write_text(json.dumps(prompts))
    result = run("copy", "thgbot:///legacy", "sqlite:///keys.db", cwd=migrated)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verified independently" in result.stdout

    # The check still looks in that tribute only: the text elsewhere does not count.
    with sqlite3.connect(migrated / "keys.db") as conn:
        conn.execute("UPDATE prompts SET message = 'A sponsor sends Rue a gift.' WHERE tribute_id = 'D1F'")
        conn.execute("UPDATE prompts SET message = 'other' WHERE tribute_id = 'RUE_S_GIFT'")
    result = run("verify", "--independent", "thgbot:///legacy", "sqlite:///keys.db", cwd=migrated)
    assert result.returncode == 7, result.stdout + result.stderr
    assert (
        'prompts/prompt_info.json ["Rue\'s gift"]: prompt text "A sponsor sends Rue a gift." missing'
        in result.stdout
    )
    assert "prompt A" not in result.stdout and "prompt B" not in result.stdout


@pytest.mark.parametrize(
    ("key", "tid"),
    [
        ("d1f", "D1F"),
        (" Peeta Mellark ", "PEETA_MELLARK"),
        ("Rue's gift", "RUE_S_GIFT"),
        ("--event!!", "EVENT"),
        (LONG_KEY + "A", _cut(LONG_KEY + "A")),
        ("x" * 63 + "-y", _cut("X" * 63 + "-Y")),
        ("x" * 63 + "y", "X" * 63 + "Y"),  # a valid id of 64 characters: as it is
        ("!!!", "KEY-" + hashlib.sha256(b"!!!").hexdigest()[:12].upper()),
    ],
)
def test_the_tribute_id_of_a_raw_key(key: str, tid: str) -> None:
    from tributestore.backends.thgbot_backend.presence import bot_id

    assert bot_id(key) == tid


# ------------------------------------------------------------------ number items
def test_number_items_are_checked_as_the_text_the_reader_stores(migrated: Path) -> None:
    """A whole number beyond 64 bits made ijson fail ("integer overflow"): the copy reported a
    difference it never found, exit 7.  Number items are now expected as their text."""
    (migrated / "legacy" / "inventories" / "inventories.json").write_text(
        '{"D1F": {"items": {"1": "Rope", "2": 12345678901234567890123, "3": 1.5, "4": 1E5, "5": -7},'
        ' "equipped": {"1": -98765432109876543210}}}'
    )
    result = run("copy", "thgbot:///legacy", "sqlite:///numbers.db", cwd=migrated)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verified independently" in result.stdout

    with sqlite3.connect(migrated / "numbers.db") as conn:
        conn.execute("DELETE FROM inventory_items WHERE item IN ('12345678901234567890123', '100000.0')")
        conn.execute("DELETE FROM inventory_items WHERE slot = 'equipped'")
    result = run("verify", "--independent", "thgbot:///legacy", "sqlite:///numbers.db", cwd=migrated)
    assert result.returncode == 7, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for needle in (
        '["D1F"]["items"]: item "12345678901234567890123" missing in the destination (0 of 1)',
        '["D1F"]["items"]: item "100000.0" missing in the destination (0 of 1)',
        '["D1F"]["equipped"]: item "-98765432109876543210" missing in the destination (0 of 1)',
    ):
        assert any(needle in line for line in lines), (needle, lines)
    assert not any('"1.5"' in line or '"-7"' in line for line in lines), lines


def test_a_raw_file_the_check_cannot_parse_is_named_with_the_entry(migrated: Path) -> None:
    """The raw file changed after the reader read it: one line naming the file and the entry."""
    from tributestore.errors import StorageError

    with (
        open_store(f"thgbot:///{migrated / 'legacy'}", mode="read") as legacy,
        open_store(f"sqlite:///{migrated / 'thg.db'}", mode="read") as copied,
    ):
        (migrated / "legacy" / "inventories" / "inventories.json").write_text(
            '{"D1F": {"items": {"1": "Rope"}}, "D2M": {"items": {"1": tru}}}'
        )
        with pytest.raises(StorageError) as raised:
            legacy.independent_check(copied)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(
        f"independent check of {migrated / 'legacy'}: cannot read the raw legacy files: "
        'inventories/inventories.json, the entry after ["D1F"]: '
    ), message


# ------------------------------------------------------------------ symlinks under prompt_images/
def test_an_image_symlinked_inside_the_directory_is_expected_by_its_link_name(tmp_path: Path) -> None:
    """The bot's open() followed a symlink to a file inside the directory, so the user saw that
    image: the check skipped every symlink, and a reader dropping it passed.  Symlinks leading
    outside the directory, dangling or in a loop stay skipped (the reader does not read them)."""
    folder = tmp_path / "legacy" / "prompt_images" / str(GUILD)
    folder.mkdir(parents=True)
    (folder / "D1F_1700000000.png").write_bytes(PNG)
    (folder / "D1F_1700000001.png").symlink_to("D1F_1700000000.png")
    (tmp_path / "outside.png").write_bytes(b"not the bot's")
    (folder / "D1F_1700000002.png").symlink_to(tmp_path / "outside.png")
    (folder / "D1F_1700000003.png").symlink_to("D1F_1700000003.png")  # a loop
    (folder / "D1F_1700000004.png").symlink_to("nothing.png")
    (tmp_path / "legacy" / "config.json").write_text(json.dumps({str(GUILD): {"log_channel_id": None}}))
    with open_store(f"sqlite:///{tmp_path / 'thg.db'}") as destination:
        destination.create_tribute(GUILD, "D1F")
        destination.add_file(GUILD, "D1F", "D1F_1700000000.png", PNG, kind="prompt_image")

    def verify() -> tuple[int, list[str]]:
        result = run("verify", "--independent", "thgbot:///legacy", "sqlite:///thg.db", cwd=tmp_path)
        return result.returncode, [line for line in result.stdout.splitlines() if "prompt_images/" in line]

    code, lines = verify()
    assert code == 7 and lines == [
        f"MISMATCH: raw source data: prompt_images/{GUILD}/D1F_1700000001.png: file 'D1F_1700000001.png' "
        "missing in the destination (its bytes are there only under other names: 'D1F_1700000000.png' "
        "of tribute D1F)"
    ], lines
    with open_store(f"sqlite:///{tmp_path / 'thg.db'}") as destination:
        destination.add_file(GUILD, "D1F", "D1F_1700000001.png", PNG, kind="prompt_image")
    assert verify() == (0, [])


def test_keys_holding_a_lone_surrogate_are_checked_and_shown_escaped(migrated: Path) -> None:
    """A key spelled with a ``"\\ud800"`` escape: the reader migrates it (as ``KEY-<digest>``), but
    the check wrote the key into its scratch database as text and stopped with an internal error
    (UnicodeEncodeError), so the copy could not be verified.  It is checked now, and a miss shows
    the key as the file spells it."""
    legacy = migrated / "legacy"
    (legacy / "inventories" / "inventories.json").write_text(
        '{"D1F": {"items": {"1": "Rope"}}, "\\ud800": {"items": {"1": "Flint", "2": "Salt"}}}'
    )
    (legacy / "prompts" / "prompt_info.json").write_text(
        '{"D13\\udfff": {"message": "A surrogate prompt.", "channel": "5"}}'
    )
    result = run("copy", "thgbot:///legacy", "sqlite:///sur.db", cwd=migrated)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verified independently" in result.stdout

    with sqlite3.connect(migrated / "sur.db") as conn:
        conn.execute("DELETE FROM inventory_items WHERE item = 'Flint'")
        conn.execute("UPDATE prompts SET message = 'other' WHERE tribute_id = 'D13'")
    result = run("verify", "--independent", "thgbot:///legacy", "sqlite:///sur.db", cwd=migrated)
    assert result.returncode == 7, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert (
        'MISMATCH: raw source data: inventories/inventories.json ["\\ud800"]["items"]: item "Flint" '
        "missing in the destination (0 of 1)"
    ) in lines, lines
    assert any(
        line.startswith(
            'MISMATCH: raw source data: prompts/prompt_info.json ["D13\\udfff"]: prompt text '
            '"A surrogate prompt." missing in the destination'
        )
        for line in lines
    ), lines
    assert "internal error" not in result.stderr


# ------------------------------------------------------------------ whole tributes
def test_a_tribute_missing_in_the_destination_is_one_line_naming_file_key_and_id(tmp_path: Path) -> None:
    """Tributes deleted from the destination passed ``verify --independent``: an item of a key
    with no tribute was reported only when its text was nowhere in the destination, and "Rope"
    or "Bread" always is.  Each raw key's tribute (by the documented key -> id rule) must be
    there: one line per absent tribute, naming where its key first is; its records not listed."""
    legacy = tmp_path / "legacy"
    (legacy / "inventories").mkdir(parents=True)
    (legacy / "inventories" / "inventories.json").write_text(
        json.dumps(
            {
                "D1F": {"items": {"1": "Rope", "2": "Bread"}},
                "d3m": {"items": {"1": "Rope"}, "equipped": {"1": "Bread"}},
                "Rue's gift": {"items": {"1": "Bread"}},
                "D6F": {},
            }
        )
    )
    (legacy / "prompts").mkdir()
    (legacy / "prompts" / "prompt_info.json").write_text(
        json.dumps({"D1F": {"message": "Run.", "channel": "5"}, "D4F": {"message": "", "channel": "5"}})
    )
    conn = sqlite3.connect(legacy / "thgbot.db")
    conn.execute("CREATE TABLE tributes (tribute_id TEXT UNIQUE, tribute_name TEXT, guild_id INTEGER)")
    conn.execute("CREATE TABLE prompts (tribute_id TEXT UNIQUE, message TEXT, channel_id TEXT)")
    conn.execute(f"INSERT INTO tributes VALUES ('D1F', 'Katniss', {GUILD}), ('D5M', 'Cato', {GUILD})")
    conn.execute(f"INSERT INTO tributes VALUES ('D3M', 'Thresh', {GUILD})")
    conn.execute("INSERT INTO prompts VALUES ('D1F', 'Run.', '5')")
    conn.commit()
    conn.close()
    result = run("copy", "thgbot:///legacy", "sqlite:///thg.db", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verified independently" in result.stdout

    for tid in ("D3M", "RUE_S_GIFT", "D4F", "D5M", "D6F"):
        sql(tmp_path, f"DELETE FROM tributes WHERE tribute_id = '{tid}'")
    result = run("verify", "--independent", "thgbot:///legacy", "sqlite:///thg.db", cwd=tmp_path)
    assert result.returncode == 7, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        'MISMATCH: raw source data: inventories/inventories.json ["d3m"]: tribute D3M missing in the '
        "destination (its key also in 1 other place(s) of the raw files)",
        'MISMATCH: raw source data: inventories/inventories.json ["Rue\'s gift"]: tribute RUE_S_GIFT '
        "missing in the destination",
        'MISMATCH: raw source data: inventories/inventories.json ["D6F"]: tribute D6F missing in the '
        "destination",
        'MISMATCH: raw source data: prompts/prompt_info.json ["D4F"]: tribute D4F missing in the destination',
        "MISMATCH: raw source data: thgbot.db table tributes row 2: tribute D5M missing in the destination",
    ]
    assert "5 difference(s)" in result.stderr

    # The ordinary comparison agrees on what is lost, tribute for tribute.
    result = run("verify", "thgbot:///legacy", "sqlite:///thg.db", cwd=tmp_path)
    assert result.returncode == 7 and "5 difference(s)" in result.stderr, result.stdout + result.stderr


def test_a_tribute_deleted_during_the_transition_window_is_not_expected(tmp_path: Path) -> None:
    """A tombstoned tribute (deleted through the composite) is not missing: its records are skipped."""
    from urllib.parse import quote

    legacy = tmp_path / "legacy"
    (legacy / "inventories").mkdir(parents=True)
    (legacy / "inventories" / "inventories.json").write_text(
        json.dumps({"D1F": {"items": {"1": "Rope"}}, "d2m": {"items": {"1": "Rope"}}})
    )
    (legacy / "config.json").write_text(json.dumps({str(GUILD): {"log_channel_id": None}}))
    window = (
        f"composite:?primary={quote(f'sqlite:///{tmp_path}/thg.db', safe='')}"
        f"&fallback={quote(f'thgbot:///{legacy}', safe='')}"
    )
    with open_store(window) as store:
        store.delete_tribute(GUILD, "D2M")
    result = run("copy", "thgbot:///legacy", "sqlite:///thg.db", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verified independently" in result.stdout
    result = run("verify", "--independent", "thgbot:///legacy", "sqlite:///thg.db", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


# Every form of key the reader sanitises: case, spaces, free text, long, nothing usable, white space
# the bot's strip() removes, characters upper() expands, a NUL, a key spelled with a JSON escape.
KEY_FORMS = [
    "d1f", "D1F", " Peeta Mellark ", "a  b", "Rue's gift", "--event!!", "D1.F", "x" * 63 + "y",
    "x" * 64 + "y", "x" * 63 + "-y", "A" * 200, "!!!", "🎉", "\uff24\uff29\uff26", "ß", "ﬁre",
    "D4F\t", "\nD5\n", "D6\u00a0", "_D7", "-D8-", "a\u0130b", "ǅ", "X\u3000Y", "", " ", "ŉ",
    "K" + "ü" * 70, "1", "__", "—", "ﬀ" * 40, "D11\x00", "D12/..",
]  # fmt: skip


def test_every_raw_key_form_is_the_tribute_the_reader_makes(tmp_path: Path) -> None:
    """The check's key -> id rule (bot_id) against the reader's, for every key form in each file
    the check reads: the tributes the copy writes are exactly the ids bot_id gives."""
    from tributestore.backends.thgbot_backend.presence import bot_id

    legacy = tmp_path / "legacy"
    (legacy / "inventories").mkdir(parents=True)
    (legacy / "prompts").mkdir()
    inventories = {key: {"items": {"1": "Bow"}} for key in KEY_FORMS}
    text = json.dumps(inventories)[:-1] + ', "\\ud800": {"items": {"1": "Bow"}}}'
    (legacy / "inventories" / "inventories.json").write_text(text)
    prompts = {"p" + key: {"message": "m"} for key in KEY_FORMS}
    (legacy / "prompts" / "prompt_info.json").write_text(json.dumps(prompts))
    conn = sqlite3.connect(legacy / "thgbot.db")
    conn.execute("CREATE TABLE tributes (tribute_id TEXT, tribute_name TEXT, guild_id INTEGER)")
    conn.execute("CREATE TABLE prompts (tribute_id TEXT, message TEXT, channel_id TEXT)")
    db_keys = ["t" + key for key in KEY_FORMS]
    conn.executemany("INSERT INTO tributes VALUES (?, NULL, NULL)", [(key,) for key in db_keys])
    conn.execute("INSERT INTO tributes VALUES (CAST(x'4431ff46' AS TEXT), NULL, NULL)")  # not UTF-8
    conn.executemany("INSERT INTO prompts VALUES (?, 'm', '5')", [("q" + key,) for key in KEY_FORMS])
    conn.commit()
    conn.close()
    keys = [*KEY_FORMS, "\ud800", *prompts, *db_keys, b"D1\xffF".decode("utf-8", "surrogateescape")]
    keys += ["q" + key for key in KEY_FORMS]

    result = run("copy", "thgbot:///legacy", "sqlite:///keys.db", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verified independently" in result.stdout
    with sqlite3.connect(tmp_path / "keys.db") as conn:
        made = {row[0] for row in conn.execute("SELECT tribute_id FROM tributes")}
    assert made == {bot_id(key) for key in keys}


# ------------------------------------------------------------------ many misses
def test_misses_past_the_listed_ones_are_counted_and_the_total_is_true(tmp_path: Path) -> None:
    """Misses were capped at 200 lines and the copy or verify then said "200 difference(s)" however
    many there were.  The list stays short; a last line says how many more, and the count is true."""
    legacy = tmp_path / "legacy"
    (legacy / "inventories").mkdir(parents=True)
    inventories = {f"D{number}F": {"items": {"1": "Bow", "2": "Water"}} for number in range(1, 261)}
    (legacy / "inventories" / "inventories.json").write_text(json.dumps(inventories))
    (legacy / "config.json").write_text(json.dumps({str(GUILD): {"log_channel_id": None}}))
    result = run("copy", "thgbot:///legacy", "sqlite:///thg.db", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr

    # verify --independent: 250 tributes lost, 10 left
    sql(tmp_path, "DELETE FROM tributes WHERE tribute_id NOT IN ('D1F', 'D2F', 'D3F', 'D4F', 'D5F', "
        "'D6F', 'D7F', 'D8F', 'D9F', 'D10F')")  # fmt: skip
    result = run("verify", "--independent", "thgbot:///legacy", "sqlite:///thg.db", cwd=tmp_path)
    assert result.returncode == 7, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 201, lines[-3:]
    assert all(" missing in the destination" in line for line in lines[:200])
    assert lines[0] == (
        'MISMATCH: raw source data: inventories/inventories.json ["D11F"]: tribute D11F missing in the '
        "destination"
    )
    assert lines[-1] == (
        "MISMATCH: raw source data: ... and 50 more missing in the destination (the first 200 listed, "
        "250 in all)"
    )
    assert "250 difference(s) between" in result.stderr, result.stderr

    # copy: every tribute conflicts (its items lost) and is skipped; the check counts every item
    result = run("copy", "thgbot:///legacy", "sqlite:///thg2.db", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    with sqlite3.connect(tmp_path / "thg2.db") as conn:
        conn.execute("DELETE FROM inventory_items")
    result = run("copy", "thgbot:///legacy", "sqlite:///thg2.db", "--on-conflict", "skip", cwd=tmp_path)
    assert result.returncode == 7, result.stdout + result.stderr
    raw = [line for line in result.stdout.splitlines() if "raw source data" in line]
    assert len(raw) == 201, raw[-3:]
    assert raw[-1] == (
        "MISMATCH: raw source data: ... and 320 more missing in the destination (the first 200 listed, "
        "520 in all)"
    )
    assert "520 difference(s) found after the copy" in result.stderr, result.stderr


def test_a_replaced_prompt_is_caught_though_a_kept_version_holds_its_text(tmp_path: Path) -> None:
    """D1F's thgbot.db prompt won over its JSON one, which was kept as a file and contains the
    winner's text: the destination's prompt replaced by anything passed, the text being found in
    that file. Now some raw version must be the prompt itself; non-UTF-8 text likewise (its
    original kept as a file held every replacement)."""
    assert run("sample-legacy", "legacy", cwd=tmp_path).returncode == 0
    conn = sqlite3.connect(tmp_path / "legacy" / "thgbot.db")
    conn.execute("UPDATE prompts SET message = CAST(x'52756e20e92021' AS TEXT) WHERE tribute_id = 'D6F'")
    conn.commit()
    conn.close()
    result = run("copy", "thgbot:///legacy", "sqlite:///thg.db", "--no-backup", cwd=tmp_path)
    assert result.returncode == 0 and "verified independently" in result.stdout, result.stdout + result.stderr
    sql(tmp_path, "UPDATE prompts SET message = 'tampered' WHERE tribute_id IN ('D1F', 'D6F')")
    result = run("verify", "--independent", "thgbot:///legacy", "sqlite:///thg.db", cwd=tmp_path)
    assert result.returncode == 7, result.stdout + result.stderr
    assert "thgbot.db table prompts row 1: prompt text" in result.stdout  # D1F's winner
    assert "holds none of this tribute's raw prompts" in result.stdout
    assert 'thgbot.db table prompts row 2: prompt text "Run \\udce9 !" missing' in result.stdout  # D6F
