"""The StoryBot client: wires the core service, the cogs, persistence and the heartbeat."""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands, tasks

from bot.adapter.ask import AskCog
from bot.adapter.buttons import STALE, StoryButton, StoryMenu, is_ours
from bot.adapter.curate import NOT_CURATOR, CurateCog, NotCurator
from bot.adapter.replies import NO_PINGS, problems_text, send_kwargs
from bot.config import Settings
from bot.core.errors import KnowledgeError, StorageError
from bot.core.postgres import ChangeListener
from bot.core.ratelimit import Cooldown
from bot.core.service import StoryService
from bot.core.state import Feedback
from bot.health import touch

log = logging.getLogger(__name__)
# StoryBot has no voice: don't warn that voice libraries are missing.
discord.VoiceClient.warn_nacl = False
discord.VoiceClient.warn_dave = False

SORRY = "Something went wrong on my side; it's logged. Please try again."
EXPIRED = "This form has expired. Please run the command again."


def intents_for(settings: Settings) -> discord.Intents:
    """Only what the bot needs: guilds (roles, channels) and messages that mention it.

    Message content is privileged: asked for only when plain messages in chosen channels
    are to be answered (Discord sends the content of mentions and DMs regardless).
    """
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    intents.dm_messages = True
    intents.message_content = bool(settings.answer_channels)
    return intents


def custom_id_of(interaction: discord.Interaction[Any]) -> str:
    """The custom_id of the component or form an interaction comes from ("" if none)."""
    data: Any = interaction.data or {}
    return str(data.get("custom_id", ""))


def _handled_component(interaction: discord.Interaction[Any]) -> bool:
    """Whether discord.py will hand this press to a StoryButton or StoryMenu: its custom_id has
    our form and is a component of the message pressed (discord.py ignores any other)."""
    custom_id = custom_id_of(interaction)
    message = interaction.message
    if message is None or not is_ours(custom_id):
        return False
    view = discord.ui.View.from_message(message, timeout=None)
    return any(getattr(item, "custom_id", None) == custom_id for item in view.walk_children())


def dm_only(command: app_commands.Command[Any, ..., Any]) -> app_commands.Command[Any, ..., Any]:
    """A copy of a slash command offered in direct messages with the bot only."""
    dm = copy.copy(command)  # same callback, same cog; only where it is offered differs
    dm.allowed_contexts = app_commands.AppCommandContext(guild=False, dm_channel=True, private_channel=False)
    return dm


class StoryTree(app_commands.CommandTree["StoryBot"]):
    """Command tree with one error handler for every command."""

    async def on_error(
        self, interaction: discord.Interaction[StoryBot], error: app_commands.AppCommandError
    ) -> None:
        await interaction.client.report_error(interaction, error)


class StoryBot(commands.Bot):
    """A bot that answers questions about one story."""

    def __init__(self, settings: Settings, service: StoryService, feedback: Feedback, **options: Any) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            help_command=None,
            intents=intents_for(settings),
            allowed_mentions=NO_PINGS,
            tree_cls=StoryTree,
            **options,
        )
        self.settings = settings
        self.service = service
        self.feedback = feedback
        self.cooldown = Cooldown(settings.cooldown_questions, settings.cooldown_seconds)
        self.button_handlers: dict[str, Any] = {}
        self.menu_handlers: dict[str, Any] = {}
        self.last_reload_error: KnowledgeError | None = None
        self._checking = asyncio.Lock()  # one look for knowledge changes at a time
        self._listener: ChangeListener | None = None
        self._heard: set[asyncio.Task[None]] = set()

    async def setup_hook(self) -> None:
        self.add_dynamic_items(StoryButton, StoryMenu)
        await self.add_cog(AskCog(self))
        await self.add_cog(CurateCog(self))
        await self.sync_commands()
        self.watch_knowledge.change_interval(seconds=self.settings.reload_interval_s)
        self.watch_knowledge.start()
        if self.service.database is not None:  # several processes: hear the others' changes at once
            loop = asyncio.get_running_loop()

            def heard() -> None:  # on the listener's thread: hand over to the bot's loop
                loop.call_soon_threadsafe(self._knowledge_changed)

            self._listener = ChangeListener(self.service.database.db.url, heard)
            self._listener.start()
        self.heartbeat.start()

    async def close(self) -> None:
        if self._listener is not None:
            await asyncio.to_thread(self._listener.stop)
        await super().close()

    def _knowledge_changed(self) -> None:
        """Another process committed a change (its NOTIFY): look now rather than at the next poll."""
        task = asyncio.create_task(self.check_knowledge())
        self._heard.add(task)
        task.add_done_callback(self._heard.discard)

    def prepare_commands(self) -> None:
        """Lay the command tree out as it is registered: with a guild configured, every command
        in that guild (where they show up at once) and the readers' commands globally for direct
        messages only (DMs see global commands alone; in the guild they would show twice)."""
        guild_id = self.settings.guild_id
        if guild_id is None:
            return
        self.tree.copy_global_to(guild=discord.Object(id=guild_id))
        for command in self.tree.get_commands():
            self.tree.remove_command(command.name)
            if isinstance(command, app_commands.Command) and not command.guild_only:
                self.tree.add_command(dm_only(command))

    async def sync_commands(self) -> None:
        """Register the slash commands (only the process running shard 0 does: one registration
        for one bot, however many processes share its token)."""
        self.prepare_commands()
        if not self.settings.registers_commands:
            log.info("slash commands are registered by the process that runs shard 0")
            return
        guild_id = self.settings.guild_id
        if guild_id is None:
            synced = await self.tree.sync()
            log.info("synced %d global commands (they may take a while to appear)", len(synced))
            return
        synced = await self.tree.sync(guild=discord.Object(id=guild_id))
        in_dms = await self.tree.sync()
        log.info("synced %d commands to guild %s, %d for direct messages", len(synced), guild_id, len(in_dms))

    async def on_message(self, message: discord.Message, /) -> None:
        """No text commands: questions in messages are the AskCog's listener's job."""

    async def on_ready(self) -> None:
        log.info("connected as %s (%s) to %d guild(s); serving %d entries",
                 self.user, self.user.id if self.user else "?", len(self.guilds), len(self.service.kb))  # fmt: skip
        touch(self.settings.heartbeat_file, self.shards_up())

    async def on_interaction(self, interaction: discord.Interaction[StoryBot]) -> None:
        """A form this process didn't open (expired, or from before a restart) still gets an answer,
        and so does a button press that no StoryButton will handle (a forged or unknown custom_id,
        which discord.py drops silently and the user would see as "This interaction failed")."""
        if interaction.type is discord.InteractionType.component:
            if not _handled_component(interaction):
                await interaction.response.send_message(**send_kwargs(content=STALE, ephemeral=True))
            return
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        custom_id = custom_id_of(interaction)
        cog = self.get_cog("CurateCog")
        if (
            custom_id.startswith("storybot-")
            and isinstance(cog, CurateCog)
            and custom_id not in cog.open_forms
        ):
            await interaction.response.send_message(**send_kwargs(content=EXPIRED, ephemeral=True))

    async def report_error(self, interaction: discord.Interaction[Any], error: Exception) -> None:
        """One place that turns any failure into one short, private sentence."""
        original = getattr(error, "original", error)
        if isinstance(original, discord.NotFound) and original.code == 10062:
            # The interaction's token expired (Discord allows 3 s): no reply can reach the user.
            log.warning("interaction %s expired before I could answer (user %s)",
                        interaction.id, interaction.user.id)  # fmt: skip
            return
        if isinstance(original, NotCurator):
            text = NOT_CURATOR
        elif isinstance(original, app_commands.CommandNotFound):
            # Discord offers each command only where it is registered; one arriving elsewhere
            # (an old client, a crafted request) gets a pointer, not an error report.
            log.info("command %r is not offered here (guild %s)", original.name, interaction.guild_id)
            text = "That command isn't available here; /help lists what I can do."
        elif isinstance(original, app_commands.NoPrivateMessage):
            text = "That command works in a server, not in direct messages."
        elif isinstance(original, StorageError):
            text = problems_text(original, "I couldn't save that:", root=self.service.root)
        elif isinstance(original, KnowledgeError):
            text = problems_text(original, "That didn't work:", root=self.service.root)
        elif isinstance(original, app_commands.CheckFailure):
            text = "You can't use that here."
        else:
            command = (
                interaction.command.qualified_name
                if interaction.command
                else interaction.data and interaction.data.get("custom_id")
            )
            log.error(
                "error in %s (user %s, guild %s)",
                command,
                interaction.user.id,
                interaction.guild_id,
                exc_info=original,
            )
            text = SORRY
        try:
            if interaction.response.is_done():
                await interaction.followup.send(**send_kwargs(content=text, ephemeral=True))
            else:
                await interaction.response.send_message(**send_kwargs(content=text, ephemeral=True))
        except discord.HTTPException:
            log.warning("could not tell user %s about an error (interaction expired?)", interaction.user.id)

    async def on_error(self, event_method: str, /, *args: Any, **kwargs: Any) -> None:
        log.exception("unhandled error in %s", event_method)

    # ---------------------------------------------------------------- background work

    @tasks.loop(seconds=2.0)
    async def watch_knowledge(self) -> None:
        """Look for knowledge changes every `reload_interval_s` (the files, or the database's
        revision: what a listener missed while its connection was down)."""
        await self.check_knowledge()

    async def check_knowledge(self) -> None:
        """Reload the knowledge base when its files change; keep the last good one if broken."""
        async with self._checking:
            await self._check_knowledge()

    async def _check_knowledge(self) -> None:
        try:
            kb = await asyncio.to_thread(self.service.reload_if_changed)
        except StorageError as error:  # the database is unreachable: nothing to tell curators yet
            log.warning(
                "could not look for knowledge changes (%s); still serving the last good version", error
            )
            return
        except KnowledgeError as error:
            self.last_reload_error = error
            log.warning(
                "knowledge files changed but have problems; still serving the last good version:\n%s", error
            )
            await self._tell_curators(
                problems_text(
                    error,
                    "⚠️ The knowledge files have problems; I'm still serving the last good version:",
                    root=self.service.root,
                )
            )
            return
        if kb is not None:
            self.last_reload_error = None
            log.info("knowledge files changed: now serving %d entries", len(kb))

    @watch_knowledge.error
    async def _watch_failed(self, error: BaseException) -> None:
        log.error("the knowledge watcher stopped", exc_info=error)

    async def _tell_curators(self, text: str) -> None:
        channel_id = self.settings.curator_channel_id
        channel = self.get_channel(channel_id) if channel_id else None
        if isinstance(channel, discord.abc.Messageable):
            try:
                await channel.send(**send_kwargs(content=text))
            except discord.HTTPException:
                log.warning("could not post to the curator channel %s", channel_id)

    @tasks.loop(seconds=15.0)
    async def heartbeat(self) -> None:
        """Touch the heartbeat file while the gateway connection is alive (for healthchecks)."""
        shards = self.shards_up()
        if any(shards.values()) if shards is not None else self.connected():
            await asyncio.to_thread(touch, self.settings.heartbeat_file, shards)

    def shards_up(self) -> dict[int, bool] | None:
        """Each shard this process runs, and whether it is connected (None: not sharded)."""
        return None

    def connected(self) -> bool:
        """Whether the gateway connection is up."""
        ws = self.ws
        return self.is_ready() and not self.is_closed() and ws is not None and ws.open

    @heartbeat.before_loop
    async def _before_heartbeat(self) -> None:
        self.heartbeat.change_interval(seconds=min(15.0, self.settings.health_max_age_s / 3))


class ShardedStoryBot(StoryBot, commands.AutoShardedBot):
    """The same bot on Discord's sharding, for large deployments: all the shards, or the range
    `STORYBOT_SHARD_IDS` gives this process (other processes run the rest)."""

    def shards_up(self) -> dict[int, bool] | None:
        ids = self.shard_ids if self.shard_ids is not None else sorted(self.shards)
        return {
            sid: self.is_ready() and sid in self.shards and not self.shards[sid].is_closed() for sid in ids
        }

    def connected(self) -> bool:
        shards = self.shards.values()
        return (
            self.is_ready()
            and not self.is_closed()
            and bool(shards)
            and all(not s.is_closed() for s in shards)
        )


def make_bot(settings: Settings, service: StoryService, feedback: Feedback, **options: Any) -> StoryBot:
    """A plain bot, or an auto-sharded one when sharding is configured."""
    if settings.auto_shard or settings.shard_count:
        shard_ids = list(settings.shard_ids) if settings.shard_ids is not None else None
        return ShardedStoryBot(
            settings, service, feedback, shard_count=settings.shard_count, shard_ids=shard_ids, **options
        )
    return StoryBot(settings, service, feedback, **options)
