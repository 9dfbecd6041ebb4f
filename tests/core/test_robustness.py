"""Every entry's own question, wrapped in chat or misspelt, still finds its entry.

Generated variations of the knowledge base's questions, not a held-out set: they guard the
matcher's handling of chatter and typos across *all* entries, where the question sets only
sample some. The floors sit just under what the matcher does today.
"""

from __future__ import annotations

import random

import pytest

from bot.core.knowledge import KnowledgeBase, load_knowledge
from bot.core.matching import Matcher
from tests.conftest import SHIPPED

CHATTER = [
    # Written from how people chat, not from any question set.
    "hey quick q, {q}", "{q} lol", "ngl {q}", "sorry if this is dumb but {q}", "yo {q}", "omg {q}",
    "{q} pls", "{q} thx", "idk if u know but {q}", "so like {q}", "asking for a friend, {q}",
    "random question: {q}", "could you tell me {q}", "do you know {q}", "i was wondering {q}",
    "i heard about this, {q}", "hi there! {q}", "{q}?? thanks in advance", "ok but {q}", "wait {q}",
    "can someone explain {q}", "hello bot, {q}", "{q} haha", "hmm {q}", "good evening, {q}", "lmao {q}",
    "bruh {q}", "real quick {q}", "question for ya: {q}", "{q} i'm so confused", "just curious, {q}",
    "anyone know {q}", "{q} (sorry for my english)", "hey guys {q}", "tbh i dont get it, {q}", "{q} cheers",
    "lowkey {q}", "ngl tho {q}", "fr fr {q}", "istg {q}", "bestie {q}", "y'all {q}", "{q} anyone?", "{q}?? lol",
    "hiii {q}", "heyyy {q}", "yo yo {q}", "sup guys {q}", "good morning all, {q}", "hello there! {q}",
    "quick one: {q}", "random but {q}", "dumb q but {q}", "silly q: {q}", "not gonna lie {q}", "to be honest {q}",
    "for real though, {q}", "in the article, {q}", "in this story {q}", "according to the article {q}",
    "from what i read, {q}", "my mom asked me {q}", "my teacher asked us {q}", "for homework: {q}",
    "asking because i'm curious, {q}", "out of curiosity {q}", "curious - {q}", "hmm so {q}", "wait so {q}",
    "so basically {q}", "um {q}", "uh {q}", "{q} 🤔", "🤔 {q}", "{q} 😂😂", "😭 {q}", "{q} :)", "{q} :D", "{q} xd",
    "{q} lmaoo", "{q} haha thx", "pls help {q}", "help!! {q}", "someone tell me {q}", "i need to know {q}",
    "can u tell me {q}", "do u know {q}", "does anybody know {q}", "hey storybot {q}", "@storybot {q}", "bot, {q}",
    "ok next question: {q}", "another question - {q}", "and also {q}", "also, {q}", "one more thing, {q}",
    "btw {q}", "oh and {q}", "{q} asking for a school project", "{q} thanks!", "{q} thank you",
    "{q} cheers mate", "{q} ty", "hey i just read this crazy story. {q}", "wow this is wild. {q}",
    "that's insane lol. {q}", "no way. {q}", "omg poor kids. {q}", "i can't believe this happened. {q}",
]  # fmt: skip
CHATTER_FLOOR = 0.98
TYPO_FLOOR = 0.93  # 0.95 with the old hand-tuned matcher; 89.7% in session 4, 96.0% with the projection


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return load_knowledge(SHIPPED)


@pytest.fixture(scope="module")
def matcher(kb: KnowledgeBase) -> Matcher:
    return Matcher(kb)


def _rate(matcher: Matcher, cases: list[tuple[str, str]]) -> tuple[float, list[str]]:
    misses = []
    for question, entry_id in cases:
        best = matcher.match(question).best
        if best is None or best.entry.id != entry_id:
            misses.append(question)
    return 1 - len(misses) / len(cases), misses


def test_questions_wrapped_in_chatter_are_answered(kb: KnowledgeBase, matcher: Matcher) -> None:
    cases = [
        (template.format(q=entry.question.rstrip("?").lower()), entry.id)
        for entry in kb.entries
        for template in CHATTER
    ]
    rate, misses = _rate(matcher, cases)
    print(f"\nchatter: {rate:.1%} of {len(cases)} answered right")
    assert rate >= CHATTER_FLOOR, misses[:20]


def _slip(word: str, rng: random.Random) -> str:
    """One typing slip inside a word: a letter dropped, swapped, wrong or extra."""
    i = rng.randrange(1, len(word) - 1)
    letter = rng.choice("abcdefghijklmnopqrstuvwxyz")
    kind = rng.choice(["drop", "swap", "wrong", "extra"])
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == "wrong":
        return word[:i] + letter + word[i + 1 :]
    return word[:i] + letter + word[i:]


def test_questions_with_a_typo_in_their_longest_word_are_answered(
    kb: KnowledgeBase, matcher: Matcher
) -> None:
    rng = random.Random(7)  # the same slips every run
    cases = []
    for entry in kb.entries:
        for phrasing in (entry.question, *entry.alternates[:4]):
            ws = phrasing.rstrip("?").lower().split()
            longest = max(range(len(ws)), key=lambda i: len(ws[i]))
            if len(ws[longest]) < 5:
                continue
            ws[longest] = _slip(ws[longest], rng)
            cases.append((" ".join(ws), entry.id))
    rate, misses = _rate(matcher, cases)
    print(f"\ntypos: {rate:.1%} of {len(cases)} answered right")
    assert rate >= TYPO_FLOOR, misses[:20]


@pytest.mark.parametrize(
    ("question", "entry_id"),
    [
        ("whree did the group fly to", "flight-to-moscow"),
        ("wehre did they fly after vladivostok", "flight-to-moscow"),
        ("what is this stoy about", "what-happened"),
    ],
)
def test_a_slip_in_a_question_word_is_undone(matcher: Matcher, question: str, entry_id: str) -> None:
    best = matcher.match(question).best
    assert best is not None and best.entry.id == entry_id


@pytest.mark.parametrize(
    ("message", "entry_ids"),
    [
        ("brr that must have been so cold 🥶 how long was the train ride?", {"train-ride-length"}),
        ("i can't believe they walked, when did they get back?", {"when-returned"}),
        ("so my teacher brought this up in class - how long was the bus ride?", {"bus-ride-length"}),
        ("omg that sounds like a nightmare tbh, did their families come along?", {"families-included"}),
        (  # a yes/no question after chatter, and chatter after it
            "As a parent the first thing I think of is food. Are the grocery shops in Pyongyang"
            " actually running out? I'd be terrified if I couldn't feed my kids.",
            {"food-shortage"},
        ),
        ("So why did North Korea shut its borders? Was it the pandemic?", {"why-borders-closed"}),
        ("hey how long was that train ride, sounds brutal", {"train-ride-length"}),
    ],
)
def test_the_question_in_a_chatty_message_is_found(
    matcher: Matcher, message: str, entry_ids: set[str]
) -> None:
    """A message of several sentences (split at punctuation, dashes, emoji, emoticons, or a
    comma before a question word) is answered from the sentence that asks, or without the
    clauses that are only chatter."""
    best = matcher.match(message).best
    assert best is not None and best.entry.id in entry_ids


def test_chatter_around_a_question_two_entries_answer_changes_nothing(matcher: Matcher) -> None:
    """The shipped base holds two entries with a distance pushed ("they" and Sorokin, the article
    gives both); the bare question may be answered by either or offered as both (since session 10
    it is offered: p 0.53 against 0.56). The chatty form gets exactly what the bare one gets,
    and the first entry offered or answered is one of the two."""
    bare = matcher.match("how far did they push the handcart")
    chatty = matcher.match("this is wild. honestly cannot imagine it :( how far did they push the handcart")
    assert chatty.outcome == bare.outcome != "unknown"
    assert [c.entry.id for c in chatty.candidates] == [c.entry.id for c in bare.candidates]
    assert chatty.candidates[0].entry.id in {"trolley-distance", "sorokin-push-distance"}


def test_your_in_the_chatter_does_not_make_it_a_question_about_the_bot(matcher: Matcher) -> None:
    best = matcher.match(
        "imagine pushing your own suitcase over a border. what did they load on the trolley?"
    ).best
    assert best is not None and best.entry.id == "luggage-on-trolley"
    assert matcher.match("lol ok. how are you doing today?").outcome == "unknown"


@pytest.mark.parametrize(
    ("question", "reading"),
    [
        # A swapped pair is likelier than a dropped letter ("were") or a wrong one ("when").
        ("wehre did they fly to", "where did they fly to"),
        ("wher did they fly to", "where did they fly to"),
        ("whcih train did they take", "which train did they take"),
        ("how lnog was the train ride", "how long was the train ride"),
        # A word with the base's stem but no English spelling reads as the base's own word.
        ("how long did they travell", "how long did they travel"),
    ],
)
def test_slips_are_undone_for_the_sentence_model_too(matcher: Matcher, question: str, reading: str) -> None:
    """The sentence model reads whole words better than slips: the message it is given (when
    that reads closer to a phrasing) has question words and stems repaired as well as terms."""
    assert matcher.terms.analyse(question).repaired == reading


def test_a_three_letter_word_with_its_last_letters_swapped_is_repaired(matcher: Matcher) -> None:
    best = matcher.match("how long were they on the bsu").best
    assert best is not None and best.entry.id == "bus-ride-length"
    # A keyboard mash is not repaired into a word ("sad", which the shipped base answers), so
    # it is never answered. (Session 6: the retrained decision model offers a "did you mean" for
    # it, p 0.11 against a bar of 0.065, where it refused before: short questions such as
    # "sorokin?" are answered in the training stories, so length counts in their favour.)
    assert matcher.terms.analyse("asd").repaired in ("", "asd")
    assert matcher.match("asd").outcome != "answer"


@pytest.mark.parametrize("question", ["who made u", "whats ur name", "how old are u", "do u have feelings"])
def test_chat_spellings_of_questions_about_the_bot_are_small_talk(matcher: Matcher, question: str) -> None:
    result = matcher.match(question)
    assert result.outcome == "unknown" and result.small_talk


@pytest.mark.parametrize(
    ("question", "entry_id"),
    [
        ("how long hav the borders been shut", "borders-closed-duration"),
        ("how dose the handcart move", "trolley-how-powered"),
    ],
)
def test_a_slip_in_a_small_word_is_not_taken_for_what_is_asked(
    matcher: Matcher, question: str, entry_id: str
) -> None:
    """'hav' and 'dose' are slips for 'have' and 'does', not words the article lacks."""
    best = matcher.match(question).best
    assert best is not None and best.entry.id == entry_id


@pytest.mark.parametrize(
    "message", ["thank you so much, that helped", "thanks!! really useful", "ty that was quick"]
)
def test_thanks_is_small_talk_not_an_unanswered_question(matcher: Matcher, message: str) -> None:
    result = matcher.match(message)
    assert result.outcome == "unknown" and result.small_talk


def test_thanks_with_a_question_is_answered(matcher: Matcher) -> None:
    best = matcher.match("thanks! and how far did they push the trolley?").best
    assert best is not None and best.entry.id in {"trolley-distance", "sorokin-push-distance"}


@pytest.mark.parametrize(
    "wrapped",
    [
        "<@123> {q}",
        "{q} <@!456>",
        "<@&789> {q} <#111>",
        "@everyone {q}",
        "hey <@123> and <@456>, {q}",
        "<:wave:222> {q} <a:dance:333>",
    ],
)
def test_a_mention_anywhere_in_a_question_is_not_part_of_it(matcher: Matcher, wrapped: str) -> None:
    """Discord markup is dropped before matching: the question gets what it gets without it."""
    question = "How far did they push the trolley?"
    plain = matcher.match(question)
    result = matcher.match(wrapped.format(q=question))
    assert "<" not in result.question and "@" not in result.question
    assert result.outcome == plain.outcome
    assert [c.entry.id for c in result.candidates] == [c.entry.id for c in plain.candidates]


@pytest.mark.parametrize(
    ("message", "entry_ids"),
    [
        ("wehre did they fly after vladivostok", {"flight-to-moscow"}),
        ("i can't believe they walked, when did they get back?", {"when-returned"}),
        (
            "this is wild. honestly cannot imagine it :( how far did they push the handcart",
            {"trolley-distance", "sorokin-push-distance"},
        ),
    ],
)
def test_a_message_the_matcher_is_unsure_of_offers_the_right_entry_first(
    matcher: Matcher, message: str, entry_ids: set[str]
) -> None:
    """Three messages above that session 4's model offered as "did you mean" (answered again since
    the projection): answered or not, the entry that answers them is the matcher's first choice,
    so the reader is one press from it."""
    result = matcher.match(message)
    first = result.best or (result.suggestions[0] if result.suggestions else None)
    assert first is not None and first.entry.id in entry_ids
