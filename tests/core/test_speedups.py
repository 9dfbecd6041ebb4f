"""The fast paths give exactly what the plain ones gave (they exist only to be faster)."""

from __future__ import annotations

import heapq
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bot.core import knowledge as K
from bot.core.evaluation import load_cases
from bot.core.knowledge import load_knowledge, phrasing_key
from bot.core.lexical import BETA2, ENTRY_BLEND, MAX_POSTINGS, TYPE_MISMATCH_FACTOR, Candidate
from bot.core.lexical import TermMatcher as Matcher
from bot.core.text import clean_question, normalise_for_compare

ROOT = Path(__file__).resolve().parents[2]

YAML_SNIPPETS = [
    "",
    "a: 1",
    "- a\n- b",
    "a: yes\nb: no\nc: ~\nd: 2026-11-25\ne: 1.5\nf: '1'\ng: \"x\"\nh: null\ni: 0x1F\nj: .inf\n",
    "a: &x 1\nb: *x",
    "a: !!python/object:os.system 1",
    "<<: {a: 1}\nb: 2",
    "a: 1\na: 2",
    "? [1,2]\n: 3",
    "1: a\ntrue: b\n~: c\n'on': d\non: e",
    "a:\n  - {b: c, d: [e, f]}\n  - - x\n",
    "---\na: 1\n---\nb: 2",
    "a: b: c",
    "a: |\n  line1\n  line2\n",
    "!!str 1",
    "a: !!int '3'",
    "- id: x\n  question: 'What?'\n  added_at: 2026-11-25\n  tags: [a, b]\n  alternates: [yes, '', 12]\n",
    "__line__: 5\nx: 1",
    "a: ! bar",
    "- 12:30\n- 1_000\n- 0o17\n- +1\n- -.5\n- Yes\n- ON\n- 'on'\n- -\n- ''",
]


def _plain_yaml(text: str) -> object:
    try:
        return ("ok", yaml.load(text, Loader=K._LineLoader))
    except yaml.YAMLError as exc:
        return ("error", type(exc).__name__)


@pytest.mark.parametrize("text", YAML_SNIPPETS)
def test_fast_yaml_reads_what_pyyaml_reads_or_leaves_it_to_pyyaml(text: str) -> None:
    try:
        fast = ("ok", K._fast_yaml(text))
    except Exception:
        return  # _read_yaml then reads it with PyYAML, as before
    assert repr(fast) == repr(_plain_yaml(text))


def test_fast_yaml_reads_the_shipped_files_exactly() -> None:
    for path in [
        *sorted((ROOT / "knowledge").rglob("*.yaml")),
        *sorted((ROOT / "tests" / "data").glob("*.yaml")),
    ]:
        text = path.read_text(encoding="utf-8")
        assert repr(("ok", K._fast_yaml(text))) == repr(_plain_yaml(text)), path


SAMPLES = [
    "plain text",
    "  lead and trail  ",
    "tab\there\nnew line\r\n",
    "nbsp\u00a0and\u2003em\u3000ideographic\x1c\x1f",
    "curly ‘quotes’ and “double” „low“ ′prime″",
    "Sorokin’s daughter's trolley",
    "",
    "   ",
    "zalgo z̷̢a̸l̵g̶o and İstanbul ß",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_compare_form_and_phrasing_key_match_the_plain_forms(text: str) -> None:
    assert K._compare_form(text) == normalise_for_compare(text)
    assert phrasing_key(text) == " ".join(re.findall(r"\w+", normalise_for_compare(text).casefold()))


def _rank_everything(matcher: Matcher, question: str) -> list[tuple[str, float, str]]:
    """The ranking as the matcher computed it before it learnt to stop early: score every
    candidate phrasing, blend, sort all, filter by answer shape, take three."""
    from bot.core.lexical import ANSWER_SHAPES, question_type, types_disagree

    text = clean_question(question)
    _, terms = matcher._analyse(text)
    if not terms:
        return []
    qtype = question_type(text)
    query: dict[str, float] = {}
    for t in terms:
        query[t.key] = max(query.get(t.key, 0.0), t.weight)
    total = sum(query.values())
    candidates: set[int] = set()
    for key in query:
        postings = matcher._postings.get(key, ())
        if len(postings) <= MAX_POSTINGS:
            candidates.update(postings)
    best: dict[int, tuple[float, int]] = {}
    for pid in candidates:
        phrasing = matcher._phrasings[pid]
        shared = sum(w for k, w in query.items() if k in phrasing.terms)
        shared_p = sum(matcher._weights[k] for k in query if k in phrasing.terms)
        recall = shared / total
        precision = min(1.0, shared_p / phrasing.weight)
        if recall <= 0 or precision <= 0:
            continue
        score = 100.0 * (1 + BETA2) * precision * recall / (BETA2 * precision + recall)
        if types_disagree(qtype, phrasing.qtype):
            score *= TYPE_MISMATCH_FACTOR
        previous = best.get(phrasing.entry_index)
        if previous is None or score > previous[0]:
            best[phrasing.entry_index] = (score, pid)
    for index, (score, pid) in list(best.items()):
        known = matcher._entry_terms[index]
        union = sum(w for k, w in query.items() if k in known) / total
        best[index] = ((1 - ENTRY_BLEND) * score + ENTRY_BLEND * 100.0 * union, pid)
    ranked = heapq.nsmallest(len(best), best.items(), key=lambda item: (-item[1][0], item[0]))
    shape = ANSWER_SHAPES.get(qtype or "")
    out = []
    for index, (score, pid) in ranked:
        entry = matcher.kb.entries[index]
        if shape is not None and not shape(entry.answer):
            continue
        out.append((entry.id, round(score, 1), matcher._phrasings[pid].text))
    return out[:3]


def test_stopping_early_ranks_exactly_as_scoring_everything() -> None:
    """The lexical stage's ranking (bot/core/lexical.py) stops scoring once no entry left can
    reach the top: the same result as scoring every phrasing."""
    matcher = Matcher(load_knowledge(ROOT / "knowledge"))
    questions = [
        c.question
        for name in ("dev", "tune", "heldout")
        for c in load_cases(ROOT / "tests" / "data" / f"{name}.yaml")
    ]
    for question in questions:
        text = clean_question(question)
        terms = matcher._analyse(text)[1] if text else []
        if not terms:
            continue
        from bot.core.lexical import question_type

        fast: list[Candidate] = matcher._rank(terms, question_type(text))
        assert [(c.entry.id, c.score, c.phrasing) for c in fast] == _rank_everything(matcher, question), (
            question
        )


def test_ask_imports_neither_discord_nor_the_heavy_optional_modules() -> None:
    code = (
        "import sys; from bot.cli import main; main(['ask', 'How far did they push the trolley?']);"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'discord', 'aiohttp', 'ruamel', 'filelock'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
