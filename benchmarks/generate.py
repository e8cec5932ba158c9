"""Generate a legacy THGBot data directory of N tributes x 10 items (deterministic).

The layout is the one described in ``docs/legacy-format.md`` and read by
``tributestore.backends.thgbot_backend.reader`` (URL ``thgbot:///DIR``):

- ``config/config.json``: two guilds (per-guild format);
- ``thgbot.db``: the bot's ``tributes`` table (names, users, guild of every tribute;
  ``created_at`` mixing text timestamps and unix integers, as real files do);
- ``inventories/inventories.json`` (indented): every tribute with 10 items, about a
  third with 1-2 equipped items, older entries without the ``equipped`` keys, some
  keys in lower case (the older key casing), item keys numbered from "1";
- ``prompts/prompt_info.json`` (compact): a prompt for one tribute in five,
  channel as a string (sometimes null), one in forty with an image;
- ``prompt_images/<guild_id>/<TRIBUTE>_<unix>.png``: those images (tiny PNGs).

Run ``python -m benchmarks.generate DIR N``.
"""

from __future__ import annotations

import json
import random
import sqlite3
import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

GUILDS = (1395951775160340551, 1402233445566778899)
ITEMS_PER_TRIBUTE = 10
PROMPT_EVERY = 5
IMAGE_EVERY = 40

_FOOD = ["Meat", "Bread", "Apple", "Dried fruit", "Crackers", "Cheese", "Groosling leg", "Nuts"]
_WATER = ["Water", "Canteen", "Iodine", "Water bottle", "Purifying tablets"]
_TOOLS = [
    "Rope",
    "Sleeping bag",
    "Matches",
    "Fishing line",
    "Hook",
    "Wire",
    "Night-vision glasses",
    "Tarp",
    "Flint",
    "Bandage",
    "Burn cream",
    "Sponsor parachute",
    "Map of the arena",
    "Torch",
]
_WEAPONS = ["Knife", "Spear", "Bow", "Arrows", "Slingshot", "Trident", "Mace", "Axe", "Sickle", "Blowgun"]
_ADJ = ["Rusty", "Sharp", "Old", "Silver", "Heavy", "Small", "Poisoned", "Broken", "Golden", "Wooden"]
_PROMPTS = [
    "You wake at the edge of the arena.\nThe cornucopia glints.",
    "A parachute lands nearby.",
    "Rain all night.",
    "The river is rising.",
    "You hear a cannon.",
    "Tracker jackers above you.",
    "Night falls. The anthem plays and the faces of the fallen light the sky.",
]


def tiny_png(seed: int) -> bytes:
    """A valid 1x1 RGB PNG whose colour depends on ``seed``."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(bytes([0, seed % 256, (seed // 256) % 256, 128]))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def item_text(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.25:
        uses = rng.randint(1, 3)
        return f"{rng.choice(_FOOD)} ({rng.randint(1, uses)}/{uses} uses.)"
    if kind < 0.4:
        return rng.choice(_WATER) + (f" ({rng.randint(1, 3)}/3 uses.)" if rng.random() < 0.5 else "")
    if kind < 0.75:
        return rng.choice(_TOOLS)
    weapon = rng.choice(_WEAPONS)
    return f"{rng.choice(_ADJ)} {weapon.lower()}" if rng.random() < 0.4 else weapon


def tribute_id(number: int) -> str:
    """Distinct ids in the bot's style: ``S<season>D<district><F|M>`` (e.g. ``S0042D7F``)."""
    season, rest = divmod(number, 24)
    district, sex = divmod(rest, 2)
    return f"S{season:04d}D{district + 1}{'FM'[sex]}"


@dataclass
class Generated:
    root: Path
    tributes: int
    items: int
    equipped: int
    prompts: int
    images: int

    @property
    def rows(self) -> int:
        """Rows a relational copy writes for the tributes: tributes + items + equipped items."""
        return self.tributes + self.items + self.equipped


def generate(root: Path, n: int, *, seed: int = 5) -> Generated:
    """Write the legacy directory for ``n`` tributes under ``root`` (created, must not exist)."""
    rng = random.Random(seed)
    root.mkdir(parents=True)
    for sub in ("config", "inventories", "prompts", "prompt_images"):
        (root / sub).mkdir()
    config = {
        str(GUILDS[0]): {"log_channel_id": 1395951855535788100, "category_id": 1395951855535788000},
        str(GUILDS[1]): {"log_channel_id": None, "category_id": 1402233445566700001},
    }
    (root / "config" / "config.json").write_text(json.dumps(config, indent=4))

    inventories: dict[str, object] = {}
    prompts: dict[str, object] = {}
    db_rows = []
    items = equipped = images = 0
    for number in range(n):
        tid = tribute_id(number)
        guild = GUILDS[0] if number % 3 else GUILDS[1]
        key = tid.lower() if number % 17 == 0 else tid  # older entries: lower-case keys
        entry: dict[str, object] = {
            "capacity": 10,
            "items": {str(i): item_text(rng) for i in range(1, ITEMS_PER_TRIBUTE + 1)},
        }
        items += ITEMS_PER_TRIBUTE
        if number % 4:  # older entries lack the equipped keys
            count = rng.choice((0, 0, 1, 2))
            entry["equipped_capacity"] = 5
            entry["equipped"] = {str(i): rng.choice(_WEAPONS) for i in range(1, count + 1)}
            equipped += count
        inventories[key] = entry
        created: object = (
            1770000000 + number * 37 if number % 2 else f"2026-02-{1 + number % 28:02d} 12:00:00"
        )
        db_rows.append((tid, f"Tribute {number}", 100000000000000000 + number, guild, created))
        if number % PROMPT_EVERY == 0:
            prompt: dict[str, object] = {
                "message": rng.choice(_PROMPTS),
                "channel": None if number % 7 == 0 else str(1395951855535788202 + number % 50),
            }
            if number % IMAGE_EVERY == 0:
                name = f"{tid}_{1770963114 + number}.png"
                folder = root / "prompt_images" / str(guild)
                folder.mkdir(exist_ok=True)
                (folder / name).write_bytes(tiny_png(number))
                prompt["image"] = name
                images += 1
            prompts[tid] = prompt

    (root / "inventories" / "inventories.json").write_text(json.dumps(inventories, indent=4))
    (root / "prompts" / "prompt_info.json").write_text(json.dumps(prompts, separators=(",", ":")))
    db = sqlite3.connect(root / "thgbot.db")
    with db:
        db.execute(
            "CREATE TABLE tributes (tribute_id TEXT UNIQUE, tribute_name TEXT, user_id INTEGER,"
            " user_mention TEXT, guild_id INTEGER, created_at)"
        )
        db.executemany(
            "INSERT INTO tributes (tribute_id, tribute_name, user_id, user_mention, guild_id, created_at)"
            " VALUES (?, ?, ?, '<@' || ? || '>', ?, ?)",
            [(t, name, user, user, g, c) for t, name, user, g, c in db_rows],
        )
    db.close()
    return Generated(root, n, items, equipped, len(prompts), images)


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        sys.exit("usage: python -m benchmarks.generate DIR N")
    made = generate(Path(argv[0]), int(argv[1]))
    print(made)


if __name__ == "__main__":
    main(sys.argv[1:])
