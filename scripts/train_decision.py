"""Train the matcher's decision model on the train stories; choose its thresholds on the dev story.

    pip install -e '.[dev]'            # scikit-learn
    python scripts/train_decision.py   # rewrites bot/core/data/decision.json, prints dev figures

Training rows are (question, candidate entry) pairs from the question sets whose split is
`train`: label 1 when the candidate answers the question. Thresholds are chosen on `dev` sets
only; `test` sets are never read here.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.core.evaluation import QuestionSet, load_question_sets  # noqa: E402
from bot.core.knowledge import load_knowledge  # noqa: E402
from bot.core.matching import DECISION_FILE, FEATURES, DecisionModel, Matcher  # noqa: E402

STORIES = ROOT / "tests" / "data" / "stories"
QUESTIONS = ROOT / "tests" / "data" / "questions"
PRECISION = 0.95
"""Of the answers given on the dev story (in scope or not), at least this share must be right."""
SUGGEST_SHARE = 0.35
"""At most this share of the dev story's out-of-scope questions may get "did you mean" choices."""


def story_folder(story: str) -> Path:
    """The knowledge folder of a story: the shipped one, or one of the corpus stories."""
    return ROOT / "knowledge" if story == "diplomats" else STORIES / story


_matchers: dict[str, Matcher] = {}


def matcher_for(story: str, decision: DecisionModel) -> Matcher:
    if story not in _matchers:
        _matchers[story] = Matcher(load_knowledge(story_folder(story)), decision=decision)
    return _matchers[story]


def rows(sets: list[QuestionSet], decision: DecisionModel):
    """Feature matrix, labels, and per question: (story, case, row slice, candidate ids)."""
    X, y, groups = [], [], []
    for qs in sets:
        m = matcher_for(qs.story, decision)
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


def main() -> int:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    sets = load_question_sets(QUESTIONS)
    train = [s for s in sets if s.split == "train"]
    dev = [s for s in sets if s.split == "dev"]
    blank = DecisionModel(FEATURES, (0.0,) * len(FEATURES), (1.0,) * len(FEATURES), (0.0,) * len(FEATURES), 0.0, 0.5, 0.2)
    X, y, _ = rows(train, blank)
    scaler = StandardScaler().fit(X)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    lr = LogisticRegression(C=1.0, max_iter=2000).fit((X - scaler.mean_) / scale, y)
    print(f"trained on {len(train)} sets, {len(X)} candidate rows ({int(y.sum())} positive)")
    Xd, _yd, gd = rows(dev, blank)
    pd = lr.predict_proba((Xd - scaler.mean_) / scale)[:, 1]
    # answer_at: the lowest threshold whose dev precision reaches PRECISION (most questions answered).
    best = None
    for t in np.arange(0.05, 0.99, 0.01):
        res = outcomes(pd, gd, t)
        answered = sum(r[1] or r[2] for r in res)
        right = sum(r[1] for r in res)
        if answered and right / answered >= PRECISION:
            best = float(round(t, 2))
            break
    answer_at = best if best is not None else 0.9
    oos_best = sorted(r[3] for r in outcomes(pd, gd, answer_at) if not r[0])
    suggest_at = float(np.quantile(oos_best, 1 - SUGGEST_SHARE)) if oos_best else answer_at / 2
    suggest_at = round(min(suggest_at, answer_at * 0.9), 3)
    res = outcomes(pd, gd, answer_at)
    n_in = sum(r[0] for r in res)
    n_out = len(res) - n_in
    right = sum(r[1] for r in res if r[0])
    wrong = sum(r[2] for r in res if r[0])
    refused = sum(not (r[1] or r[2]) for r in res if not r[0])
    print(f"dev ({', '.join(s.story + '/' + s.writer for s in dev)}): answer_at={answer_at} suggest_at={suggest_at}")
    print(f"  in scope answered right {right}/{n_in} = {right / n_in:.1%}; wrong {wrong / n_in:.1%}; out of scope refused {refused}/{n_out} = {refused / n_out:.1%}")
    model = {
        "features": list(FEATURES),
        "mean": [float(v) for v in scaler.mean_],
        "scale": [float(v) for v in scale],
        "weights": [float(v) for v in lr.coef_[0]],
        "bias": float(lr.intercept_[0]),
        "answer_at": answer_at,
        "suggest_at": suggest_at,
        "precision_target": PRECISION,
        "trained_on": sorted({f"{s.story}/{s.writer}" for s in train}),
        "thresholds_from": sorted({f"{s.story}/{s.writer}" for s in dev}),
    }
    DECISION_FILE.write_text(json.dumps(model, indent=2) + "\n")
    for name, w in sorted(zip(FEATURES, lr.coef_[0]), key=lambda p: -abs(p[1])):
        print(f"  {name:<18}{w:+.2f}")
    print(f"wrote {DECISION_FILE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
