"""Bad input: broken legacy THGBot directories, hand-made and hypothesis-generated.

Every broken directory must give a :class:`LegacyFormatError` whose one-line
message names the file and (where the damage is inside the JSON) the key; a
harmless change must open cleanly.  Through ``tributestore copy`` the exit
code is non-zero (6), stderr holds one message and no traceback, and the
destination is not created (or, when it existed, is byte-for-byte unchanged).

The hypothesis strategy mutates the bundled sample directory's JSON files:
values replaced by any JSON (huge and negative numbers, NaN, text with NUL,
path and SQL fragments, nested lists and objects), keys added, renamed or
removed, the bytes truncated, spliced with garbage or emptied, and numbers
longer than Python's 4300-digit ``int()`` limit spliced in.
``TRIBUTESTORE_HYPOTHESIS_EXAMPLES`` sets the examples per run (default 300).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tributestore import open_store
from tributestore.cli import main
from tributestore.errors import LegacyFormatError

SAMPLE = Path(str(resources.files("tributestore.backends.thgbot_backend") / "sample_legacy"))
CLI = [sys.executable, "-c", "from tributestore.cli import main; main()"]
EXAMPLES = int(os.environ.get("TRIBUTESTORE_HYPOTHESIS_EXAMPLES", "300"))
JSON_FILES = ["inventories/inventories.json", "prompts/prompt_info.json", "config/config.json", "config.json"]
LEGACY_FILES = ("inventories.json", "prompt_info.json", "config.json", "thgbot.db", "prompt_images")
HUGE = "9" * 5000
#: What the hypothesis run saw, printed at its end (for tests/RELIABILITY.md).
OUTCOMES: Counter[str] = Counter()


def sample_copy(target: Path) -> Path:
    return Path(shutil.copytree(SAMPLE, target))


def tree_digest(root: Path) -> str:
    """A digest of every path and file content under ``root``."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def assert_one_line_error(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("tributestore: error: "), stderr


# ------------------------------------------------------------------ hand-made cases
def nested(depth: int) -> bytes:
    return b'{"D1F": {"items": ' + b"[" * depth + b"]" * depth + b"}}"


HAND_MADE: list[tuple[str, str, bytes, list[str]]] = [
    # (case, file, content, parts the message must contain)
    ("invalid JSON", "inventories/inventories.json", b'{"D1F": {"items": {"1": "Knife"}', ["invalid JSON"]),
    ("empty file", "prompts/prompt_info.json", b"", ["empty file"]),
    ("binary garbage", "inventories/inventories.json", os.urandom(64) + b"\xff\xfe", ["not UTF-8"]),
    ("wrong type", "inventories/inventories.json", b'{"D1F": {"capacity": "ten"}}', ['["D1F"]["capacity"]']),
    ("wrong type (list)", "prompts/prompt_info.json", b'{"D1F": ["hello"]}', ['["D1F"]']),
    (
        "huge int",
        "inventories/inventories.json",
        b'{"D1F": {"capacity": ' + HUGE.encode() + b"}}",
        ['["D1F"]'],
    ),
    (
        "huge id text",
        "prompts/prompt_info.json",
        b'{"D1F": {"channel": "' + HUGE.encode() + b'"}}',
        ["channel"],
    ),
    ("huge float", "config/config.json", b'{"1": {"log_channel_id": 1e999}}', ['["1"]["log_channel_id"]']),
    (
        "huge item key",
        "inventories/inventories.json",
        b'{"D1F": {"items": {"' + HUGE.encode() + b'": "a"}}}',
        ["digits"],
    ),
    ("non-numeric key", "inventories/inventories.json", b'{"D1F": {"items": {"one": "Knife"}}}', ['["one"]']),
    ("nested too deep", "inventories/inventories.json", nested(100_000), ["nested too deeply"]),
    # A free-text key like "../../etc/passwd" is kept as tribute ETC_PASSWD (with a warning), one
    # with nothing usable left ("../..") as KEY-<digest>: no error (tests/test_legacy.py).
    ("garbage database", "thgbot.db", b"SQLite format 3\x00" + os.urandom(2000), ["thgbot.db"]),
]


INVENTORIES = "inventories/inventories.json"

#: Content the bot could have written: kept whole (a cut or replaced text keeps its original as a file).
KEPT: list[tuple[str, str, bytes, str]] = [
    # (case, file, content, part of the warning)
    (
        "huge item",
        "inventories/inventories.json",
        b'{"D1F": {"items": {"1": "' + b"x" * 10**6 + b'"}}}',
        "cut",
    ),
    ("NUL in item", "inventories/inventories.json", b'{"D1F": {"items": {"1": "a\\u0000b"}}}', "U+FFFD"),
    (
        "image name too long",
        "prompts/prompt_info.json",
        b'{"D1F": {"image": "' + b"x" * 300 + b'.png"}}',
        "image",
    ),
]


@pytest.mark.parametrize(("case", "rel", "content", "part"), KEPT, ids=[c[0] for c in KEPT])
def test_content_the_bot_could_write_is_kept_not_refused(
    tmp_path: Path, case: str, rel: str, content: bytes, part: str
) -> None:
    legacy = sample_copy(tmp_path / "legacy")
    (legacy / rel).write_bytes(content)
    store = open_store(f"thgbot:///{legacy}", mode="read")
    warnings = [w for w in store.warnings if Path(rel).name in w and '["D1F"]' in w and part in w]
    assert len(warnings) == 1, store.warnings
    if case != "image name too long":  # the stored text is replaced; the original is a file of D1F
        key = next(t.key for t in store.iter_tributes() if t.tribute_id == "D1F")
        originals = [f for f in store.list_files(*key) if f.kind == "legacy_original"]
        assert len(originals) == 1
        raw = json.loads(content)["D1F"]["items"]["1"]
        assert json.dumps(raw)[1:-1] in store.read_file(*key, originals[0].name).decode()


@pytest.mark.parametrize(("case", "rel", "content", "parts"), HAND_MADE, ids=[c[0] for c in HAND_MADE])
def test_hand_made_broken_file_is_a_clear_error(
    tmp_path: Path, case: str, rel: str, content: bytes, parts: list[str]
) -> None:
    legacy = sample_copy(tmp_path / "legacy")
    (legacy / rel).write_bytes(content)
    with pytest.raises(LegacyFormatError) as raised:
        open_store(f"thgbot:///{legacy}", mode="read")
    message = str(raised.value)
    assert "\n" not in message and Path(rel).name in message, message
    for part in parts:
        assert part in message, message


@pytest.mark.parametrize(
    "destination",
    [
        pytest.param("sqlite", marks=pytest.mark.backend("sqlite")),
        pytest.param("json", marks=pytest.mark.backend("json")),
    ],
)
@pytest.mark.parametrize(
    "case", ["invalid JSON", "binary garbage", "huge int", "non-numeric key", "garbage database"]
)
def test_copy_of_broken_directory_fails_cleanly_and_writes_nothing(
    tmp_path: Path, case: str, destination: str
) -> None:
    _, rel, content, _ = next(c for c in HAND_MADE if c[0] == case)
    legacy = sample_copy(tmp_path / "legacy")
    (legacy / rel).write_bytes(content)
    before = tree_digest(legacy)
    dst = tmp_path / ("dst.db" if destination == "sqlite" else "dst")
    result = run_cli("copy", f"thgbot:///{legacy}", f"{destination}:///{dst}", cwd=tmp_path)
    assert result.returncode == LegacyFormatError.exit_code, result.stdout + result.stderr
    assert_one_line_error(result.stderr)
    assert Path(rel).name in result.stderr
    assert not dst.exists(), "the destination was created"
    assert not (tmp_path / "tributestore-backups").exists()
    assert tree_digest(legacy) == before


@pytest.mark.backend("sqlite")
def test_failed_copy_leaves_an_existing_destination_unchanged(tmp_path: Path) -> None:
    dst = tmp_path / "dst.db"
    with open_store(f"sqlite:///{dst}") as store:
        store.create_tribute(1, "D1F", name="already here")
        store.add_item(1, "D1F", "Knife")
    before = dst.read_bytes()
    legacy = sample_copy(tmp_path / "legacy")
    (legacy / "prompts" / "prompt_info.json").write_bytes(b'{"D1F": {"message": 5}}')
    result = run_cli("copy", f"thgbot:///{legacy}", f"sqlite:///{dst}", cwd=tmp_path)
    assert result.returncode == LegacyFormatError.exit_code
    assert_one_line_error(result.stderr)
    assert '["D1F"]["message"]' in result.stderr
    assert dst.read_bytes() == before
    assert not (tmp_path / "tributestore-backups").exists()


def test_unknown_fields_are_warnings_naming_file_and_key(tmp_path: Path) -> None:
    legacy = sample_copy(tmp_path / "legacy")
    path = legacy / "inventories" / "inventories.json"
    data = json.loads(path.read_text())
    first = sorted(data)[0]
    data[first]["owner"] = "someone"
    path.write_text(json.dumps(data))
    store = open_store(f"thgbot:///{legacy}", mode="read")
    assert f'inventories/inventories.json ["{first}"]["owner"]: unknown inventory field, not migrated' in (
        store.warnings
    )


# ------------------------------------------------------------------ hypothesis mutations
SPECIAL_TEXT = [
    "../../etc/passwd",
    "/etc/passwd",
    "a\x00b",
    "'; DROP TABLE tributes; --",
    "1",
    "0",
    "-1",
    "D1F",
    "d1f",
    "",
    " ",
    "SPOILER_D1F x.png",
    "\ud800",
    "x" * 3000,
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(SPECIAL_TEXT)
    | st.just("__HUGE__")
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)
keys = (
    st.text(max_size=12)
    | st.sampled_from(SPECIAL_TEXT)
    | st.sampled_from(
        ["items", "equipped", "capacity", "image", "channel", "message", "guild_id", "12", "01"]
    )
)


def paths_of(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found.extend(paths_of(child, (*prefix, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.extend(paths_of(child, (*prefix, index)))
    return found


def at(document: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        document = document[key]
    return document


def encode(document: Any) -> bytes:
    text = json.dumps(document, indent=4, ensure_ascii=True, allow_nan=True)
    return text.replace('"__HUGE__"', HUGE).encode()


def mutate(data: st.DataObject, raw: bytes) -> tuple[str, bytes]:
    """One mutation of a JSON file's bytes; returns its kind and the new bytes."""
    kind = data.draw(
        st.sampled_from(["replace", "add key", "rename key", "delete key", "truncate", "splice", "whole"]),
        label="kind",
    )
    if kind == "truncate":
        return kind, raw[: data.draw(st.integers(0, max(0, len(raw) - 1)), label="cut")]
    if kind == "splice":
        where = data.draw(st.integers(0, len(raw)), label="at")
        return kind, raw[:where] + data.draw(st.binary(min_size=1, max_size=16), label="bytes") + raw[where:]
    if kind == "whole":
        return kind, data.draw(st.sampled_from([b"", b"   ", b"null", b"[]", b"42", b'"text"', b"\x00" * 8]))
    document = json.loads(raw)
    path = data.draw(st.sampled_from(paths_of(document)), label="path")
    target = at(document, path)
    if kind == "replace":
        value = data.draw(json_values, label="value")
        if path:
            at(document, path[:-1])[path[-1]] = value
        else:
            document = value
    elif kind == "add key" and isinstance(target, dict):
        target[data.draw(keys, label="key")] = data.draw(json_values, label="value")
    elif kind == "rename key" and isinstance(target, dict) and target:
        old = data.draw(st.sampled_from(sorted(target)), label="old")
        target[data.draw(keys, label="new")] = target.pop(old)
    elif kind == "delete key" and isinstance(target, dict) and target:
        del target[data.draw(st.sampled_from(sorted(target)), label="old")]
    return kind, encode(document)


@pytest.mark.backend("json")
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_mutated_legacy_directory_is_clean_or_a_clear_error(tmp_path: Path, data: st.DataObject) -> None:
    rel = data.draw(st.sampled_from(JSON_FILES), label="file")
    with tempfile.TemporaryDirectory(dir=tmp_path) as scratch:
        legacy = sample_copy(Path(scratch) / "legacy")
        path = legacy / rel
        kind, content = mutate(data, path.read_bytes())
        path.write_bytes(content)
        try:
            store = open_store(f"thgbot:///{legacy}", mode="read")
        except LegacyFormatError as error:
            message = str(error)
            assert "\n" not in message, message
            assert Path(rel).name in message, message
            OUTCOMES[f"error ({kind})"] += 1
            OUTCOMES["error names a key"] += '["' in message or "][" in message
            check_cli_fails_cleanly(legacy, Path(scratch))
        else:
            OUTCOMES[f"clean ({kind})"] += 1
            for warning in store.warnings:
                assert "\n" not in warning and any(name in warning for name in LEGACY_FILES), warning
            store.counts()
            list(store.iter_bundles())
            store.close()
    OUTCOMES["inputs"] += 1


def check_cli_fails_cleanly(legacy: Path, scratch: Path) -> None:
    """``tributestore copy`` (in this process): exit 6, one line, no traceback, nothing written."""
    dst = scratch / "dst.db"
    code, stderr = call_main(["copy", f"thgbot:///{legacy}", f"sqlite:///{dst}", "--no-backup"])
    assert code == LegacyFormatError.exit_code, stderr
    assert_one_line_error(stderr)
    assert not dst.exists()


def call_main(argv: list[str]) -> tuple[int, str]:
    err, out = io.StringIO(), io.StringIO()
    code: int | str | None = 0
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            main(argv)
        except SystemExit as exit_:
            code = exit_.code
    return (code if isinstance(code, int) else 1), err.getvalue()


@pytest.mark.backend("json")
def test_report_mutation_outcomes() -> None:
    """Prints what the hypothesis run saw (run with -s); runs after it in file order."""
    print(f"\ninput/mutations: {dict(sorted(OUTCOMES.items()))}")


# ------------------------------------------------------------------ the bot's own database
@pytest.mark.backend("json")
@pytest.mark.parametrize(
    ("mangle", "parts"),
    [
        (lambda db: db.execute("UPDATE tributes SET user_id = 'x' || user_id"), ["tributes row", "user_id"]),
        (lambda db: db.execute("UPDATE tributes SET created_at = 'yesterday-ish'"), ["created_at"]),
        (lambda db: db.execute(f"UPDATE tributes SET guild_id = '{HUGE}'"), ["guild_id"]),
        (lambda db: db.execute("UPDATE tributes SET tribute_id = x'ff00' WHERE rowid = 1"), ["tribute_id"]),
    ],
    ids=["text in an integer column", "unparseable timestamp", "huge guild id", "bytes as tribute id"],
)
def test_broken_thgbot_db_names_table_row_and_column(
    tmp_path: Path, mangle: Callable[[sqlite3.Connection], object], parts: list[str]
) -> None:
    legacy = sample_copy(tmp_path / "legacy")
    with contextlib.closing(sqlite3.connect(legacy / "thgbot.db")) as db:
        mangle(db)
        db.commit()
    with pytest.raises(LegacyFormatError) as raised:
        open_store(f"thgbot:///{legacy}", mode="read")
    message = str(raised.value)
    assert "thgbot.db" in message and "\n" not in message, message
    for part in parts:
        assert part in message, message
