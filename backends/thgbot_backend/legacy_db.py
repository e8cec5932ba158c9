"""Read the legacy THGBot ``thgbot.db`` (the bot's own first SQLite attempt), defensively.

The source is never touched: even a read-only SQLite connection may create
``-wal``/``-shm`` files beside a WAL-mode database, or trip over a leftover
journal, so the file (with its ``-wal`` and ``-journal``) is copied to a
private temporary directory and read there.  Only the known tables are read,
and of each only the columns that exist, so every schema generation of that
bot opens.  Rows are streamed, one plain dict at a time; the
caller (:mod:`.reader`) validates them.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tributestore.errors import LegacyFormatError

#: table -> the columns we use (whichever of them exist are read).
KNOWN_COLUMNS: dict[str, tuple[str, ...]] = {
    "tributes": (
        "tribute_id",
        "tribute_name",
        "user_id",
        "user_mention",
        "guild_id",
        "created_at",
        "face_claim_url",
        "prompt_channel_id",
    ),
    "prompts": ("tribute_id", "message", "channel_id", "created_at"),
    # ``prompt_id`` of prompt_images holds the tribute id in that bot.
    "prompt_images": ("prompt_id", "tribute_id", "file_path", "file_name", "created_at"),
    "files": ("tribute_id", "file_type", "file_path", "file_name", "created_at"),
    "inventories": ("tribute_id", "capacity", "equipped_capacity"),
    "inventory_items": ("tribute_id", "item_number", "item_name"),
}


class DbRows:
    """The rows of each known table (a missing table gives no rows), streamed from the private copy."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.warnings: list[str] = []
        self.conn = sqlite3.connect(path)
        # Text that is not UTF-8 (SQLite stores what it is given): its bad bytes become lone
        # surrogates, which the reader stores as U+FFFD, keeping the original (a legacy_original file).
        self.conn.text_factory = _text
        names = {
            str(row[0]) for row in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        #: table -> the select of its known columns ('' when it has none of them)
        self.selects: dict[str, tuple[list[str], str]] = {}
        for table, wanted in KNOWN_COLUMNS.items():
            if table not in names:
                continue
            present = {str(row[1]) for row in self.conn.execute(f'PRAGMA table_info("{table}")')}
            columns = [column for column in wanted if column in present]
            if not columns:
                self.selects[table] = ([], "")
                continue
            select = ", ".join(f'"{column}"' for column in columns)
            order = ' ORDER BY "rowid"' if _has_rowid(self.conn, table) else ""
            self.selects[table] = (columns, f'SELECT {select} FROM "{table}"{order}')

    def rows(self, table: str) -> Iterator[dict[str, Any]]:
        """The rows of ``table`` as dicts of the known columns, in rowid order."""
        columns, select = self.selects.get(table, ([], ""))
        if not select:
            return
        try:
            for row in self.conn.execute(select):
                yield dict(zip(columns, row, strict=True))
        except sqlite3.Error as error:
            raise LegacyFormatError(f"{self.path}: not a readable SQLite database ({error})") from None


@contextmanager
def open_thgbot_db(path: Path, label: str = "thgbot.db") -> Iterator[DbRows]:
    """The known tables of ``path``, read from a private copy; :class:`LegacyFormatError` when unreadable."""
    with tempfile.TemporaryDirectory(prefix="tributestore-thgbot-") as scratch:
        copy = Path(scratch) / "thgbot.db"
        try:
            shutil.copyfile(path, copy)
            for suffix in ("-wal", "-journal"):
                companion = Path(f"{path}{suffix}")
                if companion.is_file():
                    shutil.copyfile(companion, Path(f"{copy}{suffix}"))
        except OSError as error:
            raise LegacyFormatError(f"{path}: cannot read it ({error.strerror})") from None
        try:
            result = DbRows(copy)
        except sqlite3.Error as error:
            raise LegacyFormatError(f"{path}: not a readable SQLite database ({error})") from None
        result.path = path
        if Path(f"{path}-journal").is_file():
            result.warnings.append(
                f"{label}: database: a leftover {path.name}-journal was found; its uncommitted "
                "changes are ignored (rolled back in a private copy, the original is untouched)"
            )
        try:
            yield result
        finally:
            result.conn.close()


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _has_rowid(conn: sqlite3.Connection, table: str) -> bool:
    try:
        conn.execute(f'SELECT "rowid" FROM "{table}" LIMIT 0')
    except sqlite3.OperationalError:
        return False
    return True
