"""What a round of the curators' loop buys on stories never trained on: one command, one table.

    python benchmarks/curator_loop.py

For each `holdout` story with a curator-sized base and two writers, the questions one writer asked
that got no answer outright (a "did you mean" or "the article doesn't say": what `/kb unanswered`
lists) are added, as a curator would add them, to the entry that answers them (questions with one
expected entry; out-of-scope ones a curator dismisses). Then the *other* writer's questions are
asked, against the base before and after. Writes nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.quality import QUESTIONS, Figures, base_kind, pct, story_folder  # noqa: E402
from bot.core.evaluation import QuestionSet, Report, evaluate, load_question_sets  # noqa: E402
from bot.core.knowledge import KnowledgeBase, load_knowledge  # noqa: E402
from bot.core.matching import Matcher  # noqa: E402


def taught(kb: KnowledgeBase, matcher: Matcher, teacher: QuestionSet) -> tuple[KnowledgeBase, int]:
    """The base with `teacher`'s in-scope questions that were not answered outright added to
    their entry as alternates, and how many were added."""
    extra: dict[str, list[str]] = {}
    for case in teacher.cases:
        if case.in_scope and len(case.expect) == 1 and matcher.match(case.question).outcome != "answer":
            extra.setdefault(next(iter(case.expect)), []).append(case.question)
    entries = tuple(replace(e, alternates=e.alternates + tuple(extra.get(e.id, ()))) for e in kb.entries)
    return replace(kb, entries=entries), sum(map(len, extra.values()))


def main(argv: Sequence[str] | None = None) -> int:
    sets = [s for s in load_question_sets(QUESTIONS) if s.split == "holdout"]
    lines = [
        "| holdout story | asked by | phrasings added | before: right / wrong / refused | after |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    before: list[Report] = []
    after: list[Report] = []
    for story in sorted({s.story for s in sets}):
        kb = load_knowledge(story_folder(story))
        writers = [s for s in sets if s.story == story]
        if base_kind(kb) != "curator-sized" or len(writers) != 2:
            continue
        matcher = Matcher(kb)
        for teacher, asker in (writers, writers[::-1]):
            grown, added = taught(kb, matcher, teacher)
            cases = list(asker.cases)
            before.append(evaluate(matcher, cases))
            after.append(evaluate(Matcher(grown), cases))
            b, a = Figures.of(before[-1]), Figures.of(after[-1])
            lines.append(
                f"| {story} | {asker.writer} | {added} | {pct(b.right)} / {pct(b.wrong)} / {pct(b.refused)} "
                f"| {pct(a.right)} / {pct(a.wrong)} / {pct(a.refused)} |"
            )
    b, a = Figures.pooled(before), Figures.pooled(after)
    lines.append(
        f"| pooled ({b.in_scope} in scope, {b.out_of_scope} out) | | | {pct(b.right)} / {pct(b.wrong)} / "
        f"{pct(b.refused)} | {pct(a.right)} / {pct(a.wrong)} / {pct(a.refused)} |"
    )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
