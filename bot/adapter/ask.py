"""AskCog: what readers use. /ask, @mentions, /help, /about, and the answer buttons."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot import __version__
from bot.adapter import replies
from bot.adapter.buttons import StoryButton, view_of
from bot.adapter.interactions import save_in_time, send_private
from bot.adapter.replies import Reply, send_kwargs
from bot.core import wording
from bot.core.knowledge import Entry
from bot.core.ratelimit import Verdict
from bot.core.recent import Given, RecentAnswers
from bot.core.text import MAX_QUESTION_CHARS

if TYPE_CHECKING:
    from bot.adapter.client import StoryBot

log = logging.getLogger(__name__)

Interaction = discord.Interaction["StoryBot"]
SLOW_DOWN = "You're asking faster than I can keep up. Please wait {seconds:.0f} s and ask again."
GONE = "That entry no longer exists; ask your question again."
ANSWERED_JUST_NOW = "That was answered a moment ago: {link}"
DELETE_WINDOW_S = 300.0
"""How long the asker (or a moderator) can take an answer back with its Delete button."""
NOT_YOURS = "Only the person who asked (or a moderator) can delete this answer."
TOO_LATE = "The delete button works for {minutes:.0f} minutes; a moderator can still remove the message."


def answer_reply(bot: StoryBot, entry: Entry, asker_id: int | None) -> Reply:
    """An answer embed with helpful / not helpful buttons, and Delete for the asker."""
    buttons = [
        StoryButton("vote", f"{entry.id}:1", label="Helpful", emoji="👍"),
        StoryButton("vote", f"{entry.id}:0", label="Not helpful", emoji="👎"),
    ]
    if asker_id is not None:
        buttons.append(StoryButton("delete", str(asker_id), label="Delete", emoji="🗑️"))
    return Reply(embed=replies.answer_embed(entry, bot.service.kb), view=view_of(*buttons), entry_id=entry.id)


def _pick_args(entry_id: str, asker_id: int | None) -> str:
    return f"{entry_id}:{asker_id}" if asker_id is not None else entry_id


class AskCog(commands.Cog):
    """Answers questions about the story."""

    def __init__(self, bot: StoryBot) -> None:
        self.bot = bot
        self.recent = RecentAnswers(window_s=bot.settings.same_question_window_s)
        self._background: set[asyncio.Task[None]] = set()
        bot.button_handlers.update(pick=self.on_pick, vote=self.on_vote, delete=self.on_delete)

    async def reply_for(self, question: str, asker_id: int | None = None) -> Reply:
        """The message that answers `question`: an answer, a "did you mean", or "not in the article"."""
        result = self.bot.service.ask(question)
        log.debug("question %r -> %s %s", result.question, result.outcome,
                  [(c.entry.id, c.score) for c in result.candidates])  # fmt: skip
        if result.best is not None:
            return answer_reply(self.bot, result.best.entry, asker_id)
        if result.question and not result.small_talk:
            # Not answered outright: curators see it in /kb unanswered, where adding it to an
            # entry as a phrasing is the cheapest way to answer the next reader who asks so.
            self.remember_unanswered(result.question)
        if result.outcome == "suggest":
            buttons = [
                StoryButton(
                    "pick",
                    _pick_args(c.entry.id, asker_id),
                    label=f"{n}. {c.entry.question}",
                    style=discord.ButtonStyle.primary,
                )
                for n, c in enumerate(result.suggestions, 1)
            ]
            return Reply(content=replies.suggest_text(result), view=view_of(*buttons))
        return Reply(content=wording.unknown_text(result, self.bot.service.kb))

    def remember_unanswered(self, question: str) -> None:
        """List the question for curators, in the background: the reply never waits for the
        database (which may be restarting; the store retries)."""
        task = asyncio.create_task(asyncio.to_thread(self.bot.feedback.record_unanswered, question))
        self._background.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("could not list an unanswered question: %s", task.exception())

    def answered_here(self, place: int, reply: Reply) -> Given | None:
        """The same answer given in this channel within the window (a full answer only)."""
        return self.recent.find(place, reply.entry_id) if reply.entry_id else None

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
        reply = await self.reply_for(question, interaction.user.id)
        place = interaction.channel_id or interaction.user.id
        if (given := self.answered_here(place, reply)) is not None:
            await interaction.response.send_message(
                **send_kwargs(content=ANSWERED_JUST_NOW.format(link=given.link), ephemeral=True)
            )
            return
        sent = await interaction.response.send_message(**reply.send())
        message = sent.resource
        if reply.entry_id and isinstance(message, discord.InteractionMessage):
            self.recent.remember(place, reply.entry_id, message.id, message.jump_url)

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
            await message.reply(mention_author=False, **send_kwargs(content=SLOW_DOWN.format(seconds=wait)))
            return
        reply = await self.reply_for(question, message.author.id)
        place = message.channel.id
        if (given := self.answered_here(place, reply)) is not None:
            pointer = send_kwargs(content=ANSWERED_JUST_NOW.format(link=given.link))
            await message.reply(mention_author=False, suppress_embeds=True, **pointer)
            return
        sent = await message.reply(mention_author=False, **reply.send())
        if reply.entry_id:
            self.recent.remember(place, reply.entry_id, sent.id, sent.jump_url)

    # ---------------------------------------------------------------- buttons

    async def on_pick(self, interaction: Interaction, args: str) -> None:
        """A "did you mean" button: the asker's message turns into the answer; anyone else who
        presses it gets the answer privately, and the asker's message stays as it is."""
        entry_id, _, asker = args.partition(":")
        entry = self.bot.service.kb.get(entry_id)
        if entry is None:
            await interaction.response.send_message(**send_kwargs(content=GONE, ephemeral=True))
            return
        if asker == str(interaction.user.id):
            await interaction.response.edit_message(
                **answer_reply(self.bot, entry, interaction.user.id).edit()
            )
        else:
            reply = answer_reply(self.bot, entry, None)
            await interaction.response.send_message(**reply.send(ephemeral=True))

    async def on_delete(self, interaction: Interaction, asker: str) -> None:
        """Delete: the asker, or anyone who may manage messages here, within a few minutes."""
        message = interaction.message
        allowed = asker == str(interaction.user.id) or (
            interaction.guild_id is not None and interaction.permissions.manage_messages
        )
        if message is None or not allowed:
            await interaction.response.send_message(**send_kwargs(content=NOT_YOURS, ephemeral=True))
            return
        age = (discord.utils.utcnow() - message.created_at).total_seconds()
        if age > DELETE_WINDOW_S:
            text = TOO_LATE.format(minutes=DELETE_WINDOW_S / 60)
            await interaction.response.send_message(**send_kwargs(content=text, ephemeral=True))
            return
        await interaction.response.defer()
        await interaction.delete_original_response()
        self.recent.forget_message(message.id)
        log.info("answer %s deleted by %s", message.id, interaction.user.id)

    async def on_vote(self, interaction: Interaction, args: str) -> None:
        """Helpful / not helpful: one vote per user per answer (a second press changes it)."""
        entry_id, _, flag = args.rpartition(":")
        message = interaction.message
        if flag not in ("0", "1") or message is None or self.bot.service.kb.get(entry_id) is None:
            await interaction.response.send_message(**send_kwargs(content=GONE, ephemeral=True))
            return
        vote = self.bot.feedback.record_vote
        new = await save_in_time(
            interaction, vote, str(message.id), interaction.user.id, entry_id, flag == "1"
        )
        text = "Thanks, noted." if new else "You already voted that way on this answer."
        await send_private(interaction, content=text)
