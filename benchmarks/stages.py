"""Where a question's time goes, stage by stage, in a warm process on the shipped base.

    python benchmarks/stages.py

Answers the questions `benchmarks/run.py` times (tests/data/heldout.yaml, three rounds) with the
shipped matcher, timing each stage it calls: the sentence model's forward pass, the lexical
reading, the word-by-word comparisons, the guards, rapidfuzz, the projection and the decision
model; what is left is the candidates' bookkeeping. Mean milliseconds a question (the stages
add up; a median would not). The machine is shared: compare figures of one run.
"""

from __future__ import annotations

import gc
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.run import QUESTIONS, SHIPPED  # noqa: E402
from bot.core import matching  # noqa: E402
from bot.core.evaluation import load_cases  # noqa: E402
from bot.core.knowledge import load_knowledge  # noqa: E402
from bot.core.matching import Matcher  # noqa: E402

ROUNDS = 3


def _timing(spent: dict[str, float], owner: Any, name: str, label: str) -> None:
    """Replace `owner.name` with a wrapper adding its time to spent[label] (frozen classes too)."""
    inner: Callable[..., Any] = getattr(owner, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[label] += time.perf_counter() - start

    object.__setattr__(owner, name, timed)


def main() -> int:
    matcher = Matcher(load_knowledge(SHIPPED))
    questions = [case.question for case in load_cases(QUESTIONS)]
    spent: dict[str, float] = defaultdict(float)
    stages = {
        "the sentence model (forward pass)": (matcher.encoder, "encode"),
        "the lexical reading": (matcher.terms, "analyse"),
        "word-by-word comparisons": (matcher, "_word_features"),
        "the guards": (matcher.terms, "guards"),
        "rapidfuzz (closest wording)": (matching.process, "extractOne"),
        "the projection": (matcher, "projection"),
        "the decision model": (matcher.decision, "probabilities"),
    }
    for label, (owner, name) in stages.items():
        _timing(spent, owner, name, label)
    matcher.match(questions[0])
    spent.clear()
    total = 0.0
    gc.collect()
    gc.disable()
    try:
        for _ in range(ROUNDS):
            for question in questions:
                start = time.perf_counter()
                matcher.match(question)
                total += time.perf_counter() - start
    finally:
        gc.enable()
    asked = ROUNDS * len(questions)
    print(f"{len(questions)} questions x {ROUNDS} rounds, mean ms a question\n")
    print("| stage | ms |\n| --- | ---: |")
    for label in stages:
        print(f"| {label} | {spent[label] / asked * 1e3:.2f} |")
    print(
        f"| everything else (candidates' features, ranking) | {(total - sum(spent.values())) / asked * 1e3:.2f} |"
    )
    print(f"| **a question, in all** | **{total / asked * 1e3:.2f}** |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
