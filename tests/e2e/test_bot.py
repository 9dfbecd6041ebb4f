"""StoryBot end to end: the real bot, over real sockets, against the local fake Discord."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from bot.adapter.curate import NOT_CURATOR
from bot.config import Settings
from bot.core import wording
from bot.core.matching import WORD_FOR_WORD
from bot.core.service import StoryService

from .conftest import Running, T, may_ping, start_bot
from .fake_discord import FakeDiscord, RecordedRequest

CURATOR_ROLES = ["Curators"]
ASK = "How far did they push the trolley?"


def embed_of(reply: RecordedRequest) -> dict:
    data = reply.json["data"] if "/callback" in reply.path else reply.json
    return data["embeds"][0]


def tree_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.yaml")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def expected(knowledge: Path, question: str) -> tuple[str, str]:
    """What the core says the answer is (the e2e test checks Discord shows exactly that)."""
    result = StoryService(knowledge).ask(question)
    assert result.best is not None, f"the core does not answer {question!r}"
    return result.best.entry.answer, result.best.entry.source


async def test_commands_are_synced_to_the_guild(fake: FakeDiscord, storybot: Running) -> None:
    commands = {c["name"]: c for c in fake.commands[fake.guild_id]}
    assert {"ask", "help", "about", "kb"} <= commands.keys()
    ask = commands["ask"]
    assert ask["options"][0]["name"] == "question" and ask["options"][0]["autocomplete"] is True
    kb = commands["kb"]
    # Curators are a role here: members without Manage Server must see /kb too (every
    # command checks the role); without a role, /kb is offered to Manage Server only.
    assert kb["default_member_permissions"] is None
    # DMs see global commands only: the readers' commands are there, for DMs only
    in_dms = {c["name"]: c for c in fake.commands.get(None, [])}
    assert in_dms.keys() == {"ask", "help", "about"}
    assert all(c["contexts"] == [1] for c in in_dms.values())
    subcommands = {o["name"] for o in kb["options"]}
    assert subcommands == {
        "add",
        "alias",
        "edit",
        "remove",
        "show",
        "list",
        "reload",
        "unanswered",
        "coverage",
    }


async def test_ask_answers_with_answer_and_source(
    fake: FakeDiscord, storybot: Running, knowledge: Path
) -> None:
    answer, source = expected(knowledge, ASK)
    iid = await fake.slash_command("ask", {"question": ASK})
    reply = await fake.wait_for_reply(iid, T)
    assert reply.json["type"] == 4
    embed = embed_of(reply)
    assert embed["description"] == answer
    assert source.split(" ")[2] in embed["fields"][0]["value"]
    assert embed["fields"][0]["value"].startswith("> ")
    assert reply.json["data"]["allowed_mentions"] == {"parse": []}


async def test_suggestion_button_answers_with_that_entry(fake: FakeDiscord, storybot: Running) -> None:
    service = storybot.bot.service
    vague = next(q for q in ("trolley", "the border", "diplomats", "north korea", "covid", "pushed",
                             "what colour was the trolley", "who cooked on the 32 hour train")
                 if service.ask(q).outcome == "suggest")  # fmt: skip
    iid = await fake.slash_command("ask", {"question": vague})
    reply = await fake.wait_for_reply(iid, T)
    assert reply.json["data"]["content"].startswith(wording.SUGGEST)
    buttons = [c for row in reply.json["data"]["components"] for c in row["components"]]
    assert 1 <= len(buttons) <= 3
    picked = buttons[-1]["custom_id"]
    entry = service.kb.get(picked.split(":")[2])
    assert entry is not None
    press = await fake.component(picked)
    update = await fake.wait_for_reply(press, T)
    assert update.json["type"] == 7  # the suggestions become the answer
    assert embed_of(update)["description"] == entry.answer


async def test_mention_is_answered_as_a_reply(fake: FakeDiscord, storybot: Running, knowledge: Path) -> None:
    answer, _ = expected(knowledge, ASK)
    mid = await fake.message_create(f"{fake.mention_bot} {ASK}", mentions=[fake.bot_user])
    reply = await fake.wait_for_reply(mid, T)
    assert embed_of(reply)["description"] == answer
    assert str(reply.json["message_reference"]["message_id"]) == str(mid)


@pytest.mark.parametrize("how", ["slash", "mention"])
async def test_everyone_in_a_question_never_pings(fake: FakeDiscord, storybot: Running, how: str) -> None:
    hostile = "@everyone @here <@666666666666666666> <@&444444444444444444> where did they fly?"
    if how == "slash":
        ref = await fake.slash_command("ask", {"question": hostile})
    else:
        ref = await fake.message_create(f"{fake.mention_bot} {hostile}", mentions=[fake.bot_user])
    reply = await fake.wait_for_reply(ref, T)
    body = reply.json.get("data", reply.json)
    assert not may_ping(body["allowed_mentions"])
    assert "@everyone" not in (body.get("content") or "")


async def test_non_curator_cannot_add(fake: FakeDiscord, storybot: Running, knowledge: Path) -> None:
    before = tree_digest(knowledge)
    iid = await fake.slash_command("kb add", roles=[])
    reply = await fake.wait_for_reply(iid, T)
    assert reply.json["type"] == 4 and reply.json["data"]["content"] == NOT_CURATOR
    assert reply.json["data"]["flags"] & 64  # ephemeral
    assert not fake.modals
    assert tree_digest(knowledge) == before


NEW_ENTRY = {
    "question": "What did the ministry's video show the group doing on the bridge?",
    "answer": "The ministry's video showed the group cheering as two people pushed the trolley across a railway bridge.",
    "source": "A video posted by the ministry showed embassy staff with their children and suitcases on a trolley, cheering as two people pushed it across a railway bridge.",
    "alternates": "what was the group doing on the railway bridge in the clip",
}


async def curator_adds(
    fake: FakeDiscord, fields: dict[str, str], *, roles: list[str] = CURATOR_ROLES
) -> RecordedRequest:
    iid = await fake.slash_command("kb add", roles=CURATOR_ROLES)
    opened = await fake.wait_for_reply(iid, T)
    assert opened.json["type"] == 9, opened.json
    submit = await fake.modal_submit(opened.json["data"]["custom_id"], fields, roles=roles)
    return await fake.wait_for_reply(submit, T)


async def test_curator_add_is_answerable_at_once_and_after_restart(
    fake: FakeDiscord, storybot: Running, settings: Settings
) -> None:
    done = await curator_adds(fake, NEW_ENTRY)
    assert done.json["data"]["content"].startswith("Added `"), done.json
    question = NEW_ENTRY["alternates"]
    iid = await fake.slash_command("ask", {"question": question})
    assert embed_of(await fake.wait_for_reply(iid, T))["description"] == NEW_ENTRY["answer"]
    await storybot.stop()
    again = await start_bot(settings)
    try:
        iid = await fake.slash_command("ask", {"question": question})
        assert embed_of(await fake.wait_for_reply(iid, T))["description"] == NEW_ENTRY["answer"]
    finally:
        await again.stop()


async def test_modal_from_a_non_curator_is_refused(
    fake: FakeDiscord, storybot: Running, knowledge: Path
) -> None:
    before = tree_digest(knowledge)
    done = await curator_adds(fake, NEW_ENTRY, roles=[])
    assert done.json["data"]["content"] == NOT_CURATOR
    assert tree_digest(knowledge) == before


async def test_add_with_a_source_not_in_the_article_explains(
    fake: FakeDiscord, storybot: Running, knowledge: Path
) -> None:
    before = tree_digest(knowledge)
    bad = {**NEW_ENTRY, "source": "A video posted by the ministry showed diplomats dancing on a bridge."}
    done = await curator_adds(fake, bad)
    text = done.json["data"]["content"]
    assert text.startswith("Nothing was saved")
    assert "Closest article sentence" in text and "cheering as two people" in text
    assert tree_digest(knowledge) == before


async def test_broken_yaml_on_disk_keeps_the_bot_answering(
    fake: FakeDiscord, storybot: Running, knowledge: Path
) -> None:
    answer, _ = expected(knowledge, ASK)
    entries = knowledge / "entries" / "article.yaml"
    entries.write_text(entries.read_text(encoding="utf-8") + "\n- id: [broken\n", encoding="utf-8")
    bot = storybot.bot
    for _ in range(100):
        if bot.last_reload_error is not None:
            break
        await asyncio.sleep(0.05)
    assert bot.last_reload_error is not None
    assert "article.yaml" in str(bot.last_reload_error)
    iid = await fake.slash_command("ask", {"question": ASK})
    assert embed_of(await fake.wait_for_reply(iid, T))["description"] == answer


async def test_dropped_gateway_resumes_and_answers(
    fake: FakeDiscord, storybot: Running, knowledge: Path
) -> None:
    answer, _ = expected(knowledge, ASK)
    await fake.drop_gateway()
    await fake.wait_for(lambda: fake.resume_count >= 1, T)
    iid = await fake.slash_command("ask", {"question": ASK})
    assert embed_of(await fake.wait_for_reply(iid, T))["description"] == answer


async def test_rate_limited_reply_is_delivered_exactly_once(fake: FakeDiscord, storybot: Running) -> None:
    rule = fake.fail_next("POST", r"^/channels/\d+/messages$", status=429, retry_after=0.3)
    mid = await fake.message_create(f"{fake.mention_bot} {ASK}", mentions=[fake.bot_user])
    await fake.wait_for_reply(mid, T)
    await asyncio.sleep(0.5)  # time for any duplicate to show up
    delivered = [r for r in fake.find_requests("POST", r"^/channels/\d+/messages$") if r.status == 200]
    assert rule.hits == 1
    assert len(delivered) == 1


async def test_hand_edit_on_disk_is_picked_up_without_a_restart(
    fake: FakeDiscord, storybot: Running, knowledge: Path
) -> None:
    phrasing = "distance covered by the pump trolley team"
    before = storybot.bot.service.ask(phrasing)
    assert before.reason != WORD_FOR_WORD
    path = knowledge / "entries" / "article.yaml"
    text = path.read_text(encoding="utf-8")
    anchor = "  question: How far did they push the trolley?\n  alternates:\n"
    assert anchor in text
    path.write_text(text.replace(anchor, anchor + f"    - {phrasing}\n"), encoding="utf-8")
    for _ in range(100):
        result = storybot.bot.service.ask(phrasing)
        if result.reason == WORD_FOR_WORD:
            break
        await asyncio.sleep(0.05)
    iid = await fake.slash_command("ask", {"question": phrasing})
    embed = embed_of(await fake.wait_for_reply(iid, T))
    assert result.reason == WORD_FOR_WORD  # the edit was picked up without a restart
    assert "footer" not in embed  # nothing internal (id, score) shown to readers
    assert fake.find_message_with_component("storybot:vote:trolley-distance:1") is not None
