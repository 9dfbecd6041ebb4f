"""Reliability fixtures: the e2e fixtures (the real bot against the local fake Discord), plus
a bot that reconnects without discord.py's 5 s pause before a repeated IDENTIFY.

discord.py sleeps 5 s in ``Client.before_identify_hook`` before every IDENTIFY after the
first (Discord's identify rate limit). Against the fake that only slows the tests down, so
``start_fast_bot`` replaces the hook on the bot *instance*; everything else is the real client.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio

from bot.config import Settings
from tests.e2e import conftest as _e2e
from tests.e2e.conftest import ROOT, TOKEN, Running, T, check_requests, may_ping, settings_for, start_bot
from tests.e2e.fake_discord import FakeDiscord, RecordedRequest

# The e2e fixtures, re-exported for this folder: the fake Discord (which checks at teardown
# that nothing the bot sent could ping), a private copy of the knowledge base, the settings.
fake = _e2e.fake
knowledge = _e2e.knowledge
settings = _e2e.settings
__all__ = ["ROOT", "TOKEN", "Running", "T", "check_requests", "fake", "knowledge", "settings", "settings_for"]

PYTHON = sys.executable
ASK = "How far did they push the trolley?"
CURATORS = ["Curators"]
# Discord's limits, checked on everything the bot sends.
CONTENT_MAX, EMBED_TOTAL_MAX, TITLE_MAX, DESCRIPTION_MAX = 2000, 6000, 256, 4096
FIELD_NAME_MAX, FIELD_VALUE_MAX, FOOTER_MAX, FIELDS_MAX = 256, 1024, 2048, 25


async def _no_identify_pause(shard_id: int | None, *, initial: bool = False) -> None:
    """Stands in for discord.py's before_identify_hook (which sleeps 5 s on a re-IDENTIFY)."""


async def start_fast_bot(settings: Settings, **options: Any) -> Running:
    """tests.e2e.conftest.start_bot with no IDENTIFY pause and client options passed on."""
    return await start_bot(settings, fast_identify=True, **options)


@pytest_asyncio.fixture
async def fastbot(settings: Settings) -> AsyncIterator[Running]:
    running = await start_fast_bot(settings, heartbeat_timeout=3.0)
    try:
        yield running
    finally:
        await running.stop()


def body_of(reply: RecordedRequest) -> dict[str, Any]:
    """The message a request sends (an interaction callback wraps it in ``data``)."""
    data = reply.json.get("data", reply.json) if "/callback" in reply.path else reply.json
    return data if isinstance(data, dict) else {}


def assert_fits_discord(body: dict[str, Any]) -> None:
    """Content and embeds within Discord's limits; pings impossible."""
    assert len(body.get("content") or "") <= CONTENT_MAX
    embeds = body.get("embeds") or []
    assert len(embeds) <= 10
    for embed in embeds:
        total = len(embed.get("title") or "") + len(embed.get("description") or "")
        assert len(embed.get("title") or "") <= TITLE_MAX
        assert len(embed.get("description") or "") <= DESCRIPTION_MAX
        fields = embed.get("fields") or []
        assert len(fields) <= FIELDS_MAX
        for f in fields:
            assert 0 < len(f["name"]) <= FIELD_NAME_MAX and 0 < len(f["value"]) <= FIELD_VALUE_MAX, f
            total += len(f["name"]) + len(f["value"])
        footer = (embed.get("footer") or {}).get("text") or ""
        assert len(footer) <= FOOTER_MAX
        total += len(footer)
        assert total <= EMBED_TOTAL_MAX
    for row in body.get("components") or []:
        for c in row.get("components") or []:
            assert len(c.get("custom_id") or "") <= 100 and len(c.get("label") or "") <= 80
    if body.get("content") or embeds:
        assert not may_ping(body.get("allowed_mentions")), body.get("allowed_mentions")


def replies_to(fake: FakeDiscord, ref: int) -> list[RecordedRequest]:
    """Every successful answer to one question: interaction callbacks, or replies to a message."""
    if int(ref) in fake.interactions:
        return [
            r for r in fake.requests if r.path.startswith(f"/interactions/{ref}/") and 200 <= r.status < 300
        ]
    return [
        r
        for r in fake.find_requests("POST", r"^/channels/\d+/messages$")
        if 200 <= r.status < 300
        and str((r.json or {}).get("message_reference", {}).get("message_id")) == str(ref)
    ]


def tree_digest(folder: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.yaml")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


async def until(condition: Any, timeout: float = T, what: str = "condition") -> None:
    """Poll `condition()` until true (fake.wait_for only wakes on gateway changes)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
