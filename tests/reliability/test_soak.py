"""The short soak: 500 questions through the fake Discord in ~15 s with gateway drops, 429s
and 5xx injected (the full run is `python scripts/soak.py`, 5,000 questions)."""

from __future__ import annotations

import importlib.util
import sys

from .conftest import ROOT, check_requests


def _soak_module():  # scripts/ is not a package
    spec = importlib.util.spec_from_file_location("storybot_soak", ROOT / "scripts" / "soak.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def test_short_soak_answers_everything_exactly_once() -> None:
    soak = _soak_module()
    figures = await soak.soak(500, 15.0, faults_per_minute=60, verbose=False, inspect=check_requests)
    print(soak.report(figures))
    assert figures.questions == 500
    assert figures.lost == 0 and figures.duplicated == 0, soak.report(figures)
    assert figures.answered_once == 500
    assert sum(figures.faults.values()) >= 5 and figures.resumes >= 1
    assert figures.unhandled_log_lines == 0, figures.log_sample
    assert figures.rss_growth_pct <= 10, soak.report(figures)
