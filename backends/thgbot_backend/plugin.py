"""The ``thgbot`` plugin: a legacy THGBot data directory, read-only (``thgbot:///config``).

It registers the backend, and the ``tributestore sample-legacy DIR`` command
that writes the bundled sample directory.  The reader (:mod:`.store`,
:mod:`.reader`) is imported only when such a URL is opened, or when another
backend failed to open a URL and the registry asks :func:`hint_for` whether
it names a legacy directory.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from tributestore.defaults import EXAMPLE_URL
from tributestore.errors import ConfigError, StorageError, TributeStoreError
from tributestore.hookspecs import BackendSpec, hookimpl
from tributestore.urls import StoreURL, quote_path

if TYPE_CHECKING:  # click is imported only when the CLI asks for the commands (start-up time)
    from importlib.resources.abc import Traversable

    import click

#: The URL scheme of a legacy THGBot data directory.
SCHEME = "thgbot"
#: The URL options of a legacy directory (see docs/legacy-format.md).
OPTIONS = ("guild", "guild_map", "oversize", "cache")


def sample_directory() -> Traversable:
    """The bundled sample legacy THGBot data directory (``tributestore sample-legacy`` copies it)."""
    from importlib import resources

    return resources.files("tributestore.backends.thgbot_backend") / "sample_legacy"


def url_for(path: Path | str, options: dict[str, str] | None = None) -> str:
    """The ``thgbot:`` URL of a legacy directory (relative paths stay relative)."""
    query = f"?{urlencode(options)}" if options else ""
    return f"{SCHEME}:///{quote_path(str(path))}{query}"


def hint_for(url: StoreURL) -> str | None:
    """For a URL of another scheme naming a legacy THGBot directory: the URL to open it with."""
    from .store import looks_like_legacy  # local: the reader is large, and rarely needed here

    if url.scheme == SCHEME or url.netloc or not url.path:
        return None
    try:
        path = url.local_path()
    except TributeStoreError:
        return None
    if not looks_like_legacy(path):
        return None
    options = {key: value for key, value in url.options.items() if key in OPTIONS}
    return f"it is a legacy THGBot data directory: open it read-only as {url_for(url.path, options)}"


@hookimpl
def tributestore_register_backends(register: Callable[[BackendSpec], None]) -> None:
    register(
        BackendSpec(
            name="thgbot",
            schemes=(SCHEME,),
            opener="tributestore.backends.thgbot_backend.store:open_thgbot_backend",
            summary="a legacy THGBot data directory (the bot's own JSON files and thgbot.db), read-only",
            example="thgbot:///path/to/config",
            options=OPTIONS,
            hint_for=hint_for,
            check_url="tributestore.backends.thgbot_backend.reader:check_url",
        )
    )


def write_sample(directory: Path) -> str:
    """Copy the bundled sample legacy directory to ``directory`` (which must not exist); its URL."""
    import shutil
    import tempfile
    from importlib import resources

    if directory.exists() or directory.is_symlink():
        raise ConfigError(f"{directory} already exists; choose a new directory")
    parent = directory.absolute().parent
    if not parent.is_dir():
        raise ConfigError(f"cannot write the sample to {directory}: the folder {parent} does not exist")
    # Copied beside it, then renamed: a failure (disk full, permissions) leaves no half sample.
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=parent))
    except OSError as error:
        raise StorageError(f"cannot write the sample to {directory}: {error.strerror or error}") from None
    try:
        with resources.as_file(sample_directory()) as path:
            shutil.copytree(path, staging / "sample")
        (staging / "sample").rename(directory)
    except OSError as error:
        raise StorageError(
            f"cannot write the sample to {directory}: {error.strerror or error}; nothing was written there"
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return url_for(directory)


def sample_legacy_command() -> click.Command:
    """``tributestore sample-legacy DIR`` (built on demand: a bot opening a store needs no click)."""
    import click

    @click.command("sample-legacy")
    @click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
    def sample_legacy(directory: Path) -> None:
        """Write the bundled sample legacy THGBot data directory to DIRECTORY (must not exist)."""
        url = write_sample(directory)
        click.echo(f"sample legacy THGBot data written to {directory}")
        click.echo(f"migrate it with: tributestore copy {url} {EXAMPLE_URL}")

    return sample_legacy


@hookimpl
def tributestore_register_commands(cli: click.Group) -> None:
    cli.add_command(sample_legacy_command())
