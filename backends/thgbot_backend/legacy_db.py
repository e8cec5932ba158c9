"""Read the legacy THGBot ``thgbot.db`` (the bot's own first SQLite attempt), defensively.

The source is never touched: even a read-only SQLite connection may create
``-wal``/``-shm`` files beside a WAL-mode database, or trip over a leftover
journal, so the file (with its ``-wal`` and ``-journal``) is copied to a
private temporary directory and read there.  Only the known tables are read,
and of each only the columns that exist, so every schema generation of that
bot opens.  Rows come back as plain dicts; the
caller (:mod:`.reader`) validates them.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from dataclasses import dataclass, field
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


@dataclass
class DbRows:
    """The rows of each known table (a missing table gives no rows)."""

    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def rows(self, table: str) -> list[dict[str, Any]]:
        return self.tables.get(table, [])


def read_thgbot_db(path: Path, label: str = "thgbot.db") -> DbRows:
    """Every known table of ``path``, read from a private copy; :class:`LegacyFormatError` when unreadable."""
    result = DbRows()
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
        if Path(f"{path}-journal").is_file():
            result.warnings.append(
                f"{label}: database: a leftover {path.name}-journal was found; its uncommitted "
                "changes are ignored (rolled back in a private copy, the original is untouched)"
            )
        try:
            result.tables = _read(copy)
        except sqlite3.Error as error:
            raise LegacyFormatError(f"{path}: not a readable SQLite database ({error})") from None
    return result


def _read(path: Path) -> dict[str, list[dict[str, Any]]]:
    conn = sqlite3.connect(path)
    try:
        names = {str(row[0]) for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        tables: dict[str, list[dict[str, Any]]] = {}
        for table, wanted in KNOWN_COLUMNS.items():
            if table not in names:
                continue
            present = {str(row[1]) for row in conn.execute(f'PRAGMA table_info("{table}")')}
            columns = [column for column in wanted if column in present]
            if not columns:
                tables[table] = []
                continue
            select = ", ".join(f'"{column}"' for column in columns)
            order = ' ORDER BY "rowid"' if _has_rowid(conn, table) else ""
            cursor = conn.execute(f'SELECT {select} FROM "{table}"{order}')
            tables[table] = [dict(zip(columns, row, strict=True)) for row in cursor]
        return tables
    finally:
        conn.close()


def _has_rowid(conn: sqlite3.Connection, table: str) -> bool:
    try:
        conn.execute(f'SELECT "rowid" FROM "{table}" LIMIT 0')
    except sqlite3.OperationalError:
        return False
    return True
