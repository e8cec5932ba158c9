"""Plugins: discovery through the ``tributestore`` entry-point group, attribution, and the store hooks.

The third-party test distribution in tests/thirdparty_plugin (installed by tox's
``commands_pre``) declares two entry points: ``memory``, a backend written
against the public contract alone, and ``memory_hooks``, which implements the
store hooks.  Both are found only through their entry points.
"""

from __future__ import annotations

import ast
import importlib.metadata
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import click
import pytest
from helpers import run_cli

import tributestore.plugins as plugins
from tributestore import (
    CapacityError,
    Guild,
    NotFoundError,
    StorageError,
    TributeStore,
    open_store,
)
from tributestore.backend import Backend, Tombstones
from tributestore.cli import main as cli_main
from tributestore.errors import UnknownBackendError
from tributestore.plugins import DEFAULT_PLUGINS, ENTRY_POINT_GROUP, registry, reset_registry
from tributestore.testing import ConformanceSuite
from tributestore.urls import parse_store_url
from tributestore_memory import MemoryBackend
from tributestore_memory.hooks import MAX_ITEMS_ENV, recording

GUILD = 111111111111111111
PLUGIN_SOURCE = Path(__file__).resolve().parent / "thirdparty_plugin" / "src" / "tributestore_memory"


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"memory://{tmp_path.name}"


@pytest.fixture
def fresh_registry() -> Iterator[None]:
    """A registry built for this test, and forgotten after it (whatever the test changed)."""
    reset_registry()
    yield
    reset_registry()


def declare_entry_point(where: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    """What installing a distribution that declares ``name = value`` in the group does: a dist-info."""
    dist_info = where / f"{name}_plugin-0.0.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}-plugin\nVersion: 0.0.0\n")
    (dist_info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{name} = {value}\n")
    monkeypatch.syspath_prepend(str(where))


# ------------------------------------------------------------------ discovery
def test_builtins_are_declared_as_entry_points_like_any_plugin() -> None:
    declared = {ep.name: ep.value for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    for name, module in DEFAULT_PLUGINS:
        assert declared.get(name) == module


def test_the_test_plugins_are_found_only_through_their_entry_points() -> None:
    declared = {ep.name: ep.value for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    assert declared["memory"] == "tributestore_memory"
    assert declared["memory_hooks"] == "tributestore_memory.hooks"
    assert not {"memory", "memory_hooks"} & {name for name, _ in DEFAULT_PLUGINS}


def test_registry_lists_builtin_and_thirdparty_backends() -> None:
    found = registry()
    assert {"json", "sqlite", "composite", "thgbot", "memory"} <= set(found.by_name)
    assert found.by_scheme["memory"] is found.by_name["memory"]
    assert found.load_errors == []


def test_backends_are_attributed_to_their_plugins() -> None:
    found = registry()
    for name in ("json", "sqlite", "composite", "thgbot"):
        assert found.plugin_of[name] == name
    assert found.plugin_of["memory"] == "memory"  # the entry point's name, as pluggy knows it


def test_unknown_backend_lists_installed_ones() -> None:
    with pytest.raises(UnknownBackendError) as raised:
        open_store("mongodb://localhost/thg")
    message = str(raised.value)
    assert "'mongodb'" in message and "json" in message and "sqlite" in message and "memory" in message


def test_a_scheme_claimed_by_two_plugins_names_both(
    monkeypatch: pytest.MonkeyPatch, fresh_registry: None
) -> None:
    """The plugin registering second loses the scheme and says so, naming both; the others work."""
    impostor = ("impostor", "tributestore_memory.impostor")
    monkeypatch.setattr(plugins, "DEFAULT_PLUGINS", (*DEFAULT_PLUGINS, impostor))
    found = registry()
    (message,) = [problem for problem in found.load_errors if "claimed" in problem]
    assert "'memory'" in message
    assert "(plugin impostor)" in message and "(plugin memory)" in message
    assert "'impostor-memory'" in message
    assert found.by_scheme["memory"].name == "impostor-memory" and "json" in found.by_name


def test_a_plugin_that_fails_to_load_does_not_break_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_registry: None
) -> None:
    declare_entry_point(tmp_path, monkeypatch, "broken", "tributestore_no_such_module_here")
    found = registry()
    assert len(found.load_errors) == 1
    assert "plugin broken (tributestore_no_such_module_here)" in found.load_errors[0]
    assert {"json", "memory"} <= set(found.by_name)


def test_the_test_plugin_uses_no_private_name_of_tributestore() -> None:
    """No ``_``-prefixed name anywhere in the plugin (dunders aside): so none of tributestore's."""
    names: list[str] = []
    for path in sorted(PLUGIN_SOURCE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute):
                names.append(node.attr)
            elif isinstance(node, ast.Name):
                names.append(node.id)
            elif isinstance(node, ast.alias):
                names.extend([node.name, *node.name.split(".")])
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.extend(node.module.split("."))
            elif isinstance(node, ast.FunctionDef | ast.ClassDef):
                names.append(node.name)
            elif isinstance(node, ast.arg):
                names.append(node.arg)
    assert len(names) > 200  # the walk saw the code
    private = sorted(
        {n for n in names if n.startswith("_") and not (n.startswith("__") and n.endswith("__"))}
    )
    assert private == []


# ---------------------------------------------------------------- the registry
def test_openers_return_backends_and_the_registry_wraps_them(url: str) -> None:
    backend = registry().open_backend(parse_store_url(url))
    try:
        assert isinstance(backend, MemoryBackend)
        assert isinstance(backend, Backend) and isinstance(backend, Tombstones)
        assert backend.created is not None
    finally:
        backend.close()
    with registry().open(parse_store_url(url), "read") as store:
        assert isinstance(store, TributeStore) and isinstance(store.backend, MemoryBackend)
        assert store.created is None and store.url == url
        assert store.hooks is registry().hooks


def test_hooks_live_as_long_as_the_registry(url: str, fresh_registry: None) -> None:
    first = registry()
    assert first.hooks is not None
    assert registry() is first and registry().hooks is first.hooks
    assert first.hooks.wants_changes  # memory_hooks listens
    with open_store(url) as store:
        assert store.hooks is first.hooks
    reset_registry()
    second = registry()
    assert second is not first and second.hooks is not first.hooks


# ------------------------------------------------------------ store_opened
def test_store_opened_is_called_once_per_open(url: str) -> None:
    with recording() as recorder:
        with open_store(url) as first, open_store(url, mode="read") as second:
            pass
        with registry().open(parse_store_url(url)) as third:
            pass
        registry().open_backend(parse_store_url(url)).close()  # a bare backend is no store: no call
    assert [event.store for event in recorder.of("store_opened")] == [first, second, third]


def test_a_failing_store_opened_hook_refuses_the_open_and_closes_the_store(url: str) -> None:
    with recording(fail_opened="not today") as recorder, pytest.raises(RuntimeError, match="not today"):
        open_store(url)
    (event,) = recorder.of("store_opened")
    assert isinstance(event.store.backend, MemoryBackend) and event.store.backend.closed


# ----------------------------------------------------- transaction_committed
def test_transaction_committed_reports_each_outermost_transaction(url: str) -> None:
    with open_store(url) as store, recording() as recorder:
        store.create_tribute(GUILD, "D1F", name="Katniss")
        store.add_item(GUILD, "D1F", "Knife")
        with store.transaction():
            store.equip_item(GUILD, "D1F", 1)
            with store.transaction():
                store.add_item(GUILD, "D1F", "Rope")
            store.create_tribute(GUILD, "D2M")
        store.delete_tribute(GUILD, "D2M")
        store.put_guild(GUILD, log_channel_id=5)
        d1f = store.export_tribute(GUILD, "D1F")
    events = recorder.of("transaction_committed", store)
    changes = [event.changes for event in events]
    assert all(c is not None for c in changes)
    reported = [[(t.kind, t.guild_id, t.tribute_id) for t in c.tributes] for c in changes if c]
    assert reported == [
        [("created", GUILD, "D1F")],
        [("updated", GUILD, "D1F")],
        [("updated", GUILD, "D1F"), ("created", GUILD, "D2M")],
        [("deleted", GUILD, "D2M")],
        [],
    ]
    created, added, grouped, deleted, guild = (c for c in changes if c)
    assert created.tributes[0].before is None
    assert created.tributes[0].after is not None and created.tributes[0].after.tribute.name == "Katniss"
    assert created.guilds == {GUILD: Guild(guild_id=GUILD)}
    equip = grouped.tributes[0]
    assert equip.before is not None and equip.after is not None
    assert (equip.before.inventory.items, equip.before.inventory.equipped) == (["Knife"], [])
    assert (equip.after.inventory.items, equip.after.inventory.equipped) == (["Rope"], ["Knife"])
    assert equip.before == added.tributes[0].after and equip.after == d1f
    assert grouped.tributes[1].before is None and not grouped.guilds  # the guild existed
    assert deleted.tributes[0].before is not None and deleted.tributes[0].after is None
    assert guild.guilds == {GUILD: Guild(guild_id=GUILD, log_channel_id=5)}


def test_transaction_committed_is_not_called_for_failures_or_reads(url: str) -> None:
    with open_store(url) as store:
        store.create_tribute(GUILD, "D1F")
        store.set_capacity(GUILD, "D1F", capacity=1)
        store.add_item(GUILD, "D1F", "Knife")
        bundle = store.export_tribute(GUILD, "D1F")
        with recording() as recorder:
            with pytest.raises(RuntimeError), store.transaction():
                store.add_item(GUILD, "D1F", "lost", force=True)
                store.create_tribute(GUILD, "D2F")
                raise RuntimeError("rolled back")
            with pytest.raises(CapacityError):
                store.add_item(GUILD, "D1F", "too many")
            with pytest.raises(NotFoundError):
                store.remove_item(GUILD, "D1F", 9)
            with store.transaction():
                store.get_inventory(GUILD, "D1F")
                store.search_items("knife")
            assert store.import_tribute(bundle, {}, on_conflict="skip") is False
        assert recorder.of("transaction_committed") == []
        assert store.get_inventory(GUILD, "D1F").items == ["Knife"] and not store.has_tribute(GUILD, "D2F")


def test_transaction_committed_is_not_called_when_nothing_changed(url: str) -> None:
    with open_store(url) as store:
        store.create_tribute(GUILD, "D1F")
        with recording() as recorder:
            store.clear_inventory(GUILD, "D1F")  # already empty
            store.set_capacity(GUILD, "D1F", capacity=10)  # already 10
            with store.transaction():
                store.create_tribute(GUILD, "D2F")
                store.delete_tribute(GUILD, "D2F")
        assert recorder.of("transaction_committed") == []


def test_a_failing_committed_hook_keeps_the_write_and_warns(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with open_store(url) as store:
        store.create_tribute(GUILD, "D1F")
        with caplog.at_level(logging.WARNING, "tributestore"), recording(fail_committed="audit disk full"):
            inventory = store.add_item(GUILD, "D1F", "Knife")
        assert inventory.items == ["Knife"]
        assert [w for w in store.warnings if "audit disk full" in w] == [
            "a transaction_committed hook failed after the commit: "
            "plugin memory_hooks: RuntimeError: audit disk full"
        ]
        assert "audit disk full" in caplog.text
        with open_store(url, mode="read") as again:
            assert again.get_inventory(GUILD, "D1F").items == ["Knife"]
            assert again.warnings == []


# ------------------------------------------------------------------- check
def test_check_includes_the_plugins_problems(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MAX_ITEMS_ENV, raising=False)
    with open_store(url) as store:
        store.create_tribute(GUILD, "D1F")
        for item in ("Knife", "Rope", "Bow"):
            store.add_item(GUILD, "D1F", item)
        store.create_tribute(GUILD, "D2F")
        assert store.check() == []
        monkeypatch.setenv(MAX_ITEMS_ENV, "2")
        assert store.check() == [
            f"tribute D1F in guild {GUILD} holds 3 items, more than the house limit of 2 ({MAX_ITEMS_ENV})"
        ]
        store.remove_item(GUILD, "D1F", 1)
        assert store.check() == []


def test_a_plugin_whose_check_breaks_is_one_problem_and_hides_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failing tributestore_check made 'check' an internal error (exit 70) hiding the store's own
    problems; one returning a string was one problem per character."""
    url = f"sqlite:///{tmp_path}/thg.db"
    with open_store(url) as store:
        store.create_tribute(GUILD, "D1F")
        store.add_file(GUILD, "D1F", "a.png", b"png bytes")
    with sqlite3.connect(tmp_path / "thg.db") as conn:
        conn.execute("UPDATE files SET sha256 = ? WHERE name = 'a.png'", ("0" * 64,))  # damage
    monkeypatch.setenv(MAX_ITEMS_ENV, "raise")
    result = run_cli("check", url)
    assert result.returncode == 1, result.stdout + result.stderr
    assert (
        "plugin memory_hooks: its check failed: RuntimeError: the house rules cannot be read" in result.stdout
    )
    assert "a.png" in result.stdout  # the store's own problem, still reported
    monkeypatch.setenv(MAX_ITEMS_ENV, "text")
    with open_store(url, mode="read") as store:
        found = store.check()
    assert "plugin memory_hooks: its check returned str, not a list of problems" in found
    assert "n" not in found


# ---------------------------------------------------------------- commands
def test_a_plugin_adds_a_command_to_the_cli(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with open_store(url) as store:
        store.create_tribute(GUILD, "D1F")
        for item in ("Knife", "Rope", "Bow"):
            store.add_item(GUILD, "D1F", item)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        cli_main(["house-rules", url, "--max-items", "2"])
    assert exited.value.code == 1
    assert (
        capsys.readouterr().out
        == f"tribute D1F in guild {GUILD} holds 3 items, more than the house limit of 2\n"
    )
    with pytest.raises(SystemExit) as exited:
        cli_main(["house-rules", url, "--max-items", "3"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == "every tribute holds at most 3 items\n"


# ------------------------------------------------------------- conformance
class TestThirdPartyMemoryBackend(ConformanceSuite):
    """The test package in tests/thirdparty_plugin, found only through its entry point."""

    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"memory://{tmp_path.name}"


def composite_url(primary: str, fallback: str, extra: str = "") -> str:
    return f"composite:?primary={quote(primary, safe='')}&fallback={quote(fallback, safe='')}{extra}"


@pytest.mark.backend("composite")
class TestCompositeOverMemoryBackends(ConformanceSuite):
    """A third-party backend composes: it serves as a composite's primary (it offers tombstones)."""

    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        fallback = f"memory://{tmp_path.name}-fallback"
        open_store(fallback).close()  # the fallback must exist: it is opened for reading
        return composite_url(f"memory://{tmp_path.name}-primary", fallback)


@pytest.mark.backend("composite")
class TestCompositeDualWriteOverMemoryBackends(ConformanceSuite):
    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        primary, fallback = f"memory://{tmp_path.name}-primary", f"memory://{tmp_path.name}-fallback"
        return composite_url(primary, fallback, "&dual_write=true")


@pytest.mark.parametrize("scheme", ["memory", "sqlite", "json"])
def test_a_caught_nested_failure_is_not_reported(scheme: str, tmp_path: Path) -> None:
    """The backend undoes a nested block that failed (a savepoint): the hook must not hear of it."""
    target = {"memory": f"memory://{tmp_path.name}", "sqlite": f"sqlite:///{tmp_path}/s.db"}
    with open_store(target.get(scheme, f"json:///{tmp_path}/j")) as store:
        store.create_tribute(GUILD, "D1F")
        store.create_tribute(GUILD, "D2F")
        with recording() as recorder, store.transaction():
            store.add_item(GUILD, "D1F", "Knife")
            with pytest.raises(RuntimeError), store.transaction():
                store.add_item(GUILD, "D2F", "ghost")
                raise RuntimeError("inner block undone")
        assert store.get_inventory(GUILD, "D2F").items == []
        [event] = recorder.of("transaction_committed")
        assert event.changes is not None
        reported = [
            (c.tribute_id, c.after.inventory.items if c.after else None) for c in event.changes.tributes
        ]
        assert reported == [("D1F", ["Knife"])]


def test_a_plugin_command_cannot_replace_a_built_in_one_nor_break_the_cli(
    fresh_registry: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tributestore import cli as cli_module

    def clashing(group: click.Group) -> None:
        @group.command("backends")
        def fake() -> None:
            print("not the built-in")

    def broken(group: click.Group) -> None:
        raise RuntimeError("half-registered")

    hooks = registry().hooks
    assert hooks is not None
    for register, warning in [
        (clashing, "plugin command 'backends' clashes with a built-in one; ignored"),
        (broken, "plugin commands not loaded: half-registered"),
    ]:
        monkeypatch.setattr(hooks, "register_commands", register)
        monkeypatch.setattr(cli_module.cli, "_plugin_commands_added", False, raising=False)
        with pytest.raises(SystemExit) as exited:
            cli_module.main(["backends"])
        assert exited.value.code == 0
        out = capsys.readouterr()
        assert "not the built-in" not in out.out and "memory" in out.out
        assert warning in out.err


# ------------------------------------------------------------ broken third-party plugins
def _plugin_module(where: Path, name: str, body: str) -> None:
    (where / f"{name}.py").write_text("from tributestore import hookimpl\n\n" + body)


@pytest.mark.parametrize("returned", ["object()", "None", "{'a': 1}"])
def test_an_opener_returning_no_backend_is_named_as_the_plugins_bug(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_registry: None, returned: str
) -> None:
    """It was an 'internal error ... (in tributestore.plugins.open_backend)': a bug of ours to
    report, by the message; it names the plugin now, one line, exit 5."""
    _plugin_module(
        tmp_path,
        "probe_garbage",
        "from tributestore import BackendSpec\n\n"
        f"def opener(url):\n    return {returned}\n\n"
        "@hookimpl\ndef tributestore_register_backends(register):\n"
        "    register(BackendSpec(name='garbage', schemes=('garbage',), opener=opener))\n",
    )
    declare_entry_point(tmp_path / "ep", monkeypatch, "garbage_plugin", "probe_garbage")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(StorageError) as raised:
        open_store("garbage:///x")
    message = str(raised.value)
    assert "backend 'garbage' (plugin garbage_plugin): its opener returned" in message
    assert "not a tributestore Backend (a bug of that plugin" in message


def test_what_a_backend_returns_wrongly_is_named_as_its_plugins_bug(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_registry: None
) -> None:
    """A backend whose counts() or load() returns a dict made the CLI say 'internal error ... (in
    tributestore.cli.stats)': a bug of ours, by the message."""
    _plugin_module(
        tmp_path,
        "probe_wrong",
        "from tributestore import BackendSpec\nfrom tributestore_memory import open_memory\n\n"
        "def opener(url):\n    backend = open_memory(url)\n"
        "    backend.counts = lambda: {'tributes': 1}\n"
        "    backend.load = lambda guild_id, tribute_id: {'tribute': tribute_id}\n"
        "    return backend\n\n"
        "@hookimpl\ndef tributestore_register_backends(register):\n"
        "    register(BackendSpec(name='wrong', schemes=('wrong',), opener=opener))\n",
    )
    declare_entry_point(tmp_path / "ep", monkeypatch, "wrong_plugin", "probe_wrong")
    monkeypatch.syspath_prepend(str(tmp_path))
    with open_store(f"wrong://{tmp_path.name}") as store:
        with pytest.raises(StorageError, match=r"its backend's counts\(\) returned dict, not a Counts"):
            store.counts()
        with pytest.raises(StorageError, match=r"its backend's load\(\) returned dict, not a TributeBundle"):
            store.get_inventory(GUILD, "D1F")


def test_a_failing_committed_hook_does_not_keep_the_change_from_other_plugins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_registry: None
) -> None:
    """pluggy stops at the first hook that raises: an audit log called after it missed changes."""
    _plugin_module(
        tmp_path,
        "probe_listener",
        "HEARD = []\n\n@hookimpl\ndef tributestore_transaction_committed(store, changes):\n"
        "    HEARD.extend(change.tribute_id for change in changes.tributes)\n",
    )
    _plugin_module(
        tmp_path,
        "probe_failing",
        "@hookimpl\ndef tributestore_transaction_committed(store, changes):\n    raise KeyError('id')\n",
    )
    declare_entry_point(tmp_path / "a", monkeypatch, "a_listener", "probe_listener")
    declare_entry_point(tmp_path / "b", monkeypatch, "b_failing", "probe_failing")
    monkeypatch.syspath_prepend(str(tmp_path))
    import probe_listener  # type: ignore[import-not-found]

    with open_store(f"sqlite:///{tmp_path}/thg.db") as store:
        store.create_tribute(GUILD, "D1F")
        store.add_item(GUILD, "D1F", "Knife")
        assert probe_listener.HEARD == ["D1F", "D1F"]
        failures = [w for w in store.warnings if "hook failed" in w]
        assert (
            failures
            == ["a transaction_committed hook failed after the commit: plugin b_failing: KeyError: 'id'"] * 2
        )


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (
            "@hookimpl\ndef tributestore_register_backends(register):\n"
            "    raise RuntimeError('cannot register')\n",
            "plugin probe_broken: registering its backends failed: RuntimeError: cannot register",
        ),
        ("@hookimpl\ndef tributestore_store_openned(store):\n    pass\n", "plugin probe_broken: not loaded"),
    ],
)
def test_a_broken_plugin_costs_its_own_backends_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_registry: None, body: str, named: str
) -> None:
    module = f"probe_broken_{abs(hash(body))}"  # one module per case: imports are cached
    _plugin_module(tmp_path, module, body)
    declare_entry_point(tmp_path / "dist", monkeypatch, "probe_broken", module)
    monkeypatch.syspath_prepend(str(tmp_path))
    found = registry()
    assert [problem for problem in found.load_errors if problem.startswith(named)], found.load_errors
    with open_store(f"sqlite:///{tmp_path}/thg.db") as store:  # the built-in backends work
        store.create_tribute(GUILD, "D1F")
