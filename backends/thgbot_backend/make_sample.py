"""Write the sample legacy THGBot data directory (``sample_legacy/``), every variant included.

Run ``python -m tributestore.backends.thgbot_backend.make_sample [TARGET]``;
without TARGET it rewrites the ``sample_legacy`` directory next to this file.
The output is deterministic.  What each entry exercises is noted beside it;
``tests/test_legacy.py`` checks the result.
"""

from __future__ import annotations

import base64
import json
import shutil
import sqlite3
import struct
import sys
import zlib
from pathlib import Path
from typing import Any

G1 = 1395951775160340551  # per-guild config/config.json
G2 = 1402233445566778899  # per-guild config/config.json, null log channel
G3 = 1288877766655544433  # only in the very old flat config.json

#: Absolute paths that exist on no machine: they show as missing-file warnings.
GONE_DIR = "/var/snap/thgbot/common/prompt_images"
OLD_DB_DIR = "/srv/thgbot/config/prompt_images"


def tiny_png(red: int, green: int, blue: int) -> bytes:
    """A valid 1x1 RGB PNG."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(bytes([0, red, green, blue]))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


#: A valid 1x1 baseline JPEG.
TINY_JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAP//////////////////////////////////////////////////////////"
    "////////////////////////////wgALCAABAAEBAREA/8QAFBABAAAAAAAAAAAAAAAAAAAAAP/aAAgBAQABPxA="
)
#: A 1x1 lossless WebP.
TINY_WEBP = bytes.fromhex(
    "524946461a000000574542505650384c0d0000002f0000001007101111888 8fe0700".replace(" ", "")
)
#: One silent MPEG-1 layer III frame (128 kbit/s, 44.1 kHz).
TINY_MP3 = b"\xff\xfb\x90\x64" + bytes(413)

CONFIG_PER_GUILD = {
    # mixed (class 5): the multi-guild bot loaded an old flat config and added its per-guild
    # entries to the same object; the per-guild entry of G3 wins over the stale flat values
    "log_channel_id": 1288877766655500001,
    "category_id": None,
    "guild_id": G3,
    str(G1): {"log_channel_id": 1395951855535788100, "category_id": 1395951855535788000},
    str(G2): {"log_channel_id": None, "category_id": 1402233445566700001},
    str(G3): {"log_channel_id": 1288877766655500002, "category_id": 1288877766655500003},
}
CONFIG_FLAT = {  # the very old single-guild format
    "log_channel_id": 1288877766655500001,
    "category_id": None,
    "guild_id": G3,
    "gm_id": 301234567890123456,
    "admin_id": 301234567890123457,
}

#: An item longer than the old 2,000-character limit (the bot's string options allow 6,000).
LETTER = "Letter from home: " + "Stay warm, eat what you find, come back to us. " * 52
#: A prompt grown by add-to-prompt past the old 20,000-character limit.
SAGA = "\n\n".join(f"Chapter {n}: the storm moves east and the careers follow." * 7 for n in range(1, 56))

INVENTORIES: dict[str, Any] = {
    # lower-case and upper-case keys of one tribute, different contents: merged
    "d1f": {
        "capacity": 10,
        "items": {"1": "Meat (2/2 uses.)", "2": "Canteen"},
        "equipped_capacity": 5,
        "equipped": {"1": "Knife"},
    },
    "D1F": {
        "capacity": 12,
        "items": {"1": "Rope", "2": "Sleeping bag"},
        "equipped_capacity": 4,
        "equipped": {"1": "Spear"},
    },
    "D1M": {"capacity": 10, "items": {"1": "Bread", "2": "Matches"}},  # no equipped keys
    "D2F": {  # gaps and "10" after "9"
        "capacity": 10,
        "items": {
            "1": "Bandage",
            "2": "Water (1/3 uses.)",
            "5": "Iodine",
            "10": "Night-vision glasses",
            "9": "Wire",
        },
        "equipped_capacity": 5,
        "equipped": {},
    },
    "D2M": {"capacity": 10, "items": {}, "equipped_capacity": 5, "equipped": {}},  # empty
    "d3f": {"capacity": 10, "items": {"1": "Slingshot"}},  # lower-case only
    "D3M": {  # a null item (class 8): skipped like an empty one
        "capacity": 10,
        "items": {"1": "Fishing line", "2": "Hook", "3": None},
        "equipped_capacity": 5,
        "equipped": {},
    },
    "D4F": {  # more items than the (soft) capacity
        "capacity": 10,
        "items": {str(n): f"Pebble #{n}" for n in range(1, 13)},
        "equipped_capacity": 5,
        "equipped": {"1": "Sling"},
    },
    "D5M": {
        "capacity": 12,
        "items": {"1": "Tent", "2": "Tarp"},
        "equipped_capacity": 3,
        "equipped": {"1": "Axe", "2": "Helmet"},
    },
    "D6F": {
        "capacity": 10,
        "items": {"1": "Berries (poison?)", "2": "Lucky charm"},
        "equipped_capacity": 5,
        "equipped": {},
    },
    "D6M": {"capacity": 10, "items": {}},
    "D8M": {  # realistic content (class 4): a 2,462-character item
        "capacity": 10,
        "items": {"1": "Map", "2": "Whistle", "3": "Flare", "4": LETTER},
    },
    "D10F": {"capacity": 10, "items": {"1": "Trident"}, "equipped_capacity": 5, "equipped": {"1": "Net"}},
    "Ivy Rose": {"capacity": 8, "items": {"1": "Hairpin"}},  # key as typed, with a space
    "OLD1": {"capacity": 10, "items": {"1": "Rusty key"}},  # a tribute known nowhere else
}

PROMPTS: dict[str, Any] = {
    "D1F": {  # list mixing names and an absolute path that exists nowhere
        "message": "You wake at the edge of the arena.\nThe cornucopia glints.",
        "channel": "1395951855535788202",
        "image": ["D1F_1770963114.png", f"{GONE_DIR}/{G1}/D1F_1699999999.png", "D1F_1770963114.mp3"],
    },
    "D1M": {
        "message": "A parachute lands nearby.",
        "channel": "1395951855535788203",
        "image": "D1M_1770963055.png",
    },
    "D2F": {  # guild by folder; '..' names no file (class 8): one warning
        "message": "Rain all night.",
        "channel": None,
        "image": ["D2F_1771000000.jpg", ".."],
    },
    "D2M": {},  # stub
    "D3F": {"message": "\n\n...", "image": "SPOILER_D3F the arena.png"},  # no channel; spaces
    "D3M": {"message": "The river is rising.", "channel": 0, "image": "D3M_1771111111.png"},  # file missing
    "d5m": {"message": "You hear a cannon.", "channel": "1402233445566700333"},  # collides with D5M
    "D5M": {"message": "Night falls.", "channel": "1402233445566700333"},
    "D7F": {  # single-guild era (class 3): the upload saved as prompt_images/<attachment name>
        "message": "Tracker jackers above you.",
        "channel": "1395951855535788207",
        "image": "tracker jackers.png",
    },
    "D12F": {"message": SAGA, "channel": "1288877766655500012"},  # class 4: over 20,000 characters
    "D10F": {"message": "Waves crash on the shore.", "channel": "1288877766655500010"},  # not D1F's
    "IVY_ROSE": {"message": "A sponsor gift arrives.", "channel": "1395951855535788204"},
    "EVENT1": {
        "message": "Feast at dawn at the cornucopia.",
        "channel": "1402233445566700777",
        "image": "EVENT1_1771200000.webp",
    },
    "FEAST_ANNOUNCEMENT": {"message": "Everyone needs something.", "channel": "0"},  # no guild known
}

IMAGES: dict[int, dict[str, bytes]] = {
    G1: {
        "D1F_1770963114.png": tiny_png(200, 30, 30),
        "D1F_1770963114.mp3": TINY_MP3,
        "D1M_1770963055.png": tiny_png(30, 200, 30),
        "SPOILER_D1F 6f_SEVEN.png": tiny_png(10, 10, 10),  # unreferenced, attaches to D1F
        "D2F_1771000000.jpg": TINY_JPEG,
        "D4F_1771500000.png": tiny_png(90, 90, 200),  # unreferenced, gives D4F its guild
        "D1F_face.jpg": TINY_JPEG,  # thgbot.db files row
        "ZZZ_1770000000.png": tiny_png(0, 0, 0),  # matches no tribute: kept under LEGACY_FILES
        "D5M.png": tiny_png(50, 50, 51),  # older naming; another D5M.png is in G2's folder (class 3)
    },
    G2: {
        "SPOILER_D3F the arena.png": tiny_png(1, 2, 3),
        "EVENT1_1771200000.webp": TINY_WEBP,
        "D6F_1771600000.png": tiny_png(4, 5, 6),  # unreferenced
        "D5M.png": tiny_png(50, 50, 52),  # same name as G1's, other bytes: both kept
    },
    0: {  # 0: prompt_images/ itself, the single-guild era (no guild folder)
        "tracker jackers.png": tiny_png(60, 60, 0),
    },
    G3: {
        "D11M_1771400000.png": tiny_png(7, 8, 9),  # thgbot.db prompt_images row (old absolute path)
        "D10F_1771300000.png": tiny_png(9, 9, 9),  # D10F's, not D1F's
        "banner.jpg": TINY_JPEG,  # matches no tribute
    },
}

SCHEMA = """
CREATE TABLE tributes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tribute_id TEXT NOT NULL UNIQUE,
    tribute_name TEXT NOT NULL,
    user_id INTEGER NOT NULL,
    user_mention TEXT NOT NULL,
    guild_id INTEGER,
    created_at INTEGER,
    face_claim_url TEXT,
    prompt_channel_id INTEGER
);
CREATE TABLE inventories (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tribute_id TEXT NOT NULL UNIQUE,
    capacity INTEGER DEFAULT 10
);
CREATE TABLE inventory_items (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tribute_id TEXT NOT NULL,
    item_number INTEGER NOT NULL,
    item_name TEXT NOT NULL
);
CREATE TABLE prompts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tribute_id TEXT NOT NULL UNIQUE,
    message TEXT NOT NULL,
    channel_id INTEGER,
    created_at INTEGER
);
CREATE TABLE prompt_images (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    prompt_id TEXT NOT NULL,
    file_path TEXT NOT NULL,
    created_at TIMESTAMP
);
CREATE TABLE files (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tribute_id TEXT NOT NULL,
    file_type TEXT,
    file_path TEXT NOT NULL,
    created_at TIMESTAMP
);
"""

# tribute_id, name, user_id, mention, guild_id (None = NULL), created_at (int or text), face, channel
TRIBUTES: list[tuple[Any, ...]] = [
    (
        "D1F",
        "Glimmer Vale",
        111111111111111101,
        "<@111111111111111101>",
        G1,
        1752999000,
        "https://example.invalid/fc/d1f.png",
        1395951855535788202,
    ),
    (
        "D1M",
        "Marvel Stone",
        111111111111111102,
        "<@111111111111111102>",
        G1,
        "2025-07-20 14:03:11",
        None,
        None,
    ),
    (
        "D2F",
        "Clove Ash",
        111111111111111103,
        "<@111111111111111103>",
        None,
        "2025-07-21T09:15:00",
        None,
        None,
    ),
    ("D2M", "Cato Flint", 111111111111111104, "<@111111111111111104>", G1, 1753100000, None, None),
    ("d4f", "Foxface Reed", 111111111111111105, "<@111111111111111105>", None, 1753200000, None, None),
    ("D3M", "Thresh Field", 111111111111111106, "<@111111111111111106>", G2, "1753300000", None, None),
    ("D5M", "Bram Ridge", 111111111111111107, "<@111111111111111107>", G2, 1753400000, None, None),
    ("D6F", "Willow Fen", 111111111111111108, "<@111111111111111108>", G2, "2025-07-25 08:00:00", None, None),
    ("D6M", "Hale Birch", 111111111111111109, "<@111111111111111109>", G2, 1753500000, None, None),
    ("D7F", "Juniper Moss", 111111111111111110, "<@111111111111111110>", G1, 1753600000, None, None),
    # class 2: a row of the same tribute differing in case and content; 'D7F' is what the bot showed
    ("d7f", "Juniper M.", 111111111111111199, "<@111111111111111199>", G1, 1753600001, None, None),
    ("IVY_ROSE", "Ivy Rose", 111111111111111111, "<@111111111111111111>", G1, 1753700000, None, None),
    (
        "D8M",
        "Oren Slate",
        111111111111111112,
        "<@111111111111111112>",
        G3,
        "2025-07-28 10:30:00+02:00",
        None,
        None,
    ),
    ("D10F", "Maris Tide", 111111111111111113, "<@111111111111111113>", G3, 1753800000, None, None),
    ("D11M", "Rye Kettle", 111111111111111114, "<@111111111111111114>", G3, 1753900000, None, None),
    ("D12F", "Sorrel Quill", 111111111111111115, "<@111111111111111115>", G3, 1754000000, None, None),
]


def write_db(path: Path) -> None:
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    try:
        conn.executescript(SCHEMA)
        conn.executemany(
            "INSERT INTO tributes (tribute_id, tribute_name, user_id, user_mention, guild_id, created_at,"
            " face_claim_url, prompt_channel_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            TRIBUTES,
        )
        conn.executemany(
            "INSERT INTO prompts (tribute_id, message, channel_id, created_at) VALUES (?, ?, ?, ?)",
            [
                ("D1F", "You wake at the edge of the arena.", 1395951855535788202, 1770963114),  # differs
                ("D6F", "Fog rolls over the lake.", 1402233445566700444, 1771600000),  # only here
                ("D11M", "The gamemakers set the woods on fire.", 1288877766655500011, "2026-02-18 08:00:00"),
            ],
        )
        conn.execute(
            "INSERT INTO prompt_images (prompt_id, file_path, created_at) VALUES (?, ?, ?)",
            ("D11M", f"{OLD_DB_DIR}/{G3}/D11M_1771400000.png", "2026-02-18 08:00:00"),
        )
        conn.execute(
            "INSERT INTO files (tribute_id, file_type, file_path, created_at) VALUES (?, ?, ?, ?)",
            ("D1F", "face_claim", f"prompt_images/{G1}/D1F_face.jpg", 1753000000),
        )
        conn.executemany(
            "INSERT INTO inventories (tribute_id, capacity) VALUES (?, ?)", [("D12F", 6), ("D1M", 10)]
        )
        conn.executemany(
            "INSERT INTO inventory_items (tribute_id, item_number, item_name) VALUES (?, ?, ?)",
            [("D12F", 2, "Flint"), ("D12F", 1, "Compass"), ("D1M", 1, "Bread")],
        )
        conn.commit()
    finally:
        conn.close()


def write_sample(target: Path) -> None:
    """Write the whole sample directory into ``target`` (replacing an earlier sample there)."""
    if target.exists():
        if any(target.iterdir()) and not (target / "inventories" / "inventories.json").exists():
            raise SystemExit(f"{target} exists and is not a sample legacy directory; not touching it")
        shutil.rmtree(target)
    (target / "config").mkdir(parents=True)
    (target / "inventories").mkdir()
    (target / "prompts").mkdir()
    (target / "config" / "config.json").write_text(json.dumps(CONFIG_PER_GUILD, indent=4) + "\n")
    (target / "config.json").write_text(json.dumps(CONFIG_FLAT, indent=4) + "\n")
    (target / "inventories" / "inventories.json").write_text(json.dumps(INVENTORIES, indent=4) + "\n")
    (target / "prompts" / "prompt_info.json").write_text(json.dumps(PROMPTS, separators=(",", ":")))
    for guild_id, files in IMAGES.items():
        folder = target / "prompt_images" / (str(guild_id) if guild_id else "")
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (folder / name).write_bytes(data)
    write_db(target / "thgbot.db")


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0]) if args else Path(__file__).resolve().parent / "sample_legacy"
    write_sample(target)
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
