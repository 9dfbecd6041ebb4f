"""Loading and validating the knowledge base: every problem, with file, line and entry."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bot.core.errors import KnowledgeError
from bot.core.knowledge import load_knowledge, slugify, uncited_sentences
from tests.conftest import SHIPPED

GOOD = {
    "id": "test-entry",
    "question": "How long was the bus ride?",
    "answer": "Two hours.",
    "source": "The group of eight people took a 32-hour train ride, followed by two hours on a bus.",
}


def write_entries(kb_dir: Path, text: str, name: str = "zz-test.yaml") -> Path:
    path = kb_dir / "entries" / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(kb_dir: Path) -> list[str]:
    with pytest.raises(KnowledgeError) as caught:
        load_knowledge(kb_dir)
    return [str(p) for p in caught.value.problems if p.severity == "error"]


def test_shipped_knowledge_validates_with_every_source_verbatim() -> None:
    kb = load_knowledge(SHIPPED)
    assert len(kb) >= 60
    for entry in kb.entries:
        for source in entry.sources:
            assert kb.story.contains(source), entry.id


def test_every_fact_bearing_sentence_is_cited() -> None:
    assert uncited_sentences(load_knowledge(SHIPPED)) == []


def test_a_sentence_the_article_prints_twice_is_quoted_once_in_full() -> None:
    """The group's size is cited from a photo caption and from the text: one quote, the text's."""
    kb = load_knowledge(SHIPPED)
    entry = kb.get("group-size")
    assert entry is not None and len(entry.sources) == 2
    quotes = kb.quotes(entry)
    assert len(quotes) == 1 and quotes[0].endswith("on a bus.")
    article = (SHIPPED / "article.txt").read_text(encoding="utf-8")
    for e in kb.entries:  # every quote is the article's own text, a sentence per line
        assert all(q in article for q in kb.quotes(e))
        assert kb.quote(e).split("\n") == kb.quotes(e)


def test_article_copy_is_the_shared_article() -> None:
    shared = SHIPPED.parent.parent / "shared" / "article.txt"
    if not shared.exists():
        pytest.skip("../shared/article.txt is not beside the project here")
    assert (SHIPPED / "article.txt").read_bytes() == shared.read_bytes()


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("- id: x\n  question: Q?\n  answer: A.\n", ["zz-test.yaml:1:", "entry 'x'", "'source' is missing"]),
        (
            "- id: x\n  question: ''\n  answer: A.\n  source: Sorokin\n",
            ["zz-test.yaml:2:", "'question' is empty"],
        ),
        (
            "- id: x\n  question: 5\n  answer: A.\n  source: Sorokin\n",
            ["zz-test.yaml:2:", "must be text, not int"],
        ),
        (
            "- id: Bad Id\n  question: Q?\n  answer: A.\n  source: Sorokin\n",
            ["zz-test.yaml:1:", "must be a slug"],
        ),
        (
            "- id: x\n  question: Q?\n  answer: A.\n  source: Sorokin danced\n",
            ["zz-test.yaml:4:", "not in the article", "Closest article sentence"],
        ),
        (
            "- id: x\n  question: Q?\n  answer: A.\n  source: Sorokin\n  colour: red\n",
            ["zz-test.yaml:5:", "unknown field 'colour'"],
        ),
        (
            f"- id: x\n  question: {'Q' * 250}?\n  answer: A.\n  source: Sorokin\n",
            ["zz-test.yaml:2:", "keep it under 200"],
        ),
        (
            "- id: x\n  question: Q?\n  alternates: [yes, other words]\n  answer: A.\n  source: Sorokin\n  tags: [trolley, 1918]\n",
            [
                "item 1 of 'alternates' reads as yes/no (True)",
                "item 2 of 'tags' reads as a number (1918)",
                'quotes, e.g. "1918"',
            ],
        ),
        ("- id: x\n  question: [unclosed\n", ["invalid YAML", "zz-test.yaml:"]),
        ("- !!python/object:os.system\n  id: x\n", ["not allowed", "zz-test.yaml:1"]),
        ("id: x\nquestion: Q?\n", ["must hold a list of entries"]),
    ],
)
def test_each_problem_names_file_line_and_entry(kb_dir: Path, yaml_text: str, expected: list[str]) -> None:
    write_entries(kb_dir, yaml_text)
    found = "\n".join(problems(kb_dir))
    assert "zz-test.yaml" in found
    for fragment in expected:
        assert fragment in found, found


def test_all_problems_are_reported_at_once(kb_dir: Path) -> None:
    write_entries(
        kb_dir,
        """\
        - id: trolley-distance
          question: How far did they push the trolley?
          answer: A.
          source: Sorokin
        - id: two
          question: ""
          answer: B.
          source: "Not in the article at all"
        - id: three
          question: how far did they push the TROLLEY
          answer: C.
          source: Sorokin
        """,
    )
    found = problems(kb_dir)
    assert any("duplicate id" in p for p in found)
    assert any("'question' is empty" in p for p in found)
    assert any("not in the article" in p for p in found)
    assert any("also in entry 'trolley-distance'" in p for p in found)


def test_curly_and_straight_quotes_and_spacing_compare_equal(kb_dir: Path) -> None:
    write_entries(
        kb_dir,
        """\
        - id: quoted
          question: What did the ministry call the journey?
          answer: A long and difficult journey to get home.
          source: "staff members of the Russian embassy in North Korea and their family members embarked on 'a long   and difficult journey to get home,' the ministry said."
        """,
    )
    assert load_knowledge(kb_dir).get("quoted") is not None


def test_near_duplicate_phrasings_are_warnings_not_errors(kb_dir: Path) -> None:
    write_entries(
        kb_dir,
        """\
        - id: near
          question: How far did they push the trolleys?
          answer: Around half a mile.
          source: Sorokin
        """,
    )
    kb = load_knowledge(kb_dir, lint=True)
    assert any("near" in (w.entry, w.message) or "'near'" in w.message for w in kb.warnings), kb.warnings


def test_a_word_in_two_synonym_groups_is_an_error(kb_dir: Path) -> None:
    (kb_dir / "synonyms.yaml").write_text(
        "groups:\n  - [cart, trolley]\n  - [cart, wagon]\n", encoding="utf-8"
    )
    assert any("'cart' is in group 1 and group 2" in p for p in problems(kb_dir))


@pytest.mark.parametrize(
    "question, expected",
    [
        ("How far did they go?", "how-far-did-they-go"),
        (
            "Which Russian diplomat's family members were photographed pushing the luggage trolley?",
            "which-russian-diplomat-s-family-members-were",
        ),
        ("A" * 60, "a" * 48),
    ],
)
def test_ids_made_from_a_question_end_on_a_whole_word(question: str, expected: str) -> None:
    assert slugify(question) == expected
