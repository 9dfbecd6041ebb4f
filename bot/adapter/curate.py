"""CurateCog: `/kb ...` for curators. Every action re-checks the caller where it happens."""

from __future__ import annotations

import asyncio
import builtins
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.adapter import replies, triage
from bot.adapter.buttons import StoryButton, view_of
from bot.adapter.interactions import save_in_time, send_private, show
from bot.adapter.replies import Reply, echo, send_kwargs
from bot.core import wording
from bot.core.errors import EditConflict, FilesBroken, KnowledgeError
from bot.core.feedback import QuestionGroup
from bot.core.knowledge import (
    MAX_ANSWER_CHARS,
    MAX_QUESTION_CHARS,
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
NOT_YOUR_FORM = "That form belongs to another curator; run the command yourself to get your own."
NO_DRAFT = "There is no unsaved form to reopen any more; run the command again."
ENTRY_GONE = "That entry no longer exists; /kb list shows the entries."
QUESTION_GONE = "That question was dealt with meanwhile; run /kb unanswered again."
FILES_BROKEN = (
    "Your change looks right, but nothing can be saved while the knowledge files have problems "
    "(a hand edit, probably); once they are fixed (then `/kb reload`), try again{kept}. The files' problems:"
)
DRAFT_KEPT_S = 3600.0
"""How long a refused form's text is kept for "Fix and try again"."""


class NotCurator(app_commands.CheckFailure):
    """The user may not curate."""


def is_curator(bot: StoryBot, interaction: discord.Interaction[Any]) -> bool:
    """One of the configured curator roles (one per server the bot serves), or Manage Server when
    none is configured."""
    member = interaction.user
    if interaction.guild_id is None or not isinstance(member, discord.Member):
        return False
    roles = bot.settings.curator_role_ids
    if roles:
        return any(member.get_role(role) is not None for role in roles)
    return interaction.permissions.manage_guild


def author_of(interaction: discord.Interaction[Any]) -> str:
    """How an entry records who added it."""
    return f"{interaction.user.name} ({interaction.user.id})"


async def refuse(interaction: discord.Interaction[Any]) -> None:
    """Say no, privately."""
    await interaction.response.send_message(**send_kwargs(content=NOT_CURATOR, ephemeral=True))


FORM_TIMEOUT_S = 900.0
SOURCE_FIELD_CHARS = 4000
"""Discord's limit for a form field; several source sentences share it, one per line."""


class OpenForms:
    """The custom ids of the forms this process opened and can still take (until they time out),
    so a submission it cannot take is told "expired" rather than left to fail."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}

    def open(self, custom_id: str, ttl_s: float) -> None:
        now = time.monotonic()
        self._until = {k: t for k, t in self._until.items() if t > now}
        self._until[custom_id] = now + ttl_s

    def discard(self, custom_id: str) -> None:
        self._until.pop(custom_id, None)

    def __contains__(self, custom_id: object) -> bool:
        return isinstance(custom_id, str) and self._until.get(custom_id, 0.0) > time.monotonic()


@dataclass(frozen=True)
class Draft:
    """A form's text kept for another try: a refused save, or a question to start from."""

    values: dict[str, str]
    base: Entry | None
    """The entry an edit started from (None: a new entry)."""
    at: float
    restored: bool = True


class EntryModal(discord.ui.Modal):
    """The form for a new entry, or for editing one. Only the curator who opened it may submit
    it; an edit carries the entry as it was when the form opened (its version)."""

    def __init__(
        self,
        cog: CurateCog,
        *,
        opener: int,
        custom_id: str,
        entry: Entry | None = None,
        draft: Draft | None = None,
        unanswered: int | None = None,
    ) -> None:
        base = draft.base if draft is not None and draft.base is not None else entry
        editing = base is not None
        title = "Edit entry" if editing else "Add an entry"
        if draft is not None and draft.restored:
            title += " (your unsaved draft)"
        super().__init__(title=title, custom_id=custom_id, timeout=FORM_TIMEOUT_S)
        self.cog = cog
        self.opener = opener
        self.base = base
        self.unanswered = unanswered
        cog.open_forms.open(custom_id, FORM_TIMEOUT_S)
        values = dict(draft.values) if draft is not None else {}
        if draft is None and entry is not None:
            values = {"question": entry.question, "answer": entry.answer,
                      "source": "\n".join(entry.sources), "alternates": "\n".join(entry.alternates)}  # fmt: skip
        # Discord refuses a default longer than the field's max_length, so cut it to fit.
        limits = {"question": MAX_QUESTION_CHARS, "answer": MAX_ANSWER_CHARS, "source": SOURCE_FIELD_CHARS,
                  "alternates": 4000, "id": 64}  # fmt: skip
        values = {k: str(v)[: limits[k]] for k, v in values.items() if k in limits and v}
        short, para = discord.TextStyle.short, discord.TextStyle.paragraph
        self.question = discord.ui.TextInput[EntryModal](
            custom_id="question", label="Question", style=short,
            max_length=MAX_QUESTION_CHARS, default=values.get("question"),
        )  # fmt: skip
        self.answer = discord.ui.TextInput[EntryModal](
            custom_id="answer", label="Answer (a short, standalone sentence)", style=para,
            max_length=MAX_ANSWER_CHARS, default=values.get("answer"),
        )  # fmt: skip
        self.source = discord.ui.TextInput[EntryModal](
            custom_id="source", label="Source: article sentence(s), one per line", style=para,
            max_length=SOURCE_FIELD_CHARS, default=values.get("source"),
        )  # fmt: skip
        self.alternates = discord.ui.TextInput[EntryModal](
            custom_id="alternates", label="Other phrasings, one per line (optional)", style=para,
            required=False, max_length=4000, default=values.get("alternates"),
        )  # fmt: skip
        for item in (self.question, self.answer, self.source, self.alternates):
            self.add_item(item)
        self.ident: discord.ui.TextInput[EntryModal] | None = None
        if not editing:
            self.ident = discord.ui.TextInput[EntryModal](
                custom_id="id", label="Id (optional; made from the question)", style=short,
                required=False, max_length=64, default=values.get("id"),
            )  # fmt: skip
            self.add_item(self.ident)

    def values(self) -> dict[str, str]:
        """What the curator typed."""
        out = {"question": self.question.value, "answer": self.answer.value,
               "source": self.source.value, "alternates": self.alternates.value}  # fmt: skip
        if self.ident is not None:
            out["id"] = self.ident.value
        return out

    async def interaction_check(self, interaction: Interaction) -> bool:  # type: ignore[override]
        """Someone else submitting this form (with its id) is refused, and the form stays open
        for the curator who opened it."""
        if interaction.user.id == self.opener:
            return True
        await interaction.response.send_message(**send_kwargs(content=NOT_YOUR_FORM, ephemeral=True))
        return False

    async def on_submit(self, interaction: Interaction) -> None:  # type: ignore[override]
        await self.cog.submit_entry(interaction, self.values(), self.base, self.unanswered)

    async def on_timeout(self) -> None:
        self.cog.open_forms.discard(self.custom_id)

    async def on_error(self, interaction: Interaction, error: Exception) -> None:  # type: ignore[override]
        await interaction.client.report_error(interaction, error)


def raw_entry(values: dict[str, str]) -> dict[str, Any]:
    """A form's text as an entry mapping for validation: several source lines are several
    source sentences (as `/kb edit` shows an entry's sources), one line is one."""
    raw: dict[str, Any] = {k: values.get(k, "").strip() for k in ("question", "answer")}
    sources = [line.strip() for line in values.get("source", "").splitlines() if line.strip()]
    raw["source"] = sources if len(sources) > 1 else (sources[0] if sources else "")
    raw["alternates"] = [line.strip() for line in values.get("alternates", "").splitlines() if line.strip()]
    return raw


def conflict_text(error: EditConflict, values: dict[str, str]) -> str:
    """What someone else changed, and the curator's own text to copy into the fresh form."""
    lines = [f"Nothing was saved: someone changed `{error.entry_id}` after you opened the form."]
    for name, (before, now) in error.changed.items():
        if isinstance(before, list | type(None)) and isinstance(now, list):
            added = [f"+ “{echo(str(x), 150)}”" for x in now if x not in (before or [])]
            gone = [f"− “{echo(str(x), 150)}”" for x in (before or []) if x not in now]
            lines.append(f"• {name}: " + ", ".join([*added, *gone]))
        else:
            lines.append(f"• {name} is now: {echo(str(now or '(empty)'), 300)}")
    mine = [f"{k}: {echo(v, 300)}" for k, v in values.items() if v and k != "id"]
    lines.append("Your text, to copy into the form with the current version:")
    lines += [f"> {line}" for line in mine]
    return replies.clip("\n".join(lines), replies.CONTENT_MAX)


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
        self.drafts: dict[int, Draft] = {}  # user id -> the last form that was refused, to retry
        self.open_forms = OpenForms()  # forms shown by this process, until they time out
        if bot.settings.curator_role_ids:
            # Curators are a role: members without Manage Server must see /kb too (each
            # command and button checks the role; the default permission is only a UI hint).
            self.kb.default_permissions = None
        bot.button_handlers.update(
            page=self.on_page, remove=self.on_remove, retry=self.on_retry, reedit=self.on_reedit,
            unanswered=self.on_list, newfrom=self.on_new_from, dismiss=self.on_dismiss,
        )  # fmt: skip
        bot.menu_handlers.update(triage=self.on_triage, attach=self.on_attach)

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

    def _draft(self, user_id: int, *, new_only: bool = False) -> Draft | None:
        """The user's last refused form, if it is recent (`new_only`: a new entry's, not an edit's)."""
        draft = self.drafts.get(user_id)
        if draft is None or (new_only and draft.base is not None):
            return None
        del self.drafts[user_id]
        return draft if time.monotonic() - draft.at < DRAFT_KEPT_S else None

    def _form(self, interaction: Interaction, **kwargs: Any) -> EntryModal:
        custom_id = f"storybot-form-{interaction.id}"
        return EntryModal(self, opener=interaction.user.id, custom_id=custom_id, **kwargs)

    # ---------------------------------------------------------------- commands

    @kb.command(name="add", description="Add a question and answer, with its source sentence")
    async def add(self, interaction: Interaction) -> None:
        """Open the form for a new entry (with the last refused one's text, if any)."""
        draft = self._draft(interaction.user.id, new_only=True)  # a refused edit has its own button
        await interaction.response.send_modal(self._form(interaction, draft=draft))

    @kb.command(name="edit", description="Edit an entry's question, answer, source or phrasings")
    @app_commands.describe(entry="The entry's id")
    @app_commands.autocomplete(entry=entry_autocomplete)
    async def edit(self, interaction: Interaction, entry: str) -> None:
        """Open the form for an existing entry."""
        await interaction.response.send_modal(self._form(interaction, entry=self._entry(entry)))

    @kb.command(name="alias", description="Teach an entry another way of asking its question")
    @app_commands.describe(entry="The entry's id", phrasing="Another way a reader might ask it")
    @app_commands.autocomplete(entry=entry_autocomplete)
    async def alias(
        self, interaction: Interaction, entry: str, phrasing: app_commands.Range[str, 1, MAX_QUESTION_CHARS]
    ) -> None:
        """Add an alternate phrasing."""
        self._entry(entry)
        try:
            updated = await save_in_time(interaction, self.bot.service.add_alternate, entry, phrasing)
        except KnowledgeError as error:
            await send_private(interaction, content=self._problems(error))
            return
        log.info("alternate added to %s by %s", updated.id, interaction.user.id)
        await send_private(interaction, content=f"Added “{echo(phrasing)}” to `{updated.id}`.")

    @kb.command(name="remove", description="Delete an entry (asks to confirm)")
    @app_commands.describe(entry="The entry's id")
    @app_commands.autocomplete(entry=entry_autocomplete)
    async def remove(self, interaction: Interaction, entry: str) -> None:
        """Ask for confirmation, then delete (the version shown: a changed entry is not deleted)."""
        found = self._entry(entry)
        confirm = view_of(
            StoryButton(
                "remove",
                f"{found.id}:{found.version}",
                label=f"Delete {found.id}",
                style=discord.ButtonStyle.danger,
            )
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
        embed = replies.entry_embed(found, votes, root=self.bot.service.root)
        await interaction.response.send_message(**send_kwargs(embed=embed, ephemeral=True))

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
            text = self._problems(error, "The files have problems; I'm still serving the last good version:")
            await interaction.response.send_message(**send_kwargs(content=text, ephemeral=True))
            return
        await interaction.response.send_message(
            **send_kwargs(
                content=f"Reloaded: {len(kb)} entries (version {kb.story.version}).", ephemeral=True
            )
        )

    @kb.command(name="unanswered", description="The questions readers asked that I couldn't answer")
    async def unanswered(self, interaction: Interaction) -> None:
        """The most asked unanswered questions, grouped; pick one to attach, add or dismiss it."""
        groups = await asyncio.to_thread(self.bot.feedback.unanswered_groups, 10)
        await interaction.response.send_message(**triage.list_reply(groups).send(ephemeral=True))

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

    # ---------------------------------------------------------------- forms

    def _problems(
        self, error: KnowledgeError, intro: str = "Nothing was saved. Please fix:", *, kept: bool = False
    ) -> str:
        """The problems, introduced by whose they are: the change's own, or the files' on disk."""
        if isinstance(error, FilesBroken):
            intro = FILES_BROKEN.format(kept=" with the button below: your text is kept" if kept else "")
        return replies.problems_text(error, intro, root=self.bot.service.root)

    async def submit_entry(
        self, interaction: Interaction, values: dict[str, str], base: Entry | None, unanswered: int | None
    ) -> None:
        """A submitted form: re-check the curator, validate, save (refused over a newer version)."""
        if not is_curator(self.bot, interaction):
            await refuse(interaction)
            return
        raw = raw_entry(values)
        service = self.bot.service
        try:
            if base is None:
                raw["id"] = values.get("id", "").strip() or slugify(raw["question"], service.kb.by_id)
                entry = await save_in_time(interaction, service.add, raw, author=author_of(interaction))
                done = f"Added `{entry.id}`; I answer it from now on."
            else:
                entry = await save_in_time(interaction, service.update, base.id, raw, expected=base)
                done = f"Saved `{entry.id}`."
        except EditConflict as conflict:
            reopen = StoryButton("reedit", conflict.entry_id, label="Reopen with the current text")
            await send_private(interaction, content=conflict_text(conflict, values), view=view_of(reopen))
            return
        except KnowledgeError as error:
            self.drafts[interaction.user.id] = Draft(values, base, time.monotonic())
            retry = view_of(StoryButton("retry", "", label="Fix and try again"))
            await send_private(interaction, content=self._problems(error, kept=True), view=retry)
            return
        log.info("entry %s %s by %s", entry.id, "edited" if base else "added", interaction.user.id)
        if unanswered is not None:
            group = await asyncio.to_thread(self.bot.feedback.group_of, unanswered)
            if group is not None:
                await asyncio.to_thread(self.bot.feedback.forget, group.ids)
        if hint := wording.thin_entry_hint(entry, "add some with `/kb alias`"):
            done = f"{done} {hint}"
        embed = replies.entry_embed(entry, root=service.root)
        await send_private(interaction, content=done, embed=embed)

    async def on_retry(self, interaction: Interaction, args: str) -> None:
        """Reopen the refused form with what the curator typed."""
        if not is_curator(self.bot, interaction):
            await refuse(interaction)
            return
        draft = self._draft(interaction.user.id)
        if draft is None:
            await interaction.response.send_message(**send_kwargs(content=NO_DRAFT, ephemeral=True))
            return
        await interaction.response.send_modal(self._form(interaction, draft=draft))

    async def on_reedit(self, interaction: Interaction, entry_id: str) -> None:
        """After a conflict: the edit form again, with the entry as it is now."""
        if not is_curator(self.bot, interaction):
            await refuse(interaction)
            return
        entry = self.bot.service.kb.get(entry_id)
        if entry is None:
            await interaction.response.send_message(**send_kwargs(content=ENTRY_GONE, ephemeral=True))
            return
        await interaction.response.send_modal(self._form(interaction, entry=entry))

    # ---------------------------------------------------------------- buttons

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

    async def on_remove(self, interaction: Interaction, args: str) -> None:
        """The confirmed delete (refused if the entry changed since the question was shown)."""
        if not is_curator(self.bot, interaction):
            await refuse(interaction)
            return
        entry_id, _, version = args.partition(":")
        try:
            await save_in_time(interaction, self.bot.service.remove, entry_id, version=version or None)
        except EditConflict:
            text = f"`{entry_id}` changed since you asked to delete it; nothing was deleted. Run /kb remove again."
            await send_private(interaction, content=text)
            return
        except KnowledgeError as error:
            await send_private(interaction, content=self._problems(error, "Nothing was deleted:"))
            return
        log.info("entry %s removed by %s", entry_id, interaction.user.id)
        await show(interaction, Reply(content=f"Deleted `{entry_id}`."))

    # ---------------------------------------------------------------- the unanswered list

    async def _group(self, interaction: Interaction, args: str) -> QuestionGroup | None:
        """The group a button or menu refers to, or None after telling the curator it is gone."""
        group = await asyncio.to_thread(self.bot.feedback.group_of, int(args)) if args.isdigit() else None
        if group is None:
            await interaction.response.send_message(**send_kwargs(content=QUESTION_GONE, ephemeral=True))
        return group

    async def _show_list(self, interaction: Interaction, note: str | None = None) -> None:
        groups = await asyncio.to_thread(self.bot.feedback.unanswered_groups, 10)
        await show(interaction, triage.list_reply(groups, note))

    async def on_list(self, interaction: Interaction, args: str) -> None:
        if not is_curator(self.bot, interaction):
            await refuse(interaction)
            return
        await self._show_list(interaction)

    async def on_triage(self, interaction: Interaction, args: str, values: builtins.list[str]) -> None:
        """A question picked from the list: its panel."""
        if not is_curator(self.bot, interaction):
            await refuse(interaction)
            return
        group = await self._group(interaction, values[0] if values else "")
        if group is None:
            return
        result = self.bot.service.ask(group.question)
        await show(interaction, triage.panel_reply(group, self.bot.service.kb, result))

    async def on_attach(self, interaction: Interaction, args: str, values: builtins.list[str]) -> None:
        """Add the question to the chosen entry as another phrasing; its group leaves the list."""
        if not is_curator(self.bot, interaction):
            await refuse(interaction)
            return
        group = await self._group(interaction, args)
        if group is None:
            return
        entry_id = values[0] if values else ""
        if self.bot.service.kb.get(entry_id) is None:
            await interaction.response.send_message(**send_kwargs(content=ENTRY_GONE, ephemeral=True))
            return
        try:
            await save_in_time(interaction, self.bot.service.add_alternate, entry_id, group.question)
        except KnowledgeError as error:
            await send_private(interaction, content=self._problems(error))
            return
        await asyncio.to_thread(self.bot.feedback.forget, group.ids)
        log.info("unanswered question %s attached to %s by %s", group.id, entry_id, interaction.user.id)
        await self._show_list(interaction, f"Added “{echo(group.question)}” to `{entry_id}`.")

    async def on_new_from(self, interaction: Interaction, args: str) -> None:
        """A new entry's form, its question filled in from the unanswered one."""
        if not is_curator(self.bot, interaction):
            await refuse(interaction)
            return
        group = await self._group(interaction, args)
        if group is None:
            return
        draft = Draft({"question": group.question}, None, time.monotonic(), restored=False)
        await interaction.response.send_modal(self._form(interaction, draft=draft, unanswered=group.id))

    async def on_dismiss(self, interaction: Interaction, args: str) -> None:
        """The question needs no entry: stop listing it (and its similar phrasings)."""
        if not is_curator(self.bot, interaction):
            await refuse(interaction)
            return
        group = await self._group(interaction, args)
        if group is None:
            return
        await asyncio.to_thread(self.bot.feedback.dismiss, group.ids)
        log.info("unanswered question %s dismissed by %s", group.id, interaction.user.id)
        await self._show_list(interaction, f"Dismissed “{echo(group.question)}”; it won't be listed again.")
