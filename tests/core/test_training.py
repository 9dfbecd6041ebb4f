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
