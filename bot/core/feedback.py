"""Unanswered questions and helpful/not-helpful votes, in an embedded SQLite file.

WAL mode and a busy timeout let two bot processes and the CLI write at once;
every write is one short transaction, so a crash loses at most that one write.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from rapidfuzz import fuzz

from bot.core.knowledge import phrasing_key

BUSY_TIMEOUT_MS = 5000
MAX_STORED_QUESTION_CHARS = 300

# Versioned schema: MIGRATIONS[n] takes a database from PRAGMA user_version n to n + 1.
MIGRATIONS = (
    """
CREATE TABLE IF NOT EXISTS unanswered (
    key TEXT PRIMARY KEY,
    question TEXT NOT NULL,
    count INTEGER NOT NULL DEFAULT 1,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS votes (
    answer_key TEXT NOT NULL,
    user_id INTEGER NOT NULL,
    entry_id TEXT NOT NULL,
    helpful INTEGER NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (answer_key, user_id)
);
""",
    # A curator can dismiss a question that needs no entry; asked again, it stays dismissed.
    "ALTER TABLE unanswered ADD COLUMN dismissed INTEGER NOT NULL DEFAULT 0;",
)
SIMILAR_QUESTION = 88
"""Unanswered questions this alike (rapidfuzz token_sort_ratio of their words, 0-100) are one group."""


@dataclass(frozen=True)
class Unanswered:
    """A question readers asked that no entry answered, and how often."""

    id: int
    key: str
    question: str
    count: int


@dataclass(frozen=True)
class QuestionGroup:
    """Unanswered questions that ask the same thing in near enough the same words."""

    rows: tuple[Unanswered, ...]

    @property
    def id(self) -> int:
        """The most asked phrasing's id: what a curator's choice refers to."""
        return self.rows[0].id

    @property
    def question(self) -> str:
        """The most asked phrasing."""
        return self.rows[0].question

    @property
    def count(self) -> int:
        """How often any phrasing of it was asked."""
        return sum(r.count for r in self.rows)

    @property
    def ids(self) -> list[int]:
        return [r.id for r in self.rows]


def group_questions(rows: Iterable[Unanswered], similar: float = SIMILAR_QUESTION) -> list[QuestionGroup]:
    """Group near-identical questions (typos, word order, a word more); most asked first."""
    groups: list[list[Unanswered]] = []
    for row in sorted(rows, key=lambda r: -r.count):
        home = next((g for g in groups if fuzz.token_sort_ratio(g[0].key, row.key) >= similar), None)
        if home is None:
            groups.append([row])
        else:
            home.append(row)
    out = [QuestionGroup(tuple(g)) for g in groups]
    return sorted(out, key=lambda g: -g.count)


class FeedbackStore:
    """Small synchronous store; callers in async code run it in a thread."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
        self._migrate()

    def _migrate(self) -> None:
        """Bring the file's schema up to date, one versioned step at a time (each step and its
        version bump commit together, so a crash leaves the old or the new schema)."""
        with closing(sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)) as db:
            db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            db.execute("BEGIN IMMEDIATE")  # one migrating process at a time
            try:
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version == 0 and _has_table(db, "unanswered"):
                    version = 1  # a file from before versioning holds step 1's tables
                for step in range(version, len(MIGRATIONS)):
                    for statement in filter(str.strip, MIGRATIONS[step].split(";")):
                        db.execute(statement)
                db.execute(f"PRAGMA user_version={len(MIGRATIONS)}")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000)) as db:
            db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            with db:  # one transaction: commit, or roll back on error
                yield db

    def record_unanswered(self, question: str) -> None:
        """Count one more asking of a question nobody answered."""
        text = question[:MAX_STORED_QUESTION_CHARS]
        key = phrasing_key(text)
        if not key:
            return
        now = time.time()
        with self._connect() as db:
            db.execute(
                "INSERT INTO unanswered (key, question, count, first_seen, last_seen) "
                "VALUES (?, ?, 1, ?, ?) ON CONFLICT(key) DO UPDATE SET "
                "count = count + 1, last_seen = excluded.last_seen",
                (key, text, now, now),
            )

    def top_unanswered(self, limit: int = 10) -> list[Unanswered]:
        """The most often asked unanswered questions (not the dismissed ones)."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT rowid, key, question, count FROM unanswered WHERE dismissed = 0 "
                "ORDER BY count DESC, last_seen DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [Unanswered(*row) for row in rows]

    def unanswered_groups(self, limit: int = 10, scan: int = 500) -> list[QuestionGroup]:
        """The most asked unanswered questions, near-identical phrasings grouped together."""
        return group_questions(self.top_unanswered(scan))[:limit]

    def group_of(self, row_id: int, scan: int = 500) -> QuestionGroup | None:
        """The group a question is in now (None: it was dealt with meanwhile)."""
        return next((g for g in group_questions(self.top_unanswered(scan)) if row_id in g.ids), None)

    def dismiss(self, row_ids: Sequence[int]) -> None:
        """Stop listing these questions (a curator decided they need no entry)."""
        with self._connect() as db:
            db.executemany("UPDATE unanswered SET dismissed = 1 WHERE rowid = ?", [(i,) for i in row_ids])

    def forget(self, row_ids: Sequence[int]) -> None:
        """Drop questions a curator has answered."""
        with self._connect() as db:
            db.executemany("DELETE FROM unanswered WHERE rowid = ?", [(i,) for i in row_ids])

    def record_vote(self, answer_key: str, user_id: int, entry_id: str, helpful: bool) -> bool:
        """Record a user's vote on one answer; return False if it repeats their vote."""
        with self._connect() as db:
            row = db.execute(
                "SELECT helpful FROM votes WHERE answer_key = ? AND user_id = ?",
                (answer_key, user_id),
            ).fetchone()
            if row is not None and bool(row[0]) == helpful:
                return False
            db.execute(
                "INSERT INTO votes (answer_key, user_id, entry_id, helpful, at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(answer_key, user_id) DO UPDATE SET "
                "helpful = excluded.helpful, at = excluded.at",
                (answer_key, user_id, entry_id, int(helpful), time.time()),
            )
        return True

    def vote_counts(self, entry_id: str) -> tuple[int, int]:
        """(helpful, not helpful) votes for an entry."""
        with self._connect() as db:
            row = db.execute(
                "SELECT COALESCE(SUM(helpful), 0), COALESCE(SUM(1 - helpful), 0) "
                "FROM votes WHERE entry_id = ?",
                (entry_id,),
            ).fetchone()
        return int(row[0]), int(row[1])


def _has_table(db: sqlite3.Connection, table: str) -> bool:
    return (
        db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()
        is not None
    )
