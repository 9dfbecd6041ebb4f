"""Answering an interaction in time: Discord drops one not answered within 3 seconds, and a
save can queue behind other writers (the folder's lock, a database restarting)."""

from __future__ import annotations

import asyncio
from typing import Any

import discord

from bot.adapter.replies import Reply, send_kwargs

SAVE_REPLY_WITHIN_S = 2.0
"""Discord drops an interaction not answered within 3 s; a save queued behind other writers
(the folder's lock) can take longer, so past this the reply is deferred and sent as a followup."""


async def save_in_time(interaction: discord.Interaction[Any], func: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a blocking save in a thread; defer the interaction if it outlasts Discord's deadline."""
    task = asyncio.ensure_future(asyncio.to_thread(func, *args, **kwargs))
    done, _ = await asyncio.wait({task}, timeout=SAVE_REPLY_WITHIN_S)
    if not done and not interaction.response.is_done():
        if interaction.type is discord.InteractionType.component:
            await interaction.response.defer()  # the message pressed is updated when done
        else:
            await interaction.response.defer(ephemeral=True, thinking=True)
    return await task


async def send_private(interaction: discord.Interaction[Any], **kwargs: Any) -> None:
    """An ephemeral reply: the response, or a followup once the response was deferred."""
    if interaction.response.is_done():
        await interaction.followup.send(**send_kwargs(ephemeral=True, **kwargs))
    else:
        await interaction.response.send_message(**send_kwargs(ephemeral=True, **kwargs))


async def show(interaction: discord.Interaction[Any], reply: Reply) -> None:
    """Put `reply` in place of the message whose button or menu was used (after a deferral too)."""
    if interaction.response.is_done():
        await interaction.edit_original_response(**reply.edit())
    else:
        await interaction.response.edit_message(**reply.edit())
