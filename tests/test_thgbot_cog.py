"""examples/thgbot_cog.py: every slash command, on sqlite, json and composite, without a network.

The app-command callbacks are invoked directly with a minimal stand-in
interaction that records the replies; the assertions check the replies and the
stored data.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from helpers import local_store_url

discord = pytest.importorskip("discord")

from tributestore import open_store  # noqa: E402
from tributestore.aio import AsyncTributeStore, open_async_store  # noqa: E402

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "thgbot_cog.py"
GUILD = 1395951775160340551
CHANNEL = 1395951855535788202
BACKENDS = [pytest.param(name, marks=pytest.mark.backend(name)) for name in ("sqlite", "json", "composite")]


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("thgbot_cog", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cog_module = _load_example()


store_url = local_store_url


# ------------------------------------------------------------- stand-ins


@dataclass
class User:
    id: int
    name: str = "gamemaker"

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"


@dataclass
class Attachment:
    filename: str
    data: bytes
    fail: bool = False

    async def read(self) -> bytes:
        if self.fail:
            raise OSError("connection reset while downloading the attachment")
        return self.data


@dataclass
class Reply:
    content: str
    ephemeral: bool
    files: list[tuple[str, bytes]]


@dataclass
class Response:
    sent: list[Reply] = field(default_factory=list)

    async def send_message(
        self, content: str | None = None, *, ephemeral: bool = False, files: Any = (), **_: Any
    ) -> None:
        assert not self.sent, "an interaction is answered once"
        self.sent.append(Reply(content or "", ephemeral, [(f.filename, f.fp.read()) for f in files]))


@dataclass
class Interaction:
    guild_id: int | None = GUILD
    user: User = field(default_factory=lambda: User(900))
    channel_id: int | None = CHANNEL
    command: Any = None
    response: Response = field(default_factory=Response)


class Bot:
    """Drives the cog's callbacks, one stand-in interaction per command."""

    def __init__(self, cog: Any) -> None:
        self.cog = cog

    async def __call__(self, command: str, *args: Any, guild_id: int | None = GUILD, **kwargs: Any) -> Reply:
        interaction = Interaction(guild_id=guild_id)
        callback: Callable[..., Awaitable[None]] = getattr(type(self.cog), command).callback
        await callback(self.cog, interaction, *args, **kwargs)
        [reply] = interaction.response.sent
        assert reply.ephemeral
        assert "Traceback" not in reply.content and len(reply.content) <= 2000
        return reply


def _cog(store: AsyncTributeStore) -> Any:
    bot = discord.ext.commands.Bot(command_prefix="!", intents=discord.Intents.none())
    return cog_module.THGBotCog(bot, store)


def _error(reply: Reply, *fragments: str) -> None:
    assert reply.content.startswith("❌ "), reply.content
    assert len(reply.content) <= 300, reply.content
    for fragment in fragments:
        assert fragment in reply.content, reply.content


# ------------------------------------------------------------------ tests


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_command_on_each_backend(tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    url = store_url(backend, tmp_path)
    monkeypatch.setenv("TRIBUTESTORE_URL", url)  # the backend comes from configuration only

    async def main() -> None:
        store = await open_async_store()
        run = Bot(_cog(store))
        reply = await run("tribute_create", "d1f", "Glimmer Vale", User(42))
        assert reply.content == "✅ Created tribute D1F (Glimmer Vale) for <@42>."
        await run("tribute_create", "D2M", "Cato Flint")  # the player defaults to the caller
        _error(await run("tribute_create", "D1F", "Again"), "already exists")

        reply = await run("inventory_create", "D1F", 3, 1)
        assert reply.content == "✅ Inventory of D1F: 3 slots, 1 equipped."
        for item in ("Rope", "Meat (2/2 uses.)", "Hunting knife"):
            assert (await run("inventory_add", "D1F", item)).content.startswith(f"✅ Added {item!r} to D1F")
        _error(await run("inventory_add", "D1F", "Canteen"), "full", "3/3")
        reply = await run("inventory_remove", "D1F", 1)
        assert reply.content == "✅ Removed 'Rope' (item 1); the items after it moved up."
        _error(await run("inventory_remove", "D1F", 0), "no item 0")
        _error(await run("inventory_remove", "D1F", 99), "no item 99")
        assert (await run("inventory_equip", "D1F", 2)).content == "⚔️ Equipped 'Hunting knife' as E1."
        _error(await run("inventory_equip", "D1F", 1), "full")
        assert (await run("inventory_add", "D2M", "Spear", True)).content.endswith("as equipped item E1.")
        reply = await run("inventory_get", "D1F")
        assert reply.content.splitlines() == [
            "Inventory of D1F",
            "⚔️ Equipped (1/1)",
            "E1. Hunting knife",
            "📦 Inventory (1/3)",
            "1. Meat (2/2 uses.)",
        ]
        reply = await run("inventory_search", "KNIFE")
        assert reply.content.splitlines() == ["🔎 'KNIFE': 1 found", "D1F E1: Hunting knife"]
        assert (
            await run("inventory_unequip", "D1F", 1)
        ).content == "📦 Unequipped 'Hunting knife' as item 2."
        _error(await run("inventory_unequip", "D1F", 1), "no item 1")
        _error(await run("inventory_search", "  "), "non-empty")
        _error(await run("inventory_create", "D1F", -1), "capacity")
        _error(await run("inventory_get", "D9M"), "D9M", "not found")

        image = Attachment("arena.PNG", b"\x89PNG arena")
        reply = await run("prompt_set", "D1F", "The arena opens.", image)
        assert reply.content.startswith("💬 Saved the prompt of D1F with D1F_") and reply.content.endswith(
            ".png."
        )
        name = reply.content.removeprefix("💬 Saved the prompt of D1F with ").removesuffix(".")
        reply = await run("prompt_view", "d1f")
        assert reply.content == f"💬 Prompt of D1F (for <#{CHANNEL}>):\nThe arena opens."
        assert reply.files == [(name, b"\x89PNG arena")]
        _error(await run("prompt_view", "D2M"), "no prompt")
        _error(await run("prompt_set", "D9M", "Hello", image), "D9M", "not found")
        # a failed download is a short message, and nothing was changed
        reply = await run("prompt_set", "D1F", "Replaced?", Attachment("x.png", b"", fail=True))
        assert reply.content == "❌ Something went wrong; the error was logged."

        reply = await run("tribute_show", "D1F")
        assert reply.content.splitlines()[0] == "👤 D1F — Glimmer Vale (<@42>)"
        assert reply.content.splitlines()[-1] == "💬 Prompt: set; 📁 files: 1"

        assert (await run("inventory_clear", "D1F")).content == "🧹 Cleared the inventory of D1F."
        assert (
            await run("prompt_clear", "D1F")
        ).content == "🗑️ Cleared the prompt of D1F (1 image(s) deleted)."
        _error(await run("prompt_clear", "D1F"), "no prompt")
        _error(await run("inventory_get", "D1F", guild_id=None), "in a server")

        # the stored data, through the sync API of a fresh store
        await store.close()
        with open_store(url) as reopened:
            assert reopened.get_inventory(GUILD, "D1F").items == []
            assert reopened.get_inventory(GUILD, "D2M").equipped == ["Spear"]
            assert reopened.list_files(GUILD, "D1F") == []
            assert reopened.get_tribute(GUILD, "D2M").user_id == 900
        store = await open_async_store()
        run = Bot(_cog(store))
        reply = await run("tribute_delete", "D2M")
        assert reply.content == "🗑️ Deleted tribute D2M with its inventory, prompt and files."
        _error(await run("tribute_show", "D2M"), "not found")
        assert [t.tribute_id for t in await store.iter_tributes(GUILD)] == ["D1F"]
        await run.cog.cog_unload()
        assert store.closed

    asyncio.run(main())


@pytest.mark.parametrize("backend", BACKENDS)
def test_replacing_a_prompt_image_keeps_one_file(tmp_path: Path, backend: str) -> None:
    async def main() -> None:
        async with open_async_store(store_url(backend, tmp_path)) as store:
            run = Bot(_cog(store))
            await run("tribute_create", "D1F", "Glimmer")
            await run("prompt_set", "D1F", "One", Attachment("a.png", b"one"))
            await run("prompt_set", "D1F", "Two", Attachment("b.jpg", b"two"))
            files = await store.list_files(GUILD, "D1F")
            assert [(f.name.endswith(".jpg"), f.kind) for f in files] == [(True, "prompt_image")]
            reply = await run("prompt_set", "D1F", "Text only")
            assert reply.content == "💬 Saved the prompt of D1F."
            assert await store.list_files(GUILD, "D1F") == []
            view = await run("prompt_view", "D1F")
            assert view.files == [] and view.content.endswith("Text only")

    asyncio.run(main())


def test_the_cog_registers_the_slash_commands() -> None:
    names = {
        (group.name, command.name)
        for group in (
            cog_module.THGBotCog.tribute,
            cog_module.THGBotCog.inventory,
            cog_module.THGBotCog.prompt,
        )
        for command in group.commands
    }
    assert names == {
        ("tribute", "create"),
        ("tribute", "show"),
        ("tribute", "delete"),
        *(
            ("inventory", n)
            for n in ("create", "get", "add", "remove", "equip", "unequip", "clear", "search")
        ),
        ("prompt", "set"),
        ("prompt", "view"),
        ("prompt", "clear"),
    }
    image = cog_module.THGBotCog.prompt_set.parameters[-1]
    assert image.name == "image" and image.type is discord.AppCommandOptionType.attachment
    assert not image.required
