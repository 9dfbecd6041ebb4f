"""Proves tests/e2e/fake_discord.py against a real discord.py client over real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import discord
import pytest
import pytest_asyncio
from discord import app_commands
from discord.ext import commands

from .fake_discord import FakeDiscord

pytestmark = pytest.mark.asyncio
TOKEN = "good-token"
T = 10.0  # generous per-step timeout; steps normally take milliseconds


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as f:
        with f.patch_discord():
            yield f


def make_bot(**kw: Any) -> commands.Bot:
    kw.setdefault("intents", discord.Intents.default())
    return commands.Bot(command_prefix="!", guild_ready_timeout=0.05, **kw)


@contextlib.asynccontextmanager
async def running(client: discord.Client, token: str = TOKEN) -> AsyncIterator[None]:
    """Run ``client.start`` in the background until on_ready; always close it."""
    task = asyncio.create_task(client.start(token))
    try:
        ready = asyncio.create_task(client.wait_until_ready())
        done, _ = await asyncio.wait({task, ready}, timeout=T, return_when=asyncio.FIRST_COMPLETED)
        if ready not in done:
            ready.cancel()
            if task in done:
                task.result()  # re-raise the startup error
            raise TimeoutError("client never became ready")
        yield
    finally:
        await client.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, T)


async def test_login_ready_and_bad_token(fake: FakeDiscord) -> None:
    bot = make_bot()
    fired = asyncio.Event()

    async def on_ready() -> None:
        fired.set()

    bot.add_listener(on_ready)
    async with running(bot):
        await asyncio.wait_for(fired.wait(), T)
        assert bot.user is not None and bot.user.id == fake.bot_id
        assert bot.application_id == fake.app_id
        guild = bot.get_guild(fake.guild_id)
        assert guild is not None and guild.me is not None
        assert {r.name for r in guild.roles} >= {"@everyone", "Curators"}
        assert guild.get_channel(fake.channel_id) is not None
    paths = [(r.method, r.path) for r in fake.requests]
    assert paths[:2] == [("GET", "/users/@me"), ("GET", "/oauth2/applications/@me")]
    assert fake.identify_count == 1 and fake.identifies[0]["token"] == TOKEN
    assert fake.gateway_queries[0]["compress"] == "zlib-stream"  # asked for, never required
    assert not fake.unexpected_requests()

    bad = make_bot()
    with pytest.raises(discord.LoginFailure):
        await bad.start("bad-token")
    await bad.close()
    assert fake.requests[-1].status == 401


async def test_tree_sync_and_slash_command(fake: FakeDiscord) -> None:
    bot = make_bot()
    seen: dict[str, Any] = {}

    @bot.tree.command(description="Say hi")
    async def hello(interaction: discord.Interaction, who: str, times: int = 1) -> None:
        seen.update(who=who, times=times, user=interaction.user.id)
        await interaction.response.send_message(
            f"hi {who} <@{interaction.user.id}>", allowed_mentions=discord.AllowedMentions.none()
        )
        await interaction.followup.send("more", ephemeral=True)

    kb = app_commands.Group(name="kb", description="Knowledge base")

    @kb.command(name="add", description="Add a fact")
    async def kb_add(interaction: discord.Interaction, text: str) -> None:
        roles = [r.name for r in interaction.user.roles]  # type: ignore[union-attr]
        seen.update(kb=text, roles=roles)
        await interaction.response.defer(thinking=True)
        await interaction.edit_original_response(content=f"added {text}")

    bot.tree.add_command(kb)
    async with running(bot):
        synced = await bot.tree.sync()
        assert sorted(c.name for c in synced) == ["hello", "kb"]
        put = await fake.wait_for_request(f"PUT /applications/{fake.app_id}/commands$")
        assert sorted(c["name"] for c in put.json) == ["hello", "kb"]

        iid = await fake.slash_command("hello", {"who": "Ann", "times": 2})
        cb = await fake.wait_for_reply(iid)
        assert cb.query == {"with_response": "1"}  # discord.py 2.7 always asks for the JSON body
        assert cb.json["type"] == 4
        assert cb.json["data"]["content"].startswith("hi Ann")
        assert cb.json["data"]["allowed_mentions"] == {"parse": []}
        follow = await fake.wait_for_request(f"POST /webhooks/{fake.app_id}/")
        assert follow.json["content"] == "more" and follow.json["flags"] == 64
        assert seen["who"] == "Ann" and seen["times"] == 2 and seen["user"] == fake.default_user_id
        assert len(fake.interaction_requests(iid)) == 2

        iid = await fake.slash_command("kb add", {"text": "sky is blue"}, roles=["Curators"])
        cb = await fake.wait_for_reply(iid)
        assert cb.json["type"] == 5
        edit = await fake.wait_for_request("PATCH /webhooks/.*/messages/@original")
        assert edit.json["content"] == "added sky is blue"
        assert seen["kb"] == "sky is blue" and "Curators" in seen["roles"]
    assert not fake.unexpected_requests()


async def test_mention_reply_and_429_retry(fake: FakeDiscord) -> None:
    bot = make_bot()  # no message_content intent: content arrives only because of the mention
    got: list[discord.Message] = []

    @bot.event
    async def on_message(message: discord.Message) -> None:
        if bot.user in message.mentions:
            got.append(message)
            await message.reply("answer", mention_author=False)

    async with running(bot):
        rule = fake.fail_next("POST", r"^/channels/\d+/messages$", status=429, retry_after=0.2)
        mid = await fake.message_create(f"{fake.mention_bot} what?", mentions=[fake.bot_user])
        reply = await fake.wait_for_reply(mid)
        assert reply.status == 200 and reply.json["content"] == "answer"
        assert str(reply.json["message_reference"]["message_id"]) == str(mid)
        assert reply.json["allowed_mentions"]["replied_user"] is False
        posts = fake.find_requests("POST", r"^/channels/\d+/messages$")
        assert [p.status for p in posts] == [429, 200] and rule.hits == 1
        assert sum(1 for m in fake.messages.values() if m["content"] == "answer") == 1
        assert got and got[0].content.endswith("what?")

        # without a mention the MESSAGE_CONTENT intent is missing -> content is stripped
        waiter = bot.wait_for("message")  # registers the listener before dispatching
        await fake.message_create("no mention here")
        bot_msg = await asyncio.wait_for(waiter, T)
        assert bot_msg.content == ""


async def test_button_and_modal(fake: FakeDiscord) -> None:
    bot = make_bot()
    pressed = asyncio.Event()
    submitted: dict[str, str] = {}

    class Confirm(discord.ui.View):
        @discord.ui.button(label="OK", custom_id="confirm-ok")
        async def ok(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
            pressed.set()
            await interaction.response.edit_message(content="confirmed", view=None)

    class Story(discord.ui.Modal, title="Add story"):
        headline = discord.ui.TextInput(label="Headline", custom_id="headline")
        body = discord.ui.Label(
            text="Body",
            component=discord.ui.TextInput(custom_id="body", style=discord.TextStyle.long),
        )

        async def on_submit(self, interaction: discord.Interaction) -> None:
            submitted["headline"] = self.headline.value
            submitted["body"] = self.body.component.value  # type: ignore[attr-defined]
            await interaction.response.send_message("saved", ephemeral=True)

    @bot.tree.command(description="Ask")
    async def ask(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("Sure?", view=Confirm())

    @bot.tree.command(description="Add")
    async def add(interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(Story())

    async with running(bot):
        await bot.tree.sync(guild=discord.Object(fake.guild_id))
        iid = await fake.slash_command("ask", forged=True)
        await fake.wait_for_reply(iid)
        msg = fake.find_message_with_component("confirm-ok")
        assert msg is not None
        press = await fake.component("confirm-ok", msg)
        await asyncio.wait_for(pressed.wait(), T)
        cb = await fake.wait_for_reply(press)
        assert cb.json["type"] == 7 and cb.json["data"]["content"] == "confirmed"
        assert fake.messages[int(msg["id"])]["content"] == "confirmed"

        iid = await fake.slash_command("add", forged=True)
        cb = await fake.wait_for_reply(iid)
        assert cb.json["type"] == 9
        modal = cb.json["data"]
        assert [c["type"] for c in modal["components"]] == [1, 18]  # action row + label
        sub = await fake.modal_submit(modal["custom_id"], {"headline": "H", "body": "B"})
        cb = await fake.wait_for_reply(sub)
        assert cb.json["data"]["content"] == "saved"
        assert submitted == {"headline": "H", "body": "B"}


@pytest.mark.parametrize("how", ["abort", "close4000", "reconnect", "invalidate_resumable"])
async def test_gateway_drop_resumes_and_replays(fake: FakeDiscord, how: str) -> None:
    bot = make_bot()
    seen: list[str] = []
    got = asyncio.Event()

    @bot.event
    async def on_message(message: discord.Message) -> None:
        seen.append(message.content)
        if len(seen) == 2:
            got.set()

    async with running(bot):
        if how == "abort":
            await fake.drop_gateway()
        elif how == "close4000":
            await fake.drop_gateway(4000)
        elif how == "reconnect":
            await fake.send_reconnect()
        else:
            await fake.invalidate_session(resumable=True)
        # dispatched while the client may still be reconnecting: buffered, replayed on RESUME
        await fake.message_create(f"{fake.mention_bot} one", mentions=[fake.bot_user])
        await fake.wait_for(lambda: fake.resume_count >= 1, T)
        await fake.message_create(f"{fake.mention_bot} two", mentions=[fake.bot_user])
        await asyncio.wait_for(got.wait(), T)
    assert seen == [f"{fake.mention_bot} one", f"{fake.mention_bot} two"]
    assert fake.identify_count == 1 and fake.resume_count == 1 and fake.connections == 2


class NoWaitBot(commands.Bot):
    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        return None  # discord.py sleeps 5 s before every non-initial IDENTIFY


class NoWaitShardedBot(commands.AutoShardedBot):
    before_identify_hook = NoWaitBot.before_identify_hook


async def test_invalid_session_reidentifies_and_zombie_heartbeat(fake: FakeDiscord) -> None:
    fake.heartbeat_interval_ms = 100
    bot = NoWaitBot(
        command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.05, heartbeat_timeout=0.5
    )
    async with running(bot):
        await fake.invalidate_session(resumable=False)
        await fake.wait_until_identified(T, count=2)
        assert fake.resume_count == 0
        fake.stop_heartbeat_acks = True  # client notices silence, reconnects and RESUMEs
        await fake.wait_for(lambda: fake.resume_count >= 1, T)
        fake.stop_heartbeat_acks = False
        waiter = bot.wait_for("message")
        await fake.message_create(f"{fake.mention_bot} alive?", mentions=[fake.bot_user])
        msg = await asyncio.wait_for(waiter, T)
        assert msg.content.endswith("alive?")
    assert fake.identify_count == 2 and fake.heartbeats > 0


async def test_interaction_deadline_and_double_ack(fake: FakeDiscord) -> None:
    bot = make_bot()
    errors: list[Exception] = []
    both = asyncio.Event()

    @bot.tree.command(description="slow")
    async def slow(interaction: discord.Interaction) -> None:
        await asyncio.sleep(0.3)
        try:
            await interaction.response.send_message("late")
        except discord.NotFound as exc:
            errors.append(exc)
        if len(errors) == 2:
            both.set()

    @bot.tree.command(description="twice")
    async def twice(interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        try:  # bypass discord.py's local "already responded" guard
            interaction.response._response_type = None
            await interaction.response.send_message("again")
        except discord.HTTPException as exc:
            errors.append(exc)
        if len(errors) == 2:
            both.set()

    async with running(bot):
        fake.interaction_deadline = 0.2
        await fake.slash_command("slow", forged=True)
        await fake.wait_for_request(lambda r: r.status == 404 and "/callback" in r.path)
        fake.interaction_deadline = None
        await fake.slash_command("twice", forged=True)
        await asyncio.wait_for(both.wait(), T)
    assert sorted(getattr(e, "code", None) for e in errors) == [10062, 40060]


@pytest.mark.parametrize("ask_gateway", [False, True])
async def test_autosharded_two_identifies(fake: FakeDiscord, ask_gateway: bool) -> None:
    fake.shard_count = 2
    kw = {} if ask_gateway else {"shard_count": 2}
    bot = NoWaitShardedBot(
        command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.05, **kw
    )
    async with running(bot):
        assert fake.identify_count == 2
        assert sorted(tuple(i["shard"]) for i in fake.identifies) == [(0, 2), (1, 2)]
        assert bot.get_guild(fake.guild_id) is not None
        waiter = bot.wait_for("message")
        await fake.message_create(f"{fake.mention_bot} hi", mentions=[fake.bot_user])
        msg = await asyncio.wait_for(waiter, T)
        # guild events go only to the shard owning the guild (so they are handled once)
        shards = [shard for shard, event in fake.dispatched if event == "MESSAGE_CREATE"]
        assert shards == [(fake.guild_id >> 22) % 2] and msg.guild is not None
    assert bool(fake.find_requests("GET", "^/gateway/bot$")) == ask_gateway


async def test_server_error_retry_and_unknown_route(fake: FakeDiscord) -> None:
    bot = make_bot()
    async with running(bot):
        channel = bot.get_channel(fake.channel_id)
        assert isinstance(channel, discord.TextChannel)
        fake.fail_next("POST", r"/messages$", status=502)
        sent = await asyncio.wait_for(channel.send("after 502"), T)
        assert fake.messages[sent.id]["content"] == "after 502"
        with pytest.raises(discord.NotFound):
            await bot.http.request(discord.http.Route("GET", "/nope/{x}", x=1))
        with pytest.raises(discord.HTTPException) as err:
            await channel.send("x" * 2001)
        assert err.value.code == 50035
    assert [r.path for r in fake.unexpected_requests()] == ["/nope/1"]


async def test_control_api_and_script_mode(tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    script = Path(__file__).with_name("fake_discord.py")
    proc = subprocess.Popen(
        [sys.executable, str(script), "--port", "0", "--port-file", str(port_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            if port_file.exists():
                break
            await asyncio.sleep(0.05)
        port = int(port_file.read_text())
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/_fake/state") as resp:
                assert (await resp.json())["identified"] is False
            async with http.get(f"{base}/api/v10/users/@me") as resp:
                assert resp.headers["Content-Type"] == "application/json"
                assert (await resp.json())["bot"] is True
            async with http.post(f"{base}/_fake/slash", json={"name": "hello"}) as resp:
                assert resp.status == 404  # no command registered: Discord offers none
            async with http.post(f"{base}/_fake/slash", json={"name": "hello", "forged": True}) as resp:
                assert "interaction_id" in await resp.json()  # no session: dispatched nowhere
            async with http.get(f"{base}/_fake/requests") as resp:
                reqs = await resp.json()
                assert [r["path"] for r in reqs] == ["/users/@me"]
                json.dumps(reqs)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=T) == 0
        if proc.stdout:
            proc.stdout.close()
    assert os.path.exists(port_file)


async def test_autocomplete_dm_command_and_multipart(fake: FakeDiscord) -> None:
    bot = make_bot()
    where: list[bool] = []

    async def topics(_: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        names = [t for t in ("war", "weather") if t.startswith(current)]
        return [app_commands.Choice(name=t, value=t) for t in names]

    @bot.tree.command(description="Pick a topic")
    @app_commands.autocomplete(topic=topics)
    async def pick(interaction: discord.Interaction, topic: str) -> None:
        where.append(interaction.guild is None)
        await interaction.response.send_message(
            topic, file=discord.File(io.BytesIO(b"hello"), filename="note.txt")
        )

    async with running(bot):
        iid = await fake.autocomplete("pick", {"topic": "wa"}, focused="topic", forged=True)
        cb = await fake.wait_for_reply(iid)
        assert cb.json == {"type": 8, "data": {"choices": [{"name": "war", "value": "war"}]}}

        iid = await fake.slash_command("pick", {"topic": "war"}, guild=False, forged=True)
        cb = await fake.wait_for_reply(iid)
        assert cb.json["data"]["content"] == "war"  # multipart: payload_json parsed
        assert [(f["filename"], f["size"]) for f in cb.files] == [("note.txt", 5)]
        assert where == [True]

        # a DM (no mention needed) and the bot DMing a user back
        waiter = bot.wait_for("message")
        await fake.message_create("hello bot", dm=True)
        dm = await asyncio.wait_for(waiter, T)
        assert dm.guild is None and dm.content == "hello bot"
        await asyncio.wait_for(dm.author.send("hi back"), T)
        sent = await fake.wait_for_request(r"POST /channels/\d+/messages$")
        assert sent.json["content"] == "hi back"
        assert int(sent.path.split("/")[2]) in fake.dm_channels
