"""Score the matcher on a file of questions with expected entries (`storybot eval`)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.core.errors import KnowledgeError, Problem
from bot.core.matching import Matcher, Result

UNKNOWN = "unknown"


@dataclass(frozen=True)
class Case:
    """One question and the entry ids that may answer it (empty: none may)."""

    question: str
    expect: frozenset[str]
    style: str

    @property
    def in_scope(self) -> bool:
        """Whether the article answers this question."""
        return bool(self.expect)

    def passed(self, result: Result) -> bool:
        """In scope: answered with an expected entry. Out of scope: not answered."""
        if self.in_scope:
            return result.best is not None and result.best.entry.id in self.expect
        return result.outcome != "answer"


@dataclass
class Tally:
    """Passes out of cases, per style."""

    passed: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    total: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, style: str, ok: bool) -> None:
        """Count one case."""
        self.total[style] += 1
        self.passed[style] += ok

    def rate(self, style: str | None = None) -> float:
        """Share passed, for one style or all."""
        if style is not None:
            return self.passed[style] / self.total[style] if self.total[style] else 0.0
        total = sum(self.total.values())
        return sum(self.passed.values()) / total if total else 0.0

    def count(self) -> int:
        """Number of cases."""
        return sum(self.total.values())


@dataclass
class Report:
    """Accuracy on in-scope questions and refusal on out-of-scope ones."""

    in_scope: Tally = field(default_factory=Tally)
    out_of_scope: Tally = field(default_factory=Tally)
    failures: list[tuple[Case, Result]] = field(default_factory=list)
    wrong: int = 0  # in-scope questions answered with an entry that does not answer them

    @property
    def combined(self) -> float:
        """Mean of in-scope accuracy and out-of-scope refusal."""
        return (self.in_scope.rate() + self.out_of_scope.rate()) / 2

    def lines(self) -> list[str]:
        """A readable table of the figures."""
        out = [f"{'':24}{'cases':>6}{'correct':>9}"]
        for title, tally in (
            ("in scope (answered right)", self.in_scope),
            ("out of scope (refused)", self.out_of_scope),
        ):
            out.append(f"{title:<26}{tally.count():>4}{tally.rate():>9.1%}")
            for style in sorted(tally.total):
                out.append(f"  {style:<22}{tally.total[style]:>6}{tally.rate(style):>9.1%}")
        wrong = self.wrong / self.in_scope.count() if self.in_scope.count() else 0.0
        out.append(f"{'wrong answers (of in scope)':<26}{self.wrong:>4}{wrong:>9.1%}")
        out.append(f"{'combined (mean)':<26}{'':>4}{self.combined:>9.1%}")
        return out


def load_cases(path: Path | str) -> list[Case]:
    """Read an evaluation file: a list of {question, expect, style}."""
    try:
        data: Any = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise KnowledgeError([Problem(f"cannot read evaluation file: {exc}", file=str(path))]) from exc
    if isinstance(data, dict) and isinstance(data.get("questions"), list):
        data = data["questions"]  # a question set with its story, writer and split
    if not isinstance(data, list):
        raise KnowledgeError([Problem("expected a list of {question, expect, style}", file=str(path))])
    cases = []
    for i, item in enumerate(data, 1):
        if not isinstance(item, dict) or not isinstance(item.get("question"), str):
            raise KnowledgeError([Problem(f"item {i} needs a 'question'", file=str(path))])
        expect = item.get("expect", UNKNOWN)
        ids = [] if expect is None else [expect] if isinstance(expect, str) else list(expect)
        cases.append(
            Case(item["question"], frozenset(x for x in ids if x != UNKNOWN), str(item.get("style", "-")))
        )
    return cases


def evaluate(matcher: Matcher, cases: Iterable[Case]) -> Report:
    """Run every case through the matcher and tally the outcomes."""
    report = Report()
    for case in cases:
        result = matcher.match(case.question)
        ok = case.passed(result)
        (report.in_scope if case.in_scope else report.out_of_scope).add(case.style, ok)
        if not ok:
            report.failures.append((case, result))
            if case.in_scope and result.best is not None:
                report.wrong += 1
    return report


@dataclass(frozen=True)
class QuestionSet:
    """One writer's questions about one story, and the split they belong to."""

    path: Path
    story: str
    writer: str
    split: str  # one of SPLITS
    cases: tuple[Case, ...]


SPLITS = ("train", "dev", "holdout", "test")
"""train: the projection and the decision model are fitted on it; dev: a story whose failures were
read for feature work, then fitted on too; holdout: never fitted on, for judging a change before
any test set is run (figures and failures may be read); test: figures only, never trained on,
failures never read."""


def load_question_set(path: Path | str) -> QuestionSet:
    """Read a question set with its header: story, writer, split, questions."""
    path = Path(path)
    data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("split") not in SPLITS:
        raise KnowledgeError(
            [Problem(f"needs story, writer, split (one of {', '.join(SPLITS)})", file=str(path))]
        )
    return QuestionSet(
        path, str(data["story"]), str(data["writer"]), str(data["split"]), tuple(load_cases(path))
    )


def load_question_sets(folder: Path | str) -> list[QuestionSet]:
    """Every question set under `folder` (one sub-folder per story)."""
    return [load_question_set(p) for p in sorted(Path(folder).glob("*/*.yaml"))]
