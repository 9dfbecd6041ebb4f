"""What StoryBot says, shared by the terminal and Discord so both speak alike."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.core.knowledge import Entry, KnowledgeBase
    from bot.core.matching import Result

UNKNOWN = "The article doesn't say that, as far as I can tell."
UNKNOWN_HINT = "Try rephrasing, ask about who, what, when, where or why, or ask a curator to add it."
SUGGEST = "I'm not sure what you mean. Did you mean:"
SOURCE_LABEL = "From the article"
WELCOME = "You're welcome! Ask me anything else about the story."


def example_question(kb: KnowledgeBase | None) -> str:
    """A question to show as an example: the knowledge base's first entry's (the story's words
    live in knowledge/, not here)."""
    if kb is None or not kb.entries:
        return "What happened?"
    return kb.entries[0].question


def empty_text(kb: KnowledgeBase | None) -> str:
    """What to say to an empty message or a bare greeting."""
    return f"Ask me a question about the story, e.g. “{example_question(kb)}”"


def about_me(kb: KnowledgeBase | None) -> str:
    """Who the bot is, naming the story it knows."""
    story = f" “{kb.story.headline}”" if kb is not None and kb.story.headline else ""
    return f"I'm StoryBot: I answer questions about one news story{story}, and quote the article for each answer."


def unknown_text(result: Result, kb: KnowledgeBase | None = None) -> str:
    """What to say when a question gets no answer and no suggestions."""
    from bot.core.matching import ABOUT_ME as ABOUT_ME_REASON
    from bot.core.matching import NO_CONTENT, THANKS, VAGUE

    if not result.question or result.reason == NO_CONTENT:  # "", "hi", "sup", "???"
        return empty_text(kb)
    if result.reason == THANKS:
        return WELCOME
    if result.reason == VAGUE:  # "how far away is it?": a question, but about what?
        # An entry that answers that kind of question, closest first (`Matcher._same_kind`).
        example = result.candidates[0].entry.question if result.candidates else example_question(kb)
        return f"What are you asking about? Name the person, place or thing, e.g. “{example}”"
    if result.reason == ABOUT_ME_REASON:
        return f"{about_me(kb)} {empty_text(kb)}"
    return f"{UNKNOWN} {UNKNOWN_HINT}"


def thin_entry_hint(entry: Entry, add_more: str) -> str:
    """After a save: a nudge when the entry has few phrasings, since readers who ask in other
    words find it less often (docs/curating.md). `add_more` says how, in the caller's terms."""
    from bot.core.knowledge import FEW_PHRASINGS

    n = len(entry.phrasings)
    if n >= FEW_PHRASINGS:
        return ""
    return (
        f"It has {n} phrasing{'s' if n != 1 else ''}: readers who ask in other words get answers "
        f"more often from an entry with {FEW_PHRASINGS} or more ({add_more})."
    )
