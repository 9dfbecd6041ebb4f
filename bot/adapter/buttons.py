"""Every StoryBot button is one stateless DynamicItem: its custom_id says what it does.

`storybot:<action>:<args>` ids survive restarts (no view state to lose) and
are checked on every press: a handler validates its arguments and its
caller's rights, so a forged or stale id gets a polite refusal, never an
action. Cogs register a handler per action on the bot.
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
PREFIX = "storybot"
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
        item: discord.ui.Button[Any],
        match: re.Match[str],
        /,
    ) -> StoryButton:
        return cls(match["action"], match["args"] or "", label=item.label)

    async def callback(self, interaction: discord.Interaction[StoryBot]) -> None:
        handler = interaction.client.button_handlers.get(self.action)
        if handler is None:
            await interaction.response.send_message(**send_kwargs(content=STALE, ephemeral=True))
            return
        await handler(interaction, self.args)


def view_of(*buttons: StoryButton) -> discord.ui.View:
    """A view holding some buttons (never timing out: the buttons carry their own state)."""
    view = discord.ui.View(timeout=None)
    for button in buttons:
        view.add_item(button)
    return view
