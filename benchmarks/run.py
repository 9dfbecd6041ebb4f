"""StoryBot's benchmarks: one command, a table, docs/benchmarks.md.

    python benchmarks/run.py           # the full run (sizes up to 100k entries; a few minutes)
    python benchmarks/run.py --quick   # a short run (fewer repeats, up to 10k entries)

What it measures, every figure from this one run on this one machine:

- matching latency per question (median and p99 over every held-out question, repeated)
  with the shipped knowledge base and synthetic ones of 100, 1k, 10k and 100k entries
  (benchmarks/synthetic.py: the 63 shipped entries plus generated ones), side by side with
  plain `rapidfuzz.process.extractOne` over every phrasing (WRatio, `default_process`, the
  phrasings processed once beforehand) and with `thefuzz.process.extractOne` (time-boxed);
- the matcher's accuracy on tests/data/heldout.yaml at each size (in scope: answered with
  the right entry; out of scope: refused), and plain extractOne's top-1 in-scope accuracy;
- loading and validating a knowledge base (`load_knowledge`), and building the Matcher;
- start-up: `python -m bot ask "..."` from a cold process, beside `python -c pass`, and
  which heavy modules it imports.

Timings are medians and 99th percentiles: the machine is shared and noisy, so compare
figures from the same run (the ratios), not across runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import rapidfuzz  # noqa: E402
import yaml  # noqa: E402
from rapidfuzz import fuzz, process  # noqa: E402
from rapidfuzz.utils import default_process  # noqa: E402

from benchmarks import synthetic  # noqa: E402
from bot.core import knowledge as knowledge_module  # noqa: E402
from bot.core.evaluation import Case, evaluate, load_cases  # noqa: E402
from bot.core.knowledge import load_knowledge  # noqa: E402
from bot.core.matching import Matcher  # noqa: E402

SHIPPED = ROOT / "knowledge"
HELDOUT = ROOT / "tests" / "data" / "heldout.yaml"
CACHE = ROOT / ".benchmarks"  # generated knowledge folders (git-ignored)
DOC = ROOT / "docs" / "benchmarks.md"
ASK = "How far did they push the trolley?"

TARGETS = {
    "shipped_p50_ms": 0.5,
    "100k_p50_ms": 10.0,
    "100k_speedup": 10.0,
    "load_10k_s": 1.0,
    "cold_start_s": 0.3,
}


@dataclass
class Latency:
    """Per-question times in seconds."""

    times: list[float]
    note: str = ""

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times) * 1e3

    @property
    def p99_ms(self) -> float:
        ordered = sorted(self.times)
        return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))] * 1e3


@dataclass
class SizeResult:
    label: str
    entries: int
    phrasings: int
    load_s: float
    build_s: float
    matcher: Latency
    rapidfuzz: Latency
    thefuzz: Latency
    in_scope: float
    refused: float
    rapidfuzz_top1: float | None


def timed(fn: Callable[[str], object], questions: Sequence[str], rounds: int) -> list[float]:
    """Time fn on every question, `rounds` times over (gc off while timing, as timeit does)."""
    times: list[float] = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(rounds):
            for q in questions:
                start = time.perf_counter()
                fn(q)
                times.append(time.perf_counter() - start)
    finally:
        gc.enable()
    return times


def time_boxed(
    fn: Callable[[str], object],
    questions: Sequence[str],
    budget_s: float,
    answers: list[object] | None = None,
) -> Latency:
    """Time fn on questions until the budget is spent (at least 3 questions)."""
    times: list[float] = []
    spent = 0.0
    for q in questions:
        start = time.perf_counter()
        found = fn(q)
        took = time.perf_counter() - start
        if answers is not None:
            answers.append(found)
        times.append(took)
        spent += took
        if spent > budget_s and len(times) >= 3:
            break
    note = "" if len(times) == len(questions) else f"{len(times)} of {len(questions)} questions (time-boxed)"
    return Latency(times, note)


def knowledge_folder(size: int) -> Path:
    """A generated knowledge folder of `size` entries, cached between runs."""
    folder = CACHE / f"kb-{size}-v{synthetic.VERSION}"
    if not (folder / "story.yaml").exists():
        print(f"  generating {size} entries in {folder} ...", flush=True)
        synthetic.make_knowledge(size, folder)
    return folder


def measure_size(
    label: str, folder: Path, cases: list[Case], rounds: int, thefuzz_budget: float, plain_budget: float
) -> SizeResult:
    questions = [c.question for c in cases]
    start = time.perf_counter()
    kb = load_knowledge(folder)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    matcher = Matcher(kb)
    build_s = time.perf_counter() - start
    report = evaluate(matcher, cases)
    matcher.match(questions[0])  # warm the caches once, as a running bot has them warm
    matcher_latency = Latency(timed(matcher.match, questions, rounds))

    # Plain fuzzy matching: every phrasing, processed once, the best by WRatio.
    owners = [e.id for e in kb.entries for _ in e.phrasings]
    phrasings = [p for e in kb.entries for p in e.phrasings]
    processed = [default_process(p) for p in phrasings]

    def plain(question: str) -> tuple[str, float, int] | None:
        return process.extractOne(default_process(question), processed, scorer=fuzz.WRatio, processor=None)

    answers: list[object] = []
    if len(phrasings) > 100_000:  # about a second a question: once each, time-boxed
        rapidfuzz_latency = time_boxed(plain, questions, plain_budget, answers)
    else:
        rapidfuzz_latency = time_boxed(plain, questions, float("inf"), answers)
        rapidfuzz_latency.times += timed(plain, questions, rounds - 1)
    top1: float | None = None
    if len(answers) == len(cases):
        right = total = 0
        for case, found in zip(cases, answers, strict=True):
            if case.in_scope:
                total += 1
                right += bool(found and owners[found[2]] in case.expect)  # type: ignore[index]
        top1 = right / total

    from thefuzz import process as thefuzz_process

    logging.getLogger("thefuzz").setLevel(logging.ERROR)  # "processor reduces query to empty string"

    thefuzz_latency = time_boxed(
        lambda q: thefuzz_process.extractOne(q, phrasings), questions, thefuzz_budget
    )
    result = SizeResult(
        label=label,
        entries=len(kb),
        phrasings=len(phrasings),
        load_s=load_s,
        build_s=build_s,
        matcher=matcher_latency,
        rapidfuzz=rapidfuzz_latency,
        thefuzz=thefuzz_latency,
        in_scope=report.in_scope.rate(),
        refused=report.out_of_scope.rate(),
        rapidfuzz_top1=top1,
    )
    print(
        f"  {label:>8}: matcher p50 {result.matcher.median_ms:.3f} ms, extractOne p50 "
        f"{result.rapidfuzz.median_ms:.2f} ms, in scope {result.in_scope:.1%}, refused {result.refused:.1%}",
        flush=True,
    )
    return result


def _load_in_fresh_process(folder: Path) -> float:
    code = (
        "import sys, time; sys.path.insert(0, sys.argv[1]);"
        "from bot.core.knowledge import load_knowledge;"
        "t = time.perf_counter(); load_knowledge(sys.argv[2]); print(time.perf_counter() - t)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(ROOT), str(folder)], capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip())


def _wall(cmd: list[str], runs: int, env: dict[str, str]) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(
            cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True
        )
        times.append(time.perf_counter() - start)
    return times


def startup(runs: int) -> dict[str, object]:
    ask = [sys.executable, "-m", "bot", "ask", ASK]
    # As installed (pip compiles .pyc files): bytecode cached outside the repository.
    installed = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    installed["PYTHONPYCACHEPREFIX"] = str(CACHE / "pycache")
    # StoryBot's own modules compiled from source at every start (a checkout run with
    # PYTHONDONTWRITEBYTECODE=1 and no __pycache__): the standard library's .pyc files are used.
    source = {k: v for k, v in os.environ.items() if k != "PYTHONPYCACHEPREFIX"}
    source["PYTHONDONTWRITEBYTECODE"] = "1"
    _wall(ask, 1, installed)  # fills the page cache and writes the .pyc files
    ask_times = _wall(ask, runs, installed)
    source_times = _wall(ask, runs, source)
    pass_times = _wall([sys.executable, "-c", "pass"], runs, installed)
    trace = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "bot", "ask", ASK],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in trace.splitlines() if "|" in line}
    heavy = ["discord", "aiohttp", "ruamel", "filelock", "rapidfuzz", "sqlite3", "asyncio"]
    return {
        "ask": statistics.median(ask_times),
        "ask_max": max(ask_times),
        "source": statistics.median(source_times),
        "pass": statistics.median(pass_times),
        "runs": runs,
        "imported": [m for m in heavy if m in imported],
        "not_imported": [m for m in heavy if m not in imported],
    }


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def status(
    ok: bool, measured: float | None = None, target: float | None = None, *, higher: bool = False
) -> str:
    if ok:
        return "met"
    if measured is None or target is None:
        return "**missed**"
    by = (target / measured - 1) if higher else (measured / target - 1)
    return f"**missed** by {by:.0%}"


def render(
    sizes: list[SizeResult],
    load_10k: list[float] | None,
    start: dict[str, object],
    same: str,
    args: argparse.Namespace,
    command: str,
) -> str:
    by_label = {s.label: s for s in sizes}
    shipped = by_label["shipped"]
    big = by_label.get("100k")
    lines = [
        "# Benchmarks",
        "",
        "Made by `benchmarks/run.py`; do not edit by hand, run it again.",
        "",
        f"- command: `{command}`",
        f"- date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {machine()} (shared and noisy: read the ratios, which come from the same run)",
        f"- Python {platform.python_version()}, rapidfuzz {rapidfuzz.__version__}, PyYAML {yaml.__version__} "
        f"(C loader: {'yes' if getattr(yaml, '__with_libyaml__', False) and knowledge_module._BaseLoader.__name__ == 'CSafeLoader' else 'no'})",
        f"- questions: tests/data/heldout.yaml ({sum(1 for _ in load_cases(HELDOUT))} questions), "
        f"{args.rounds} rounds each for the matcher; times per question",
        "",
        "## Targets",
        "",
        "| target | measured | |",
        "| --- | --- | --- |",
        f"| shipped knowledge base: p50 < {TARGETS['shipped_p50_ms']} ms per question | "
        f"{shipped.matcher.median_ms:.3f} ms | {status(shipped.matcher.median_ms < TARGETS['shipped_p50_ms'], shipped.matcher.median_ms, TARGETS['shipped_p50_ms'])} |",
    ]
    if big is not None:
        speedup = big.rapidfuzz.median_ms / big.matcher.median_ms
        lines += [
            f"| 100k entries: p50 < {TARGETS['100k_p50_ms']:.0f} ms per question | {big.matcher.median_ms:.3f} ms | "
            f"{status(big.matcher.median_ms < TARGETS['100k_p50_ms'], big.matcher.median_ms, TARGETS['100k_p50_ms'])} |",
            f"| 100k entries: ≥ {TARGETS['100k_speedup']:.0f}× faster than plain extractOne (p50) | "
            f"{speedup:,.0f}× | {status(speedup >= TARGETS['100k_speedup'], speedup, TARGETS['100k_speedup'], higher=True)} |",
        ]
    lines.append(
        f"| same answers on the held-out set (shipped base) | {same} | {status(same.startswith('identical'))} |"
    )
    if load_10k:
        lines.append(
            f"| 10k entries: load + validate < {TARGETS['load_10k_s']:.0f} s (fresh process, median of {len(load_10k)}) | "
            f"{statistics.median(load_10k):.2f} s | {status(statistics.median(load_10k) < TARGETS['load_10k_s'], statistics.median(load_10k), TARGETS['load_10k_s'])} |"
        )
    ask_s = float(start["ask"])  # type: ignore[arg-type]
    lines += [
        f"| `storybot ask` cold start < {TARGETS['cold_start_s']} s (median of {start['runs']}) | {ask_s:.3f} s | "
        f"{status(ask_s < TARGETS['cold_start_s'], ask_s, TARGETS['cold_start_s'])} |",
        f"| `storybot ask` never imports discord | imports: {', '.join(start['imported']) or 'none of them'} | "  # type: ignore[arg-type]
        f"{status('discord' not in start['imported'])} |",  # type: ignore[operator]
        "",
        "## Matching latency per question",
        "",
        "StoryBot's matcher against plain fuzzy matching over every phrasing, on the same questions. "
        "p50 / p99 in milliseconds; the ratio is extractOne's p50 over the matcher's.",
        "",
        "| knowledge base | entries | phrasings | StoryBot p50 | p99 | rapidfuzz extractOne p50 | p99 | ratio | thefuzz extractOne p50 | p99 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in sizes:
        note = f" ({s.thefuzz.note})" if s.thefuzz.note else ""
        plain_note = f" ({s.rapidfuzz.note})" if s.rapidfuzz.note else ""
        lines.append(
            f"| {s.label} | {s.entries:,} | {s.phrasings:,} | {s.matcher.median_ms:.3f} | {s.matcher.p99_ms:.2f} | "
            f"{s.rapidfuzz.median_ms:.2f} | {s.rapidfuzz.p99_ms:.2f}{plain_note} | "
            f"{s.rapidfuzz.median_ms / s.matcher.median_ms:,.0f}× | "
            f"{s.thefuzz.median_ms:,.1f} | {s.thefuzz.p99_ms:,.1f}{note} |"
        )
    lines += [
        "",
        "## Accuracy on the held-out questions at each size",
        "",
        "The 63 shipped entries are inside every synthetic base, so every in-scope question stays answerable; "
        "the generated entries compete with them and change the term weights, so answers can change with size. "
        "Plain extractOne has no way to refuse (it always returns the closest phrasing); its column is top-1 "
        "in-scope accuracy only.",
        "",
        "| knowledge base | entries | in scope (answered right) | out of scope (refused) | combined | extractOne top-1 in scope |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in sizes:
        lines.append(
            f"| {s.label} | {s.entries:,} | {s.in_scope:.1%} | {s.refused:.1%} | {(s.in_scope + s.refused) / 2:.1%} | "
            + (f"{s.rapidfuzz_top1:.1%} |" if s.rapidfuzz_top1 is not None else "n/a (time-boxed) |")
        )
    lines += [
        "",
        "## Loading and building",
        "",
        "`load_knowledge` reads and validates every entry (fields, lengths, every source checked against the "
        "article, duplicate ids and phrasings); the Matcher then stems and indexes every phrasing. "
        "In this process (the 10k row below it is the median of fresh processes).",
        "",
        "| knowledge base | entries | load + validate | Matcher build |",
        "| --- | ---: | ---: | ---: |",
    ]
    for s in sizes:
        lines.append(f"| {s.label} | {s.entries:,} | {s.load_s:.2f} s | {s.build_s:.2f} s |")
    if load_10k:
        lines.append(
            f"| 10k, fresh process | 10,000 | {statistics.median(load_10k):.2f} s (runs: "
            f"{', '.join(f'{t:.2f}' for t in load_10k)}) | |"
        )
    lines += [
        "",
        "## Start-up",
        "",
        f"| command | median wall time ({start['runs']} runs) |",
        "| --- | ---: |",
        f'| `python -m bot ask "{ASK}"` (bytecode cached, as installed) | {ask_s:.3f} s (slowest '
        f"{float(start['ask_max']):.3f} s) |",  # type: ignore[arg-type]
        f"| the same, compiling StoryBot's modules at every start (PYTHONDONTWRITEBYTECODE=1, no __pycache__) | "
        f"{float(start['source']):.3f} s |",  # type: ignore[arg-type]
        f"| `python -c pass` | {float(start['pass']):.3f} s |",  # type: ignore[arg-type]
        "",
        f"Not imported by `ask`: {', '.join(start['not_imported'])}. "  # type: ignore[arg-type]
        f"Imported of those: {', '.join(start['imported']) or 'none'}.",  # type: ignore[arg-type]
        "",
    ]
    notes = ROOT / "benchmarks" / "NOTES.md"
    if notes.exists():
        lines += [notes.read_text(encoding="utf-8").rstrip(), ""]
    return "\n".join(lines)


E2E_HEADING = "## End to end through the fake Discord"


def end_to_end(questions: int) -> str:
    """Run benchmarks/e2e.py (the bot as its own process) and render its figures."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "e2e.py"), "--questions", str(questions)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    out = done.stdout.strip() or done.stderr.strip()[-2000:]
    return (
        f"{E2E_HEADING}\n\n`python benchmarks/e2e.py --questions {questions}`: the bot runs as "
        "`python -m bot run` against the fake Discord on 127.0.0.1; latency is from the event "
        "leaving the fake's gateway to the bot's reply reaching its REST API. Targets: p99 under "
        "50 ms at 50 questions/s, RSS under 100 MB.\n\n```\n" + out + "\n```\n"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="StoryBot benchmarks")
    parser.add_argument("--quick", action="store_true", help="a short run: sizes up to 10k, fewer repeats")
    parser.add_argument(
        "--no-write", action="store_true", help="print the table, leave docs/benchmarks.md alone"
    )
    parser.add_argument(
        "--e2e-only", action="store_true", help="only the end-to-end run; update its section of the doc"
    )
    args = parser.parse_args(argv)
    if args.e2e_only:
        section = end_to_end(200 if args.quick else 1000)
        print(section)
        if not args.no_write and DOC.exists():
            old = DOC.read_text(encoding="utf-8")
            head = old.split(E2E_HEADING)[0].rstrip() + "\n\n"
            DOC.write_text(head + section, encoding="utf-8")
        return 0
    args.rounds = 2 if args.quick else 5
    sizes = [100, 1_000, 10_000] if args.quick else [100, 1_000, 10_000, 100_000]
    thefuzz_budget = 5.0 if args.quick else 30.0
    command = "python benchmarks/run.py" + (" --quick" if args.quick else "")
    cases = load_cases(HELDOUT)

    print("matching:", flush=True)
    plain_budget = 20.0 if args.quick else 60.0
    results = [measure_size("shipped", SHIPPED, cases, args.rounds * 2, thefuzz_budget, plain_budget)]
    for size in sizes:
        label = f"{size // 1000}k" if size >= 1000 else str(size)
        results.append(
            measure_size(label, knowledge_folder(size), cases, args.rounds, thefuzz_budget, plain_budget)
        )
        gc.collect()

    print("loading 10k entries in fresh processes ...", flush=True)
    folder = knowledge_folder(10_000)
    load_10k = [_load_in_fresh_process(folder) for _ in range(3 if args.quick else 5)]

    print("start-up ...", flush=True)
    start = startup(5 if args.quick else 10)

    print("same answers ...", flush=True)
    check = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "same_answers.py")], capture_output=True, text=True
    )
    same = (check.stdout.strip().splitlines() or ["(no output)"])[-1]

    print("end to end through the fake Discord ...", flush=True)
    text = render(results, load_10k, start, same, args, command).rstrip() + "\n\n"
    text += end_to_end(200 if args.quick else 1000)
    print()
    print(text)
    if not args.no_write:
        DOC.parent.mkdir(exist_ok=True)
        DOC.write_text(text, encoding="utf-8")
        print(f"\nwritten to {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
