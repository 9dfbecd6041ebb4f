"""Shared state in PostgreSQL, for a bot split over several processes or hosts.

`STORYBOT_DATABASE_URL=postgresql://...` puts here what every process must share:

- votes and the unanswered list (`PostgresFeedback`, the same methods as the SQLite store);
- the curators' entries, as rows and an append-only log of revisions (`PostgresKnowledge`).
  The knowledge folder still holds the story, the article and the synonyms (they come with the
  image); on first start its entries seed the empty database. Every change NOTIFYs on commit and
  every process listens (`ChangeListener`), so a change made anywhere is served everywhere at
  once; each process also polls the latest revision number, which catches what a listener
  missed while its connection was down. A revision that does not validate is never served (the
  last good base keeps serving).

The schema is versioned SQL (`MIGRATIONS`), applied on start under an advisory lock, so two
processes starting at once migrate once. Connections come from psycopg's pool, which replaces a
connection that broke (PostgreSQL restarted); a write that meets a lost connection is retried
for `RETRY_FOR_S` seconds, so a restart of the database loses no vote and no curator's change.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from bot.core.errors import EditConflict, EntryNotFound, FilesBroken, KnowledgeError, StorageError
from bot.core.feedback import MAX_STORED_QUESTION_CHARS, QuestionGroup, Unanswered, group_questions
from bot.core.knowledge import (
    DEFAULT_ENTRIES_FILE,
    ENTRIES_DIR,
    Entry,
    KnowledgeBase,
    check_new_entry,
    load_knowledge,
    load_with_entries,
    phrasing_key,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_FOR_S = 60.0
"""How long a write keeps retrying while the database is unreachable (a restart, a failover)."""
MIGRATION_LOCK = 0x5_70_27_B0_7  # pg_advisory_lock key: one migrating process at a time
WRITE_LOCK = 0x5_70_27_B0_8  # pg_advisory_xact_lock key: one knowledge writer at a time
NOTIFY_CHANNEL = "storybot_knowledge"
IN_DATABASE = "database:"
"""An entry read from the database says so where a file's entry names its file."""

MIGRATIONS: tuple[str, ...] = (
    # 1: votes and the unanswered list
    """
    CREATE TABLE unanswered (
        id BIGSERIAL PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        question TEXT NOT NULL,
        count INTEGER NOT NULL DEFAULT 1,
        first_seen DOUBLE PRECISION NOT NULL,
        last_seen DOUBLE PRECISION NOT NULL,
        dismissed BOOLEAN NOT NULL DEFAULT FALSE
    );
    CREATE TABLE votes (
        answer_key TEXT NOT NULL,
        user_id BIGINT NOT NULL,
        entry_id TEXT NOT NULL,
        helpful BOOLEAN NOT NULL,
        at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (answer_key, user_id)
    );
    CREATE INDEX votes_entry ON votes (entry_id);
    """,
    # 2: the knowledge base's entries and their revisions
    """
    CREATE TABLE entries (
        id TEXT PRIMARY KEY,
        position BIGINT NOT NULL,
        file TEXT NOT NULL,
        body JSONB NOT NULL,
        version TEXT NOT NULL
    );
    CREATE TABLE revisions (
        rev BIGSERIAL PRIMARY KEY,
        at TIMESTAMPTZ NOT NULL DEFAULT now(),
        author TEXT,
        action TEXT NOT NULL,
        entry_id TEXT,
        body JSONB
    );
    CREATE TABLE knowledge_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
)


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


class Database:
    """A connection pool to one PostgreSQL database, its schema brought up to date on open."""

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 4) -> None:
        import psycopg_pool

        self.url = url
        self.pool = psycopg_pool.ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            open=False,
            check=psycopg_pool.ConnectionPool.check_connection,
            kwargs={"autocommit": False, "connect_timeout": 5},
            name="storybot",
        )
        self.pool.open(wait=False)
        self.retry(self._migrate)

    def close(self) -> None:
        self.pool.close()

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """One transaction: committed when the block ends, rolled back on an error."""
        with self.pool.connection(timeout=10) as conn, conn.transaction(), conn.cursor() as cur:
            yield cur

    def retry(self, work: Callable[[], T], retry_for_s: float = RETRY_FOR_S) -> T:
        """Run `work`, again and again while the database is unreachable (up to `retry_for_s`)."""
        import psycopg
        import psycopg_pool

        deadline = time.monotonic() + retry_for_s
        delay = 0.1
        while True:
            try:
                return work()
            except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
                if time.monotonic() + delay > deadline:
                    raise StorageError(
                        "the database is unreachable; nothing was changed. Try again in a moment."
                    ) from exc
                log.warning("database unreachable (%s); retrying in %.1fs", type(exc).__name__, delay)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _migrate(self) -> None:
        with self.pool.connection(timeout=10) as conn:
            conn.autocommit = True
            conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
            try:
                conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
                row = conn.execute("SELECT version FROM schema_version").fetchone()
                version = row[0] if row else 0
                for step in range(version, len(MIGRATIONS)):
                    with conn.transaction():
                        conn.execute(MIGRATIONS[step])
                        conn.execute("DELETE FROM schema_version")
                        conn.execute("INSERT INTO schema_version VALUES (%s)", (step + 1,))
                    log.info("database schema migrated to version %d", step + 1)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))


# ------------------------------------------------------------------------------ feedback


class ChangeListener:
    """Calls `on_change` soon after any process commits a change to the knowledge (LISTEN on the
    channel each change NOTIFYs), so a curator's edit on one process is served by the others at
    once instead of at their next poll. The poll stays: it is what catches a change made while
    this connection was down (the listener reconnects every `RETRY_S` until it is back).

    `on_change` runs on the listener's own thread and must only hand the work over."""

    RETRY_S = 1.0
    WAIT_S = 0.5
    """How long one wait for notifications lasts before `stop` is looked at again."""

    def __init__(self, url: str, on_change: Callable[[], None]) -> None:
        self.url = url
        self.on_change = on_change
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="storybot-listen", daemon=True)
        self.listening = threading.Event()
        """Set while a connection is listening (for tests and health)."""

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self.listening.set()
                    while not self._stop.is_set():
                        if any(True for _ in conn.notifies(timeout=self.WAIT_S, stop_after=1)):
                            self.on_change()
            except psycopg.Error as error:
                if self.listening.is_set():
                    log.warning(
                        "stopped listening for knowledge changes (%s); polling until it is back", error
                    )
                self.listening.clear()
                self._stop.wait(self.RETRY_S)
            except Exception:  # a bug in on_change must not end the listener for good
                log.exception("the knowledge change listener failed; starting it again")
                self.listening.clear()
                self._stop.wait(self.RETRY_S)
        self.listening.clear()


class PostgresFeedback:
    """Votes and unanswered questions in PostgreSQL: the same methods as `FeedbackStore`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _write(self, sql: str, params: Sequence[Any] | Sequence[Sequence[Any]], many: bool = False) -> None:
        def work() -> None:
            with self.db.transaction() as cur:
                if many:
                    cur.executemany(sql, params)
                else:
                    cur.execute(sql, params)

        self.db.retry(work)

    def _read(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        def work() -> list[tuple[Any, ...]]:
            with self.db.transaction() as cur:
                cur.execute(sql, params)
                return list(cur.fetchall())

        return self.db.retry(work)

    def record_unanswered(self, question: str) -> None:
        text = question[:MAX_STORED_QUESTION_CHARS]
        key = phrasing_key(text)
        if not key:
            return
        now = time.time()
        self._write(
            "INSERT INTO unanswered (key, question, count, first_seen, last_seen) VALUES (%s, %s, 1, %s, %s) "
            "ON CONFLICT (key) DO UPDATE SET count = unanswered.count + 1, last_seen = EXCLUDED.last_seen",
            (key, text, now, now),
        )

    def top_unanswered(self, limit: int = 10) -> list[Unanswered]:
        rows = self._read(
            "SELECT id, key, question, count FROM unanswered WHERE NOT dismissed "
            "ORDER BY count DESC, last_seen DESC LIMIT %s",
            (limit,),
        )
        return [Unanswered(*row) for row in rows]

    def unanswered_groups(self, limit: int = 10, scan: int = 500) -> list[QuestionGroup]:
        return group_questions(self.top_unanswered(scan))[:limit]

    def group_of(self, row_id: int, scan: int = 500) -> QuestionGroup | None:
        return next((g for g in group_questions(self.top_unanswered(scan)) if row_id in g.ids), None)

    def dismiss(self, row_ids: Sequence[int]) -> None:
        self._write(
            "UPDATE unanswered SET dismissed = TRUE WHERE id = %s", [(i,) for i in row_ids], many=True
        )

    def forget(self, row_ids: Sequence[int]) -> None:
        self._write("DELETE FROM unanswered WHERE id = %s", [(i,) for i in row_ids], many=True)

    def record_vote(self, answer_key: str, user_id: int, entry_id: str, helpful: bool) -> bool:
        def work() -> bool:
            with self.db.transaction() as cur:
                cur.execute(
                    "INSERT INTO votes (answer_key, user_id, entry_id, helpful, at) VALUES (%s, %s, %s, %s, %s) "
                    "ON CONFLICT (answer_key, user_id) DO UPDATE SET helpful = EXCLUDED.helpful, at = EXCLUDED.at "
                    "WHERE votes.helpful IS DISTINCT FROM EXCLUDED.helpful",
                    (answer_key, user_id, entry_id, helpful, time.time()),
                )
                return bool(cur.rowcount)

        return self.db.retry(work)

    def vote_counts(self, entry_id: str) -> tuple[int, int]:
        [(up, down)] = self._read(
            "SELECT COUNT(*) FILTER (WHERE helpful), COUNT(*) FILTER (WHERE NOT helpful) FROM votes "
            "WHERE entry_id = %s",
            (entry_id,),
        )
        return int(up), int(down)


# ------------------------------------------------------------------------------ knowledge


def _body(entry: Entry) -> dict[str, Any]:
    return entry.to_dict()


class PostgresKnowledge:
    """The entries of a knowledge base in PostgreSQL, each change a revision; the story, the
    article and the synonyms from the knowledge folder. The same operations as `bot.core.store`."""

    def __init__(self, db: Database, root: Path) -> None:
        self.db = db
        self.root = Path(root)
        self.db.retry(self._seed)

    # -- reading

    def revision(self) -> int:
        """The latest revision's number (0: none): it moves whenever any process changes an entry."""

        def work() -> int:
            with self.db.transaction() as cur:
                cur.execute("SELECT COALESCE(MAX(rev), 0) FROM revisions")
                return int(cur.fetchone()[0])

        return self.db.retry(work, retry_for_s=5.0)

    def _records(self, cur: Any) -> list[tuple[str, int, Any]]:
        cur.execute("SELECT file, position, body FROM entries ORDER BY position")
        return [(f"{IN_DATABASE}{file}", position, body) for file, position, body in cur.fetchall()]

    def load(self) -> KnowledgeBase:
        """The knowledge base as the database holds it now; KnowledgeError if it does not validate."""

        def work() -> list[tuple[str, int, Any]]:
            with self.db.transaction() as cur:
                return self._records(cur)

        return load_with_entries(self.root, self.db.retry(work, retry_for_s=5.0))

    # -- seeding and export

    def _seed(self) -> None:
        """On first start, the folder's entries become the database's first revision."""
        with self.db.transaction() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            cur.execute("SELECT value FROM knowledge_meta WHERE key = 'seeded'")
            if cur.fetchone() is not None:
                return
            kb = load_knowledge(self.root)  # a broken folder cannot seed: say so at start
            for position, entry in enumerate(kb.entries):
                cur.execute(
                    "INSERT INTO entries (id, position, file, body, version) VALUES (%s, %s, %s, %s, %s)",
                    (entry.id, position, self._file_of(entry), json.dumps(_body(entry)), entry.version),
                )
            cur.execute(
                "INSERT INTO revisions (author, action, body) VALUES (%s, 'seed', %s)",
                ("storybot", json.dumps({"entries": len(kb.entries), "from": str(self.root)})),
            )
            cur.execute("INSERT INTO knowledge_meta (key, value) VALUES ('seeded', now()::text)")
            log.info("seeded the database with %d entries from %s", len(kb.entries), self.root)

    def _file_of(self, entry: Entry) -> str:
        if entry.file is None:
            return f"{ENTRIES_DIR}/{DEFAULT_ENTRIES_FILE}"
        if entry.file.startswith(IN_DATABASE):
            return entry.file[len(IN_DATABASE) :]
        path = Path(entry.file)
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return f"{ENTRIES_DIR}/{path.name}"

    def files(self) -> dict[str, list[dict[str, Any]]]:
        """The current entries by the file they belong in, in order (for `storybot export`)."""

        def work() -> dict[str, list[dict[str, Any]]]:
            out: dict[str, list[dict[str, Any]]] = {}
            with self.db.transaction() as cur:
                cur.execute("SELECT file, body FROM entries ORDER BY position")
                for file, body in cur.fetchall():
                    out.setdefault(file, []).append(body)
            return out

        return self.db.retry(work)

    # -- writing

    def _change(
        self,
        author: str | None,
        action: str,
        entry_id: str,
        work: Callable[[Any, KnowledgeBase], Entry | None],
    ) -> tuple[KnowledgeBase, Entry | None]:
        """One change under the writers' lock: the base as stored now, checked, the change and
        its revision written and announced in one transaction."""

        def attempt() -> Entry | None:
            with self.db.transaction() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
                try:
                    current = load_with_entries(self.root, self._records(cur))
                except KnowledgeError as error:
                    raise FilesBroken(error.problems) from error
                entry = work(cur, current)
                body = json.dumps(_body(entry)) if entry is not None else None
                cur.execute(
                    "INSERT INTO revisions (author, action, entry_id, body) VALUES (%s, %s, %s, %s)",
                    (author, action, entry_id, body),
                )
                cur.execute(f"NOTIFY {NOTIFY_CHANNEL}")  # heard by every bot's ChangeListener on commit
                return entry

        entry = self.db.retry(attempt)
        kb = self.load()
        return kb, (kb.by_id[entry.id] if entry is not None else None)

    def add_entry(self, raw: Mapping[str, Any], *, author: str | None = None) -> tuple[KnowledgeBase, Entry]:
        from bot.core.store import stamped  # ruamel.yaml: only when saving

        def work(cur: Any, current: KnowledgeBase) -> Entry:
            entry = check_new_entry(current, stamped(raw, author))
            cur.execute("SELECT COALESCE(MAX(position), -1) + 1 FROM entries")
            position = cur.fetchone()[0]
            cur.execute(
                "INSERT INTO entries (id, position, file, body, version) VALUES (%s, %s, %s, %s, %s)",
                (entry.id, position, f"{ENTRIES_DIR}/{DEFAULT_ENTRIES_FILE}", json.dumps(_body(entry)),
                 entry.version),
            )  # fmt: skip
            return entry

        kb, entry = self._change(author, "add", str(raw.get("id", "")), work)
        assert entry is not None
        return kb, entry

    def update_entry(
        self, entry_id: str, changes: Any, *, expected: Entry | None = None
    ) -> tuple[KnowledgeBase, Entry]:
        def work(cur: Any, current: KnowledgeBase) -> Entry:
            old = current.get(entry_id)
            if old is None:
                raise EntryNotFound(f"there is no entry '{entry_id}'")
            if expected is not None and expected.version != old.version:
                before, now = expected.to_dict(), old.to_dict()
                changed = {k: (before.get(k), now.get(k)) for k in dict.fromkeys([*before, *now])
                           if before.get(k) != now.get(k)}  # fmt: skip
                raise EditConflict(entry_id, changed)
            fields = changes(old) if callable(changes) else changes
            entry = check_new_entry(current, {**old.to_dict(), **fields}, replacing=entry_id)
            cur.execute(
                "UPDATE entries SET id = %s, body = %s, version = %s WHERE id = %s",
                (entry.id, json.dumps(_body(entry)), entry.version, entry_id),
            )
            return entry

        kb, entry = self._change(None, "update", entry_id, work)
        assert entry is not None
        return kb, entry

    def add_alternate(self, entry_id: str, phrasing: str) -> tuple[KnowledgeBase, Entry]:
        return self.update_entry(entry_id, lambda old: {"alternates": [*old.alternates, phrasing]})

    def remove_entry(self, entry_id: str, *, version: str | None = None) -> KnowledgeBase:
        def work(cur: Any, current: KnowledgeBase) -> None:
            old = current.get(entry_id)
            if old is None:
                raise EntryNotFound(f"there is no entry '{entry_id}'")
            if version is not None and old.version != version:
                raise EditConflict(entry_id, {})
            cur.execute("DELETE FROM entries WHERE id = %s", (entry_id,))
            return None

        kb, _ = self._change(None, "remove", entry_id, work)
        return kb


def migrate_sqlite(sqlite_file: Path, db: Database) -> tuple[int, int]:
    """Copy an SQLite deployment's unanswered questions and votes into PostgreSQL (rows already
    there are kept); return how many of each were copied."""
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(sqlite_file)) as lite:
        has_dismissed = any(r[1] == "dismissed" for r in lite.execute("PRAGMA table_info(unanswered)"))
        dismissed = "dismissed" if has_dismissed else "0"
        questions = lite.execute(
            f"SELECT key, question, count, first_seen, last_seen, {dismissed} FROM unanswered"
        ).fetchall()
        votes = lite.execute("SELECT answer_key, user_id, entry_id, helpful, at FROM votes").fetchall()

    def work() -> tuple[int, int]:
        with db.transaction() as cur:
            copied_q = copied_v = 0
            for key, question, count, first, last, gone in questions:
                cur.execute(
                    "INSERT INTO unanswered (key, question, count, first_seen, last_seen, dismissed) "
                    "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (key) DO NOTHING",
                    (key, question, count, first, last, bool(gone)),
                )
                copied_q += cur.rowcount
            for answer_key, user_id, entry_id, helpful, at in votes:
                cur.execute(
                    "INSERT INTO votes (answer_key, user_id, entry_id, helpful, at) VALUES (%s, %s, %s, %s, %s) "
                    "ON CONFLICT (answer_key, user_id) DO NOTHING",
                    (answer_key, user_id, entry_id, bool(helpful), at),
                )
                copied_v += cur.rowcount
            return copied_q, copied_v

    return db.retry(work)
