"""Hostile questions, entries, buttons and forms: no crash, a short polite reply within
Discord's limits, no ping (the `fake` fixture also checks allowed_mentions on every request),
and nothing written by anyone who may not write."""

from __future__ import annotations

import asyncio

import pytest

from bot.adapter.buttons import STALE
from bot.adapter.curate import NOT_CURATOR
from tests.e2e.fake_discord import FakeDiscord

from .conftest import (
    ASK,
    CURATORS,
    Running,
    T,
    assert_fits_discord,
    body_of,
    replies_to,
    tree_digest,
)

HOSTILE = {
    "empty": "",
    "whitespace": " \t\n  \u3000 ",
    "5000 characters": "trolley " * 625,
    "emoji only": "🚂🧳🇰🇵🇷🇺😂" * 20,
    "zalgo": "h̸̢̛̙̖o̴̡͚̓w̷̛̘͆ f̶̨̛a̵̡͝r̴̢̛ d̸̨̛i̵̡͝d̸̢̛ t̴̡̛h̵̢̛e̸̡͝y̴̢̛ p̷̨̛ų̴̛s̸̢̛h̵̡͝",
    "right-to-left": "\u202eمن دفع العربة؟ \u202d kcolley",
    "null bytes": "how\x00 far\x00\x00 did they push\x00",
    "code block and markdown": "```py\nimport os\n```\n**bold** __u__ ~~s~~ ||spoiler|| > quote [link](http://x.y)",
    "@everyone / @here": "@everyone @here where did they go",
    "user and role mentions": "<@666666666666666666> <@!1> <@&444444444444444444> <#333333333333333333> who?",
    "YAML lookalike": "!!python/object/apply:os.system ['touch /tmp/x']\n- id: x\n  source: *a",
    "SQL lookalike": "'; DROP TABLE unanswered; -- how far did they push",
    "bidi + control chars": "\u2066\u2067\u2068who\u2069\u200b\u200f\ufeff was youngest\x07\x1b[31m",
}


@pytest.mark.parametrize("how", ["slash", "mention", "dm"])
async def test_hostile_questions_get_short_polite_replies(
    fake: FakeDiscord, fastbot: Running, how: str
) -> None:
    fastbot.bot.cooldown.rate = 0  # this test is about content, not about the spam budget
    asked = {}
    for name, text in HOSTILE.items():
        if how == "slash":
            asked[name] = await fake.slash_command("ask", {"question": text})
        elif how == "mention":
            asked[name] = await fake.message_create(f"{fake.mention_bot} {text}", mentions=[fake.bot_user])
        else:
            asked[name] = await fake.message_create(text or " ", dm=True)
    for name, ref in asked.items():
        reply = await fake.wait_for_reply(ref, T)
        body = body_of(reply)
        assert_fits_discord(body)
        text = (body.get("content") or "") + str(body.get("embeds") or "")
        assert body.get("content") or body.get("embeds"), name
        assert "@everyone" not in text.replace("@\u200beveryone", "") or "embeds" in body, name
        assert "Traceback" not in text and "Something went wrong" not in text, (name, text)
    await asyncio.sleep(0.2)
    assert [len(replies_to(fake, ref)) for ref in asked.values()] == [1] * len(asked)
    assert not fastbot.task.done()
    # The SQL lookalike was stored as text, the table is still there.
    assert fastbot.bot.feedback.top_unanswered(100) is not None


ENTRY_FIELDS = {
    "question": "How did the diplomats cross the border?",
    "answer": "They pushed a rail trolley across the bridge into Russia.",
    "source": "They then boarded a rail trolley and pushed themselves for around half a mile (around a kilometre) across the border into Russia.",
}
HOSTILE_ENTRIES = {
    "empty everything": {"question": "", "answer": "", "source": "", "id": ""},
    "whitespace": {"question": "   ", "answer": "\n\n", "source": " \t", "id": "  "},
    "5000-char fields": {
        "question": "q" * 5000,
        "answer": "a" * 5000,
        "source": "s" * 5000,
        "id": "x" * 5000,
    },
    "zalgo + rtl id": {**ENTRY_FIELDS, "id": "\u202eh̸̢̛̙ack"},
    "path traversal id": {**ENTRY_FIELDS, "id": "../../etc/passwd"},
    "yaml injection": {
        **ENTRY_FIELDS,
        "id": "evil",
        "answer": "x\n- id: pwned\n  answer: !!python/object/apply:os.system ['true']",
    },
    "mentions in an entry": {
        **ENTRY_FIELDS,
        "id": "",
        "question": "@everyone <@&444444444444444444> how did they cross?",
    },
    "null bytes": {**ENTRY_FIELDS, "question": "how\x00 did they cross\x00", "id": ""},
    "1000 alternates": {
        **ENTRY_FIELDS,
        "id": "",
        "question": "How did they get over the border, on foot?",
        "alternates": "\n".join(f"way {n} of asking" for n in range(1000)),
    },
}


async def test_hostile_entries_through_kb_add(fake: FakeDiscord, fastbot: Running, knowledge: object) -> None:
    for name, fields in HOSTILE_ENTRIES.items():
        iid = await fake.slash_command("kb add", roles=CURATORS)
        modal = await fake.wait_for_reply(iid, T)
        sid = await fake.modal_submit(modal.json["data"]["custom_id"], fields, roles=CURATORS)
        reply = await fake.wait_for_reply(sid, T)
        body = body_of(reply)
        assert_fits_discord(body)
        assert body["flags"] & 64, name
        text = body.get("content") or ""
        assert text.startswith(("Nothing was saved", "Added `")), (name, text)
        assert "Traceback" not in text and "Something went wrong" not in text, (name, text)
    kb = fastbot.bot.service.kb
    for entry in kb.entries:  # whatever was accepted stays within Discord's limits when shown
        from bot.adapter.replies import answer_embed, entry_embed

        for embed in (entry_embed(entry, (1, 2)), answer_embed(entry, kb)):
            assert_fits_discord({"embeds": [embed.to_dict()], "allowed_mentions": {"parse": []}})
    assert kb.get("pwned") is None


# ------------------------------------------------------------------ permissions and forged buttons


async def _curator_message_with(fake: FakeDiscord, command: str, options: dict | None = None) -> dict:
    """Have a curator run a /kb command and return the message with its buttons."""
    iid = await fake.slash_command(command, options, roles=CURATORS)
    await fake.wait_for_reply(iid, T)
    inter = fake.interactions[iid]
    return fake.messages[inter.original_id or 0]


def _buttons(message: dict) -> list[str]:
    return [c["custom_id"] for row in message.get("components") or [] for c in row.get("components") or []]


async def test_non_curators_are_refused_at_every_button_and_form(
    fake: FakeDiscord, fastbot: Running, knowledge: object
) -> None:
    from pathlib import Path

    folder = Path(str(knowledge))
    bot = fastbot.bot
    bot.feedback.record_unanswered("what colour was the trolley")
    row = bot.feedback.top_unanswered(1)[0].id
    # Real curator messages with real buttons on them
    remove = await _curator_message_with(fake, "kb remove", {"entry": "trolley-distance"})
    listing = await _curator_message_with(fake, "kb list")
    unanswered = await _curator_message_with(fake, "kb unanswered")
    iid = await fake.slash_command("kb add", roles=CURATORS)
    modal = await fake.wait_for_reply(iid, T)
    bad = {**ENTRY_FIELDS, "source": "Not in the article at all."}
    sid = await fake.modal_submit(modal.json["data"]["custom_id"], bad, roles=CURATORS)
    refused = body_of(await fake.wait_for_reply(sid, T))
    retry_message = fake.messages[fake.interactions[sid].original_id or 0]
    assert "storybot:retry" in _buttons(refused)
    removal = next(b for b in _buttons(remove) if b.startswith("storybot:remove:trolley-distance:"))
    # the unanswered list's menu, and (opened by a curator) one question's panel
    panel = await _curator_message_with(fake, "kb unanswered")  # becomes the question's panel
    pick = await fake.component("storybot-menu:triage", message=panel, component_type=3,
                                values=[str(row)], roles=CURATORS)  # fmt: skip
    await fake.wait_for_reply(pick, T)
    before = tree_digest(folder)
    presses = {
        removal: remove,
        "storybot:page:2": listing,
        "storybot:retry": retry_message,
        f"storybot:newfrom:{row}": panel,
        f"storybot:dismiss:{row}": panel,
    }
    menus = {
        "storybot-menu:triage": (unanswered, str(row)),
        f"storybot-menu:attach:{row}": (panel, "trolley-distance"),
    }
    for custom_id, message in presses.items():
        assert custom_id in _buttons(message)
        pid = await fake.component(custom_id, message=message, roles=[])
        body = body_of(await fake.wait_for_reply(pid, T))
        assert body["content"] == NOT_CURATOR, (custom_id, body)
        assert body["flags"] & 64
    for custom_id, (message, value) in menus.items():
        assert custom_id in _buttons(message)
        pid = await fake.component(custom_id, message=message, component_type=3, values=[value], roles=[])
        body = body_of(await fake.wait_for_reply(pid, T))
        assert body["content"] == NOT_CURATOR and body["flags"] & 64, (custom_id, body)
    assert not [m for m in fake.modals if m.endswith(str(pid))]  # no form opened for them
    # a curator's edit form, submitted by someone else
    iid = await fake.slash_command("kb edit", {"entry": "trolley-distance"}, roles=CURATORS)
    modal = await fake.wait_for_reply(iid, T)
    sid = await fake.modal_submit(
        modal.json["data"]["custom_id"], {**ENTRY_FIELDS, "alternates": ""}, roles=[]
    )
    assert body_of(await fake.wait_for_reply(sid, T))["content"] == NOT_CURATOR
    # /kb commands in a DM, and by a non-curator in the guild
    for name, opts in (
        ("kb add", None),
        ("kb remove", {"entry": "trolley-distance"}),
        ("kb unanswered", None),
    ):
        for kw in ({"guild": False, "forged": True}, {"roles": []}):  # Discord offers no /kb in DMs
            ref = await fake.slash_command(name, opts, **kw)
            body = body_of(await fake.wait_for_reply(ref, T))
            assert body["flags"] & 64 and body["content"], body
            assert "Something went wrong" not in body["content"]
    # /ask and /help in a DM are answered
    for name, opts in (("ask", {"question": ASK}), ("help", None)):
        ref = await fake.slash_command(name, opts, guild=False)
        assert_fits_discord(body_of(await fake.wait_for_reply(ref, T)))
    assert tree_digest(folder) == before
    assert bot.service.kb.get("trolley-distance") is not None
    assert bot.feedback.group_of(row) is not None


FORGED = [
    "storybot:vote:nope",
    "storybot:vote:no-such-entry:1",
    "storybot:vote::",
    "storybot:zzz",
    "storybot:zzz:1",
    "storybot:pick:no-such-entry",
    "storybot:page:-1",
    "storybot:page:99999999999999999999",
    "storybot:attach:abc:def",
    "storybot:attach:1",
    "storybot-menu:attach:1",
    "storybot-menu:zzz",
    "storybot:dismiss:1",
    "storybot:remove:",
    "storybot:",
    "STORYBOT:VOTE:X",
    "not-ours",
]


async def test_forged_custom_ids_are_refused_politely(
    fake: FakeDiscord, fastbot: Running, knowledge: object
) -> None:
    from pathlib import Path

    folder = Path(str(knowledge))
    iid = await fake.slash_command("ask", {"question": ASK})
    answer = await fake.wait_for_reply(iid, T)
    message = fake.messages[fake.interactions[iid].original_id or 0]
    before = tree_digest(folder)
    vote = body_of(answer)["components"][0]["components"][0]["custom_id"]
    entry_id = vote.split(":")[2]
    other = next(e.id for e in fastbot.bot.service.kb.entries if e.id != entry_id)
    asker = fake.interactions[iid].payload["member"]["user"]["id"]
    forged = [*FORGED, f"storybot:vote:{other}:1", f"storybot:pick:{other}",
              f"storybot:pick:{other}:{asker}", "storybot:delete:1"]  # fmt: skip
    for custom_id in forged:
        for roles in ([], CURATORS):
            pid = await fake.component(custom_id, message=message, roles=roles)
            reply = await fake.wait_for_reply(pid, 5)
            body = body_of(reply)
            assert reply.json["type"] == 4 and body["flags"] & 64, (custom_id, reply.json)
            assert_fits_discord(body)
            assert body["content"] == STALE, (custom_id, body["content"])
    # no vote was counted for an entry this message does not show; the real button still works
    assert fastbot.bot.feedback.vote_counts(other) == (0, 0)
    pid = await fake.component(f"storybot:vote:{entry_id}:1", message=message)
    await fake.wait_for_reply(pid, T)
    await asyncio.sleep(0.2)
    assert [body_of(r)["content"] for r in replies_to(fake, pid)] == ["Thanks, noted."]
    assert fastbot.bot.feedback.vote_counts(entry_id) == (1, 0)
    assert tree_digest(folder) == before
