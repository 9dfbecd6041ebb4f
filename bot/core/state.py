"""Where StoryBot keeps what it learns, chosen by one setting: the knowledge folder and an
embedded SQLite file (one process), or PostgreSQL (several processes, hosts or containers)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from bot.core.feedback import FeedbackStore, QuestionGroup, Unanswered
from bot.core.service import StoryService


class Feedback(Protocol):
    """Votes and the unanswered list: `FeedbackStore` (SQLite) or `PostgresFeedback`."""

    def record_unanswered(self, question: str) -> None: ...
    def top_unanswered(self, limit: int = 10) -> list[Unanswered]: ...
    def unanswered_groups(self, limit: int = 10, scan: int = 500) -> list[QuestionGroup]: ...
    def group_of(self, row_id: int, scan: int = 500) -> QuestionGroup | None: ...
    def dismiss(self, row_ids: list[int]) -> None: ...
    def forget(self, row_ids: list[int]) -> None: ...
    def record_vote(self, answer_key: str, user_id: int, entry_id: str, helpful: bool) -> bool: ...
    def vote_counts(self, entry_id: str) -> tuple[int, int]: ...


def open_state(knowledge: Path, database_url: str, sqlite_file: Path) -> tuple[StoryService, Feedback]:
    """The knowledge service and the feedback store for one configuration."""
    if not database_url:
        return StoryService(knowledge), FeedbackStore(sqlite_file)
    from bot.core.postgres import Database, PostgresFeedback, PostgresKnowledge

    db = Database(database_url)
    return StoryService(knowledge, PostgresKnowledge(db, knowledge)), PostgresFeedback(db)
