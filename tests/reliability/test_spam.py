"""A burst of 100 questions from one user: the per-user cooldown holds (one polite message, the
rest dropped for mentions; a private notice for every slash command), and others are answered."""

from __future__ import annotations

import asyncio

from bot.adapter.ask import SLOW_DOWN
from tests.e2e.fake_discord import FakeDiscord

from .conftest import ASK, Running, T, body_of, replies_to, until

BURST = 100
SLOW = SLOW_DOWN.split("{")[0]


async def test_burst_from_one_user_via_mentions(fake: FakeDiscord, fastbot: Running) -> None:
    spammer = fake.make_user(31337, "spammer")
    rate = fastbot.bot.cooldown.rate
    burst = [
        await fake.message_create(f"{fake.mention_bot} {ASK} {n}", spammer, mentions=[fake.bot_user])
        for n in range(BURST)
    ]
    others = [
        await fake.message_create(
            f"{fake.mention_bot} {ASK}", fake.make_user(40_000 + n), mentions=[fake.bot_user]
        )
        for n in range(5)
    ]
    for ref in others:
        await fake.wait_for_reply(ref, T)
    await until(lambda: sum(len(replies_to(fake, r)) for r in burst) >= rate + 1, T, "the burst's replies")
    await asyncio.sleep(0.5)  # room for anything more
    answered = [r for ref in burst for r in replies_to(fake, ref)]
    slow = [r for r in answered if (body_of(r).get("content") or "").startswith(SLOW)]
    assert len(answered) == rate + 1, len(answered)  # `rate` answers and one "slow down"
    assert len(slow) == 1
    assert all(len(replies_to(fake, ref)) == 1 for ref in others)


async def test_burst_from_one_user_via_slash(fake: FakeDiscord, fastbot: Running) -> None:
    spammer = fake.make_user(31338, "spammer")
    rate = fastbot.bot.cooldown.rate
    burst = [await fake.slash_command("ask", {"question": f"{ASK} {n}"}, user=spammer) for n in range(BURST)]
    other = await fake.slash_command("ask", {"question": ASK}, user=fake.make_user(40_100))
    await fake.wait_for_reply(other, T)
    for ref in burst:  # every interaction must be answered, or Discord shows "failed"
        await fake.wait_for_reply(ref, T)
    await asyncio.sleep(0.2)
    bodies = [body_of(replies_to(fake, ref)[0]) for ref in burst]
    assert all(len(replies_to(fake, ref)) == 1 for ref in burst)
    notices = [b for b in bodies if (b.get("content") or "").startswith(SLOW)]
    assert len(notices) == BURST - rate
    assert all(b["flags"] & 64 for b in notices)  # private: the channel sees nothing
    assert "embeds" in body_of(replies_to(fake, other)[0])
