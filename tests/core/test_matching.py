"""The matcher: held-out accuracy, hostile input, and the properties it must keep."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.evaluation import evaluate, load_cases
from bot.core.knowledge import KnowledgeBase, load_knowledge
from bot.core.matching import ANSWER_THRESHOLD, LONE_THRESHOLD, Matcher, question_type, stem, words
from bot.core.text import MAX_QUESTION_CHARS, clean_question
from tests.conftest import ROOT, SHIPPED

DATA = ROOT / "tests" / "data"
TARGET = 0.90
# The held-out question sets, each with the floor a change must not fall below (in scope,
# refused): the figures measured when the matcher last changed (README, "How matching works"),
# so a drop is a regression. heldout.yaml and exam.yaml are the first two exams; check.yaml
# and check2.yaml were written blind after an earlier round of changes; check3-check6 were
# written blind by four more writers during the latest round and run once, after its last
# change (only their figures are ever looked at). Every floor is at or above the 90% target.
EXAMS = {
    "heldout.yaml": (170 / 181, 78 / 80),
    "exam.yaml": (194 / 210, 83 / 90),
    "check.yaml": (196 / 210, 85 / 90),
    "check2.yaml": (189 / 210, 89 / 90),
    "check3.yaml": (195 / 210, 87 / 90),
    "check4.yaml": (196 / 210, 87 / 90),
    "check5.yaml": (195 / 210, 87 / 90),
    "check6.yaml": (195 / 210, 85 / 90),
}


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return load_knowledge(SHIPPED)


@pytest.fixture(scope="module")
def matcher(kb: KnowledgeBase) -> Matcher:
    return Matcher(kb)


@pytest.mark.parametrize("name", sorted(EXAMS))
def test_heldout_accuracy(matcher: Matcher, capsys: pytest.CaptureFixture[str], name: str) -> None:
    cases = load_cases(DATA / name)
    assert sum(c.in_scope for c in cases) >= 150 and sum(not c.in_scope for c in cases) >= 60
    report = evaluate(matcher, cases)
    with capsys.disabled():
        print(f"\nHeld-out accuracy (tests/data/{name}), target {TARGET:.0%} / {TARGET:.0%}:")
        print("\n".join(report.lines()))
    floor_in_scope, floor_refusal = EXAMS[name]
    assert report.in_scope.rate() >= floor_in_scope
    assert report.out_of_scope.rate() >= floor_refusal


def test_the_floors_hold_the_target() -> None:
    """The guarded figures are the issue's target or better, so the tests above fail the
    build if a change drops any held-out set below 90% in scope or 90% refused."""
    assert all(min(floors) >= TARGET for floors in EXAMS.values())


def test_every_entry_answers_its_own_question(kb: KnowledgeBase, matcher: Matcher) -> None:
    for entry in kb.entries:
        for phrasing in entry.phrasings:
            result = matcher.match(phrasing)
            assert result.best is not None and result.best.entry.id == entry.id, phrasing
            assert result.best.score == 100.0


@pytest.mark.parametrize(
    ("question", "entry_id"),
    [
        ("How far did they push the trolley?", "trolley-distance"),
        ("hw far did they push the trolly", "trolley-distance"),
        ("hey bot quick question, how long was the train ride lol", "train-ride-length"),
        ("who is varya", "youngest-passenger"),
    ],
)
def test_golden_paraphrases(matcher: Matcher, question: str, entry_id: str) -> None:
    result = matcher.match(question)
    assert result.best is not None, (question, result)
    assert result.best.entry.id == entry_id


@pytest.mark.parametrize(
    "question",
    ["what is the weather in paris", "who won the football", "what is your name", "hi",
     "asdkjh qwe", "???", "what did they eat on the train"],
)  # fmt: skip
def test_out_of_scope_is_not_answered(matcher: Matcher, question: str) -> None:
    assert matcher.match(question).outcome != "answer"


def test_how_many_of_something_the_entry_does_not_count_is_unknown(matcher: Matcher) -> None:
    """The group-size entry matches well, but it counts people, not children."""
    result = matcher.match("how many children were in the group of eight")
    assert result.outcome == "unknown"
    assert "children" in result.reason


@pytest.mark.parametrize(
    ("question", "entry_id"),
    [
        ("how old is vladislav sorokin", None),  # the article gives his daughter's age, not his
        ("how old is sorokin, the third secretary", None),
        ("how old was sorokin's little daughter", "varya-age"),
        ("how old was sorokins daughter", "varya-age"),  # no apostrophe: still his daughter
        ("how old was the youngest one", "varya-age"),
    ],
)
def test_how_old_asks_the_age_of_whom_the_entry_gives(
    matcher: Matcher, question: str, entry_id: str | None
) -> None:
    result = matcher.match(question)
    if entry_id is None:
        assert result.outcome == "unknown" and "age" in result.reason
    else:
        assert result.best is not None and result.best.entry.id == entry_id


def test_how_long_something_lasted_the_answer_only_mentions_is_unknown(matcher: Matcher) -> None:
    """The journey's answer times the train and the bus, and only mentions the flight."""
    assert matcher.match("how long was the flight to moscow").outcome == "unknown"
    best = matcher.match("how long did they spend on the bus after the train?").best
    assert best is not None and best.entry.id == "bus-ride-length"


@pytest.mark.parametrize(
    ("question", "outcome"),
    [("what month did they cross the border?", "unknown"), ("what year did north korea cut ties", "answer")],
)
def test_asking_what_month_or_year_needs_an_answer_that_gives_one(
    matcher: Matcher, question: str, outcome: str
) -> None:
    """They came back "on a Thursday": no month; the ties were cut "in 2020": a year."""
    assert matcher.match(question).outcome == outcome


def test_how_many_with_a_counted_word_in_the_answer_is_answered(matcher: Matcher) -> None:
    result = matcher.match("how many hours did the bus part take")
    assert result.best is not None and result.best.entry.id == "bus-ride-length"


def test_asking_what_no_entry_mentions_is_not_answered(matcher: Matcher) -> None:
    """The rest of the question matches the train entry well; the word it asks about does not."""
    result = matcher.match("who cooked on the 32 hour train")
    assert result.outcome == "suggest"
    assert "cooked" in result.reason
    assert [c.entry.id for c in result.suggestions] == ["train-ride-length"]


def test_asking_for_what_the_best_entry_never_mentions_is_not_answered(matcher: Matcher) -> None:
    """'name' is a word the knowledge base uses (Varya's name), but not the bridge entry."""
    result = matcher.match("what is the name of that railway bridge")
    assert result.outcome == "suggest"
    assert "name" in result.reason


@pytest.mark.parametrize(
    "question",
    [
        "where did the 32 hour train ride begin",  # the train entry names no place
        "how cold was it on the day of the crossing",  # 'how cold' wants a figure; the article: 'cold'
    ],
)
def test_an_entry_without_what_the_question_type_needs_does_not_answer(
    matcher: Matcher, question: str
) -> None:
    assert matcher.match(question).outcome != "answer"


def test_a_fair_match_with_nothing_near_it_is_answered(matcher: Matcher) -> None:
    """Below ANSWER_THRESHOLD but above LONE_THRESHOLD, with no other entry close: answered."""
    result = matcher.match("roughly how many km did they manage pushing the rail car")
    assert result.best is not None and result.best.entry.id == "trolley-distance"
    assert LONE_THRESHOLD <= result.best.score < ANSWER_THRESHOLD and result.reason == "alone"


def test_a_tie_goes_to_the_entry_worded_like_the_question(matcher: Matcher) -> None:
    """Both river entries explain "river" fully (100 each); the small words settle it."""
    result = matcher.match("which river is it")
    assert result.best is not None and result.best.entry.id == "tumen-river"
    assert result.reason == "close call settled by wording"


def test_a_tie_that_wording_does_not_settle_is_left_to_the_reader(matcher: Matcher) -> None:
    result = matcher.match("the trolley")
    assert result.outcome == "suggest"
    assert len(result.suggestions) == 3


def test_a_when_joining_a_clause_does_not_make_it_a_when_question(matcher: Matcher) -> None:
    """ "what were they crossing when ..." asks what, not when (no date answers it)."""
    result = matcher.match("What were they crossing when the video showed them pushing the trolley?")
    assert result.best is not None and result.best.entry.id == "railway-bridge"


@pytest.mark.parametrize(
    ("question", "entry_id"),
    [
        ("Kim Jong-Un - who is this man?", "kim-jong-un"),
        ("a hand pushed trolley - why did they have to go home on that", "why-trolley-journey"),
        ("the return to russia, which day was that?", "when-returned"),
        ("Back to Russia on the rail trolley - who went?", "who-returned"),
        ("what century did these pump-powered rail carts catch on?", "trolley-history"),
        ("In the embassy's pictures, what was Sorokin doing?", "sorokin-pushing"),
        ("haha that pic is wild, what were they carrying on that trolley?", "luggage-on-trolley"),
    ],
)
def test_a_question_after_a_dash_or_comma_that_points_back_reads_the_whole(
    matcher: Matcher, question: str, entry_id: str
) -> None:
    result = matcher.match(question)
    assert result.best is not None and result.best.entry.id == entry_id


@pytest.mark.parametrize(
    "question", ["how many suitcases did they have", "what did they have on the trolley with them"]
)
def test_story_words_inside_everyday_phrases_are_not_synonyms(matcher: Matcher, question: str) -> None:
    """ "cases" is not luggage ("coronavirus cases"), "have on the trolley" is not clothing."""
    result = matcher.match(question)
    assert all(c.entry.id not in ("ties-severed-2020", "thick-clothing") for c in result.candidates)


def test_a_word_for_the_kind_of_answer_is_not_what_is_asked(matcher: Matcher) -> None:
    """ "which town": no entry need say "town" to answer it; Vladivostok is the town."""
    result = matcher.match("which town did their plane take off from?")
    assert result.best is not None and result.best.entry.id == "vladivostok-departure"


@pytest.mark.parametrize(
    "question",
    ["whats the name of the railway bridge they crossed", "what's the bridge they crossed called?"],
)
def test_asking_a_name_no_entry_gives_is_not_answered(matcher: Matcher, question: str) -> None:
    """The article says "a railway bridge" and never names it."""
    assert matcher.match(question).outcome != "answer"


def test_filming_is_not_the_video(matcher: Matcher) -> None:
    """Who filmed the video is never said; who posted it is."""
    assert matcher.match("who filmed the video of the trolley?").outcome != "answer"


@pytest.mark.parametrize(
    ("question", "qtype"),
    [
        ("wheres the trolley now", "where"),
        ("whos sorokin", "who"),
        ("whats on it", "what"),
        ("what prompted the embassy staff to go home", "why"),
    ],
)
def test_question_words_and_their_everyday_forms_type_the_question(question: str, qtype: str) -> None:
    assert question_type(question) == qtype


HOSTILE = [
    "", "   ", "\n\t", "x" * 5000, "🚂🚂🚂", "😀", "Z̷̧̛a̴̢l̸g̵o̶ ̷t̸r̴o̵l̸l̶e̷y̸",
    "how\x00 far\x00", "\u202ehow far did they push the trolley", "כמה רחוק הם דחפו", "كم المسافة",
    "```python\nimport os\n```", "**how far** _did_ they ~~push~~", "@everyone how far", "<@123> <@&456> <#789>",
    "'; DROP TABLE entries; --", "!!python/object:os.system", "- id: x\n  question: y", "{{7*7}}", "%s%s%n",
]  # fmt: skip


@pytest.mark.parametrize("question", HOSTILE)
def test_hostile_input_never_crashes(matcher: Matcher, question: str) -> None:
    result = matcher.match(question)
    assert result.outcome in ("answer", "suggest", "unknown")
    assert len(result.question) <= MAX_QUESTION_CHARS
    assert "\x00" not in result.question


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=400))
def test_any_text_gets_an_outcome_with_scores_in_range(matcher: Matcher, text: str) -> None:
    result = matcher.match(text)
    assert all(0.0 <= c.score <= 100.0 for c in result.candidates)
    assert len(result.candidates) <= 3 or result.outcome == "unknown"


@given(st.text(max_size=300))
def test_cleaning_twice_changes_nothing(text: str) -> None:
    once = clean_question(text)
    assert clean_question(once) == once


@given(st.text(max_size=100))
def test_words_are_casefolded_without_apostrophes(text: str) -> None:
    for w in words(text):
        assert w == w.casefold() and "'" not in w and w
        assert stem(w) == stem(w.casefold())
