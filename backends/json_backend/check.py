"""The read-only integrity walk behind ``JsonBackend.check``: every problem found, each naming its file."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tributestore.errors import StorageError
from tributestore.models import FileInfo
from tributestore.store import bytes_match

from .atomic import TEMP_SUFFIX
from .documents import check_marker, parse_guild, parse_tribute
from .layout import (
    GUILD_FILE,
    MARKER_NAME,
    REFS_SUFFIX,
    SHA_RE,
    TRIBUTE_ID_RE,
    TRIBUTE_SUFFIX,
    Layout,
    list_dir,
)


class Checker:
    """Walks the tree of one store once (:meth:`run`); a directory a concurrent commit removes is no error."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.problems: list[str] = []
        #: (sha, ref marker name) of every file a tribute lists.
        self.expected_refs: set[tuple[str, str]] = set()

    def problem(self, path: Path, message: str) -> None:
        self.problems.append(f"{self.layout.rel(path)}: {message}")

    def run(self) -> list[str]:
        self.check_marker()
        if self.layout.journal.exists():
            self.problem(self.layout.journal, "an interrupted commit is pending (replayed on next write)")
        self.check_guilds()
        self.check_blobs()
        self.check_leftovers()
        return self.problems

    def read(self, path: Path) -> bytes | None:
        """The file's bytes; ``None`` (and a problem) when it cannot be read."""
        try:
            return path.read_bytes()
        except FileNotFoundError:
            self.problem(path, "missing")
        except OSError as error:
            self.problem(path, f"unreadable ({error.strerror})")
        return None

    def check_marker(self) -> None:
        marker = self.layout.marker
        if not marker.is_file():
            self.problems.append(f"{self.layout.root} is not a tributestore JSON store (no {MARKER_NAME})")
            return
        raw = self.read(marker)
        try:
            if raw is not None:
                check_marker(marker, raw)
        except StorageError as error:
            self.problems.append(str(error))

    def check_guilds(self) -> None:
        guilds = self.layout.guilds
        if not guilds.is_dir():
            return
        for name in sorted(list_dir(guilds)):
            path = guilds / name
            if not (name.isdigit() and str(int(name)) == name) or not path.is_dir():
                self.problem(path, "unexpected entry (guild directories are named by guild id)")
                continue
            guild_id = int(name)
            raw = self.read(path / GUILD_FILE)
            try:
                if raw is not None:
                    parse_guild(path / GUILD_FILE, raw, guild_id)
            except StorageError as error:
                self.problems.append(str(error))
            self.check_tributes(guild_id)

    def check_tributes(self, guild_id: int) -> None:
        directory = self.layout.tributes_dir(guild_id)
        for name in sorted(list_dir(directory)):
            path = directory / name
            tribute_id = name.removesuffix(TRIBUTE_SUFFIX)
            if not name.endswith(TRIBUTE_SUFFIX) or not TRIBUTE_ID_RE.match(tribute_id):
                self.problem(path, "unexpected entry (tribute files are named <TRIBUTE_ID>.json)")
                continue
            raw = self.read(path)
            if raw is None:
                continue
            try:
                document = parse_tribute(path, raw, guild_id, tribute_id)
            except StorageError as error:
                self.problems.append(str(error))
                continue
            for info in document.files:
                self.check_file(path, info)

    def check_file(self, owner: Path, info: FileInfo) -> None:
        layout = self.layout
        blob = layout.blob_file(info.sha256)
        marker = layout.ref_file(info.sha256, info.guild_id, info.tribute_id, info.name)
        self.expected_refs.add((info.sha256, marker.name))
        what = f"file {info.name!r} listed in {layout.rel(owner)}"
        try:
            data = blob.read_bytes()
        except FileNotFoundError:
            self.problem(blob, f"missing blob of {what}")
            data = None
        except OSError as error:
            self.problem(blob, f"unreadable blob of {what} ({error.strerror})")
            data = None
        if data is not None and not bytes_match(info, data):
            self.problem(blob, f"blob contents do not match sha256/size of {what}")
        if not marker.is_file():
            self.problem(marker, f"missing reference marker for {what}")

    def check_blobs(self) -> None:
        blobs = self.layout.blobs
        if not blobs.is_dir():
            return
        for prefix in sorted(list_dir(blobs)):
            directory = blobs / prefix
            if not directory.is_dir() or len(prefix) != 2:
                self.problem(directory, "unexpected entry in blobs/")
                continue
            for name in sorted(list_dir(directory)):  # a concurrent commit may remove it
                path = directory / name
                sha = name.removesuffix(REFS_SUFFIX)
                if not SHA_RE.match(sha) or sha[:2] != prefix:
                    self.problem(path, "unexpected entry (blobs are named by their sha256)")
                elif name.endswith(REFS_SUFFIX):
                    self.check_refs(path, sha)
                else:
                    self.check_blob(path, sha)

    def check_blob(self, path: Path, sha: str) -> None:
        try:
            data = path.read_bytes()
        except OSError as error:
            self.problem(path, f"unreadable blob ({error.strerror})")
            return
        if hashlib.sha256(data).hexdigest() != sha:
            self.problem(path, "blob contents do not match its sha256 name")
        if not list_dir(self.layout.refs_dir(sha)):
            self.problem(path, "orphan blob: no file refers to it")

    def check_refs(self, directory: Path, sha: str) -> None:
        markers = sorted(list_dir(directory))
        if markers and not self.layout.blob_file(sha).is_file():
            self.problem(directory, "references a blob that does not exist")
        for marker in markers:
            if (sha, marker) not in self.expected_refs:
                self.problem(directory / marker, "dangling reference: no tribute lists this file")

    def check_leftovers(self) -> None:
        for dirpath, _dirnames, filenames in os.walk(self.layout.root):
            for name in filenames:
                if name.startswith(".") and name.endswith(TEMP_SUFFIX):
                    self.problem(Path(dirpath) / name, "leftover temporary file")
