"""Nothing lost, nothing half-written: SIGKILLed writers, 50 curators at once, a full disk, a
read-only folder, SQLite under kills and concurrent writers, and YAML that tries to run code."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import multiprocessing
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.core import store
from bot.core.errors import KnowledgeError
from bot.core.feedback import FeedbackStore
from bot.core.knowledge import load_knowledge
from tests.e2e.fake_discord import FakeDiscord

from .conftest import CURATORS, PYTHON, ROOT, Running, T, settings_for, start_fast_bot, tree_digest, until

SOURCE = "The group of eight people took a 32-hour train ride, followed by two hours on a bus."
KILLS = 30
CURATED = Path("entries") / "curated.yaml"
FORK = multiprocessing.get_context("fork")


def entry(tag: str, n: int) -> dict[str, object]:
    return {
        "id": f"{tag}-{n}",
        "question": f"Reliability check {tag} number {n} about the bus ride?",
        "answer": f"They rode a bus for two hours after the train (note {n}).",
        "source": SOURCE,
    }


# ------------------------------------------------------------------ SIGKILL while writing YAML


def _writer(root: str, run: int, progress: str) -> None:
    """Add and update entries forever, logging each step (start/done) with unbuffered writes."""
    fd = os.open(progress, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    for n in range(10_000):
        os.write(fd, f"S {n}\n".encode())
        if n % 2 == 0:  # each run writes its own file, so every run's writes cost the same
            store.add_entry(root, entry(f"kill{run}", n), file=f"kill{run}.yaml")
        else:
            store.update_entry(root, f"kill{run}-{n - 1}", {"answer": f"Updated answer {n} about the bus."})
        os.write(fd, f"D {n}\n".encode())


def _expected(run: int, done: int) -> tuple[set[str], dict[str, str]]:
    """Ids and answers of this run's entries once steps 0..done-1 are complete."""
    ids, answers = set(), {}
    for n in range(done):
        if n % 2 == 0:
            ids.add(f"kill{run}-{n}")
            answers[f"kill{run}-{n}"] = str(entry(f"kill{run}", n)["answer"])
        else:
            answers[f"kill{run}-{n - 1}"] = f"Updated answer {n} about the bus."
    return ids, answers


def test_sigkill_while_writing_leaves_old_or_new_file(kb_dir: Path, tmp_path: Path) -> None:
    rng = random.Random(1234)
    states_seen = {"old": 0, "new": 0}
    for run in range(KILLS):
        progress = tmp_path / f"progress-{run}"
        progress.touch()
        before = {p: p.read_bytes() for p in kb_dir.rglob("*.yaml")}
        proc = FORK.Process(target=_writer, args=(str(kb_dir), run, str(progress)))
        proc.start()
        time.sleep(rng.uniform(0.01, 0.2))
        os.kill(proc.pid or 0, signal.SIGKILL)
        proc.join(T)
        assert proc.exitcode == -signal.SIGKILL
        steps = progress.read_text().split()
        done = sum(1 for s in steps if s == "D")
        started = sum(1 for s in steps if s == "S")
        # Every file parses (with the safe loader) and the whole knowledge base validates.
        kb = load_knowledge(kb_dir)
        mine = {e.id: e.answer for e in kb.entries if e.id.startswith(f"kill{run}-")}
        # Either the old content (only completed steps) or the new (the step in flight too).
        candidates = [_expected(run, done)]
        if started > done:
            candidates.append(_expected(run, done + 1))
        matches = [c for c in candidates if set(mine) == c[0] and mine == c[1]]
        assert matches, f"run {run}: on disk {mine}, expected one of {candidates}"
        states_seen["new" if matches[0] is candidates[-1] and started > done else "old"] += 1
        # Files this run did not touch are byte for byte the same.
        for path, data in before.items():
            if path.name != f"kill{run}.yaml":
                assert path.read_bytes() == data
    # Kills landed both between writes and in the middle of one.
    assert sum(states_seen.values()) == KILLS


# ------------------------------------------------------------------ 50 curators at once


def _cli_add(knowledge: Path, n: int) -> subprocess.Popen[str]:
    e = entry("cli", n)
    return subprocess.Popen(
        [PYTHON, "-m", "bot", "add", "--knowledge", str(knowledge), "--id", str(e["id"]),
         "--question", str(e["question"]), "--answer", str(e["answer"]), "--source", SOURCE],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


async def test_fifty_curators_at_once_lose_nothing(
    fake: FakeDiscord, settings: object, knowledge: Path
) -> None:
    fake.interaction_deadline = 3.0  # as on Discord: answer (or defer) within 3 s
    running = await start_fast_bot(settings)  # type: ignore[arg-type]
    try:
        bot = running.bot
        # 25 through Discord (/kb add -> modal -> submit), all forms open before any is sent
        opened = []
        for n in range(25):
            iid = await fake.slash_command("kb add", roles=CURATORS, user=fake.make_user(9_100 + n))
            opened.append(await fake.wait_for_reply(iid, T))
        # 5 from the CLI in other processes, 20 from threads of the bot process, all at once
        clis = [_cli_add(knowledge, n) for n in range(5)]
        errors: list[BaseException] = []

        def thread_add(n: int) -> None:
            try:
                bot.service.add(entry("thread", n), author="thread")
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=thread_add, args=(n,)) for n in range(20)]
        for t in threads:
            t.start()
        submits = []
        for n, modal in enumerate(opened):
            e = entry("discord", n)
            fields = {"question": e["question"], "answer": e["answer"], "source": SOURCE, "id": e["id"]}
            submits.append(
                await fake.modal_submit(
                    modal.json["data"]["custom_id"], fields, roles=CURATORS, user=fake.make_user(9_100 + n)
                )
            )
        for s in submits:  # each curator hears back: at once, or "thinking…" then a followup
            await until(lambda s=s: _told(fake, s), 60, f"a reply to {s}")
        replies = [_told(fake, s) for s in submits]
        await asyncio.to_thread(lambda: [t.join(60) for t in threads])
        outs = [await asyncio.to_thread(p.communicate, None, 60) for p in clis]
        assert not errors, errors
        assert all(p.returncode == 0 for p in clis), outs
        assert all(text.startswith("Added `") for text in replies), replies
        want = {f"discord-{n}" for n in range(25)} | {f"cli-{n}" for n in range(5)}
        want |= {f"thread-{n}" for n in range(20)}
        assert len(want) == 50
        on_disk = load_knowledge(knowledge)
        assert want <= set(on_disk.by_id)
        # The bot serves all 50 too (the CLI's additions arrive through the file watcher).
        await until(lambda: want <= set(bot.service.kb.by_id), T, "the bot to serve all 50")
    finally:
        await running.stop()


def _told(fake: FakeDiscord, iid: int) -> str:
    """The text a curator was finally shown for interaction `iid` ("" while still waiting)."""
    for r in fake.interaction_requests(iid):
        if r.status >= 300 or not isinstance(r.json, dict):
            continue
        body = r.json.get("data", r.json) if "/callback" in r.path else r.json
        if body.get("content"):
            return str(body["content"])
    return ""


# ------------------------------------------------------------------ full disk, read-only folder


def _mount(*args: str) -> bool:
    try:
        return subprocess.run(["mount", *args], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@contextlib.contextmanager
def unwritable_knowledge(
    how: str, knowledge: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """The knowledge folder on a full disk or a read-only mount (real mounts when allowed,
    else the same OSError injected where the write would fail)."""
    target = tmp_path / f"mnt-{how}"
    target.mkdir()
    if how == "full" and _mount("-t", "tmpfs", "-o", "size=512k", "tmpfs", str(target)):
        try:
            shutil.copytree(knowledge, target / "knowledge")
            (target / "knowledge" / store.LOCK_FILE).touch()
            with contextlib.suppress(OSError), open(target / "filler", "wb") as fh:
                while True:
                    fh.write(b"\0" * 4096)
                    fh.flush()
            yield target / "knowledge"
        finally:
            subprocess.run(["umount", "-l", str(target)], check=False)
        return
    if how == "read-only" and _mount("--bind", str(knowledge), str(target)):
        try:
            if _mount("-o", "remount,bind,ro", str(target)):
                yield target
                return
        finally:
            subprocess.run(["umount", "-l", str(target)], check=False)
    # Fallback (no mount rights): the OSError the kernel would raise, at the same place.
    code = errno.ENOSPC if how == "full" else errno.EROFS
    real_mkstemp = tempfile.mkstemp

    def failing_mkstemp(*args: object, **kwargs: object) -> tuple[int, str]:
        if how == "read-only":
            raise OSError(code, os.strerror(code))
        fd, name = real_mkstemp(*args, **kwargs)  # type: ignore[call-overload]
        os.close(fd)
        os.unlink(name)
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(store.tempfile, "mkstemp", failing_mkstemp)
    yield knowledge


@pytest.mark.parametrize(("how", "reason"), [("full", "the disk is full"), ("read-only", "read-only")])
async def test_unwritable_folder_tells_the_curator_and_changes_nothing(
    fake: FakeDiscord, knowledge: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str, reason: str
) -> None:
    with unwritable_knowledge(how, knowledge, tmp_path, monkeypatch) as folder:
        settings = settings_for(fake, folder, tmp_path / "data")
        running: Running = await start_fast_bot(settings)
        try:
            before_disk, before_kb = tree_digest(folder), running.bot.service.kb
            iid = await fake.slash_command("kb add", roles=CURATORS)
            modal = await fake.wait_for_reply(iid, T)
            e = entry("nospace", 1)
            fields = {"question": e["question"], "answer": e["answer"], "source": SOURCE, "id": ""}
            sid = await fake.modal_submit(modal.json["data"]["custom_id"], fields, roles=CURATORS)
            reply = (await fake.wait_for_reply(sid, T)).json["data"]
            assert reply["flags"] & 64, reply  # ephemeral: only the curator sees it
            assert reason in reply["content"] and "Nothing was" in reply["content"], reply["content"]
            assert "Traceback" not in reply["content"]
            assert tree_digest(folder) == before_disk
            assert running.bot.service.kb is before_kb
            assert not [p for p in folder.rglob("*.tmp")]
            # and it keeps answering
            ask = await fake.slash_command("ask", {"question": "How far did they push the trolley?"})
            assert "embeds" in (await fake.wait_for_reply(ask, T)).json["data"]
        finally:
            await running.stop()


# ------------------------------------------------------------------ SQLite


def _feedback_writer(db: str, tag: str, count: int, progress: str | None) -> None:
    fb = FeedbackStore(db)
    fd = os.open(progress, os.O_WRONLY | os.O_APPEND | os.O_CREAT) if progress else None
    for n in range(count):
        fb.record_unanswered(f"what colour was the {tag} bus number {n}")
        fb.record_vote(f"{tag}-{n}", 42, "trolley-distance", n % 2 == 0)
        if fd is not None:
            os.write(fd, b"D\n")


def test_sqlite_survives_sigkill_and_concurrent_writers(tmp_path: Path) -> None:
    db = tmp_path / "data" / "storybot.sqlite3"
    FeedbackStore(db)
    # two processes writing at once: every write is there
    writers = [FORK.Process(target=_feedback_writer, args=(str(db), tag, 150, None)) for tag in ("a", "b")]
    for w in writers:
        w.start()
    for w in writers:
        w.join(60)
        assert w.exitcode == 0
    fb = FeedbackStore(db)
    assert len(fb.top_unanswered(1000)) == 300
    assert fb.vote_counts("trolley-distance") == (150, 150)
    # SIGKILL a writer again and again: the file opens, passes integrity_check, keeps every
    # write that completed
    rng = random.Random(99)
    for run in range(10):
        progress = tmp_path / f"sql-progress-{run}"
        progress.touch()
        proc = FORK.Process(target=_feedback_writer, args=(str(db), f"k{run}", 100_000, str(progress)))
        proc.start()
        time.sleep(rng.uniform(0.05, 0.2))
        os.kill(proc.pid or 0, signal.SIGKILL)
        proc.join(T)
        done = progress.read_text().count("D")
        with contextlib.closing(sqlite3.connect(db)) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            kept = conn.execute(
                "SELECT COUNT(*) FROM unanswered WHERE question LIKE ?", (f"%the k{run} bus%",)
            ).fetchone()[0]
            votes = conn.execute(
                "SELECT COUNT(*) FROM votes WHERE answer_key LIKE ?", (f"k{run}-%",)
            ).fetchone()[0]
        assert done <= kept <= done + 1 and done <= votes <= done + 1, (run, done, kept, votes)
    fb = FeedbackStore(db)
    fb.record_unanswered("still writable after the kills?")
    assert any(u.question == "still writable after the kills?" for u in fb.top_unanswered(10_000))


# ------------------------------------------------------------------ YAML that tries to run code


def test_yaml_python_tags_are_refused_never_executed(kb_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    evil = f'- !!python/object/apply:os.system ["touch {marker}"]\n'
    evil_entry = (
        "- id: evil\n  question: Who ran code?\n  answer: Nobody.\n"
        f'  source: !!python/object/apply:os.system ["touch {marker}"]\n'
    )
    for name, text in (("entries/evil.yaml", evil), ("entries/evil2.yaml", evil_entry)):
        path = kb_dir / name
        path.write_text(text, encoding="utf-8")
        with pytest.raises(KnowledgeError) as caught:
            load_knowledge(kb_dir)
        assert "not allowed" in str(caught.value) and name.split("/")[1] in str(caught.value)
        # nor through the writer (it validates under the lock before touching anything)
        with pytest.raises(KnowledgeError):
            store.add_entry(kb_dir, entry("after-evil", 1))
        # nor through the CLI
        out = subprocess.run([PYTHON, "-m", "bot", "validate", "--knowledge", str(kb_dir)], cwd=ROOT,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
        assert out.returncode == 1 and "not allowed" in out.stdout + out.stderr
        assert "Traceback" not in out.stdout + out.stderr
        path.unlink()
    story = kb_dir / "story.yaml"
    story.write_text(
        story.read_text(encoding="utf-8") + f'evil: !!python/object/apply:os.system ["touch {marker}"]\n'
    )
    with pytest.raises(KnowledgeError, match="not allowed"):
        load_knowledge(kb_dir)
    assert not marker.exists(), "YAML ran code"


def test_a_save_racing_another_writer_is_still_served(kb_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bot saves Y; another writer saves X before the bot swaps Y in: X must still be served."""
    from bot.core.service import StoryService

    bot_service, other = StoryService(kb_dir), StoryService(kb_dir)
    real_add = store.add_entry

    def add_then_someone_else_saves(*args: object, **kwargs: object) -> object:
        monkeypatch.setattr(store, "add_entry", real_add)
        result = real_add(*args, **kwargs)  # type: ignore[arg-type]
        other.add(entry("other-writer", 1))  # lands between the bot's save and its swap
        return result

    monkeypatch.setattr(store, "add_entry", add_then_someone_else_saves)
    bot_service.add(entry("bot-writer", 1))
    assert bot_service.kb.get("bot-writer-1") is not None
    bot_service.reload_if_changed()  # what the bot's file watcher does every couple of seconds
    assert bot_service.kb.get("other-writer-1") is not None, "another writer's entry is never served"
    assert bot_service.kb.get("bot-writer-1") is not None
