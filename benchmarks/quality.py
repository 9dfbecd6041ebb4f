"""Answer quality on stories the matcher was not trained on: one command, one table.

    python benchmarks/quality.py            # prints the table and writes docs/quality.md
    python benchmarks/quality.py --holdout  # the holdout stories instead: to judge a change by
    python benchmarks/quality.py --holdout --record  # and write docs/holdout.json (a kept change)

`--holdout` prints StoryBot's figures on the `holdout` question sets (stories never trained on,
some with rich bases like the shipped one, some curator-sized), on each story's base and on it cut
to question + 3 alternates, pooled by kind of base, and writes nothing (with `--record`, the pooled
figures to docs/holdout.json, which the suite guards): run it before and after a change, before
any test set is run.

Every figure here is on `test` question sets (tests/data/questions/*/*.yaml with `split: test`),
about stories whose questions the decision model never saw (`suez`, a story with a curator-sized
base, and the shipped story), written by readers who never saw the knowledge bases. Beside
StoryBot, two baselines over the same phrasings, each refusing below a similarity threshold
chosen the way StoryBot's are (on the train and dev stories, for 91% refusal):

- rapidfuzz alone: `process.extractOne(scorer=fuzz.token_set_ratio)` over every phrasing;
- the embedding model alone: the phrasing with the highest cosine.

Also: the shipped base cut to each entry's question and 3 alternates, and the
leave-one-story-out figures of the train and dev stories that chose the thresholds.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from rapidfuzz import fuzz, process  # noqa: E402

from bot.core.evaluation import Case, QuestionSet, Report, evaluate, load_question_sets  # noqa: E402
from bot.core.knowledge import KnowledgeBase, load_knowledge, phrasing_key  # noqa: E402
from bot.core.matching import DECISION_FILE, Matcher  # noqa: E402

QUESTIONS = ROOT / "tests" / "data" / "questions"
STORIES = ROOT / "tests" / "data" / "stories"
DOC = ROOT / "docs" / "quality.md"
RECORD = ROOT / "docs" / "quality.json"  # StoryBot's rows, which tests/core/test_matching.py guards
BASELINE_REFUSAL = 0.91


def story_folder(story: str) -> Path:
    """The knowledge folder of a story: the shipped one, or one of the corpus stories."""
    return ROOT / "knowledge" if story == "diplomats" else STORIES / story


def cut(kb: KnowledgeBase, alternates: int = 3) -> KnowledgeBase:
    """The same base with each entry's question and only its first `alternates` alternates."""
    return replace(kb, entries=tuple(replace(e, alternates=e.alternates[:alternates]) for e in kb.entries))


@dataclass(frozen=True)
class Figures:
    """Answered right and wrong (of in scope), refused (of out of scope), and the counts."""

    right: float
    wrong: float
    refused: float
    in_scope: int
    out_of_scope: int

    @classmethod
    def pooled(cls, reports: Sequence[Report]) -> Figures:
        """Several reports counted as one (each question weighs the same)."""
        inside = sum(r.in_scope.count() for r in reports)
        outside = sum(r.out_of_scope.count() for r in reports)
        return cls(
            sum(sum(r.in_scope.passed.values()) for r in reports) / max(inside, 1),
            sum(r.wrong for r in reports) / max(inside, 1),
            sum(sum(r.out_of_scope.passed.values()) for r in reports) / max(outside, 1),
            inside,
            outside,
        )

    @classmethod
    def of(cls, report: Report) -> Figures:
        n = report.in_scope.count()
        return cls(
            report.in_scope.rate(),
            report.wrong / n if n else 0.0,
            report.out_of_scope.rate(),
            n,
            report.out_of_scope.count(),
        )


Scorer = Callable[[str], tuple[str, float]]  # question -> (best entry id, similarity)


def fuzz_scorer(kb: KnowledgeBase) -> Scorer:
    keys = [phrasing_key(p) for e in kb.entries for p in e.phrasings]
    owners = [e.id for e in kb.entries for _ in e.phrasings]

    def score(question: str) -> tuple[str, float]:
        found = process.extractOne(phrasing_key(question), keys, scorer=fuzz.token_set_ratio)
        return (owners[found[2]], found[1] / 100.0) if found else ("", 0.0)

    return score


def embedding_scorer(matcher: Matcher) -> Scorer:
    owners = [e.id for e in matcher.kb.entries for _ in e.phrasings]

    def score(question: str) -> tuple[str, float]:
        sims = matcher._phrasing_vectors @ matcher.encoder.encode([question])[0]
        best = int(np.argmax(sims))
        return owners[best], float(sims[best])

    return score


def threshold_for(scored: list[tuple[Case, str, float]], refusal: float) -> float:
    """The lowest similarity at which at least `refusal` of the out-of-scope questions are refused."""
    outside = sorted(s for case, _, s in scored if not case.in_scope)
    if not outside:
        return 0.0
    return float(np.quantile(outside, refusal)) + 1e-9


def baseline_figures(scored: list[tuple[Case, str, float]], threshold: float) -> Figures:
    inside = [(c, i, s) for c, i, s in scored if c.in_scope]
    outside = [(c, i, s) for c, i, s in scored if not c.in_scope]
    right = sum(s >= threshold and i in c.expect for c, i, s in inside)
    wrong = sum(s >= threshold and i not in c.expect for c, i, s in inside)
    refused = sum(s < threshold for _, _, s in outside)
    n, m = len(inside) or 1, len(outside) or 1
    return Figures(right / n, wrong / n, refused / m, len(inside), len(outside))


def run_baselines(
    sets: Sequence[QuestionSet], tuning: Sequence[QuestionSet], matchers: dict[str, Matcher]
) -> dict[str, dict[str, Figures]]:
    """Baseline figures per test story, thresholds from the tuning (train + dev) stories."""
    out: dict[str, dict[str, Figures]] = {}
    for name, make in (("rapidfuzz", lambda m: fuzz_scorer(m.kb)), ("embedding", embedding_scorer)):
        tuned = []
        for qs in tuning:
            scorer = make(matchers[qs.story])
            tuned += [(c, *scorer(c.question)) for c in qs.cases]
        threshold = threshold_for(tuned, BASELINE_REFUSAL)
        for story in sorted({s.story for s in sets}):
            scorer = make(matchers[story])
            scored = [(c, *scorer(c.question)) for qs in sets if qs.story == story for c in qs.cases]
            out.setdefault(story, {})[name] = baseline_figures(scored, threshold)
    return out


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


RICH_ALTERNATES = 10
"""A base whose entries have this many alternates or more (the median) is pooled as rich."""


def base_kind(kb: KnowledgeBase) -> str:
    """ "rich" (like the shipped base) or "curator-sized" (question + a few alternates), by the median."""
    counts = sorted(len(e.alternates) for e in kb.entries)
    return "rich" if counts and counts[len(counts) // 2] >= RICH_ALTERNATES else "curator-sized"


HOLDOUT_RECORD = ROOT / "docs" / "holdout.json"
"""The pooled holdout figures (`--holdout --record`), which tests/core/test_matching.py holds every
change to, as docs/quality.json holds the test figures."""


def holdout_reports(
    sets: Sequence[QuestionSet], wanted: Sequence[tuple[str, str]] | None = None
) -> dict[tuple[str, str, str], Report]:
    """StoryBot on each holdout story: (story, kind of base, full or cut) -> report; only the
    (kind, base) pairs in `wanted` when given."""
    out: dict[tuple[str, str, str], Report] = {}
    for story in sorted({s.story for s in sets if s.split == "holdout"}):
        cases = [c for s in sets if s.split == "holdout" and s.story == story for c in s.cases]
        kb = load_knowledge(story_folder(story))
        kind = base_kind(kb)
        for base, knowledge in (("full", kb), ("cut", cut(kb))):
            if wanted is None or (kind, base) in wanted:
                out[story, kind, base] = evaluate(Matcher(knowledge), cases)
    return out


def holdout_pooled(reports: dict[tuple[str, str, str], Report]) -> dict[tuple[str, str], tuple[int, Figures]]:
    """(kind, base) -> (stories, their pooled figures): rich bases first, full before cut."""
    groups: dict[tuple[str, str], list[Report]] = defaultdict(list)
    for (_story, kind, base), report in reports.items():
        groups[kind, base].append(report)
    order = sorted(groups, key=lambda key: (key[0] != "rich", key[1] != "full"))
    return {key: (len(groups[key]), Figures.pooled(groups[key])) for key in order}


def holdout_table(sets: Sequence[QuestionSet], record: Path | None = None) -> str:
    """StoryBot on the holdout stories, each on its base and on the base cut; then pooled by kind
    of base (rich like the shipped one, or curator-sized), since the two are judged apart, and every
    story cut to question + 3 alternates ("all": the unseen-story figure on a curator's base). With
    `record`, the pooled figures are written there too."""
    lines = [
        "| holdout story | base | in scope | answered right | wrong answers | out of scope | refused |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    reports = holdout_reports(sets)
    for (story, _kind, base), report in reports.items():
        f = Figures.of(report)
        lines.append(
            f"| {story} | {base} | {f.in_scope} | {pct(f.right)} | {pct(f.wrong)} | {f.out_of_scope} | {pct(f.refused)} |"
        )
    pooled = holdout_pooled(reports)
    # Every story on a base of question + 3 alternates an entry: a curator's base, on all of them.
    thin = [r for (_story, _kind, base), r in reports.items() if base == "cut"]
    pooled["all", "cut"] = (len(thin), Figures.pooled(thin))
    for (kind, base), (n, f) in pooled.items():
        lines.append(
            f"| pooled, {kind} ({n}) | {base} | {f.in_scope} | {pct(f.right)} | {pct(f.wrong)} | {f.out_of_scope} | {pct(f.refused)} |"
        )
    if record is not None:
        figures = {
            f"{kind}/{base}": {
                "right": round(f.right, 4),
                "refused": round(f.refused, 4),
                "wrong": round(f.wrong, 4),
            }
            for (kind, base), (_n, f) in pooled.items()
        }
        record.write_text(json.dumps(figures, indent=2) + "\n")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    sets = load_question_sets(QUESTIONS)
    args = argv if argv is not None else sys.argv[1:]
    if "--holdout" in args:
        print(holdout_table(sets, HOLDOUT_RECORD if "--record" in args else None))
        return 0
    test = [s for s in sets if s.split == "test"]
    tuning = [s for s in sets if s.split in ("train", "dev")]
    matchers = {
        story: Matcher(load_knowledge(story_folder(story))) for story in sorted({s.story for s in sets})
    }
    rows: list[tuple[str, str, Figures]] = []
    for story in sorted({s.story for s in test}):
        cases = [c for s in test if s.story == story for c in s.cases]
        rows.append((story, "StoryBot", Figures.of(evaluate(matchers[story], cases))))
    shipped_cases = [c for s in test if s.story == "diplomats" for c in s.cases]
    if shipped_cases:
        small = Matcher(cut(matchers["diplomats"].kb))
        rows.append(("diplomats/cut", "StoryBot", Figures.of(evaluate(small, shipped_cases))))
    baselines = run_baselines(test, tuning, matchers)
    for story, by_name in baselines.items():
        for name, figures in by_name.items():
            rows.append((story, name, figures))
    per_set = [
        (f"{qs.story}/{qs.writer}", Figures.of(evaluate(matchers[qs.story], list(qs.cases)))) for qs in test
    ]
    held = json.loads(DECISION_FILE.read_text())["held_out_figures"]
    lines = [
        "| story (test questions) | matcher | in scope | answered right | wrong answers | out of scope | refused |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for story, name, f in rows:
        story = story.replace("/cut", ", base cut to question + 3 alternates")
        lines.append(
            f"| {story} | {name} | {f.in_scope} | {pct(f.right)} | {pct(f.wrong)} | {f.out_of_scope} | {pct(f.refused)} |"
        )
    lines.append(
        f"| train + dev stories, each scored by a model trained without it | StoryBot | {held['in_scope']:.0f} | "
        f"{pct(held['right'])} | {pct(held['wrong'])} | {held['out_of_scope']:.0f} | {pct(held['refused'])} |"
    )
    lines += [
        "",
        "Each test set alone (StoryBot; figures only, their failures are never read):",
        "",
        "| question set | in scope | answered right | wrong answers | out of scope | refused |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {name} | {f.in_scope} | {pct(f.right)} | {pct(f.wrong)} | {f.out_of_scope} | {pct(f.refused)} |"
        for name, f in per_set
    ]
    table = "\n".join(lines)
    print(table)
    if "--no-write" not in (argv or sys.argv[1:]):
        record = {
            story: {"right": round(f.right, 4), "refused": round(f.refused, 4), "wrong": round(f.wrong, 4)}
            for story, name, f in rows
            if name == "StoryBot"
        }
        RECORD.write_text(json.dumps(record, indent=2) + "\n")
        DOC.write_text(
            "# Answer quality\n\nMade by `python benchmarks/quality.py`; do not edit by hand, run it again.\n\n"
            "Every row but the last is on `test` question sets: stories and writers the decision model never saw "
            "(docs/matching.md says how they were written). Baselines refuse below a similarity threshold chosen on the "
            f"train and dev stories for {BASELINE_REFUSAL:.0%} refusal, as StoryBot's thresholds are.\n\n"
            + table
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
