"""The matcher's lexical stage: read a question as terms, rank entries by term overlap, and
report what the best entries lack (bot.core.matching weighs all of it).

Plain fuzzy string matching confuses "how far did they push the cart" with any question that
shares the story's words. This stage works on *terms*:

1. Clean the text, split it into words, stem them (Snowball) and fold synonym groups
   (``knowledge/synonyms.yaml``) into one canonical term each.
2. Repair typos: a word that is neither in the knowledge base nor ordinary English is aligned to
   the closest knowledge-base word. Ordinary English words are never "repaired" into story words.
3. Score each phrasing of each entry by weighted term overlap in both directions (`_rank`): how
   much of the question the phrasing explains, and how much of the phrasing the question asks
   about. Words frequent across the knowledge base weigh little; words it never uses weigh fully.
4. Type the question (who, when, where, why, how many, how long, how far, yes/no).
5. Report, per candidate entry, what it lacks (`guards`): a name or number of the question's, a
   count, an age, a month or a duration asked for, a name asked for, the word the question asks
   about ("who *paid*"), the shape of answer the question type needs.

Before all this a chat message is tidied (greetings, thanks, chat phrases, emoticons, slips in
small words), and a message of several sentences is also read as its asking sentence and without
the clauses that are only chatter; the best-scoring reading is kept. Small talk ("thanks", "who
made you") is recognised here. Everything in this module is general English: a story's own words
live in its knowledge folder.

An index from terms to phrasings keeps the work per question proportional to the phrasings that
share a term with it, not to the size of the knowledge base.
"""

from __future__ import annotations

import heapq
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import snowballstemmer  # type: ignore[import-untyped]

from bot.core.english import (
    ABOUT_BOT as _ABOUT_BOT,
)
from bot.core.english import (
    AGEING as _AGEING,
)
from bot.core.english import (
    ANSWER_SHAPES,
    DURATION_REACH,
    SLANG,
    STOPWORDS,
)
from bot.core.english import (
    ASKING_VERBS as _ASKING_VERBS,
)
from bot.core.english import (
    ASKS_WITHIN as _ASKS_WITHIN,
)
from bot.core.english import (
    CLAUSE_BREAK as _CLAUSE_BREAK,
)
from bot.core.english import (
    CONTRACTIONS as _CONTRACTIONS,
)
from bot.core.english import (
    COUNTING as _COUNTING,
)
from bot.core.english import (
    COUNTS_OR_AGES as _COUNTS_OR_AGES,
)
from bot.core.english import (
    EMOTICON as _EMOTICON,
)
from bot.core.english import (
    FILLER as _FILLER,
)
from bot.core.english import (
    JOINS as _JOINS,
)
from bot.core.english import (
    KIND_WORDS as _KIND_WORDS,
)
from bot.core.english import (
    LASTING as _LASTING,
)
from bot.core.english import (
    NAMING as _NAMING,
)
from bot.core.english import (
    OWNER as _OWNER,
)
from bot.core.english import (
    REFERS_BACK as _REFERS_BACK,
)
from bot.core.english import (
    SENTENCE_BREAK as _SENTENCE_BREAK,
)
from bot.core.english import (
    THANKS as _THANKS,
)
from bot.core.english import (
    TIME_UNITS as _TIME_UNITS,
)
from bot.core.english import (
    WH_TYPE_NAMES as _WH_TYPE_NAMES,
)
from bot.core.english import (
    WH_TYPES as _WH_TYPES,
)
from bot.core.english import (
    WH_WORDS as _WH_WORDS,
)
from bot.core.english import (
    WHEN_ASKED as _WHEN_ASKED,
)
from bot.core.english import (
    WHEN_GIVEN as _WHEN_GIVEN,
)
from bot.core.english import (
    WORD as _WORD,
)
from bot.core.english import (
    YES_NO as _YES_NO,
)
from bot.core.errors import Problem
from bot.core.knowledge import Entry, KnowledgeBase, paused_gc, phrasing_key
from bot.core.text import clean_question

ENTRY_BLEND = 0.3
"""Share of the score from how much of the question the entry as a whole (all phrasings, the
answer and its article sentences) explains: a paraphrase often mixes words from several."""
MAX_SUGGESTIONS = 3
"""At most this many "did you mean" entries (and buttons in Discord)."""
SMALL_RANK = 5000
"""A word rarer than this in English that is one dropped, extra or swapped letter from a
question or function word is taken for a slip ("hav", "dose"): commoner words are meant."""
PREDICATE_REACH = 3
"""The first content word up to this many words after the question word is what the question
asks about ("who *paid* for the flight"): if the best entry never uses it, the entry is only
suggested."""

BETA2 = 2.0
"""The score is an F-measure of how much of the question a phrasing explains (recall) and how
much of the phrasing the question asks about (precision); recall counts BETA2 times as much,
since an unexplained word in the question is what marks it as out of scope."""
TYPE_MISMATCH_FACTOR = 0.6
"""A "when" question matched to a "who" phrasing keeps 60% of its score: enough to
suggest, rarely enough to answer."""
TYPO_SHORT_WORD = 6
"""Words up to this long are repaired only at one slip (edit) from a knowledge-base word;
longer ones at up to two."""
TYPO_MIN_LENGTH = 4
"""Shorter words are not repaired: too many real words are one slip apart."""
TYPO_FACTOR = 0.9
"""A repaired word counts 90% of a word spelt right."""
# A question of at most this many words after a dash or comma ("... - who went?") asks
# about what comes before it, so the message is read whole.
SHORT_PART = 2
MIN_WEIGHT = 0.25
"""The weight floor for a term that appears in every entry (it still shows the topic)."""
MAX_POSTINGS = 5000
"""Terms in more phrasings than this don't nominate candidates (they still score)."""
COMMON_RANK_STOP = 150
"""English words this frequent (the, have, would) carry almost no meaning in a question."""
COMMON_RANK_EVERYDAY = 2000
"""The most common English words ("decide", "come") weigh least among content words."""
COMMON_RANK_RARE = 20000
"""Words rarer than this in English are the story's own terms (the names and things of one story): full weight."""
EVERYDAY_FACTOR_TOP = 0.5
"""Weight kept by a knowledge-base word among the most common English words."""
EVERYDAY_FACTOR = 0.75
"""Weight kept by a knowledge-base word of ordinary (not rare) English."""
UNKNOWN_EVERYDAY_WEIGHT = 0.7
"""Weight of an ordinary English word the knowledge base never uses ("wife", "weather"):
less than a rare unknown word, more than nothing, since it is what the article lacks."""

_STEMMER = snowballstemmer.stemmer("english")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """The Snowball stem of a casefolded word."""
    return str(_STEMMER.stemWord(word))


def words(text: str) -> list[str]:
    """Casefolded words of a text: hyphens split, possessive 's dropped, apostrophes removed."""
    out: list[str] = []
    expand = _expand
    for raw in _WORD.findall(text.casefold().replace("’", "'")):
        out.extend(expand(raw))
    return out


_REPEATS = re.compile(r"(.)\1{2,}")


def _plain(word: str) -> str:
    word = _REPEATS.sub(r"\1", word)  # "hiii" -> "hi", "soooo" -> "so"
    return (word[:-2] if word.endswith("'s") else word).replace("'", "")


@lru_cache(maxsize=65536)
def _expand(raw: str) -> tuple[str, ...]:
    """The words one casefolded raw word stands for (chat spellings expanded); cached, since
    the same few thousand words make up every phrasing and question."""
    word = _plain(raw)
    return tuple(SLANG.get(word, word).split())


def types_disagree(asked: str | None, phrasing: str | None) -> bool:
    """Whether a question's type and a phrasing's disagree (both known and different); a
    plain "what" question disagrees only with who/when/where/why/how-many phrasings."""
    return bool(asked and phrasing and asked != phrasing and (asked != "what" or phrasing in _WH_TYPE_NAMES))


def question_type(text: str) -> str | None:
    """The question type a text asks (who, when, how-many, ...), or None if unclear."""
    return _type_of_words(words(text))


def _type_of_words(ws: list[str]) -> str | None:
    opener = next((w for w in ws if w in _WH_WORDS), None)
    if opener in ("what", "which") and ("when" in ws or "where" in ws):
        # "what were they crossing when the video showed...": a "when" or "where" later on
        # that a subject follows joins a clause; it does not ask.
        first = ws.index(opener)
        ws = [
            w
            for i, w in enumerate(ws)
            if not (
                i > first and w in ("when", "where") and i + 1 < len(ws) and ws[i + 1] not in _ASKING_VERBS
            )
        ]
    lowered = " ".join(ws)  # casefolded, chat spellings ("hw", "wat") expanded
    for pattern, qtype in _WH_TYPES:
        if pattern.search(lowered):
            return qtype
    return "what" if opener in ("what", "which") else None


def _counted(
    ws: list[str], terms: list[_Term], asking: frozenset[tuple[str, str]] = _COUNTING
) -> _Term | None:
    """What a "how many" question counts ("children" in "how many children were there"), or
    (with `asking` _AGEING) whose age a "how old" question asks ("daughter" in "how old was
    the captain's daughter"), or (_LASTING) what a "how long" question asks the duration of ("bus"
    in "how long were they on the bus"); None for other questions, and when a synonym phrase
    takes in the "how many" itself ("how many people" as a group's size)."""
    reach = 5 if asking is _LASTING else 3
    for i in range(len(ws) - 1):
        if (ws[i], ws[i + 1]) in asking:
            if any(t.start <= i < t.end for t in terms):  # a synonym phrase took in "how many"
                return None
            after = [t for t in terms if t.start >= i + 2]
            if not after or after[0].start > i + reach:
                return None
            return after[1] if after[0].owner and len(after) > 1 else after[0]
    return None


def _question_part(text: str) -> str | None:
    """The sentence of a message of several that asks: the last that asks what/who/why... with
    a question mark, else the last that asks one at all, else the last yes/no question ("...all
    morning. Does it say so?"); None when the message is one sentence."""
    pieces = _SENTENCE_BREAK.split(text)  # sentences, and what broke them (odd places)
    if len(pieces) < 3:
        return None

    def marked(i: int) -> bool:
        return pieces[i].rstrip().endswith("?") or (i + 1 < len(pieces) and "?" in pieces[i + 1])

    def asks_what(i: int) -> bool:
        return _ASKS_WITHIN.search(pieces[i].casefold()) is not None

    def asks_yes_or_no(i: int) -> bool:
        return marked(i) and _YES_NO.match(pieces[i].strip().casefold()) is not None

    for asks in (lambda i: marked(i) and asks_what(i), asks_what, asks_yes_or_no):
        for i in range(len(pieces) - 1, -1, -2):
            part = pieces[i].strip()
            if part and asks(i):
                if (
                    i > 0
                    and _JOINS.fullmatch(pieces[i - 1])
                    and (
                        _REFERS_BACK.search(part.casefold())
                        or (len(part.split()) <= SHORT_PART and not asks_what(i - 2))
                    )
                ):
                    # "The mayor - who is this man?", "Back home on the ferry - who
                    # went?": the question asks about what comes before it.
                    return None
                return part if part != text else None
    return None


def _predicate(ws: list[str], terms: list[_Term]) -> _Term | None:
    """The first content word soon after the question word: what is asked about ("paid" in
    "who paid for the flight", "eat" in "what did they eat on the train"), or None."""
    for i, word in enumerate(ws):
        if word in _WH_WORDS:
            after = [t for t in terms if t.start > i and t.original not in _KIND_WORDS]
            return after[0] if after and after[0].start <= i + PREDICATE_REACH else None
    return None


_SMALL_WORDS = sorted(w for w in STOPWORDS if len(w) >= 4 or w in _WH_WORDS)


def _repair_small_word(word: str, common: dict[str, int]) -> str | None:
    """The question or function word a misspelt word meant ("whree", "wehre" -> "where"), if
    it is one slip from one; such words are looked at before the knowledge base's own."""
    if common.get(word, COMMON_RANK_RARE) < SMALL_RANK:
        return None
    return _near_small_word(word, real_word=word in common)


def _near_small_word(word: str, *, real_word: bool = False) -> str | None:
    """The question or function word `word` is one slip from, if any ("whree": where). For a
    `real_word` ("dose", "hav"), only a dropped, extra or swapped letter counts: "paid" is not
    a slip for "said"."""
    if len(word) < TYPO_MIN_LENGTH - 1:
        return None
    from rapidfuzz import process
    from rapidfuzz.distance import OSA, Indel

    found = [
        str(f[0])
        for f in process.extract(word, _SMALL_WORDS, scorer=OSA.distance, score_cutoff=1, limit=None)
    ]
    if not found:
        return None

    def likelihood(small: str) -> tuple[int, int, str]:
        # Two letters swapped ("wehre": where) is likelier than one dropped or doubled ("were"),
        # which is likelier than one wrong ("when"); between equals, a question word.
        slip = 0 if sorted(word) == sorted(small) else 1 if Indel.distance(word, small) == 1 else 2
        return (slip, 0 if small in _WH_WORDS else 1, small)

    best = min(found, key=likelihood)
    if real_word and likelihood(best)[0] == 2:
        return None
    return best


def synonym_clashes(groups: Sequence[Sequence[str]], file: str | None = None) -> list[Problem]:
    """Warnings for synonym phrases of different groups that read the same once stemmed
    ("broadcaster" and "broadcast"): the matcher folds both into the first group, so the
    later one is silently ignored."""
    owner: dict[tuple[str, ...], tuple[int, str]] = {}
    problems: list[Problem] = []
    for number, group in enumerate(groups, 1):
        for phrase in group:
            key = tuple(stem(w) for w in words(phrase))
            first = owner.setdefault(key, (number, phrase))
            if key and first[0] != number:
                problems.append(
                    Problem(
                        f"synonyms: '{phrase}' (group {number}) reads the same as '{first[1]}' "
                        f"(group {first[0]}) once stemmed, so the matcher treats it as group "
                        f"{first[0]}; drop it or move it there",
                        file=file,
                        severity="warning",
                    )
                )
    return problems


@lru_cache(maxsize=1)
def common_words() -> dict[str, int]:
    """Ordinary English words with their frequency rank (0 = most frequent)."""
    path = Path(__file__).with_name("data") / "common_words.txt"
    if path.is_file():  # importlib.resources costs a few ms of start-up (zipfile, tempfile)
        text = path.read_text("utf-8")
    else:  # pragma: no cover - installed as a zip
        from importlib import resources

        text = resources.files("bot.core").joinpath("data/common_words.txt").read_text("utf-8")
    ranked = [w for w in text.splitlines() if w and not w.startswith("#")]
    return dict(zip(ranked, range(len(ranked)), strict=True))


def _bound(union: float) -> float:
    """The highest score an entry can get when it explains `union` of the question: its best
    phrasing can explain no more of the question than the whole entry does, and at best
    all of that phrasing was asked about (precision 1)."""
    if union <= 0:
        return 0.0
    best_phrasing = 100.0 * (1 + BETA2) * union / (BETA2 + union)
    return (1 - ENTRY_BLEND) * best_phrasing + ENTRY_BLEND * 100.0 * union if ENTRY_BLEND else best_phrasing


def _everyday_factor(rank: int | None) -> float:
    """How much a word's frequency in ordinary English discounts its weight."""
    if rank is None or rank >= COMMON_RANK_RARE:
        return 1.0
    return EVERYDAY_FACTOR_TOP if rank < COMMON_RANK_EVERYDAY else EVERYDAY_FACTOR


@dataclass(frozen=True)
class Candidate:
    """One entry's lexical score for a question (0-100), and the phrasing that earned it."""

    entry: Entry
    score: float
    phrasing: str


ABOUT_ME = "a question about me, not the story"
THANKS = "thanks, not a question"
NO_CONTENT = "no content words"
VAGUE = "a question with nothing to look up"
"""A real question ("how far away is it?", "who was it?") whose every word is a question word or
a stopword: it asks something, but not about anything the matcher can find."""


GUARDS = (
    "missing_name",
    "wrong_count",
    "no_unit",
    "no_name",
    "unsaid_predicate",
    "wrong_shape",
    "type_clash",
)
"""The lexical checks `TermMatcher.guards` reports per candidate entry."""


@dataclass(frozen=True)
class Analysis:
    """A question as the term matcher reads it (see `TermMatcher.analyse`)."""

    text: str
    reason: str = ""  # set when the question is no question about the story (small talk, empty)
    reading: str = ""
    qtype: str | None = None
    words: tuple[str, ...] = ()
    terms: tuple[_Term, ...] = ()
    scores: dict[int, float] = field(default_factory=dict)
    unknown_share: float = 0.0
    foreign_share: float = 0.0
    exact: int | None = None
    repaired: str = ""  # the message with its misspelt words repaired, when any was


@dataclass(frozen=True)
class _Term:
    """A question term after synonym folding and typo repair."""

    key: str
    weight: float
    original: str
    name_like: bool
    start: int  # the span of question words it stands for: words[start:end]
    end: int
    known: bool  # whether the knowledge base uses it
    owner: bool = False  # written with 's: "captain's" in "captain's daughter"
    form: str | None = None  # the knowledge-base word a misspelt word was repaired to


@dataclass(frozen=True)
class _Phrasing:
    entry_index: int
    text: str
    terms: frozenset[str]
    weight: float
    qtype: str | None


class TermMatcher:
    """An index over one knowledge base's phrasings; immutable once built."""

    def __init__(self, kb: KnowledgeBase) -> None:
        with paused_gc():
            self._build(kb)

    def _build(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        self._common = common_words()
        self._synonyms = self._synonym_table(kb.synonyms)
        self._max_phrase = max((len(k) for k in self._synonyms), default=1)
        # The synonym phrase lengths starting with each stem, longest first (for _fold).
        sizes: dict[str, set[int]] = defaultdict(set)
        for key in self._synonyms:
            sizes[key[0]].add(len(key))
        self._phrase_sizes = {first: sorted(n, reverse=True) for first, n in sizes.items()}
        # Words of each distinct text, while building: sources and answers repeat.
        self._words_of: dict[str, list[str]] = {}
        self._index = {e.id: i for i, e in enumerate(kb.entries)}
        self._phrasings: list[_Phrasing] = []
        self._exact: dict[str, int] = {}
        entry_terms: list[set[str]] = []
        raw_terms: list[list[frozenset[str]]] = []
        for index, entry in enumerate(kb.entries):
            per_phrasing = [frozenset(self._terms_of(p)) for p in entry.phrasings]
            raw_terms.append(per_phrasing)
            entry_terms.append(set().union(*per_phrasing))
            for phrasing in entry.phrasings:
                self._exact.setdefault(phrasing_key(phrasing), index)
        # Every word form the knowledge base uses, for typo repair, with its stem.
        self._forms: dict[str, str] = {}
        texts = [p for e in kb.entries for p in (*e.phrasings, e.answer, *e.sources)]
        texts += [w for group in kb.synonyms for w in group]
        for text in dict.fromkeys(texts):  # each distinct text once, in first-seen order
            for word in self._words(text):
                if word not in STOPWORDS and not word.isdigit():
                    self._forms.setdefault(word, stem(word))
        self._form_list = list(self._forms)
        self._stems = set(self._forms.values())
        # Every stem of the article too: a question word the story never uses at all is a sign
        # the question is about something else ("the weather in paris").
        self._story_stems = self._stems | {stem(w) for w in self._words(kb.story.text)}
        # Inverse document frequency over entries: a term in every entry says little;
        # so does an everyday English word, next to the story's own names and terms.
        df: dict[str, int] = defaultdict(int)
        for terms in entry_terms:
            for term in terms:
                df[term] += 1
        n = max(len(kb.entries), 2)
        rank_of_stem: dict[str, int] = {}
        for form, stemmed in self._forms.items():
            rank = self._common.get(form)
            if rank is not None:
                rank_of_stem[stemmed] = min(rank, rank_of_stem.get(stemmed, rank))
        # A term with a synonym group is one curators declared a story term: not "everyday".
        curated = set(self._synonyms.values())
        self._weights = {
            t: max(MIN_WEIGHT, 1.0 - math.log(1 + c) / math.log(1 + n))
            * (1.0 if t in curated else _everyday_factor(rank_of_stem.get(t)))
            for t, c in df.items()
        }
        self._postings: dict[str, list[int]] = defaultdict(list)
        # An entry's phrasings are numbered consecutively: entry i has _first[i] to _first[i+1] - 1.
        self._first: list[int] = []
        self._entry_of: list[int] = []
        for index, entry in enumerate(kb.entries):
            self._first.append(len(self._phrasings))
            self._entry_of.extend([index] * len(entry.phrasings))
            for phrasing, phrasing_terms in zip(entry.phrasings, raw_terms[index], strict=True):
                pid = len(self._phrasings)
                self._phrasings.append(
                    _Phrasing(
                        entry_index=index,
                        text=phrasing,
                        terms=phrasing_terms,
                        # Summed in sorted order: a set's order varies between processes
                        # (string hashing), and float sums with it.
                        weight=sum(self._weights[t] for t in sorted(phrasing_terms)) or 1.0,
                        qtype=_type_of_words(self._words(phrasing)) or entry.type,
                    )
                )
                for term in phrasing_terms:
                    self._postings[term].append(pid)
        self._first.append(len(self._phrasings))
        # All of an entry's phrasings, its answer and its article sentences, for the entry-level
        # score: a reader's full question often borrows the article's own words.
        told = [set(self._terms_of(e.answer)) for e in kb.entries]  # what each answer tells of
        facts = [
            said.union(*map(self._terms_of, e.sources)) for said, e in zip(told, kb.entries, strict=True)
        ]
        self._entry_terms = [terms | fact for terms, fact in zip(entry_terms, facts, strict=True)]
        # Everything an entry mentions, for the "names must be in the entry" check (the same
        # sets: neither is changed once built).
        self._entry_vocab = self._entry_terms
        self._vocab: set[str] = set().union(*self._entry_vocab) if self._entry_vocab else set()
        # What each entry counts, for "how many X" questions: the words of its answer and article
        # sentences, and what its own "how many" phrasings count; and whose age it gives, from
        # its "how old" phrasings (empty: it gives none).
        self._counts: list[set[str]] = []
        self._ages: list[set[str]] = []
        self._lasts: list[set[str]] = []  # what the entry gives a duration of
        self._told = told
        for entry, fact in zip(kb.entries, facts, strict=True):
            counted, aged, lasted = self._counted_by(entry)
            self._counts.append(fact | counted)
            self._ages.append(aged)
            self._lasts.append(lasted | self._timed(entry.answer))
        del self._words_of
        # Whether each entry's answer has what a question type needs (a number, a time, ...).
        self._phrasing_types = {ph.qtype for ph in self._phrasings if ph.qtype is not None}
        self._has_shape = {
            qtype: [has_shape(e.answer) for e in kb.entries] for qtype, has_shape in ANSWER_SHAPES.items()
        }

    # ------------------------------------------------------------------ analysis

    @staticmethod
    def _synonym_table(groups: Iterable[Sequence[str]]) -> dict[tuple[str, ...], str]:
        table: dict[tuple[str, ...], str] = {}
        for group in groups:
            canonical = "_".join(stem(w) for w in words(group[0]))
            for phrase in group:
                key = tuple(stem(w) for w in words(phrase))
                if key:
                    table.setdefault(key, canonical)
        return table

    def _fold(self, stems: list[str]) -> list[tuple[str, int, int]]:
        """Replace synonym phrases (longest first) by their canonical term.

        Returns (term, start, end) spans over the input word positions.
        """
        out: list[tuple[str, int, int]] = []
        i = 0
        n = len(stems)
        while i < n:
            # Only the lengths of synonym phrases that start with this stem can match:
            # the same result as trying every length from the longest down.
            for size in self._phrase_sizes.get(stems[i], ()):
                if size > n - i:
                    continue
                canonical = self._synonyms.get(tuple(stems[i : i + size]))
                if canonical is not None:
                    out.append((canonical, i, i + size))
                    i += size
                    break
            else:
                out.append((stems[i], i, i + 1))
                i += 1
        return out

    def _counted_by(self, entry: Entry) -> tuple[set[str], set[str], set[str]]:
        """What the entry's own "how many" phrasings count ("months" in "how many months were the
        borders sealed"), whose age its "how old" phrasings ask ("daughter"), and what its "how
        long" phrasings ask the duration of ("bus" in "how long was the bus ride")."""
        counted: set[str] = set()
        aged: set[str] = set()
        lasted: set[str] = set()
        for phrasing in entry.phrasings:
            if _COUNTS_OR_AGES.search(phrasing.casefold()):
                ws, terms = self._spans(phrasing)
                for asking, into in ((_COUNTING, counted), (_AGEING, aged), (_LASTING, lasted)):
                    found = _counted(ws, terms, asking)
                    if found is not None:
                        into.add(found.key)
        return counted, aged, lasted

    def _timed(self, answer: str) -> set[str]:
        """The terms of an answer that it gives a duration of: those a few words from a time
        unit ("bus" in "two hours on a bus"; not "flew" at the far end of the sentence)."""
        units = [i for i, w in enumerate(self._words(answer)) if w in _TIME_UNITS]
        if not units:
            return set()
        _, terms = self._spans(answer)
        return {t.key for t in terms if any(abs(t.start - i) <= DURATION_REACH for i in units)}

    def _spans(self, text: str) -> tuple[list[str], list[_Term]]:
        """A knowledge-base text's words and content terms with their spans, as `_analyse`
        gives them for a question, without its typo repair and weights (curated text needs
        neither; this is much faster over a large knowledge base)."""
        ws = self._words(text)
        owners = {_plain(w) for w in _OWNER.findall(text.casefold().replace("’", "'"))}
        return ws, [
            _Term(term, 1.0, ws[start], False, start, end, True, ws[end - 1] in owners)
            for term, start, end in self._fold([stem(w) for w in ws])
            if not (end - start == 1 and ws[start] in STOPWORDS)
        ]

    def _words(self, text: str) -> list[str]:
        """`words(text)`, computed once per distinct text while building."""
        ws = self._words_of.get(text)
        if ws is None:
            ws = self._words_of[text] = words(text)
        return ws

    def _terms_of(self, text: str) -> list[str]:
        """Content terms of a knowledge-base text (no typo repair: it is curated)."""
        ws = self._words(text)
        return [
            term
            for term, start, end in self._fold([stem(w) for w in ws])
            if not (end - start == 1 and ws[start] in STOPWORDS)
        ]

    def _analyse(self, text: str) -> tuple[list[str], list[_Term]]:
        """A reader's question as casefolded words, and its content terms (typos repaired,
        synonyms folded), each with its weight and the span of words it stands for."""
        original: list[str] = []
        ws: list[str] = []
        for raw in _WORD.findall(text.replace("’", "'")):
            for word in SLANG.get(_plain(raw.casefold()), _plain(raw.casefold())).split():
                original.append(raw)
                ws.append(word)
        stems: list[str] = []
        repaired: list[bool] = []
        forms: list[str | None] = []
        for i, word in enumerate(ws):
            stemmed = stem(word)
            fixed = form = None
            if word not in STOPWORDS and stemmed not in self._stems:
                small = _repair_small_word(word, self._common)
                if small is not None:  # "whree" -> "where": a question word, not a term
                    ws[i] = word = small
                    stemmed = stem(small)
                else:
                    form = self._repair_form(word)
                    fixed = self._forms[form] if form is not None else None
            stems.append(fixed or stemmed)
            repaired.append(fixed is not None)
            forms.append(form)
        terms: list[_Term] = []
        for term, start, end in self._fold(stems):
            word = ws[start]
            if end - start == 1 and word in STOPWORDS:
                continue
            # A capitalised word past the first, or a number, names something specific.
            name_like = any(ch.isdigit() for ch in word) or (
                start > 0 and original[start][:1].isupper() and original[start] != "I"
            )
            weight = self._weights.get(term)
            if weight is None:  # a word the knowledge base never uses
                rank = self._common.get(word)
                if rank is not None and rank < COMMON_RANK_STOP:
                    continue
                weight = UNKNOWN_EVERYDAY_WEIGHT if rank is not None else 1.0
                known = False
            else:
                known = True
            if any(repaired[start:end]):
                weight *= TYPO_FACTOR
            last = original[end - 1].casefold().replace("’", "'")
            owner = (
                (last.endswith("'s") and last not in _CONTRACTIONS)
                or (  # "captains daughter"
                    last.endswith("s") and last[:-1] in self._forms and last not in self._forms
                )
            )
            terms.append(
                _Term(
                    term,
                    weight,
                    word,
                    name_like,
                    start,
                    end,
                    known,
                    owner,
                    forms[start] if end - start == 1 else None,
                )
            )
        return ws, terms

    def _surface_fixes(self, text: str, done: dict[str, str]) -> dict[str, str]:
        """Slips the terms do not show, for the sentence model's reading: a misspelt question or
        function word ("wehre", "wher": where), and a word whose stem is the knowledge base's but
        whose spelling is no English word ("explod", "capsul": the base's own form)."""
        out: dict[str, str] = {}
        for word in words(text):
            if word in done or word in STOPWORDS or word in self._forms or word.isdigit():
                continue
            stemmed = stem(word)
            if stemmed not in self._stems:
                small = _repair_small_word(word, self._common)
                if small is not None:
                    out[word] = small
            elif word not in self._common and len(word) >= TYPO_MIN_LENGTH:
                from rapidfuzz.distance import OSA

                same = [form for form, s in self._forms.items() if s == stemmed]
                if same:
                    out[word] = min(same, key=lambda form: (OSA.distance(word, form), form))
        return out

    def _repair(self, word: str) -> str | None:
        """The stem of the knowledge-base word a misspelt word most likely meant, if any."""
        form = self._repair_form(word)
        return self._forms[form] if form is not None else None

    def _repair_form(self, word: str) -> str | None:
        """The knowledge-base word a misspelt word most likely meant, if any.

        Ordinary English words are left alone: "weather" must not become "feather".
        """
        if word.isdigit() or self._common.get(word, COMMON_RANK_RARE) < COMMON_RANK_RARE:
            return None
        if len(word) < TYPO_MIN_LENGTH:
            if len(word) < 3:
                return None
            # A three-letter word is only repaired when its last two letters were swapped
            # ("bsu": bus); "asd" is a keyboard mash, not "sad".
            swapped = word[0] + word[2] + word[1]
            return swapped if swapped in self._forms else None
        # One slip (a letter wrong, missing, extra or two swapped) in a short word, two in
        # a long one.
        max_edits = 1 if len(word) <= TYPO_SHORT_WORD else 2
        from rapidfuzz import process  # imported when first needed: `storybot ask` starts faster
        from rapidfuzz.distance import OSA, Indel

        found = process.extract(
            word, self._form_list, scorer=OSA.distance, score_cutoff=max_edits, limit=None
        )
        if not found:
            return None
        # Between equally close words, a dropped or doubled letter ("clohing": clothing) is a
        # likelier slip than a wrong one (closing).
        closest = min(found, key=lambda f: (f[1], Indel.distance(word, f[0]), f[2]))
        return str(closest[0])

    # ------------------------------------------------------------------ matching

    def analyse(self, question: str, limit: int = 8) -> Analysis:
        """The lexical evidence about a question: its reading, type, terms and the `limit` entries
        it shares most terms with (scores 0-100), for the decision model to weigh."""
        text = clean_question(question)
        if not text:
            return Analysis(text, reason="empty question")
        exact = self._exact.get(phrasing_key(text))
        core = _FILLER.sub(" ", _EMOTICON.sub(". ", text))
        part = _question_part(core)
        if _ABOUT_BOT.search(" ".join(words(part or core))):
            return Analysis(text, reason=ABOUT_ME)
        if _THANKS.match(text.casefold()) and not _ASKS_WITHIN.search(text.casefold()) and "?" not in text:
            return Analysis(text, reason=THANKS)
        ws, terms = self._analyse(core)
        if exact is None:
            exact = self._exact.get(" ".join(ws))
        qtype = _type_of_words(ws)
        ranked = self._rank(terms, qtype, limit) if terms else []
        for reading in (part, self._without_chatter(core)):
            if reading is None or reading == core:
                continue
            r_ws, r_terms = self._analyse(reading)
            r_type = _type_of_words(r_ws)
            r_ranked = self._rank(r_terms, r_type, limit) if r_terms else []
            if r_ranked and (not ranked or r_ranked[0].score > ranked[0].score):
                core, ws, terms, qtype, ranked = reading, r_ws, r_terms, r_type, r_ranked
        if not terms and exact is None:
            return Analysis(text, reason=VAGUE if qtype is not None else NO_CONTENT, qtype=qtype)
        total = sum(t.weight for t in terms) or 1.0
        unknown = sum(t.weight for t in terms if not t.known) / total
        foreign = (
            sum(
                t.weight
                for t in terms
                if t.key not in self._story_stems and stem(t.original) not in self._story_stems
            )
            / total
        )
        fixes = {t.original: t.form for t in terms if t.form and t.form != t.original}
        fixes.update(self._surface_fixes(text, fixes))
        fixed_text = (
            re.sub(r"[^\W_]+(?:'[^\W_]+)*", lambda m: fixes.get(m.group(0).casefold(), m.group(0)), text)
            if fixes
            else ""
        )
        return Analysis(
            text,
            repaired=fixed_text,
            reading=core,
            qtype=qtype,
            words=tuple(ws),
            terms=tuple(terms),
            scores={self._index[c.entry.id]: c.score for c in ranked},
            unknown_share=unknown,
            foreign_share=foreign,
            exact=exact,
        )

    def entry_terms(self, index: int) -> frozenset[str] | set[str]:
        """The terms entry `index` uses in its phrasings, answer and article sentences."""
        return self._entry_terms[index]

    def guards(self, analysis: Analysis, index: int) -> dict[str, float]:
        """Whether entry `index` lacks what the question asks for, one flag per check (1.0: it lacks it).

        Each check is general English: a name or number the entry never mentions; a "how many"
        whose counted thing the entry does not count; an age, a month or year, a duration or a
        name asked for that the answer does not give; the word the question asks about
        ("who *paid*") absent from the entry."""
        entry = self.kb.entries[index]
        ws, terms, qtype = list(analysis.words), list(analysis.terms), analysis.qtype
        flags = dict.fromkeys(GUARDS, 0.0)
        if self._missing_names(terms, entry):
            flags["missing_name"] = 1.0
        counted = _counted(ws, terms) if qtype != "how-long" else None
        if counted is not None and counted.known and counted.key not in self._counts[index]:
            flags["wrong_count"] = 1.0
        aged = _counted(ws, terms, _AGEING)
        ages = self._ages[index]
        if aged is not None and aged.known and ages and aged.key not in ages:
            flags["wrong_count"] = 1.0
        unit = _WHEN_ASKED.search(" ".join(ws))
        if unit is not None and not _WHEN_GIVEN[unit.group(2)].search(entry.answer.casefold()):
            flags["no_unit"] = 1.0
        lasted = _counted(ws, terms, _LASTING)
        if (
            qtype == "how-long"
            and lasted is not None
            and lasted.key in self._told[index]
            and lasted.key not in self._lasts[index]
        ):
            flags["no_unit"] = 1.0
        naming = next((t for t in terms if t.key in _NAMING), None)
        if naming is not None and not _NAMING.intersection(self._entry_vocab[index]):
            flags["no_name"] = 1.0
        asked = _predicate(ws, terms)
        if (
            asked is not None
            and asked.key not in self._entry_vocab[index]
            and not _near_small_word(asked.original, real_word=True)
        ):
            flags["unsaid_predicate"] = 1.0
        has_shape = self._has_shape.get(qtype or "")
        if has_shape is not None and not has_shape[index]:
            flags["wrong_shape"] = 1.0
        own = self._phrasings[self._first[index] : self._first[index + 1]]
        if own and all(types_disagree(qtype, p.qtype) for p in own):
            flags["type_clash"] = 1.0
        return flags

    def _without_chatter(self, text: str) -> str | None:
        """The message without its clauses that mention nothing the knowledge base knows and ask
        nothing ("aww that sounds fun tbh, were they cheering?"), or None if none is dropped."""
        clauses = [c.strip() for c in _CLAUSE_BREAK.split(text) if c and c.strip()]
        if len(clauses) < 2:
            return None
        kept = [
            c
            for c in clauses
            if _ASKS_WITHIN.search(c.casefold()) or any(t.known for t in self._analyse(c)[1])
        ]
        return " ".join(kept) if kept and len(kept) < len(clauses) else None

    def _rank(self, terms: list[_Term], qtype: str | None, limit: int = MAX_SUGGESTIONS) -> list[Candidate]:
        """The best `limit` entries sharing a term with the question, best first.

        Entries whose answer lacks what the question type needs (a number for "how many")
        are left out. An entry's score is at most `_bound` of how much of the question the
        entry as a whole explains, so entries are scored in that order, and scoring stops
        once no entry left can reach the top `limit`: the same result as scoring them all.
        """
        query: dict[str, float] = {}
        for t in terms:
            query[t.key] = max(query.get(t.key, 0.0), t.weight)
        total = sum(query.values())
        candidates: set[int] = set()
        for key in query:
            postings = self._postings.get(key, ())
            if len(postings) <= MAX_POSTINGS:
                candidates.update(postings)
        if not candidates:
            # Every term is common in this (large) knowledge base: let the rarest nominate.
            nominees: list[list[int]] = [self._postings[key] for key in query if key in self._postings]
            if not nominees:
                return []
            rarest: list[int] = min(nominees, key=len)
            candidates.update(rarest)
        items = list(query.items())
        entry_terms = self._entry_terms
        # An entry sharing c of the question's terms explains at most the c heaviest of them:
        # visit entries by that count (set operations, cheap), most first.
        ceiling = [0.0]
        for weight in sorted(query.values(), reverse=True):
            ceiling.append(ceiling[-1] + weight)
        asked = frozenset(query)
        indexes = list(set(map(self._entry_of.__getitem__, candidates)))
        known = list(map(asked.intersection, map(entry_terms.__getitem__, indexes)))
        shares = list(map(len, known))
        visit = sorted(range(len(indexes)), key=shares.__getitem__, reverse=True)
        has_shape = self._has_shape.get(qtype or "")
        # The phrasing types this question's type disagrees with (a set lookup per phrasing).
        clashing = {t for t in self._phrasing_types if types_disagree(qtype, t)}
        entries = self.kb.entries
        phrasings = self._phrasings
        weights = self._weights
        top: list[float] = []  # the best `limit` scores so far (a min-heap)
        kept: list[tuple[float, int, int]] = []  # (-score, entry index, phrasing id)
        order: dict[int, int] | None = None
        # Both sums depend only on which question terms a phrasing has, and few such sets occur:
        # each is summed once, in the question's term order (so to the same last bit).
        sums: dict[frozenset[str], tuple[float, float]] = {}
        unions: dict[frozenset[str], tuple[float, float]] = {}
        for position in visit:
            if len(top) == limit and _bound(ceiling[shares[position]] / total) < top[0] - 1e-6:
                break  # neither this entry nor any after it can make the top `limit`
            index = indexes[position]
            if has_shape is not None and not has_shape[index]:
                continue
            # How much of the question the entry as a whole explains: its share of the score.
            entry_common = known[position]
            found = unions.get(entry_common)
            if found is None:
                union = sum(w for k, w in items if k in entry_common) / total
                found = unions[entry_common] = (union, _bound(union))
            union, bound = found
            if len(top) == limit and bound < top[0] - 1e-6:
                continue
            best_score = -1.0
            best_pid = -1
            for pid in range(self._first[index], self._first[index + 1]):
                if pid not in candidates:
                    continue
                phrasing = phrasings[pid]
                common = asked & phrasing.terms
                pair = sums.get(common)
                if pair is None:
                    pair = sums[common] = (
                        sum(w for k, w in items if k in common),
                        sum(weights[k] for k in query if k in common),
                    )
                shared, shared_p = pair
                recall = shared / total  # how much of the question this phrasing explains
                precision = shared_p / phrasing.weight  # how much of it was asked about
                if precision > 1.0:
                    precision = 1.0
                if recall <= 0 or precision <= 0:
                    continue
                score = 100.0 * (1 + BETA2) * precision * recall / (BETA2 * precision + recall)
                if phrasing.qtype in clashing:
                    score *= TYPE_MISMATCH_FACTOR
                if score > best_score:
                    best_score, best_pid = score, pid
                elif score == best_score:
                    # A tie goes to the phrasing met first when going through the candidates.
                    if order is None:
                        order = dict(zip(candidates, range(len(candidates)), strict=True))
                    if order[pid] < order[best_pid]:
                        best_pid = pid
            if best_pid < 0:
                continue
            if ENTRY_BLEND:
                best_score = (1 - ENTRY_BLEND) * best_score + ENTRY_BLEND * 100.0 * union
            kept.append((-best_score, index, best_pid))
            heapq.heappush(top, best_score)
            if len(top) > limit:
                heapq.heappop(top)
        kept.sort()
        return [
            Candidate(entries[index], round(-negative, 1), phrasings[pid].text)
            for negative, index, pid in kept[:limit]
        ]

    def _missing_names(self, terms: list[_Term], entry: Entry) -> list[str]:
        """Names and numbers in the question that the entry never mentions."""
        vocab = self._entry_vocab[self._index[entry.id]]
        return [
            t.original
            for t in terms
            if t.name_like
            and t.key not in vocab
            and (t.key not in self._vocab or any(ch.isdigit() for ch in t.original))
        ]

    def complete(self, prefix: str, limit: int = 25) -> list[Entry]:
        """Entries whose questions best fit a partly typed question (for autocomplete)."""
        text = clean_question(prefix, limit=100)
        if not text:
            return list(self.kb.entries[:limit])
        from rapidfuzz import fuzz, process

        found = process.extract(
            text.casefold(),
            [e.question.casefold() for e in self.kb.entries],
            scorer=fuzz.WRatio,
            limit=limit,
            score_cutoff=30,
        )
        return [self.kb.entries[index] for _, _, index in found]
