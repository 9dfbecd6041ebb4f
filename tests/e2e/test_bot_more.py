"""More of the bot end to end: the deployed process, sharding, cooldown, votes, curation tools."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from bot.adapter.curate import NOT_CURATOR
from bot.config import Settings
from bot.core import wording
from bot.core.knowledge import uncited_sentences
from bot.core.service import StoryService
from bot.health import check_heartbeat

from .conftest import ROOT, TOKEN, Running, T, start_bot
from .fake_discord import FakeDiscord
from .test_bot import ASK, CURATOR_ROLES, embed_of, expected


async def test_the_deployed_command_answers_and_stops_on_sigterm(
    fake: FakeDiscord, knowledge: Path, tmp_path: Path
) -> None:
    answer, _ = expected(knowledge, ASK)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DISCORD_TOKEN": TOKEN,
        "STORYBOT_API_BASE": fake.api_base,
        "STORYBOT_GATEWAY_URL": fake.gateway_url,
        "STORYBOT_KNOWLEDGE": str(knowledge),
        "STORYBOT_DATA": str(tmp_path / "data"),
        "STORYBOT_GUILD_ID": str(fake.guild_id),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"], cwd=tmp_path, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        await fake.wait_until_identified(timeout=30)
        await fake.wait_for_request(r"PUT /applications/\d+/guilds/\d+/commands", 30)
        iid = await fake.slash_command("ask", {"question": ASK})
        assert embed_of(await fake.wait_for_reply(iid, T))["description"] == answer
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        output, _ = await asyncio.to_thread(proc.communicate, timeout=15)
        stopped_in = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output
    assert stopped_in < 5, f"took {stopped_in:.1f}s to stop"
    assert "shutting down" in output and "Traceback" not in output
    assert TOKEN not in output


async def test_sharded_bot_connects_every_shard_and_answers(
    fake: FakeDiscord, settings: Settings, knowledge: Path
) -> None:
    fake.shard_count = 2
    answer, _ = expected(knowledge, ASK)
    sharded = replace(settings, shard_count=2)
    running = await start_bot(sharded, fast_identify=True)
    try:
        await fake.wait_until_identified(timeout=T, count=2)
        assert {tuple(i["shard"]) for i in fake.identifies} == {(0, 2), (1, 2)}
        iid = await fake.slash_command("ask", {"question": ASK})
        assert embed_of(await fake.wait_for_reply(iid, T))["description"] == answer
    finally:
        await running.stop()


async def test_cooldown_answers_spam_with_one_polite_message(fake: FakeDiscord, settings: Settings) -> None:
    running = await start_bot(replace(settings, cooldown_questions=2, cooldown_seconds=60))
    try:
        spammer = fake.make_user(777000000000000001, "spammer")
        ids = [await fake.message_create(f"{fake.mention_bot} {ASK}", spammer, mentions=[fake.bot_user]) for _ in range(6)]  # fmt: skip
        replies = [await fake.wait_for_reply(mid, T) for mid in ids[:3]]
        assert "faster than I can keep up" in replies[2].json["content"]
        await asyncio.sleep(0.5)  # the rest must stay unanswered: give them time to show up
        for mid in ids[3:]:
            assert not [
                r
                for r in fake.find_requests("POST", r"/messages$")
                if str((r.json or {}).get("message_reference", {}).get("message_id")) == str(mid)
            ]
        other = await fake.message_create(f"{fake.mention_bot} {ASK}", mentions=[fake.bot_user])
        assert embed_of(await fake.wait_for_reply(other, T))["title"]
        iid = await fake.slash_command("ask", {"question": ASK}, user=spammer)
        notice = await fake.wait_for_reply(iid, T)
        assert notice.json["data"]["flags"] & 64 and "faster" in notice.json["data"]["content"]
    finally:
        await running.stop()


async def test_votes_count_once_per_user_per_answer(fake: FakeDiscord, storybot: Running) -> None:
    iid = await fake.slash_command("ask", {"question": ASK})
    reply = await fake.wait_for_reply(iid, T)
    button = reply.json["data"]["components"][0]["components"][0]["custom_id"]
    assert button.startswith("storybot:vote:") and button.endswith(":1")
    voter = fake.make_user(777000000000000002, "voter")
    first = await fake.wait_for_reply(await fake.component(button, user=voter), T)
    second = await fake.wait_for_reply(await fake.component(button, user=voter), T)
    assert first.json["data"]["content"] == "Thanks, noted."
    assert "already" in second.json["data"]["content"]
    entry_id = button.split(":")[2]
    assert storybot.bot.feedback.vote_counts(entry_id) == (1, 0)


async def test_thanks_gets_a_welcome_and_is_not_listed_as_unanswered(
    fake: FakeDiscord, storybot: Running
) -> None:
    mid = await fake.message_create(
        f"{fake.mention_bot} thanks so much, that was really helpful", mentions=[fake.bot_user]
    )
    reply = await fake.wait_for_reply(mid, T)
    assert reply.json["content"] == wording.WELCOME
    iid = await fake.slash_command("kb unanswered", roles=CURATOR_ROLES)
    listing = (await fake.wait_for_reply(iid, T)).json["data"]
    assert "thanks" not in listing["content"]


async def test_autocomplete_help_and_about(fake: FakeDiscord, storybot: Running) -> None:
    iid = await fake.autocomplete("ask", {"question": "troll"}, "question")
    choices = (await fake.wait_for_reply(iid, T)).json["data"]["choices"]
    assert 1 <= len(choices) <= 25 and any("trolley" in c["name"].lower() for c in choices)
    help_reply = await fake.wait_for_reply(await fake.slash_command("help"), T)
    assert "/ask" in embed_of(help_reply)["description"]
    about = embed_of(await fake.wait_for_reply(await fake.slash_command("about"), T))
    fields = {f["name"]: f["value"] for f in about["fields"]}
    assert fields["Entries"] == str(len(storybot.bot.service.kb))


async def test_kb_in_a_dm_is_refused_politely_and_ask_works(
    fake: FakeDiscord, storybot: Running, knowledge: Path
) -> None:
    answer, _ = expected(knowledge, ASK)
    # Discord does not offer /kb in DMs; a crafted interaction is still refused politely
    refused = await fake.wait_for_reply(await fake.slash_command("kb list", guild=False, forged=True), T)
    assert refused.json["type"] == 4 and refused.json["data"]["flags"] & 64
    asked = await fake.wait_for_reply(await fake.slash_command("ask", {"question": ASK}, guild=False), T)
    assert embed_of(asked)["description"] == answer


async def test_heartbeat_file_says_healthy_while_connected(fake: FakeDiscord, settings: Settings) -> None:
    running = await start_bot(replace(settings, health_max_age_s=1.5))
    try:
        for _ in range(100):
            if settings.heartbeat_file.exists():
                break
            await asyncio.sleep(0.05)
        assert check_heartbeat(settings.heartbeat_file, 1.5)[0]
    finally:
        await running.stop()
    await asyncio.sleep(1.7)
    healthy, why = check_heartbeat(settings.heartbeat_file, 1.5)
    assert not healthy and "last heartbeat" in why


async def test_curator_tools_alias_show_list_edit_remove_reload_coverage(
    fake: FakeDiscord, storybot: Running, knowledge: Path
) -> None:
    service = storybot.bot.service

    async def kb(command: str, options: dict | None = None) -> dict:
        iid = await fake.slash_command(f"kb {command}", options, roles=CURATOR_ROLES)
        return (await fake.wait_for_reply(iid, T)).json

    done = await kb(
        "alias", {"entry": "trolley-distance", "phrasing": "length of the handcart push in metres"}
    )
    assert "Added" in done["data"]["content"]
    assert service.ask("length of the handcart push in metres").best.entry.id == "trolley-distance"  # type: ignore[union-attr]

    shown = await kb("show", {"entry": "trolley-distance"})
    assert "length of the handcart push in metres" in str(shown["data"]["embeds"][0])

    page = await kb("list")
    assert "page 1/" in page["data"]["content"]
    next_button = page["data"]["components"][0]["components"][-1]["custom_id"]
    turned = await fake.wait_for_reply(await fake.component(next_button, roles=CURATOR_ROLES), T)
    assert turned.json["type"] == 7 and "page 2/" in turned.json["data"]["content"]

    opened = await kb("edit", {"entry": "bus-ride-length"})
    assert opened["type"] == 9
    old = service.kb.get("bus-ride-length")
    assert old is not None
    fields = {
        "question": old.question,
        "answer": "They spent two hours on a bus after the train.",
        "source": old.source,
        "alternates": "\n".join(old.alternates),
    }
    saved = await fake.wait_for_reply(
        await fake.modal_submit(opened["data"]["custom_id"], fields, roles=CURATOR_ROLES), T
    )
    assert saved.json["data"]["content"] == "Saved `bus-ride-length`."
    assert service.kb.get("bus-ride-length").answer == fields["answer"]  # type: ignore[union-attr]

    confirm = await kb("remove", {"entry": "bus-ride-length"})
    delete = confirm["data"]["components"][0]["components"][0]["custom_id"]
    refused = await fake.wait_for_reply(await fake.component(delete, roles=[]), T)
    assert refused.json["data"]["content"] == NOT_CURATOR and service.kb.get("bus-ride-length") is not None
    deleted = await fake.wait_for_reply(await fake.component(delete, roles=CURATOR_ROLES), T)
    assert deleted.json["data"]["content"] == "Deleted `bus-ride-length`."
    assert service.kb.get("bus-ride-length") is None

    coverage = (await kb("coverage"))["data"]["content"]
    uncited = uncited_sentences(service.kb)
    assert (
        coverage.startswith(f"{len(uncited)} sentence") if uncited else coverage.startswith("Every sentence")
    )

    broken = knowledge / "entries" / "zz-broken.yaml"
    broken.write_text(
        "- id: broken\n  question: Q?\n  answer: A.\n  source: Not in the article.\n", encoding="utf-8"
    )
    reloaded = await kb("reload")
    text = reloaded["data"]["content"]
    assert "still serving the last good version" in text and "zz-broken.yaml" in text and "`broken`" in text
    broken.unlink()
    reloaded = await kb("reload")
    assert reloaded["data"]["content"].startswith("Reloaded:")


async def test_a_mention_inside_a_question_does_not_break_it(
    fake: FakeDiscord, storybot: Running, knowledge: Path
) -> None:
    """/ask with a friend mentioned, and a message mentioning the bot and a friend: both are
    answered as the plain question is, and no raw mention reaches the unanswered list."""
    question = "How far did they push the trolley?"
    entry = StoryService(knowledge).ask(question).best
    assert entry is not None
    iid = await fake.slash_command("ask", {"question": f"<@123> {question}"})
    reply = await fake.wait_for_reply(iid, T)
    assert reply.json["data"]["embeds"][0]["description"] == entry.entry.answer
    mid = await fake.message_create(f"{fake.mention_bot} <@42> {question}", mentions=[fake.bot_user])
    reply = await fake.wait_for_reply(mid, T)
    assert reply.json["embeds"][0]["description"] == entry.entry.answer
    iid = await fake.slash_command("ask", {"question": "<@123> who won the cricket world cup in 1996"})
    await fake.wait_for_reply(iid, T)
    for _ in range(100):  # it is listed in the background, after the reply
        listed = await asyncio.to_thread(storybot.bot.feedback.top_unanswered, 10)
        if any("cricket" in row.question for row in listed):
            break
        await asyncio.sleep(0.05)
    assert [row.question for row in listed if "cricket" in row.question] == [
        "who won the cricket world cup in 1996"
    ]


async def test_curator_text_is_shown_safely_and_the_article_verbatim(
    fake: FakeDiscord, storybot: Running, knowledge: Path
) -> None:
    """A curator's answer with mentions and markdown is shown as written: nothing renders as a
    ping or as formatting (links are refused when saved: tests/e2e/test_curation.py); the
    article's source sentence stays verbatim."""
    source = StoryService(knowledge).kb.entries[0].source
    hostile = "@everyone see [the BBC] <@123456789012345678> <@&987654321098765432> **now** ||spoiler||"
    storybot.bot.service.add(
        {
            "id": "hostile-answer",
            "question": "What does the **curator** note say?",
            "answer": hostile,
            "source": source,
        },
        author="curator",
    )
    iid = await fake.slash_command("ask", {"question": "What does the curator note say?"})
    embed = embed_of(await fake.wait_for_reply(iid, T))
    shown = embed["description"]
    assert "@everyone" not in shown and "<@123456789012345678>" not in shown and "<@&" not in shown
    assert "**now**" not in shown and "now" in shown and "||spoiler||" not in shown
    assert "**curator**" not in embed["title"] and "curator" in embed["title"]
    assert embed["fields"][0]["value"].replace("\\", "").lstrip("> ") == source.replace("\\", "")
