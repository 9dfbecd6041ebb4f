"""Curators through Discord: edits that never lose work, forms that belong to their opener, the
unanswered list worked to the end, and errors that say whose fault they are."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from pathlib import Path

from filelock import FileLock

from bot.adapter import curate
from bot.config import Settings
from bot.core import store
from bot.core.knowledge import load_knowledge

from .conftest import Running, T, start_bot
from .fake_discord import FakeDiscord, RecordedRequest
from .test_bot import ASK, CURATOR_ROLES, tree_digest

NEW_ENTRY = {
    "question": "How did the diplomats cross the border into Russia?",
    "answer": "They pushed a rail trolley across the bridge into Russia.",
    "source": "They then boarded a rail trolley and pushed themselves for around half a mile "
    "(around a kilometre) across the border into Russia.",
    "alternates": "",
}


def body_of(reply: RecordedRequest) -> dict:
    return reply.json.get("data", reply.json) if "/callback" in reply.path else reply.json


def components(body: dict) -> list[dict]:
    return [c for row in body.get("components") or [] for c in row.get("components") or []]


async def kb(fake: FakeDiscord, command: str, options: dict | None = None, **kw: object) -> RecordedRequest:
    kw.setdefault("roles", CURATOR_ROLES)
    return await fake.wait_for_reply(await fake.slash_command(f"kb {command}", options, **kw), T)


async def submit(fake: FakeDiscord, form: RecordedRequest, fields: dict, **kw: object) -> dict:
    kw.setdefault("roles", CURATOR_ROLES)
    sid = await fake.modal_submit(form.json["data"]["custom_id"], fields, **kw)
    return body_of(await fake.wait_for_reply(sid, T))


def form_fields(form: RecordedRequest) -> dict[str, str]:
    """What the form shows in each field (its defaults)."""
    out = {}
    for top in form.json["data"]["components"]:
        for c in top.get("components") or [top.get("component") or {}]:
            if c.get("custom_id"):
                out[c["custom_id"]] = c.get("value") or ""
    return out


async def test_an_entry_with_several_sources_saves_unchanged(fake: FakeDiscord, storybot: Running) -> None:
    multi = [e for e in storybot.bot.service.kb.entries if len(e.sources) > 1]
    assert multi, "the shipped base has entries with several source sentences"
    for entry in multi:
        form = await kb(fake, "edit", {"entry": entry.id})
        shown = form_fields(form)
        assert shown["source"].splitlines() == list(entry.sources)  # one sentence per line
        saved = await submit(fake, form, shown)
        assert saved["content"] == f"Saved `{entry.id}`.", saved["content"]
        assert storybot.bot.service.kb.get(entry.id) == entry  # nothing changed


async def test_an_edit_over_a_newer_version_is_refused_and_reopens_with_the_current_text(
    fake: FakeDiscord, storybot: Running, knowledge: Path
) -> None:
    form = await kb(fake, "edit", {"entry": "trolley-distance"})  # curator A opens the form
    done = await kb(fake, "alias", {"entry": "trolley-distance", "phrasing": "how long was the push"})  # B
    assert "Added" in body_of(done)["content"]
    mine = {**form_fields(form), "answer": "About a kilometre, across the border."}
    refused = await submit(fake, form, mine)
    assert refused["content"].startswith("Nothing was saved: someone changed `trolley-distance`")
    assert "• alternates: + “how long was the push”" in refused["content"]
    assert "About a kilometre, across the border." in refused["content"]  # A's text, to copy
    now = load_knowledge(knowledge).by_id["trolley-distance"]
    assert "how long was the push" in now.alternates and now.answer != mine["answer"]  # B's alias kept
    [reopen] = components(refused)
    assert reopen["custom_id"] == "storybot:reedit:trolley-distance"
    message = fake.find_message_with_component(reopen["custom_id"])
    again = await fake.wait_for_reply(
        await fake.component(reopen["custom_id"], message, roles=CURATOR_ROLES), T
    )
    assert again.json["type"] == 9 and "how long was the push" in form_fields(again)["alternates"]
    saved = await submit(fake, again, {**form_fields(again), "answer": mine["answer"]})
    assert saved["content"] == "Saved `trolley-distance`."
    now = load_knowledge(knowledge).by_id["trolley-distance"]
    assert now.answer == mine["answer"] and "how long was the push" in now.alternates


async def test_a_delete_confirmed_before_an_edit_deletes_nothing(
    fake: FakeDiscord, storybot: Running, knowledge: Path
) -> None:
    confirm = body_of(await kb(fake, "remove", {"entry": "trolley-distance"}))
    [delete] = components(confirm)
    await kb(fake, "alias", {"entry": "trolley-distance", "phrasing": "how long was the push"})
    message = fake.find_message_with_component(delete["custom_id"])
    reply = await fake.wait_for_reply(
        await fake.component(delete["custom_id"], message, roles=CURATOR_ROLES), T
    )
    assert "changed since you asked to delete it" in body_of(reply)["content"]
    assert load_knowledge(knowledge).get("trolley-distance") is not None


async def test_someone_else_submitting_a_curators_form_does_not_spoil_it(
    fake: FakeDiscord, storybot: Running
) -> None:
    curator = fake.make_user(777000000000000201, "curator")
    intruder = fake.make_user(777000000000000202, "intruder")
    form = await kb(fake, "add", user=curator)
    hostile = await submit(fake, form, {**NEW_ENTRY, "answer": "pwned"}, user=intruder, roles=[])
    assert hostile["content"] == curate.NOT_YOUR_FORM and hostile["flags"] & 64
    saved = await submit(fake, form, NEW_ENTRY, user=curator)
    assert saved["content"].startswith("Added `"), saved["content"]
    added = storybot.bot.service.kb.get(saved["content"].split("`")[1])
    assert added is not None and added.answer == NEW_ENTRY["answer"]
    # One phrasing: the reply says more would help, and how to add them.
    assert "It has 1 phrasing:" in saved["content"] and "`/kb alias`" in saved["content"]


async def test_broken_files_are_not_blamed_on_the_curators_entry(
    fake: FakeDiscord, storybot: Running, knowledge: Path
) -> None:
    broken = knowledge / "entries" / "zz-broken.yaml"
    broken.write_text("- id: broken\n  question: [unclosed\n", encoding="utf-8")
    good = await submit(fake, await kb(fake, "add"), NEW_ENTRY)
    assert good["content"].startswith("Your change looks right, but nothing can be saved")
    assert "entries/zz-broken.yaml" in good["content"] and str(knowledge) not in good["content"]
    assert [c["custom_id"] for c in components(good)] == ["storybot:retry"]
    wrong = await submit(fake, await kb(fake, "add"), {**NEW_ENTRY, "source": "Sorokin flew a helicopter."})
    assert (
        wrong["content"].startswith("Nothing was saved. Please fix") and "zz-broken" not in wrong["content"]
    )
    alias = body_of(
        await kb(fake, "alias", {"entry": "trolley-distance", "phrasing": "how long was the push"})
    )
    assert alias["content"].startswith("Your change looks right")
    broken.unlink()
    # the kept text comes back in the form, marked as a draft
    form = await kb(fake, "add")
    assert "draft" in form.json["data"]["title"]
    assert form_fields(form)["source"] == "Sorokin flew a helicopter."


async def test_server_paths_are_never_shown_to_curators(
    fake: FakeDiscord, storybot: Running, knowledge: Path
) -> None:
    shown = str(body_of(await kb(fake, "show", {"entry": "trolley-distance"}))["embeds"][0])
    assert "in entries/article.yaml:" in shown and str(knowledge) not in shown
    (knowledge / "entries" / "zz-broken.yaml").write_text(
        "- id: broken\n  question: Q?\n  answer: A.\n  source: Not in the article.\n", encoding="utf-8"
    )
    text = body_of(await kb(fake, "reload"))["content"]
    assert "[entries/zz-broken.yaml:4]" in text and str(knowledge) not in text


async def test_links_in_an_entry_are_refused_with_the_reason(fake: FakeDiscord, storybot: Running) -> None:
    before = len(storybot.bot.service.kb)
    answer = "See [bbc.co.uk/news](https://evil.example/phish) and discord.gg/freenitro"
    refused = await submit(fake, await kb(fake, "add"), {**NEW_ENTRY, "answer": answer})
    assert "contains a link" in refused["content"] and "in words" in refused["content"]
    assert len(storybot.bot.service.kb) == before


async def test_an_id_made_from_the_question_ends_on_a_whole_word(
    fake: FakeDiscord, storybot: Running
) -> None:
    question = (
        "Which members of the diplomats' families were pictured pushing the rail trolley over the bridge?"
    )
    saved = await submit(fake, await kb(fake, "add"), {**NEW_ENTRY, "question": question, "id": ""})
    entry_id = saved["content"].split("`")[1]
    assert question.lower().replace("'", "").replace("?", "").replace(" ", "-").startswith(entry_id)
    assert entry_id == "which-members-of-the-diplomats-families-were"


async def test_without_a_curator_role_kb_is_offered_to_server_managers(
    fake: FakeDiscord, settings: Settings
) -> None:
    running = await start_bot(replace(settings, curator_role_ids=frozenset()))
    try:
        kb_command = next(c for c in fake.commands[fake.guild_id] if c["name"] == "kb")
        assert int(kb_command["default_member_permissions"]) == 1 << 5
    finally:
        await running.stop()


async def test_saves_waiting_for_the_lock_still_answer_in_time(
    fake: FakeDiscord, settings: Settings, knowledge: Path
) -> None:
    fake.interaction_deadline = 3.0  # Discord's: answer within 3 s or the reply is lost
    running = await start_bot(settings)
    release = threading.Event()

    def hold_the_lock() -> None:  # another writer, busy for 4 s
        with FileLock(str(knowledge / store.LOCK_FILE)):
            release.wait(4.0)

    try:
        confirm = body_of(await kb(fake, "remove", {"entry": "bus-ride-length"}))
        [delete] = components(confirm)
        message = fake.find_message_with_component(delete["custom_id"])
        holder = threading.Thread(target=hold_the_lock)
        holder.start()
        await asyncio.sleep(0.2)
        alias = await fake.slash_command(
            "kb alias",
            {"entry": "trolley-distance", "phrasing": "how long was the push"},
            roles=CURATOR_ROLES,
        )
        removal = await fake.component(delete["custom_id"], message, roles=CURATOR_ROLES)
        await asyncio.to_thread(holder.join)  # (the bot runs in this event loop: never block it)
        for iid, done in ((alias, "Added"), (removal, "Deleted")):
            await fake.wait_for(lambda iid=iid, done=done: any(
                done in str(r.json or {}) for r in fake.interaction_requests(iid)), 10)  # fmt: skip
            statuses = [(r.method, r.path.split("/")[-1], r.status) for r in fake.interaction_requests(iid)]
            assert all(status < 400 for *_, status in statuses), statuses
        assert running.bot.service.kb.get("bus-ride-length") is None
        assert "how long was the push" in running.bot.service.kb.by_id["trolley-distance"].alternates
    finally:
        release.set()
        await running.stop()


async def test_the_unanswered_list_is_grouped_and_worked_to_the_end(
    fake: FakeDiscord, storybot: Running, knowledge: Path
) -> None:
    bot = storybot.bot
    asked = ["What colour was the trolley?", "what color was the trolley", "What colour was the trolley",
             "who paid for the flight home", "what is the weather like in moscow"]  # fmt: skip
    for question in asked:
        bot.feedback.record_unanswered(question)
    listing = body_of(await kb(fake, "unanswered"))
    lines = listing["content"].splitlines()
    assert lines[1].startswith("1. “What colour was the trolley?” ×3 (+1 similar)")  # most asked first
    [menu] = components(listing)
    assert menu["type"] == 3 and len(menu["options"]) == 3
    message = fake.find_message_with_component(menu["custom_id"])
    assert message is not None

    async def choose(custom_id: str, value: str) -> dict:
        pid = await fake.component(custom_id, message, component_type=3, values=[value], roles=CURATOR_ROLES)
        await fake.wait_for_reply(pid, T)
        return message

    # attach the colour question to an entry the matcher did not guess
    colour = menu["options"][0]["value"]
    panel = await choose(menu["custom_id"], colour)
    entries = next(c for c in components(panel) if c["type"] == 3)
    guesses = [o["value"] for o in entries["options"] if o["description"].startswith("best guess")]
    other = next(o["value"] for o in entries["options"] if o["value"] not in guesses)
    assert {b["label"] for b in components(panel) if b["type"] == 2} >= {
        "New entry from it",
        "Dismiss (needs no entry)",
    }
    listed = await choose(entries["custom_id"], other)
    assert listed["content"].startswith(f"Added “What colour was the trolley?” to `{other}`.")
    assert "What colour was the trolley?" in load_knowledge(knowledge).by_id[other].alternates
    assert "colo" not in listed["content"].split("\n", 1)[1]  # the whole group left the list

    # dismiss the weather question: asked again, it stays off the list
    [menu] = components(listed)
    weather = next(o["value"] for o in menu["options"] if "weather" in o["label"])
    panel = await choose(menu["custom_id"], weather)
    dismiss = next(b["custom_id"] for b in components(panel) if b.get("label", "").startswith("Dismiss"))
    await fake.wait_for_reply(await fake.component(dismiss, message, roles=CURATOR_ROLES), T)
    assert message["content"].startswith("Dismissed “what is the weather like in moscow”")
    bot.feedback.record_unanswered("what is the weather like in moscow")
    assert "weather" not in body_of(await kb(fake, "unanswered"))["content"]

    # a new entry from the last one: the form starts with its question; once saved, it leaves the list
    [menu] = components(message)
    paid = menu["options"][0]["value"]
    panel = await choose(menu["custom_id"], paid)
    new = next(b["custom_id"] for b in components(panel) if b.get("label") == "New entry from it")
    form = await fake.wait_for_reply(await fake.component(new, message, roles=CURATOR_ROLES), T)
    assert form.json["type"] == 9 and form_fields(form)["question"] == "who paid for the flight home"
    assert "draft" not in form.json["data"]["title"]
    fields = {**NEW_ENTRY, **{k: v for k, v in form_fields(form).items() if v}}
    saved = await submit(fake, form, fields)
    assert saved["content"].startswith("Added `")
    assert body_of(await kb(fake, "unanswered"))["content"] == "No unanswered questions so far."


async def test_kb_in_a_direct_message_is_not_offered_but_ask_is(fake: FakeDiscord, storybot: Running) -> None:
    before = tree_digest(Path(storybot.bot.service.root))
    reply = await fake.wait_for_reply(await fake.slash_command("ask", {"question": ASK}, guild=False), T)
    assert body_of(reply)["embeds"]
    assert fake.registered_command("kb", guild=False) is None
    assert tree_digest(Path(storybot.bot.service.root)) == before


async def test_an_edit_made_meanwhile_on_another_bot_process_is_not_overwritten(
    fake: FakeDiscord, storybot: Running, knowledge: Path, tmp_path: Path
) -> None:
    """Two bot processes on one knowledge folder (two containers on one volume): curator A edits
    through this one, curator B adds an alias through the other; A's save is refused."""
    import os
    import subprocess
    import sys

    from .conftest import ROOT, TOKEN

    async with FakeDiscord(heartbeat_interval_ms=1000) as other:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "DISCORD_TOKEN": TOKEN,
               "STORYBOT_API_BASE": other.api_base, "STORYBOT_GATEWAY_URL": other.gateway_url,
               "STORYBOT_KNOWLEDGE": str(knowledge), "STORYBOT_DATA": str(tmp_path / "other"),
               "STORYBOT_GUILD_ID": str(other.guild_id),
               "STORYBOT_CURATOR_ROLE_ID": str(other.curators_role_id)}  # fmt: skip
        proc = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=tmp_path, env=env,
                                stdout=(tmp_path / "other.log").open("w"), stderr=subprocess.STDOUT)  # fmt: skip
        try:
            heartbeat = tmp_path / "other" / "heartbeat"  # touched once the bot is ready
            for _ in range(600):
                if heartbeat.exists() or proc.poll() is not None:
                    break
                await asyncio.sleep(0.1)
            assert heartbeat.exists(), (tmp_path / "other.log").read_text()
            form = await kb(fake, "edit", {"entry": "trolley-distance"})  # A, on this process
            iid = await other.slash_command(  # B, on the other process
                "kb alias",
                {"entry": "trolley-distance", "phrasing": "how long was the push"},
                roles=CURATOR_ROLES,
            )
            assert "Added" in body_of(await other.wait_for_reply(iid, T))["content"]
            refused = await submit(fake, form, {**form_fields(form), "answer": "About a kilometre."})
            assert refused["content"].startswith("Nothing was saved: someone changed `trolley-distance`")
            assert "how long was the push" in load_knowledge(knowledge).by_id["trolley-distance"].alternates
        finally:
            proc.terminate()
            await asyncio.to_thread(proc.wait, 15)


async def test_each_listed_curator_role_curates(fake: FakeDiscord, settings: Settings) -> None:
    """STORYBOT_CURATOR_ROLE_ID may list one role per server the bot serves: a member holding any
    listed role curates; the same member is refused once their role is no longer listed."""
    from bot.adapter.curate import NOT_CURATOR

    another_servers_role = 555000000000000001
    running = await start_bot(
        replace(settings, curator_role_ids=frozenset({another_servers_role, fake.curators_role_id}))
    )
    try:
        form = await kb(fake, "add")
        assert form.json["type"] == 9  # the form (a modal): this member curates
    finally:
        await running.stop()
    running = await start_bot(replace(settings, curator_role_ids=frozenset({another_servers_role})))
    try:
        refused = await fake.wait_for_reply(await fake.slash_command("kb add", roles=CURATOR_ROLES), T)
        assert refused.json["data"]["content"] == NOT_CURATOR
    finally:
        await running.stop()
