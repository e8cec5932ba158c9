"""open_store() picks the store from argument, environment, TOML file or default."""

from __future__ import annotations

from pathlib import Path

import pytest

from tributestore import ConfigError, open_store
from tributestore.config import ENV_CONFIG, ENV_URL, resolve_config
from tributestore.urls import parse_store_url


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(ENV_URL, raising=False)
    monkeypatch.delenv(ENV_CONFIG, raising=False)
    monkeypatch.chdir(tmp_path)


def test_default_is_an_embedded_sqlite_file(tmp_path: Path) -> None:
    resolved = resolve_config()
    assert resolved.source == "default" and resolved.url.scheme == "sqlite"
    with open_store() as store:
        store.create_tribute(1, "D1F")
    assert (tmp_path / "tributestore.db").is_file()


def test_environment_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENV_URL, "json:///from-env")
    (tmp_path / "tributestore.toml").write_text('[store]\nurl = "sqlite:///from-file.db"\n')
    with open_store() as store:
        store.create_tribute(1, "D1F")
    assert (tmp_path / "from-env" / "tributestore.json").is_file()
    assert not (tmp_path / "from-file.db").exists()


def test_toml_file_paths_are_relative_to_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "bot.toml").write_text('[store]\nurl = "sqlite:///data/thg.db"\ntimeout = 5\n')
    monkeypatch.setenv(ENV_CONFIG, str(conf / "bot.toml"))
    resolved = resolve_config()
    assert resolved.url.options == {"timeout": "5"} and "bot.toml" in resolved.source
    with open_store() as store:
        store.create_tribute(1, "D1F")
    assert (conf / "data" / "thg.db").is_file()


def test_default_toml_in_current_directory(tmp_path: Path) -> None:
    (tmp_path / "tributestore.toml").write_text('[store]\nurl = "json:///here"\n')
    assert resolve_config().url.local_path() == tmp_path / "here"


def test_argument_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_URL, "json:///from-env")
    assert resolve_config("sqlite:///arg.db").url.path == "arg.db"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[store\nurl=1", "invalid TOML"),
        ("[other]\nurl = 'x'", "no \\[store\\] table"),
        ("[store]\nurl = 5", "url must be a non-empty string"),
        ("[store]\nurl = 'sqlite:///a.db'\nnested = {a = 1}", "nested"),
    ],
)
def test_bad_config_file_named_in_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content)
    monkeypatch.setenv(ENV_CONFIG, str(path))
    with pytest.raises(ConfigError, match=message) as raised:
        open_store()
    assert "bad.toml" in str(raised.value)


def test_missing_named_config_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_CONFIG, "nowhere.toml")
    with pytest.raises(ConfigError, match=r"nowhere\.toml"):
        open_store()


def test_url_parsing() -> None:
    url = parse_store_url("sqlite:////abs/thg.db?timeout=3")
    assert url.local_path() == Path("/abs/thg.db") and url.option("timeout") == "3"
    assert parse_store_url("postgresql+psycopg://u@h:5432/db").backend == "postgresql"
    with pytest.raises(ConfigError, match="no scheme"):
        parse_store_url("thg.db")
    with pytest.raises(ConfigError, match="boolean"):
        parse_store_url("json:///x?create=maybe").flag("create")
