"""Security: hostile ids, names and queries never leave the data directory nor change a query,
and one guild never sees another's tributes, through any operation.

Every public :class:`TributeStore` method is called with path fragments
(``../../etc/passwd``, absolute paths, ``\\``), NUL bytes and SQL fragments in
each argument, on the json, sqlite and composite backends.  Each call must
raise :class:`InvalidInputError` (or :class:`NotFoundError` for a well-formed
id that does not exist), or store the value literally and give it back
unchanged.  The whole directory tree around the store is snapshot before and
after: nothing may appear or change outside the data directory.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tributestore import AlreadyExistsError, InvalidInputError, NotFoundError, TributeStore, open_store
from tributestore.digest import bundle_digest
from tributestore.models import check_file_name, check_tribute_id

SAMPLE = resources.files("tributestore.backends.thgbot_backend") / "sample_legacy"
EXAMPLES = int(os.environ.get("TRIBUTESTORE_HYPOTHESIS_EXAMPLES", "300")) // 3
GUILD, OTHER = 111, 222

HOSTILE = [
    "../../etc/passwd",
    "../../../../../../../../tmp/escaped",
    "..",
    ".",
    "/etc/passwd",
    "/",
    "D1F/../../x",
    "..\\..\\x",
    "C:\\Windows\\win.ini",
    "a\x00b",
    "\x00",
    "D1F\x00.png",
    "D1F'; DROP TABLE tributes; --",
    "' OR '1'='1",
    '" OR ""="',
    "1; DELETE FROM files",
    "%",
    "_",
    "*",
    "~root",
    "$(touch /tmp/pwned)",
    "D1F%2f..%2f..%2fetc",
    "\u2215etc\u2215passwd",
    "D1F\n",
    " D1F ",
    "x" * 300,
    "",
]
#: Lone surrogates (hypothesis' characters() never draws them).
SURROGATES = st.integers(0xD800, 0xDFFF).map(chr)
HOSTILE_GUILDS: list[Any] = ["1", "../../etc", -1, 2**63, 1.5, True, None, "1 OR 1=1", b"1"]
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))


def composite_url(primary: str, fallback: str) -> str:
    return f"composite:?primary={quote(primary, safe='')}&fallback={quote(fallback, safe='')}"


def store_url(kind: str, data: Path) -> str:
    if kind == "composite":  # the fallback is only read: it must exist
        open_store(f"json:///{data}/fallback").close()
    return {
        "json": f"json:///{data}",
        "sqlite": f"sqlite:///{data}/thg.db",
        "composite": composite_url(f"sqlite:///{data}/thg.db", f"json:///{data}/fallback"),
    }[kind]


BACKENDS = [
    pytest.param("json", marks=pytest.mark.backend("json")),
    pytest.param("sqlite", marks=pytest.mark.backend("sqlite")),
    pytest.param("composite", marks=[pytest.mark.backend("composite"), pytest.mark.backend("sqlite")]),
    pytest.param("postgres", marks=pytest.mark.backend("postgres")),
]


def url_of(request: pytest.FixtureRequest, backend: str, data: Path) -> str:
    """The store URL of ``backend``: a fresh schema of the test server for PostgreSQL."""
    if backend == "postgres":
        return str(request.getfixturevalue("schema_url"))
    return store_url(backend, data)


def snapshot(root: Path, skip: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime) of every path under ``root`` except inside ``skip``."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if Path(dirpath) == skip:
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            if os.path.join(dirpath, name) == str(skip):
                continue
            stat = os.lstat(os.path.join(dirpath, name))
            found[os.path.join(dirpath, name)] = (stat.st_size, stat.st_mtime_ns)
    return found


def outside_markers() -> dict[str, bool]:
    return {path: os.path.exists(path) for path in ("/tmp/escaped", "/tmp/pwned", "/x", "/D1F.png")}


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """The store's data directory, deep enough that ``../../`` still lands inside tmp_path."""
    data = tmp_path / "a" / "b" / "data"
    data.mkdir(parents=True)
    # This test's directory in full, and the names beside it (other tests' directories are not
    # watched: an SQLite file of an earlier test may still be checkpointed by the garbage collector).
    before, markers, passwd = snapshot(tmp_path, data), outside_markers(), os.stat("/etc/passwd")
    siblings = sorted(os.listdir(tmp_path.parent))
    yield data
    assert snapshot(tmp_path, data) == before, "something was written outside the data directory"
    assert sorted(os.listdir(tmp_path.parent)) == siblings
    assert outside_markers() == markers
    after = os.stat("/etc/passwd")
    assert (after.st_size, after.st_mtime_ns) == (passwd.st_size, passwd.st_mtime_ns)


def calls(value: Any) -> list[tuple[str, Callable[[TributeStore], object]]]:
    """Every public operation, with ``value`` in one argument."""
    g, t = GUILD, "D1F"
    return [
        ("create_tribute id", lambda s: s.create_tribute(g, value)),
        ("create_tribute guild", lambda s: s.create_tribute(value, t)),
        ("create_tribute name", lambda s: s.update_tribute(g, t, name=value)),
        ("get_tribute", lambda s: s.get_tribute(g, value)),
        ("get_tribute guild", lambda s: s.get_tribute(value, t)),
        ("has_tribute", lambda s: s.has_tribute(g, value)),
        ("update_tribute", lambda s: s.update_tribute(g, value, name="x")),
        ("delete_tribute", lambda s: s.delete_tribute(g, value)),
        ("delete_tribute guild", lambda s: s.delete_tribute(value, t)),
        ("list_tributes", lambda s: s.list_tributes(value)),
        ("iter_tributes", lambda s: list(s.iter_tributes(value))),
        ("get_inventory", lambda s: s.get_inventory(g, value)),
        ("add_item id", lambda s: s.add_item(g, value, "Knife")),
        ("add_item item", lambda s: s.add_item(g, t, value, force=True)),
        ("remove_item", lambda s: s.remove_item(g, value, 1)),
        ("remove_item number", lambda s: s.remove_item(g, t, value)),
        ("equip_item", lambda s: s.equip_item(g, value, 1)),
        ("unequip_item", lambda s: s.unequip_item(g, value, 1)),
        ("set_capacity", lambda s: s.set_capacity(g, t, capacity=value)),
        ("clear_inventory", lambda s: s.clear_inventory(value, t)),
        ("search_items", lambda s: s.search_items(value)),
        ("search_items guild", lambda s: s.search_items("knife", guild_id=value)),
        ("set_prompt id", lambda s: s.set_prompt(g, value, "msg")),
        ("set_prompt message", lambda s: s.set_prompt(g, t, value)),
        ("set_prompt files", lambda s: s.set_prompt(g, t, "msg", files=[value])),
        ("set_prompt channel", lambda s: s.set_prompt(g, t, "msg", channel_id=value)),
        ("get_prompt", lambda s: s.get_prompt(g, value)),
        ("delete_prompt", lambda s: s.delete_prompt(value, t)),
        ("add_file name", lambda s: s.add_file(g, t, value, PNG, replace=True)),
        ("add_file id", lambda s: s.add_file(g, value, "a.png", PNG)),
        ("add_file kind", lambda s: s.add_file(g, t, "k.png", PNG, kind=value, replace=True)),
        ("add_file media_type", lambda s: s.add_file(g, t, "m.png", PNG, media_type=value, replace=True)),
        ("get_file", lambda s: s.get_file(g, t, value)),
        ("read_file", lambda s: s.read_file(g, t, value)),
        ("read_file id", lambda s: s.read_file(g, value, "a.png")),
        ("list_files", lambda s: s.list_files(value, t)),
        ("delete_file", lambda s: s.delete_file(g, t, value)),
        ("export_tribute", lambda s: s.export_tribute(g, value)),
        ("iter_bundles", lambda s: list(s.iter_bundles(value))),
        ("put_guild", lambda s: s.put_guild(value)),
        ("put_guild setting", lambda s: s.put_guild(g, log_channel_id=value)),
        ("get_guild", lambda s: s.get_guild(value)),
    ]


def valid_id(value: object) -> bool:
    try:
        check_tribute_id(value)
    except InvalidInputError:
        return False
    return True


def valid_name(value: object) -> bool:
    try:
        check_file_name(value)
    except InvalidInputError:
        return False
    return True


@pytest.mark.parametrize("backend", BACKENDS)
def test_hostile_values_through_every_operation(
    request: pytest.FixtureRequest, data_dir: Path, backend: str
) -> None:
    url = url_of(request, backend, data_dir)
    tried = accepted = 0
    with open_store(url) as store:
        store.create_tribute(GUILD, "D1F", name="victim")
        store.add_item(GUILD, "D1F", "Knife")
        for value in [*HOSTILE, *HOSTILE_GUILDS]:
            for label, call in calls(value):
                tried += 1
                try:
                    call(store)
                except (InvalidInputError, NotFoundError, AlreadyExistsError) as error:
                    assert "\n" not in str(error), (label, value)
                    continue
                except Exception as error:  # noqa: BLE001 - any other error is the finding
                    pytest.fail(f"{label} with {value!r}: {type(error).__name__}: {error}")
                accepted += 1
                check_literal(store, label, value)
                if store.has_tribute(GUILD, "D1F") is False:
                    store.create_tribute(GUILD, "D1F", name="victim")
        assert store.check() == []
        if backend in ("sqlite", "composite"):
            import sqlite3

            with sqlite3.connect(data_dir / "thg.db") as db:
                tables = {row[0] for row in db.execute("select name from sqlite_master where type='table'")}
            assert {"tributes", "inventories", "inventory_items", "files", "prompts"} <= tables
    with open_store(url) as store:
        assert store.check() == []
    print(f"\nsecurity/{backend}: {tried} hostile calls, {accepted} stored literally, 0 escapes")


def check_literal(store: TributeStore, label: str, value: Any) -> None:
    """An accepted hostile value was stored as itself (or normalised as documented)."""
    if label == "create_tribute id":
        assert valid_id(value)
        assert store.has_tribute(GUILD, value)
        store.delete_tribute(GUILD, value)
    elif label == "create_tribute name":
        assert store.get_tribute(GUILD, "D1F").name == value
    elif label == "add_item item":
        assert store.get_inventory(GUILD, "D1F").items[-1] == value
        assert any(hit.item == value for hit in store.search_items(value, guild_id=GUILD))
        store.remove_item(GUILD, "D1F", len(store.get_inventory(GUILD, "D1F").items))
    elif label == "set_prompt message":
        assert store.get_prompt(GUILD, "D1F").message == value
    elif label == "add_file name":
        assert valid_name(value)
        assert store.read_file(GUILD, "D1F", value) == PNG
        assert value in [f.name for f in store.list_files(GUILD, "D1F")]
        store.delete_file(GUILD, "D1F", value)
    elif label == "search_items":
        assert all(value.casefold() in hit.item.casefold() for hit in store.search_items(value))
    elif label in ("create_tribute guild", "put_guild"):
        assert isinstance(value, int) and not isinstance(value, bool)


@pytest.mark.parametrize("backend", BACKENDS)
def test_hypothesis_text_is_rejected_or_stored_literally(
    request: pytest.FixtureRequest, data_dir: Path, backend: str
) -> None:
    url = url_of(request, backend, data_dir)
    with open_store(url) as store:
        store.create_tribute(GUILD, "D1F")

        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        @given(
            # Surrogates included: they must be refused, never reach a driver's encoder.
            text=st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
            | st.sampled_from(HOSTILE),
            where=st.sampled_from(["id", "name", "item"]),
        )
        def probe(text: str, where: str) -> None:
            try:
                if where == "id":
                    store.create_tribute(OTHER, text)
                elif where == "name":
                    store.add_file(GUILD, "D1F", text, PNG, replace=True)
                else:
                    store.add_item(GUILD, "D1F", text, force=True)
            except InvalidInputError:
                assert not (where == "id" and valid_id(text)) and not (where == "name" and valid_name(text))
                return
            if where == "id":
                assert store.get_tribute(OTHER, text).tribute_id == check_tribute_id(text)
                store.delete_tribute(OTHER, text)
            elif where == "name":
                assert store.read_file(GUILD, "D1F", text) == PNG
                store.delete_file(GUILD, "D1F", text)
            else:
                assert store.remove_item(GUILD, "D1F", len(store.get_inventory(GUILD, "D1F").items)) == text

        probe()
        assert store.check() == []
        assert store.list_files(GUILD, "D1F") == [] and store.get_inventory(GUILD, "D1F").items == []
        assert [t.tribute_id for t in store.iter_tributes()] == ["D1F"]


# ------------------------------------------------------------------ guild isolation
def fill(store: TributeStore, guild: int, secret: str) -> None:
    for tid in ("D1F", "D2M"):
        store.create_tribute(guild, tid, name=f"{secret} {tid}")
        store.add_item(guild, tid, f"{secret} map")
        store.add_item(guild, tid, f"{secret} knife", equipped=True)
        store.set_prompt(guild, tid, f"{secret} prompt", files=[f"{secret}.png"])
        store.add_file(guild, tid, f"{secret}.png", secret.encode() + PNG)


def leaks(value: object, secret: str) -> bool:
    text = value.model_dump_json() if hasattr(value, "model_dump_json") else repr(value)
    return secret in text


@pytest.mark.parametrize(
    "backend",
    [
        *BACKENDS,
        pytest.param(
            "composite-split", marks=[pytest.mark.backend("composite"), pytest.mark.backend("sqlite")]
        ),
    ],
)
def test_one_guild_never_reads_another(request: pytest.FixtureRequest, tmp_path: Path, backend: str) -> None:
    """Guild A and guild B hold tributes of the same ids; nothing of B shows through A.

    ``composite-split``: A lives in the primary, B only in the fallback.
    """
    data = tmp_path / "data"
    if backend == "composite-split":
        with open_store(f"json:///{data}/fallback") as fallback:
            fill(fallback, OTHER, "SECRET-B")
        url = store_url("composite", data)
        with open_store(url) as store:
            fill(store, GUILD, "public-a")
    else:
        url = url_of(request, backend, data)
        with open_store(url) as store:
            fill(store, GUILD, "public-a")
            fill(store, OTHER, "SECRET-B")
    secret = "SECRET-B"
    with open_store(url) as store:
        theirs = [bundle_digest(b) for b in store.iter_bundles(OTHER)]
        reads: list[object] = [
            store.get_tribute(GUILD, "D1F"),
            store.list_tributes(GUILD),
            list(store.iter_tributes(GUILD)),
            list(store.iter_bundles(GUILD)),
            store.export_tribute(GUILD, "D1F"),
            store.get_inventory(GUILD, "D1F"),
            store.get_prompt(GUILD, "D1F"),
            store.list_files(GUILD, "D1F"),
            store.get_guild(GUILD),
            store.search_items("map", guild_id=GUILD),
            store.search_items("secret", guild_id=GUILD),
            store.search_items(secret, guild_id=GUILD),
            store.search_items("%", guild_id=GUILD),
            store.search_items("' OR '1'='1", guild_id=GUILD),
            [store.read_file(GUILD, "D1F", f.name) for f in store.list_files(GUILD, "D1F")],
        ]
        for number, value in enumerate(reads):
            assert not leaks(value, secret), f"read {number} shows guild {OTHER}'s data: {value}"
        for call in (
            lambda: store.read_file(GUILD, "D1F", f"{secret}.png"),
            lambda: store.get_file(GUILD, "D1F", f"{secret}.png"),
            lambda: store.delete_file(GUILD, "D1F", f"{secret}.png"),
        ):
            with pytest.raises(NotFoundError):
                call()
        # Every hit of an all-guild search carries the guild it came from.
        for hit in store.search_items("map"):
            assert (hit.guild_id == OTHER) == (secret in hit.item), hit
        # Writes to A never touch B.
        store.add_item(GUILD, "D1F", "more")
        store.remove_item(GUILD, "D1F", 1)
        store.clear_inventory(GUILD, "D2M")
        store.delete_prompt(GUILD, "D1F")
        store.delete_file(GUILD, "D1F", "public-a.png")
        store.update_tribute(GUILD, "D2M", name="renamed")
        store.delete_tribute(GUILD, "D2M")
        assert [bundle_digest(b) for b in store.iter_bundles(OTHER)] == theirs
        assert [t.tribute_id for t in store.list_tributes(OTHER)] == ["D1F", "D2M"]
        assert store.check() == []


@pytest.mark.backend("json")
def test_legacy_guilds_are_isolated(tmp_path: Path) -> None:
    with resources.as_file(SAMPLE) as sample:
        legacy = Path(shutil.copytree(sample, tmp_path / "legacy"))
    with open_store(f"thgbot:///{legacy}") as store:
        guilds = [g.guild_id for g in store.list_guilds()]
        assert len(guilds) > 1
        everything = store.search_items("e")
        for guild in guilds:
            own = {(t.guild_id, t.tribute_id) for t in store.iter_tributes(guild)}
            assert all(key[0] == guild for key in own)
            hits = store.search_items("e", guild_id=guild)
            assert hits == [hit for hit in everything if hit.guild_id == guild]
            for bundle in store.iter_bundles(guild):
                assert bundle.tribute.guild_id == guild
                assert all(f.guild_id == guild for f in bundle.files)
