"""A discord.py 2.x cog with THGBot's gamemaker slash commands on the async store.

The cog never names a backend: :func:`tributestore.aio.open_async_store` reads
``TRIBUTESTORE_URL`` or ``tributestore.toml`` (SQLite, a JSON directory, the
composite of the two during the migration window, PostgreSQL).  Every store
call runs off the event loop (see :mod:`tributestore.aio`), and every error a
user can cause (unknown tribute, full inventory, bad item number, bad input)
comes back to them as a short ephemeral message, never a traceback.

Commands (all replies are ephemeral, for the gamemakers)::

    /tribute create|show|delete
    /inventory create|get|add|remove|equip|unequip|clear|search
    /prompt set|view|clear          (set takes an optional image attachment)

Load it as an extension (``await bot.load_extension("thgbot_cog")`` with
``examples/`` on ``sys.path``), or run it directly (needs ``pip install
"tributestore[discord]"``)::

    DISCORD_TOKEN=... TRIBUTESTORE_URL=sqlite:///thg.db python examples/thgbot_cog.py

Restrict the commands to gamemakers in the server's Integrations settings, or
add an ``app_commands.checks.has_role("Gamemaker")`` to each group.
"""

from __future__ import annotations

import io
import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import PurePosixPath

import discord
from discord import app_commands
from discord.ext import commands

from tributestore import Inventory, NotFoundError, TributeStore, TributeStoreError
from tributestore.aio import AsyncTributeStore, open_async_store

log = logging.getLogger(__name__)

#: Discord's limit on a message's length.
MAX_MESSAGE = 2000
#: Longest error text shown to a user.
MAX_ERROR = 300


class NotInGuild(Exception):
    """A command used outside a server (tributes belong to a server)."""


def _guild(interaction: discord.Interaction) -> int:
    if interaction.guild_id is None:
        raise NotInGuild
    return interaction.guild_id


async def _reply(
    interaction: discord.Interaction, content: str, *, files: list[discord.File] | None = None
) -> None:
    if len(content) > MAX_MESSAGE:
        content = content[: MAX_MESSAGE - 1] + "…"
    await interaction.response.send_message(content, ephemeral=True, files=files or [])


@asynccontextmanager
async def _answering_errors(interaction: discord.Interaction) -> AsyncIterator[None]:
    """Turn an error inside a command into a short ephemeral reply (and a log line)."""
    try:
        yield
    except NotInGuild:
        await _reply(interaction, "❌ Use this command in a server.")
    except TributeStoreError as error:
        text = str(error)
        await _reply(interaction, "❌ " + (text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 1] + "…"))
    except Exception:  # the user gets a line, the log gets the traceback
        log.exception("command %s failed", getattr(interaction.command, "qualified_name", "?"))
        await _reply(interaction, "❌ Something went wrong; the error was logged.")


def _inventory_text(inventory: Inventory) -> str:
    equipped = [f"E{n}. {item}" for n, item in inventory.numbered("equipped").items()]
    items = [f"{n}. {item}" for n, item in inventory.numbered().items()]
    return "\n".join(
        [
            f"⚔️ Equipped ({len(inventory.equipped)}/{inventory.equipped_capacity})",
            *(equipped or ["(none)"]),
            f"📦 Inventory ({len(inventory.items)}/{inventory.capacity})",
            *(items or ["(empty)"]),
        ]
    )


def _image_name(tribute_id: str, filename: str) -> str:
    """THGBot's prompt image names: ``D1F_1770963114.png``."""
    suffix = PurePosixPath(filename).suffix.lower()
    if not suffix[1:].isalnum() or len(suffix) > 8:
        suffix = ""
    return f"{tribute_id}_{int(time.time())}{suffix}"


class THGBotCog(commands.Cog):
    """Tributes, inventories and prompts, on an :class:`AsyncTributeStore`."""

    tribute = app_commands.Group(name="tribute", description="Create, show and delete tributes")
    inventory = app_commands.Group(name="inventory", description="Tribute inventories")
    prompt = app_commands.Group(name="prompt", description="Tribute prompts")

    def __init__(self, bot: commands.Bot, store: AsyncTributeStore) -> None:
        self.bot = bot
        self.store = store

    async def cog_unload(self) -> None:
        await self.store.close()

    # -------------------------------------------------------------- tribute
    @tribute.command(name="create", description="Create a tribute (with an empty inventory)")
    @app_commands.describe(tribute_id="e.g. D1F", name="The tribute's name", user="The player (default: you)")
    async def tribute_create(
        self,
        interaction: discord.Interaction,
        tribute_id: str,
        name: str,
        user: discord.User | None = None,
    ) -> None:
        async with _answering_errors(interaction):
            player = user or interaction.user
            tribute = await self.store.create_tribute(
                _guild(interaction), tribute_id, name=name, user_id=player.id, user_mention=player.mention
            )
            await _reply(
                interaction, f"✅ Created tribute {tribute.tribute_id} ({name}) for {player.mention}."
            )

    @tribute.command(name="show", description="Show a tribute with its inventory and prompt")
    async def tribute_show(self, interaction: discord.Interaction, tribute_id: str) -> None:
        async with _answering_errors(interaction):
            bundle = await self.store.export_tribute(_guild(interaction), tribute_id)
            tribute = bundle.tribute
            lines = [
                f"👤 {tribute.tribute_id} — {tribute.name or '(no name)'} "
                f"({tribute.user_mention or 'no player'})",
                _inventory_text(bundle.inventory),
                f"💬 Prompt: {'set' if bundle.prompt else 'none'}; 📁 files: {len(bundle.files)}",
            ]
            await _reply(interaction, "\n".join(lines))

    @tribute.command(name="delete", description="Delete a tribute and everything it owns")
    async def tribute_delete(self, interaction: discord.Interaction, tribute_id: str) -> None:
        async with _answering_errors(interaction):
            guild = _guild(interaction)
            tribute = await self.store.get_tribute(guild, tribute_id)
            await self.store.delete_tribute(guild, tribute.tribute_id)
            await _reply(
                interaction, f"🗑️ Deleted tribute {tribute.tribute_id} with its inventory, prompt and files."
            )

    # ------------------------------------------------------------ inventory
    @inventory.command(name="create", description="Set a tribute's inventory capacities")
    async def inventory_create(
        self,
        interaction: discord.Interaction,
        tribute_id: str,
        capacity: int = 10,
        equipped_capacity: int = 5,
    ) -> None:
        async with _answering_errors(interaction):
            inventory = await self.store.set_capacity(
                _guild(interaction), tribute_id, capacity=capacity, equipped_capacity=equipped_capacity
            )
            await _reply(
                interaction,
                f"✅ Inventory of {inventory.tribute_id}: {inventory.capacity} slots, "
                f"{inventory.equipped_capacity} equipped.",
            )

    @inventory.command(name="get", description="View a tribute's inventory")
    async def inventory_get(self, interaction: discord.Interaction, tribute_id: str) -> None:
        async with _answering_errors(interaction):
            inventory = await self.store.get_inventory(_guild(interaction), tribute_id)
            await _reply(interaction, f"Inventory of {inventory.tribute_id}\n{_inventory_text(inventory)}")

    @inventory.command(name="add", description="Add an item to the inventory (or the equipped section)")
    async def inventory_add(
        self, interaction: discord.Interaction, tribute_id: str, item: str, equipped: bool = False
    ) -> None:
        async with _answering_errors(interaction):
            inventory = await self.store.add_item(_guild(interaction), tribute_id, item, equipped=equipped)
            where = (
                f"equipped item E{len(inventory.equipped)}" if equipped else f"item {len(inventory.items)}"
            )
            await _reply(interaction, f"✅ Added {item!r} to {inventory.tribute_id} as {where}.")

    @inventory.command(name="remove", description="Remove an item by its number")
    async def inventory_remove(self, interaction: discord.Interaction, tribute_id: str, number: int) -> None:
        async with _answering_errors(interaction):
            removed = await self.store.remove_item(_guild(interaction), tribute_id, number)
            await _reply(interaction, f"✅ Removed {removed!r} (item {number}); the items after it moved up.")

    @inventory.command(name="equip", description="Move an item to the equipped section")
    async def inventory_equip(self, interaction: discord.Interaction, tribute_id: str, number: int) -> None:
        async with _answering_errors(interaction):
            inventory = await self.store.equip_item(_guild(interaction), tribute_id, number)
            await _reply(interaction, f"⚔️ Equipped {inventory.equipped[-1]!r} as E{len(inventory.equipped)}.")

    @inventory.command(name="unequip", description="Move an equipped item back to the inventory")
    async def inventory_unequip(self, interaction: discord.Interaction, tribute_id: str, number: int) -> None:
        async with _answering_errors(interaction):
            inventory = await self.store.unequip_item(_guild(interaction), tribute_id, number)
            await _reply(
                interaction, f"📦 Unequipped {inventory.items[-1]!r} as item {len(inventory.items)}."
            )

    @inventory.command(name="clear", description="Remove every item and equipped item")
    async def inventory_clear(self, interaction: discord.Interaction, tribute_id: str) -> None:
        async with _answering_errors(interaction):
            inventory = await self.store.clear_inventory(_guild(interaction), tribute_id)
            await _reply(interaction, f"🧹 Cleared the inventory of {inventory.tribute_id}.")

    @inventory.command(name="search", description="Which tributes hold an item")
    async def inventory_search(self, interaction: discord.Interaction, query: str) -> None:
        async with _answering_errors(interaction):
            hits = await self.store.search_items(query, _guild(interaction))
            lines = [
                f"{hit.tribute_id} {'E' if hit.slot == 'equipped' else '#'}{hit.number}: {hit.item}"
                for hit in hits
            ]
            await _reply(interaction, "\n".join([f"🔎 {query!r}: {len(hits)} found", *lines]))

    # --------------------------------------------------------------- prompt
    @prompt.command(name="set", description="Set a tribute's prompt, with an optional image")
    async def prompt_set(
        self,
        interaction: discord.Interaction,
        tribute_id: str,
        message: str,
        image: discord.Attachment | None = None,
    ) -> None:
        async with _answering_errors(interaction):
            guild = _guild(interaction)
            tribute = await self.store.get_tribute(guild, tribute_id)
            tid = tribute.tribute_id
            data = await image.read() if image is not None else None
            name = _image_name(tid, image.filename) if image is not None else None
            channel = tribute.prompt_channel_id or interaction.channel_id

            def save(store: TributeStore) -> None:  # one transaction: image and prompt, or neither
                old = _prompt_files(store, guild, tid)
                if data is not None and name is not None:
                    store.add_file(guild, tid, name, data, kind="prompt_image", replace=True)
                store.set_prompt(guild, tid, message, channel_id=channel, files=[name] if name else [])
                for stale in old - {name}:
                    store.delete_file(guild, tid, stale)

            await self.store.run_in_transaction(save)
            attached = f" with {name}" if name else ""
            await _reply(interaction, f"💬 Saved the prompt of {tid}{attached}.")

    @prompt.command(name="view", description="Show a tribute's prompt and its images")
    async def prompt_view(self, interaction: discord.Interaction, tribute_id: str) -> None:
        async with _answering_errors(interaction):
            guild = _guild(interaction)
            prompt = await self.store.get_prompt(guild, tribute_id)
            files = [
                discord.File(io.BytesIO(await self.store.read_file(guild, prompt.tribute_id, name)), name)
                for name in prompt.files
            ]
            channel = f" (for <#{prompt.channel_id}>)" if prompt.channel_id else ""
            await _reply(
                interaction, f"💬 Prompt of {prompt.tribute_id}{channel}:\n{prompt.message}", files=files
            )

    @prompt.command(name="clear", description="Delete a tribute's prompt and its images")
    async def prompt_clear(self, interaction: discord.Interaction, tribute_id: str) -> None:
        async with _answering_errors(interaction):
            guild = _guild(interaction)
            tid = (await self.store.get_tribute(guild, tribute_id)).tribute_id

            def clear(store: TributeStore) -> int:
                names = _prompt_files(store, guild, tid)
                store.delete_prompt(guild, tid)
                for name in names:
                    store.delete_file(guild, tid, name)
                return len(names)

            count = await self.store.run_in_transaction(clear)
            await _reply(interaction, f"🗑️ Cleared the prompt of {tid} ({count} image(s) deleted).")


def _prompt_files(store: TributeStore, guild_id: int, tribute_id: str) -> set[str]:
    """Names of the stored files the tribute's prompt shows (none without a prompt)."""
    try:
        prompt = store.get_prompt(guild_id, tribute_id)
    except NotFoundError:
        return set()
    stored = {info.name for info in store.list_files(guild_id, tribute_id)}
    return set(prompt.files) & stored


async def setup(bot: commands.Bot) -> None:
    """Extension entry point: the configured store, closed when the cog unloads."""
    await bot.add_cog(THGBotCog(bot, await open_async_store()))


def main() -> None:
    logging.basicConfig(level=logging.INFO)

    class Bot(commands.Bot):
        async def setup_hook(self) -> None:
            await setup(self)
            await self.tree.sync()

    Bot(command_prefix="!", intents=discord.Intents.default()).run(os.environ["DISCORD_TOKEN"])


if __name__ == "__main__":
    main()
