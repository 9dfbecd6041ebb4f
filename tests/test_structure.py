"""Structural rules, checked: the core never imports discord; commands are unique."""

from __future__ import annotations

import ast

from tests.conftest import ROOT


def imported_modules(path: str) -> set[str]:
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_core_and_cli_never_import_discord() -> None:
    paths = [p.relative_to(ROOT).as_posix() for p in (ROOT / "bot" / "core").rglob("*.py")]
    for path in [*paths, "bot/cli.py", "bot/config.py", "bot/health.py"]:
        assert "discord" not in imported_modules(path), path


def test_only_the_adapter_imports_discord() -> None:
    for path in (ROOT / "bot").rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if "discord" in imported_modules(rel):
            assert rel.startswith("bot/adapter/"), rel


def test_command_names_are_unique() -> None:
    from bot.adapter.ask import AskCog
    from bot.adapter.curate import CurateCog

    names = [c.name for cog in (AskCog, CurateCog) for c in cog.__cog_app_commands__]
    assert len(names) == len(set(names))
    subcommands = [c.name for c in CurateCog.kb.commands]
    assert len(subcommands) == len(set(subcommands))


def _story_words() -> set[str]:
    """Words distinctive of the shipped story: in its article, and rare in English (not among the
    common-words list's first 20,000), so a general rule never uses them."""
    import re

    from bot.core.lexical import common_words

    common = common_words()
    article = (ROOT / "knowledge" / "article.txt").read_text(encoding="utf-8").casefold()
    return {w for w in re.findall(r"[a-z]{4,}", article) if common.get(w, 10**9) >= 20_000} - UNITS | {
        "trolley",
        "diplomats",
        "north korea",
        "dprk",
    }


UNITS = {"kilometre", "kilometres", "kilometer", "kilometers"}
"""Units are general English (chat spellings like "km" map to them), however rare."""


def test_no_story_words_in_the_code() -> None:
    """The story's words live in knowledge/; bot/ holds general code (examples come from the base)."""
    import re

    words = _story_words()
    assert {"sorokin", "tumen", "trolley"} <= words
    found = []
    for path in (ROOT / "bot").rglob("*.py"):
        text = path.read_text(encoding="utf-8").casefold()
        found += [(path.name, w) for w in words if re.search(rf"\b{re.escape(w)}\b", text)]
    assert not found, found


def test_run_time_never_imports_torch_or_a_hub_client() -> None:
    """Nor `tokenizers`: bot/core/wordpiece.py cuts the word pieces; the library is only the
    tests' reference (tests/core/test_wordpiece.py), so the image does without it."""
    import subprocess
    import sys

    code = (
        "import sys; from bot.cli import main; main(['ask', 'what happened?']);"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers', 'sentence_transformers', 'huggingface_hub', 'onnxruntime', 'sklearn', 'tokenizers'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_the_model_artefact_is_the_one_its_config_names() -> None:
    """bot/core/data/model/ is what scripts/build_model.py writes: its weights hash as recorded."""
    import hashlib
    import json

    folder = ROOT / "bot" / "core" / "data" / "model"
    config = json.loads((folder / "config.json").read_text())
    assert hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest() == config["model_sha256"]
