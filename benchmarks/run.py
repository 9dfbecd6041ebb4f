"""StoryBot's cost benchmarks: one command, a table, docs/benchmarks.md.

    python benchmarks/run.py           # shipped base, 1k and 10k synthetic entries (first run
                                       # encodes the synthetic bases: ~10 minutes; cached after)
    python benchmarks/run.py --quick   # shipped base and 1k only

Every figure from this one run on this one machine:

- matching latency per question in a warm process (p50 / p99), StoryBot beside plain
  `rapidfuzz.process.extractOne` over every phrasing and the embedding model alone (encode the
  question, best cosine over every phrasing), on the shipped base and synthetic bases
  (benchmarks/synthetic.py: the 63 shipped entries plus generated ones);
- building the matcher with a cold and a warm embedding cache;
- `storybot ask` from a cold process (the cache warm, as after the first start), beside
  `python -c pass`, and whether it imports discord or torch;
- the resident memory of a process that has loaded the shipped base and answered 300 questions;
- answer quality beside the same two baselines: the table of benchmarks/quality.py (stories the
  matcher was not trained on), copied from docs/quality.md.

The questions timed are tests/data/heldout.yaml's (an older set of the shipped story; only their
timing is used here). The machine is shared and noisy: compare figures of the same run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import itertools
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from rapidfuzz import fuzz, process  # noqa: E402

from benchmarks import synthetic  # noqa: E402
from bot.core.embedding import EmbeddingCache, default_encoder  # noqa: E402
from bot.core.evaluation import load_cases  # noqa: E402
from bot.core.knowledge import load_knowledge, phrasing_key  # noqa: E402
from bot.core.matching import Matcher  # noqa: E402

SHIPPED = ROOT / "knowledge"
QUESTIONS = ROOT / "tests" / "data" / "heldout.yaml"
CACHE = ROOT / ".benchmarks"  # generated knowledge folders and their embedding cache (git-ignored)
DOC = ROOT / "docs" / "benchmarks.md"
QUALITY = ROOT / "docs" / "quality.md"
ASK = "What happened?"

TARGETS = {"shipped_p50_ms": 5.0, "10k_p50_ms": 20.0, "cold_start_s": 0.5, "rss_mb": 250.0}


@dataclass
class Latency:
    """Per-question times in seconds."""

    times: list[float]

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.times) * 1e3

    @property
    def p99_ms(self) -> float:
        ordered = sorted(self.times)
        return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))] * 1e3


def timed(fn: Callable[[str], object], questions: Sequence[str], rounds: int) -> Latency:
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
    return Latency(times)


@dataclass
class SizeRow:
    label: str
    entries: int
    phrasings: int
    build_cold_s: float
    build_warm_s: float
    storybot: Latency
    rapidfuzz: Latency
    embedding: Latency


def measure(
    label: str, folder: Path, questions: list[str], rounds: int, *, cold_build: bool = True
) -> SizeRow:
    kb = load_knowledge(folder)
    if not cold_build:  # a large base: its vectors come from the persistent cache (encoded once)
        Matcher(kb)
        EmbeddingCache._memo.clear()
        start = time.perf_counter()
        matcher = Matcher(kb)
        return _row(label, kb, matcher, float("nan"), time.perf_counter() - start, questions, rounds)
    cold = Path(tempfile.mkdtemp(prefix="storybot-cache-"))
    try:
        EmbeddingCache._memo.clear()
        start = time.perf_counter()
        Matcher(kb, cache=EmbeddingCache(default_encoder(), cold))
        build_cold = time.perf_counter() - start
        EmbeddingCache._memo.clear()
        start = time.perf_counter()
        matcher = Matcher(kb, cache=EmbeddingCache(default_encoder(), cold))
        build_warm = time.perf_counter() - start
    finally:
        shutil.rmtree(cold, ignore_errors=True)
    return _row(label, kb, matcher, build_cold, build_warm, questions, rounds)


def _row(
    label: str, kb, matcher: Matcher, build_cold: float, build_warm: float, questions: list[str], rounds: int
) -> SizeRow:  # type: ignore[no-untyped-def]
    matcher.match(questions[0])
    storybot = timed(matcher.match, questions, rounds)
    keys = [phrasing_key(p) for e in kb.entries for p in e.phrasings]

    def plain(question: str) -> object:
        return process.extractOne(phrasing_key(question), keys, scorer=fuzz.token_set_ratio)

    vectors = matcher._phrasing_vectors

    def embedding(question: str) -> object:
        return int(np.argmax(vectors @ matcher.encoder.encode([question])[0]))

    row = SizeRow(
        label,
        len(kb),
        len(keys),
        build_cold,
        build_warm,
        storybot,
        timed(plain, questions, rounds),
        timed(embedding, questions, rounds),
    )
    print(
        f"  {label:>8}: StoryBot p50 {row.storybot.p50_ms:.2f} ms, rapidfuzz {row.rapidfuzz.p50_ms:.2f} ms, "
        f"embedding alone {row.embedding.p50_ms:.2f} ms; build {build_cold:.1f} s cold, {build_warm:.2f} s warm",
        flush=True,
    )
    return row


def _wall(cmd: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return times


def startup(runs: int) -> dict[str, object]:
    ask = [sys.executable, "-m", "bot", "ask", ASK]
    _wall(ask, 1)  # fills the page cache, the .pyc files and the embedding cache
    ask_times = _wall(ask, runs)
    pass_times = _wall([sys.executable, "-c", "pass"], runs)
    code = (
        "import sys; from bot.cli import main; main(['ask', sys.argv[1]]);"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'discord', 'torch', 'onnxruntime', 'sklearn'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, ASK], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return {
        "ask": statistics.median(ask_times),
        "ask_max": max(ask_times),
        "pass": statistics.median(pass_times),
        "runs": runs,
        "imports": out.stdout.strip().splitlines()[-1],
    }


def resident_memory(questions: list[str]) -> tuple[float, float]:
    """Resident memory (MB) of a process that has loaded the shipped base (embedding cache warm)
    and answered the questions: now, and at its peak. The peak is the kernel's high-water mark of
    the process's own memory (VmHWM), not getrusage's ru_maxrss: on Linux a child started from
    this process reports this process's size there (it reported 604-641 MB, this benchmark's own
    size after loading the 10k-entry base)."""
    code = (
        "import re, sys; from bot.core.knowledge import load_knowledge; from bot.core.matching import Matcher;"
        "m = Matcher(load_knowledge(sys.argv[1])); [m.match(q) for q in sys.stdin.read().splitlines()];"
        "status = open('/proc/self/status').read();"
        "now, peak = (int(re.search(k + r':\\s+(\\d+)', status).group(1)) / 1024 for k in ('VmRSS', 'VmHWM'));"
        "print(now, peak)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(SHIPPED)], input="\n".join(questions), cwd=ROOT,
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    now, peak = out.stdout.strip().splitlines()[-1].split()
    return float(now), float(peak)


def machine() -> str:
    cpu = platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def verdict(measured: float, target: float) -> str:
    return "met" if measured <= target else f"**missed** by {measured / target - 1:.0%}"


def render(
    rows: list[SizeRow], start: dict[str, object], rss: float, command: str, rounds: int, n: int
) -> str:
    by = {r.label: r for r in rows}
    shipped = by["shipped"]
    ask_s = float(start["ask"])  # type: ignore[arg-type]
    lines = [
        "# Benchmarks",
        "",
        "Made by `benchmarks/run.py`; do not edit by hand, run it again.",
        "",
        f"- command: `{command}`",
        f"- date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {machine()} (shared and noisy: compare figures of the same run)",
        f"- Python {platform.python_version()}, numpy {np.__version__}; {n} questions "
        f"(tests/data/heldout.yaml), {rounds} rounds each; times per question in a warm process",
        "",
        "## Targets",
        "",
        "| target | measured | |",
        "| --- | --- | --- |",
        f"| shipped base: p50 ≤ {TARGETS['shipped_p50_ms']:.0f} ms per question | {shipped.storybot.p50_ms:.2f} ms | "
        f"{verdict(shipped.storybot.p50_ms, TARGETS['shipped_p50_ms'])} |",
    ]
    if "10k" in by:
        big = by["10k"]
        lines.append(
            f"| 10k entries: p50 ≤ {TARGETS['10k_p50_ms']:.0f} ms per question | {big.storybot.p50_ms:.2f} ms | "
            f"{verdict(big.storybot.p50_ms, TARGETS['10k_p50_ms'])} |"
        )
    lines += [
        f"| `storybot ask` cold start ≤ {TARGETS['cold_start_s']} s (embedding cache warm; median of {start['runs']}) | "
        f"{ask_s:.3f} s | {verdict(ask_s, TARGETS['cold_start_s'])} |",
        f"| resident memory ≤ {TARGETS['rss_mb']:.0f} MB (shipped base loaded, {n} questions answered) | "
        f"{rss[0]:.0f} MB (peak {rss[1]:.0f} MB) | {verdict(rss[0], TARGETS['rss_mb'])} |",
        f"| `storybot ask` imports none of discord, torch, onnxruntime, sklearn | imports: {start['imports']} | "
        f"{'met' if start['imports'] == '[]' else '**missed**'} |",
        "",
        "## Latency per question, beside the baselines",
        "",
        "p50 / p99 in milliseconds. rapidfuzz: `process.extractOne(scorer=fuzz.token_set_ratio)` over every "
        "phrasing. Embedding alone: encode the question, best cosine over every phrasing. StoryBot does both "
        "and more (the lexical reading, features, the decision model).",
        "",
        "| knowledge base | entries | phrasings | StoryBot p50 | p99 | rapidfuzz p50 | p99 | embedding alone p50 | p99 | "
        "build, cache cold | build, cache warm |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r.label} | {r.entries:,} | {r.phrasings:,} | {r.storybot.p50_ms:.2f} | {r.storybot.p99_ms:.2f} | "
            f"{r.rapidfuzz.p50_ms:.2f} | {r.rapidfuzz.p99_ms:.2f} | {r.embedding.p50_ms:.2f} | {r.embedding.p99_ms:.2f} | "
            + (f"{r.build_cold_s:.1f} s" if r.build_cold_s == r.build_cold_s else "(cached)")
            + f" | {r.build_warm_s:.2f} s |"
        )
    lines += [
        "",
        "## Start-up",
        "",
        f"| command | median wall time ({start['runs']} runs) |",
        "| --- | ---: |",
        f'| `python -m bot ask "{ASK}"` | {ask_s:.3f} s (slowest {float(start["ask_max"]):.3f} s) |',  # type: ignore[arg-type]
        f"| `python -c pass` | {float(start['pass']):.3f} s |",  # type: ignore[arg-type]
        "",
        "## Answer quality, beside the baselines",
        "",
    ]
    if QUALITY.exists():
        # The first table only (the overall figures); the per-set one stays in docs/quality.md.
        table = list(
            itertools.takewhile(
                lambda line: line.startswith("|"),
                itertools.dropwhile(
                    lambda line: not line.startswith("|"), QUALITY.read_text(encoding="utf-8").splitlines()
                ),
            )
        )
        lines += [
            "From `python benchmarks/quality.py` (docs/quality.md): stories the matcher was not trained on.",
            "",
        ]
        lines += table
    lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="StoryBot cost benchmarks")
    parser.add_argument("--quick", action="store_true", help="shipped base and 1k entries, fewer rounds")
    parser.add_argument(
        "--no-write", action="store_true", help="print the table, leave docs/benchmarks.md alone"
    )
    args = parser.parse_args(argv)
    rounds = 2 if args.quick else 3
    sizes = [1_000] if args.quick else [1_000, 10_000]
    os.environ.setdefault("STORYBOT_CACHE", str(CACHE / "embeddings"))
    questions = [c.question for c in load_cases(QUESTIONS)]
    print("matching:", flush=True)
    rows = [measure("shipped", SHIPPED, questions, rounds)]
    for size in sizes:
        folder = CACHE / f"kb-{size}-v{synthetic.VERSION}"
        if not (folder / "story.yaml").exists():
            print(f"  generating {size} entries in {folder} ...", flush=True)
            synthetic.make_knowledge(size, folder)
        rows.append(measure(f"{size // 1000}k", folder, questions, rounds, cold_build=size <= 1_000))
    print("start-up and memory ...", flush=True)
    start = startup(5 if args.quick else 10)
    Matcher(load_knowledge(SHIPPED))  # the shipped base's vectors in the cache, as after a first start
    rss = resident_memory(questions[:300])
    command = "python benchmarks/run.py" + (" --quick" if args.quick else "")
    text = render(rows, start, rss, command, rounds, len(questions))
    print(text)
    if not args.no_write:
        DOC.write_text(text, encoding="utf-8")
        print(f"written to {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
