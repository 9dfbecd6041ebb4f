"""AskCog: what readers use. /ask, @mentions, /help, /about, and the answer buttons."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot import __version__
from bot.adapter import replies
from bot.adapter.buttons import StoryButton, view_of
from bot.adapter.replies import send_kwargs
from bot.core import wording
from bot.core.knowledge import Entry
from bot.core.ratelimit import Verdict
from bot.core.text import MAX_QUESTION_CHARS

if TYPE_CHECKING:
    from bot.adapter.client import StoryBot

log = logging.getLogger(__name__)

Interaction = discord.Interaction["StoryBot"]
SLOW_DOWN = "You're asking faster than I can keep up. Please wait {seconds:.0f} s and ask again."
GONE = "That entry no longer exists; ask your question again."


def answer_message(bot: StoryBot, entry: Entry, score: float | None) -> dict[str, Any]:
    """An answer embed with helpful / not helpful buttons under it."""
    votes = view_of(
        StoryButton("vote", f"{entry.id}:1", label="Helpful", emoji="👍"),
        StoryButton("vote", f"{entry.id}:0", label="Not helpful", emoji="👎"),
    )
    return send_kwargs(content=None, embed=replies.answer_embed(entry, score, bot.service.kb), view=votes)


class AskCog(commands.Cog):
    """Answers questions about the story."""

    def __init__(self, bot: StoryBot) -> None:
        self.bot = bot
        bot.button_handlers.update(pick=self.on_pick, vote=self.on_vote)

    async def reply_for(self, question: str) -> dict[str, Any]:
        """The message that answers `question`: an answer, a "did you mean", or "not in the article"."""
        result = self.bot.service.ask(question)
        log.debug("question %r -> %s %s", result.question, result.outcome,
                  [(c.entry.id, c.score) for c in result.candidates])  # fmt: skip
        if result.best is not None:
            return answer_message(self.bot, result.best.entry, result.best.score)
        if result.outcome == "suggest":
            buttons = [
                StoryButton(
                    "pick", c.entry.id, label=f"{n}. {c.entry.question}", style=discord.ButtonStyle.primary
                )
                for n, c in enumerate(result.suggestions, 1)
            ]
            return send_kwargs(content=replies.suggest_text(result), view=view_of(*buttons))
        if result.question and not result.small_talk:
            await asyncio.to_thread(self.bot.feedback.record_unanswered, result.question)
        return send_kwargs(content=wording.unknown_text(result, self.bot.service.kb))

    # ---------------------------------------------------------------- commands

    @app_commands.command(name="ask", description="Ask a question about the story")
    @app_commands.describe(question="Your question about the story, in your own words")
    async def ask(
        self, interaction: Interaction, question: app_commands.Range[str, 1, MAX_QUESTION_CHARS]
    ) -> None:
        """Answer a reader's question, quoting the article."""
        verdict = self.bot.cooldown.check(interaction.user.id)
        if verdict is not Verdict.ALLOW:
            wait = self.bot.cooldown.retry_after(interaction.user.id)
            await interaction.response.send_message(
                **send_kwargs(content=SLOW_DOWN.format(seconds=wait), ephemeral=True)
            )
            return
        await interaction.response.send_message(**await self.reply_for(question))

    @ask.autocomplete("question")
    async def ask_autocomplete(
        self, interaction: Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        """Offer the entries' own questions as the reader types."""
        return [
            app_commands.Choice(name=replies.clip(e.question, 100), value=replies.clip(e.question, 100))
            for e in self.bot.service.matcher.complete(current, limit=25)
        ]

    @app_commands.command(name="help", description="How to ask StoryBot questions")
    async def help(self, interaction: Interaction) -> None:
        """Explain how to ask."""
        await interaction.response.send_message(
            **send_kwargs(embed=replies.help_embed(self.bot.service.kb), ephemeral=True)
        )

    @app_commands.command(name="about", description="The story StoryBot knows, and how much it knows")
    async def about(self, interaction: Interaction) -> None:
        """Show the story and the knowledge base's size and version."""
        embed = replies.about_embed(self.bot.service.kb, __version__)
        await interaction.response.send_message(**send_kwargs(embed=embed, ephemeral=True))

    # ---------------------------------------------------------------- mentions

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """Answer a message that mentions the bot (or any message in an opted-in channel)."""
        me = self.bot.user
        if me is None or message.author.bot or message.webhook_id is not None:
            return
        mentioned = me in message.mentions
        in_channel = message.channel.id in self.bot.settings.answer_channels
        is_dm = message.guild is None
        if not (mentioned or in_channel or is_dm):
            return
        question = re.sub(rf"<@!?{me.id}>", " ", message.content).strip()
        verdict = self.bot.cooldown.check(message.author.id)
        if verdict is Verdict.DROP:
            return
        if verdict is Verdict.WARN:
            wait = self.bot.cooldown.retry_after(message.author.id)
            reply = send_kwargs(content=SLOW_DOWN.format(seconds=wait))
        else:
            reply = await self.reply_for(question)
        await message.reply(mention_author=False, **reply)

    # ---------------------------------------------------------------- buttons

    async def on_pick(self, interaction: Interaction, entry_id: str) -> None:
        """A "did you mean" button: answer with that entry, in place of the suggestions."""
        entry = self.bot.service.kb.get(entry_id)
        if entry is None:
            await interaction.response.send_message(**send_kwargs(content=GONE, ephemeral=True))
            return
        await interaction.response.edit_message(**answer_message(self.bot, entry, None))

    async def on_vote(self, interaction: Interaction, args: str) -> None:
        """Helpful / not helpful: one vote per user per answer (a second press changes it)."""
        entry_id, _, flag = args.rpartition(":")
        message = interaction.message
        if flag not in ("0", "1") or message is None or self.bot.service.kb.get(entry_id) is None:
            await interaction.response.send_message(**send_kwargs(content=GONE, ephemeral=True))
            return
        new = await asyncio.to_thread(
            self.bot.feedback.record_vote, str(message.id), interaction.user.id, entry_id, flag == "1"
        )
        text = "Thanks, noted." if new else "You already voted that way on this answer."
        await interaction.response.send_message(**send_kwargs(content=text, ephemeral=True))
