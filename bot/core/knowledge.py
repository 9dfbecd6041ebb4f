"""The knowledge base: the article, its Q&A entries and synonym groups; load and validate.

Layout of a knowledge folder::

    story.yaml          headline, article file name, version, date checked
    article.txt         the article, verbatim
    synonyms.yaml       groups of interchangeable words for the matcher
    entries/*.yaml      lists of entries (id, question, alternates, answer, source, ...)

Loading collects *every* problem with its file, line and entry id and raises one
`KnowledgeError`; YAML is only ever read with a safe loader.
"""

from __future__ import annotations

import gc
import hashlib
import json
import re
import shutil
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from bot.core.errors import KnowledgeError, Problem
from bot.core.text import (
    collapse_whitespace,
    normalise_for_compare,
    normalise_quotes,
    split_sentences,
    strip_marks,
)

try:  # PyYAML's C loader is ~10x faster; fall back to pure Python where it isn't built.
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]


def _compare_form(text: str) -> str:
    """`normalise_for_compare`, faster: ASCII text has no curly quotes to straighten, and
    " ".join(text.split()) is `collapse_whitespace` (str.split and the regex's \\s agree on
    what whitespace is), without a regex."""
    return " ".join((text if text.isascii() else normalise_quotes(text)).split())


_WORDS = re.compile(r"\w+")

STORY_FILE = "story.yaml"
SYNONYMS_FILE = "synonyms.yaml"
ENTRIES_DIR = "entries"
DEFAULT_ENTRIES_FILE = "curated.yaml"
"""Where entries added from Discord or `storybot add` go, unless told otherwise."""

QUESTION_TYPES = (
    "who", "what", "when", "where", "why", "how", "how-many", "how-long", "how-far", "yes-no",
)  # fmt: skip

ID_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# Field limits keep every entry readable and keep Discord embeds inside their limits
# (title 256, field 1024, description 4096 characters).
MAX_ID_CHARS = 64
MAX_QUESTION_CHARS = 200
MAX_ALTERNATES = 40
MAX_ANSWER_CHARS = 600
MAX_SOURCE_CHARS = 1000
MAX_TAGS = 10
MAX_TAG_CHARS = 32
MAX_NAME_CHARS = 100
LINK = re.compile(
    r"(?i)(?:\b[a-z][a-z0-9+.-]*://|\bwww\.[a-z0-9-]|\bdiscord(?:app)?\.(?:gg|com/invite)/|\]\()"
)
"""A link, a Discord invite or a masked link: never in a curator's text (readers would follow it
under the bot's name). The article's own sentences may hold links; they are quoted as they are."""
NEAR_DUPLICATE_RATIO = 92
"""Phrasings of two different entries this similar (0-100) would confuse the matcher."""

ENTRY_FIELDS = ("id", "type", "question", "alternates", "answer", "source", "tags", "added_by", "added_at")  # fmt: skip
REQUIRED_FIELDS = ("id", "question", "answer", "source")


@dataclass(frozen=True)
class Entry:
    """One question/answer pair and the article sentence(s) it rests on."""

    id: str
    question: str
    answer: str
    sources: tuple[str, ...]
    alternates: tuple[str, ...] = ()
    type: str | None = None
    tags: tuple[str, ...] = ()
    added_by: str | None = None
    added_at: str | None = None
    file: str | None = field(default=None, compare=False)
    line: int | None = field(default=None, compare=False)

    @property
    def phrasings(self) -> tuple[str, ...]:
        """The question followed by its alternates."""
        return (self.question, *self.alternates)

    @property
    def source(self) -> str:
        """The source sentences as one quotable text."""
        return " ".join(self.sources)

    @property
    def version(self) -> str:
        """A short fingerprint of the entry's content: an edit carries the version it started
        from, and a save over a newer version is refused (optimistic concurrency)."""
        text = json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]

    def to_dict(self) -> dict[str, Any]:
        """The YAML form, fields in a fixed order, empty optional fields left out."""
        out: dict[str, Any] = {"id": self.id}
        if self.type:
            out["type"] = self.type
        out["question"] = self.question
        if self.alternates:
            out["alternates"] = list(self.alternates)
        out["answer"] = self.answer
        out["source"] = self.sources[0] if len(self.sources) == 1 else list(self.sources)
        if self.tags:
            out["tags"] = list(self.tags)
        if self.added_by:
            out["added_by"] = self.added_by
        if self.added_at:
            out["added_at"] = self.added_at
        return out


@dataclass(frozen=True)
class Story:
    """The article the entries are checked against."""

    headline: str
    text: str
    version: str
    checked: str | None = None

    @cached_property
    def sentences(self) -> tuple[str, ...]:
        """The article's sentences in order (repeated captions included)."""
        return tuple(split_sentences(self.text))

    @cached_property
    def compare_text(self) -> str:
        """The article in the form sources are compared in."""
        return normalise_for_compare(self.text)

    @cached_property
    def sha256(self) -> str:
        """Digest of the article text, recorded in story.yaml."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @cached_property
    def _index(self) -> tuple[str, list[int]]:
        """The compare form of the article, and for each of its characters the original index."""
        out: list[str] = []
        where: list[int] = []
        pending_space = False
        for i, ch in enumerate(self.text):
            if ch.isspace():
                pending_space = bool(out)
                continue
            if pending_space:
                out.append(" ")
                where.append(i - 1)
                pending_space = False
            out.append(normalise_quotes(ch))
            where.append(i)
        return "".join(out), where

    def verbatim(self, source: str) -> str:
        """The article's own text for a source (its exact spaces and quotes), for quoting."""
        compare, where = self._index
        start = compare.find(normalise_for_compare(source))
        if start < 0:
            return source
        end = start + len(normalise_for_compare(source)) - 1
        return self.text[where[start] : where[end] + 1]

    @cached_property
    def _found(self) -> dict[str, bool]:
        """Sources already looked up (many entries cite the same sentence)."""
        return {}

    def contains(self, source: str) -> bool:
        """Whether `source` occurs verbatim (after whitespace/quote normalising)."""
        found = self._found.get(source)
        if found is None:
            found = self._found[source] = _compare_form(source) in self.compare_text
        return found

    def closest_sentence(self, text: str) -> str | None:
        """The article sentence most like `text`, to suggest when a source is wrong."""
        from rapidfuzz import fuzz, process  # only when a source is wrong: loading stays quick

        found = process.extractOne(
            normalise_for_compare(text),
            [normalise_for_compare(s) for s in self.sentences],
            # token_set_ratio rewards a sentence that contains most of the words given,
            # which is what a slightly misquoted source looks like (WRatio favours length).
            scorer=fuzz.token_set_ratio,
            processor=str.casefold,
            score_cutoff=30,
        )
        return self.sentences[found[2]] if found else None


SAME_SENTENCE = 0.85
"""Two source sentences this similar (share of matching characters) are one sentence printed twice."""


def _likeness(a: str, b: str) -> float:
    """How alike two sentences are, 0 to 1 (difflib: no rapidfuzz import on the `ask` path)."""
    import difflib  # only when an entry cites several sentences; load_knowledge never needs it

    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def _fuller(sentence: str, other: str) -> bool:
    """Whether `sentence` is the better copy to quote: a full sentence over a caption (which
    has no full stop), else the longer."""
    ends = sentence.rstrip("’”'\"").endswith((".", "!", "?"))
    other_ends = other.rstrip("’”'\"").endswith((".", "!", "?"))
    return ends > other_ends or (ends == other_ends and len(sentence) > len(other))


@dataclass(frozen=True)
class KnowledgeBase:
    """A validated knowledge base: the story, its entries and synonym groups."""

    story: Story
    entries: tuple[Entry, ...]
    synonyms: tuple[tuple[str, ...], ...] = ()
    root: Path | None = None
    warnings: tuple[Problem, ...] = ()

    @cached_property
    def by_id(self) -> dict[str, Entry]:
        """Entries keyed by id."""
        return {e.id: e for e in self.entries}

    def get(self, entry_id: str) -> Entry | None:
        """The entry with this id, or None."""
        return self.by_id.get(entry_id)

    def quotes(self, entry: Entry) -> list[str]:
        """An entry's source sentences exactly as the article prints them, each once: where the
        article repeats a sentence almost word for word (a photo caption, then the text), the
        full sentence is kept."""
        kept: list[str] = []
        for sentence in map(self.story.verbatim, entry.sources):
            same = next((i for i, k in enumerate(kept) if _likeness(k, sentence) >= SAME_SENTENCE), None)
            if same is None:
                kept.append(sentence)
            elif _fuller(sentence, kept[same]):
                kept[same] = sentence
        return kept

    def quote(self, entry: Entry) -> str:
        """`quotes` as one text, a sentence per line."""
        return "\n".join(self.quotes(entry))

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)


# --------------------------------------------------------------------------- loading


class _LineLoader(_BaseLoader):
    """Safe loader that records the line of every mapping and of each of its keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        mapping["__line__"] = node.start_mark.line + 1
        mapping["__lines__"] = {
            key.value: key.start_mark.line + 1 for key, _ in node.value if isinstance(key, yaml.ScalarNode)
        }
        return mapping


class _NotPlain(Exception):
    """The YAML uses something the fast reader leaves to PyYAML (aliases, tags, merge keys)."""


_STR_TAG = "tag:yaml.org,2002:str"
_SCALAR, _ALIAS, _SEQUENCE, _SEQUENCE_END, _MAPPING, _MAPPING_END = (
    yaml.ScalarEvent, yaml.AliasEvent, yaml.SequenceStartEvent, yaml.SequenceEndEvent,
    yaml.MappingStartEvent, yaml.MappingEndEvent,
)  # fmt: skip
_IMPLICIT = _BaseLoader.yaml_implicit_resolvers
"""First characters of plain scalars that may be something other than text (true, 12, ~)."""


def _fast_yaml(text: str) -> Any:
    """What `yaml.load(text, Loader=_LineLoader)` returns, built straight from the C parser's
    events: PyYAML's own composer and constructor spend most of their time in Python on
    nodes a plain entries file doesn't need. Anything beyond plain mappings, lists and
    scalars (aliases, explicit tags, merge keys, several documents) raises `_NotPlain`, and
    so does any error, so that PyYAML reads the file (and reports the error) as before."""
    loader = _BaseLoader(text)
    try:
        get = loader.get_event
        if type(get()) is not yaml.StreamStartEvent:
            raise _NotPlain
        event = get()
        if type(event) is yaml.StreamEndEvent:
            return None
        if type(event) is not yaml.DocumentStartEvent:
            raise _NotPlain
        data = _fast_node(loader, get, get())
        if type(get()) is not yaml.DocumentEndEvent or type(get()) is not yaml.StreamEndEvent:
            raise _NotPlain
        return data
    finally:
        loader.dispose()


def _fast_node(loader: Any, get: Any, event: Any) -> Any:
    kind = type(event)
    if kind is _SCALAR:
        return _fast_scalar(loader, event)
    if kind is _ALIAS or (event.tag is not None and event.tag != "!"):
        raise _NotPlain
    if kind is _SEQUENCE:
        items = []
        event = get()
        while type(event) is not _SEQUENCE_END:
            text = event.value if type(event) is _SCALAR and event.tag is None else None
            if text and text[0] not in _IMPLICIT:
                items.append(text)  # text that cannot be read as anything else: the common case
            else:
                items.append(_fast_node(loader, get, event))
            event = get()
        return items
    if kind is not _MAPPING:
        raise _NotPlain
    mapping: dict[Any, Any] = {}
    lines: dict[str, int] = {}
    start = event.start_mark.line + 1
    event = get()
    while type(event) is not _MAPPING_END:
        if type(event) is not _SCALAR:
            raise _NotPlain  # a list or mapping as a key
        key = event.value
        if event.tag is not None or not key or key[0] in _IMPLICIT:
            key = _fast_scalar(loader, event)
            if key == "<<" and event.implicit[0]:
                raise _NotPlain  # a merge key
        value = get()
        text = value.value if type(value) is _SCALAR and value.tag is None else None
        if text and text[0] not in _IMPLICIT:
            mapping[key] = text
        else:
            mapping[key] = _fast_node(loader, get, value)
        mark: Any = event.start_mark  # the C parser always sets it
        lines[event.value] = mark.line + 1
        event = get()
    mapping["__line__"] = start  # as _LineLoader.construct_mapping records them
    mapping["__lines__"] = lines
    return mapping


_resolved: dict[str, str] = {}
"""Tags of plain scalars resolved so far (a plain scalar's tag depends on its text only)."""


def _fast_scalar(loader: Any, event: Any) -> Any:
    value: str = event.value
    tag = event.tag
    if tag is None or tag == "!":
        if event.implicit[0] and (not value or value[0] in _IMPLICIT):
            tag = _resolved.get(value)
            if tag is None:
                tag = loader.resolve(yaml.ScalarNode, value, event.implicit)
                if len(value) < 32 and len(_resolved) < 4096:  # keys and short words repeat
                    _resolved[value] = tag
        else:
            tag = _STR_TAG
    elif tag != _STR_TAG:
        raise _NotPlain  # an explicit tag: !!python/..., !!binary, a custom one
    if tag == _STR_TAG:
        return value
    node = yaml.ScalarNode(tag, value, event.start_mark, event.end_mark, event.style)
    return loader.construct_object(node, deep=True)


def _read_yaml(path: Path, display: str, problems: list[Problem]) -> Any:
    """Parse one YAML file safely; on failure record a problem and return None."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        problems.append(Problem(f"not UTF-8 text ({exc.reason})", file=display))
        return None
    except OSError as exc:
        problems.append(Problem(f"cannot read the file: {exc.strerror}", file=display))
        return None
    try:
        return _fast_yaml(text)
    except Exception:  # anything unusual: PyYAML reads it, as it always did
        pass
    try:
        return yaml.load(text, Loader=_LineLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        what = " ".join(part for part in (exc.context, exc.problem) if part)
        if "python/" in what or "could not determine a constructor" in what:
            what = f"tags such as !!python/... are not allowed (only plain YAML is read): {what}"
        problems.append(Problem(f"invalid YAML: {what}", file=display, line=line))
    except yaml.YAMLError as exc:
        problems.append(Problem(f"invalid YAML: {exc}", file=display))
    return None


def _strip_meta(value: Any) -> Any:
    """Drop the line bookkeeping our loader adds, recursively."""
    if isinstance(value, dict):
        return {k: _strip_meta(v) for k, v in value.items() if k not in ("__line__", "__lines__")}
    if isinstance(value, list):
        return [_strip_meta(v) for v in value]
    return value


def _scalar_kind(value: Any) -> str:
    """How YAML read an unquoted scalar that is not text, in a curator's words."""
    if isinstance(value, bool):
        return "yes/no"
    if isinstance(value, int | float):
        return "a number"
    return "a date"


def _text(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


class _EntryChecker:
    """Turns raw YAML mappings into Entries, recording every problem with its place."""

    def __init__(self, story: Story, problems: list[Problem]) -> None:
        self.story = story
        self.problems = problems

    def _problem(
        self,
        message: str,
        raw: Mapping[str, Any],
        fieldname: str | None,
        where: tuple[str | None, str | None],
    ) -> None:
        file, entry_id = where
        lines = raw.get("__lines__", {}) if isinstance(raw, Mapping) else {}
        line = lines.get(fieldname) if fieldname else None
        if line is None and isinstance(raw, Mapping):
            line = raw.get("__line__")
        self.problems.append(Problem(message, file=file, line=line, entry=entry_id, field=fieldname))

    def _string(
        self,
        raw: Mapping[str, Any],
        name: str,
        limit: int,
        where: tuple[str | None, str | None],
        *,
        required: bool,
    ) -> str | None:
        value = raw.get(name)
        if value is None:
            if required:
                self._problem(f"'{name}' is missing", raw, None if name not in raw else name, where)
            return None
        if type(value) is str:  # the common case, first
            pass
        elif isinstance(value, datetime | date) and name == "added_at":
            return value.isoformat()
        if not isinstance(value, str):
            self._problem(f"'{name}' must be text, not {type(value).__name__}", raw, name, where)
            return None
        value = " ".join(value.split())  # collapse_whitespace, faster (see _compare_form)
        if not value:
            if required:
                self._problem(f"'{name}' is empty", raw, name, where)
            return None
        if len(value) > limit:
            self._problem(f"'{name}' is {len(value)} characters; keep it under {limit}", raw, name, where)
        return value

    def _string_list(
        self,
        raw: Mapping[str, Any],
        name: str,
        limit: int,
        max_items: int,
        where: tuple[str | None, str | None],
    ) -> tuple[str, ...]:
        value = raw.get(name)
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            self._problem(f"'{name}' must be a list of text, not {type(value).__name__}", raw, name, where)
            return ()
        items: list[str] = []
        for i, item in enumerate(value, 1):
            # collapse_whitespace (see _compare_form); empty exactly when item.strip() is.
            if isinstance(item, bool | int | float | datetime | date):
                # YAML reads 1918, 3.5, yes and 2017-08-21 as numbers, booleans and dates; the
                # curator's exact spelling is lost, so ask for quotes rather than guess it back.
                self._problem(
                    f"item {i} of '{name}' reads as {_scalar_kind(item)} ({_text(item)}), not text; "
                    f'put it in quotes, e.g. "{_text(item)}"',
                    raw,
                    name,
                    where,
                )
                continue
            item = " ".join(item.split()) if isinstance(item, str) else ""
            if not item:
                self._problem(f"item {i} of '{name}' must be non-empty text", raw, name, where)
                continue
            if len(item) > limit:
                self._problem(
                    f"item {i} of '{name}' is {len(item)} characters; keep it under {limit}", raw, name, where
                )
            items.append(item)
        if len(items) > max_items:
            self._problem(f"'{name}' has {len(items)} items; at most {max_items}", raw, name, where)
        return tuple(items)

    def check(self, raw: Any, file: str | None, index: int) -> Entry | None:
        """Validate one raw entry; return it as an Entry if it has no errors."""
        before = len(self.problems)
        if not isinstance(raw, Mapping):
            self.problems.append(
                Problem(f"entry #{index} must be a mapping of fields, not {type(raw).__name__}", file=file)
            )
            return None
        raw_id = raw.get("id")
        entry_id = raw_id if isinstance(raw_id, str) and raw_id.strip() else f"#{index}"
        where = (file, entry_id)
        for key in raw:
            if key not in ENTRY_FIELDS and not str(key).startswith("__"):
                self._problem(
                    f"unknown field '{key}' (known: {', '.join(ENTRY_FIELDS)})", raw, str(key), where
                )
        ident = self._string(raw, "id", MAX_ID_CHARS, where, required=True)
        if ident is not None and not ID_PATTERN.match(ident):
            self._problem(
                "'id' must be a slug: lowercase letters, digits and single hyphens, e.g. 'who-paid-for-it'",
                raw,
                "id",
                where,
            )
        question = self._string(raw, "question", MAX_QUESTION_CHARS, where, required=True)
        answer = self._string(raw, "answer", MAX_ANSWER_CHARS, where, required=True)
        qtype = self._string(raw, "type", 16, where, required=False)
        if qtype is not None and qtype not in QUESTION_TYPES:
            self._problem(f"'type' must be one of {', '.join(QUESTION_TYPES)}", raw, "type", where)
        alternates = self._string_list(raw, "alternates", MAX_QUESTION_CHARS, MAX_ALTERNATES, where)
        for name, texts in (("question", [question]), ("answer", [answer]), ("alternates", alternates)):
            link = next((m for t in texts if t and (m := LINK.search(t))), None)
            if link is not None:
                self._problem(
                    f"'{name}' contains a link ({link.group(0)}…): entries may not link anywhere, "
                    "since readers would follow it under the bot's name. Say it in words; the "
                    "quoted source sentence is the evidence.",
                    raw,
                    name,
                    where,
                )
        tags = self._string_list(raw, "tags", MAX_TAG_CHARS, MAX_TAGS, where)
        added_by = self._string(raw, "added_by", MAX_NAME_CHARS, where, required=False)
        added_at = self._string(raw, "added_at", 40, where, required=False)
        sources = self._string_list(raw, "source", MAX_SOURCE_CHARS, 5, where)
        if "source" not in raw or raw.get("source") is None:
            self._problem(
                "'source' is missing: copy the article sentence the answer rests on", raw, None, where
            )
        elif not sources and not isinstance(raw.get("source"), list | str):
            pass  # type problem already recorded
        elif not sources:
            self._problem(
                "'source' is empty: copy the article sentence the answer rests on", raw, "source", where
            )
        for src in sources:
            if not self.story.contains(src):
                closest = self.story.closest_sentence(src)
                hint = f' Closest article sentence: "{closest}"' if closest else ""
                self._problem(
                    f'source is not in the article word for word: "{_clip(src)}".{hint}', raw, "source", where
                )
        if len(self.problems) > before or ident is None or question is None or answer is None:
            return None
        return Entry(
            id=ident, question=question, answer=answer, sources=sources, alternates=alternates,
            type=qtype, tags=tags, added_by=added_by, added_at=added_at,
            file=file, line=raw.get("__line__"),
        )  # fmt: skip


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slugify(text: str, taken: Iterable[str] = (), limit: int = 48) -> str:
    """An id for a new entry from its question: 'How far did they go?' -> 'how-far-did-they-go'."""
    words = re.findall(r"[a-z0-9]+", strip_marks(text).casefold())
    kept: list[str] = []
    for word in words:  # whole words only: "how-far-did-they-go", never "how-far-did-th"
        if len("-".join([*kept, word])) > limit:
            break
        kept.append(word)
    base = "-".join(kept) or (words[0][:limit] if words else "") or "entry"
    taken = set(taken)
    slug, n = base, 2
    while slug in taken:
        slug = f"{base}-{n}"
        n += 1
    return slug


def phrasing_key(text: str) -> str:
    """A phrasing's identity for duplicate checks: casefolded words only."""
    # Straightening quotes and collapsing spaces (normalise_for_compare) changes no word
    # character, so the words are found in the text as it is.
    return " ".join(_WORDS.findall(text.casefold()))


def _cross_check(entries: list[Entry], problems: list[Problem]) -> None:
    """Duplicate ids and the same normalised phrasing in two entries."""
    seen_ids: dict[str, Entry] = {}
    seen_phrasings: dict[str, Entry] = {}
    for entry in entries:
        first = seen_ids.get(entry.id)
        if first is not None:
            problems.append(
                Problem(
                    f"duplicate id: also used at {first.file}:{first.line}",
                    file=entry.file,
                    line=entry.line,
                    entry=entry.id,
                    field="id",
                )
            )
            continue
        seen_ids[entry.id] = entry
        for phrasing in entry.phrasings:
            key = phrasing_key(phrasing)
            other = seen_phrasings.setdefault(key, entry)
            if other.id != entry.id:
                problems.append(
                    Problem(
                        f"the phrasing \"{phrasing}\" is also in entry '{other.id}' ({other.file}:{other.line}); the matcher cannot tell them apart",
                        file=entry.file,
                        line=entry.line,
                        entry=entry.id,
                        field="question",
                    )
                )


def near_duplicates(entries: Iterable[Entry], threshold: float = NEAR_DUPLICATE_RATIO) -> list[Problem]:
    """Warnings for phrasings of different entries that are nearly the same."""
    from rapidfuzz import fuzz, process

    owners: list[Entry] = []
    keys: list[str] = []
    for entry in entries:
        for phrasing in entry.phrasings:
            owners.append(entry)
            keys.append(phrasing_key(phrasing))
    if not keys:
        return []
    warnings: list[Problem] = []
    reported: set[tuple[str, str]] = set()
    pairs = (
        (i, j)
        for i, key in enumerate(keys)
        for _, _, j in process.extract(key, keys, scorer=fuzz.ratio, score_cutoff=threshold, limit=None)
    )
    for i, j in pairs:
        a, b = owners[i], owners[j]
        if i >= j or a.id == b.id or (a.id, b.id) in reported:
            continue
        reported.add((a.id, b.id))
        warnings.append(
            Problem(
                f'"{keys[i]}" is nearly the same as "{keys[j]}" in entry \'{b.id}\' ({b.file}:{b.line}); the matcher may confuse them',
                file=a.file,
                line=a.line,
                entry=a.id,
                severity="warning",
            )
        )
    return warnings


def _load_story(root: Path, problems: list[Problem]) -> Story | None:
    story_path = root / STORY_FILE
    if not story_path.exists():
        problems.append(Problem(f"no {STORY_FILE} here: is {root} a knowledge folder?", file=str(story_path)))
        return None
    raw = _read_yaml(story_path, str(story_path), problems)
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.append(Problem("must be a mapping with headline, article, version", file=str(story_path)))
        return None
    article_name = raw.get("article", "article.txt")
    article_path = root / str(article_name)
    try:
        text = article_path.read_text(encoding="utf-8")
    except OSError as exc:
        problems.append(Problem(f"cannot read the article: {exc.strerror}", file=str(article_path)))
        return None
    headline = raw.get("headline") or (text.strip().splitlines() or [""])[0]
    story = Story(
        headline=collapse_whitespace(str(headline)),
        text=text,
        version=_text(raw.get("version", "1")),
        checked=_text(raw["checked"]) if raw.get("checked") else None,
    )
    recorded = raw.get("article_sha256")
    if recorded and recorded != story.sha256:
        problems.append(
            Problem(
                f"{article_name} changed since the entries were checked (article_sha256 differs): check the sources, then update version, checked and article_sha256",
                file=str(story_path),
                line=raw.get("__lines__", {}).get("article_sha256"),
                severity="warning",
            )
        )
    return story


def _load_synonyms(root: Path, problems: list[Problem]) -> tuple[tuple[str, ...], ...]:
    path = root / SYNONYMS_FILE
    if not path.exists():
        return ()
    raw = _read_yaml(path, str(path), problems)
    if raw is None:
        return ()
    groups_raw = raw.get("groups") if isinstance(raw, dict) else raw
    if not isinstance(groups_raw, list):
        problems.append(Problem("expected 'groups:' with a list of word lists", file=str(path)))
        return ()
    groups: list[tuple[str, ...]] = []
    owner: dict[str, int] = {}
    for i, group in enumerate(groups_raw, 1):
        if not isinstance(group, list) or not all(isinstance(w, str) and w.strip() for w in group):
            problems.append(
                Problem(f"group {i} must be a list of words, e.g. [ship, vessel]", file=str(path))
            )
            continue
        words = tuple(collapse_whitespace(w.casefold()) for w in group)
        for word in words:
            if word in owner and owner[word] != i:
                problems.append(
                    Problem(
                        f"'{word}' is in group {owner[word]} and group {i}; a word may be in one group only",
                        file=str(path),
                    )
                )
            owner[word] = i
        groups.append(words)
    return tuple(groups)


def entry_files(root: Path) -> list[Path]:
    """The entry files of a knowledge folder, in load order."""
    folder = root / ENTRIES_DIR
    if not folder.is_dir():
        return []
    return [p for p in sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml")) if p.is_file()]


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many objects that all stay alive
    (a knowledge base, a matcher's index): its passes over them find nothing to free and
    cost a sixth of the time. Reference counting still frees everything as usual."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_knowledge(root: Path | str, *, lint: bool = False) -> KnowledgeBase:
    """Load and validate a knowledge folder; raise KnowledgeError listing every problem.

    With `lint`, also look for near-duplicate phrasings (slower; warnings only).
    """
    with paused_gc():
        return _load_knowledge(Path(root), lint=lint)


RawEntry = tuple[str, int, Any]
"""Where an entry was read (a file, or a database revision), its position there, its fields."""


def load_with_entries(root: Path | str, records: Iterable[RawEntry]) -> KnowledgeBase:
    """A knowledge base from a folder's story, article and synonyms, and entries from elsewhere
    (a database): validated exactly as files are."""
    with paused_gc():
        return _load_knowledge(Path(root), lint=False, records=records)


def read_entry_files(root: Path, problems: list[Problem]) -> Iterator[RawEntry]:
    """The raw entries of a folder's entry files, in order (file problems go to `problems`)."""
    for path in entry_files(root):
        display = str(path)
        data = _read_yaml(path, display, problems)
        if data is None:
            continue
        if isinstance(data, dict) and "entries" in data:
            data = data["entries"]
        if not isinstance(data, list):
            problems.append(
                Problem("an entries file must hold a list of entries ('- id: ...')", file=display)
            )
            continue
        for index, raw in enumerate(data, 1):
            yield display, index, raw


def _load_knowledge(root: Path, *, lint: bool, records: Iterable[RawEntry] | None = None) -> KnowledgeBase:
    root = Path(root)
    problems: list[Problem] = []
    story = _load_story(root, problems)
    synonyms = _load_synonyms(root, problems)
    entries: list[Entry] = []
    if story is not None:
        checker = _EntryChecker(story, problems)
        for where, index, raw in records if records is not None else read_entry_files(root, problems):
            entry = checker.check(raw, where, index)
            if entry is not None:
                entries.append(entry)
        _cross_check(entries, problems)
    errors = [p for p in problems if p.severity == "error"]
    if errors or story is None:
        raise KnowledgeError(problems)
    warnings = [p for p in problems if p.severity == "warning"]
    if lint:
        warnings.extend(near_duplicates(entries))
    return KnowledgeBase(
        story=story, entries=tuple(entries), synonyms=synonyms, root=root, warnings=tuple(warnings)
    )


def check_new_entry(kb: KnowledgeBase, raw: Mapping[str, Any], *, replacing: str | None = None) -> Entry:
    """Validate one entry against a loaded knowledge base, exactly as loading would."""
    problems: list[Problem] = []
    entry = _EntryChecker(kb.story, problems).check(dict(raw), None, 1)
    if entry is not None:
        others = [e for e in kb.entries if e.id != replacing]
        _cross_check([*others, entry], problems)
    if problems or entry is None:
        raise KnowledgeError([Problem(p.message, entry=p.entry, field=p.field) for p in problems])
    return entry


# --------------------------------------------------------------------------- coverage


_CAPTION_MARK = re.compile(r"\((?:pictured|left|right|centre|center|above|below|top|bottom)\)", re.IGNORECASE)


def _coverage_key(sentence: str) -> str:
    text = normalise_for_compare(sentence).translate(str.maketrans("–—", "--")).casefold()
    text = _CAPTION_MARK.sub("", text)  # "(pictured)", "(left)": a caption's pointer, not its words
    return " ".join(re.findall(r"\w+", text))


FEW_PHRASINGS = 10
"""An entry with fewer phrasings (its question and alternates) than this is answered less often:
docs/curating.md, "How many phrasings an entry needs", has the measurements."""


def thin_entries(kb: KnowledgeBase, at_least: int = FEW_PHRASINGS) -> list[Entry]:
    """Entries with fewer than `at_least` phrasings, fewest first: where another alternate pays."""
    return sorted((e for e in kb.entries if len(e.phrasings) < at_least), key=lambda e: len(e.phrasings))


def uncited_sentences(kb: KnowledgeBase) -> list[str]:
    """Distinct article sentences that no entry's source cites (repeated captions count once)."""
    from rapidfuzz import fuzz

    cited = [normalise_for_compare(s) for e in kb.entries for s in e.sources]
    covered: list[str] = []
    uncovered: list[tuple[str, str]] = []
    for sentence in kb.story.sentences:
        norm = normalise_for_compare(sentence)
        key = _coverage_key(sentence)
        if any(norm in c or c in norm for c in cited):
            covered.append(key)
            continue
        if any(fuzz.ratio(key, k) >= 90 for k in covered) or any(
            fuzz.ratio(key, k) >= 90 for _, k in uncovered
        ):
            continue
        uncovered.append((sentence, key))
    # A caption that repeats a covered sentence counts as covered even when it comes first.
    return [s for s, k in uncovered if not any(fuzz.ratio(k, c) >= 90 for c in covered)]


# --------------------------------------------------------------------------- locating


def bundled_knowledge() -> Path:
    """The knowledge folder shipped with the package (or the repository's, from a checkout)."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "seed_knowledge", here.parent / "knowledge"):
        if (candidate / STORY_FILE).exists():
            return candidate
    raise KnowledgeError(f"no bundled knowledge base found next to {here}")


def resolve_knowledge_dir(configured: str | Path | None, *, seed: bool = False) -> Path:
    """Pick the knowledge folder: the configured one, ./knowledge, else the bundled seed.

    With `seed`, a configured folder that is missing or empty (say, a fresh Docker
    volume) is first filled with a copy of the bundled knowledge base. A folder that
    has files but no story.yaml is left alone, so a mistyped path is reported, not filled.
    """
    if configured:
        path = Path(configured)
        if seed and (not path.exists() or (path.is_dir() and not any(path.iterdir()))):
            path.mkdir(parents=True, exist_ok=True)
            shutil.copytree(
                bundled_knowledge(),
                path,
                dirs_exist_ok=True,
                ignore=shutil.ignore_patterns("*.lock", "__pycache__"),
            )
        return path
    local = Path("knowledge")
    if (local / STORY_FILE).exists():
        return local
    return bundled_knowledge()
