"""Shared test helpers."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pgserver import PostgresServer, PostgresUnavailable

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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throw-away PostgreSQL server for the run (tests/pgserver.py)."""
    try:
        server = PostgresServer().start()
    except PostgresUnavailable as exc:
        pytest.skip(f"no PostgreSQL here: {exc}")
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def database_url(postgres_server: PostgresServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty database for one test."""
    name = (
        "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[:50].lower() + f"_{os.getpid()}"
    )
    postgres_server.drop_database(name)
    url = postgres_server.create_database(name)
    try:
        yield url
    finally:
        postgres_server.drop_database(name)
