"""Turn core results (matches, entries, problems) into Discord messages within Discord's limits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord

from bot.core import wording
from bot.core.errors import KnowledgeError
from bot.core.knowledge import Entry, KnowledgeBase
from bot.core.matching import Result

NO_PINGS = discord.AllowedMentions.none()
COLOUR = discord.Colour.from_rgb(52, 120, 190)
# Discord's limits (characters).
TITLE_MAX, DESCRIPTION_MAX, FIELD_MAX, FOOTER_MAX, CONTENT_MAX = 256, 4096, 1024, 2048, 2000
BUTTON_LABEL_MAX = 80


def clip(text: str, limit: int) -> str:
    """Cut text to a Discord limit, marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def quote(text: str, limit: int = FIELD_MAX) -> str:
    """A block quote of article text (markdown in it is shown as written)."""
    body = discord.utils.escape_markdown(text)
    return clip("> " + body.replace("\n", "\n> "), limit)


def echo(text: str, limit: int = 200) -> str:
    """User text shown back safely: no markdown tricks, no mention syntax."""
    return clip(discord.utils.escape_mentions(discord.utils.escape_markdown(text)), limit)


def answer_embed(entry: Entry, kb: KnowledgeBase) -> discord.Embed:
    """The answer and its source sentence as a quote: what a reader needs, nothing internal."""
    # Curators' text is shown as written: markdown and mentions escaped, so a masked link shows
    # where it goes and nothing looks like a ping. The article's own text is quoted as it is.
    embed = discord.Embed(
        title=echo(entry.question, TITLE_MAX),
        description=echo(entry.answer, DESCRIPTION_MAX),
        colour=COLOUR,
    )
    embed.add_field(name=wording.SOURCE_LABEL, value=quote(kb.quote(entry)), inline=False)
    return embed


def suggest_text(result: Result) -> str:
    """The "did you mean" message (the choices are buttons under it)."""
    lines = [wording.SUGGEST]
    lines += [f"{n}. {echo(c.entry.question)}" for n, c in enumerate(result.suggestions, 1)]
    return clip("\n".join(lines), CONTENT_MAX)


def shown_path(file: str, line: int | None = None, root: Path | None = None) -> str:
    """Where a knowledge file is, as a curator knows it (`entries/article.yaml:12`), never the
    server's own paths."""
    path = Path(file)
    try:
        if not path.is_absolute():
            shown = file  # already as the curator knows it (e.g. database:entries/curated.yaml)
        else:
            shown = path.relative_to(root).as_posix() if root is not None else path.name
    except ValueError:
        shown = path.name
    return f"{shown}:{line}" if line is not None else shown


def problems_text(error: KnowledgeError, intro: str, limit: int = 8, root: Path | None = None) -> str:
    """Curator-readable problems, one per line, no tracebacks."""
    lines = [intro]
    for problem in error.problems[:limit]:
        where = f"`{problem.entry}` " if problem.entry else ""
        field = f"({problem.field}) " if problem.field else ""
        loc = f" [{shown_path(problem.file, problem.line, root)}]" if problem.file else ""
        lines.append(f"• {where}{field}{echo(problem.message, 600)}{loc}")
    if len(error.problems) > limit:
        lines.append(f"• … and {len(error.problems) - limit} more (run `storybot validate`)")
    return clip("\n".join(lines), CONTENT_MAX)


def entry_embed(
    entry: Entry, votes: tuple[int, int] | None = None, root: Path | None = None
) -> discord.Embed:
    """Everything about one entry, for curators."""
    embed = discord.Embed(title=echo(entry.question, TITLE_MAX), colour=COLOUR)
    embed.add_field(name="Answer", value=echo(entry.answer, FIELD_MAX), inline=False)
    embed.add_field(name="Source", value=quote(entry.source), inline=False)
    if entry.alternates:
        alts = "\n".join(f"• {echo(a, 150)}" for a in entry.alternates)
        embed.add_field(
            name=f"Alternates ({len(entry.alternates)})", value=clip(alts, FIELD_MAX), inline=False
        )
    details = [f"id `{entry.id}`", f"type {entry.type or '-'}"]
    if entry.added_by:
        details.append(
            f"added by {echo(entry.added_by, 60)}" + (f" on {entry.added_at}" if entry.added_at else "")
        )
    if votes is not None:
        details.append(f"votes 👍 {votes[0]} · 👎 {votes[1]}")
    if entry.file:
        details.append(f"in {shown_path(entry.file, entry.line, root)}")
    embed.add_field(name="Details", value=clip(" · ".join(details), FIELD_MAX), inline=False)
    return embed


def _second_example(kb: KnowledgeBase) -> str:
    """Another question of the knowledge base's, for the mention example."""
    return kb.entries[1].question if len(kb.entries) > 1 else wording.example_question(kb)


def help_embed(kb: KnowledgeBase) -> discord.Embed:
    """How to ask."""
    embed = discord.Embed(
        title="How to ask StoryBot",
        description=clip(
            f"I answer questions about one news story: **{kb.story.headline}**.\n\n"
            f"• `/ask question:` — e.g. *{echo(wording.example_question(kb))}*\n"
            f"• or mention me: *@StoryBot {echo(_second_example(kb))}*\n\n"
            "Every answer quotes the sentence of the article it rests on. If I'm unsure I "
            "offer the closest questions; if the article doesn't say, I tell you so.\n"
            "Curators can grow what I know with `/kb`.",
            DESCRIPTION_MAX,
        ),
        colour=COLOUR,
    )
    return embed


def about_embed(kb: KnowledgeBase, version: str) -> discord.Embed:
    """The story and the knowledge base's size and version."""
    embed = discord.Embed(title=clip(kb.story.headline, TITLE_MAX), colour=COLOUR)
    embed.add_field(name="Entries", value=str(len(kb)))
    embed.add_field(
        name="Knowledge version",
        value=clip(f"{kb.story.version} (checked {kb.story.checked or '-'})", FIELD_MAX),
    )
    embed.add_field(name="StoryBot", value=version)
    return embed


def send_kwargs(**kwargs: Any) -> dict[str, Any]:
    """A new message, with pings disabled whatever its text contains (None: part left out)."""
    kwargs["allowed_mentions"] = NO_PINGS
    return {k: v for k, v in kwargs.items() if v is not None}


def edit_kwargs(
    *,
    content: str | None = None,
    embed: discord.Embed | None = None,
    view: discord.ui.View | None = None,
) -> dict[str, Any]:
    """An edit that replaces the whole message: a part not given is cleared, so nothing of the
    old message (suggestions, a spent button) lingers next to the new one."""
    return {
        "content": content,
        "embeds": [embed] if embed is not None else [],
        "view": view,
        "allowed_mentions": NO_PINGS,
    }


@dataclass
class Reply:
    """One message's parts, sent new or put in place of another message (cleanly, either way)."""

    content: str | None = None
    embed: discord.Embed | None = None
    view: discord.ui.View | None = None
    entry_id: str | None = None
    """Set when the reply is a full answer from this entry."""

    def send(self, **extra: Any) -> dict[str, Any]:
        """Keyword arguments for sending it as a new message."""
        return send_kwargs(content=self.content, embed=self.embed, view=self.view, **extra)

    def edit(self) -> dict[str, Any]:
        """Keyword arguments for editing a message into it."""
        return edit_kwargs(content=self.content, embed=self.embed, view=self.view)
