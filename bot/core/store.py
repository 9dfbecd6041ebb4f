"""Change the knowledge base on disk safely: validated, locked, atomic, comments kept.

Every change follows the same steps, whoever makes it (the CLI, a bot, a second bot):

1. take the folder's file lock, so two writers never interleave;
2. re-load the knowledge base from disk, so a change made by another process
   since we last looked is kept, and validate the change against it;
3. edit the YAML with a round-trip parser, so hand-written comments and order
   survive, and write it atomically (temporary file in the same folder, flush,
   fsync, ``os.replace``), so a crash leaves either the old or the new file;
4. load the result once more; if it does not validate, put the old file back.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from bot.core.errors import EditConflict, EntryNotFound, FilesBroken, KnowledgeError, Problem, StorageError
from bot.core.knowledge import (
    DEFAULT_ENTRIES_FILE,
    ENTRIES_DIR,
    Entry,
    KnowledgeBase,
    check_new_entry,
    load_knowledge,
)

LOCK_FILE = ".storybot.lock"
LOCK_TIMEOUT_S = 60.0
"""How long a writer waits for the others before giving up with a clear message. A save takes
0.1-0.5 s, so 50 curators saving at once queue for up to ~15 s: the wait must outlast that."""

_NEW_FILE_HEADER = (
    "# Entries added with `storybot add` or the bot's /kb commands.\n"
    "# Same format as the other files in this folder; edit by hand if you like.\n"
)


def _yaml() -> YAML:
    rt = YAML()  # round-trip: keeps comments, order and quoting of hand-written files
    rt.indent(mapping=2, sequence=4, offset=2)
    rt.width = 4096
    rt.preserve_quotes = True
    return rt


def _dump(data: CommentedSeq) -> str:
    out = io.StringIO()
    _yaml().dump(data, out)
    # The dumper indents the top-level list by two; our files start entries at column 0.
    return "".join(line[2:] if line.startswith("  ") else line for line in out.getvalue().splitlines(True))


def atomic_write(path: Path, text: str) -> None:
    """Replace `path` with `text` so that readers only ever see the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(OSError):
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _storage_error(exc: OSError, path: Path) -> StorageError:
    reasons = {
        errno.ENOSPC: "the disk is full",
        errno.EROFS: "the knowledge folder is read-only",
        errno.EACCES: "no permission to write there",
        errno.EPERM: "no permission to write there",
        errno.EDQUOT: "the disk quota is used up",
    }
    reason = reasons.get(exc.errno or 0, exc.strerror or str(exc))
    return StorageError([Problem(f"could not save: {reason}. Nothing was changed.", file=str(path))])


@contextlib.contextmanager
def locked(root: Path) -> Iterator[None]:
    """Hold the knowledge folder's write lock."""
    try:
        with FileLock(str(root / LOCK_FILE), timeout=LOCK_TIMEOUT_S):
            yield
    except Timeout as exc:
        raise StorageError(
            "another change to the knowledge base is still being saved; try again in a moment"
        ) from exc
    except OSError as exc:
        raise _storage_error(exc, root / LOCK_FILE) from exc


def _load_current(root: Path) -> KnowledgeBase:
    """The knowledge base on disk now, to check a change against. If the files themselves are
    broken (a hand edit, say), no change can be checked: say so apart from the change's own faults."""
    try:
        return load_knowledge(root)
    except StorageError:
        raise
    except KnowledgeError as error:
        raise FilesBroken(error.problems) from error


def _load_file(path: Path) -> CommentedSeq:
    if not path.exists():
        return CommentedSeq()
    data = _yaml().load(path.read_text(encoding="utf-8"))
    if data is None:
        return CommentedSeq()
    if not isinstance(data, CommentedSeq):
        raise KnowledgeError([Problem("an entries file must hold a list of entries", file=str(path))])
    return data


def _apply(root: Path, path: Path, change: Callable[[CommentedSeq], None]) -> KnowledgeBase:
    """Edit one entries file under the lock, atomically, and return the re-loaded base."""
    old_text = path.read_text(encoding="utf-8") if path.exists() else None
    data = _load_file(path)
    change(data)
    new_text = _dump(data)
    if old_text is None:
        new_text = _NEW_FILE_HEADER + new_text
    try:
        atomic_write(path, new_text)
    except OSError as exc:
        raise _storage_error(exc, path) from exc
    try:
        return load_knowledge(root)
    except KnowledgeError:
        # Should not happen (the change was validated), but never leave a broken base behind.
        if old_text is None:
            path.unlink(missing_ok=True)
        else:
            atomic_write(path, old_text)
        raise


def _update_item(item: Any, new: Mapping[str, Any]) -> None:
    """Change an entry's mapping in place to `new`'s fields: unchanged fields (and the comments
    on them) stay as written."""
    for key in [k for k in item if k not in new]:
        del item[key]
    for key, value in new.items():
        current = item.get(key)
        if isinstance(current, date):  # an unquoted YAML date stays as written
            current = current.isoformat()
        if current != value:
            item[key] = value


def _remove_item(data: CommentedSeq, index: int) -> None:
    """Delete an entry; comment lines written after it (the next section's heading, which the
    parser attaches to this entry) move to the entry before it."""
    item = data[index]
    trailing = None
    if isinstance(item, CommentedMap) and item:
        last_key = list(item.keys())[-1]
        trailing = item.ca.items.get(last_key)
        value = item[last_key]
        if trailing is None and isinstance(value, CommentedSeq) and len(value):
            trailing = value.ca.items.get(len(value) - 1)
    del data[index]
    if trailing is None or index == 0:
        return
    before = data[index - 1]
    if isinstance(before, CommentedMap) and before:
        key = list(before.keys())[-1]
        value = before[key]
        if isinstance(value, CommentedSeq) and len(value):
            value.ca.items[len(value) - 1] = trailing
        else:
            before.ca.items[key] = trailing


def _as_map(entry: Entry) -> CommentedMap:
    return CommentedMap(entry.to_dict())


def _find(data: CommentedSeq, entry_id: str) -> int:
    for index, item in enumerate(data):
        if isinstance(item, Mapping) and item.get("id") == entry_id:
            return index
    raise EntryNotFound(f"entry '{entry_id}' is not in its file any more; reload and try again")


def _root_of(kb_or_root: KnowledgeBase | Path | str) -> Path:
    if isinstance(kb_or_root, KnowledgeBase):
        if kb_or_root.root is None:
            raise StorageError("this knowledge base was not loaded from a folder")
        return kb_or_root.root
    return Path(kb_or_root)


def stamped(raw: Mapping[str, Any], author: str | None) -> dict[str, Any]:
    """A new entry's fields with who added it and when."""
    stamped = dict(raw)
    if author and not stamped.get("added_by"):
        stamped["added_by"] = author
    stamped.setdefault("added_at", datetime.now(UTC).strftime("%Y-%m-%d"))
    return stamped


def add_entry(
    root: Path | str, raw: Mapping[str, Any], *, author: str | None = None, file: str | None = None
) -> tuple[KnowledgeBase, Entry]:
    """Validate and append a new entry; return the new knowledge base and the entry."""
    root = Path(root)
    target = root / ENTRIES_DIR / (file or DEFAULT_ENTRIES_FILE)
    with locked(root):
        entry = check_new_entry(_load_current(root), stamped(raw, author))
        kb = _apply(root, target, lambda data: data.append(_as_map(entry)))
    return kb, kb.by_id[entry.id]


Changes = Mapping[str, Any] | Callable[[Entry], Mapping[str, Any]]


def update_entry(
    root: Path | str, entry_id: str, changes: Changes, *, expected: Entry | None = None
) -> tuple[KnowledgeBase, Entry]:
    """Change fields of an existing entry (in the file it lives in), validated.

    `changes` may be a function of the entry as it is on disk under the lock, so
    that read-modify-write changes never lose another writer's edit. `expected` is
    the entry as the editor saw it: if it has changed since, EditConflict says what
    changed and nothing is saved.
    """
    root = Path(root)
    with locked(root):
        current, old, path = _load_with(root, entry_id)
        if expected is not None and expected.version != old.version:
            before, now = expected.to_dict(), old.to_dict()
            changed = {k: (before.get(k), now.get(k)) for k in dict.fromkeys([*before, *now])
                       if before.get(k) != now.get(k)}  # fmt: skip
            raise EditConflict(entry_id, changed)
        if callable(changes):
            changes = changes(old)
        merged = {**old.to_dict(), **changes}
        entry = check_new_entry(current, merged, replacing=entry_id)

        def change(data: CommentedSeq) -> None:
            _update_item(data[_find(data, entry_id)], entry.to_dict())

        kb = _apply(root, path, change)
    return kb, kb.by_id[entry.id]


def add_alternate(root: Path | str, entry_id: str, phrasing: str) -> tuple[KnowledgeBase, Entry]:
    """Teach an entry one more way of asking its question."""
    return update_entry(root, entry_id, lambda old: {"alternates": [*old.alternates, phrasing]})


def remove_entry(root: Path | str, entry_id: str, *, version: str | None = None) -> KnowledgeBase:
    """Delete an entry from its file (only if it is still at `version`, when given)."""
    root = Path(root)
    with locked(root):
        _, old, path = _load_with(root, entry_id)
        if version is not None and old.version != version:
            raise EditConflict(entry_id, {})
        return _apply(root, path, lambda data: _remove_item(data, _find(data, entry_id)))


def _load_with(root: Path, entry_id: str) -> tuple[KnowledgeBase, Entry, Path]:
    """The knowledge base as it is on disk now, the entry with this id, and its file."""
    current = _load_current(root)
    old = current.get(entry_id)
    if old is None or old.file is None:
        raise EntryNotFound(f"there is no entry '{entry_id}'")
    return current, old, Path(old.file)


def export_entries(root: Path | str, files: Mapping[str, list[dict[str, Any]]]) -> KnowledgeBase:
    """Write a knowledge base's entries (by file, in order) into a folder's entry files, the way a
    curator would: an entry already in a file is updated in place (its comments kept), one no
    longer wanted is removed, a new one is added; files are written atomically under the lock
    and the result is validated (on error the old files are put back)."""
    root = Path(root)
    with locked(root):
        wanted = {Path(root / name): items for name, items in files.items()}
        paths = sorted({*entry_files_of(root), *wanted})
        before: dict[Path, str | None] = {
            path: path.read_text(encoding="utf-8") if path.exists() else None for path in paths
        }
        try:
            for path in paths:
                items = wanted.get(path, [])
                data = _load_file(path)
                old_text = _dump(data)
                keep = {body.get("id"): body for body in items}
                for index in reversed(range(len(data))):  # entries gone from the base
                    item = data[index]
                    if isinstance(item, Mapping) and item.get("id") not in keep:
                        _remove_item(data, index)
                present = {item.get("id") for item in data if isinstance(item, Mapping)}
                for item in data:  # entries changed in place: their comments stay
                    if isinstance(item, Mapping) and item.get("id") in keep:
                        _update_item(item, keep[item.get("id")])
                for body in items:  # entries new to this file, in the base's order
                    if body.get("id") not in present:
                        data.append(CommentedMap(body))
                new_text = _dump(data) if data else "[]\n"
                if before[path] is not None and new_text == old_text:
                    continue
                atomic_write(path, (_NEW_FILE_HEADER if before[path] is None else "") + new_text)
            return load_knowledge(root)
        except BaseException:
            for path, old in before.items():
                if old is None:
                    path.unlink(missing_ok=True)
                else:
                    atomic_write(path, old)
            raise


def entry_files_of(root: Path) -> list[Path]:
    from bot.core.knowledge import entry_files

    return entry_files(root)
