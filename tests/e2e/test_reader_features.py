"""What readers meet in a busy server: messages that update cleanly, a Delete button for the
asker, one answer per question per minute, and did-you-mean choices that belong to the asker."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from bot.adapter import ask
from bot.config import Settings
from bot.core import wording

from .conftest import Running, T, start_bot
from .fake_discord import FakeDiscord, RecordedRequest
from .test_bot import ASK, CURATOR_ROLES, embed_of, expected

MANAGE_MESSAGES = str(1 << 13 | 1 << 10 | 1 << 11)  # and view / send


def body_of(reply: RecordedRequest) -> dict:
    return reply.json.get("data", reply.json) if "/callback" in reply.path else reply.json


def buttons_of(message: dict) -> list[dict]:
    return [c for row in message["components"] for c in row["components"]]


def vague_question(running: Running) -> str:
    """A question the matcher answers with suggestions, not an answer."""
    service = running.bot.service
    return next(q for q in ("trolley", "the border", "diplomats", "north korea", "covid", "pushed",
                            "what colour was the trolley", "who cooked on the 32 hour train")
                if service.ask(q).outcome == "suggest")  # fmt: skip


async def test_a_picked_suggestion_replaces_the_whole_message(fake: FakeDiscord, storybot: Running) -> None:
    asker = fake.make_user(777000000000000101, "asker")
    iid = await fake.slash_command("ask", {"question": vague_question(storybot)}, user=asker)
    await fake.wait_for_reply(iid, T)
    message = fake.messages[fake.interactions[iid].original_id or 0]
    assert message["content"].startswith(wording.SUGGEST)
    choice = buttons_of(message)[0]["custom_id"]
    entry = storybot.bot.service.kb.get(choice.split(":")[2])
    assert entry is not None
    update = await fake.wait_for_reply(await fake.component(choice, message=message, user=asker), T)
    assert update.json["type"] == 7
    assert message["content"] == ""  # "did you mean" is gone, not left above the answer
    assert [e["description"] for e in message["embeds"]] == [entry.answer]
    labels = [b.get("label") for b in buttons_of(message)]
    assert labels == ["Helpful", "Not helpful", "Delete"]


async def test_a_did_you_mean_question_reaches_the_curators_list(
    fake: FakeDiscord, storybot: Running
) -> None:
    """Not answered outright, so a curator can add it to an entry as a phrasing; an answered
    question is not listed."""
    vague = vague_question(storybot)
    for question in (vague, ASK):
        await fake.wait_for_reply(await fake.slash_command("ask", {"question": question}), T)
    for _ in range(100):  # it is listed in the background, after the reply
        listed = [row.question for row in storybot.bot.feedback.top_unanswered(50)]
        if vague in listed:
            break
        await asyncio.sleep(0.05)
    assert vague in listed and ASK not in listed


async def test_someone_elses_choice_is_answered_privately(fake: FakeDiscord, storybot: Running) -> None:
    asker = fake.make_user(777000000000000102, "asker")
    other = fake.make_user(777000000000000103, "other")
    iid = await fake.slash_command("ask", {"question": vague_question(storybot)}, user=asker)
    await fake.wait_for_reply(iid, T)
    message = fake.messages[fake.interactions[iid].original_id or 0]
    before = (message["content"], message["components"])
    choice = buttons_of(message)[0]["custom_id"]
    entry = storybot.bot.service.kb.get(choice.split(":")[2])
    assert entry is not None
    reply = await fake.wait_for_reply(await fake.component(choice, message=message, user=other), T)
    assert reply.json["type"] == 4 and body_of(reply)["flags"] & 64  # a private answer
    assert body_of(reply)["embeds"][0]["description"] == entry.answer
    assert (message["content"], message["components"]) == before  # the asker's message is untouched


async def test_a_confirmed_delete_leaves_no_live_button(fake: FakeDiscord, storybot: Running) -> None:
    iid = await fake.slash_command("kb remove", {"entry": "trolley-distance"}, roles=CURATOR_ROLES)
    confirm = body_of(await fake.wait_for_reply(iid, T))
    button = confirm["components"][0]["components"][0]["custom_id"]
    message = fake.find_message_with_component(button)
    assert message is not None
    done = await fake.wait_for_reply(await fake.component(button, message=message, roles=CURATOR_ROLES), T)
    assert done.json["type"] == 7
    assert message["content"] == "Deleted `trolley-distance`." and message["components"] == []


@pytest.mark.parametrize("how", ["slash", "mention"])
async def test_the_asker_can_delete_the_answer_and_nobody_else(
    fake: FakeDiscord, storybot: Running, how: str
) -> None:
    asker = fake.make_user(777000000000000104, "asker")
    other = fake.make_user(777000000000000105, "other")
    if how == "slash":
        iid = await fake.slash_command("ask", {"question": ASK}, user=asker)
        await fake.wait_for_reply(iid, T)
        mid = fake.interactions[iid].original_id or 0
    else:
        ref = await fake.message_create(f"{fake.mention_bot} {ASK}", asker, mentions=[fake.bot_user])
        await fake.wait_for_reply(ref, T)
        mid = next(m for m, msg in fake.messages.items()
                   if msg.get("message_reference", {}).get("message_id") == str(ref))  # fmt: skip
    message = fake.messages[mid]
    delete = buttons_of(message)[-1]
    assert delete["label"] == "Delete" and delete["custom_id"] == f"storybot:delete:{asker['id']}"
    refused = await fake.wait_for_reply(
        await fake.component(delete["custom_id"], message=message, user=other), T
    )
    assert body_of(refused)["content"] == ask.NOT_YOURS and body_of(refused)["flags"] & 64
    assert mid in fake.messages
    await fake.component(delete["custom_id"], message=message, user=asker)
    await fake.wait_for(lambda: mid not in fake.messages, T)


async def test_a_moderator_can_delete_an_answer(fake: FakeDiscord, storybot: Running) -> None:
    iid = await fake.slash_command("ask", {"question": ASK})
    await fake.wait_for_reply(iid, T)
    mid = fake.interactions[iid].original_id or 0
    moderator = fake.make_user(777000000000000106, "moderator")
    await fake.component(buttons_of(fake.messages[mid])[-1]["custom_id"], message=fake.messages[mid],
                         user=moderator, permissions=MANAGE_MESSAGES)  # fmt: skip
    await fake.wait_for(lambda: mid not in fake.messages, T)


async def test_the_delete_button_expires(
    fake: FakeDiscord, storybot: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    asker = fake.make_user(777000000000000107, "asker")
    iid = await fake.slash_command("ask", {"question": ASK}, user=asker)
    await fake.wait_for_reply(iid, T)
    mid = fake.interactions[iid].original_id or 0
    monkeypatch.setattr(ask, "DELETE_WINDOW_S", -1.0)
    pid = await fake.component(f"storybot:delete:{asker['id']}", message=fake.messages[mid], user=asker)
    assert "works for" in body_of(await fake.wait_for_reply(pid, T))["content"]
    assert mid in fake.messages


async def test_the_same_question_in_one_channel_gets_one_answer_and_pointers(
    fake: FakeDiscord, settings: Settings, knowledge: Path
) -> None:
    answer, _ = expected(knowledge, ASK)
    running = await start_bot(replace(settings, same_question_window_s=60.0))
    try:
        first = await fake.message_create(f"{fake.mention_bot} {ASK}", mentions=[fake.bot_user])
        full = await fake.wait_for_reply(first, T)
        assert embed_of(full)["description"] == answer
        answer_id = next(m for m, msg in fake.messages.items()
                         if msg.get("message_reference", {}).get("message_id") == str(first))  # fmt: skip
        # another reader, other words, same entry: a reply linking the answer, not a copy
        second = await fake.message_create(
            f"{fake.mention_bot} how far did they push that trolley",
            fake.make_user(),
            mentions=[fake.bot_user],
        )
        pointer = await fake.wait_for_reply(second, T)
        assert not pointer.json.get("embeds") and str(answer_id) in pointer.json["content"]
        # /ask: a private pointer
        iid = await fake.slash_command("ask", {"question": ASK})
        private = body_of(await fake.wait_for_reply(iid, T))
        assert private["flags"] & 64 and str(answer_id) in private["content"]
        # another channel gets its own answer
        elsewhere = fake.snowflake()
        fake.channels[elsewhere] = fake._text_channel(elsewhere, "elsewhere")
        iid = await fake.slash_command("ask", {"question": ASK}, channel_id=elsewhere)
        assert embed_of(await fake.wait_for_reply(iid, T))["description"] == answer
        # once the answer is deleted, the next asker gets a full answer again
        del_id = buttons_of(fake.messages[answer_id])[-1]["custom_id"]
        asker = fake.messages[answer_id]["referenced_message"]["author"]
        await fake.component(del_id, message=fake.messages[answer_id], user=asker)
        await fake.wait_for(lambda: answer_id not in fake.messages, T)
        again = await fake.message_create(f"{fake.mention_bot} {ASK}", mentions=[fake.bot_user])
        assert embed_of(await fake.wait_for_reply(again, T))["description"] == answer
    finally:
        await running.stop()
