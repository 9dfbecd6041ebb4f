"""Text clean-up shared by the knowledge base, the matcher and every front end."""

from __future__ import annotations

import re
import unicodedata

MAX_QUESTION_CHARS = 300
"""Questions are cut to this length: no real question about one article is longer,
and it bounds matching time whatever a user pastes."""

_QUOTES = str.maketrans({"‘": "'", "’": "'", "‚": "'", "′": "'", "“": '"', "”": '"', "„": '"', "″": '"'})
_DASHES = str.maketrans({"–": "-", "—": "-", "‒": "-", "−": "-"})
_WS = re.compile(r"\s+")
# Control characters (including NUL) and bidi overrides: never meaningful in a question.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def normalise_quotes(text: str) -> str:
    """Map curly quotes to straight ones."""
    return text.translate(_QUOTES)


def collapse_whitespace(text: str) -> str:
    """Turn every run of whitespace into one space and strip the ends."""
    return _WS.sub(" ", text).strip()


def normalise_for_compare(text: str) -> str:
    """The form in which a `source` is compared with the article: quotes and spaces only."""
    return collapse_whitespace(normalise_quotes(text))


def strip_marks(text: str) -> str:
    """Remove stacked combining marks (zalgo) while keeping letters' base forms."""
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return unicodedata.normalize("NFC", kept)


# Discord's markup for mentions of users, roles and channels, custom emoji and slash commands
# ("<@123>", "<@!123>", "<@&123>", "<#123>", "<:wave:123>", "</ask:123>"), and the mass mentions:
# never part of what is asked ("<@123> how old was she?" asks how old she was).
_DISCORD_MARKUP = re.compile(r"<(?:@[!&]?|#|a?:\w+:|/[\w -]+:)\d+>|@(?:everyone|here)\b")


def clean_question(text: str, limit: int = MAX_QUESTION_CHARS) -> str:
    """Make any user text safe to match: no control characters, no zalgo, no Discord mentions,
    bounded length."""
    text = _DISCORD_MARKUP.sub(" ", _CONTROL.sub(" ", text))
    text = strip_marks(text)
    text = collapse_whitespace(normalise_quotes(text).translate(_DASHES))
    if len(text) > limit:
        cut = text[:limit]
        # Cut at a word boundary when there is one near the end.
        space = cut.rfind(" ")
        text = cut[:space] if space > limit * 0.8 else cut
    return text


def split_sentences(text: str) -> list[str]:
    """Split article text into sentences: by line, then at sentence ends inside a line."""
    sentences: list[str] = []
    for raw_line in text.splitlines():
        line = collapse_whitespace(raw_line.lstrip(" •*-\t"))
        if not line:
            continue
        for part in re.split(r"(?<=[.!?])\s+(?=[A-Z‘'\"“])", line):
            part = part.strip()
            if part:
                sentences.append(part)
    return sentences
