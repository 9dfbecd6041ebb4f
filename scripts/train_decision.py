"""Train the matcher's projection and decision model on the train and dev stories.

    pip install -e '.[dev]'            # scikit-learn (and scipy)
    python scripts/train_decision.py   # rewrites bot/core/data/{projection.npz,decision.json}

First the projection (scripts/fit_projection.py): each story's features are computed with a
projection fitted on the *other* stories' questions, so the decision model learns from features as
they look on a story the projection never saw (cross-fitting); the shipped projection is then fitted
on all of them. Then the decision model: training rows are (question, candidate entry) pairs, label
1 when the candidate answers the question. The thresholds are chosen on leave-one-story-out
predictions (each story's questions scored by a model trained on the other stories), so they hold
for a story the model has not seen; the final model is then fitted on all of them. `test` and
`holdout` sets are never read here. About 25 minutes on two idle cores (twenty-four stories).

    python scripts/train_decision.py --features .cache/features.pkl

saves the computed features, and a later run with the same option reuses them while nothing they
depend on has changed: trying another setting of the decision model then takes a few minutes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fit_projection import Story, fit_projection  # noqa: E402

from benchmarks.quality import story_folder  # noqa: E402
from bot.core.embedding import (  # noqa: E402
    PROJECTION_FILE,
    EmbeddingCache,
    Encoder,
    Projection,
    WordVectors,
    default_encoder,
)
from bot.core.evaluation import QuestionSet, load_question_sets  # noqa: E402
from bot.core.knowledge import KnowledgeBase, load_knowledge  # noqa: E402
from bot.core.lexical import TermMatcher  # noqa: E402
from bot.core.matching import (  # noqa: E402
    DECISION_FILE,
    FEATURES,
    POOL,
    DecisionModel,
    Matcher,
    pair_names,
    pair_terms,
)

QUESTIONS = ROOT / "tests" / "data" / "questions"
PRECISION = 0.90
"""Of the answers given to held-out stories' questions (in scope or not), at least this share is right."""
REFUSED = 0.92
"""And at least this share of their out-of-scope questions is refused. The targets are 90% on an
unseen story and 92% on the shipped one; held-out stories scatter by ±3 points around the pooled
figure (at 91% pooled, half of the ten fell below 90%), so the pooled figure is held at 92%."""
WRONG = 0.025
"""And at most this share of their in-scope questions is answered with the wrong entry (target 3%)."""
SUGGEST_SHARE = 0.35
"""At most this share of their out-of-scope questions gets "did you mean" choices."""
C = 0.05
"""Inverse regularisation strength of the logistic regression (strong: ~230 inputs)."""
CLIP = 0.5
"""Features are clipped to their 0.5th-99.5th percentiles in training (and so at run time)."""


def tidied_questions(kb: KnowledgeBase, sets: list[QuestionSet]) -> list[tuple[str, frozenset[str]]]:
    """Each question of `sets` as the sentence model reads it (tidied as the matcher tidies it
    before encoding), with the entries that answer it; chit-chat and gibberish, which never reach
    the model, are left out. Shared with scripts/fine_tune.py."""
    terms = TermMatcher(kb)
    out = []
    for qs in sets:
        for case in qs.cases:
            analysis = terms.analyse(case.question, POOL)
            if not analysis.reason:
                out.append((analysis.text, case.expect))
    return out


def projection_data(story: str, sets: list[QuestionSet], encoder: Encoder | None = None) -> Story:
    """A story's phrasings and questions as the sentence model reads them (the question's tidied
    text, as the matcher encodes it), for fitting the projection."""
    kb = load_knowledge(story_folder(story))
    cache = EmbeddingCache(encoder or default_encoder())
    owner = [i for i, entry in enumerate(kb.entries) for _ in entry.phrasings]
    ids = [entry.id for entry in kb.entries]
    asked = tidied_questions(kb, sets)
    texts = [text for text, _ in asked]
    expect = [[ids.index(e) for e in answers if e in ids] for _, answers in asked]
    phrasings = [p for entry in kb.entries for p in entry.phrasings]
    return Story(cache.vectors(phrasings), np.asarray(owner), cache.vectors(texts), expect)


def rows(
    sets: list[QuestionSet],
    decision: DecisionModel,
    projection: Projection,
    model: tuple[Encoder, WordVectors] | None = None,
):
    """Feature matrix, labels, and per question: (story, case, row slice, candidate ids)."""
    X, y, groups = [], [], []
    encoder, words = model or (None, None)
    m = Matcher(
        load_knowledge(story_folder(sets[0].story)),
        decision=decision,
        projection=projection,
        encoder=encoder,
        word_vectors=words,
    )
    for qs in sets:
        for case in qs.cases:
            analysis, cands = m.candidates(case.question)
            start = len(X)
            ids = []
            for index, feats, _ in cands:
                X.append([feats[name] for name in FEATURES])
                entry_id = m.kb.entries[index].id
                y.append(1 if entry_id in case.expect else 0)
                ids.append(entry_id)
            groups.append((qs, case, slice(start, len(X)), ids, bool(analysis.reason)))
    return np.asarray(X, dtype=float), np.asarray(y), groups


def outcomes(p: np.ndarray, groups, answer_at: float):
    """Per question: (in scope, answered right, answered wrong, best p)."""
    out = []
    for _qs, case, sl, ids, _ in groups:
        if sl.stop == sl.start:
            out.append((case.in_scope, False, False, 0.0))
            continue
        k = int(np.argmax(p[sl]))
        best_p = float(p[sl][k])
        answered = best_p >= answer_at
        right = answered and ids[k] in case.expect
        out.append((case.in_scope, right, answered and not right, best_p))
    return out


def _standardise(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    return mean, np.where(scale > 0, scale, 1.0)


@dataclass
class Fitted:
    """What `fit` learnt, in the shape DecisionModel stores."""

    low: np.ndarray
    high: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    pair_mean: np.ndarray
    pair_scale: np.ndarray
    model: object

    def inputs(self, X: np.ndarray) -> np.ndarray:
        Z = (np.clip(X, self.low, self.high) - self.mean) / self.scale
        P = np.array([pair_terms(list(z)) for z in Z])
        return (P - self.pair_mean) / self.pair_scale

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(self.inputs(X))[:, 1]


def fit(X: np.ndarray, y: np.ndarray) -> Fitted:
    """Clip to the central range, standardise, add pairwise products, standardise them, then a
    logistic regression (the same steps as DecisionModel.inputs)."""
    from sklearn.linear_model import LogisticRegression

    low, high = np.percentile(X, CLIP, axis=0), np.percentile(X, 100 - CLIP, axis=0)
    mean, scale = _standardise(np.clip(X, low, high))
    Z = (np.clip(X, low, high) - mean) / scale
    P = np.array([pair_terms(list(z)) for z in Z])
    pair_mean, pair_scale = _standardise(P)
    model = LogisticRegression(C=C, max_iter=10000).fit((P - pair_mean) / pair_scale, y)
    return Fitted(low, high, mean, scale, pair_mean, pair_scale, model)


def figures(p: np.ndarray, groups, answer_at: float) -> dict[str, float]:
    """Answered right and wrong (of in scope), refused (of out of scope), precision of answers."""
    res = outcomes(p, groups, answer_at)
    n_in = sum(r[0] for r in res) or 1
    n_out = (len(res) - sum(r[0] for r in res)) or 1
    answered = sum(r[1] or r[2] for r in res)
    return {
        "in_scope": float(sum(r[0] for r in res)),
        "out_of_scope": float(len(res) - sum(r[0] for r in res)),
        "right": sum(r[1] for r in res if r[0]) / n_in,
        "wrong": sum(r[2] for r in res if r[0]) / n_in,
        "refused": sum(not (r[1] or r[2]) for r in res if not r[0]) / n_out,
        "precision": sum(r[1] for r in res) / answered if answered else 1.0,
    }


FEATURE_CODE = (
    "matching.py",
    "lexical.py",
    "embedding.py",
    "english.py",
    "wordpiece.py",
    "knowledge.py",
    "text.py",
)
"""The run-time modules whose code decides the features (under bot/core)."""


def inputs_stamp(sets: list[QuestionSet], stories: list[str], tuned: Path | None = None) -> str:
    """A digest of everything the features and the projection depend on: the question sets, the
    stories' knowledge files, the model's files and the code that computes the features. The
    training settings below (C, the thresholds' criteria) are not in it: changing them is what a
    saved feature file is for."""
    digest = hashlib.sha256(json.dumps(FEATURES).encode())
    core = ROOT / "bot" / "core"
    files = [qs.path for qs in sets]
    files += sorted(p for story in stories for p in story_folder(story).rglob("*") if p.is_file())
    files += sorted(p for p in (core / "data").rglob("*") if p.is_file() and p != DECISION_FILE)
    files += [core / name for name in FEATURE_CODE]
    files += [Path(__file__).with_name("fit_projection.py")]
    if tuned is not None:
        files += [*sorted(tuned.glob("fold-*/words.npz")), *sorted(tuned.glob("fold-*/model/*"))]
        files.append(tuned / "folds.json")
    for path in files:
        if path == PROJECTION_FILE:
            continue  # written by this script; the cross-fitted ones are what the features use
        resolved = Path(path).resolve()
        digest.update(str(resolved.relative_to(ROOT) if resolved.is_relative_to(ROOT) else resolved).encode())
        digest.update(hashlib.sha256(Path(path).read_bytes()).digest())
    return digest.hexdigest()


def save_features(path: Path, stamp: str, data: dict) -> None:
    """Keep the computed features for the next run (a local file: pickle, never shared)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        pickle.dump({"stamp": stamp, "data": data}, handle)
    print(f"saved the features to {path}")


def load_features(path: Path, stamp: str) -> dict | None:
    """The features a previous run saved, when nothing they depend on has changed since."""
    if not path.exists():
        return None
    with path.open("rb") as handle:
        saved = pickle.load(handle)  # our own local file, written by save_features
    if saved.get("stamp") != stamp:
        print(f"{path} is out of date (data, model or feature code changed): computing the features again")
        return None
    return saved["data"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--features",
        type=Path,
        help="save the computed features here, and reuse them on the next run while the question "
        "sets, knowledge bases, model files and feature code are unchanged (then only the decision "
        "model is refitted: a few minutes, not 20; the projection is left as it is)",
    )
    parser.add_argument(
        "--tuned",
        type=Path,
        help="the folder scripts/fine_tune.py wrote (build/tuned): each story's features are then "
        "computed with the fold model that never saw its questions",
    )
    args = parser.parse_args(argv)
    sets = [s for s in load_question_sets(QUESTIONS) if s.split in ("train", "dev")]
    stories = sorted({s.story for s in sets})
    n, m = len(FEATURES), len(pair_names(FEATURES))
    blank = DecisionModel(
        FEATURES,
        (0.0,) * n,
        (0.0,) * n,
        (0.0,) * n,
        (1.0,) * n,
        (0.0,) * m,
        (1.0,) * m,
        (0.0,) * m,
        0.0,
        0.5,
        0.2,
    )
    by_story = {story: [s for s in sets if s.story == story] for story in stories}
    stamp = inputs_stamp(sets, stories, args.tuned)
    # Which model reads each story: the shipped one, or (fine-tuned) the fold model without it.
    fold_of = {story: "shipped" for story in stories}
    models: dict[str, tuple[Encoder, WordVectors] | None] = {"shipped": None}
    if args.tuned:
        for fold, names in json.loads((args.tuned / "folds.json").read_text()).items():
            models[fold] = (
                Encoder(args.tuned / fold / "model"),
                WordVectors(args.tuned / fold / "words.npz"),
            )
            fold_of.update({name: fold for name in names if name in fold_of})
        shipped = json.loads((args.tuned / "all" / "model" / "config.json").read_text())["model_sha256"]
        assert default_encoder().fingerprint.startswith(shipped), "bot/core/data/model is not build/tuned/all"
        assert set(fold_of.values()) <= set(models) - {"shipped"}, (
            "a story is in no fold: run fine_tune.py again"
        )
    data = load_features(args.features, stamp) if args.features else None
    if data is None:
        vectors = {
            fold: {story: projection_data(story, by_story[story], model and model[0]) for story in stories}
            for fold, model in models.items()
        }
        data = {}
        for story in stories:
            # Cross-fitting: this story's features come from a projection that never saw its
            # questions (and, fine-tuned, from a sentence model that never saw them either).
            fold = fold_of[story]
            matrix = fit_projection([vectors[fold][o] for o in stories if o != story])
            data[story] = rows(by_story[story], blank, Projection(matrix, f"without {story}"), models[fold])
            print(f"  projection without {story}: features of {len(data[story][0])} candidates", flush=True)
        shipped_projection = Projection(fit_projection(list(vectors["shipped"].values())), "+".join(stories))
        shipped_projection.save(PROJECTION_FILE)
        print(f"wrote {PROJECTION_FILE.relative_to(ROOT)}")
        if args.features:
            save_features(args.features, stamp, data)
    else:
        print(f"features and projection unchanged: read {args.features} (delete it to compute them again)")
    # Leave one story out: every probability below comes from a model that never saw that story.
    held_p, held_groups = [], []
    per_story: dict[str, list] = {}
    offset = 0
    for story in stories:
        X = np.vstack([data[o][0] for o in stories if o != story])
        y = np.concatenate([data[o][1] for o in stories if o != story])
        fitted = fit(X, y)
        Xs, _ys, groups = data[story]
        held_p.append(fitted.predict(Xs))
        shifted = [(a, b, slice(c.start + offset, c.stop + offset), d, e) for a, b, c, d, e in groups]
        held_groups += shifted
        per_story[story] = shifted
        offset += len(Xs)
    p = np.concatenate(held_p)
    answer_at = next(
        (
            round(float(t), 2)
            for t in np.arange(0.05, 0.99, 0.01)
            if (f := figures(p, held_groups, float(t)))["precision"] >= PRECISION
            and f["refused"] >= REFUSED
            and f["wrong"] <= WRONG
        ),
        0.9,
    )
    oos_best = sorted(r[3] for r in outcomes(p, held_groups, answer_at) if not r[0])
    suggest_at = float(np.quantile(oos_best, 1 - SUGGEST_SHARE)) if oos_best else answer_at / 2
    suggest_at = round(min(suggest_at, answer_at * 0.9), 3)
    f = figures(p, held_groups, answer_at)
    print(f"leave-one-story-out over {', '.join(stories)}: answer_at={answer_at} suggest_at={suggest_at}")
    print(
        f"  in scope answered right {f['right']:.1%}, wrong {f['wrong']:.1%}; out of scope refused {f['refused']:.1%}; "
        f"precision of answers {f['precision']:.1%}"
    )
    for story, groups in per_story.items():
        g = figures(p, groups, answer_at)
        print(f"    {story:<10} right {g['right']:.1%}  wrong {g['wrong']:.1%}  refused {g['refused']:.1%}")
    X = np.vstack([data[s][0] for s in stories])
    y = np.concatenate([data[s][1] for s in stories])
    fitted = fit(X, y)
    model = fitted.model
    print(f"final model: {len(sets)} question sets, {len(X)} candidate rows ({int(y.sum())} positive)")
    decision = {
        "features": list(FEATURES),
        "low": [round(float(v), 6) for v in fitted.low],
        "high": [round(float(v), 6) for v in fitted.high],
        "mean": [round(float(v), 6) for v in fitted.mean],
        "scale": [round(float(v), 6) for v in fitted.scale],
        "pair_mean": [round(float(v), 6) for v in fitted.pair_mean],
        "pair_scale": [round(float(v), 6) for v in fitted.pair_scale],
        "weights": [round(float(v), 6) for v in model.coef_[0]],
        "bias": round(float(model.intercept_[0]), 6),
        "answer_at": answer_at,
        "suggest_at": suggest_at,
        "chosen_for": {
            "precision": PRECISION,
            "refused": REFUSED,
            "wrong": WRONG,
            "suggested_out_of_scope": SUGGEST_SHARE,
        },
        "held_out_figures": {k: round(v, 4) for k, v in f.items()},
        "trained_on": sorted(f"{s.story}/{s.writer}" for s in sets),
    }
    DECISION_FILE.write_text(json.dumps(decision, indent=2) + "\n")
    # The run-time model must give what scikit-learn gives (up to the rounding of the file).
    shipped = DecisionModel.load()
    sample = X[:: max(1, len(X) // 500)]
    gap = max(
        abs(shipped.probability(dict(zip(FEATURES, row, strict=True))) - p)
        for row, p in zip(sample, fitted.predict(sample), strict=True)
    )
    assert gap < 1e-3, f"run-time probabilities differ from training's by {gap}"
    print(f"run-time model agrees with scikit-learn's to {gap:.1e}")
    terms = [" x ".join(owners) for owners in pair_names(FEATURES)]
    for name, w in sorted(zip(terms, model.coef_[0], strict=True), key=lambda pair: -abs(pair[1]))[:15]:
        print(f"  {name:<40}{w:+.2f}")
    print(f"wrote {DECISION_FILE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
