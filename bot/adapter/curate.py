"""CurateCog: `/kb ...` for curators. Every action re-checks the caller where it happens."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.adapter import replies
from bot.adapter.buttons import StoryButton, view_of
from bot.adapter.replies import echo, edit_kwargs, send_kwargs
from bot.core.errors import KnowledgeError
from bot.core.knowledge import (
    MAX_ANSWER_CHARS,
    MAX_QUESTION_CHARS,
    MAX_SOURCE_CHARS,
    Entry,
    slugify,
    uncited_sentences,
)

if TYPE_CHECKING:
    from bot.adapter.client import StoryBot

log = logging.getLogger(__name__)

Interaction = discord.Interaction["StoryBot"]
PAGE_SIZE = 10
NOT_CURATOR = "Only curators can change the knowledge base."


class NotCurator(app_commands.CheckFailure):
    """The user may not curate."""


def is_curator(bot: StoryBot, interaction: discord.Interaction[Any]) -> bool:
    """The configured curator role, or Manage Server when no role is configured."""
    member = interaction.user
    if interaction.guild_id is None or not isinstance(member, discord.Member):
        return False
    role_id = bot.settings.curator_role_id
    if role_id is not None:
        return member.get_role(role_id) is not None
    return interaction.permissions.manage_guild


def author_of(interaction: discord.Interaction[Any]) -> str:
    """How an entry records who added it."""
    return f"{interaction.user.name} ({interaction.user.id})"


async def refuse(interaction: discord.Interaction[Any]) -> None:
    """Say no, privately."""
    await interaction.response.send_message(**send_kwargs(content=NOT_CURATOR, ephemeral=True))


SAVE_REPLY_WITHIN_S = 2.0
"""Discord drops an interaction not answered within 3 s; a save queued behind other writers
(the folder's lock) can take longer, so past this the reply is deferred and sent as a followup."""


async def save_in_time(interaction: discord.Interaction[Any], func: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a blocking save in a thread; defer the interaction if it outlasts Discord's deadline."""
    task = asyncio.ensure_future(asyncio.to_thread(func, *args, **kwargs))
    done, _ = await asyncio.wait({task}, timeout=SAVE_REPLY_WITHIN_S)
    if not done and not interaction.response.is_done():
        await interaction.response.defer(ephemeral=True, thinking=True)
    return await task


async def send_private(interaction: discord.Interaction[Any], **kwargs: Any) -> None:
    """An ephemeral reply: the response, or a followup once the response was deferred."""
    if interaction.response.is_done():
        await interaction.followup.send(**send_kwargs(ephemeral=True, **kwargs))
    else:
        await interaction.response.send_message(**send_kwargs(ephemeral=True, **kwargs))


class EntryModal(discord.ui.Modal):
    """The form for a new entry, or for editing one. Submitting re-checks the curator."""

    def __init__(
        self,
        cog: CurateCog,
        *,
        custom_id: str,
        entry: Entry | None = None,
        draft: dict[str, str] | None = None,
    ) -> None:
        editing = entry is not None
        super().__init__(title="Edit entry" if editing else "Add an entry", custom_id=custom_id, timeout=900)
        self.cog = cog
        cog.open_forms.add(custom_id)
        self.entry_id = entry.id if entry else None
        draft = draft or {}
        if entry is not None:
            draft = {"question": entry.question, "answer": entry.answer, "source": entry.source,
                     "alternates": "\n".join(entry.alternates)}  # fmt: skip
        # A refused form comes back with what was typed; Discord refuses a default longer
        # than the field's max_length, so cut it to fit.
        limits = {"question": MAX_QUESTION_CHARS, "answer": MAX_ANSWER_CHARS, "source": MAX_SOURCE_CHARS,
                  "alternates": 4000, "id": 64}  # fmt: skip
        draft = {k: str(v)[: limits[k]] for k, v in draft.items() if k in limits and v}
        short, para = discord.TextStyle.short, discord.TextStyle.paragraph
        self.question = discord.ui.TextInput(
            custom_id="question",
            label="Question",
            style=short,
            max_length=MAX_QUESTION_CHARS,
            default=draft.get("question"),
        )
        self.answer = discord.ui.TextInput(
            custom_id="answer",
            label="Answer (a short, standalone sentence)",
            style=para,
            max_length=MAX_ANSWER_CHARS,
            default=draft.get("answer"),
        )
        self.source = discord.ui.TextInput(
            custom_id="source",
            label="Source: the article sentence, word for word",
            style=para,
            max_length=MAX_SOURCE_CHARS,
            default=draft.get("source"),
        )
        self.alternates = discord.ui.TextInput(
            custom_id="alternates",
            label="Other phrasings, one per line (optional)",
            style=para,
            required=False,
            max_length=4000,
            default=draft.get("alternates"),
        )
        for item in (self.question, self.answer, self.source, self.alternates):
            self.add_item(item)
        if not editing:
            self.ident = discord.ui.TextInput(
                custom_id="id",
                label="Id (optional; made from the question)",
                style=short,
                required=False,
                max_length=64,
                default=draft.get("id"),
            )
            self.add_item(self.ident)

    def values(self) -> dict[str, str]:
        """What the curator typed."""
        out = {"question": self.question.value, "answer": self.answer.value,
               "source": self.source.value, "alternates": self.alternates.value}  # fmt: skip
        if self.entry_id is None:
            out["id"] = self.ident.value
        return out

    async def on_submit(self, interaction: Interaction) -> None:  # type: ignore[override]
        await self.cog.submit_entry(interaction, self.values(), self.entry_id)

    async def on_timeout(self) -> None:
        self.cog.open_forms.discard(self.custom_id)

    async def on_error(self, interaction: Interaction, error: Exception) -> None:  # type: ignore[override]
        await interaction.client.report_error(interaction, error)


def raw_entry(values: dict[str, str]) -> dict[str, Any]:
    """A modal's text as an entry mapping for validation."""
    raw: dict[str, Any] = {k: values.get(k, "").strip() for k in ("question", "answer", "source")}
    alternates = [line.strip() for line in values.get("alternates", "").splitlines() if line.strip()]
    raw["alternates"] = alternates
    return raw


class CurateCog(commands.Cog):
    """Curators grow and fix the knowledge base from Discord."""

    kb = app_commands.Group(
        name="kb",
        description="Curate StoryBot's knowledge base (curators only)",
        guild_only=True,
        default_permissions=discord.Permissions(manage_guild=True),
    )

    def __init__(self, bot: StoryBot) -> None:
        self.bot = bot
        self.drafts: dict[int, dict[str, str]] = {}  # user id -> last refused form, to retry
        self.open_forms: set[str] = set()  # custom ids of forms shown and not yet submitted
        bot.button_handlers.update(
            page=self.on_page, attach=self.on_attach, remove=self.on_remove, retry=self.on_retry
        )

    async def interaction_check(self, interaction: Interaction) -> bool:  # type: ignore[override]
        """Every /kb command: curators only (the default permission is only a UI hint)."""
        if not is_curator(self.bot, interaction):
            raise NotCurator(NOT_CURATOR)
        return True

    async def entry_autocomplete(
        self, interaction: Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        kb = self.bot.service.kb
        matches = [e for e in kb.entries if current.casefold() in e.id] if current else []
        matches += [e for e in self.bot.service.matcher.complete(current, limit=25) if e not in matches]
        return [
            app_commands.Choice(name=replies.clip(f"{e.id} — {e.question}", 100), value=e.id)
            for e in matches[:25]
        ]

    def _entry(self, entry_id: str) -> Entry:
        entry = self.bot.service.kb.get(entry_id)
        if entry is None:
            raise KnowledgeError(f"there is no entry '{entry_id}'; /kb list shows them")
        return entry

    # ---------------------------------------------------------------- commands

    @kb.command(name="add", description="Add a question and answer, with its source sentence")
    async def add(self, interaction: Interaction) -> None:
        """Open the form for a new entry."""
        draft = self.drafts.pop(interaction.user.id, None)
        await interaction.response.send_modal(
            EntryModal(self, custom_id=f"storybot-add-{interaction.id}", draft=draft)
        )

    @kb.command(name="edit", description="Edit an entry's question, answer, source or phrasings")
    @app_commands.describe(entry="The entry's id")
    @app_commands.autocomplete(entry=entry_autocomplete)
    async def edit(self, interaction: Interaction, entry: str) -> None:
        """Open the form for an existing entry."""
        found = self._entry(entry)
        await interaction.response.send_modal(
            EntryModal(self, custom_id=f"storybot-edit-{interaction.id}", entry=found)
        )

    @kb.command(name="alias", description="Teach an entry another way of asking its question")
    @app_commands.describe(entry="The entry's id", phrasing="Another way a reader might ask it")
    @app_commands.autocomplete(entry=entry_autocomplete)
    async def alias(
        self, interaction: Interaction, entry: str, phrasing: app_commands.Range[str, 1, MAX_QUESTION_CHARS]
    ) -> None:
        """Add an alternate phrasing."""
        self._entry(entry)
        updated = await asyncio.to_thread(self.bot.service.add_alternate, entry, phrasing)
        log.info("alternate added to %s by %s", updated.id, interaction.user.id)
        await interaction.response.send_message(
            **send_kwargs(content=f"Added “{echo(phrasing)}” to `{updated.id}`.", ephemeral=True)
        )

    @kb.command(name="remove", description="Delete an entry (asks to confirm)")
    @app_commands.describe(entry="The entry's id")
    @app_commands.autocomplete(entry=entry_autocomplete)
    async def remove(self, interaction: Interaction, entry: str) -> None:
        """Ask for confirmation, then delete."""
        found = self._entry(entry)
        confirm = view_of(
            StoryButton("remove", found.id, label=f"Delete {found.id}", style=discord.ButtonStyle.danger)
        )
        await interaction.response.send_message(
            **send_kwargs(
                content=f"Delete `{found.id}` — “{echo(found.question)}”? This cannot be undone from Discord.",
                view=confirm,
                ephemeral=True,
            )
        )

    @kb.command(name="show", description="Show everything about one entry")
    @app_commands.describe(entry="The entry's id")
    @app_commands.autocomplete(entry=entry_autocomplete)
    async def show(self, interaction: Interaction, entry: str) -> None:
        """Show an entry with its votes."""
        found = self._entry(entry)
        votes = await asyncio.to_thread(self.bot.feedback.vote_counts, found.id)
        await interaction.response.send_message(
            **send_kwargs(embed=replies.entry_embed(found, votes), ephemeral=True)
        )

    @kb.command(name="list", description="List the entries, a page at a time")
    @app_commands.describe(page="Page number (from 1)")
    async def list(self, interaction: Interaction, page: app_commands.Range[int, 1, 10_000] = 1) -> None:
        """One page of entries with buttons to turn pages."""
        await interaction.response.send_message(**self._page(page), ephemeral=True)

    @kb.command(name="reload", description="Load the knowledge files again (after editing them by hand)")
    async def reload(self, interaction: Interaction) -> None:
        """Reload; on errors keep serving the last good knowledge base."""
        try:
            kb = await asyncio.to_thread(self.bot.service.reload)
        except KnowledgeError as error:
            text = replies.problems_text(
                error, "The files have problems; I'm still serving the last good version:"
            )
            await interaction.response.send_message(**send_kwargs(content=text, ephemeral=True))
            return
        await interaction.response.send_message(
            **send_kwargs(
                content=f"Reloaded: {len(kb)} entries (version {kb.story.version}).", ephemeral=True
            )
        )

    @kb.command(name="unanswered", description="The questions readers asked that I couldn't answer")
    async def unanswered(self, interaction: Interaction) -> None:
        """Most frequent unanswered questions; a button attaches each to its closest entry."""
        rows = await asyncio.to_thread(self.bot.feedback.top_unanswered, 10)
        if not rows:
            await interaction.response.send_message(
                **send_kwargs(content="No unanswered questions so far.", ephemeral=True)
            )
            return
        lines, buttons = ["Most asked questions I couldn't answer:"], []
        for n, row in enumerate(rows, 1):
            lines.append(f"{n}. “{echo(row.question, 150)}” ×{row.count}")
            candidates = self.bot.service.ask(row.question).candidates
            if candidates:
                target = candidates[0].entry.id
                buttons.append(StoryButton("attach", f"{row.id}:{target}", label=f"{n} → add to {target}"))
        lines.append(
            "A button adds that question to the entry as another phrasing; /kb add makes a new entry."
        )
        await interaction.response.send_message(
            **send_kwargs(
                content=replies.clip("\n".join(lines), replies.CONTENT_MAX),
                view=view_of(*buttons[:25]),
                ephemeral=True,
            )
        )

    @kb.command(name="coverage", description="Article sentences no entry cites yet")
    async def coverage(self, interaction: Interaction) -> None:
        """List uncited sentences."""
        uncited = uncited_sentences(self.bot.service.kb)
        if not uncited:
            text = "Every sentence of the article is the source of at least one entry."
        else:
            text = f"{len(uncited)} sentence(s) no entry cites:\n" + "\n".join(
                f"• {echo(s, 300)}" for s in uncited
            )
        await interaction.response.send_message(
            **send_kwargs(content=replies.clip(text, replies.CONTENT_MAX), ephemeral=True)
        )

    # ---------------------------------------------------------------- forms and buttons

    async def submit_entry(
        self, interaction: Interaction, values: dict[str, str], entry_id: str | None
    ) -> None:
        """A submitted form: re-check the curator, validate, save, answer at once."""
        if not is_curator(self.bot, interaction):
            await refuse(interaction)
            return
        raw = raw_entry(values)
        service = self.bot.service
        try:
            if entry_id is None:
                raw["id"] = values.get("id", "").strip() or slugify(raw["question"], service.kb.by_id)
                entry = await save_in_time(interaction, service.add, raw, author=author_of(interaction))
                done = f"Added `{entry.id}`; I answer it from now on."
            else:
                entry = await save_in_time(interaction, service.update, entry_id, raw)
                done = f"Saved `{entry.id}`."
        except KnowledgeError as error:
            if entry_id is None:
                self.drafts[interaction.user.id] = values
            retry = (
                view_of(StoryButton("retry", "add", label="Fix and try again")) if entry_id is None else None
            )
            text = replies.problems_text(error, "Nothing was saved. Please fix:")
            await send_private(interaction, content=text, view=retry)
            return
        log.info(
            "entry %s %s by %s", entry.id, "added" if entry_id is None else "edited", interaction.user.id
        )
        await send_private(interaction, content=done, embed=replies.entry_embed(entry))

    def _page(self, page: int) -> dict[str, Any]:
        entries = self.bot.service.kb.entries
        pages = max(1, -(-len(entries) // PAGE_SIZE))
        page = min(max(page, 1), pages)
        chunk = entries[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
        lines = [f"Entries {len(entries)} · page {page}/{pages}"]
        lines += [f"`{e.id}` — {echo(e.question, 120)}" for e in chunk]
        buttons = []
        if page > 1:
            buttons.append(StoryButton("page", str(page - 1), label="◀ Previous"))
        if page < pages:
            buttons.append(StoryButton("page", str(page + 1), label="Next ▶"))
        return send_kwargs(
            content=replies.clip("\n".join(lines), replies.CONTENT_MAX), view=view_of(*buttons)
        )

    async def on_page(self, interaction: Interaction, args: str) -> None:
        if not is_curator(self.bot, interaction):
            await refuse(interaction)
            return
        page = int(args) if args.isdigit() else 1
        await interaction.response.edit_message(**self._page(page))

    async def on_attach(self, interaction: Interaction, args: str) -> None:
        """Add an unanswered question to an entry as another phrasing."""
        if not is_curator(self.bot, interaction):
            await refuse(interaction)
            return
        row_text, _, entry_id = args.partition(":")
        row = (
            await asyncio.to_thread(self.bot.feedback.get_unanswered, int(row_text))
            if row_text.isdigit()
            else None
        )
        if row is None or self.bot.service.kb.get(entry_id) is None:
            await interaction.response.send_message(
                **send_kwargs(
                    content="That question or entry is gone; run /kb unanswered again.", ephemeral=True
                )
            )
            return
        try:
            await asyncio.to_thread(self.bot.service.add_alternate, entry_id, row.question)
        except KnowledgeError as error:
            await interaction.response.send_message(
                **send_kwargs(content=replies.problems_text(error, "Nothing was saved:"), ephemeral=True)
            )
            return
        await asyncio.to_thread(self.bot.feedback.forget_unanswered, row.id)
        log.info("unanswered question %s attached to %s by %s", row.id, entry_id, interaction.user.id)
        await interaction.response.send_message(
            **send_kwargs(content=f"Added “{echo(row.question)}” to `{entry_id}`.", ephemeral=True)
        )

    async def on_remove(self, interaction: Interaction, entry_id: str) -> None:
        """The confirmed delete."""
        if not is_curator(self.bot, interaction):
            await refuse(interaction)
            return
        try:
            await asyncio.to_thread(self.bot.service.remove, entry_id)
        except KnowledgeError as error:
            await interaction.response.send_message(
                **send_kwargs(content=replies.problems_text(error, "Nothing was deleted:"), ephemeral=True)
            )
            return
        log.info("entry %s removed by %s", entry_id, interaction.user.id)
        await interaction.response.edit_message(**edit_kwargs(content=f"Deleted `{entry_id}`."))

    async def on_retry(self, interaction: Interaction, args: str) -> None:
        """Reopen the add form with what the curator typed last time."""
        if not is_curator(self.bot, interaction):
            await refuse(interaction)
            return
        draft = self.drafts.pop(interaction.user.id, None)
        await interaction.response.send_modal(
            EntryModal(self, custom_id=f"storybot-add-{interaction.id}", draft=draft)
        )
