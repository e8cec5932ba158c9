"""examples/audit_log.py: installed as its docstring says, it lets gamemakers trace a disputed item.

The plugin is installed the way a user installs it: copied into their bot's
package (``mybot``), whose distribution declares it in the ``tributestore``
entry-point group.  The test writes what ``pip install`` would (the package and
its ``.dist-info``) into a temporary directory on ``sys.path``, so the registry
finds the plugin only through that entry point.
"""

from __future__ import annotations

import ast
import json
import shutil
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tributestore import CapacityError, ConfigError, TributeStore, open_store
from tributestore.plugins import ENTRY_POINT_GROUP, registry, reset_registry

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "audit_log.py"
GUILD = 1395951775160340551


@pytest.fixture
def audit_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The example, installed as ``mybot.audit_log`` and declared as the entry point ``audit_log``."""
    site = tmp_path / "site"
    package = site / "mybot"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""A THGBot-style bot."""\n')
    shutil.copy(EXAMPLE, package / "audit_log.py")
    dist_info = site / "mybot-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: mybot\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\naudit_log = mybot.audit_log\n")
    monkeypatch.syspath_prepend(str(site))
    reset_registry()
    try:
        found = registry()
        assert found.load_errors == []
        yield sys.modules["mybot.audit_log"]
    finally:
        reset_registry()
        for name in ("mybot.audit_log", "mybot"):
            sys.modules.pop(name, None)


@pytest.fixture
def log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, audit_log: ModuleType) -> Path:
    path = tmp_path / "audit.jsonl"
    monkeypatch.setenv(audit_log.LOG_ENV, str(path))
    return path


def backend_urls(tmp_path: Path) -> dict[str, str]:
    return {
        "memory": f"memory://{tmp_path.name}",
        "sqlite": f"sqlite:///{tmp_path}/thg.db",
        "json": f"json:///{tmp_path}/tributes",
    }


@pytest.fixture(
    params=[
        "memory",
        pytest.param("sqlite", marks=pytest.mark.backend("sqlite")),
        pytest.param("json", marks=pytest.mark.backend("json")),
    ]
)
def store(request: pytest.FixtureRequest, tmp_path: Path, log: Path) -> Iterator[TributeStore]:
    with open_store(backend_urls(tmp_path)[request.param]) as opened:
        yield opened


def entries(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


def moves(found: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    return [(e["tribute_id"], e["action"], e["item"], e["slot"]) for e in found]


def test_a_disputed_item_can_be_traced(store: TributeStore, log: Path, audit_log: ModuleType) -> None:
    store.create_tribute(GUILD, "D1F", name="Katniss")
    store.create_tribute(GUILD, "D2M", name="Cato")
    store.add_item(GUILD, "D1F", "Bow")
    store.add_item(GUILD, "D1F", "Hunting knife")
    store.equip_item(GUILD, "D1F", 2)
    with store.transaction():  # the gamemakers hand the knife over at the feast
        store.remove_item(GUILD, "D1F", 1, slot="equipped")
        store.add_item(GUILD, "D2M", "Hunting knife")
    store.add_item(GUILD, "D2M", "Spear")

    history = audit_log.trace(log, "KNIFE", GUILD)
    assert moves(history) == [
        ("D1F", "added", "Hunting knife", "items"),
        ("D1F", "equipped", "Hunting knife", "equipped"),
        ("D1F", "removed", "Hunting knife", "equipped"),
        ("D2M", "added", "Hunting knife", "items"),
    ]
    assert [e["tribute"] for e in history] == ["Katniss", "Katniss", "Katniss", "Cato"]
    assert {e["store"] for e in history} == {store.url}
    times = [datetime.fromisoformat(e["at"]) for e in history]
    assert times == sorted(times) and all(t.utcoffset() is not None for t in times)
    assert times[2] == times[3]  # one transaction, one moment
    assert audit_log.trace(log, "knife", guild_id=1) == []
    assert moves(audit_log.trace(log, "spear")) == [("D2M", "added", "Spear", "items")]


def test_only_committed_inventory_changes_are_logged(store: TributeStore, log: Path) -> None:
    store.create_tribute(GUILD, "D1F", name="Rue")
    store.set_capacity(GUILD, "D1F", capacity=1)
    store.add_item(GUILD, "D1F", "Leaf")
    with pytest.raises(CapacityError):
        store.add_item(GUILD, "D1F", "Slingshot")
    with pytest.raises(RuntimeError), store.transaction():
        store.add_item(GUILD, "D1F", "Berries", force=True)
        raise RuntimeError("rolled back")
    store.update_tribute(GUILD, "D1F", name="Rue of District 11")  # no inventory change
    store.set_prompt(GUILD, "D1F", "Hide in the trees")
    assert moves(entries(log)) == [("D1F", "added", "Leaf", "items")]


def test_unequip_clear_delete_and_import_are_logged(store: TributeStore, log: Path) -> None:
    store.create_tribute(GUILD, "D1F")
    store.add_item(GUILD, "D1F", "Rope", equipped=True)
    store.add_item(GUILD, "D1F", "Rope")
    store.unequip_item(GUILD, "D1F", 1)
    store.add_item(GUILD, "D1F", "Water")
    bundle = store.export_tribute(GUILD, "D1F")
    store.clear_inventory(GUILD, "D1F")
    store.delete_tribute(GUILD, "D1F")
    store.import_tribute(bundle, {})
    assert moves(entries(log)) == [
        ("D1F", "added", "Rope", "equipped"),
        ("D1F", "added", "Rope", "items"),
        ("D1F", "unequipped", "Rope", "items"),
        ("D1F", "added", "Water", "items"),
        ("D1F", "removed", "Rope", "items"),
        ("D1F", "removed", "Rope", "items"),
        ("D1F", "removed", "Water", "items"),
        ("D1F", "added", "Rope", "items"),
        ("D1F", "added", "Rope", "items"),
        ("D1F", "added", "Water", "items"),
    ]


def test_nothing_is_written_while_the_variable_is_unset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, audit_log: ModuleType
) -> None:
    monkeypatch.delenv(audit_log.LOG_ENV, raising=False)
    with open_store(f"memory://{tmp_path.name}") as store:
        store.create_tribute(GUILD, "D1F")
        store.add_item(GUILD, "D1F", "Knife")
    assert list(tmp_path.iterdir()) == [tmp_path / "site"]


def test_a_log_that_cannot_be_written_refuses_the_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, audit_log: ModuleType
) -> None:
    monkeypatch.setenv(audit_log.LOG_ENV, str(tmp_path / "no such directory" / "audit.jsonl"))
    with pytest.raises(ConfigError, match=audit_log.LOG_ENV):
        open_store(f"memory://{tmp_path.name}")


def test_the_command_line_prints_the_history(
    store: TributeStore, log: Path, audit_log: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    store.create_tribute(GUILD, "D1F", name="Katniss")
    store.add_item(GUILD, "D1F", "Knife")
    store.equip_item(GUILD, "D1F", 1)
    assert audit_log.main([str(log), "knife", str(GUILD)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 2
    assert printed[0].endswith(f"guild {GUILD}  D1F (Katniss): added 'Knife' [items]")
    assert printed[1].endswith(f"guild {GUILD}  D1F (Katniss): equipped 'Knife' [equipped]")


def test_the_example_uses_only_the_hook_and_public_names() -> None:
    tree = ast.parse(EXAMPLE.read_text(encoding="utf-8"))
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module is not None
    }
    assert {m for m in imported if m.startswith("tributestore")} == {"tributestore", "tributestore.hookspecs"}
    attributes = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    assert "backend" not in attributes and not any(a.startswith("_") for a in attributes)
