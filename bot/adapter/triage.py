"""The messages of `/kb unanswered`: the grouped list, and one question's panel (attach it to
any entry, start a new entry from it, or dismiss it)."""

from __future__ import annotations

from bot.adapter.buttons import StoryButton, StoryMenu, option, view_of
from bot.adapter.replies import CONTENT_MAX, Reply, clip, echo
from bot.core.feedback import QuestionGroup
from bot.core.knowledge import Entry, KnowledgeBase
from bot.core.matching import Result

MENU_MAX = 25
"""Discord's limit of choices in one select menu."""
NOTHING = "No unanswered questions so far."


def list_reply(groups: list[QuestionGroup], note: str | None = None) -> Reply:
    """The most asked unanswered questions (near-identical phrasings as one), a menu to pick one."""
    lines = [note] if note else []
    if not groups:
        return Reply(content="\n".join([*lines, NOTHING]))
    lines.append("Most asked questions I couldn't answer (similar phrasings counted together):")
    for n, group in enumerate(groups, 1):
        also = f" (+{len(group.rows) - 1} similar)" if len(group.rows) > 1 else ""
        lines.append(f"{n}. “{echo(group.question, 150)}” ×{group.count}{also}")
    lines.append("Pick one to add it to an entry, start a new entry from it, or dismiss it.")
    menu = StoryMenu(
        "triage",
        options=[
            option(f"{n}. {g.question}", str(g.id), f"asked {g.count} time(s)")
            for n, g in enumerate(groups[:MENU_MAX], 1)
        ],
        placeholder="Choose a question to work on…",
    )
    return Reply(content=clip("\n".join(lines), CONTENT_MAX), view=view_of(menu))


def entry_choices(kb: KnowledgeBase, result: Result, limit: int = MENU_MAX) -> list[Entry]:
    """Entries to offer for a question: the matcher's best guesses first, then the rest in order."""
    guesses = [c.entry for c in result.candidates]
    rest = [e for e in kb.entries if e not in guesses]
    return [*guesses, *rest][:limit]


def panel_reply(group: QuestionGroup, kb: KnowledgeBase, result: Result) -> Reply:
    """One question: a menu of entries to add it to (best guesses first), New entry, Dismiss."""
    lines = [f"“{echo(group.question, 300)}” ×{group.count}"]
    variants = [r.question for r in group.rows[1:6]]
    if variants:
        lines.append("Also asked as: " + " · ".join(f"“{echo(v, 100)}”" for v in variants))
    choices = entry_choices(kb, result)
    guessed = {c.entry.id for c in result.candidates}
    if len(kb) > len(choices):
        lines.append(
            f"The menu shows {len(choices)} of {len(kb)} entries, best guesses first; for another one use "
            f"`/kb alias` (it completes any entry's id)."
        )
    menu = StoryMenu(
        "attach",
        str(group.id),
        options=[
            option(e.question, e.id, ("best guess · " if e.id in guessed else "") + e.id) for e in choices
        ],
        placeholder="Add it to an entry as another phrasing…",
        row=0,
    )
    buttons = [
        StoryButton("newfrom", str(group.id), label="New entry from it", emoji="➕", row=1),
        StoryButton("dismiss", str(group.id), label="Dismiss (needs no entry)", row=1),
        StoryButton("unanswered", "", label="Back to the list", row=1),
    ]
    return Reply(content=clip("\n".join(lines), CONTENT_MAX), view=view_of(menu, *buttons))
