"""Every StoryBot button and menu is a stateless DynamicItem: its custom_id says what it does.

`storybot:<action>:<args>` (buttons) and `storybot-menu:<action>:<args>` (select
menus) survive restarts (no view state to lose) and are checked on every press:
a handler validates its arguments and its caller's rights, so a forged or stale
id gets a polite refusal, never an action. Cogs register a handler per action on
the bot (`button_handlers`, `menu_handlers`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import discord

from bot.adapter.replies import BUTTON_LABEL_MAX, clip, send_kwargs

if TYPE_CHECKING:
    from bot.adapter.client import StoryBot

log = logging.getLogger(__name__)

Handler = Callable[[discord.Interaction[Any], str], Awaitable[None]]
MenuHandler = Callable[[discord.Interaction[Any], str, list[str]], Awaitable[None]]
PREFIX = "storybot"
MENU_PREFIX = "storybot-menu"
STALE = "That button doesn't work any more. Ask again to get a fresh one."


class StoryButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=re.compile(r"storybot:(?P<action>[a-z]{1,16})(?::(?P<args>[^\s]{0,86}))?"),
):
    """A button whose action and arguments live in its custom_id."""

    def __init__(
        self,
        action: str,
        args: str = "",
        *,
        label: str | None = None,
        style: discord.ButtonStyle = discord.ButtonStyle.secondary,
        emoji: str | None = None,
        row: int | None = None,
    ) -> None:
        custom_id = f"{PREFIX}:{action}:{args}" if args else f"{PREFIX}:{action}"
        super().__init__(
            discord.ui.Button(
                label=clip(label, BUTTON_LABEL_MAX) if label else None,
                style=style,
                emoji=emoji,
                custom_id=custom_id,
                row=row,
            )
        )
        self.action = action
        self.args = args

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> StoryButton:
        label = item.label if isinstance(item, discord.ui.Button) else None
        return cls(match["action"], match["args"] or "", label=label)

    async def callback(self, interaction: discord.Interaction[StoryBot]) -> None:  # type: ignore[override]
        handler = interaction.client.button_handlers.get(self.action)
        if handler is None:
            await interaction.response.send_message(**send_kwargs(content=STALE, ephemeral=True))
            return
        await handler(interaction, self.args)


class StoryMenu(
    discord.ui.DynamicItem[discord.ui.Select[Any]],
    template=re.compile(r"storybot-menu:(?P<action>[a-z]{1,16})(?::(?P<args>[^\s]{0,80}))?"),
):
    """A one-choice select menu whose action and arguments live in its custom_id."""

    def __init__(
        self,
        action: str,
        args: str = "",
        *,
        options: list[discord.SelectOption] | None = None,
        placeholder: str | None = None,
        row: int | None = None,
    ) -> None:
        custom_id = f"{MENU_PREFIX}:{action}:{args}" if args else f"{MENU_PREFIX}:{action}"
        super().__init__(
            discord.ui.Select(
                custom_id=custom_id,
                options=options or [],
                placeholder=clip(placeholder, 150) if placeholder else None,
                row=row,
            )
        )
        self.action = action
        self.args = args

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> StoryMenu:
        options = item.options if isinstance(item, discord.ui.Select) else []
        return cls(match["action"], match["args"] or "", options=options)

    async def callback(self, interaction: discord.Interaction[StoryBot]) -> None:  # type: ignore[override]
        handler = interaction.client.menu_handlers.get(self.action)
        if handler is None:
            await interaction.response.send_message(**send_kwargs(content=STALE, ephemeral=True))
            return
        await handler(interaction, self.args, list(self.item.values))


def option(label: str, value: str, description: str | None = None) -> discord.SelectOption:
    """A menu choice within Discord's limits (100 characters each)."""
    return discord.SelectOption(
        label=clip(label, 100), value=value[:100], description=clip(description, 100) if description else None
    )


def view_of(*items: StoryButton | StoryMenu) -> discord.ui.View:
    """A view holding some buttons and menus (never timing out: they carry their own state)."""
    view = discord.ui.View(timeout=None)
    for item in items:
        view.add_item(item)
    return view


def is_ours(custom_id: str) -> bool:
    """Whether a custom_id has the form of one of our buttons or menus."""
    return any(
        cls.__discord_ui_compiled_template__.fullmatch(custom_id) is not None
        for cls in (StoryButton, StoryMenu)
    )
