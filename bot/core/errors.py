"""Errors the core raises, each carrying text a curator can act on."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the knowledge base, with where it is."""

    message: str
    file: str | None = None
    line: int | None = None
    entry: str | None = None
    field: str | None = None
    severity: Severity = "error"

    def location(self) -> str:
        """Return `file:line` (whichever parts are known)."""
        where = self.file or "<input>"
        if self.line is not None:
            where += f":{self.line}"
        return where

    def __str__(self) -> str:
        label = " ".join(
            part
            for part in (
                f"entry '{self.entry}'" if self.entry else "",
                f"field '{self.field}'" if self.field else "",
            )
            if part
        )
        prefix = "warning: " if self.severity == "warning" else ""
        if label:
            return f"{self.location()}: {prefix}{label}: {self.message}"
        return f"{self.location()}: {prefix}{self.message}"


class KnowledgeError(Exception):
    """The knowledge base (or a change to it) is invalid; `problems` lists every reason."""

    def __init__(self, problems: Iterable[Problem] | str) -> None:
        if isinstance(problems, str):
            problems = [Problem(problems)]
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def summary(self, limit: int = 5) -> str:
        """A short, human-readable list of the first few problems."""
        lines = [f"- {p}" for p in self.problems[:limit]]
        if len(self.problems) > limit:
            lines.append(f"- … and {len(self.problems) - limit} more")
        return "\n".join(lines)


class EntryNotFound(KnowledgeError):
    """No entry has the given id."""


class StorageError(KnowledgeError):
    """The knowledge base could not be written (read-only folder, full disk, lock timeout)."""


class EditConflict(KnowledgeError):
    """An edit was started from a version of the entry that someone has changed since."""

    def __init__(self, entry_id: str, changed: dict[str, tuple[object, object]]) -> None:
        self.entry_id = entry_id
        self.changed = changed
        """field -> (what the editor started from, what it is now)"""
        fields = ", ".join(changed) or "it"
        super().__init__(
            [
                Problem(
                    f"someone changed {fields} of this entry after you opened it; nothing was saved",
                    entry=entry_id,
                )
            ]
        )


class FilesBroken(KnowledgeError):
    """The knowledge files on disk have problems (a hand edit, say), so no change can be checked
    and saved until they are fixed; the change itself may be fine."""
