"""PostgreSQL bulk path: ``import_documents`` (COPY) against a plain psycopg ``COPY`` of the same rows.

At ``n`` tributes (a legacy directory from :mod:`benchmarks.generate`, read once
through ``thgbot:///``), each variant writes into a fresh schema of the server
``TRIBUTESTORE_BENCH_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1/test``)
whose tables were created by opening a store there (so the same tables, keys,
foreign keys and trigram GIN index):

- ``import``: ``SqlBackend.import_documents`` in batches of ``batch`` tributes,
  one transaction each, inside ``bulk_import(n)`` (the trigram index dropped by
  the first batch, built once at the end: included);
- ``import, index kept``: the same batches without ``bulk_import`` (the GIN
  index maintained row by row);
- ``plain COPY``: psycopg ``COPY ... FROM STDIN`` of rows already built as
  tuples, one transaction, into the tables with their index;
- ``plain COPY, index rebuilt``: the same with the index dropped first and
  created after, in the same transaction.

The limit is the faster plain COPY; the ratio is limit / import (>= 0.5 is the
goal).  Times are the best of 3 rounds (1 in quick mode).  Call
``run(n, work, quick)`` then ``markdown(rows)``.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tributestore import open_store
from tributestore.backends.sqlite_backend import schema, search
from tributestore.backends.sqlite_backend.documents import SLOTS, to_text
from tributestore.backends.sqlite_backend.store import SqlBackend
from tributestore.models import FileInfo, Guild, TributeBundle

from .generate import generate

SERVER = os.environ.get("TRIBUTESTORE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1/test")
BATCH = 1000
Rows = dict[str, list[tuple[Any, ...]]]


def _load(n: int, work: Path) -> tuple[list[Guild], list[TributeBundle], dict[tuple[int, str, str], bytes]]:
    legacy = work / f"legacy-{n}"  # the one python -m benchmarks generated, when there
    if not (legacy / "inventories" / "inventories.json").exists():
        generate(legacy, n)
    with open_store(f"thgbot:///{legacy}") as store:
        documents = list(store.iter_bundles())
        data = {
            (info.guild_id, info.tribute_id, info.name): store.read_file(
                info.guild_id, info.tribute_id, info.name
            )
            for document in documents
            for info in document.files
        }
        return store.list_guilds(), documents, data


@contextmanager
def _schema(guilds: Sequence[Guild]) -> Iterator[str]:
    """A fresh schema with the store's tables and the guild rows; dropped afterwards."""
    import psycopg

    name = f"bench_copy_{uuid.uuid4().hex[:10]}"
    url = f"{SERVER}{'&' if '?' in SERVER else '?'}schema={name}"
    with open_store(url) as store:
        for guild in guilds:
            store.put_guild(guild.guild_id, **guild.model_dump(exclude={"guild_id"}))
    try:
        yield url
    finally:
        with psycopg.connect(SERVER, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def _import(
    url: str, documents: Sequence[TributeBundle], file_data: Callable[[FileInfo], bytes], *, defer: bool
) -> float:
    with open_store(url) as store:
        backend = store.backend
        assert isinstance(backend, SqlBackend)
        began = time.perf_counter()
        with backend.bulk_import(len(documents) if defer else 0):
            for start in range(0, len(documents), BATCH):
                with store.transaction():
                    backend.import_documents(documents[start : start + BATCH], file_data)
        return time.perf_counter() - began


def _rows(documents: Sequence[TributeBundle], file_data: Callable[[FileInfo], bytes]) -> Rows:
    """The rows of every table, as tuples in column order (what the store writes)."""
    rows: Rows = {table.name: [] for table in schema.V1_TABLES[1:]}
    key = 0
    for document in documents:
        t, inventory, prompt = document.tribute, document.inventory, document.prompt
        owner = (t.guild_id, t.tribute_id)
        rows["tributes"].append(
            (*owner, t.name, t.user_id, t.user_mention, t.face_claim_url, t.prompt_channel_id, *_stamps(t))
        )
        rows["inventories"].append((*owner, inventory.capacity, inventory.equipped_capacity))
        for slot in SLOTS:
            for number, item in enumerate(getattr(inventory, slot), start=1):
                key += 1
                rows["inventory_items"].append((*owner, slot, number, item, item.casefold(), key))
        if prompt is not None:
            rows["prompts"].append(
                (
                    *owner,
                    prompt.message,
                    prompt.channel_id,
                    to_text(prompt.created_at),
                    to_text(prompt.updated_at),
                )
            )
            rows["prompt_files"].extend((*owner, n, name) for n, name in enumerate(prompt.files, start=1))
        for info in document.files:
            rows["files"].append(
                (
                    *owner,
                    info.name,
                    info.kind,
                    info.media_type,
                    info.size,
                    info.sha256,
                    *_stamps(info),
                    file_data(info),
                )
            )
    return rows


def _stamps(part: Any) -> tuple[str | None, ...]:
    """``created_at`` (and ``updated_at`` where the model has it) as the store's text."""
    names = ("created_at", "updated_at") if hasattr(part, "updated_at") else ("created_at",)
    return tuple(to_text(getattr(part, name)) for name in names)


def _plain_copy(url: str, rows: Rows, *, reindex: bool) -> float:
    import psycopg

    schema_name = url.rsplit("schema=", 1)[1]
    with psycopg.connect(SERVER) as conn:
        conn.execute(f"SET search_path = {schema_name}")
        index = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND indexname = %s",
            (schema_name, search.TRIGRAM_INDEX),
        ).fetchone()
        conn.commit()
        began = time.perf_counter()
        with conn.transaction():
            if reindex and index is not None:
                conn.execute(f"DROP INDEX {search.TRIGRAM_INDEX}")
            with conn.cursor() as cursor:
                for table in schema.V1_TABLES[1:]:
                    names = ", ".join(column.name for column in table.columns)
                    with cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
                        for row in rows[table.name]:
                            copy.write_row(row)
            if reindex and index is not None:
                conn.execute(index[0])
        return time.perf_counter() - began


def run(n: int, work: Path, quick: bool) -> list[dict[str, Any]]:
    """One row: seconds of each variant at ``n`` tributes (best of 3, 1 when ``quick``), the ratio."""
    work.mkdir(parents=True, exist_ok=True)
    guilds, documents, data = _load(n, work)

    def file_data(info: FileInfo) -> bytes:
        return data[info.guild_id, info.tribute_id, info.name]

    rows = _rows(documents, file_data)
    # PostgreSQL keeps its trigram index through an import (dropping it would lock readers out).
    variants: dict[str, Callable[[str], float]] = {
        "import_s": lambda url: _import(url, documents, file_data, defer=True),
        "copy_s": lambda url: _plain_copy(url, rows, reindex=False),
        "copy_index_rebuilt_s": lambda url: _plain_copy(url, rows, reindex=True),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    load = _loadavg()
    for _ in range(1 if quick else 3):
        for name, variant in variants.items():  # alternating: the load drifts alike for all
            with _schema(guilds) as url:
                times[name].append(variant(url))
    best = {name: min(values) for name, values in times.items()}
    limit = min(best["copy_s"], best["copy_index_rebuilt_s"])
    return [
        {
            "tributes": n,
            "rows": sum(len(table) for table in rows.values()),
            "batch": BATCH,
            **best,
            "limit_s": limit,
            "ratio": limit / best["import_s"],
            "load": f"{load} -> {_loadavg()}",
        }
    ]


def _loadavg() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "?"


def markdown(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table (seconds; ratio = plain COPY limit / import, goal >= 0.5)."""
    lines = [
        "| tributes | rows | import_documents (COPY, index kept) s "
        "| plain COPY s | plain COPY, index dropped and rebuilt s | ratio limit/import |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['tributes']:,} | {row['rows']:,} | {row['import_s']:.3f} "
            f"| {row['copy_s']:.3f} | {row['copy_index_rebuilt_s']:.3f} | {row['ratio']:.2f} |"
        )
    if rows:
        lines.append("")
        lines.append(
            f"Batches of {rows[0]['batch']} tributes per transaction; best of the rounds; "
            f"load average {rows[0]['load']}."
        )
    return "\n".join(lines)


if __name__ == "__main__":
    import sys
    import tempfile

    size = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    with tempfile.TemporaryDirectory(prefix="pg-copy-") as tmp:
        print(
            markdown(
                run(size, Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tmp), quick="--quick" in sys.argv)
            )
        )
