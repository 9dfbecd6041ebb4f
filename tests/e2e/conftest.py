"""Fixtures that run the real StoryBot (discord.py client) against the local fake Discord."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from bot.adapter.client import StoryBot, make_bot
from bot.config import Secret, Settings
from bot.core.feedback import FeedbackStore
from bot.core.service import StoryService

from .fake_discord import FakeDiscord, RecordedRequest
from .openapi import DiscordOpenAPI

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "fake-token-Zm9vYmFy.c2VjcmV0.dG9rZW4"
T = 10.0  # per-step timeout; steps take milliseconds
SENDS = r"^/(channels/\d+/messages(/\d+)?|interactions/\d+/[^/]+/callback|webhooks/\d+/[^/]+(/messages/.+)?)$"

_SPEC = DiscordOpenAPI.load()


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(heartbeat_interval_ms=1000) as f:
        with f.patch_discord():
            yield f
        check_requests(f)


def check_requests(fake: FakeDiscord) -> None:
    """What every test must hold: nothing the bot sends can ping, and bodies fit Discord's API."""
    for r in fake.requests:
        if r.method in ("POST", "PATCH") and r.json is not None and _sends(r):
            body = r.json.get("data", r.json) if "/callback" in r.path else r.json
            if isinstance(body, dict) and ({"content", "embeds"} & body.keys()):
                assert not may_ping(body.get("allowed_mentions")), (
                    f"{r.method} {r.path} may ping: {body.get('allowed_mentions')}"
                )
        if _SPEC is not None and r.json is not None and r.matched:
            problems = _SPEC.errors(r.method, r.path, r.json)
            assert not problems, f"{r.method} {r.path} does not fit Discord's API: {problems}"


def may_ping(allowed: dict[str, Any] | None) -> bool:
    """Whether Discord would notify anyone: only an explicit "nobody" is safe."""
    if allowed is None:
        return True  # Discord's default parses every mention in the content
    return bool(
        allowed.get("parse") or allowed.get("users") or allowed.get("roles") or allowed.get("replied_user")
    )


def _sends(r: RecordedRequest) -> bool:
    import re

    return re.match(SENDS, r.path) is not None


@pytest.fixture
def knowledge(tmp_path: Path) -> Path:
    """A private copy of the shipped knowledge base, so tests can write to it."""
    target = tmp_path / "knowledge"
    shutil.copytree(ROOT / "knowledge", target)
    return target


def settings_for(fake: FakeDiscord, knowledge: Path, data: Path, **changes: Any) -> Settings:
    base = Settings(
        token=Secret(TOKEN),
        knowledge=str(knowledge),
        data_dir=data,
        guild_id=fake.guild_id,
        curator_role_ids=frozenset({fake.curators_role_id}),
        api_base=fake.api_base,
        gateway_url=fake.gateway_url,
        reload_interval_s=0.2,
        health_max_age_s=3.0,
        # Most tests ask the same question many times in one channel; the tests of the
        # same-question pointer turn it on.
        same_question_window_s=0.0,
    )
    return replace(base, **changes)


@dataclass
class Running:
    """A StoryBot running in this event loop, connected to the fake."""

    bot: StoryBot
    task: asyncio.Task[None]

    async def stop(self) -> None:
        await self.bot.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.task, T)


async def _no_wait(shard_id: int | None, *, initial: bool = False) -> None:
    """discord.py waits 5 s before each IDENTIFY after the first (Discord's limit); the fake has none."""


async def start_bot(settings: Settings, *, fast_identify: bool = False, **options: Any) -> Running:
    """Start the bot on the fake and wait until it is ready; `options` go to the client."""
    options.setdefault("guild_ready_timeout", 0.05)
    service = StoryService(settings.knowledge or "knowledge")
    bot = make_bot(settings, service, FeedbackStore(settings.database), **options)
    if fast_identify:
        bot.before_identify_hook = _no_wait  # type: ignore[method-assign]
    task = asyncio.create_task(bot.start(settings.token.get()))
    ready = asyncio.create_task(bot.wait_until_ready())
    done, _ = await asyncio.wait({task, ready}, timeout=T, return_when=asyncio.FIRST_COMPLETED)
    if ready not in done:
        ready.cancel()
        await bot.close()
        if task in done:
            task.result()
        raise TimeoutError("the bot never became ready")
    return Running(bot, task)


@pytest.fixture
def settings(fake: FakeDiscord, knowledge: Path, tmp_path: Path) -> Settings:
    return settings_for(fake, knowledge, tmp_path / "data")


@pytest_asyncio.fixture
async def storybot(settings: Settings) -> AsyncIterator[Running]:
    running = await start_bot(settings)
    try:
        yield running
    finally:
        await running.stop()
