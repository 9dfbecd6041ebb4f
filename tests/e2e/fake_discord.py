"""A local fake of the Discord REST API and gateway, for end-to-end tests of a discord.py 2.7 bot.

What it fakes (enough for a real ``discord.Client`` / ``commands.Bot`` / ``AutoShardedClient``):

* REST under ``/api/v10``: login (``/users/@me``, ``/oauth2/applications/@me``), ``/gateway/bot``,
  application-command bulk overwrite/fetch (global and guild), interaction callbacks (with the
  ``?with_response=1`` JSON body discord.py 2.7 requires), interaction webhooks (followups,
  ``@original`` edit/fetch/delete), channel messages (create/edit/delete/fetch, JSON or multipart
  with ``payload_json``), DMs (``POST /users/@me/channels``), typing, reactions, channel/member
  fetch. Every request is recorded in
  ``fake.requests``; unknown routes answer 404 ``{"message": "Unknown", "code": 0}``.
  Some Discord validation is mimicked: empty/over-long messages (50006/50035), double
  interaction acknowledgement (40060), unknown interaction (10062, optionally after a deadline),
  bad command names, bad token (401 / gateway close 4004), disallowed privileged intents (4014).
* Gateway at ``/gateway``: HELLO, IDENTIFY -> READY + GUILD_CREATE, RESUME (replays missed
  dispatches, then RESUMED), heartbeat ACKs, member chunk requests (op 8), per-shard routing of
  guild events, MESSAGE_CREATE content stripping when the MESSAGE_CONTENT intent is missing and
  the bot is not mentioned. Frames are plain JSON text: discord.py asks for
  ``compress=zlib-stream`` in the URL but only decompresses *binary* frames, so text is fine.
* Fault injection: ``fail_next`` (429 with ``Via`` header / 5xx / delays), ``drop_gateway``,
  ``send_reconnect``, ``invalidate_session``, ``stop_heartbeat_acks``.

What it does not fake: voice, CDN/attachment downloads, permission enforcement, audit logs, real
rate-limit buckets, zlib/zstd transport compression, more than one guild, and the echo of the
bot's own messages as MESSAGE_CREATE.

Run as a script (``python tests/e2e/fake_discord.py --port 0 --port-file P``) for out-of-process
checks; a control API lives under ``/_fake/`` (slash, modal, message, requests, state, drop, dispatch).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import re
import secrets
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

log = logging.getLogger("fake_discord")

DISCORD_EPOCH_MS = 1420070400000
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = (1 << 1) | (1 << 8) | INTENT_MESSAGE_CONTENT  # members, presences, content
# view, send, embed, attach, history, add reactions, use app commands
MEMBER_PERMISSIONS = str((1 << 10) | (1 << 11) | (1 << 14) | (1 << 15) | (1 << 16) | (1 << 6) | (1 << 31))
BOT_PERMISSIONS = str(int(MEMBER_PERMISSIONS) | (1 << 13) | (1 << 38))  # + manage msgs, threads
NAME_RE = re.compile(r"^[-_\w]{1,32}$")
Json = Any


def json_response(data: Json, status: int = 200, headers: dict | None = None) -> web.Response:
    """discord.py only parses JSON if Content-Type is exactly ``application/json``; aiohttp's
    ``web.json_response`` appends ``; charset=utf-8``, which makes discord.py see a str."""
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    return web.Response(body=json.dumps(data).encode(), status=status, headers=hdrs)


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


@dataclass
class RecordedRequest:
    """One REST request as the fake saw it (``path`` is relative to ``/api/v10``)."""

    method: str
    path: str
    query: dict[str, str]
    json: Json
    headers: dict[str, str]
    files: list[dict[str, Any]] = field(default_factory=list)
    status: int = 0  # 0 while in flight
    matched: bool = True  # False -> unknown route (404)
    injected: bool = False  # True -> answered by a fail_next rule
    received_at: float = field(default_factory=time.monotonic)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FaultRule:
    method: str
    path_regex: str
    status: int | None
    times: int
    retry_after: float
    global_: bool
    delay: float
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (
            self.hits < self.times
            and self.method in ("*", method)
            and re.search(self.path_regex, path) is not None
        )


@dataclass(eq=False)
class _Conn:
    ws: web.WebSocketResponse
    request: web.BaseRequest
    query: dict[str, str]
    session: _Session | None = None
    closed_by_server: bool = False
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(eq=False)
class _Session:
    id: str
    shard: tuple[int, int] | None
    intents: int
    seq: int = 0
    buffer: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=2000))
    conn: _Conn | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class _Interaction:
    payload: dict[str, Any]
    token: str
    channel_id: int
    created: float = field(default_factory=time.monotonic)
    callback_type: int | None = None
    original_id: int | None = None  # message that @original refers to


class FakeDiscord:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        app_id: int = 111111111111111111,
        bot_id: int | None = None,
        bot_name: str = "StoryBot",
        guild_id: int = 222222222222222222,
        channel_id: int = 333333333333333333,
        curators_role_id: int = 444444444444444444,
        owner_id: int = 555555555555555555,
        default_user_id: int = 666666666666666666,
        shard_count: int = 1,
        heartbeat_interval_ms: int = 41250,
        bad_tokens: tuple[str, ...] = ("bad-token",),
        disallowed_intents: int = 0,
        interaction_deadline: float | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.app_id, self.bot_id = app_id, bot_id or app_id
        self.guild_id, self.channel_id = guild_id, channel_id
        self.guilds: dict[int, int] = {guild_id: channel_id}  # guild id -> its text channel
        self.curators_role_id, self.owner_id = curators_role_id, owner_id
        self.default_user_id = default_user_id
        self.shard_count = shard_count
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.bad_tokens = set(bad_tokens)
        self.disallowed_intents = disallowed_intents
        self.interaction_deadline = interaction_deadline  # seconds to answer before 10062
        self.stop_heartbeat_acks = False
        # state visible to tests
        self.requests: list[RecordedRequest] = []
        self.identifies: list[dict[str, Any]] = []
        self.gateway_queries: list[dict[str, str]] = []
        self.received_ops: list[dict[str, Any]] = []  # non-heartbeat client->gateway payloads
        self.dispatched: list[tuple[int | None, str]] = []  # (shard id, event) per dispatch
        self.identify_count = self.resume_count = self.connections = self.heartbeats = 0
        self.commands: dict[int | None, list[dict[str, Any]]] = {}
        self.messages: dict[int, dict[str, Any]] = {}
        self.interactions: dict[int, _Interaction] = {}
        self.modals: dict[str, dict[str, Any]] = {}  # custom_id -> modal the bot opened
        self.ready_event = asyncio.Event()
        self.bot_user: dict[str, Any] = self.make_user(self.bot_id, bot_name, bot=True)
        self.roles: dict[str, int] = {"@everyone": guild_id, "Curators": curators_role_id}
        self.members: dict[int, dict[str, Any]] = {}
        self.channels: dict[int, dict[str, Any]] = {
            channel_id: self._text_channel(channel_id, guild_id=guild_id)
        }
        self.dm_channels: dict[int, dict[str, Any]] = {}  # DM channel id -> channel
        self.make_member(self.bot_user, permissions=BOT_PERMISSIONS)
        self.make_member(self.make_user(owner_id, "owner"))
        # internals
        self._sessions: dict[str, _Session] = {}
        self._conns: set[_Conn] = set()
        self._faults: list[FaultRule] = []
        self._waiters: list[tuple[Callable[[RecordedRequest], bool], asyncio.Future[Any]]] = []
        self._changed = asyncio.Condition()
        self._tokens: dict[str, int] = {}
        self._command_ids: dict[tuple[int | None, str, int], int] = {}
        self._last_snowflake = 0
        self._runner: web.AppRunner | None = None
        self._routes = self._build_routes()

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> FakeDiscord:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._api)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/gateway/", self._gateway)
        for name in ("slash", "modal", "message", "drop", "dispatch"):
            app.router.add_post(f"/_fake/{name}", getattr(self, f"_ctl_{name}"))
        app.router.add_get("/_fake/requests", self._ctl_requests)
        app.router.add_get("/_fake/state", self._ctl_state)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def stop(self) -> None:
        for conn in list(self._conns):
            conn.closed_by_server = True
            if (tr := conn.request.transport) is not None:
                tr.abort()
        for _, fut in self._waiters:
            fut.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def api_base(self) -> str:
        return f"http://{self.host}:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://{self.host}:{self.port}/gateway"

    @property
    def mention_bot(self) -> str:
        return f"<@{self.bot_id}>"

    @contextlib.contextmanager
    def patch_discord(self) -> Iterator[None]:
        """Point discord.py's ``Route.BASE`` and ``DEFAULT_GATEWAY`` at this fake."""
        import discord.gateway
        import discord.http
        import yarl

        old = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        discord.http.Route.BASE = self.api_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        try:
            yield
        finally:
            discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old

    # ------------------------------------------------------------------ payload builders
    def snowflake(self) -> int:
        value = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        self._last_snowflake = max(value, self._last_snowflake + 1)
        return self._last_snowflake

    def make_user(self, id: int | None = None, name: str = "tester", *, bot: bool = False) -> dict:
        return {
            "id": str(id or self.default_user_id),
            "username": name,
            "global_name": name,
            "discriminator": "0",
            "avatar": None,
            "bot": bot,
            "public_flags": 0,
            "flags": 0,
        }

    def role_id(self, role: int | str) -> str:
        return str(self.roles[role]) if isinstance(role, str) and role in self.roles else str(role)

    def make_member(
        self,
        user: dict | None = None,
        roles: Sequence[int | str] = (),
        permissions: str | None = None,
    ) -> dict:
        """Member payload (roles may be names like "Curators"); also registers it in the guild."""
        user = user or self.make_user()
        member = {
            "user": user,
            "roles": [self.role_id(r) for r in roles],
            "nick": None,
            "avatar": None,
            "joined_at": _now_iso(),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
            "permissions": permissions or MEMBER_PERMISSIONS,
        }
        self.members[int(user["id"])] = member
        return member

    def _role(self, id: int, name: str, position: int, perms: str) -> dict:
        return {
            "id": str(id),
            "name": name,
            "permissions": perms,
            "position": position,
            "color": 0,
            "hoist": False,
            "managed": False,
            "mentionable": False,
            "icon": None,
            "unicode_emoji": None,
            "flags": 0,
        }

    def add_guild(self, guild_id: int, channel_id: int | None = None) -> int:
        """Another guild the bot is in (with one text channel); Discord sends its events to the
        shard `(guild_id >> 22) % shard_count`. Returns the channel's id."""
        channel_id = channel_id or self.snowflake()
        self.guilds[guild_id] = channel_id
        self.channels[channel_id] = self._text_channel(channel_id, guild_id=guild_id)
        return channel_id

    def guild_of(self, channel_id: int) -> int | None:
        channel = self.channels.get(int(channel_id))
        return int(channel["guild_id"]) if channel is not None else None

    def shard_of(self, guild_id: int) -> int:
        return (int(guild_id) >> 22) % max(1, self.shard_count)

    def _text_channel(self, cid: int, name: str = "story", *, guild_id: int | None = None) -> dict:
        return {
            "id": str(cid),
            "type": 0,
            "guild_id": str(guild_id or self.guild_id),
            "name": name,
            "position": 0,
            "permission_overwrites": [],
            "nsfw": False,
            "topic": None,
            "parent_id": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
        }

    def dm_channel(self, user: dict) -> dict:
        """The (created on demand) DM channel between the bot and ``user``."""
        for ch in self.dm_channels.values():
            if ch["recipients"][0]["id"] == user["id"]:
                return ch
        cid = self.snowflake()
        ch = {"id": str(cid), "type": 1, "recipients": [user], "last_message_id": None, "flags": 0}
        self.dm_channels[cid] = ch
        return ch

    def guild_payload(self, guild_id: int | None = None) -> dict:
        gid = guild_id or self.guild_id
        everyone = self._role(gid, "@everyone", 0, MEMBER_PERMISSIONS)
        return {
            "id": str(gid),
            "name": "Fake Story Guild",
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "features": [],
            "roles": [everyone, self._role(self.curators_role_id, "Curators", 1, MEMBER_PERMISSIONS)],
            "emojis": [],
            "stickers": [],
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "vanity_url_code": None,
            "application_id": None,
            "max_members": 500000,
            "premium_progress_bar_enabled": False,
            "joined_at": _now_iso(),
            "large": False,
            "unavailable": False,
            "member_count": len(self.members),
            "members": list(self.members.values()),
            "channels": [c for c in self.channels.values() if c["guild_id"] == str(gid)],
            "threads": [],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    def _message(self, channel_id: int, body: dict, *, author: dict | None = None, **extra: Any) -> dict:
        msg: dict[str, Any] = {
            "id": str(self.snowflake()),
            "channel_id": str(channel_id),
            "type": 0,
            "author": author or self.bot_user,
            "content": body.get("content") or "",
            "timestamp": _now_iso(),
            "edited_timestamp": None,
            "tts": bool(body.get("tts")),
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": body.get("embeds") or [],
            "components": body.get("components") or [],
            "pinned": False,
            "flags": body.get("flags") or 0,
        }
        if int(channel_id) in self.channels:
            msg["guild_id"] = self.channels[int(channel_id)]["guild_id"]
        if ref := body.get("message_reference"):
            msg["type"] = 19
            ref = {k: str(v) if k.endswith("_id") else v for k, v in ref.items()}
            msg["message_reference"] = {"channel_id": str(channel_id), **ref}
            if (refd := self.messages.get(int(ref.get("message_id", 0)))) is not None:
                msg["referenced_message"] = refd
        for i, att in enumerate(body.get("attachments") or []):
            name = att.get("filename", f"file{i}")
            msg["attachments"].append(
                {
                    "id": str(self.snowflake()),
                    "filename": name,
                    "size": att.get("size", 0),
                    "url": f"http://{self.host}:{self.port}/attachments/{name}",
                    "proxy_url": f"http://{self.host}:{self.port}/attachments/{name}",
                }
            )
        msg.update(extra)
        self.messages[int(msg["id"])] = msg
        return msg

    def _edit(self, mid: int, body: dict) -> dict:
        msg = self.messages[mid]
        cleared: dict[str, Any] = {"content": "", "embeds": [], "components": [], "attachments": []}
        for key in ("content", "embeds", "components", "flags", "attachments"):
            if key not in body:
                continue
            if body[key] is None:  # Discord: a null field in an edit removes that part
                msg[key] = cleared.get(key, msg[key])
            else:
                msg[key] = body[key] if key != "attachments" else msg[key]
        msg["edited_timestamp"] = _now_iso()
        return msg

    # ------------------------------------------------------------------ recording & waiting
    def find_requests(self, method: str | None = None, path_regex: str | None = None) -> list:
        return [
            r
            for r in self.requests
            if (method is None or r.method == method)
            and (path_regex is None or re.search(path_regex, r.path))
        ]

    def unexpected_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if not r.matched]

    @staticmethod
    def _pred(p: Callable[[RecordedRequest], bool] | str) -> Callable[[RecordedRequest], bool]:
        """A callable, or a string "METHOD path_regex" (e.g. "POST /channels/\\d+/messages")."""
        if callable(p):
            return p
        method, _, rx = p.partition(" ")
        return lambda r: r.method == method and re.search(rx, r.path) is not None

    async def wait_for_request(
        self, predicate: Callable[[RecordedRequest], bool] | str, timeout: float = 10.0
    ) -> RecordedRequest:
        """First completed request (past or future) matching ``predicate``. Resolves once the
        fake has built the response, i.e. possibly just before the client has processed it."""
        pred = self._pred(predicate)
        for r in self.requests:
            if r.status and pred(r):
                return r
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        entry = (pred, fut)
        self._waiters.append(entry)
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(entry)

    def interaction_requests(self, interaction_id: int) -> list[RecordedRequest]:
        """Callback + webhook (followup/@original) requests belonging to one interaction."""
        inter = self.interactions[int(interaction_id)]
        prefixes = (f"/interactions/{interaction_id}/", f"/webhooks/{self.app_id}/{inter.token}")
        return [r for r in self.requests if r.path.startswith(prefixes)]

    async def wait_for_reply(self, ref: int, timeout: float = 10.0) -> RecordedRequest:
        """Callback of interaction ``ref``, or a channel message replying to message ``ref``."""
        if int(ref) in self.interactions:
            return await self.wait_for_request(
                lambda r: r.path.startswith(f"/interactions/{ref}/") and r.status < 300, timeout
            )
        return await self.wait_for_request(
            lambda r: (
                r.method == "POST"
                and r.status < 300
                and re.fullmatch(r"/channels/\d+/messages", r.path) is not None
                and str((r.json or {}).get("message_reference", {}).get("message_id")) == str(ref)
            ),
            timeout,
        )

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until ``condition()`` is true (re-checked on every gateway change and REST request)."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(condition), timeout)

    async def wait_until_identified(self, timeout: float = 10.0, count: int = 1) -> None:
        await self.wait_for(lambda: self.identify_count >= count, timeout)

    # ------------------------------------------------------------------ fault injection
    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int | None = 429,
        times: int = 1,
        retry_after: float = 0.5,
        global_: bool = False,
        delay: float = 0.0,
    ) -> FaultRule:
        """Next ``times`` matching requests get ``status`` after ``delay`` s (None: delay only)."""
        rule = FaultRule(method, path_regex, status, times, retry_after, global_, delay)
        self._faults.append(rule)
        return rule

    async def drop_gateway(self, code: int | None = None, *, invalidate: bool | None = None) -> int:
        """Close all gateway sockets: code None aborts TCP (client sees 1006), else a close frame.
        Sessions stay resumable unless ``invalidate`` (default: code in 4007/4009)."""
        conns = list(self._conns)
        for conn in conns:
            conn.closed_by_server = True
            if conn.session is not None:
                if invalidate if invalidate is not None else code in (4007, 4009):
                    self._sessions.pop(conn.session.id, None)
                conn.session.conn = None
            if code is None:
                if (tr := conn.request.transport) is not None:
                    tr.abort()
            else:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.ws.close(code=code, message=b"fake drop"), 5)
        return len(conns)

    async def send_reconnect(self) -> None:
        for conn in list(self._conns):
            await self._send(conn, {"op": 7, "d": None, "s": None, "t": None})

    async def invalidate_session(self, resumable: bool) -> None:
        for conn in list(self._conns):
            if not resumable and conn.session is not None:
                self._sessions.pop(conn.session.id, None)
            await self._send(conn, {"op": 9, "d": resumable, "s": None, "t": None})

    # ------------------------------------------------------------------ gateway
    async def _send(self, conn: _Conn, frame: dict) -> bool:
        try:
            async with conn.send_lock:
                await conn.ws.send_str(json.dumps(frame))
            return True
        except Exception:  # closed / reset: the frame stays in the session buffer
            return False

    async def _emit(self, session: _Session, event: str, data: Any) -> None:
        """Send one dispatch on a session (caller holds ``session.lock``)."""
        session.seq += 1
        frame = {"op": 0, "t": event, "s": session.seq, "d": data}
        session.buffer.append(frame)
        self.dispatched.append((session.shard[0] if session.shard else None, event))
        if session.conn is not None and not await self._send(session.conn, frame):
            session.conn = None

    def _routes_to(self, session: _Session, data: Any, shard_id: int | None) -> bool:
        if session.shard is None:
            return shard_id in (None, 0)
        sid, count = session.shard
        if shard_id is not None:
            return sid == shard_id
        gid = data.get("guild_id") if isinstance(data, dict) else None
        return sid == ((int(gid) >> 22) % count if gid else 0)

    def _shape_for(self, session: _Session, event: str, data: Any) -> Any:
        if event in ("MESSAGE_CREATE", "MESSAGE_UPDATE") and data.get("guild_id"):
            mentioned = any(str(u.get("id")) == str(self.bot_id) for u in data.get("mentions", []))
            if not session.intents & INTENT_MESSAGE_CONTENT and not mentioned:
                return {**data, "content": "", "embeds": [], "attachments": [], "components": []}
        return data

    async def send_dispatch(self, event: str, data: Any, *, shard_id: int | None = None) -> int:
        """Dispatch (op 0) to every session (live or awaiting RESUME); returns #sessions."""
        sent = 0
        for session in list(self._sessions.values()):
            if self._routes_to(session, data, shard_id):
                async with session.lock:
                    await self._emit(session, event, self._shape_for(session, event, data))
                sent += 1
        if not sent:
            log.warning("dispatch %s reached no gateway session", event)
        return sent

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0, autoping=True)
        await ws.prepare(request)
        conn = _Conn(ws, request, dict(request.query))
        self._conns.add(conn)
        self.connections += 1
        self.gateway_queries.append(conn.query)
        hello = {"heartbeat_interval": self.heartbeat_interval_ms, "_trace": ["fake"]}
        await self._send(conn, {"op": 10, "d": hello, "s": None, "t": None})
        try:
            async for msg in ws:
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    await self._on_op(conn, json.loads(msg.data))
        except Exception:
            log.exception("gateway connection failed")
        finally:
            self._conns.discard(conn)
            sess = conn.session
            if sess is not None and sess.conn is conn:
                sess.conn = None
                if not conn.closed_by_server and ws.close_code in (1000, 1001):
                    self._sessions.pop(sess.id, None)  # a clean client close ends the session
            await self._notify()
        return ws

    async def _on_op(self, conn: _Conn, payload: dict) -> None:
        op, d = payload.get("op"), payload.get("d") or {}
        if op == 1:
            self.heartbeats += 1
            if not self.stop_heartbeat_acks:
                await self._send(conn, {"op": 11, "d": None, "s": None, "t": None})
            return
        self.received_ops.append(payload)
        if op == 2:
            await self._identify(conn, d)
        elif op == 6:
            await self._resume(conn, d)
        elif op == 8:
            await self._member_chunk(conn, d)
        await self._notify()

    async def _identify(self, conn: _Conn, d: dict) -> None:
        if d.get("token") in self.bad_tokens:
            await conn.ws.close(code=4004, message=b"Authentication failed.")
            return
        intents = int(d.get("intents") or 0)
        if intents & self.disallowed_intents:
            await conn.ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        shard = tuple(d["shard"]) if d.get("shard") else None
        self.identifies.append(d)
        self.identify_count += 1
        for sid, old in list(self._sessions.items()):
            if old.shard == shard:
                del self._sessions[sid]
        session = _Session(secrets.token_hex(16), shard, intents)  # type: ignore[arg-type]
        self._sessions[session.id] = session
        ready = {
            "v": 10,
            "user": {**self.bot_user, "verified": True, "mfa_enabled": False},
            "application": {"id": str(self.app_id), "flags": (1 << 19) | (1 << 23)},
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "guilds": [],
            "_trace": ["fake"],
        }
        if shard:
            ready["shard"] = list(shard)
        mine = [gid for gid in self.guilds if self._routes_to(session, {"guild_id": gid}, None)]
        ready["guilds"] = [{"id": str(gid), "unavailable": True} for gid in mine]
        async with session.lock:
            session.conn, conn.session = conn, session
            await self._emit(session, "READY", ready)
            for gid in mine:
                await self._emit(session, "GUILD_CREATE", self.guild_payload(gid))
        self.ready_event.set()

    async def _resume(self, conn: _Conn, d: dict) -> None:
        session = self._sessions.get(str(d.get("session_id")))
        seq = int(d.get("seq") or 0)
        if (
            session is None
            or d.get("token") in self.bad_tokens
            or (session.buffer and session.buffer[0]["s"] > seq + 1)
        ):
            if session is not None:
                self._sessions.pop(session.id, None)
            await self._send(conn, {"op": 9, "d": False, "s": None, "t": None})
            return
        async with session.lock:
            old, session.conn, conn.session = session.conn, conn, session
            if old is not None and old is not conn:
                old.closed_by_server = True
                with contextlib.suppress(Exception):
                    await old.ws.close(code=4000)
            for frame in [f for f in session.buffer if f["s"] > seq]:
                if not await self._send(conn, frame):
                    session.conn = None
                    return
            self.resume_count += 1
            await self._emit(session, "RESUMED", {"_trace": ["fake"]})

    async def _member_chunk(self, conn: _Conn, d: dict) -> None:
        if conn.session is None:
            return
        ids = {str(u) for u in d.get("user_ids") or []}
        query = (d.get("query") or "").lower()
        members = [
            m
            for m in self.members.values()
            if (not ids or m["user"]["id"] in ids) and m["user"]["username"].lower().startswith(query)
        ]
        chunk = {
            "guild_id": str(d.get("guild_id")),
            "members": members,
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
            "nonce": d.get("nonce"),
        }
        async with conn.session.lock:
            await self._emit(conn.session, "GUILD_MEMBERS_CHUNK", chunk)

    # ------------------------------------------------------------------ injected events
    def _options(self, options: dict[str, Any] | list[dict] | None, focused: str | None) -> list:
        if isinstance(options, list):
            return options
        out = []
        for name, value in (options or {}).items():
            opt: dict[str, Any]
            if isinstance(value, bool):
                opt = {"type": 5, "value": value}
            elif isinstance(value, int):
                opt = {"type": 4, "value": value}
            elif isinstance(value, float):
                opt = {"type": 10, "value": value}
            elif isinstance(value, dict) and "type" in value:
                opt = dict(value)
            else:
                opt = {"type": 3, "value": str(value)}
            opt["name"] = name
            if name == focused:
                opt["focused"] = True
            out.append(opt)
        return out

    def registered_command(self, name: str, guild: bool = True, guild_id: int | None = None) -> dict | None:
        """The command a user can run here, as Discord offers it: guild commands in the guild,
        global ones where their `contexts` (0 guild, 1 bot DM) or `dm_permission` allow."""
        scopes = ([guild_id or self.guild_id] if guild else []) + [None]
        for scope in scopes:
            for cmd in self.commands.get(scope, []):
                if cmd["name"] != name or cmd.get("type", 1) != 1:
                    continue
                if scope is None:
                    contexts = cmd.get("contexts")
                    if contexts is None:
                        contexts = [0, 1] if cmd.get("dm_permission", True) is not False else [0]
                    if (0 if guild else 1) not in contexts:
                        continue
                return cmd
        return None

    def _command_data(
        self,
        name: str,
        options: Any,
        group: str | None,
        sub: str | None,
        guild: bool,
        focused: str | None = None,
        forged: bool = False,
        guild_id: int | None = None,
    ) -> dict:
        parts = name.split()
        root = parts[0]
        if len(parts) == 3:
            group, sub = parts[1], parts[2]
        elif len(parts) == 2:
            sub = parts[1]
        opts = self._options(options, focused)
        if sub:
            opts = [{"type": 1, "name": sub, "options": opts}]
        if group:
            opts = [{"type": 2, "name": group, "options": opts}]
        cmd = self.registered_command(root, guild, guild_id)
        if cmd is None and not forged:
            where = "in the guild" if guild else "in direct messages"
            raise LookupError(f"Discord offers no /{root} {where} (pass forged=True to send it anyway)")
        data = {"id": cmd["id"] if cmd else str(self.snowflake()), "name": root, "type": 1, "options": opts}
        if cmd and cmd.get("guild_id"):
            data["guild_id"] = cmd["guild_id"]
        return data

    async def _interaction(
        self,
        itype: int,
        data: dict,
        *,
        user: dict | None = None,
        roles: Sequence[int | str] = (),
        permissions: str | None = None,
        guild: bool = True,
        channel_id: int | None = None,
        message: dict | None = None,
        locale: str = "en-US",
    ) -> int:
        iid, token = self.snowflake(), "aW50ZXJhY3Rpb24" + secrets.token_urlsafe(48)
        user = user or self.make_user()
        if not guild and channel_id is None:
            channel_id = int(self.dm_channel(user)["id"])
        cid = int(channel_id or self.channel_id)
        channel = self.channels.get(cid) or self.dm_channels.get(cid) or {"id": str(cid), "type": 0}
        gid = self.guild_of(cid) or self.guild_id
        payload: dict[str, Any] = {
            "id": str(iid),
            "application_id": str(self.app_id),
            "type": itype,
            "data": data,
            "token": token,
            "version": 1,
            "locale": locale,
            "channel_id": str(cid),
            "channel": channel,
            "app_permissions": BOT_PERMISSIONS,
            "entitlements": [],
            "attachment_size_limit": 10 * 1024 * 1024,
            "context": 0 if guild else 1,
            "authorizing_integration_owners": {"0": str(gid)} if guild else {},
        }
        if guild:
            payload.update(
                guild_id=str(gid),
                guild_locale="en-US",
                guild={"id": str(gid), "locale": "en-US", "features": []},
                member=self.make_member(user, roles, permissions),
            )
        else:
            payload["user"] = user
        inter = _Interaction(payload, token, cid)
        if message is not None:
            payload["message"] = message
            inter.original_id = int(message["id"])
        self.interactions[iid] = inter
        self._tokens[token] = iid
        await self.send_dispatch("INTERACTION_CREATE", payload)
        return iid

    async def slash_command(
        self,
        name: str,
        options: dict[str, Any] | list[dict] | None = None,
        *,
        subcommand_group: str | None = None,
        subcommand: str | None = None,
        guild: bool = True,
        forged: bool = False,
        **kw: Any,
    ) -> int:
        """INTERACTION_CREATE type 2. ``name`` may be "kb add" (subcommand) or "a b c" (group).
        Only a command Discord would offer there, unless ``forged`` (a crafted interaction)."""
        gid = self.guild_of(kw["channel_id"]) if kw.get("channel_id") else None
        data = self._command_data(
            name, options, subcommand_group, subcommand, guild, forged=forged, guild_id=gid
        )
        return await self._interaction(2, data, guild=guild, **kw)

    async def autocomplete(
        self,
        name: str,
        options: dict[str, Any] | list[dict] | None,
        focused: str,
        *,
        subcommand_group: str | None = None,
        subcommand: str | None = None,
        guild: bool = True,
        forged: bool = False,
        **kw: Any,
    ) -> int:
        gid = self.guild_of(kw["channel_id"]) if kw.get("channel_id") else None
        data = self._command_data(name, options, subcommand_group, subcommand, guild, focused, forged, gid)
        return await self._interaction(4, data, guild=guild, **kw)

    def find_message_with_component(self, custom_id: str) -> dict | None:
        def walk(comps: list) -> bool:
            for c in comps or []:
                if c.get("custom_id") == custom_id:
                    return True
                if walk(c.get("components", []) + ([c["accessory"]] if "accessory" in c else [])):
                    return True
            return False

        return next((m for m in reversed(self.messages.values()) if walk(m["components"])), None)

    async def component(
        self,
        custom_id: str,
        message: dict | int | None = None,
        component_type: int = 2,
        values: list[str] | None = None,
        **kw: Any,
    ) -> int:
        """INTERACTION_CREATE type 3 for a button/select on ``message`` (dict, id or searched)."""
        if isinstance(message, int | str):
            message = self.messages[int(message)]
        message = message or self.find_message_with_component(custom_id)
        if message is None:
            raise LookupError(f"no message with a component {custom_id!r}")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component_type}
        if values is not None:
            data["values"] = values
        kw.setdefault("channel_id", int(message["channel_id"]))
        return await self._interaction(3, data, message=message, **kw)

    async def modal_submit(
        self, custom_id: str, fields: dict[str, str], *, labels: bool | None = None, **kw: Any
    ) -> int:
        """INTERACTION_CREATE type 5. The layout mirrors the modal the bot opened (action rows or
        type-18 labels); unknown modals use action rows unless ``labels=True``."""
        shape = self.modals.get(custom_id, {}).get("components")
        if shape is None:
            shape = [{"type": 18 if labels else 1, "custom_id": k} for k in fields]

        def inner(c: dict) -> dict:
            cid = c.get("custom_id")
            return {"type": c.get("type", 4), "custom_id": cid, "value": fields.get(str(cid), "")}

        comps = []
        for top in shape:
            if top.get("type") == 18:
                child = top.get("component") or {"type": 4, "custom_id": top.get("custom_id")}
                comps.append({"type": 18, "id": top.get("id", 0), "component": inner(child)})
            elif top.get("type") == 1:
                kids = top.get("components") or [{"type": 4, "custom_id": top.get("custom_id")}]
                comps.append({"type": 1, "components": [inner(c) for c in kids]})
        return await self._interaction(5, {"custom_id": custom_id, "components": comps}, **kw)

    async def message_create(
        self,
        content: str,
        author: dict | None = None,
        *,
        mentions: list[dict] | None = None,
        channel_id: int | None = None,
        roles: Sequence[int | str] = (),
        dm: bool = False,
    ) -> int:
        """MESSAGE_CREATE from a user (in the guild channel, or the bot's DM with them if ``dm``);
        pass ``mentions=[fake.bot_user]`` for a bot mention."""
        author = author or self.make_user()
        if dm and channel_id is None:
            channel_id = int(self.dm_channel(author)["id"])
        cid = int(channel_id or self.channel_id)
        msg = self._message(cid, {"content": content}, author=author, mentions=mentions or [])
        if "guild_id" in msg:
            member = self.make_member(author, roles)
            msg["member"] = {k: v for k, v in member.items() if k not in ("user", "permissions")}
        await self.send_dispatch("MESSAGE_CREATE", msg)
        return int(msg["id"])

    # ------------------------------------------------------------------ REST
    def _build_routes(self) -> list[tuple[str, re.Pattern[str], Callable[..., Any]]]:
        n, tok = r"(?P<{}>\d+)", r"(?P<token>[^/]+)"
        table: list[tuple[str, str, Callable[..., Any]]] = [
            ("GET", "/users/@me", self._h_me),
            ("GET", "/oauth2/applications/@me", self._h_app),
            ("POST", "/users/@me/channels", self._h_create_dm),
            ("GET", "/applications/@me", self._h_app),
            ("GET", "/gateway", self._h_gateway),
            ("GET", "/gateway/bot", self._h_gateway),
            ("PUT|GET", f"/applications/{n.format('app')}/commands", self._h_commands),
            (
                "PUT|GET",
                f"/applications/{n.format('app')}/guilds/{n.format('gid')}/commands",
                self._h_commands,
            ),
            ("POST", f"/interactions/{n.format('iid')}/{tok}/callback", self._h_callback),
            ("POST", f"/webhooks/{n.format('app')}/{tok}", self._h_followup),
            (
                "GET|PATCH|DELETE",
                f"/webhooks/{n.format('app')}/{tok}/messages/(?P<mid>@original|\\d+)",
                self._h_webhook_message,
            ),
            ("POST", f"/channels/{n.format('cid')}/messages", self._h_create_message),
            (
                "GET|PATCH|DELETE",
                f"/channels/{n.format('cid')}/messages/{n.format('mid')}",
                self._h_channel_message,
            ),
            ("POST", f"/channels/{n.format('cid')}/typing", self._h_no_content),
            (
                "PUT|DELETE",
                f"/channels/{n.format('cid')}/messages/{n.format('mid')}/reactions/.+",
                self._h_no_content,
            ),
            ("GET", f"/channels/{n.format('cid')}", self._h_channel),
            ("GET", f"/guilds/{n.format('gid')}/members/{n.format('uid')}", self._h_member),
            ("GET", f"/guilds/{n.format('gid')}", self._h_guild),
        ]
        return [(m, re.compile(p), h) for m, p, h in table]

    @staticmethod
    def _error(status: int, code: int, message: str, **extra: Any) -> web.Response:
        return json_response({"message": message, "code": code, **extra}, status=status)

    async def _read_body(self, request: web.Request) -> tuple[Json, list[dict]]:
        ctype = request.content_type
        if ctype.startswith("multipart/"):
            form, files = await request.post(), []
            body: Json = None
            for key, value in form.items():
                if key == "payload_json":
                    raw = value.file.read() if isinstance(value, web.FileField) else value
                    body = json.loads(raw)
                elif isinstance(value, web.FileField):
                    files.append({"field": key, "filename": value.filename, "size": len(value.file.read())})
            return body, files
        raw = await request.read()
        if not raw:
            return None, []
        try:
            return json.loads(raw), []
        except ValueError:
            return raw.decode(errors="replace"), []

    async def _api(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        body, files = await self._read_body(request)
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        rec = RecordedRequest(request.method, path, dict(request.query), body, headers, files)
        self.requests.append(rec)
        try:
            resp = await self._dispatch_rest(request, rec)
        except Exception as exc:  # a bug in the fake should be loud, not a hang
            log.exception("fake handler failed")
            resp = self._error(500, 0, f"fake_discord error: {exc!r}")
        rec.status = resp.status
        for pred, fut in list(self._waiters):
            if not fut.done() and pred(rec):
                fut.set_result(rec)
        await self._notify()
        return resp

    async def _dispatch_rest(self, request: web.Request, rec: RecordedRequest) -> web.StreamResponse:
        rule = next((r for r in self._faults if r.matches(rec.method, rec.path)), None)
        if rule is not None:
            rule.hits += 1
            if rule.delay:
                await asyncio.sleep(rule.delay)
            if rule.status:
                rec.injected = True
                return self._fault_response(rule)
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bot ") and auth[4:] in self.bad_tokens:
            return self._error(401, 0, "401: Unauthorized")
        for methods, rx, handler in self._routes:
            if rec.method in methods.split("|") and (m := rx.fullmatch(rec.path)):
                return await handler(request, rec, **m.groupdict())
        rec.matched = False
        return self._error(404, 0, "Unknown")

    def _fault_response(self, rule: FaultRule) -> web.Response:
        if rule.status != 429:
            return self._error(rule.status or 500, 0, "fake server error")
        body = {
            "message": "You are being rate limited.",
            "retry_after": rule.retry_after,
            "global": rule.global_,
        }
        headers = {
            "Via": "1.1 google",
            "Retry-After": str(max(1, round(rule.retry_after))),
            "X-RateLimit-Scope": "global" if rule.global_ else "user",
        }
        if rule.global_:
            headers["X-RateLimit-Global"] = "true"
        return json_response(body, status=429, headers=headers)

    def _validate_message(self, body: Json, *, partial: bool = False) -> web.Response | None:
        body = body if isinstance(body, dict) else {}
        content = body.get("content") or ""
        if len(content) > 2000:
            return self._error(
                400,
                50035,
                "Invalid Form Body",
                errors={
                    "content": {
                        "_errors": [
                            {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}
                        ]
                    }
                },
            )
        if len(body.get("embeds") or []) > 10:
            return self._error(400, 50035, "Invalid Form Body")
        keys = ("content", "embeds", "components", "attachments", "sticker_ids", "poll")
        if not partial and not any(body.get(k) for k in keys):
            return self._error(400, 50006, "Cannot send an empty message")
        return None

    async def _h_me(self, request: web.Request, rec: RecordedRequest) -> web.Response:
        return json_response({**self.bot_user, "verified": True, "mfa_enabled": False})

    async def _h_app(self, request: web.Request, rec: RecordedRequest) -> web.Response:
        return json_response(
            {
                "id": str(self.app_id),
                "name": self.bot_user["username"],
                "icon": None,
                "description": "",
                "summary": "",
                "rpc_origins": [],
                "bot_public": True,
                "bot_require_code_grant": False,
                "verify_key": "0" * 64,
                "team": None,
                "owner": self.make_user(self.owner_id, "owner"),
                "flags": (1 << 19) | (1 << 23),
                "interactions_endpoint_url": None,
                "bot": self.bot_user,
            }
        )

    async def _h_gateway(self, request: web.Request, rec: RecordedRequest) -> web.Response:
        return json_response(
            {
                "url": self.gateway_url,
                "shards": self.shard_count,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 14400000,
                    "max_concurrency": 1,
                },
            }
        )

    def _check_command(self, cmd: dict, depth: int = 0) -> str | None:
        """Discord's main command validations: lowercase names, 1-100 char descriptions, <=25."""
        name, ctype = cmd.get("name", ""), cmd.get("type", 1)
        context_menu = depth == 0 and ctype in (2, 3)
        lower = name == name.lower()
        if not (1 <= len(name) <= 32 if context_menu else NAME_RE.match(name) and lower):
            return f"invalid name {name!r}"
        if not context_menu and not 1 <= len(cmd.get("description", "")) <= 100:
            return f"description of {name!r} must be 1-100 chars"
        if len(cmd.get("options") or []) > 25 or len(cmd.get("choices") or []) > 25:
            return f"too many options/choices in {name!r}"
        for opt in cmd.get("options") or []:
            if err := self._check_command(opt, depth + 1):
                return err
        return None

    async def _h_commands(
        self, request: web.Request, rec: RecordedRequest, app: str, gid: str | None = None
    ) -> web.Response:
        if int(app) != self.app_id:
            return self._error(403, 50001, "Missing Access")
        scope = int(gid) if gid else None
        if rec.method == "GET":
            return json_response(self.commands.get(scope, []))
        body = rec.json if isinstance(rec.json, list) else []
        for cmd in body:
            if err := self._check_command(cmd):
                return self._error(400, 50035, "Invalid Form Body", errors={"_errors": [err]})
        stored = []
        for cmd in body:
            key = (scope, cmd["name"], cmd.get("type", 1))
            cid = self._command_ids.setdefault(key, self.snowflake())
            out = {
                "type": 1,
                "description": "",
                "options": [],
                "nsfw": False,
                "default_member_permissions": None,
                **cmd,
                "id": str(cid),
                "application_id": str(self.app_id),
                "version": str(self.snowflake()),
            }
            if scope:
                out["guild_id"] = str(scope)
            stored.append(out)
        self.commands[scope] = stored
        return json_response(stored)

    async def _h_callback(
        self, request: web.Request, rec: RecordedRequest, iid: str, token: str
    ) -> web.StreamResponse:
        inter = self.interactions.get(int(iid))
        expired = (
            self.interaction_deadline is not None
            and inter is not None
            and time.monotonic() - inter.created > self.interaction_deadline
        )
        if inter is None or inter.token != token or expired:
            return self._error(404, 10062, "Unknown interaction")
        if inter.callback_type is not None:
            return self._error(400, 40060, "Interaction has already been acknowledged.")
        body = rec.json if isinstance(rec.json, dict) else {}
        ctype, data = int(body.get("type", 0)), body.get("data") or {}
        if ctype in (4, 7) and (err := self._validate_message(data, partial=ctype == 7)):
            return err
        inter.callback_type = ctype
        message = None
        meta = {
            "id": str(iid),
            "type": inter.payload["type"],
            "user": inter.payload.get("member", {}).get("user") or inter.payload.get("user"),
        }
        if ctype in (4, 5):
            flags = int(data.get("flags") or 0) | (128 if ctype == 5 else 0)  # 128 = LOADING
            message = self._message(
                inter.channel_id,
                {**data, "flags": flags},
                webhook_id=str(self.app_id),
                interaction_metadata=meta,
            )
            inter.original_id = int(message["id"])
        elif ctype == 7 and inter.original_id in self.messages:
            message = self._edit(inter.original_id, data)
        elif ctype == 9:
            self.modals[data.get("custom_id", "")] = data
        if request.query.get("with_response", "").lower() not in ("1", "true"):
            return web.Response(status=204)
        resource: dict[str, Any] = {"type": ctype}
        if message is not None:
            resource["message"] = message
        return json_response(
            {
                "interaction": {
                    "id": str(iid),
                    "type": inter.payload["type"],
                    "activity_instance_id": None,
                    "response_message_id": message["id"] if message else None,
                    "response_message_loading": ctype == 5,
                    "response_message_ephemeral": bool(int(data.get("flags") or 0) & 64),
                },
                "resource": resource,
            }
        )

    def _inter_for(self, app: str, token: str) -> _Interaction | None:
        iid = self._tokens.get(token)
        return self.interactions.get(iid) if iid is not None and int(app) == self.app_id else None

    async def _h_followup(
        self, request: web.Request, rec: RecordedRequest, app: str, token: str
    ) -> web.StreamResponse:
        inter = self._inter_for(app, token)
        if inter is None:
            return self._error(404, 10015, "Unknown Webhook")
        if inter.callback_type is None:
            return self._error(404, 10015, "Unknown Webhook")  # must respond/defer first
        if err := self._validate_message(rec.json):
            return err
        original = self.messages.get(inter.original_id or 0)
        if original is not None and int(original["flags"]) & 128:  # first followup after defer
            message = self._edit(int(original["id"]), rec.json)  # replaces the "thinking" msg
            message["flags"] = int(message["flags"]) & ~128
        else:
            message = self._message(inter.channel_id, rec.json, webhook_id=str(self.app_id))
        if request.query.get("wait", "").lower() in ("1", "true"):
            return json_response(message)
        return web.Response(status=204)

    async def _h_webhook_message(
        self, request: web.Request, rec: RecordedRequest, app: str, token: str, mid: str
    ) -> web.StreamResponse:
        inter = self._inter_for(app, token)
        if inter is None:
            return self._error(404, 10015, "Unknown Webhook")
        msg_id = inter.original_id if mid == "@original" else int(mid)
        if msg_id not in self.messages:
            return self._error(404, 10008, "Unknown Message")
        if rec.method == "DELETE":
            del self.messages[msg_id]
            return web.Response(status=204)
        if rec.method == "PATCH":
            if err := self._validate_message(rec.json, partial=True):
                return err
            msg = self._edit(msg_id, rec.json or {})
            msg["flags"] = int(msg.get("flags") or 0) & ~128
        return json_response(self.messages[msg_id])

    async def _h_create_message(self, request: web.Request, rec: RecordedRequest, cid: str) -> web.Response:
        if int(cid) not in self.channels and int(cid) not in self.dm_channels:
            return self._error(404, 10003, "Unknown Channel")
        if err := self._validate_message(rec.json):
            return err
        return json_response(self._message(int(cid), rec.json))

    async def _h_create_dm(self, request: web.Request, rec: RecordedRequest) -> web.Response:
        uid = int((rec.json or {}).get("recipient_id", 0))
        user = self.members[uid]["user"] if uid in self.members else self.make_user(uid, "user")
        return json_response(self.dm_channel(user))

    async def _h_channel_message(
        self, request: web.Request, rec: RecordedRequest, cid: str, mid: str
    ) -> web.StreamResponse:
        msg = self.messages.get(int(mid))
        if msg is None or msg["channel_id"] != cid:
            return self._error(404, 10008, "Unknown Message")
        if rec.method == "DELETE":
            del self.messages[int(mid)]
            return web.Response(status=204)
        if rec.method == "PATCH":
            if err := self._validate_message(rec.json, partial=True):
                return err
            msg = self._edit(int(mid), rec.json or {})
        return json_response(msg)

    async def _h_no_content(self, request: web.Request, rec: RecordedRequest, **_: str) -> web.Response:
        return web.Response(status=204)

    async def _h_channel(self, request: web.Request, rec: RecordedRequest, cid: str) -> web.Response:
        channel = self.channels.get(int(cid)) or self.dm_channels.get(int(cid))
        if channel is None:
            return self._error(404, 10003, "Unknown Channel")
        return json_response(channel)

    async def _h_member(self, request: web.Request, rec: RecordedRequest, gid: str, uid: str) -> web.Response:
        if int(gid) not in self.guilds or int(uid) not in self.members:
            return self._error(404, 10007, "Unknown Member")
        return json_response(self.members[int(uid)])

    async def _h_guild(self, request: web.Request, rec: RecordedRequest, gid: str) -> web.Response:
        if int(gid) not in self.guilds:
            return self._error(404, 10004, "Unknown Guild")
        return json_response(self.guild_payload(int(gid)))

    # ------------------------------------------------------------------ control API (/_fake/)
    async def _ctl_json(self, request: web.Request) -> tuple[dict, dict]:
        """(body, user payload from body's user_id/username)."""
        b: dict = {}
        with contextlib.suppress(ValueError):
            b = dict(await request.json())
        uid = int(b.get("user_id") or self.default_user_id)
        return b, self.make_user(uid, b.get("username", "tester"))

    async def _ctl_slash(self, request: web.Request) -> web.Response:
        b, user = await self._ctl_json(request)
        try:
            iid = await self.slash_command(
                b["name"],
                b.get("options"),
                user=user,
                roles=b.get("roles") or [],
                permissions=b.get("permissions"),
                guild=b.get("guild", True),
                forged=bool(b.get("forged", False)),
                channel_id=int(b["channel_id"]) if b.get("channel_id") else None,
            )
        except LookupError as exc:
            return json_response({"error": str(exc)}, status=404)
        return json_response({"interaction_id": str(iid)})

    async def _ctl_modal(self, request: web.Request) -> web.Response:
        b, user = await self._ctl_json(request)
        iid = await self.modal_submit(
            b["custom_id"],
            b.get("fields") or {},
            user=user,
            roles=b.get("roles") or [],
            permissions=b.get("permissions"),
            channel_id=int(b["channel_id"]) if b.get("channel_id") else None,
        )
        return json_response({"interaction_id": str(iid)})

    async def _ctl_message(self, request: web.Request) -> web.Response:
        b, user = await self._ctl_json(request)
        content = b.get("content", "")
        mentions = []
        if b.get("mention_bot", True):
            mentions = [self.bot_user]
            content = content if self.mention_bot in content else f"{self.mention_bot} {content}"
        roles = b.get("roles") or []
        mid = await self.message_create(content, user, mentions=mentions, roles=roles)
        return json_response({"message_id": str(mid)})

    async def _ctl_drop(self, request: web.Request) -> web.Response:
        b, _ = await self._ctl_json(request)
        return json_response({"dropped": await self.drop_gateway(b.get("code"))})

    async def _ctl_dispatch(self, request: web.Request) -> web.Response:
        b, _ = await self._ctl_json(request)
        return json_response({"sessions": await self.send_dispatch(b["t"], b.get("d"))})

    async def _ctl_requests(self, request: web.Request) -> web.Response:
        since = int(request.query.get("since", 0))
        return json_response([r.to_dict() for r in self.requests[since:]])

    async def _ctl_state(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "identified": self.identify_count > 0,
                "connections": self.connections,
                "live_connections": len(self._conns),
                "identify_count": self.identify_count,
                "resume_count": self.resume_count,
                "heartbeats": self.heartbeats,
                "commands": {str(k): [c["name"] for c in v] for k, v in self.commands.items()},
                "requests": len(self.requests),
                "unexpected": len(self.unexpected_requests()),
            }
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake Discord REST+gateway server for tests")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", help="write the bound port here (atomically)")
    parser.add_argument("--app-id", type=int, default=111111111111111111)
    parser.add_argument("--guild-id", type=int, default=222222222222222222)
    parser.add_argument("--channel-id", type=int, default=333333333333333333)
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument(
        "--guilds", type=int, default=1,
        help="guilds the bot is in: the first has --guild-id and --channel-id; guild k adds k << 22 to "
        "the id (so consecutive guilds fall on consecutive shards) and k to the channel id",
    )  # fmt: skip
    parser.add_argument("--bad-token", action="append", default=["bad-token"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="fake_discord: %(message)s")

    async def run() -> None:
        fake = FakeDiscord(
            host=args.host,
            port=args.port,
            app_id=args.app_id,
            guild_id=args.guild_id,
            channel_id=args.channel_id,
            shard_count=args.shards,
            bad_tokens=tuple(args.bad_token),
        )
        for k in range(1, args.guilds):
            fake.add_guild(args.guild_id + (k << 22), args.channel_id + k)
        await fake.start()
        if args.port_file:
            tmp = f"{args.port_file}.tmp"
            with open(tmp, "w") as fh:
                fh.write(f"{fake.port}\n")
            os.replace(tmp, args.port_file)
        print(fake.port, flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await fake.stop()

    asyncio.run(run())
    sys.exit(0)


if __name__ == "__main__":
    main()
