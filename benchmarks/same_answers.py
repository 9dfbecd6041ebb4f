"""Check that a change left every matching result exactly as it was.

    python benchmarks/same_answers.py --record   # before a change: write the reference
    python benchmarks/same_answers.py            # after it: compare (exit 1 on any difference)

Runs under PYTHONHASHSEED=0 (it re-executes itself so). The matcher once summed a phrasing's
term weights in set order, which follows string hashing, so a tie could fall either way from
one process to the next; it now sums in sorted order, and the fixed seed stays as a guard.

The reference (benchmarks/answers.json) holds, for every question of tests/data/dev.yaml,
tune.yaml and heldout.yaml, the outcome, the answering entry id and score, every candidate's
id, score and phrasing, and the text `storybot eval` prints for each file.

With `--synthetic N` the same is done (without `storybot eval`) on a synthetic knowledge base
of N entries (benchmarks/synthetic.py), reference benchmarks/answers-N.json, so that a change
meant only to be faster is checked where it matters most: on a large base.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.core.evaluation import load_cases  # noqa: E402
from bot.core.knowledge import load_knowledge  # noqa: E402
from bot.core.matching import Matcher  # noqa: E402

FILES = ("dev", "tune", "heldout")
REFERENCE = ROOT / "benchmarks" / "answers.json"


def snapshot(knowledge: Path = ROOT / "knowledge", *, run_eval: bool = True) -> dict[str, object]:
    """Every question's result, and `storybot eval`'s output, for the three question files."""
    matcher = Matcher(load_knowledge(knowledge))
    answers: dict[str, list[dict[str, object]]] = {}
    evals: dict[str, str] = {}
    for name in FILES:
        path = ROOT / "tests" / "data" / f"{name}.yaml"
        rows = []
        for case in load_cases(path):
            result = matcher.match(case.question)
            best = result.best
            rows.append(
                {
                    "question": case.question,
                    "outcome": result.outcome,
                    "id": best.entry.id if best else None,
                    "score": best.score if best else None,
                    "reason": result.reason,
                    "candidates": [[c.entry.id, c.score, c.phrasing] for c in result.candidates],
                }
            )
        answers[name] = rows
        if not run_eval:
            evals[name] = ""
            continue
        evals[name] = subprocess.run(
            [sys.executable, "-m", "bot", "eval", str(path), "--knowledge", str(ROOT / "knowledge")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    return {"answers": answers, "eval": evals}


def main() -> int:
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0"})
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--record", action="store_true", help="write the reference instead of comparing")
    parser.add_argument(
        "--synthetic", type=int, default=0, metavar="N", help="use a synthetic base of N entries"
    )
    args = parser.parse_args()
    reference = REFERENCE
    if args.synthetic:
        import tempfile

        from benchmarks.synthetic import make_knowledge

        reference = REFERENCE.with_name(f"answers-{args.synthetic}.json")
        with tempfile.TemporaryDirectory() as tmp:
            now = snapshot(make_knowledge(args.synthetic, Path(tmp) / "knowledge"), run_eval=False)
    else:
        now = snapshot()
    if args.record:
        reference.write_text(json.dumps(now, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        count = sum(len(v) for v in now["answers"].values())  # type: ignore[attr-defined]
        print(f"recorded {count} questions to {reference.relative_to(ROOT)}")
        return 0
    before = json.loads(reference.read_text(encoding="utf-8"))
    differences = 0
    for name in FILES:
        old_rows, new_rows = before["answers"][name], now["answers"][name]  # type: ignore[index]
        if len(old_rows) != len(new_rows):
            print(f"{name}: {len(old_rows)} questions before, {len(new_rows)} now")
            differences += 1
            continue
        for old, new in zip(old_rows, new_rows, strict=True):
            if old != new:
                differences += 1
                print(f"{name}: {old['question']!r}\n  before: {old}\n  now:    {new}")
        if before["eval"][name] != now["eval"][name]:  # type: ignore[index]
            differences += 1
            print(f"{name}: `storybot eval` output differs")
    count = sum(len(v) for v in now["answers"].values())  # type: ignore[attr-defined]
    if differences:
        print(f"DIFFERENT: {differences} difference(s) over {count} questions")
        return 1
    print(f"identical: {count} questions (outcome, id, score, every candidate) and 3 eval reports")
    return 0


if __name__ == "__main__":
    sys.exit(main())
