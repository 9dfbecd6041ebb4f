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
