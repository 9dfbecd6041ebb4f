"""Gateway faults through the fake Discord: the real client resumes or re-identifies, answers the
next question, and handles the events sent while it was away exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from tests.e2e.fake_discord import FakeDiscord

from .conftest import ASK, Running, T, replies_to

Fault = Callable[[FakeDiscord], Awaitable[object]]


async def _stop_acks(fake: FakeDiscord) -> None:
    fake.stop_heartbeat_acks = True


FAULTS: dict[str, tuple[Fault, str]] = {
    # name: (how to break the connection, what the client must do: "resume" or "identify")
    "dropped TCP (1006)": (lambda f: f.drop_gateway(None), "resume"),
    "close 4000 (unknown error)": (lambda f: f.drop_gateway(4000), "resume"),
    "close 4009 (session timed out)": (lambda f: f.drop_gateway(4009), "identify"),
    "invalid session, resumable": (lambda f: f.invalidate_session(True), "resume"),
    "invalid session, not resumable": (lambda f: f.invalidate_session(False), "identify"),
    "RECONNECT request (op 7)": (lambda f: f.send_reconnect(), "resume"),
    "heartbeat ACKs stop": (_stop_acks, "resume"),
}


@pytest.mark.parametrize("name", list(FAULTS))
async def test_gateway_fault_then_next_question_is_answered_once(
    fake: FakeDiscord, fastbot: Running, name: str
) -> None:
    fault, recovery = FAULTS[name]
    identifies, resumes, connections = fake.identify_count, fake.resume_count, fake.connections
    await fault(fake)
    # Questions sent while the bot is away: replayed on RESUME (and answered once), or gone
    # with the session (Discord does not redeliver to a new session either).
    away = [await fake.message_create(f"{fake.mention_bot} {ASK}", mentions=[fake.bot_user])]
    if name == "heartbeat ACKs stop":
        await fake.wait_for(lambda: fake.connections > connections, T)
        fake.stop_heartbeat_acks = False
    if recovery == "resume":
        await fake.wait_for(lambda: fake.resume_count > resumes, T)
    else:
        await fake.wait_for(lambda: fake.identify_count > identifies, T)
    await fake.wait_for(lambda: fastbot.bot.connected(), T)
    iid = await fake.slash_command("ask", {"question": ASK})
    mid = await fake.message_create(f"{fake.mention_bot} {ASK}", mentions=[fake.bot_user])
    await fake.wait_for_reply(iid, T)
    await fake.wait_for_reply(mid, T)
    if recovery == "resume":
        for ref in away:
            await fake.wait_for_reply(ref, T)
    await asyncio.sleep(0.3)  # room for a duplicate to show up
    assert len(replies_to(fake, iid)) == 1
    assert len(replies_to(fake, mid)) == 1
    for ref in away:
        assert len(replies_to(fake, ref)) == (1 if recovery == "resume" else 0)


async def test_many_drops_in_a_row_still_answer_everything_once(fake: FakeDiscord, fastbot: Running) -> None:
    asked = []
    for n in range(6):
        resumes = fake.resume_count
        asked.append(await fake.slash_command("ask", {"question": ASK}, user=fake.make_user(7000 + n)))
        await fake.drop_gateway(None if n % 2 else 4000)
        asked.append(await fake.slash_command("ask", {"question": ASK}, user=fake.make_user(7100 + n)))
        await fake.wait_for(lambda r=resumes: fake.resume_count > r, T)
    for ref in asked:
        await fake.wait_for_reply(ref, T)
    await asyncio.sleep(0.3)
    assert [len(replies_to(fake, ref)) for ref in asked] == [1] * len(asked)
