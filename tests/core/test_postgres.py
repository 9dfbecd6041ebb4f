"""Shared state in a real PostgreSQL server (tests/pgserver.py): the same behaviour as SQLite for
votes and the unanswered list, and the curators' entries as revisions every process serves."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from bot.core.errors import EditConflict, KnowledgeError
from bot.core.feedback import FeedbackStore
from bot.core.knowledge import load_knowledge
from bot.core.postgres import ChangeListener, Database, PostgresFeedback, PostgresKnowledge, migrate_sqlite
from bot.core.service import StoryService
from bot.core.state import Feedback

ROOT = Path(__file__).resolve().parents[2]
SOURCE = "The group of eight people took a 32-hour train ride, followed by two hours on a bus."
NEW = {"id": "bus-after-train", "question": "What did they ride after the train?",
       "answer": "A bus, for two hours.", "source": SOURCE}  # fmt: skip


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.close()


@pytest.fixture(params=["sqlite", "postgres"])
def feedback(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Feedback]:
    if request.param == "sqlite":
        yield FeedbackStore(tmp_path / "storybot.sqlite3")
        return
    database = Database(request.getfixturevalue("database_url"))
    yield PostgresFeedback(database)
    database.close()


def test_both_databases_keep_votes_and_the_unanswered_list_alike(feedback: Feedback) -> None:
    for question in ["What colour was the trolley?", "what color was the trolley", "What colour was the trolley",
                     "who paid for the flight", "who paid for the flight", "who paid for the flight"]:  # fmt: skip
        feedback.record_unanswered(question)
    feedback.record_unanswered("   ")  # nothing to keep
    groups = feedback.unanswered_groups()
    assert [(g.count, len(g.rows)) for g in groups] == [(3, 2), (3, 1)] or [
        (g.count, len(g.rows)) for g in groups
    ] == [(3, 1), (3, 2)]
    colour = next(g for g in groups if "colo" in g.question)
    feedback.dismiss(colour.ids)
    feedback.record_unanswered("what color was the trolley")  # asked again: stays dismissed
    assert [g.question for g in feedback.unanswered_groups()] == ["who paid for the flight"]
    assert feedback.group_of(colour.id) is None
    paid = feedback.unanswered_groups()[0]
    feedback.forget(paid.ids)
    assert feedback.unanswered_groups() == []
    assert feedback.record_vote("m1", 1, "trolley-distance", True) is True
    assert feedback.record_vote("m1", 1, "trolley-distance", True) is False  # the same vote again
    assert feedback.record_vote("m1", 1, "trolley-distance", False) is True  # changed
    assert feedback.record_vote("m1", 2, "trolley-distance", True) is True
    assert feedback.vote_counts("trolley-distance") == (1, 1)
    assert feedback.vote_counts("nothing") == (0, 0)


def test_the_schema_is_migrated_once_and_versioned(database_url: str) -> None:
    first, second = Database(database_url), Database(database_url)  # two processes starting at once
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(2,)]
    first.close()
    second.close()


def test_the_folder_seeds_an_empty_database_once(db: Database, kb_dir: Path) -> None:
    knowledge = PostgresKnowledge(db, kb_dir)
    assert [e.id for e in knowledge.load().entries] == [e.id for e in load_knowledge(kb_dir).entries]
    PostgresKnowledge(db, kb_dir)  # a second process: no second seed
    with psycopg.connect(db.url) as conn:
        assert conn.execute("SELECT COUNT(*) FROM revisions WHERE action = 'seed'").fetchone() == (1,)


def test_a_change_on_one_process_is_served_by_the_other(db: Database, kb_dir: Path, tmp_path: Path) -> None:
    other_host = tmp_path / "other-host"  # another host: its own copy of the folder (the image's)
    other_host.mkdir()
    import shutil

    shutil.copytree(kb_dir, other_host / "knowledge")
    one = StoryService(kb_dir, PostgresKnowledge(db, kb_dir))
    two = StoryService(other_host / "knowledge", PostgresKnowledge(db, other_host / "knowledge"))
    one.add(NEW, author="curator")
    assert two.reload_if_changed() is not None  # the revision moved
    assert two.ask("What did they ride after the train?").best.entry.id == "bus-after-train"  # type: ignore[union-attr]
    assert two.reload_if_changed() is None  # and nothing more until the next change
    assert load_knowledge(kb_dir).get("bus-after-train") is None  # the files are not the store now


def test_a_listener_hears_each_change_made_by_another_process(
    db: Database, kb_dir: Path, database_url: str
) -> None:
    """Every change NOTIFYs on commit; a ChangeListener hears it (a bot reloads at once instead of
    at its next poll). Nothing is heard for a change that was refused, and `stop` ends it."""
    import threading

    heard = threading.Semaphore(0)
    listener = ChangeListener(database_url, heard.release)
    listener.start()
    try:
        assert listener.listening.wait(10)
        other = StoryService(kb_dir, PostgresKnowledge(db, kb_dir))  # another process's service
        assert not heard.acquire(timeout=0.3)  # seeding an empty base is not a change to serve
        other.add(NEW, author="curator")
        assert heard.acquire(timeout=5)
        with pytest.raises(KnowledgeError):
            other.add(NEW, author="curator")  # the id exists: refused, nothing committed
        assert not heard.acquire(timeout=1)
        other.remove("bus-after-train")
        assert heard.acquire(timeout=5)
    finally:
        listener.stop()
    assert not listener.listening.is_set()


def test_an_edit_over_a_newer_revision_is_refused(db: Database, kb_dir: Path) -> None:
    one = StoryService(kb_dir, PostgresKnowledge(db, kb_dir))
    two = StoryService(kb_dir, PostgresKnowledge(db, kb_dir))
    opened = one.kb.by_id["trolley-distance"]
    two.add_alternate("trolley-distance", "how long was the push")
    with pytest.raises(EditConflict) as caught:
        one.update("trolley-distance", {"answer": "About a kilometre."}, expected=opened)
    assert set(caught.value.changed) == {"alternates"}
    with pytest.raises(EditConflict):
        one.remove("trolley-distance", version=opened.version)
    assert (
        "how long was the push" in PostgresKnowledge(db, kb_dir).load().by_id["trolley-distance"].alternates
    )


def test_a_broken_revision_never_stops_a_process_serving(db: Database, kb_dir: Path) -> None:
    service = StoryService(kb_dir, PostgresKnowledge(db, kb_dir))
    before = len(service.kb)
    with psycopg.connect(db.url) as conn:  # someone writes a bad row by hand
        conn.execute(
            "INSERT INTO entries (id, position, file, body, version) VALUES ('bad', 9999, 'entries/x.yaml', %s, 'x')",
            (json.dumps({"id": "bad", "question": "Q?", "answer": "A.", "source": "Not in the article."}),),
        )
        conn.execute(
            "INSERT INTO revisions (author, action, entry_id) VALUES ('someone', 'hand edit', 'bad')"
        )
    with pytest.raises(KnowledgeError) as caught:
        service.reload_if_changed()
    assert "database:entries/x.yaml" in str(caught.value)
    assert len(service.kb) == before and service.ask("How far did they push the trolley?").best is not None
    with pytest.raises(KnowledgeError):  # and no change is saved on top of it
        service.add(NEW)


def test_export_writes_the_database_back_to_yaml_keeping_comments(db: Database, kb_dir: Path) -> None:
    service = StoryService(kb_dir, PostgresKnowledge(db, kb_dir))
    path = kb_dir / "entries" / "article.yaml"
    comments = [
        line for line in path.read_text(encoding="utf-8").splitlines() if line.lstrip().startswith("#")
    ]
    service.add(NEW, author="curator")
    service.add_alternate("trolley-distance", "how long was the push")
    service.remove("bus-ride-length")
    env = {"STORYBOT_DATABASE_URL": db.url, "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "bot", "export", "--knowledge", str(kb_dir)], cwd=ROOT,
                          env=env, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    exported = load_knowledge(kb_dir)
    assert [e.id for e in exported.entries] == [e.id for e in service.kb.entries]
    assert exported.by_id["bus-after-train"].answer == NEW["answer"]
    assert "how long was the push" in exported.by_id["trolley-distance"].alternates
    assert exported.get("bus-ride-length") is None
    after = [line for line in path.read_text(encoding="utf-8").splitlines() if line.lstrip().startswith("#")]
    assert [c for c in comments if c in after] == [c for c in comments if "bus-ride-length" not in c]


def test_migrate_moves_an_sqlite_deployment(db: Database, kb_dir: Path, tmp_path: Path) -> None:
    lite = FeedbackStore(tmp_path / "storybot.sqlite3")
    lite.record_unanswered("who paid for the flight")
    lite.record_unanswered("who paid for the flight")
    lite.record_vote("m1", 7, "trolley-distance", True)
    assert migrate_sqlite(tmp_path / "storybot.sqlite3", db) == (1, 1)
    assert migrate_sqlite(tmp_path / "storybot.sqlite3", db) == (0, 0)  # run twice: nothing doubled
    shared = PostgresFeedback(db)
    assert [(g.question, g.count) for g in shared.unanswered_groups()] == [("who paid for the flight", 2)]
    assert shared.vote_counts("trolley-distance") == (1, 0)
    with sqlite3.connect(tmp_path / "storybot.sqlite3") as conn:  # the SQLite file is left as it was
        assert conn.execute("SELECT COUNT(*) FROM votes").fetchone() == (1,)


# ------------------------------------------------------------------ one service, either backend


@pytest.fixture(params=["folder", "postgres"])
def service(request: pytest.FixtureRequest, kb_dir: Path) -> Iterator[StoryService]:
    """The knowledge service on its files, or on PostgreSQL: the same calls, the same results."""
    if request.param == "folder":
        yield StoryService(kb_dir)
        return
    database = Database(request.getfixturevalue("database_url"))
    yield StoryService(kb_dir, PostgresKnowledge(database, kb_dir))
    database.close()


def test_either_backend_adds_edits_and_removes_alike(service: StoryService) -> None:
    entry = service.add(NEW, author="curator")
    assert entry.added_by == "curator" and service.kb.get(NEW["id"]) == entry
    with pytest.raises(KnowledgeError) as caught:  # the same phrasing twice
        service.add({**NEW, "id": "another-id"})
    assert "also in entry 'bus-after-train'" in str(caught.value)
    opened = service.kb.by_id["trolley-distance"]
    service.add_alternate("trolley-distance", "how long was the push")
    with pytest.raises(EditConflict):
        service.update("trolley-distance", {"answer": "About a kilometre."}, expected=opened)
    now = service.kb.by_id["trolley-distance"]
    saved = service.update("trolley-distance", {"answer": "About a kilometre."}, expected=now)
    assert saved.answer == "About a kilometre." and "how long was the push" in saved.alternates
    with pytest.raises(KnowledgeError) as caught:
        service.update("trolley-distance", {"source": "Sorokin flew a helicopter."})
    assert "Closest article sentence" in str(caught.value)
    service.remove(NEW["id"])
    assert service.kb.get(NEW["id"]) is None
    with pytest.raises(KnowledgeError):
        service.remove(NEW["id"])
    fresh = StoryService(service.root, service.database)  # another process, the same store
    assert fresh.kb.by_id["trolley-distance"].answer == "About a kilometre."
