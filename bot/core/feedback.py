"""Unanswered questions and helpful/not-helpful votes, in an embedded SQLite file.

WAL mode and a busy timeout let two bot processes and the CLI write at once;
every write is one short transaction, so a crash loses at most that one write.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from bot.core.knowledge import phrasing_key

BUSY_TIMEOUT_MS = 5000
MAX_STORED_QUESTION_CHARS = 300

_SCHEMA = """
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
"""


@dataclass(frozen=True)
class Unanswered:
    """A question readers asked that no entry answered, and how often."""

    id: int
    key: str
    question: str
    count: int


class FeedbackStore:
    """Small synchronous store; callers in async code run it in a thread."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

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
        """The most often asked unanswered questions."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT rowid, key, question, count FROM unanswered "
                "ORDER BY count DESC, last_seen DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [Unanswered(*row) for row in rows]

    def get_unanswered(self, row_id: int) -> Unanswered | None:
        """One unanswered question by its id."""
        with self._connect() as db:
            row = db.execute(
                "SELECT rowid, key, question, count FROM unanswered WHERE rowid = ?", (row_id,)
            ).fetchone()
        return Unanswered(*row) if row else None

    def forget_unanswered(self, row_id: int) -> None:
        """Drop a question once a curator has dealt with it."""
        with self._connect() as db:
            db.execute("DELETE FROM unanswered WHERE rowid = ?", (row_id,))

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
