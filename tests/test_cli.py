"""The `storybot` command, run as a user runs it: in a subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.core.knowledge import load_knowledge
from tests.conftest import ROOT, SHIPPED


def storybot(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin, capture_output=True, text=True, timeout=60, cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )  # fmt: skip


def test_ask_prints_answer_and_source() -> None:
    entry = load_knowledge(SHIPPED).get("trolley-distance")
    assert entry is not None
    done = storybot("ask", "How far did they push the trolley?")
    assert done.returncode == 0
    assert done.stdout.splitlines()[0] == entry.answer
    assert entry.sources[0] in done.stdout
    verbose = storybot("ask", "-v", "How far did they push the trolley?")
    # Why: each candidate with its probability, and the features that pushed it most.
    assert re.search(r"p=\d\.\d\d trolley-distance", verbose.stdout)
    assert re.search(r"(sem_\w+|wording|lexical\w*) -?\d\.\d\d \([+-]\d", verbose.stdout)
    assert "answers from p >=" in verbose.stdout


def test_json_conversation_over_a_pipe() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "ask", "--json"], cwd=ROOT, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert proc.stdin and proc.stdout
    try:
        proc.stdin.write("How far did they push the trolley?\n")
        proc.stdin.flush()
        first = json.loads(proc.stdout.readline())  # answered before stdin closes: flushed
        assert first["outcome"] == "answer" and first["id"] == "trolley-distance"
        assert set(first) >= {"question", "outcome", "answer", "source", "id", "score", "suggestions"}
        proc.stdin.write("who won the football last night\n")
        proc.stdin.flush()
        second = json.loads(proc.stdout.readline())
        assert second["outcome"] != "answer" and second["answer"] is None and second["source"] is None
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)
    assert proc.returncode == 0


def test_source_in_json_is_the_articles_own_text() -> None:
    done = storybot("ask", "--json", "who was the youngest?")
    result = json.loads(done.stdout)
    text = (SHIPPED / "article.txt").read_text(encoding="utf-8")
    assert result["source"] in text  # curly quotes and all, unaltered


@pytest.mark.parametrize("question", ["", "   ", "🚂" * 10, "x" * 5000, "a\x00b", "@everyone"])
def test_bad_questions_never_crash(question: str) -> None:
    done = storybot("ask", "--json", stdin=question + "\n")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outcome"] in ("answer", "suggest", "unknown")


def test_validate_and_coverage_on_the_shipped_knowledge() -> None:
    done = storybot("validate")
    assert done.returncode == 0 and "OK" in done.stdout, done.stderr
    done = storybot("coverage", "--strict")
    assert done.returncode == 0 and done.stdout.startswith("0 article sentence")


def test_validate_names_the_entries_that_another_phrasing_would_help(kb_dir: Path) -> None:
    done = storybot("validate", "--knowledge", str(kb_dir))
    assert "note:" not in done.stdout  # every shipped entry has 15 phrasings or more
    (kb_dir / "entries" / "thin.yaml").write_text(
        "- id: thin-one\n  question: How did Sorokin get home?\n  alternates: [sorokin route home]\n"
        "  answer: A.\n  source: Sorokin\n",
        encoding="utf-8",
    )
    done = storybot("validate", "--knowledge", str(kb_dir))
    assert done.returncode == 0, done.stderr  # advice, not a problem
    note = next(line for line in done.stdout.splitlines() if line.startswith("note:"))
    assert "1 of 64 entries have fewer than 10 phrasings" in note and "thin-one (2)" in note


def test_validate_reports_every_problem_and_exits_1(kb_dir: Path) -> None:
    (kb_dir / "entries" / "bad.yaml").write_text(
        "- id: one\n  question: Q?\n  answer: A.\n  source: Not in the article\n"
        "- id: two\n  question: ''\n  answer: B.\n  source: Sorokin\n",
        encoding="utf-8",
    )
    done = storybot("validate", "--knowledge", str(kb_dir))
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if "bad.yaml" in line]
    assert any("bad.yaml:4: entry 'one'" in line and "not in the article" in line for line in lines)
    assert any("bad.yaml:6: entry 'two'" in line and "'question' is empty" in line for line in lines)
    assert "Traceback" not in done.stderr


def test_validate_warns_about_synonyms_that_stem_alike_in_two_groups(kb_dir: Path) -> None:
    done = storybot("validate", "--knowledge", str(kb_dir))
    assert "warning" not in done.stderr  # the shipped groups have no such clash
    path = kb_dir / "synonyms.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "  - [lugages, carts]\n", encoding="utf-8")
    done = storybot("validate", "--knowledge", str(kb_dir))
    assert done.returncode == 0, done.stderr  # a warning, not an error
    warning = next(line for line in done.stderr.splitlines() if "'carts'" in line)
    assert "synonyms.yaml: warning:" in warning and "'cart'" in warning and "once stemmed" in warning


def test_add_then_ask_in_another_knowledge_folder(kb_dir: Path) -> None:
    done = storybot(
        "add", "--id", "bus-hours-test", "--question", "How many hours did the bus part take?",
        "--answer", "Two hours.", "--source",
        "The group of eight people took a 32-hour train ride, followed by two hours on a bus.",
        env={"STORYBOT_KNOWLEDGE": str(kb_dir)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "It has 1 phrasing:" in done.stdout and "--alternate" in done.stdout  # more would help
    asked = storybot(
        "ask", "--json", "How many hours did the bus part take?", env={"STORYBOT_KNOWLEDGE": str(kb_dir)}
    )
    assert json.loads(asked.stdout)["id"] == "bus-hours-test"
    refused = storybot(
        "add",
        "--knowledge",
        str(kb_dir),
        "--id",
        "x",
        "--question",
        "Q?",
        "--answer",
        "A.",
        "--source",
        "Made up.",
    )
    assert refused.returncode == 1 and "not in the article" in refused.stderr


def test_eval_prints_figures_per_style() -> None:
    done = storybot("eval", "tests/data/dev.yaml")
    assert done.returncode == 0
    assert "in scope (answered right)" in done.stdout and "near-domain" in done.stdout


def test_ask_does_not_import_discord() -> None:
    code = (
        "import sys, runpy; sys.argv=['storybot','ask','trolley distance'];"
        "import bot.cli; bot.cli.main(sys.argv[1:]);"
        "assert 'discord' not in sys.modules, 'discord imported'; print('clean')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0 and "clean" in done.stdout, done.stderr


def test_run_without_a_token_explains_and_shows_no_traceback(tmp_path: Path) -> None:
    done = storybot("run", env={"DISCORD_TOKEN": ""}, cwd=tmp_path)
    assert done.returncode == 2
    assert "DISCORD_TOKEN" in done.stderr and "storybot ask" in done.stderr
    assert "Traceback" not in done.stderr


def test_console_answers_until_an_empty_line() -> None:
    done = storybot("console", stdin="How far did they push the trolley?\nwho was the youngest\n\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("> ") >= 2 and "entries. Ask a question" in done.stdout
