"""Shared test helpers."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "knowledge"

# One embedding cache for the whole run, inherited by the bot processes the tests start: the
# knowledge bases' vectors are computed once, not by every process and every test.
os.environ.setdefault("STORYBOT_CACHE", str(ROOT / ".cache" / "embeddings"))


@pytest.fixture
def kb_dir(tmp_path: Path) -> Path:
    """A writable copy of the shipped knowledge folder."""
    target = tmp_path / "knowledge"
    shutil.copytree(SHIPPED, target, ignore=shutil.ignore_patterns("*.lock"))
    return target
