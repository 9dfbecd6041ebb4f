"""Saving: validated, locked, atomic, comments kept, nothing lost between processes."""

from __future__ import annotations

import multiprocessing
import os
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core import store
from bot.core.errors import EditConflict, FilesBroken, KnowledgeError, StorageError
from bot.core.knowledge import load_knowledge
from bot.core.service import StoryService

SOURCE = "The group of eight people took a 32-hour train ride, followed by two hours on a bus."


def new_entry(n: int) -> dict[str, object]:
    return {
        "id": f"test-entry-{n}",
        "question": f"Test question number {n} about the bus?",
        "answer": "They rode a bus for two hours after the train.",
        "source": SOURCE,
    }


def test_add_is_saved_and_answerable(kb_dir: Path) -> None:
    service = StoryService(kb_dir)
    entry = service.add(new_entry(1), author="tester")
    assert entry.added_by == "tester" and entry.added_at
    assert service.ask("Test question number 1 about the bus?").best.entry.id == "test-entry-1"  # type: ignore[union-attr]
    assert load_knowledge(kb_dir).get("test-entry-1") is not None


def test_hand_written_comments_and_order_survive_an_edit(kb_dir: Path) -> None:
    path = kb_dir / "entries" / "article.yaml"
    before = path.read_text(encoding="utf-8")
    store.add_alternate(kb_dir, "trolley-distance", "how many metres was the trolley pushed")
    after = path.read_text(encoding="utf-8")
    added = [line for line in after.splitlines() if line not in before.splitlines()]
    assert added == ["    - how many metres was the trolley pushed"]
    assert [line for line in before.splitlines() if line.lstrip().startswith("#")] == [
        line for line in after.splitlines() if line.lstrip().startswith("#")
    ]


def test_invalid_add_writes_nothing(kb_dir: Path) -> None:
    snapshot = {p: p.read_bytes() for p in kb_dir.rglob("*.yaml")}
    with pytest.raises(KnowledgeError) as caught:
        store.add_entry(kb_dir, {**new_entry(2), "source": "Sorokin flew a helicopter."})
    assert "Closest article sentence" in str(caught.value)
    assert {p: p.read_bytes() for p in kb_dir.rglob("*.yaml")} == snapshot
    assert not (kb_dir / "entries" / "curated.yaml").exists()


def test_remove_and_update(kb_dir: Path) -> None:
    store.add_entry(kb_dir, new_entry(3))
    kb, entry = store.update_entry(kb_dir, "test-entry-3", {"answer": "Two hours by bus."})
    assert entry.answer == "Two hours by bus."
    kb = store.remove_entry(kb_dir, "test-entry-3")
    assert kb.get("test-entry-3") is None


def test_a_slow_swap_of_an_older_save_never_replaces_a_newer_one(
    kb_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two curators' saves in one process: the first one's matcher takes longer to build than
    the second's, so its swap comes last. The base served must still be the newer one (the
    entry stays deleted), not the first save's."""
    import threading

    from bot.core import service as service_module

    service = StoryService(kb_dir)
    service.add(new_entry(7))
    gate = threading.Event()
    real = service_module.Matcher

    def slow_for_the_first_save(kb, **kwargs):  # type: ignore[no-untyped-def]
        entry = kb.get("test-entry-7")
        if entry is not None and "a slow new phrasing" in entry.alternates:
            assert gate.wait(10)
        return real(kb, **kwargs)

    monkeypatch.setattr(service_module, "Matcher", slow_for_the_first_save)
    first = threading.Thread(target=service.add_alternate, args=("test-entry-7", "a slow new phrasing"))
    first.start()
    for _ in range(200):  # until the first save is on disk (its swap is now held at the gate)
        if "a slow new phrasing" in (load_knowledge(kb_dir).by_id["test-entry-7"].alternates):
            break
        threading.Event().wait(0.05)
    service.remove("test-entry-7")
    gate.set()
    first.join(10)
    assert service.kb.get("test-entry-7") is None
    assert load_knowledge(kb_dir).get("test-entry-7") is None


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_folder_fails_clearly(kb_dir: Path) -> None:
    _read_only_case(kb_dir)


def test_read_only_folder_fails_clearly_even_as_root(kb_dir: Path, tmp_path: Path) -> None:
    # As root, permissions don't stop writes; a file where the folder should be does.
    entries = kb_dir / "entries"
    blocker = entries / "curated.yaml"
    blocker.mkdir()
    service = StoryService(kb_dir)
    before = len(service.kb)
    with pytest.raises(StorageError) as caught:
        service.add(new_entry(4))
    assert "Nothing was changed" in str(caught.value) or "could not save" in str(caught.value)
    assert len(service.kb) == before


def _read_only_case(kb_dir: Path) -> None:
    service = StoryService(kb_dir)
    entries = kb_dir / "entries"
    mode = entries.stat().st_mode
    entries.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(StorageError) as caught:
            service.add(new_entry(5))
        assert "read-only" in str(caught.value) or "permission" in str(caught.value)
    finally:
        entries.chmod(mode)
    assert service.kb.get("test-entry-5") is None


def _add_in_process(args: tuple[str, int]) -> str:
    folder, n = args
    store.add_entry(folder, new_entry(n), author=f"process-{os.getpid()}")
    return f"test-entry-{n}"


def test_concurrent_writers_lose_nothing(kb_dir: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        added = pool.map(_add_in_process, [(str(kb_dir), n) for n in range(24)])
    kb = load_knowledge(kb_dir)
    assert all(kb.get(entry_id) is not None for entry_id in added)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    question=st.text(
        alphabet=st.characters(categories=["L", "N", "Zs", "P"]), min_size=5, max_size=120
    ).filter(lambda s: len(s.strip()) >= 5 and any(c.isalpha() for c in s)),
    alternate=st.text(alphabet=st.characters(categories=["L", "N", "Zs"]), min_size=3, max_size=60).filter(
        lambda s: len(s.strip()) >= 3 and any(c.isalpha() for c in s)
    ),
)
def test_save_then_load_round_trips(kb_dir: Path, question: str, alternate: str) -> None:
    raw = {**new_entry(99), "question": question, "alternates": [alternate]}
    try:
        kb, entry = store.add_entry(kb_dir, raw)
    except KnowledgeError:
        return  # e.g. the text collides with an existing phrasing: refused, nothing written
    try:
        again = load_knowledge(kb_dir).get(entry.id)
        assert again == entry
        others = {e.id for e in kb.entries} - {entry.id}
        assert others <= {e.id for e in load_knowledge(kb_dir).entries}
    finally:
        store.remove_entry(kb_dir, entry.id)


def test_an_edit_started_from_an_old_version_is_refused_with_what_changed(kb_dir: Path) -> None:
    service = StoryService(kb_dir)
    opened = service.kb.by_id["trolley-distance"]  # curator A opens the form
    service.add_alternate("trolley-distance", "how long was the push")  # curator B adds an alias
    with pytest.raises(EditConflict) as caught:
        service.update("trolley-distance", {"answer": "About a kilometre."}, expected=opened)
    assert set(caught.value.changed) == {"alternates"}
    now = load_knowledge(kb_dir).by_id["trolley-distance"]
    assert "how long was the push" in now.alternates and now.answer == opened.answer
    # started from the current version, the same edit is saved
    saved = service.update("trolley-distance", {"answer": "About a kilometre."}, expected=now)
    assert saved.answer == "About a kilometre." and "how long was the push" in saved.alternates


def test_a_delete_confirmed_for_an_old_version_is_refused(kb_dir: Path) -> None:
    service = StoryService(kb_dir)
    version = service.kb.by_id["trolley-distance"].version
    service.add_alternate("trolley-distance", "how long was the push")
    with pytest.raises(EditConflict):
        service.remove("trolley-distance", version=version)
    assert load_knowledge(kb_dir).get("trolley-distance") is not None


def test_broken_files_are_told_apart_from_a_wrong_entry(kb_dir: Path) -> None:
    service = StoryService(kb_dir)
    (kb_dir / "entries" / "broken.yaml").write_text("- id: x\n  question: [unclosed\n", encoding="utf-8")
    with pytest.raises(FilesBroken) as broken:  # a good entry: the files are what is wrong
        service.add(new_entry(3))
    assert "broken.yaml" in str(broken.value)
    with pytest.raises(KnowledgeError) as wrong:  # a wrong entry: its own fault comes first
        service.add({**new_entry(4), "source": "Sorokin flew a helicopter."})
    assert not isinstance(wrong.value, FilesBroken) and "Closest article sentence" in str(wrong.value)
    with pytest.raises(FilesBroken):
        service.add_alternate("trolley-distance", "how long was the push")


@pytest.mark.parametrize(
    "field, text",
    [
        ("answer", "See [bbc.co.uk/news](https://evil.example/phish) for more."),
        ("answer", "Join discord.gg/freenitro now."),
        ("answer", "More at www.example.com."),
        ("question", "What does http://example.com say?"),
        ("alternates", ["what does https://x.example say"]),
    ],
)
def test_links_in_a_curators_text_are_refused_with_the_reason(kb_dir: Path, field: str, text: object) -> None:
    with pytest.raises(KnowledgeError) as caught:
        store.add_entry(kb_dir, {**new_entry(5), field: text})
    assert f"'{field}' contains a link" in str(caught.value) and "in words" in str(caught.value)


def test_unanswered_questions_group_dismiss_and_migrate(tmp_path: Path) -> None:
    import sqlite3

    from bot.core.feedback import FeedbackStore

    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:  # a file written before the schema had versions
        db.executescript(
            "CREATE TABLE unanswered (key TEXT PRIMARY KEY, question TEXT NOT NULL, count INTEGER NOT NULL "
            "DEFAULT 1, first_seen REAL NOT NULL, last_seen REAL NOT NULL);"
            "INSERT INTO unanswered VALUES ('who paid', 'who paid', 4, 0, 0);"
        )
    feedback = FeedbackStore(path)
    for question in ["What colour was the trolley?", "what color was the trolley", "What colour was the trolley",
                     "what was the trolley's colour", "Who paid for the flight?"]:  # fmt: skip
        feedback.record_unanswered(question)
    groups = feedback.unanswered_groups()
    assert [g.count for g in groups] == [4, 4, 1]  # the old row is kept; colour/color are one group
    assert groups[1].question.casefold().startswith("what colo") and len(groups[1].rows) == 3
    feedback.dismiss(groups[0].ids)
    feedback.record_unanswered("who paid")  # asked again: stays dismissed
    assert feedback.unanswered_groups()[0].question == groups[1].question
    assert feedback.group_of(groups[1].rows[-1].id) == feedback.unanswered_groups()[0]
    feedback.forget(groups[1].ids)
    assert feedback.group_of(groups[1].id) is None
    assert (
        FeedbackStore(path).unanswered_groups() == feedback.unanswered_groups()
    )  # re-opening migrates nothing
