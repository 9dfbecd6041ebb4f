"""scripts/train_decision.py's saved features: reused only while nothing they depend on changed."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

from bot.core.evaluation import QuestionSet, load_question_sets

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import train_decision  # noqa: E402

STORY = "cave"  # a training story: its files are only hashed here


@pytest.fixture(scope="module")
def sets() -> list[QuestionSet]:
    found = [qs for qs in load_question_sets(ROOT / "tests" / "data" / "questions") if qs.story == STORY]
    assert found and all(qs.split == "train" for qs in found)
    return found


def test_saved_features_come_back_while_the_stamp_holds(tmp_path: Path, sets: list[QuestionSet]) -> None:
    stamp = train_decision.inputs_stamp(sets, [STORY])
    assert stamp == train_decision.inputs_stamp(sets, [STORY])
    path = tmp_path / "cache" / "features.pkl"
    assert train_decision.load_features(path, stamp) is None  # nothing saved yet
    data = {STORY: ([[0.5, 1.0]], [1], ["group"])}
    train_decision.save_features(path, stamp, data)
    assert train_decision.load_features(path, stamp) == data
    assert train_decision.load_features(path, "another stamp") is None


def test_the_stamp_changes_with_a_question_or_a_story(tmp_path: Path, sets: list[QuestionSet]) -> None:
    stamp = train_decision.inputs_stamp(sets, [STORY])
    edited = tmp_path / sets[0].path.name
    edited.write_text(sets[0].path.read_text() + "\n# one more line\n")
    assert train_decision.inputs_stamp([replace(sets[0], path=edited), *sets[1:]], [STORY]) != stamp
    assert train_decision.inputs_stamp(sets, [STORY, "hudson"]) != stamp


def test_the_stamp_covers_the_fold_models(tmp_path: Path, sets: list[QuestionSet]) -> None:
    """With --tuned, features saved from one set of fold models are not reused with another."""
    tuned = tmp_path / "tuned"
    (tuned / "fold-1" / "model").mkdir(parents=True)
    (tuned / "folds.json").write_text('{"fold-1": ["cave"]}')
    (tuned / "fold-1" / "model" / "config.json").write_text('{"model_sha256": "a"}')
    (tuned / "fold-1" / "words.npz").write_bytes(b"words")
    stamp = train_decision.inputs_stamp(sets, [STORY], tuned)
    assert stamp != train_decision.inputs_stamp(sets, [STORY])
    (tuned / "fold-1" / "model" / "config.json").write_text('{"model_sha256": "b"}')
    assert train_decision.inputs_stamp(sets, [STORY], tuned) != stamp


def test_fine_tuning_reads_only_train_and_dev_stories_and_folds_each_once() -> None:
    """scripts/fine_tune.py: the sentence model learns from the train and dev stories only, and
    every one of them sits in exactly one fold (its features then come from the fold model that
    never saw it), rich and curator-sized bases dealt evenly."""
    import fine_tune

    splits = {qs.story: qs.split for qs in load_question_sets(ROOT / "tests" / "data" / "questions")}
    stories = fine_tune.load_stories()
    assert stories and {splits[s.name] for s in stories} <= {"train", "dev"}
    assert {s for s, split in splits.items() if split in ("train", "dev")} == {s.name for s in stories}
    assert all(s.questions and all(p for _, p in s.entries) for s in stories)
    folds = fine_tune.folds(stories, 3)
    assert sorted(n for fold in folds for n in fold) == sorted(s.name for s in stories)
    kinds = {s.name: s.kind for s in stories}
    for kind in set(kinds.values()):
        counts = [sum(kinds[n] == kind for n in fold) for fold in folds]
        assert max(counts) - min(counts) <= 1, (kind, counts)
