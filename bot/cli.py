"""`storybot`: ask, console, validate, coverage, add, eval, export, migrate, run, healthcheck.

Everything except `run` works offline with no token, and nothing here imports
discord until `run` asks for the bot.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from bot import __version__
from bot.core import wording
from bot.core.errors import KnowledgeError
from bot.core.knowledge import (
    FEW_PHRASINGS,
    SYNONYMS_FILE,
    KnowledgeBase,
    load_knowledge,
    resolve_knowledge_dir,
    thin_entries,
    uncited_sentences,
)
from bot.core.matching import DecisionModel, Result, synonym_clashes
from bot.core.service import StoryService

if TYPE_CHECKING:
    from bot.core.postgres import Database

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


def result_json(result: Result, kb: KnowledgeBase) -> dict[str, object]:
    """The `--json` form of a result (one line per question)."""
    best = result.best
    return {
        "question": result.question,
        "outcome": result.outcome,
        "answer": best.entry.answer if best else None,
        "source": kb.quote(best.entry) if best else None,
        "id": best.entry.id if best else None,
        "score": best.score if best else None,
        "suggestions": [
            {"id": c.entry.id, "question": c.entry.question, "score": c.score} for c in result.suggestions
        ],
    }


def result_text(
    result: Result, kb: KnowledgeBase, *, verbose: bool = False, decision: DecisionModel | None = None
) -> str:
    """The terminal form of a result; verbose adds why (see `explain`)."""
    best = result.best
    if best is not None:
        lines = [best.entry.answer, *(f"  > {sentence}" for sentence in kb.quotes(best.entry))]
    elif result.outcome == "suggest":
        lines = [wording.SUGGEST]
        lines += [f"  {number}. {c.entry.question}" for number, c in enumerate(result.suggestions, 1)]
    else:
        lines = [wording.unknown_text(result, kb)]
    if verbose and decision is not None:
        lines += explain(result, decision)
    return "\n".join(lines)


def explain(result: Result, decision: DecisionModel) -> list[str]:
    """Why the matcher decided: each candidate's probability and the features that pushed it most."""
    lines = [
        f"  [{result.outcome}: {result.reason}; answers from p >= {decision.answer_at:.2f}, suggests from p >= {decision.suggest_at:.2f}]"
    ]
    for c in result.candidates:
        if not c.features:  # an example of the kind of question asked, not a match
            lines.append(f"  example {c.entry.id}: “{c.phrasing}”")
            continue
        pushes = ", ".join(
            f"{name} {c.features.get(name, 0.0):.2f} ({push:+.1f})"
            for name, push in decision.contributions(c.features)[:4]
        )
        lines.append(f"  p={c.probability:.2f} {c.entry.id}  closest: “{c.phrasing}”")
        lines.append(f"      {pushes}")
    return lines


def _database_url() -> str:
    return (os.environ.get("STORYBOT_DATABASE_URL") or "").strip()


def _service(args: argparse.Namespace) -> StoryService:
    """The knowledge as the bot serves it: the folder, or (with STORYBOT_DATABASE_URL) the
    entries curators keep in PostgreSQL."""
    root = resolve_knowledge_dir(args.knowledge, seed=True)
    if not _database_url():
        return StoryService(root)
    from bot.core.postgres import PostgresKnowledge

    return StoryService(root, PostgresKnowledge(_database("this"), root))


def _print_problems(error: KnowledgeError, out: TextIO = sys.stderr) -> None:
    for problem in error.problems:
        print(problem, file=out)


def _answer_lines(service: StoryService, lines: Iterable[str], args: argparse.Namespace) -> None:
    for line in lines:
        result = service.ask(line)
        if args.json:
            print(json.dumps(result_json(result, service.kb), ensure_ascii=False), flush=True)
        else:
            print(
                result_text(result, service.kb, verbose=args.verbose, decision=service.matcher.decision),
                flush=True,
            )


def cmd_ask(args: argparse.Namespace) -> int:
    service = _service(args)
    if args.question:
        _answer_lines(service, [" ".join(args.question)], args)
    else:
        _answer_lines(service, (line.rstrip("\n") for line in sys.stdin), args)
    return EXIT_OK


def cmd_console(args: argparse.Namespace) -> int:
    service = _service(args)
    kb = service.kb
    print(f"StoryBot {__version__}: {kb.story.headline}")
    print(f"{len(kb)} entries. Ask a question; an empty line or Ctrl-D quits.")
    with contextlib.suppress(ImportError):  # line editing and history where available
        import readline  # noqa: F401
    while True:
        try:
            line = input("? ")
        except (EOFError, KeyboardInterrupt):
            print()
            return EXIT_OK
        if not line.strip():
            return EXIT_OK
        print(
            result_text(
                service.ask(line), service.kb, verbose=args.verbose, decision=service.matcher.decision
            )
        )


def cmd_validate(args: argparse.Namespace) -> int:
    root = resolve_knowledge_dir(args.knowledge)
    try:
        kb = load_knowledge(root, lint=True)
    except KnowledgeError as error:
        _print_problems(error)
        errors = sum(p.severity == "error" for p in error.problems)
        print(f"{root}: {errors} problem(s) found; nothing was loaded.", file=sys.stderr)
        return EXIT_PROBLEMS
    warnings = [*kb.warnings, *synonym_clashes(kb.synonyms, str(root / SYNONYMS_FILE))]
    for warning in warnings:
        print(warning, file=sys.stderr)
    phrasings = sum(len(e.phrasings) for e in kb.entries)
    print(
        f"{root}: OK: {len(kb)} entries, {phrasings} phrasings, {len(kb.synonyms)} synonym "
        f"groups, every source found in the article (version {kb.story.version})"
        + (f"; {len(warnings)} warning(s)" if warnings else "")
    )
    if thin := thin_entries(kb):
        shown = ", ".join(f"{e.id} ({len(e.phrasings)})" for e in thin[:5])
        print(
            f"note: {len(thin)} of {len(kb)} entries have fewer than {FEW_PHRASINGS} phrasings "
            f"(question + alternates): {shown}{f' and {len(thin) - 5} more' if len(thin) > 5 else ''}. Readers' questions "
            "in other words are answered more often when an entry has more: add the ways people "
            "really ask (short, chatty, in other words). docs/curating.md says how much it pays."
        )
    return EXIT_OK


def cmd_coverage(args: argparse.Namespace) -> int:
    root = resolve_knowledge_dir(args.knowledge)
    try:
        kb = load_knowledge(root)
    except KnowledgeError as error:
        _print_problems(error)
        return EXIT_PROBLEMS
    uncited = uncited_sentences(kb)
    for sentence in uncited:
        print(f"- {sentence}")
    distinct = len(kb.story.sentences)
    print(f"{len(uncited)} article sentence(s) not cited by any entry ({distinct} sentences in all).")
    return EXIT_PROBLEMS if uncited and args.strict else EXIT_OK


def cmd_add(args: argparse.Namespace) -> int:
    service = _service(args)
    raw: dict[str, object] = {
        "id": args.id,
        "question": args.question,
        "answer": args.answer,
        "source": args.source[0] if len(args.source) == 1 else args.source,
    }
    if args.alternate:
        raw["alternates"] = args.alternate
    if args.type:
        raw["type"] = args.type
    if args.tag:
        raw["tags"] = args.tag
    entry = service.add(raw, author=args.by or os.environ.get("USER") or "cli")
    print(f"Added entry '{entry.id}' to {entry.file}.")
    if hint := wording.thin_entry_hint(entry, "add them with --alternate, or in the YAML"):
        print(hint)
    return EXIT_OK


def cmd_eval(args: argparse.Namespace) -> int:
    from bot.core.evaluation import evaluate, load_cases

    service = _service(args)
    report = evaluate(service.matcher, load_cases(args.file))
    print("\n".join(report.lines()))
    if args.verbose:
        for case, result in report.failures:
            want = ",".join(sorted(case.expect)) or "unknown"
            print(f"FAIL [{case.style}] {case.question!r}: want {want}")
            print("\n".join(explain(result, service.matcher.decision)))
    return EXIT_OK


def _database(what: str) -> Database:
    url = _database_url()
    if not url:
        raise KnowledgeError(
            f"{what} needs STORYBOT_DATABASE_URL (postgresql://user:password@host:port/database)"
        )
    from bot.core.postgres import Database

    return Database(url)


def cmd_export(args: argparse.Namespace) -> int:
    from bot.core.postgres import PostgresKnowledge
    from bot.core.store import export_entries

    db = _database("export")
    root = resolve_knowledge_dir(args.knowledge)
    target = Path(args.to) if args.to else root
    if target != root:
        import shutil

        shutil.copytree(root, target, dirs_exist_ok=True)
    kb = export_entries(target, PostgresKnowledge(db, root).files())
    print(f"Exported {len(kb)} entries to {target / 'entries'} (comments and order kept where they were).")
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace) -> int:
    from bot.core.postgres import PostgresKnowledge, migrate_sqlite

    db = _database("migrate")
    root = resolve_knowledge_dir(args.knowledge, seed=True)
    knowledge = PostgresKnowledge(db, root)  # seeds an empty database from the folder
    print(f"Knowledge: {len(knowledge.load())} entries in the database (revision {knowledge.revision()}).")
    sqlite_file = (
        Path(args.sqlite)
        if args.sqlite
        else Path(os.environ.get("STORYBOT_DATA") or "data") / "storybot.sqlite3"
    )
    if sqlite_file.exists():
        questions, votes = migrate_sqlite(sqlite_file, db)
        print(f"Copied from {sqlite_file}: {questions} unanswered question(s), {votes} vote(s).")
    else:
        print(f"No SQLite file at {sqlite_file}: no votes or unanswered questions to copy.")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from bot.adapter.runner import run_bot  # imports discord: only here

    return run_bot(knowledge=args.knowledge)


def cmd_healthcheck(args: argparse.Namespace) -> int:
    from bot.health import check_heartbeat

    ok, message = check_heartbeat()
    print(message)
    return EXIT_OK if ok else EXIT_PROBLEMS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="storybot",
        description="Answers questions about one news story, quoting the article.",
    )
    parser.add_argument("--version", action="version", version=f"storybot {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--knowledge",
        metavar="DIR",
        default=os.environ.get("STORYBOT_KNOWLEDGE") or None,
        help="knowledge folder (default: $STORYBOT_KNOWLEDGE, ./knowledge, or the bundled one)",
    )
    common.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show why: candidates, their probability and the features that decided",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    ask = sub.add_parser("ask", parents=[common], help="answer a question (or one per stdin line)")
    ask.add_argument("question", nargs="*", help="the question; omit to read stdin")
    ask.add_argument("--json", action="store_true", help="one JSON object per line")
    ask.set_defaults(func=cmd_ask)

    sub.add_parser("console", parents=[common], help="interactive prompt").set_defaults(func=cmd_console)
    sub.add_parser("validate", parents=[common], help="check the knowledge base").set_defaults(
        func=cmd_validate
    )

    coverage = sub.add_parser("coverage", parents=[common], help="article sentences no entry cites")
    coverage.add_argument("--strict", action="store_true", help="exit 1 if any are uncited")
    coverage.set_defaults(func=cmd_coverage)

    add = sub.add_parser("add", parents=[common], help="add an entry (validated, saved safely)")
    add.add_argument("--id", required=True, help="slug, e.g. who-paid-for-it")
    add.add_argument("--question", required=True)
    add.add_argument("--answer", required=True)
    add.add_argument(
        "--source", required=True, action="append", help="verbatim article sentence (repeatable)"
    )
    add.add_argument("--alternate", action="append", default=[], help="another phrasing (repeatable)")
    add.add_argument("--type", help="who, what, when, where, why, how, how-many, how-long, how-far, yes-no")
    add.add_argument("--tag", action="append", default=[])
    add.add_argument("--by", help="who is adding it (default: $USER)")
    add.set_defaults(func=cmd_add)

    ev = sub.add_parser("eval", parents=[common], help="accuracy on a YAML file of questions")
    ev.add_argument("file", type=Path)
    ev.set_defaults(func=cmd_eval)

    export = sub.add_parser(
        "export", parents=[common], help="write the database's entries back to the knowledge folder's YAML"
    )
    export.add_argument("--to", metavar="DIR", help="another folder (a copy of the knowledge folder)")
    export.set_defaults(func=cmd_export)
    migrate = sub.add_parser(
        "migrate", parents=[common], help="move an SQLite deployment's state into STORYBOT_DATABASE_URL"
    )
    migrate.add_argument("--sqlite", metavar="FILE", help="default: $STORYBOT_DATA/storybot.sqlite3")
    migrate.set_defaults(func=cmd_migrate)

    sub.add_parser("run", parents=[common], help="run the Discord bot (needs DISCORD_TOKEN)").set_defaults(
        func=cmd_run
    )
    sub.add_parser("healthcheck", help="exit 0 if the running bot is connected").set_defaults(
        func=cmd_healthcheck
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except KnowledgeError as error:
        _print_problems(error)
        return EXIT_PROBLEMS
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
