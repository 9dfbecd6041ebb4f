"""The one object every front end talks to: the current knowledge base and its matcher.

The CLI, the console and the Discord cogs all ask and curate through a
`StoryService`, so they answer the same way. Changes go through `bot.core.store`
(locked, validated, atomic files) or, with a database configured, through
`bot.core.postgres` (one transaction and revision per change), and the freshly
loaded knowledge base is swapped in whole; a reader never sees half of a change.
A reload that fails keeps the last good knowledge base serving.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from bot.core.errors import FilesBroken, KnowledgeError
from bot.core.knowledge import Entry, KnowledgeBase, check_new_entry, entry_files, load_knowledge
from bot.core.matching import Matcher, Result

if TYPE_CHECKING:
    from bot.core import store
    from bot.core.postgres import PostgresKnowledge

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class _State:
    kb: KnowledgeBase
    matcher: Matcher
    stamp: tuple[Any, ...]
    ticket: int = 0  # the order in which this base was read or written (see StoryService._swap)


def _stamp(root: Path) -> tuple[tuple[str, float, int], ...]:
    """Names, modification times and sizes of the files a knowledge base is read from."""
    paths = [root / "story.yaml", root / "article.txt", root / "synonyms.yaml", *entry_files(root)]
    out = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        out.append((str(path), st.st_mtime, st.st_size))
    return tuple(out)


class StoryService:
    """Answers questions from a knowledge folder (its entries in the folder, or in a database
    shared by several processes) and applies curators' changes to it."""

    def __init__(self, root: Path | str, database: PostgresKnowledge | None = None) -> None:
        self.root = Path(root)
        self.database = database
        self._lock = threading.Lock()
        self._order = threading.Lock()
        self._tickets = itertools.count(1)
        stamp = self._stamp()
        kb = self._load()  # raises KnowledgeError: no good base to fall back on
        self._state = _State(kb, Matcher(kb), stamp)

    def _stamp(self) -> tuple[Any, ...]:
        """What changes when the knowledge changes: the files' times and sizes, and the
        database's latest revision."""
        files = _stamp(self.root)
        return (*files, ("revision", self.database.revision())) if self.database is not None else files

    def _load(self) -> KnowledgeBase:
        return self.database.load() if self.database is not None else load_knowledge(self.root)

    @property
    def _store(self) -> _FolderStore | PostgresKnowledge:
        """Where changes are saved: the database, or the folder's files."""
        return self.database if self.database is not None else _FolderStore(self.root)

    @property
    def kb(self) -> KnowledgeBase:
        """The knowledge base being served."""
        return self._state.kb

    @property
    def matcher(self) -> Matcher:
        """The matcher over the knowledge base being served."""
        return self._state.matcher

    def ask(self, question: str) -> Result:
        """Match a question against the current knowledge base."""
        return self._state.matcher.match(question)

    def _saved(self, save: Callable[[], T]) -> tuple[T, int]:
        """Run one save and number it: this process's saves get tickets in the order they were
        written, so a slower swap of an older save never replaces a newer one."""
        with self._order:
            return save(), next(self._tickets)

    def _ticket(self) -> int:
        """A ticket for a base about to be read: later than every save already written."""
        with self._order:
            return next(self._tickets)

    def _swap(self, kb: KnowledgeBase, ticket: int, stamp: tuple[Any, ...] | None = None) -> KnowledgeBase:
        # Swaps can finish out of order (each builds a matcher first, some slower than others):
        # a base with an older ticket than the one serving is dropped, since the newer one was
        # written or read after it and holds it. After a save (no stamp given) the files may
        # already hold more than `kb` (another process can save between our save and this swap):
        # an empty stamp makes the next reload_if_changed() read the disk again.
        state = _State(kb, Matcher(kb), stamp if stamp is not None else (), ticket)
        with self._lock:
            if ticket > self._state.ticket:
                self._state = state
        return kb

    def reload(self) -> KnowledgeBase:
        """Load the folder again; on error raise KnowledgeError and keep serving the old base."""
        ticket = self._ticket()
        stamp = self._stamp()
        kb = self._load()
        log.info("loaded %d entries from %s", len(kb), "the database" if self.database else self.root)
        return self._swap(kb, ticket, stamp)

    def changed_on_disk(self) -> bool:
        """Whether any knowledge file changed since it was last loaded."""
        return self._stamp() != self._state.stamp

    def reload_if_changed(self) -> KnowledgeBase | None:
        """Reload when the files changed; return the new base, or None if nothing changed.

        A broken edit raises KnowledgeError once per change (the stamp is remembered),
        and the last good base keeps serving.
        """
        ticket = self._ticket()
        stamp = self._stamp()
        if stamp == self._state.stamp:
            return None
        try:
            kb = self._load()
        except KnowledgeError:
            with self._lock:  # don't report the same broken edit every poll
                self._state = replace(self._state, stamp=stamp)
            raise
        return self._swap(kb, ticket, stamp)

    def _own_faults_first(self, raw: Mapping[str, Any], replacing: str | None = None) -> None:
        """While the files on disk are broken nothing can be saved; but if the change itself is
        wrong, say that (against the base being served), so its author knows what to fix."""
        check_new_entry(self.kb, raw, replacing=replacing)

    def add(self, raw: Mapping[str, Any], *, author: str | None = None) -> Entry:
        """Validate, save and serve a new entry."""
        try:
            (kb, entry), ticket = self._saved(lambda: self._store.add_entry(raw, author=author))
        except FilesBroken:
            self._own_faults_first(raw)
            raise
        self._swap(kb, ticket)
        return entry

    def update(self, entry_id: str, changes: store.Changes, *, expected: Entry | None = None) -> Entry:
        """Validate, save and serve a change to an entry (refused if it changed since `expected`)."""
        try:
            (kb, entry), ticket = self._saved(
                lambda: self._store.update_entry(entry_id, changes, expected=expected)
            )
        except FilesBroken:
            old = self.kb.get(entry_id)
            if old is not None and not callable(changes):
                self._own_faults_first({**old.to_dict(), **changes}, replacing=entry_id)
            raise
        self._swap(kb, ticket)
        return entry

    def add_alternate(self, entry_id: str, phrasing: str) -> Entry:
        """Teach an entry another phrasing."""
        try:
            (kb, entry), ticket = self._saved(lambda: self._store.add_alternate(entry_id, phrasing))
        except FilesBroken:
            old = self.kb.get(entry_id)
            if old is not None:
                raw = {**old.to_dict(), "alternates": [*old.alternates, phrasing]}
                self._own_faults_first(raw, replacing=entry_id)
            raise
        self._swap(kb, ticket)
        return entry

    def remove(self, entry_id: str, *, version: str | None = None) -> None:
        """Delete an entry (only if it is still at `version`, when given)."""
        kb, ticket = self._saved(lambda: self._store.remove_entry(entry_id, version=version))
        self._swap(kb, ticket)


class _FolderStore:
    """`bot.core.store`'s functions bound to one folder: the same calls as `PostgresKnowledge`.
    (ruamel.yaml and filelock are imported only when saving: a quicker start.)"""

    def __init__(self, root: Path) -> None:
        self.root = root

    def add_entry(self, raw: Mapping[str, Any], *, author: str | None = None) -> tuple[KnowledgeBase, Entry]:
        from bot.core import store

        return store.add_entry(self.root, raw, author=author)

    def update_entry(
        self, entry_id: str, changes: store.Changes, *, expected: Entry | None = None
    ) -> tuple[KnowledgeBase, Entry]:
        from bot.core import store

        return store.update_entry(self.root, entry_id, changes, expected=expected)

    def add_alternate(self, entry_id: str, phrasing: str) -> tuple[KnowledgeBase, Entry]:
        from bot.core import store

        return store.add_alternate(self.root, entry_id, phrasing)

    def remove_entry(self, entry_id: str, *, version: str | None = None) -> KnowledgeBase:
        from bot.core import store

        return store.remove_entry(self.root, entry_id, version=version)
