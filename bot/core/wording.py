"""What StoryBot says, shared by the terminal and Discord so both speak alike."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.core.matching import Result

UNKNOWN = "The article doesn't say that, as far as I can tell."
UNKNOWN_HINT = "Try rephrasing, ask about who, what, when, where or why, or ask a curator to add it."
SUGGEST = "I'm not sure what you mean. Did you mean:"
EMPTY = "Ask me a question about the story, e.g. “How far did they push the trolley?”"
SOURCE_LABEL = "From the article"
WELCOME = "You're welcome! Ask me anything else about the story."
ABOUT_ME = (
    "I'm StoryBot: I answer questions about one news story, Russian diplomats leaving North Korea "
    "by pushing a rail trolley, and quote the article for each answer."
)


def unknown_text(result: Result) -> str:
    """What to say when a question gets no answer and no suggestions."""
    from bot.core.matching import ABOUT_ME as ABOUT_ME_REASON
    from bot.core.matching import NO_CONTENT, THANKS

    if not result.question or result.reason == NO_CONTENT:  # "", "hi", "sup", "???"
        return EMPTY
    if result.reason == THANKS:
        return WELCOME
    if result.reason == ABOUT_ME_REASON:
        return f"{ABOUT_ME} {EMPTY}"
    return f"{UNKNOWN} {UNKNOWN_HINT}"
