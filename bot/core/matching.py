"""Match a reader's question to a knowledge-base entry: answer, suggest, or say "unknown".

A pipeline of small stages, each testable alone:

1. **Read** (`bot.core.lexical.TermMatcher.analyse`): tidy the chat message, type the question
   (who, when, how many, ...), stem and fold its words into terms, and rank the entries that share
   terms with it. Small talk ("thanks", "who made you") stops here.
2. **Understand paraphrase** (`bot.core.embedding`): cosine similarity of the question's sentence
   embedding to each entry's phrasings, answer and source sentences; and to the phrasings again
   through a `Projection` learnt on how readers of other stories ask.
3. **Candidates**: the entries ranked best by either stage.
4. **Features** per candidate (`FEATURES`): the similarities, the lexical score, each one's margin
   over the other candidates, how close the wording is (rapidfuzz), and the lexical guards (a name
   or number the entry never mentions, a type of answer it cannot give, ...).
5. **Decide** (`DecisionModel`): a logistic regression over the features and their pairwise
   products, trained on other stories than the one it
   is used on (``scripts/train_decision.py``), gives the probability that a candidate answers the
   question. The best is answered from `answer_at`, offered as "did you mean" from `suggest_at`;
   both thresholds were chosen on a development story for a stated precision (docs/matching.md).

Nothing here knows the shipped story: its words live in ``knowledge/``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from rapidfuzz import fuzz, process

from bot.core.embedding import (
    EmbeddingCache,
    Encoder,
    Projection,
    WordVectors,
    default_encoder,
    default_projection,
    default_words,
)
from bot.core.english import STOPWORDS
from bot.core.knowledge import Entry, KnowledgeBase, phrasing_key
from bot.core.lexical import (
    ABOUT_ME,
    GUARDS,
    NO_CONTENT,
    THANKS,
    VAGUE,
    Analysis,
    TermMatcher,
    synonym_clashes,
    words,
)

__all__ = [
    "ABOUT_ME",
    "FEATURES",
    "MAX_SUGGESTIONS",
    "NO_CONTENT",
    "THANKS",
    "VAGUE",
    "Candidate",
    "DecisionModel",
    "Matcher",
    "Result",
    "synonym_clashes",
]

Outcome = Literal["answer", "suggest", "unknown"]

MAX_SUGGESTIONS = 3
"""At most this many "did you mean" entries (and buttons in Discord)."""
POOL = 6
"""Candidates taken from each of the lexical and the semantic ranking; margins are measured
against all of them."""
SHORTLIST = 2
"""Of those, the best this many by meaning and by terms are scored by the decision model (it is
trained on such hard candidates only: +1 point answered right on held-out stories)."""
DECISION_FILE = Path(__file__).resolve().parent / "data" / "decision.json"
WORD_FOR_WORD = "word for word one of its phrasings"
"""The reason of an answer given because the question is one of the entry's phrasings."""

FEATURES = (
    "sem_phrasing",  # best cosine of the question to one of the entry's phrasings
    "sem_answer",  # cosine to the entry's answer
    "sem_source",  # best cosine to one of its article sentences
    "sem_margin",  # sem_phrasing minus the best other candidate's
    "lexical",  # the term matcher's score, 0-1 (0 when it shares no term)
    "lexical_margin",  # lexical minus the best other candidate's
    "wording",  # rapidfuzz token_set_ratio to the closest phrasing, 0-1
    "unknown_share",  # share of the question's terms the knowledge base never uses
    "foreign_share",  # share of the question's terms the article itself never uses
    "sem_z",  # sem_phrasing in standard deviations above the mean over all entries
    "answer_z",  # sem_answer likewise
    "sem_qa",  # cosine to the entry's question and answer read together
    "sem_centroid",  # cosine to the mean of the entry's phrasing vectors: the entry's gist
    "length",  # log of the question's word count: long chatty messages score lower everywhere
    "phrasings",  # log of the entry's phrasing count: the best of 20 phrasings is close by chance
    # Word by word (each word's vector from `WordVectors`; a term the entry uses counts 1):
    "word_gap",  # weighted mean of 1 - each term's best cosine to one of the entry's words
    "word_min",  # the lowest of those best cosines: the question word least like the entry's
    "answer_gap",  # word_gap against the words of the answer and article sentences only
    "answer_min",  # word_min likewise
    # Each similarity minus the best other candidate's: evidence for this entry over the rest.
    "answer_margin",
    "qa_margin",
    "centroid_margin",
    "source_margin",
    "wording_margin",
    # The question's best cosine to one of the entry's phrasings after the learnt `Projection`
    # (bot.core.embedding), which bends the model towards how readers ask; and its margin.
    "proj_phrasing",
    "proj_margin",
    "proj_centroid",
    "proj_centroid_margin",
    *GUARDS,  # 1.0 when the entry lacks what the question asks for (bot.core.lexical)
)


MARGINS = (
    ("sem_phrasing", "sem_margin"),
    ("lexical", "lexical_margin"),
    ("sem_answer", "answer_margin"),
    ("sem_qa", "qa_margin"),
    ("sem_centroid", "centroid_margin"),
    ("sem_source", "source_margin"),
    ("wording", "wording_margin"),
    ("proj_phrasing", "proj_margin"),
    ("proj_centroid", "proj_centroid_margin"),
)
"""Features whose margin over the best other candidate is a feature too."""


@dataclass(frozen=True)
class Candidate:
    """One entry, the probability that it answers the question, and the evidence."""

    entry: Entry
    score: float  # probability x 100, for display
    phrasing: str  # the entry's phrasing closest to the question
    features: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def probability(self) -> float:
        """The decision model's probability that this entry answers the question."""
        return self.score / 100.0


@dataclass(frozen=True)
class Result:
    """What the matcher concluded about one question."""

    question: str
    outcome: Outcome
    candidates: tuple[Candidate, ...] = ()
    reason: str = ""

    @property
    def best(self) -> Candidate | None:
        """The answering candidate (only when the outcome is "answer")."""
        return self.candidates[0] if self.outcome == "answer" and self.candidates else None

    @property
    def suggestions(self) -> tuple[Candidate, ...]:
        """The "did you mean" candidates (only when the outcome is "suggest")."""
        return self.candidates if self.outcome == "suggest" else ()

    @property
    def small_talk(self) -> bool:
        """Thanks, a greeting, a question about the bot: not a question the knowledge base lacks."""
        return self.reason in (ABOUT_ME, THANKS, NO_CONTENT, VAGUE)


def pair_terms(z: Sequence[float]) -> list[float]:
    """A standardised feature vector and every product of two of its values (squares included):
    the inputs of a logistic regression that can weigh one feature by another ("a close wording
    counts for less when the entry lacks a name the question gives")."""
    n = len(z)
    return [*z, *(z[i] * z[j] for i in range(n) for j in range(i, n))]


def pair_names(names: Sequence[str]) -> list[tuple[str, ...]]:
    """The features behind each of `pair_terms`' values."""
    n = len(names)
    return [(name,) for name in names] + [(names[i], names[j]) for i in range(n) for j in range(i, n)]


@dataclass(frozen=True)
class DecisionModel:
    """A logistic regression over `FEATURES` and their pairwise products, with the two thresholds.

    Features are clipped to the range seen in training (a linear model must not extrapolate: a
    knowledge base unlike the training ones can give values no training question had), then
    standardised; the products are standardised again (`pair_mean`, `pair_scale`)."""

    names: tuple[str, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    pair_mean: tuple[float, ...]
    pair_scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    answer_at: float
    suggest_at: float
    trained_on: tuple[str, ...] = ()

    @classmethod
    def load(cls, path: Path = DECISION_FILE) -> DecisionModel:
        """Read a model written by scripts/train_decision.py."""
        raw = json.loads(path.read_text())
        return cls(
            names=tuple(raw["features"]),
            low=tuple(raw["low"]),
            high=tuple(raw["high"]),
            mean=tuple(raw["mean"]),
            scale=tuple(raw["scale"]),
            pair_mean=tuple(raw["pair_mean"]),
            pair_scale=tuple(raw["pair_scale"]),
            weights=tuple(raw["weights"]),
            bias=float(raw["bias"]),
            answer_at=float(raw["answer_at"]),
            suggest_at=float(raw["suggest_at"]),
            trained_on=tuple(raw.get("trained_on", ())),
        )

    def inputs(self, features: dict[str, float]) -> list[float]:
        """The regression's inputs for one candidate's features."""
        z = [
            (min(max(features.get(name, 0.0), low), high) - mean) / scale
            for name, low, high, mean, scale in zip(
                self.names, self.low, self.high, self.mean, self.scale, strict=True
            )
        ]
        return [(v - m) / s for v, m, s in zip(pair_terms(z), self.pair_mean, self.pair_scale, strict=True)]

    def probabilities(self, rows: Sequence[dict[str, float]]) -> NDArray[np.float64]:
        """P(each candidate answers the question): `probability` for many rows at once."""
        n = len(self.names)
        if not rows:
            return np.zeros(0)
        x = np.array([[f.get(name, 0.0) for name in self.names] for f in rows], dtype=np.float64)
        z = (np.clip(x, self.low, self.high) - np.asarray(self.mean)) / np.asarray(self.scale)
        upper = np.triu_indices(n)  # the order of pair_terms: (0,0), (0,1), ... (1,1), ...
        terms = np.hstack([z, (z[:, :, None] * z[:, None, :])[:, upper[0], upper[1]]])
        inputs = (terms - np.asarray(self.pair_mean)) / np.asarray(self.pair_scale)
        logits = self.bias + inputs @ np.asarray(self.weights)
        chances: NDArray[np.float64] = 1.0 / (1.0 + np.exp(-np.clip(logits, -700.0, 700.0)))
        return chances

    def probability(self, features: dict[str, float]) -> float:
        """P(this candidate answers the question)."""
        z = self.bias + sum(w * v for w, v in zip(self.weights, self.inputs(features), strict=True))
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0

    def contributions(self, features: dict[str, float]) -> list[tuple[str, float]]:
        """Each feature's push on the log-odds, largest first: why the model decided. A product's
        push is shared equally between its two features."""
        pushes = dict.fromkeys(self.names, 0.0)
        for owners, w, v in zip(pair_names(self.names), self.weights, self.inputs(features), strict=True):
            for name in owners:
                pushes[name] += w * v / len(owners)
        return sorted(pushes.items(), key=lambda p: abs(p[1]), reverse=True)


@lru_cache(maxsize=1)
def default_decision() -> DecisionModel:
    """The shipped decision model."""
    return DecisionModel.load()


class Matcher:
    """Everything needed to match questions against one knowledge base; immutable once built."""

    def __init__(
        self,
        kb: KnowledgeBase,
        *,
        encoder: Encoder | None = None,
        decision: DecisionModel | None = None,
        cache: EmbeddingCache | None = None,
        word_vectors: WordVectors | None = None,
        projection: Projection | None = None,
    ) -> None:
        self.kb = kb
        self.projection = projection if projection is not None else default_projection()
        self.terms = TermMatcher(kb)
        self.decision = decision if decision is not None else default_decision()
        self.encoder = encoder if encoder is not None else default_encoder()
        cache = cache if cache is not None else EmbeddingCache(self.encoder)
        texts: list[str] = []
        phrasing_owner: list[int] = []
        source_owner: list[int] = []
        self._phrasings: list[str] = []
        for index, entry in enumerate(kb.entries):
            for phrasing in entry.phrasings:
                texts.append(phrasing)
                self._phrasings.append(phrasing)
                phrasing_owner.append(index)
        n_phrasings = len(texts)
        texts.extend(entry.answer for entry in kb.entries)
        texts.extend(f"{entry.question} {entry.answer}" for entry in kb.entries)
        for index, entry in enumerate(kb.entries):
            for sentence in entry.sources:
                texts.append(sentence)
                source_owner.append(index)
        n_sentences = len(texts)
        # The base's own words, for the word-by-word features: common words from the table,
        # the rest (names, rare words) encoded with the base's texts and cached with them.
        self.word_vectors = word_vectors if word_vectors is not None else default_words()
        self._vocab: dict[str, int] = {}
        self._entry_words: list[NDArray[np.intp]] = []
        self._told_words: list[NDArray[np.intp]] = []
        for entry in kb.entries:
            told = _content_words((entry.answer, *entry.sources))
            asked = _content_words(entry.phrasings)
            self._entry_words.append(self._word_rows(asked + told))
            self._told_words.append(self._word_rows(told))
        rare = [w for w in self._vocab if self.word_vectors.get(w) is None]
        texts.extend(rare)
        vectors = cache.vectors(texts) if texts else np.zeros((0, self.encoder.dims), np.float32)
        encoded = dict(zip(rare, vectors[n_sentences:], strict=True))
        self._word_matrix = np.zeros((len(self._vocab), self.encoder.dims), np.float32)
        for word, row in self._vocab.items():
            vector = self.word_vectors.get(word)
            self._word_matrix[row] = encoded[word] if vector is None else vector
        vectors = vectors[:n_sentences]
        n = len(kb.entries)
        self._phrasing_vectors = vectors[:n_phrasings]
        self._projected_phrasings = self.projection(self._phrasing_vectors)
        self._answer_vectors = vectors[n_phrasings : n_phrasings + n]
        self._qa_vectors = vectors[n_phrasings + n : n_phrasings + 2 * n]
        self._source_vectors = vectors[n_phrasings + 2 * n :]
        self._phrasing_owner = np.asarray(phrasing_owner, dtype=np.intp)
        self._source_owner = np.asarray(source_owner, dtype=np.intp)
        # Each entry's phrasings and sources are contiguous: reduceat over their first rows.
        self._phrasing_starts = _starts(self._phrasing_owner, n)
        self._source_starts = _starts(self._source_owner, n)
        self._keys = [phrasing_key(p) for p in self._phrasings]
        centroids = (
            np.add.reduceat(self._phrasing_vectors, self._phrasing_starts)
            if n
            else np.zeros((0, self.encoder.dims), np.float32)
        )
        norms = np.linalg.norm(centroids, axis=1, keepdims=True)
        self._centroids = (centroids / np.where(norms > 0, norms, 1.0)).astype(np.float32)
        self._projected_centroids = self.projection(self._centroids)

    def _word_rows(self, ws: list[str]) -> NDArray[np.intp]:
        """Rows of `ws` in the base's vocabulary (added when new)."""
        return np.asarray([self._vocab.setdefault(w, len(self._vocab)) for w in ws], dtype=np.intp)

    def _word_vector(self, word: str) -> NDArray[np.float32] | None:
        """A question word's vector: from the table, or the base's own words; None if neither."""
        vector = self.word_vectors.get(word)
        if vector is None and word in self._vocab:
            vector = self._word_matrix[self._vocab[word]]
        return vector

    def _word_features(self, analysis: Analysis, indexes: list[int]) -> list[dict[str, float]]:
        """`word_gap` ... `answer_min` for each candidate entry: how far the question's words
        are from the entry's, by meaning where the entry uses other words."""
        terms = analysis.terms
        total = sum(t.weight for t in terms) or 1.0
        weights = np.asarray([t.weight for t in terms], dtype=np.float32)
        query = np.zeros((len(terms), self.encoder.dims), np.float32)
        for k, term in enumerate(terms):
            # A misspelt word repaired to the base's own word is read as that word; a phrase
            # (a synonym group's "air traffic control") as the mean of its words.
            found = [
                v
                for w in ([term.form] if term.form else analysis.words[term.start : term.end])
                if (v := self._word_vector(w)) is not None
            ]
            if found:
                mean = np.mean(found, axis=0)
                query[k] = mean / (float(np.linalg.norm(mean)) or 1.0)
        sims = query @ self._word_matrix.T if len(self._vocab) else np.zeros((len(terms), 0), np.float32)
        out = []
        for index in indexes:
            used = self.terms.entry_terms(index)
            covered = np.asarray([t.key in used for t in terms], dtype=bool)
            best_any = _best(sims, self._entry_words[index], covered)
            best_told = _best(sims, self._told_words[index], covered)
            out.append(
                {
                    "word_gap": float((weights * (1.0 - best_any)).sum()) / total,
                    "word_min": float(best_any.min()) if len(terms) else 1.0,
                    "answer_gap": float((weights * (1.0 - best_told)).sum()) / total,
                    "answer_min": float(best_told.min()) if len(terms) else 1.0,
                }
            )
        return out

    # ------------------------------------------------------------------ stages

    def candidates(self, question: str) -> tuple[Analysis, list[tuple[int, dict[str, float], str]]]:
        """The question's lexical reading and its candidate entries with their features."""
        analysis = self.terms.analyse(question, POOL)
        if analysis.reason or not self.kb.entries:
            return analysis, []
        q = self.encoder.encode([analysis.text])[0]
        by_phrasing = self._phrasing_vectors @ q
        if analysis.repaired:
            # Misspelt words repaired to the knowledge base's own: the model reads whole words
            # better than slips, so the text read the better way counts.
            fixed = self.encoder.encode([analysis.repaired])[0]
            if float(np.max(self._phrasing_vectors @ fixed)) > float(np.max(by_phrasing)):
                q = fixed
                by_phrasing = self._phrasing_vectors @ q
        per_entry = np.maximum.reduceat(by_phrasing, self._phrasing_starts)
        qp = self.projection(q[None, :])[0]
        projected = np.maximum.reduceat(self._projected_phrasings @ qp, self._phrasing_starts)
        pool = dict.fromkeys(analysis.scores)
        for index in np.argsort(-per_entry)[:POOL]:
            pool.setdefault(int(index))
        if analysis.exact is not None:
            pool.setdefault(analysis.exact)
        indexes = list(pool)
        all_answers = self._answer_vectors @ q
        answer_sims = all_answers[indexes]
        spread = float(per_entry.std()) or 1.0
        answer_spread = float(all_answers.std()) or 1.0
        centre, answer_centre = float(per_entry.mean()), float(all_answers.mean())
        length = math.log(1 + len(analysis.words))
        source_sims = np.maximum.reduceat(self._source_vectors @ q, self._source_starts)[indexes]
        asked = phrasing_key(analysis.text)
        rows: list[tuple[int, dict[str, float], str]] = []
        by_word = self._word_features(analysis, indexes)
        for k, index in enumerate(indexes):
            first = self._phrasing_starts[index]
            last = (
                self._phrasing_starts[index + 1]
                if index + 1 < len(self._phrasing_starts)
                else len(self._keys)
            )
            closest = process.extractOne(asked, self._keys[first:last], scorer=fuzz.token_set_ratio)
            nearest = first + int(np.argmax(by_phrasing[first:last]))
            features = {
                "sem_phrasing": float(per_entry[index]),
                "sem_answer": float(answer_sims[k]),
                "sem_source": float(source_sims[k]),
                "lexical": analysis.scores.get(index, 0.0) / 100.0,
                "wording": (closest[1] if closest else 0.0) / 100.0,
                "unknown_share": analysis.unknown_share,
                "foreign_share": analysis.foreign_share,
                "sem_z": (float(per_entry[index]) - centre) / spread,
                "answer_z": (float(answer_sims[k]) - answer_centre) / answer_spread,
                "length": length,
                "phrasings": math.log(last - first),
                "sem_centroid": float(self._centroids[index] @ q),
                "sem_qa": float(self._qa_vectors[index] @ q),
                "proj_phrasing": float(projected[index]),
                "proj_centroid": float(self._projected_centroids[index] @ qp),
            }
            if analysis.exact == index:
                features["wording"] = 1.0
            features.update(by_word[k])
            features.update(self.terms.guards(analysis, index))

            rows.append((index, features, self._phrasings[nearest]))
        for name, margin in MARGINS:
            values = [f[name] for _, f, _ in rows]
            for k, (_, features, _) in enumerate(rows):
                others = values[:k] + values[k + 1 :]
                features[margin] = features[name] - (max(others) if others else 0.0)
        return analysis, _shortlist(rows, analysis.exact)

    def match(self, question: str) -> Result:
        """Decide how to answer one question."""
        analysis, rows = self.candidates(question)
        text = analysis.text
        if analysis.reason == VAGUE:
            return Result(text, "unknown", self._same_kind(analysis), reason=VAGUE)
        if analysis.reason:
            return Result(text, "unknown", reason=analysis.reason)
        chances = self.decision.probabilities([f for _, f, _ in rows])
        ranked = sorted(
            (
                Candidate(self.kb.entries[index], round(100.0 * float(p), 1), phrasing, f)
                for (index, f, phrasing), p in zip(rows, chances, strict=True)
            ),
            key=lambda c: -c.score,
        )
        if not ranked:
            return Result(text, "unknown", reason="no close entry")
        if analysis.exact is not None:
            # Word for word one of an entry's phrasings: the curator wrote it for that entry.
            chosen = next(c for c in ranked if c.entry is self.kb.entries[analysis.exact])
            return Result(text, "answer", (chosen,), WORD_FOR_WORD)
        best = ranked[0]
        if best.probability >= self.decision.answer_at:
            return Result(text, "answer", (best,), f"p={best.probability:.2f}")
        offered = tuple(c for c in ranked[:MAX_SUGGESTIONS] if c.probability >= self.decision.suggest_at)
        if offered:
            return Result(text, "suggest", offered, f"p={best.probability:.2f}, below the answer threshold")
        return Result(text, "unknown", tuple(ranked[:MAX_SUGGESTIONS]), "no close entry")

    def _same_kind(self, analysis: Analysis) -> tuple[Candidate, ...]:
        """For a question about nothing in particular ("how far away is it?"): the entries that
        answer that kind of question, closest in meaning first, to show as examples of what to
        ask (never as answers: their probability is 0)."""
        if not self.kb.entries or not analysis.qtype:
            return ()
        q = self.encoder.encode([analysis.text])[0]
        per_entry = np.maximum.reduceat(self._phrasing_vectors @ q, self._phrasing_starts)
        kinds = [
            index
            for index in map(int, np.argsort(-per_entry))
            if self.kb.entries[index].type == analysis.qtype
        ]
        return tuple(
            Candidate(self.kb.entries[index], 0.0, self.kb.entries[index].question)
            for index in kinds[:MAX_SUGGESTIONS]
        )

    def complete(self, prefix: str, limit: int = 25) -> list[Entry]:
        """Entries whose questions best fit a partly typed question (for autocomplete)."""
        return self.terms.complete(prefix, limit)


def _shortlist(
    rows: list[tuple[int, dict[str, float], str]], exact: int | None
) -> list[tuple[int, dict[str, float], str]]:
    """The best `SHORTLIST` rows by meaning and the best by terms (that share a term at all),
    and an entry the question is word for word a phrasing of; in their pool order."""
    by_meaning = sorted(range(len(rows)), key=lambda k: -rows[k][1]["sem_phrasing"])[:SHORTLIST]
    lexical = [k for k in range(len(rows)) if rows[k][1]["lexical"] > 0]
    by_terms = sorted(lexical, key=lambda k: -rows[k][1]["lexical"])[:SHORTLIST]
    kept = set(by_meaning) | set(by_terms) | {k for k in range(len(rows)) if rows[k][0] == exact}
    return [row for k, row in enumerate(rows) if k in kept]


def _content_words(texts: Sequence[str]) -> list[str]:
    """The distinct content words of some texts (no stopwords, no numbers), in first-seen order."""
    return list(dict.fromkeys(w for text in texts for w in words(text) if w.isalpha() and w not in STOPWORDS))


def _best(
    sims: NDArray[np.float32], rows: NDArray[np.intp], covered: NDArray[np.bool_]
) -> NDArray[np.float32]:
    """Each question term's best cosine to one of `rows`' words; 1 for a term the entry uses."""
    best = sims[:, rows].max(axis=1) if len(rows) else np.zeros(len(covered), np.float32)
    return np.where(covered, np.float32(1.0), np.minimum(best, np.float32(1.0)))


def _starts(owner: np.ndarray, n: int) -> np.ndarray:
    """First row of each entry 0..n-1 in a contiguous owner array (every entry has one)."""
    return np.searchsorted(owner, np.arange(n)).astype(np.intp)
