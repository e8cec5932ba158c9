"""The composite backend: conformance, no resurrection, copy-up, promote-on-read, dual write."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from urllib.parse import quote

import pytest

from tributestore import ConfigError, TributeStore, open_store
from tributestore.backends.composite_backend.store import CompositeBackend
from tributestore.copier import verify_stores
from tributestore.testing import ConformanceSuite

SAMPLE = resources.files("tributestore.backends.thgbot_backend") / "sample_legacy"


def composite_url(primary: str, fallback: str, **options: str) -> str:
    extra = "".join(f"&{key}={value}" for key, value in options.items())
    return f"composite:?primary={quote(primary, safe='')}&fallback={quote(fallback, safe='')}{extra}"


def empty_legacy_dir(path: Path) -> Path:
    (path / "inventories").mkdir(parents=True)
    (path / "inventories" / "inventories.json").write_text("{}")
    return path


@pytest.mark.backend("composite")
class TestCompositeSqliteOverLegacy(ConformanceSuite):
    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        legacy = empty_legacy_dir(tmp_path / "legacy")
        return composite_url(f"sqlite:///{tmp_path}/thg.db", f"thgbot:///{legacy}")


@pytest.mark.backend("composite")
class TestCompositeDualWrite(ConformanceSuite):
    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return composite_url(f"sqlite:///{tmp_path}/thg.db", f"json:///{tmp_path}/js", dual_write="true")


@pytest.fixture
def legacy_dir(tmp_path: Path) -> Path:
    with resources.as_file(SAMPLE) as path:
        return Path(shutil.copytree(path, tmp_path / "legacy"))


@pytest.fixture
def window(tmp_path: Path, legacy_dir: Path) -> Iterator[TributeStore]:
    with open_store(composite_url(f"sqlite:///{tmp_path}/thg.db", f"thgbot:///{legacy_dir}")) as store:
        yield store


@pytest.fixture
def legacy(legacy_dir: Path) -> Iterator[TributeStore]:
    with open_store(f"thgbot:///{legacy_dir}") as store:
        yield store


def first_with(store: TributeStore, predicate: str) -> tuple[int, str]:
    for bundle in store.iter_bundles():
        if predicate == "prompt" and bundle.prompt is not None and bundle.inventory.items:
            return bundle.tribute.guild_id, bundle.tribute.tribute_id
    raise AssertionError("the sample has no tribute with a prompt and items")


def test_reads_merge_and_match_the_fallback(window: TributeStore, legacy: TributeStore) -> None:
    assert window.counts() == legacy.counts()
    assert verify_stores(legacy, window) == []
    assert window.details()["tributes only in the fallback"] == legacy.counts().tributes


def test_delete_does_not_resurrect(tmp_path: Path, legacy_dir: Path, legacy: TributeStore) -> None:
    url = composite_url(f"sqlite:///{tmp_path}/thg.db", f"thgbot:///{legacy_dir}")
    guild_id, tribute_id = first_with(legacy, "prompt")
    with open_store(url) as window:
        window.delete_prompt(guild_id, tribute_id)
        other = next(t for t in window.iter_tributes() if t.tribute_id != tribute_id)
        window.delete_tribute(other.guild_id, other.tribute_id)
    with open_store(url) as window:  # a fresh process-like handle
        with pytest.raises(LookupError):
            window.get_prompt(guild_id, tribute_id)
        assert not window.has_tribute(other.guild_id, other.tribute_id)
        assert all(
            t.tribute_id != other.tribute_id or t.guild_id != other.guild_id for t in window.iter_tributes()
        )
        hits = window.search_items("e")
        assert all((h.guild_id, h.tribute_id) != (other.guild_id, other.tribute_id) for h in hits)
        window.create_tribute(other.guild_id, other.tribute_id, name="reborn")
        assert window.get_inventory(other.guild_id, other.tribute_id).items == []
    assert legacy.has_tribute(other.guild_id, other.tribute_id), "the fallback itself is never written"


def test_write_to_fallback_only_tribute_keeps_all_its_data(
    window: TributeStore, legacy: TributeStore
) -> None:
    guild_id, tribute_id = first_with(legacy, "prompt")
    before = legacy.export_tribute(guild_id, tribute_id)
    window.add_item(guild_id, tribute_id, "New shiny thing", force=True)
    after = window.export_tribute(guild_id, tribute_id)
    assert after.inventory.items == [*before.inventory.items, "New shiny thing"]
    assert after.inventory.equipped == before.inventory.equipped
    assert after.prompt == before.prompt and after.files == before.files and after.tribute == before.tribute
    for info in before.files:
        assert window.read_file(guild_id, tribute_id, info.name) == legacy.read_file(
            guild_id, tribute_id, info.name
        )
    assert window.get_guild(guild_id) == legacy.get_guild(guild_id)
    assert window.details()["tributes only in the fallback"] == legacy.counts().tributes - 1


def test_promote_on_read_empties_the_fallback_count(
    tmp_path: Path, legacy_dir: Path, legacy: TributeStore
) -> None:
    url = composite_url(f"sqlite:///{tmp_path}/thg.db", f"thgbot:///{legacy_dir}", promote_on_read="true")
    with open_store(url) as window:
        for tribute in legacy.iter_tributes():
            window.get_tribute(tribute.guild_id, tribute.tribute_id)
        assert window.details()["tributes only in the fallback"] == 0
    with open_store(f"sqlite:///{tmp_path}/thg.db") as primary:
        assert verify_stores(legacy, primary) == []


def test_dual_write_needs_a_writable_fallback(tmp_path: Path, legacy_dir: Path) -> None:
    with pytest.raises(ConfigError, match="read-only"):
        open_store(composite_url(f"sqlite:///{tmp_path}/thg.db", f"thgbot:///{legacy_dir}", dual_write="1"))


def test_dual_write_mirrors_to_the_fallback(tmp_path: Path) -> None:
    url = composite_url(f"sqlite:///{tmp_path}/thg.db", f"json:///{tmp_path}/js", dual_write="true")
    with open_store(url) as window:
        window.create_tribute(1, "D1F", name="both")
        window.add_item(1, "D1F", "Knife")
        window.create_tribute(1, "D2F")
        window.delete_tribute(1, "D2F")
    with open_store(f"sqlite:///{tmp_path}/thg.db") as primary, open_store(f"json:///{tmp_path}/js") as fb:
        assert verify_stores(primary, fb) == []
        assert fb.get_inventory(1, "D1F").items == ["Knife"]


def test_missing_options_are_named() -> None:
    with pytest.raises(ConfigError, match="fallback"):
        open_store("composite:?primary=sqlite:///x.db")


def test_a_fallback_that_is_the_primary_is_refused(tmp_path: Path) -> None:
    open_store(f"sqlite:///{tmp_path}/thg.db").close()
    url = f"composite:?primary=sqlite:///{tmp_path}/thg.db&fallback=sqlite:///{tmp_path}/./thg.db"
    with pytest.raises(ConfigError, match="are the same store"):
        open_store(url)


def test_toml_configuration(tmp_path: Path, legacy_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bot.toml").write_text(
        f'[store]\nurl = "composite:"\nprimary = "sqlite:///thg.db"\nfallback = "thgbot:///{legacy_dir}"\n'
        "promote_on_read = true\n"
    )
    monkeypatch.delenv("TRIBUTESTORE_URL", raising=False)
    monkeypatch.setenv("TRIBUTESTORE_CONFIG", str(tmp_path / "bot.toml"))
    with open_store() as store:
        assert store.counts().tributes > 0
    assert (tmp_path / "thg.db").is_file()


def test_dual_write_failure_leaves_both_stores_as_they_were(tmp_path: Path) -> None:
    url = composite_url(f"sqlite:///{tmp_path}/thg.db", f"json:///{tmp_path}/js", dual_write="true")
    with open_store(url) as window:
        window.create_tribute(1, "A")
        window.create_tribute(1, "B")
    broken = tmp_path / "js" / "guilds" / "1" / "tributes" / "B.json"
    broken.write_text("{ not json")
    with open_store(url) as window, pytest.raises(Exception, match=r"B\.json"), window.transaction():
        window.add_item(1, "A", "Rope")
        window.add_item(1, "B", "Rope")
    with open_store(f"sqlite:///{tmp_path}/thg.db") as primary, open_store(f"json:///{tmp_path}/js") as fb:
        assert primary.get_inventory(1, "A").items == []
        assert fb.get_inventory(1, "A").items == [], (
            "the fallback must not keep a mirror of a rolled-back write"
        )


def test_dual_write_warn_policy_records_the_failure(tmp_path: Path) -> None:
    url = composite_url(
        f"sqlite:///{tmp_path}/thg.db", f"json:///{tmp_path}/js", dual_write="true", fallback_errors="warn"
    )
    with open_store(url) as window:
        window.create_tribute(1, "B")
    (tmp_path / "js" / "guilds" / "1" / "tributes" / "B.json").write_text("{ not json")
    with open_store(url) as window:
        window.add_item(1, "B", "Rope")
        assert window.get_inventory(1, "B").items == ["Rope"]
        assert any("tribute B in guild 1" in w for w in window.warnings)


def test_guild_settings_are_mirrored(tmp_path: Path) -> None:
    url = composite_url(f"sqlite:///{tmp_path}/thg.db", f"json:///{tmp_path}/js", dual_write="true")
    with open_store(url) as window:
        window.put_guild(5, log_channel_id=77)
    with open_store(f"json:///{tmp_path}/js") as fb:
        assert fb.get_guild(5).log_channel_id == 77


def test_a_tribute_gone_from_the_primary_is_read_from_the_fallback_again(tmp_path: Path) -> None:
    with open_store(f"json:///{tmp_path}/js") as fb:
        fb.create_tribute(1, "A")
        fb.add_item(1, "A", "Knife")
    url = composite_url(f"sqlite:///{tmp_path}/thg.db", f"json:///{tmp_path}/js")
    with open_store(url) as window:
        window.add_item(1, "A", "Rope")  # copied up into the primary
        assert window.has_tribute(1, "A")
        with open_store(f"sqlite:///{tmp_path}/thg.db") as primary:  # e.g. another process restoring
            primary.delete_tribute(1, "A")
        assert window.get_inventory(1, "A").items == ["Knife"]


def test_promote_all_closes_the_window(tmp_path: Path, legacy_dir: Path, legacy: TributeStore) -> None:
    url = composite_url(f"sqlite:///{tmp_path}/thg.db", f"thgbot:///{legacy_dir}")
    with open_store(url) as window:
        assert isinstance(window.backend, CompositeBackend)
        assert window.backend.promote_all() == legacy.counts().tributes
        assert window.details()["tributes only in the fallback"] == 0
        assert window.backend.promote_all() == 0
    with open_store(f"sqlite:///{tmp_path}/thg.db") as primary:
        assert verify_stores(legacy, primary) == []
