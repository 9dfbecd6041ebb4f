"""REST faults through the fake Discord: 429 (per route and global), 5xx, slow responses and an
expired interaction token. Every question is answered exactly once, or the failure is logged."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.e2e.fake_discord import FakeDiscord

from .conftest import ASK, Running, T, replies_to

MESSAGES = r"^/channels/\d+/messages$"
CALLBACK = r"^/interactions/\d+/[^/]+/callback$"
# name: (route, status, options) — status None means "answer correctly, but late".
FAULTS = {
    "429 per route": (429, {"retry_after": 0.3}),
    "429 global": (429, {"retry_after": 0.3, "global_": True}),
    "500": (500, {}),
    "502": (502, {}),
    "slow (1 s)": (None, {"delay": 1.0}),
    "429 twice in a row": (429, {"retry_after": 0.2, "times": 2}),
}


async def _ask(fake: FakeDiscord, how: str, user: int = 0) -> int:
    author = fake.make_user(user) if user else None
    if how == "slash":
        return await fake.slash_command("ask", {"question": ASK}, user=author)
    return await fake.message_create(f"{fake.mention_bot} {ASK}", author, mentions=[fake.bot_user])


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_rest_fault_answers_exactly_once(fake: FakeDiscord, fastbot: Running, fault: str) -> None:
    status, options = FAULTS[fault]
    rules = [fake.fail_next("POST", route, status=status, **options) for route in (CALLBACK, MESSAGES)]
    asked = [
        await _ask(fake, "slash"),
        await _ask(fake, "mention"),
        await _ask(fake, "slash", user=8_000_001),  # others, asking meanwhile
        await _ask(fake, "mention", user=8_000_002),
    ]
    for ref in asked:
        await fake.wait_for_reply(ref, T)
    await asyncio.sleep(0.3)  # room for a duplicate
    assert [rule.hits for rule in rules] == [options.get("times", 1)] * 2
    assert [len(replies_to(fake, ref)) for ref in asked] == [1, 1, 1, 1]


async def test_expired_interaction_is_logged_not_crashed(
    fake: FakeDiscord, fastbot: Running, caplog: pytest.LogCaptureFixture
) -> None:
    fake.interaction_deadline = 0.3  # Discord allows 3 s; the fake's clock is shorter
    fake.fail_next("POST", CALLBACK, status=None, delay=0.6, times=2)
    caplog.set_level(logging.WARNING)
    iid = await _ask(fake, "slash")

    def logged() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]

    for _ in range(100):
        if any("expired" in m for m in logged()):
            break
        await asyncio.sleep(0.05)
    tried = [r for r in fake.requests if r.path.startswith(f"/interactions/{iid}/")]
    assert [r.status for r in tried] == [404]  # no second, doomed reply on the dead token
    assert any("expired" in m for m in logged()), logged()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # a warning, no traceback
    # Still alive: the next question, in time, is answered once.
    fake.interaction_deadline = None
    again = await _ask(fake, "slash")
    await fake.wait_for_reply(again, T)
    assert len(replies_to(fake, again)) == 1
    assert not fastbot.task.done()
