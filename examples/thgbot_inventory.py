"""A THGBot-style bot module that gets its store only from configuration.

The bot never names a backend: ``open_store()`` reads ``TRIBUTESTORE_URL`` or
``tributestore.toml`` (a plain SQLite file, a JSON directory, or the composite
of the two during the migration window).  Run it as a script to play the
usual gamemaker commands once:

    TRIBUTESTORE_URL=sqlite:///thg.db python examples/thgbot_inventory.py 1234 D1F
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from tributestore import CapacityError, NotFoundError, TributeStore, open_store


@dataclass
class InventoryCommands:
    """The bot's commands, each a thin call on the configured store."""

    store: TributeStore

    def create(self, guild_id: int, tribute_id: str, name: str, user_id: int) -> str:
        tribute = self.store.create_tribute(
            guild_id, tribute_id, name=name, user_id=user_id, user_mention=f"<@{user_id}>"
        )
        return f"Created tribute {tribute.tribute_id} ({tribute.name})"

    def add(self, guild_id: int, tribute_id: str, item: str) -> str:
        try:
            inventory = self.store.add_item(guild_id, tribute_id, item)
        except CapacityError as error:
            return f"Cannot add {item!r}: {error}"
        return f"Added {item!r} as item {len(inventory.items)}"

    def remove(self, guild_id: int, tribute_id: str, number: int) -> str:
        try:
            return f"Removed {self.store.remove_item(guild_id, tribute_id, number)!r}"
        except NotFoundError as error:
            return str(error)

    def show(self, guild_id: int, tribute_id: str) -> str:
        inventory = self.store.get_inventory(guild_id, tribute_id)
        lines = [f"{n}. {item}" for n, item in inventory.numbered().items()]
        lines += [f"E{n}. {item}" for n, item in inventory.numbered("equipped").items()]
        return "\n".join(lines) or "(empty)"

    def search(self, guild_id: int, query: str) -> list[str]:
        return [
            f"{hit.tribute_id} #{hit.number}: {hit.item}" for hit in self.store.search_items(query, guild_id)
        ]

    def save_prompt(self, guild_id: int, tribute_id: str, message: str, channel_id: int, image: bytes) -> str:
        name = f"{tribute_id.upper()}_1700000000.png"
        self.store.add_file(guild_id, tribute_id, name, image, kind="prompt_image", replace=True)
        self.store.set_prompt(guild_id, tribute_id, message, channel_id=channel_id, files=[name])
        return f"Saved prompt for {tribute_id.upper()} with {name}"


def play(store: TributeStore, guild_id: int, tribute_id: str) -> list[str]:
    """One round of the usual commands; returns what the bot would reply."""
    bot = InventoryCommands(store)
    return [
        bot.create(guild_id, tribute_id, "Example Tribute", 123456789012345678),
        bot.add(guild_id, tribute_id, "Meat (2/2 uses.)"),
        bot.add(guild_id, tribute_id, "Canteen"),
        bot.add(guild_id, tribute_id, "Hunting knife"),
        bot.remove(guild_id, tribute_id, 2),
        bot.show(guild_id, tribute_id),
        *bot.search(guild_id, "KNIFE"),
        bot.save_prompt(guild_id, tribute_id, "The arena opens.", 1395951855535788202, b"\x89PNG\r\n"),
    ]


def main(argv: list[str]) -> int:
    guild_id, tribute_id = int(argv[1]), argv[2]
    with open_store() as store:
        for reply in play(store, guild_id, tribute_id):
            print(reply)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
