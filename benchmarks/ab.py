"""Matcher latency of two commits side by side, in alternation, on the shipped knowledge base.

    python benchmarks/ab.py 68578e8            # that commit against the working tree
    python benchmarks/ab.py 68578e8 --rounds 5

On a shared machine the same code measures differently from one run to the next, so a
figure from today cannot be compared with one from last week; alternating the two in the
same minutes can. The older commit is checked out in a temporary git worktree (removed
afterwards); each timing runs in a fresh process, over every question of
tests/data/heldout.yaml, five times, and prints p50 and p99 per question.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TIMER = """
import gc, statistics, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from bot.core.evaluation import load_cases
from bot.core.knowledge import load_knowledge
from bot.core.matching import Matcher
matcher = Matcher(load_knowledge(Path(sys.argv[1]) / "knowledge"))
questions = [c.question for c in load_cases(Path(sys.argv[2]))]
for q in questions:
    matcher.match(q)
gc.disable()
times = []
for _ in range(5):
    for q in questions:
        start = time.perf_counter()
        matcher.match(q)
        times.append(time.perf_counter() - start)
times.sort()
print(f"p50 {statistics.median(times) * 1000:.3f} ms  p99 {times[int(len(times) * 0.99)] * 1000:.3f} ms")
"""


def time_tree(tree: Path) -> str:
    questions = ROOT / "tests" / "data" / "heldout.yaml"
    result = subprocess.run(
        [sys.executable, "-c", TIMER, str(tree), str(questions)], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("commit", help="the older commit to compare the working tree with")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        old = Path(scratch) / "old"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(old), args.commit], check=True
        )
        try:
            for n in range(1, args.rounds + 1):
                print(f"round {n}: {args.commit}: {time_tree(old)}")
                print(f"round {n}: working tree: {time_tree(ROOT)}")
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], check=True)


if __name__ == "__main__":
    main()
