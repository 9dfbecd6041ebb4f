"""Several StoryBot processes splitting one bot's shards, sharing one PostgreSQL database, against
the local fake Discord: the scenario behind tests/reliability/test_cluster.py and
`python scripts/cluster_check.py` (which prints the figures the README quotes).

Two `python -m bot run` processes (each its own data folder and its own copy of the knowledge
folder, as two hosts would have), `STORYBOT_SHARD_COUNT=2` and `STORYBOT_SHARD_IDS` 0 and 1, one
`STORYBOT_DATABASE_URL`. The fake Discord has two guilds, one on each shard.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e.fake_discord import FakeDiscord, RecordedRequest
from tests.pgserver import PostgresServer

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "fake-token-Y2x1c3Rlcg.c2hhcmRz.cGc"
CURATORS = ["Curators"]
ASK = "How far did they push the trolley?"
NEW = {"question": "What did the diplomats ride after the train?", "answer": "A bus, for two hours.",
       "source": "The group of eight people took a 32-hour train ride, followed by two hours on a bus.",
       "alternates": "", "id": "bus-after-the-train"}  # fmt: skip


RELOAD_INTERVAL_S = 60
"""The processes' poll for knowledge changes, long on purpose: a curator's change reaches the other
process through LISTEN/NOTIFY (bot.core.postgres.ChangeListener) well before a poll could."""


def body_of(reply: RecordedRequest) -> dict[str, Any]:
    return reply.json.get("data", reply.json) if "/callback" in reply.path else reply.json


@dataclass
class BotProcess:
    """One `python -m bot run` with its shard range."""

    shard: int
    folder: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def log(self) -> Path:
        return self.folder / f"bot-{self.starts}.log"

    @property
    def heartbeat(self) -> Path:
        return self.folder / "data" / "heartbeat"

    def start(self) -> None:
        self.starts += 1
        self.heartbeat.unlink(missing_ok=True)
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=self.folder, env=self.env,
                                         stdout=out, stderr=subprocess.STDOUT)  # fmt: skip

    async def ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.heartbeat.exists():
            if self.proc is None or self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"bot for shard {self.shard} did not start:\n{self.log.read_text()[-3000:]}"
                )
            await asyncio.sleep(0.1)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    async def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.proc.wait, 15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.returncode


@dataclass
class Cluster:
    """The fake Discord with a guild per shard, and a bot process per shard."""

    fake: FakeDiscord
    bots: list[BotProcess]
    guilds: dict[int, int] = field(default_factory=dict)  # shard -> guild id
    channels: dict[int, int] = field(default_factory=dict)  # shard -> channel id

    @classmethod
    def make(cls, fake: FakeDiscord, database_url: str, folder: Path, shards: int = 2) -> Cluster:
        fake.shard_count = shards
        guilds, channels = {}, {}
        for gid, cid in list(fake.guilds.items()):
            guilds[fake.shard_of(gid)], channels[fake.shard_of(gid)] = gid, cid
        gid = fake.guild_id
        while len(guilds) < shards:  # a guild on every shard
            gid += 1 << 22
            if fake.shard_of(gid) not in guilds:
                channels[fake.shard_of(gid)] = fake.add_guild(gid)
                guilds[fake.shard_of(gid)] = gid
        bots = []
        for shard in range(shards):
            home = folder / f"host-{shard}"
            home.mkdir(parents=True)
            shutil.copytree(ROOT / "knowledge", home / "knowledge")
            env = {**os.environ, "PYTHONPATH": str(ROOT), "DISCORD_TOKEN": TOKEN,
                   "STORYBOT_API_BASE": fake.api_base, "STORYBOT_GATEWAY_URL": fake.gateway_url,
                   "STORYBOT_KNOWLEDGE": str(home / "knowledge"), "STORYBOT_DATA": str(home / "data"),
                   "STORYBOT_SHARD_COUNT": str(shards), "STORYBOT_SHARD_IDS": str(shard),
                   "STORYBOT_DATABASE_URL": database_url, "STORYBOT_RELOAD_INTERVAL": str(RELOAD_INTERVAL_S),
                   "STORYBOT_CURATOR_ROLE_ID": str(fake.curators_role_id), "STORYBOT_HEALTH_MAX_AGE": "6",
                   "STORYBOT_COOLDOWN_QUESTIONS": "1000", "STORYBOT_SAME_QUESTION_WINDOW": "0"}  # fmt: skip
            env.pop("STORYBOT_GUILD_ID", None)
            bots.append(BotProcess(shard, home, env))
        return cls(fake, bots, guilds, channels)

    async def start(self) -> None:
        for bot in self.bots:
            bot.start()
        await asyncio.gather(*(bot.ready() for bot in self.bots))
        await self.fake.wait_for(lambda: any(self.fake.commands.get(None, [])), 30)

    async def stop(self) -> None:
        await asyncio.gather(*(bot.stop() for bot in self.bots))

    async def ask(self, shard: int, question: str = ASK, timeout: float = 15.0, **kw: Any) -> dict[str, Any]:
        iid = await self.fake.slash_command(
            "ask", {"question": question}, channel_id=self.channels[shard], **kw
        )
        return body_of(await self.fake.wait_for_reply(iid, timeout))

    async def kb(self, shard: int, command: str, options: dict[str, Any] | None = None) -> RecordedRequest:
        iid = await self.fake.slash_command(
            f"kb {command}", options, channel_id=self.channels[shard], roles=CURATORS
        )
        return await self.fake.wait_for_reply(iid, 20)

    async def add_entry(self, shard: int, fields: dict[str, str]) -> str:
        form = await self.kb(shard, "add")
        sid = await self.fake.modal_submit(form.json["data"]["custom_id"], fields, roles=CURATORS,
                                           channel_id=self.channels[shard])  # fmt: skip
        return await self.text_of(sid)

    async def text_of(self, iid: int, timeout: float = 30.0) -> str:
        """The text an interaction was answered with, in its response or (after "thinking…") a followup."""

        def said() -> str | None:
            for r in self.fake.interaction_requests(iid):
                body = r.json if isinstance(r.json, dict) else {}
                content = (body.get("data") or body).get("content") if r.status < 300 else None
                if content:
                    return str(content)
            return None

        await self.fake.wait_for(lambda: said() is not None, timeout)
        return said() or ""

    async def seconds_until_answered(
        self, shard: int, question: str, answer: str, limit: float = 30.0
    ) -> float:
        """Ask `question` on `shard` until it gets `answer`; how long that took."""
        started = time.monotonic()
        while time.monotonic() - started < limit:
            body = await self.ask(shard, question)
            if any(e.get("description") == answer for e in body.get("embeds") or []):
                return time.monotonic() - started
            await asyncio.sleep(0.1)
        raise AssertionError(f"shard {shard} never answered {question!r} with the new entry")


# ------------------------------------------------------------------------------ the scenario


def _answered(fake: FakeDiscord, iid: int, word: str) -> bool:
    return any(word in str(r.json) for r in fake.interaction_requests(iid) if r.status < 300)


async def each_process_serves_its_own_shard(cluster: Cluster) -> dict[str, Any]:
    fake = cluster.fake
    assert sorted(tuple(i["shard"]) for i in fake.identifies) == [(0, 2), (1, 2)]
    for bot in cluster.bots:  # each process has its own guild, and only that one
        assert "to 1 guild(s)" in bot.log.read_text()
    # one registration for the one bot: the process running shard 0's
    registrations = len(fake.find_requests("PUT", r"/applications/\d+/commands$"))
    assert registrations == 1
    for shard in (0, 1):
        before = len(fake.dispatched)
        body = await cluster.ask(shard)
        assert body["embeds"][0]["title"] == ASK
        delivered = [s for s, event in fake.dispatched[before:] if event == "INTERACTION_CREATE"]
        assert delivered == [shard]  # Discord (the fake) sent it to that shard's process only
    return {
        "processes": len(cluster.bots),
        "shards": len(cluster.bots),
        "command registrations": registrations,
    }


async def an_edit_reaches_the_other_process(cluster: Cluster) -> dict[str, Any]:
    assert (await cluster.add_entry(0, NEW)).startswith("Added `")
    seconds = await cluster.seconds_until_answered(1, NEW["question"], NEW["answer"])
    return {"seconds for a /kb add on one process to be answered by the other": round(seconds, 2)}


async def votes_land_in_one_table(cluster: Cluster, database_url: str) -> dict[str, Any]:
    import psycopg

    fake = cluster.fake
    for shard in (0, 1):
        iid = await fake.slash_command("ask", {"question": ASK}, channel_id=cluster.channels[shard])
        await fake.wait_for_reply(iid, 20)
        message = fake.messages[fake.interactions[iid].original_id or 0]
        vote = message["components"][0]["components"][0]["custom_id"]
        voter = fake.make_user(777000000000000400 + shard, f"voter{shard}")
        reply = await fake.wait_for_reply(await fake.component(vote, message, user=voter), 20)
        assert body_of(reply)["content"] == "Thanks, noted."
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT user_id FROM votes ORDER BY user_id").fetchall()
    assert rows == [(777000000000000400,), (777000000000000401,)]
    return {"votes from both processes in one table": len(rows)}


async def sigkill_mid_write(cluster: Cluster, database_url: str) -> dict[str, Any]:
    """SIGKILL the process of shard 1 while curators' saves are under way on it; every save it
    confirmed is in the database, and its restart takes its shard back."""
    import psycopg

    fake, victim = cluster.fake, cluster.bots[1]
    phrasings = [f"how far was the trolley pushed, take {n}" for n in range(30)]
    sent = []
    for phrasing in phrasings:
        sent.append(await fake.slash_command("kb alias", {"entry": "trolley-distance", "phrasing": phrasing},
                                             channel_id=cluster.channels[1], roles=CURATORS))  # fmt: skip
    await fake.wait_for(lambda: sum(_answered(fake, i, "Added") for i in sent) >= 5, 30)
    victim.kill()
    confirmed = [p for p, i in zip(phrasings, sent, strict=True) if _answered(fake, i, "Added")]
    with psycopg.connect(database_url) as conn:
        [(body,)] = conn.execute("SELECT body FROM entries WHERE id = 'trolley-distance'").fetchall()
    stored = set(body.get("alternates", []))
    lost = sorted(set(confirmed) - stored)
    assert not lost, f"saves the curator was told about are missing: {lost}"
    identified = fake.identify_count
    started = time.monotonic()
    victim.start()
    await victim.ready()
    assert fake.identify_count == identified + 1 and tuple(fake.identifies[-1]["shard"]) == (1, 2)
    assert (await cluster.ask(1))["embeds"][0]["title"] == ASK
    return {"saves confirmed before the SIGKILL": len(confirmed), "confirmed saves lost": len(lost),
            "seconds for the killed process to serve its shard again": round(time.monotonic() - started, 1)}  # fmt: skip


async def database_restart_under_load(
    cluster: Cluster, database_url: str, server: PostgresServer, questions: int = 40, writes: int = 10
) -> dict[str, Any]:
    """PostgreSQL stopped while readers ask and write (unanswered questions, votes), started again
    3 s later: every question answered, every write there once the database is back."""
    import psycopg

    fake = cluster.fake
    answered: list[int] = []

    async def ask(n: int) -> None:
        body = await cluster.ask(n % 2, ASK, timeout=60)
        assert body.get("embeds")
        answered.append(n)

    async def unanswered(n: int) -> None:
        assert (await cluster.ask(n % 2, f"what colour was the sky over the border on day {n}", timeout=60))[
            "content"
        ]

    async def vote(shard: int) -> None:
        iid = await fake.slash_command("ask", {"question": ASK}, channel_id=cluster.channels[shard])
        await fake.wait_for_reply(iid, 20)
        message = fake.messages[fake.interactions[iid].original_id or 0]
        button = message["components"][0]["components"][1]["custom_id"]  # not helpful
        voter = fake.make_user(777000000000000500 + shard, f"late-voter{shard}")
        pid = await fake.component(button, message, user=voter)
        await fake.wait_for(lambda: _answered(fake, pid, "Thanks, noted."), 60)

    await asyncio.to_thread(server.stop, "fast")
    down = time.monotonic()
    load = asyncio.gather(*(ask(n) for n in range(questions)), *(unanswered(n) for n in range(writes)),
                          *(vote(s) for s in (0, 1)))  # fmt: skip
    await asyncio.sleep(3.0)
    await asyncio.to_thread(server.start_again)
    outage = time.monotonic() - down
    await load
    # The unanswered list is written in the background (the replies never wait for it): give its
    # retries time to land once the database is back.
    deadline = time.monotonic() + 60
    while True:
        with psycopg.connect(database_url) as conn:
            listed = conn.execute(
                "SELECT COUNT(*) FROM unanswered WHERE question LIKE 'what colour was the sky%'"
            ).fetchone()
            late_votes = conn.execute(
                "SELECT COUNT(*) FROM votes WHERE user_id >= 777000000000000500"
            ).fetchone()
        if (listed, late_votes) == ((writes,), (2,)) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert len(answered) == questions
    assert listed == (writes,) and late_votes == (2,)
    for shard in (0, 1):  # both processes still answer and save
        assert (await cluster.ask(shard))["embeds"]
    added = await cluster.add_entry(1, {**NEW, "id": "bus-again", "question": "Which bus did they take?"})
    assert added.startswith("Added")
    return {"seconds the database was down": round(outage, 1), "questions answered meanwhile": len(answered),
            "writes made meanwhile (unanswered list, votes)": writes + 2, "writes lost": 0}  # fmt: skip


async def run_scenario(database_url: str, server: PostgresServer, folder: Path) -> dict[str, Any]:
    """Everything above, in order, on one cluster; the figures of each step."""
    figures: dict[str, Any] = {}
    async with FakeDiscord(heartbeat_interval_ms=1000) as fake:
        cluster = Cluster.make(fake, database_url, folder)
        started = time.monotonic()
        await cluster.start()
        figures["seconds for both processes to start"] = round(time.monotonic() - started, 1)
        try:
            figures.update(await each_process_serves_its_own_shard(cluster))
            figures.update(await an_edit_reaches_the_other_process(cluster))
            figures.update(await votes_land_in_one_table(cluster, database_url))
            figures.update(await sigkill_mid_write(cluster, database_url))
            figures.update(await database_restart_under_load(cluster, database_url, server))
        finally:
            await cluster.stop()
    return figures
