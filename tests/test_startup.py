"""Start-up stays cheap: what a process imports, checked structurally (never by the clock).

Bots restart often and every CLI call starts Python (issue 13, goal 5; timed by
``python -m benchmarks.startup``).  These tests run the process a user or a
bot would, in a child under ``python -X importtime``, and fail when it imports
something it does not need:

- ``import tributestore`` loads the exceptions only (every other public name on first use);
- ``tributestore --help`` loads click and the plugin modules, never rich, pydantic,
  SQLAlchemy nor a backend's implementation;
- a bot's ``open_store()`` on an SQLite file and its first read load that backend
  only, never rich, click, nor the other backends.

"Only the built-in plugins" is what a bot's installation has: the child then
sees only the entry points of tributestore itself (this test environment also
installs the third-party test plugin, whose modules import what they like).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import tributestore

#: Run before the code under test: the child sees only tributestore's own entry points.
BUILTIN_PLUGINS_ONLY = """
import importlib.metadata as _metadata
_entry_points = _metadata.entry_points
def _builtin_only(**params):
    found = _entry_points(**params)
    if params.get("group") != "tributestore":
        return found
    return _metadata.EntryPoints(ep for ep in found if ep.value.startswith("tributestore."))
_metadata.entry_points = _builtin_only
"""

CLI = "import sys; from tributestore.cli import main; main(sys.argv[1:])"

HEAVY = ("rich", "pydantic", "sqlalchemy", "click", "pluggy", "platformdirs", "importlib.metadata")
BACKEND_MODULES = (
    "tributestore.backends.sqlite_backend.store",
    "tributestore.backends.json_backend.store",
    "tributestore.backends.composite_backend.store",
    "tributestore.backends.thgbot_backend.store",
    "tributestore.backends.thgbot_backend.reader",
)


#: Run first in the child: at exit, write the names of every module it imported to a file.
RECORD_MODULES = """
import atexit as _atexit, sys as _sys
_atexit.register(lambda: open({out!r}, "w").write("\\n".join(sorted(_sys.modules))))
"""


def imported(
    code: str, *args: str, tmp_path: Path, builtin_only: bool = False, cwd: Path | None = None
) -> set[str]:
    """The modules a fresh ``python -c code args`` has imported when it exits; it must succeed.

    ``sys.modules`` at exit, not ``-X importtime``: that one misses modules loaded
    by ``importlib.import_module`` (plugins, backends).
    """
    out = tmp_path / "modules.txt"
    prefix = RECORD_MODULES.format(out=str(out)) + (BUILTIN_PLUGINS_ONLY if builtin_only else "")
    result = subprocess.run(
        [sys.executable, "-c", prefix + code, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    names = set(out.read_text().split())
    assert "tributestore" in names, names
    return names


def loaded(names: set[str], packages: tuple[str, ...]) -> list[str]:
    """Which of ``packages`` (or their submodules) are among ``names``."""
    return sorted(p for p in packages if any(n == p or n.startswith(p + ".") for n in names))


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("startup") / "small.db"
    url = f"sqlite:///{path}"
    with tributestore.open_store(url) as store:
        store.create_tribute(1, "D1F", name="Katniss")
        store.add_item(1, "D1F", "bow")
    return url


# ------------------------------------------------------------------ the package
def test_import_tributestore_loads_only_the_exceptions(tmp_path: Path) -> None:
    names = imported("import tributestore", tmp_path=tmp_path)
    assert loaded(names, HEAVY) == []
    assert {n for n in names if n.startswith("tributestore")} == {"tributestore", "tributestore.errors"}


def test_every_public_name_is_the_object_of_its_module() -> None:
    from tributestore import config, errors, hookspecs, models, store, urls

    modules = (config, errors, hookspecs, models, store, urls)
    for name in tributestore.__all__:
        value = getattr(tributestore, name)
        if name == "__version__":
            assert value == "0.1.0"
            continue
        homes = [module for module in modules if getattr(module, name, None) is value]
        assert homes, f"tributestore.{name} is not the object its module defines"
        assert name in dir(tributestore)
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        _ = tributestore.no_such_name  # type: ignore[attr-defined]


def test_star_import_and_lazy_names_in_a_fresh_process(tmp_path: Path) -> None:
    code = (
        "from tributestore import *\n"
        "import tributestore, tributestore.models as m, tributestore.store as s\n"
        "assert Tribute is m.Tribute and TributeStore is s.TributeStore\n"
        "assert tributestore.open_store is open_store and callable(hookimpl)\n"
    )
    imported(code, tmp_path=tmp_path)


def test_submodules_are_attributes_of_the_package_after_a_plain_import(tmp_path: Path) -> None:
    code = (
        "import tributestore\n"
        "assert tributestore.models.Tribute.__name__ == 'Tribute'\n"
        "assert tributestore.store.TributeStore.__name__ == 'TributeStore'\n"
        "assert tributestore.backend.Backend.__name__ == 'Backend'\n"
        "assert tributestore.copier.copy_store.__name__ == 'copy_store'\n"
    )
    imported(code, tmp_path=tmp_path)


def test_hookspecs_do_not_need_the_models(tmp_path: Path) -> None:
    names = imported("import tributestore.hookspecs, tributestore.plugins", tmp_path=tmp_path)
    assert loaded(names, ("pydantic", "tributestore.models", "importlib.metadata", "rich", "click")) == []


# ------------------------------------------------------------------ the command line
def test_help_loads_click_and_the_plugin_modules_only(tmp_path: Path) -> None:
    names = imported(CLI, "--help", builtin_only=True, tmp_path=tmp_path)
    assert loaded(names, ("rich", "pydantic", "sqlalchemy", "platformdirs")) == []
    assert loaded(names, BACKEND_MODULES) == []
    assert "tributestore.backends.thgbot_backend.plugin" in names  # its command is listed


def test_help_with_a_third_party_plugin_never_loads_rich_nor_sqlalchemy(tmp_path: Path) -> None:
    names = imported(CLI, "--help", tmp_path=tmp_path)
    assert loaded(names, ("rich", "sqlalchemy")) == []
    assert loaded(names, BACKEND_MODULES) == []


def test_help_lists_plugin_commands() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CLI, "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    for command in ("copy", "backends", "sample-legacy", "house-rules"):
        assert f"  {command} " in result.stdout
    assert result.stderr == ""


def test_a_built_in_command_s_help_loads_no_plugin(tmp_path: Path) -> None:
    names = imported(CLI, "copy", "--help", tmp_path=tmp_path)
    assert loaded(names, ("pluggy", "importlib.metadata", "rich", "pydantic", "sqlalchemy")) == []


def test_config_resolves_without_a_database_driver(tmp_path: Path) -> None:
    names = imported(CLI, "config", "sqlite:///thg.db", builtin_only=True, cwd=tmp_path, tmp_path=tmp_path)
    assert loaded(names, ("sqlalchemy", "pydantic", *BACKEND_MODULES)) == []
    assert not (tmp_path / "thg.db").exists()


# ------------------------------------------------------------------ a bot's first read
def test_open_and_first_reads_need_no_sqlalchemy(sqlite_store: str, tmp_path: Path) -> None:
    """An up-to-date SQLite file: the light reader answers a bot's first reads (sqlite3 alone)."""
    code = (
        "import tributestore\n"
        f"with tributestore.open_store({sqlite_store!r}) as store:\n"
        "    assert store.get_tribute(1, 'D1F').name == 'Katniss'\n"
        "    assert store.get_inventory(1, 'D1F').items == ['bow']\n"
        "    assert store.export_tribute(1, 'D1F').tribute.name == 'Katniss'\n"
    )
    names = imported(code, builtin_only=True, tmp_path=tmp_path)
    assert "tributestore.backends.sqlite_backend.light" in names
    assert loaded(names, ("sqlalchemy", "tributestore.backends.sqlite_backend.store")) == []
    assert (
        loaded(names, ("rich", "click", "tributestore.cli", "tributestore.copier", "tributestore.backup"))
        == []
    )
    assert loaded(names, tuple(m for m in BACKEND_MODULES if "sqlite_backend" not in m)) == []


@pytest.mark.parametrize(
    ("option", "call"),
    [
        ("", "store.add_item(1, 'D1F', 'arrow', force=True)"),
        ("", "store.search_items('bow')"),
        ("?timeout=5", "store.get_tribute(1, 'D1F')"),
    ],
)
def test_anything_else_opens_the_full_sqlite_backend(
    sqlite_store: str, tmp_path: Path, option: str, call: str
) -> None:
    url = sqlite_store + option
    code = f"import tributestore\nwith tributestore.open_store({url!r}) as store:\n    {call}\n"
    names = imported(code, builtin_only=True, tmp_path=tmp_path)
    assert "tributestore.backends.sqlite_backend.store" in names and "sqlalchemy" in names
    assert loaded(names, tuple(m for m in BACKEND_MODULES if "sqlite_backend" not in m)) == []
