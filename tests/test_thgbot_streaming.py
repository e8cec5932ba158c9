"""The legacy reader in bounded memory: the streamed JSON parser and the reusable index.

The parser (``jsonstream``) must give exactly what ``json.loads`` gives for every
entry, whatever the chunk boundaries, and refuse (so the reader falls back to
``json.loads`` and its exact message) everything unusual.  The index (a SQLite
file in the cache directory) must be reused while the legacy files are
unchanged, rebuilt when they change or the index is damaged, never written
inside the legacy directory, and replaced by a temporary one when the cache
directory is unusable.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from tributestore import ConfigError, open_store
from tributestore.backends.thgbot_backend import jsonstream
from tributestore.backends.thgbot_backend.index import CACHE_ENV
from tributestore.backends.thgbot_backend.reader import _no_duplicates, _parse_int
from tributestore.backends.thgbot_backend.store import ThgbotBackend

GUILD = 111111111111111111


def _stream(path: Path) -> list[tuple[str, Any]]:
    return list(jsonstream.iter_object(path, _no_duplicates, _parse_int))


def _loads(path: Path) -> list[tuple[str, Any]]:
    text = path.read_bytes().decode("utf-8-sig")
    return list(json.loads(text, object_pairs_hook=_no_duplicates, parse_int=_parse_int).items())


SAMPLES = [
    '{"a": 1, "b": [1, 2.5, -3e2, true, false, null], "c": {"x": {"y": "z"}}}',
    "  \n{ }  \n",
    '{"\\ud800": "lone \\udc00 surrogate", "e\\u0301": "\\u00e9\\n\\"q\\""}',
    '{"n": NaN, "i": Infinity, "m": -Infinity}',
    '{"big": ' + "7" * 5000 + ', "neg": -' + "9" * 5000 + "}",
    '\ufeff{"bom": "ok"}',
    '{"multi": "' + "\u00e9\u4e2d\U0001f600" * 50 + '"}',
    "{" + ", ".join(f'"k{n}": {{"items": {{"1": "item {n}"}}}}' for n in range(300)) + "}",
]


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 1 << 20])
@pytest.mark.parametrize("sample", range(len(SAMPLES)))
def test_stream_equals_json_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int, sample: int
) -> None:
    monkeypatch.setattr(jsonstream, "CHUNK", chunk)
    path = tmp_path / "f.json"
    path.write_bytes(SAMPLES[sample].encode("utf-8", "surrogatepass"))
    streamed = _stream(path)
    expected = _loads(path)
    assert repr(streamed) == repr(expected)  # repr: NaN != NaN, and types must match too


BAD = [
    "",
    "   ",
    "[1, 2]",
    '"text"',
    '{"a": 1} x',
    '{"a": 1, "a": 2}',
    '{"a": {"b": 1, "b": 2}}',
    '{"a": 1,}',
    '{"a" 1}',
    '{"a": 1',
    '{"a": tru}',
    '{"a": "unterminated}',
    "{a: 1}",
    '{"a": 1} {"b": 2}',
]


@pytest.mark.parametrize("chunk", [1, 5, 1 << 20])
@pytest.mark.parametrize("text", BAD)
def test_stream_refuses_what_is_not_a_plain_object(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int, text: str
) -> None:
    monkeypatch.setattr(jsonstream, "CHUNK", chunk)
    path = tmp_path / "f.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(jsonstream.StreamError):
        _stream(path)


def test_stream_refuses_invalid_utf8(tmp_path: Path) -> None:
    path = tmp_path / "f.json"
    path.write_bytes(b'{"a": "\xff\xfe"}')
    with pytest.raises(jsonstream.StreamError):
        _stream(path)


def test_stream_of_deep_nesting_refuses(tmp_path: Path) -> None:
    path = tmp_path / "f.json"
    path.write_text('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(jsonstream.StreamError):
        _stream(path)


# --------------------------------------------------------------------------- the index
def _legacy(root: Path, items: dict[str, str] | None = None) -> Path:
    (root / "inventories").mkdir(parents=True)
    inventory = {"D1F": {"capacity": 10, "items": items or {"1": "Rope", "2": "Bread"}}, "d2m": {"items": {}}}
    (root / "inventories" / "inventories.json").write_text(json.dumps(inventory))
    (root / "config").mkdir()
    (root / "config" / "config.json").write_text(json.dumps({str(GUILD): {}}))
    return root


def _listing(root: Path) -> list[tuple[str, int, int]]:
    found = []
    for directory, _, names in os.walk(root):
        for name in names:
            stat = (Path(directory) / name).stat()
            found.append((str(Path(directory) / name), stat.st_size, stat.st_mtime_ns))
    return sorted(found)


def _index_files(cache: Path) -> list[Path]:
    return sorted(path for path in cache.rglob("*.sqlite") if not path.name.startswith(".build-"))


def test_index_is_reused_while_unchanged_and_rebuilt_when_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(cache))
    legacy = _legacy(tmp_path / "legacy")
    before = _listing(legacy)
    url = f"thgbot:///{legacy}"
    store = open_store(url, mode="read")
    assert store.get_inventory(GUILD, "D1F").items == ["Rope", "Bread"]
    store.close()
    [index] = _index_files(cache)
    built = index.stat().st_ino
    assert _listing(legacy) == before  # nothing created or changed in the legacy directory

    store = open_store(url, mode="read")  # unchanged: the same file, not rebuilt
    assert store.get_inventory(GUILD, "D1F").items == ["Rope", "Bread"]
    store.close()
    assert index.stat().st_ino == built

    inventories = legacy / "inventories" / "inventories.json"
    inventories.write_text(json.dumps({"D1F": {"items": {"1": "Knife"}}}))
    store = open_store(url, mode="read")
    assert store.get_inventory(GUILD, "D1F").items == ["Knife"]
    assert not store.has_tribute(GUILD, "D2M")
    store.close()
    assert [path.stat().st_ino for path in _index_files(cache)] != [built]


def test_a_file_rewritten_with_its_size_and_mtime_restored_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``cp -p`` and ``rsync -t`` keep a file's mtime; same-size writes within one clock tick look
    alike too: the index must still see the change (the inode's ctime cannot be set back)."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    legacy = _legacy(tmp_path / "legacy", items={"1": "Rope"})
    url = f"thgbot:///{legacy}"
    with open_store(url, mode="read") as store:
        assert store.get_inventory(GUILD, "D1F").items == ["Rope"]
    inventories = legacy / "inventories" / "inventories.json"
    old = inventories.stat()
    changed = inventories.read_text().replace('"Rope"', '"Axe!"')
    assert len(changed) == len(inventories.read_text())
    inventories.write_text(changed)
    os.utime(inventories, ns=(old.st_atime_ns, old.st_mtime_ns))
    assert (inventories.stat().st_size, inventories.stat().st_mtime_ns) == (old.st_size, old.st_mtime_ns)
    with open_store(url, mode="read") as store:
        assert store.get_inventory(GUILD, "D1F").items == ["Axe!"]


def test_a_damaged_index_is_rebuilt_not_trusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(cache))
    url = f"thgbot:///{_legacy(tmp_path / 'legacy')}"
    open_store(url, mode="read").close()
    [index] = _index_files(cache)
    with sqlite3.connect(index) as conn:  # rows lost behind its back: the count check fails
        conn.execute("DELETE FROM docs WHERE tribute_id = 'D1F'")
    store = open_store(url, mode="read")
    assert store.get_inventory(GUILD, "D1F").items == ["Rope", "Bread"]
    store.close()
    index.write_bytes(b"not a database at all" * 100)
    store = open_store(url, mode="read")
    assert store.get_inventory(GUILD, "D1F").items == ["Rope", "Bread"]
    store.close()


def test_an_unusable_cache_directory_falls_back_to_a_temporary_index(tmp_path: Path) -> None:
    legacy = _legacy(tmp_path / "legacy")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    store = open_store(f"thgbot:///{legacy}?cache={blocker / 'sub'}", mode="read")
    assert store.get_inventory(GUILD, "D1F").items == ["Rope", "Bread"]
    assert any("temporary index" in warning for warning in store.warnings)
    assert store.details()["legacy_index_temporary"] == 1
    backend = store.backend
    assert isinstance(backend, ThgbotBackend)
    assert not backend.index.path.exists()  # deleted at once; the open connection keeps it
    store.close()


def test_cache_off_builds_a_temporary_index_each_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    legacy = _legacy(tmp_path / "legacy")
    store = open_store(f"thgbot:///{legacy}?cache=off", mode="read")
    assert [t.tribute_id for t in store.iter_tributes()] == ["D1F", "D2M"]
    store.close()
    assert not (tmp_path / "cache").exists()


def test_an_empty_cache_option_is_refused_never_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    legacy = _legacy(tmp_path / "legacy")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    with pytest.raises(ConfigError, match="cache= needs a directory"):
        open_store(f"thgbot:///{legacy}?cache=", mode="read")
    assert list(work.iterdir()) == []


def test_concurrent_builders_do_not_corrupt_each_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(cache))
    items = {str(n): f"item {n}" for n in range(1, 400)}
    url = f"thgbot:///{_legacy(tmp_path / 'legacy', items)}"
    results: list[list[str]] = []
    errors: list[Exception] = []

    def open_and_read() -> None:
        try:
            store = open_store(url, mode="read")
            results.append(store.get_inventory(GUILD, "D1F").items)
            store.close()
        except Exception as error:  # noqa: BLE001 (reported below)
            errors.append(error)

    threads = [threading.Thread(target=open_and_read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert results == [list(items.values())] * 4
    assert len(_index_files(cache)) == 1
    assert not [path for path in cache.rglob(".build-*")]
    store = open_store(url, mode="read")
    assert store.get_inventory(GUILD, "D1F").items == list(items.values())
    store.close()


def test_documents_stream_in_key_order_across_guilds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    legacy = tmp_path / "legacy"
    (legacy / "inventories").mkdir(parents=True)
    keys = [f"T{n:04d}" for n in range(2500, 0, -1)]  # written in reverse: more than one page
    (legacy / "inventories" / "inventories.json").write_text(
        json.dumps({key: {"items": {"1": key.lower()}} for key in keys})
    )
    store = open_store(f"thgbot:///{legacy}?guild={GUILD}", mode="read")
    assert [b.tribute.tribute_id for b in store.iter_bundles()] == sorted(keys)
    assert store.counts().items == 2500
    hits = list(store.search_items("t000"))
    assert [hit.tribute_id for hit in hits] == sorted(key for key in keys if key.startswith("T000"))
    store.close()


def test_a_plain_directory_is_streamed_never_loaded_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tributestore.backends.thgbot_backend import reader

    loaded: list[str] = []
    whole = reader._Reader.load_json

    def spy(self: Any, rel: str) -> object:
        loaded.append(rel)
        return whole(self, rel)

    monkeypatch.setattr(reader._Reader, "load_json", spy)
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    legacy = _legacy(tmp_path / "legacy")
    (legacy / "prompts").mkdir()
    (legacy / "prompts" / "prompt_info.json").write_text(
        json.dumps({"D1F": {"message": "Run.", "channel": "5"}})
    )
    store = open_store(f"thgbot:///{legacy}", mode="read")
    assert store.get_prompt(GUILD, "D1F").message == "Run."
    assert store.get_inventory(GUILD, "D1F").items == ["Rope", "Bread"]
    store.close()
    assert loaded == ["config/config.json"]  # the small config only
    (legacy / "inventories" / "inventories.json").write_text('{"D1F": {}, "D1F": {}}')
    with pytest.raises(Exception, match="duplicate key 'D1F'"):
        open_store(f"thgbot:///{legacy}", mode="read")
    assert "inventories/inventories.json" not in loaded  # the stream names a duplicate key itself


def test_a_cache_directory_inside_the_legacy_directory_is_not_used(tmp_path: Path) -> None:
    legacy = _legacy(tmp_path / "legacy")
    before = _listing(legacy)
    store = open_store(f"thgbot:///{legacy}?cache={legacy / 'cache'}", mode="read")
    assert store.get_inventory(GUILD, "D1F").items == ["Rope", "Bread"]
    assert any("inside the legacy directory" in warning for warning in store.warnings)
    store.close()
    assert _listing(legacy) == before
    assert not (legacy / "cache").exists()


def test_a_relative_url_reads_file_bytes_from_any_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    legacy = _legacy(tmp_path / "legacy")
    (legacy / "prompt_images" / str(GUILD)).mkdir(parents=True)
    (legacy / "prompt_images" / str(GUILD) / "D1F_1700000000.png").write_bytes(b"png bytes")
    monkeypatch.chdir(tmp_path)
    open_store("thgbot:///legacy", mode="read").close()  # builds the index
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    store = open_store(f"thgbot:///{legacy}", mode="read")  # reuses it, from another directory
    assert store.read_file(GUILD, "D1F", "D1F_1700000000.png") == b"png bytes"
    store.close()


def test_a_changed_image_anywhere_invalidates_the_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    legacy = _legacy(tmp_path / "legacy")
    (legacy / "prompts").mkdir()
    (legacy / "uploads").mkdir()  # outside prompt_images/, named by a relative path with a folder
    (legacy / "uploads" / "d1f.png").write_bytes(b"first")
    prompts = {"D1F": {"message": "Run.", "image": "uploads/d1f.png"}}
    (legacy / "prompts" / "prompt_info.json").write_text(json.dumps(prompts))
    url = f"thgbot:///{legacy}"
    store = open_store(url, mode="read")
    assert store.read_file(GUILD, "D1F", "d1f.png") == b"first"
    store.close()
    (legacy / "uploads" / "d1f.png").write_bytes(b"second, longer")
    store = open_store(url, mode="read")  # rebuilt: the new bytes and their sha256
    assert store.read_file(GUILD, "D1F", "d1f.png") == b"second, longer"
    assert store.get_file(GUILD, "D1F", "d1f.png").size == len(b"second, longer")
    store.close()
    image = legacy / "prompt_images" / str(GUILD) / "D1F_1700000000.png"
    image.parent.mkdir(parents=True)
    image.write_bytes(b"new image")
    store = open_store(url, mode="read")  # a file added under prompt_images/: rebuilt
    assert store.read_file(GUILD, "D1F", "D1F_1700000000.png") == b"new image"
    store.close()


def test_an_image_appearing_where_a_prompt_named_it_invalidates_the_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A prompt naming an image outside prompt_images/ that is not there yet: the bot shows it once
    it is uploaded, so a reopened store must read it (not keep the index built without it)."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    legacy = _legacy(tmp_path / "legacy")
    (legacy / "prompts").mkdir()
    prompts = {"D1F": {"message": "Run.", "image": "uploads/d1f.png"}}
    (legacy / "prompts" / "prompt_info.json").write_text(json.dumps(prompts))
    url = f"thgbot:///{legacy}"
    with open_store(url, mode="read") as store:
        assert store.list_files(GUILD, "D1F") == []
        assert any("uploads/d1f.png" in warning and "missing" in warning for warning in store.warnings)
    (legacy / "uploads").mkdir()  # neither a file the reader reads nor under prompt_images/
    (legacy / "uploads" / "d1f.png").write_bytes(b"uploaded later")
    with open_store(url, mode="read") as store:
        assert store.read_file(GUILD, "D1F", "d1f.png") == b"uploaded later"
        assert not any("uploads/d1f.png" in warning and "missing" in warning for warning in store.warnings)


def _built_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str, Path]:
    """A legacy directory (D1F holds "Rope"), its URL, and its index, built in a cache of its own."""
    cache = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(cache))
    legacy = _legacy(tmp_path / "legacy", items={"1": "Rope"})
    url = f"thgbot:///{legacy}"
    open_store(url, mode="read").close()
    [index] = _index_files(cache)
    return legacy, url, index


def test_an_index_replaced_between_its_check_and_its_open_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process may rename a newer index over the checked one before this one opens it:
    the metadata must describe the file actually held, or the index is not used."""
    from tributestore.backends.thgbot_backend.index import LegacyIndex, read_meta

    legacy, url, index = _built_index(tmp_path, monkeypatch)
    checked = read_meta(index)
    assert checked is not None
    LegacyIndex(index, checked, temporary=False).close()  # the checked file: used

    (legacy / "inventories" / "inventories.json").write_text(json.dumps({"D1F": {"items": {"1": "Axe"}}}))
    with open_store(url, mode="read") as store:  # rebuilt and renamed over the checked file
        assert store.get_inventory(GUILD, "D1F").items == ["Axe"]
    with pytest.raises(sqlite3.DatabaseError, match="replaced after its check"):
        LegacyIndex(index, checked, temporary=False)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown needs root")
def test_an_index_owned_by_another_user_is_not_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shared cache directory: another user can plant an index with the right fingerprint (it is
    computed from what anyone reading the legacy directory sees); it must not be read."""
    _, url, index = _built_index(tmp_path, monkeypatch)
    with sqlite3.connect(index) as conn:  # planted content, fingerprint and checks left as they were
        conn.execute("UPDATE docs SET doc = replace(doc, '\"Rope\"', '\"Planted\"')")
    conn.close()
    with open_store(url, mode="read") as store:  # ours: trusted as it is (what the check is about)
        assert store.get_inventory(GUILD, "D1F").items == ["Planted"]
    os.chown(index, 4242, 4242)
    with open_store(url, mode="read") as store:
        assert store.get_inventory(GUILD, "D1F").items == ["Rope"]
