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
    monkeypatch.delenv("SNAP_DATA", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))  # platformdirs' user data directory
    monkeypatch.chdir(tmp_path)


def test_default_is_an_embedded_sqlite_file_in_the_user_data_directory(tmp_path: Path) -> None:
    resolved = resolve_config()
    assert resolved.source == "default: the user data directory (platformdirs)"
    assert resolved.url.scheme == "sqlite" and resolved.notice is None
    with open_store() as store:
        store.create_tribute(1, "D1F")
    assert (tmp_path / "xdg" / "tributestore" / "tributestore.db").is_file()
    assert not (tmp_path / "tributestore.db").exists()


def test_default_in_a_snap_is_under_snap_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    snap = tmp_path / "var" / "snap" / "thgbot" / "x1"
    snap.mkdir(parents=True)
    monkeypatch.setenv("SNAP_DATA", str(snap))
    (tmp_path / "cwd").mkdir()
    (tmp_path / "cwd").chmod(0o555)  # a snap's working directory is read-only
    monkeypatch.chdir(tmp_path / "cwd")
    assert resolve_config().source == "default: $SNAP_DATA (a snap's data directory)"
    with open_store() as store:
        store.create_tribute(1, "D1F")
    assert (snap / "tributestore.db").is_file()
    assert list((tmp_path / "cwd").iterdir()) == []


def test_an_existing_store_at_the_old_default_keeps_being_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with open_store("sqlite:///tributestore.db") as old:
        old.create_tribute(1, "OLD1")
    resolved = resolve_config()
    assert "old default location" in resolved.source and resolved.notice is not None
    caplog.clear()
    with caplog.at_level("WARNING", logger="tributestore"), open_store() as store:
        assert store.has_tribute(1, "OLD1")
    assert [r.getMessage() for r in caplog.records] == [resolved.notice]
    assert str(tmp_path / "tributestore.db") in resolved.notice
    assert not (tmp_path / "xdg").exists(), "an empty store was created in the new place"


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


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://thg.db", "has a host part 'thg.db'"),
        ("sqlite://", "names no database"),
        ("sqlite:///a.db?timeot=3", "unknown option 'timeot'"),
        ("sqlite:///a.db?timeout=soon", "is not a number of seconds"),
        ("sqlite:///a.db?synchronous=maybe", "synchronous='maybe' is not one of"),
        ("json:///store?read_only=perhaps", "read_only='perhaps' is not a boolean"),
        ("thgbot:///legacy?guild=abc", "option guild must be a Discord guild id"),
        ("composite:?primary=sqlite://a.db&fallback=json:///f", "has a host part 'a.db'"),
        ("composite:?primary=sqlite:///a.db", "needs a fallback URL"),
        ("composite:?primary=sqlite:///a.db&fallback=json:///f&fallback_errors=loud", "fallback_errors"),
    ],
)
def test_config_refuses_what_opening_would_and_creates_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str, message: str
) -> None:
    """`tributestore config` checks a URL (argument, environment, config file) as an open would:
    a user checking a setup is never told a URL every other command refuses is fine."""
    from helpers import run_cli

    before = sorted(tmp_path.rglob("*"))
    for args, env in (((url,), {}), ((), {ENV_URL: url})):
        monkeypatch.setenv(ENV_URL, env.get(ENV_URL, ""))
        if not env:
            monkeypatch.delenv(ENV_URL)
        result = run_cli("config", *args, cwd=tmp_path)
        assert result.returncode == 2, (url, result.stdout, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert sorted(tmp_path.rglob("*")) == before


def test_config_names_a_legacy_directory_behind_a_json_url(tmp_path: Path) -> None:
    from helpers import run_cli

    assert run_cli("sample-legacy", "legacy", cwd=tmp_path).returncode == 0
    result = run_cli("config", "json:///legacy", cwd=tmp_path)
    assert (
        "note: it is a legacy THGBot data directory: open it read-only as thgbot:///legacy" in result.stdout
    )


@pytest.mark.parametrize("url", ["", "   ", 0, False, []])
def test_an_empty_or_false_url_is_an_error_not_the_default_store(tmp_path: Path, url: object) -> None:
    """Only None means "no URL given": ``open_store(settings.get("url", ""))`` with the setting
    missing must not open (and create) the default store in the user data directory."""
    with pytest.raises(ConfigError, match="store URL must be a non-empty string"):
        open_store(url)  # type: ignore[arg-type]
    assert not (tmp_path / "xdg").exists()


@pytest.mark.parametrize("config_file", [123, b"thg.toml", "", "  "])
def test_a_config_file_of_the_wrong_type_is_a_config_error(tmp_path: Path, config_file: object) -> None:
    with pytest.raises(ConfigError, match="config_file must be the path of a TOML file"):
        open_store(config_file=config_file)  # type: ignore[arg-type]
    assert not (tmp_path / "xdg").exists()


def test_an_option_given_twice_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``?schema=a&schema=b`` used b in silence (and created a schema of that name)."""
    with pytest.raises(ConfigError, match="gives option 'timeout' twice"):
        open_store(f"sqlite:///{tmp_path}/thg.db?timeout=1&timeout=2")
    config = tmp_path / "thg.toml"
    config.write_text('[store]\nurl = "sqlite:///thg.db?timeout=1"\ntimeout = 2\n')
    monkeypatch.setenv(ENV_CONFIG, str(config))
    with pytest.raises(ConfigError, match="option 'timeout' is given both in the store URL"):
        open_store()
    assert not (tmp_path / "thg.db").exists()
    config.write_text('[store]\nurl = "sqlite:///thg.db?timeout=1"\ntimeout = "1"\n')  # the same value: fine
    with open_store() as store:
        assert store.url.startswith("sqlite:")


def test_config_shows_a_composites_stores_and_refuses_a_missing_fallback_as_opening_does(
    tmp_path: Path,
) -> None:
    """`config` on a composite showed its two URLs only and exited 0 for a fallback that does not
    exist, which opening refuses (a fallback is only read: it must exist). Each child is now shown
    as a plain URL is (backend, absolute path, whether it exists), and a missing fallback is
    refused with opening's own message and exit code (3), creating nothing."""
    from helpers import run_cli

    url = "composite:?primary=sqlite:///thg_nope.db&fallback=thgbot:///confg"
    result = run_cli("config", url, cwd=tmp_path)
    opened = run_cli("stats", url, cwd=tmp_path)
    assert opened.returncode == 3
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert result.stderr == opened.stderr
    assert f"{tmp_path / 'confg'} does not exist" in result.stderr
    shown = "fallback: thgbot:///confg\n  backend: thgbot\n  opened for reading: it must exist\n"
    assert shown in result.stdout
    assert f"  path: {tmp_path / 'confg'} (does not exist)\n" in result.stdout
    assert "primary: sqlite:///thg_nope.db\n  backend: sqlite\n" in result.stdout
    assert f"  path: {tmp_path / 'thg_nope.db'} (does not exist yet)\n" in result.stdout
    assert sorted(tmp_path.iterdir()) == []  # no primary, no fallback, no lock or index
    # The same from a config file, its paths relative to the file's directory.
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "tributestore.toml").write_text(
        '[store]\nurl = "composite:"\nprimary = "sqlite:///thg.db"\nfallback = "thgbot:///confg"\n'
    )
    result = run_cli("config", cwd=tmp_path / "etc")
    assert result.returncode == 3 and f"{tmp_path / 'etc' / 'confg'} does not exist" in result.stderr
    assert sorted(p.name for p in (tmp_path / "etc").iterdir()) == ["tributestore.toml"]
    # Once the fallback exists: both stores shown, exit 0, still nothing created.
    assert run_cli("sample-legacy", "confg", cwd=tmp_path / "etc").returncode == 0
    result = run_cli("config", cwd=tmp_path / "etc")
    assert result.returncode == 0, result.stderr
    assert f"  path: {tmp_path / 'etc' / 'confg'} (exists)\n" in result.stdout
    assert f"  path: {tmp_path / 'etc' / 'thg.db'} (does not exist yet)\n" in result.stdout
    assert sorted(p.name for p in (tmp_path / "etc").iterdir()) == ["confg", "tributestore.toml"]
