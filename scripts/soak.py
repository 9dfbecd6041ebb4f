#!/usr/bin/env python3
"""Soak run: thousands of questions through the local fake Discord, with faults injected.

Starts the fake Discord (tests/e2e/fake_discord.py) in this process and the real bot as a
separate process (`python -m bot run`, pointed at the fake), then asks --questions questions
over --seconds seconds from many users in several channels (slash commands and mentions),
while dropping the gateway (1006, 4000, RECONNECT) and answering some sends with 429
(per route and global), 500 and 502. At the end it checks:

* every question was answered exactly once (none lost, none duplicated);
* the bot's log has no unhandled exception;
* the bot's RSS at the end is within 10% of where it settled after the first 500 answers.

    python scripts/soak.py                          # 5,000 questions over ~3 minutes
    python scripts/soak.py --questions 500 --seconds 15

Exits 0 when all checks pass, 1 otherwise; prints its figures either way (--json for JSON).
Only session-keeping faults are injected here (Discord replays what a resumed session missed);
faults that end the session are tested one by one in tests/reliability/test_gateway_faults.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.fake_discord import FakeDiscord  # noqa: E402

TOKEN = "soak-token-c29haw.dGVzdA.bm90LWEtcmVhbC10b2tlbg"
MESSAGES = r"^/channels/\d+/messages$"
CALLBACK = r"^/interactions/\d+/[^/]+/callback$"
SETTLE_AFTER = 500
RSS_TOLERANCE = 0.10
# Log lines that mean something went unhandled (discord.py's own handled reconnects excluded).
UNHANDLED = re.compile(
    r"Traceback|Task exception was never retrieved|Ignoring exception|unhandled error|error in |"
    r"the knowledge watcher stopped"
)
EXTRA_QUESTIONS = [
    "",
    "   ",
    "what's the weather in moscow",
    "who won the football",
    "trolley",
    "🚂🚂🚂",
    "@everyone how far did they go",
    "'; DROP TABLE votes; --",
    "how far did they push the trolley " * 30,
]


@dataclass
class Figures:
    questions: int = 0
    slash: int = 0
    mentions: int = 0
    users: int = 0
    channels: int = 0
    answered_once: int = 0
    lost: int = 0
    duplicated: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    gateway_connections: int = 0
    resumes: int = 0
    identifies: int = 0
    seconds: float = 0.0
    settle_after: int = SETTLE_AFTER
    rss_settled_mb: float = 0.0
    rss_end_mb: float = 0.0
    rss_growth_pct: float = 0.0
    unhandled_log_lines: int = 0
    log_sample: list[str] = field(default_factory=list)

    def ok(self) -> bool:
        return (
            self.lost == 0
            and self.duplicated == 0
            and self.unhandled_log_lines == 0
            and self.answered_once == self.questions
            and self.rss_growth_pct <= RSS_TOLERANCE * 100
        )


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def question_pool(knowledge: Path) -> list[str]:
    import yaml

    pool = list(EXTRA_QUESTIONS)
    for name in ("dev.yaml", "tune.yaml"):
        path = ROOT / "tests" / "data" / name
        if path.exists():
            pool += [str(c["question"]) for c in yaml.safe_load(path.read_text(encoding="utf-8"))]
    return pool


def count_replies(fake: FakeDiscord, slash: set[int], mentions: set[int]) -> Counter[int]:
    """Successful answers per question id (interaction callbacks, or replies to a message)."""
    counts: Counter[int] = Counter()
    for r in fake.requests:
        if not 200 <= r.status < 300 or r.method != "POST":
            continue
        if r.path.startswith("/interactions/"):
            iid = int(r.path.split("/")[2])
            if iid in slash:
                counts[iid] += 1
        elif re.fullmatch(r"/channels/\d+/messages", r.path) and isinstance(r.json, dict):
            ref = (r.json.get("message_reference") or {}).get("message_id")
            if ref is not None and int(ref) in mentions:
                counts[int(ref)] += 1
    return counts


async def inject_fault(fake: FakeDiscord, rng: random.Random, figures: Figures) -> None:
    kind = rng.choice(["drop-1006", "drop-4000", "reconnect", "429", "429-global", "500", "502"])
    route = rng.choice([MESSAGES, CALLBACK])
    if kind == "drop-1006":
        await fake.drop_gateway(None)
    elif kind == "drop-4000":
        await fake.drop_gateway(4000)
    elif kind == "reconnect":
        await fake.send_reconnect()
    elif kind == "429":
        fake.fail_next("POST", route, status=429, retry_after=rng.uniform(0.1, 0.5))
    elif kind == "429-global":
        fake.fail_next("POST", route, status=429, retry_after=rng.uniform(0.1, 0.4), global_=True)
    else:
        fake.fail_next("POST", route, status=int(kind))
    figures.faults[kind] += 1


async def soak(
    questions: int = 5000,
    seconds: float = 180.0,
    *,
    users: int | None = None,
    channels: int = 4,
    faults_per_minute: float = 40.0,
    seed: int = 2026,
    log: Path | None = None,
    verbose: bool = True,
    inspect: Callable[[FakeDiscord], None] | None = None,
) -> Figures:
    """Run the soak and return its figures."""
    rng = random.Random(seed)
    rate = questions / seconds
    # Round-robin over enough users that nobody exceeds the default budget (5 per 30 s).
    users = users or max(50, math.ceil(rate * 8))
    settle_after = min(SETTLE_AFTER, questions // 3)
    figures = Figures(users=users, channels=channels, settle_after=settle_after)
    work = Path(tempfile.mkdtemp(prefix="storybot-soak-"))
    knowledge = work / "knowledge"
    shutil.copytree(ROOT / "knowledge", knowledge)
    log_path = log or work / "bot.log"

    def say(text: str) -> None:
        if verbose:
            print(text, flush=True)

    fake = FakeDiscord(heartbeat_interval_ms=5000)
    for n in range(1, channels):
        cid = fake.channel_id + n
        fake.channels[cid] = fake._text_channel(cid, f"story-{n}")
    channel_ids = list(fake.channels)
    await fake.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STORYBOT_")}
    env.update(
        DISCORD_TOKEN=TOKEN,
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
        STORYBOT_KNOWLEDGE=str(knowledge),
        STORYBOT_DATA=str(work / "data"),
        STORYBOT_API_BASE=fake.api_base,
        STORYBOT_GATEWAY_URL=fake.gateway_url,
        STORYBOT_GUILD_ID=str(fake.guild_id),
        STORYBOT_CURATOR_ROLE_ID=str(fake.curators_role_id),
        STORYBOT_LOG_LEVEL="INFO",
    )
    with open(log_path, "wb") as log_file:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", cwd=work, env=env, stdout=log_file, stderr=log_file
        )
    try:
        await fake.wait_for(lambda: fake.identify_count >= 1, 60)
        deadline = time.monotonic() + 60
        while not fake.commands.get(fake.guild_id) or "connected as" not in log_path.read_text():
            if time.monotonic() > deadline or proc.returncode is not None:
                raise RuntimeError(f"the bot did not start:\n{log_path.read_text()}")
            await asyncio.sleep(0.1)
        say(f"bot pid {proc.pid} connected; asking {questions} questions over {seconds:.0f} s "
            f"from {users} users in {channels} channels")  # fmt: skip
        pool = question_pool(knowledge)
        slash: set[int] = set()
        mentions: set[int] = set()
        started = time.monotonic()
        next_fault = started + rng.expovariate(faults_per_minute / 60)
        settled_at = None
        for n in range(questions):
            due = started + n / rate
            now = time.monotonic()
            if due > now:
                await asyncio.sleep(due - now)
            while time.monotonic() >= next_fault and n > 50:
                await inject_fault(fake, rng, figures)
                next_fault += rng.expovariate(faults_per_minute / 60)
            user = fake.make_user(900_000_000_000_000_000 + n % users, f"reader{n % users}")
            question = rng.choice(pool)
            channel = rng.choice(channel_ids)
            if rng.random() < 0.5:
                slash.add(await fake.slash_command("ask", {"question": question or "?"}, user=user,
                                                   channel_id=channel))  # fmt: skip
            else:
                mentions.add(await fake.message_create(f"{fake.mention_bot} {question}", user,
                                                       mentions=[fake.bot_user], channel_id=channel))  # fmt: skip
            if settled_at is None and n >= settle_after and n % 25 == 0:
                done = sum(1 for c in count_replies(fake, slash, mentions).values() if c)
                if done >= settle_after:
                    settled_at = n
                    figures.rss_settled_mb = rss_mb(proc.pid)
                    say(f"settled after {done} answers: RSS {figures.rss_settled_mb:.1f} MB")
            if n and n % 1000 == 0:
                say(f"{n} asked, RSS {rss_mb(proc.pid):.1f} MB, faults so far {sum(figures.faults.values())}")
        # Let the last answers (and any retries after a 429/5xx) arrive.
        wait_until = time.monotonic() + 60
        while time.monotonic() < wait_until:
            counts = count_replies(fake, slash, mentions)
            if len(counts) == len(slash) + len(mentions):
                break
            await asyncio.sleep(0.25)
        await asyncio.sleep(1.0)  # room for a late duplicate
        figures.seconds = round(time.monotonic() - started, 1)
        if not figures.rss_settled_mb:
            figures.rss_settled_mb = rss_mb(proc.pid)
        figures.rss_end_mb = rss_mb(proc.pid)
        counts = count_replies(fake, slash, mentions)
        figures.questions = len(slash) + len(mentions)
        figures.slash, figures.mentions = len(slash), len(mentions)
        figures.answered_once = sum(1 for c in counts.values() if c == 1)
        figures.duplicated = sum(1 for c in counts.values() if c > 1)
        figures.lost = figures.questions - len(counts)
        figures.gateway_connections = fake.connections
        figures.resumes, figures.identifies = fake.resume_count, fake.identify_count
        growth = (figures.rss_end_mb - figures.rss_settled_mb) / figures.rss_settled_mb * 100
        figures.rss_growth_pct = round(growth, 1)
        if inspect is not None:
            inspect(fake)  # e.g. the tests' checks on every request the bot sent
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        await fake.stop()
    text = log_path.read_text(errors="replace")
    bad = [line for line in text.splitlines() if UNHANDLED.search(line)]
    figures.unhandled_log_lines = len(bad)
    figures.log_sample = bad[:10]
    if TOKEN in text:
        figures.unhandled_log_lines += 1
        figures.log_sample.append("the token appeared in the log")
    if log is None:
        shutil.rmtree(work, ignore_errors=True)
    return figures


def report(figures: Figures) -> str:
    faults = ", ".join(f"{k} {v}" for k, v in sorted(figures.faults.items()))
    return "\n".join(
        [
            f"questions asked        {figures.questions} ({figures.slash} /ask, {figures.mentions} mentions) "
            f"from {figures.users} users in {figures.channels} channels, in {figures.seconds} s",
            f"answered exactly once  {figures.answered_once}",
            f"lost                   {figures.lost}",
            f"duplicated             {figures.duplicated}",
            f"faults injected        {sum(figures.faults.values())} ({faults})",
            f"gateway                {figures.gateway_connections} connections, {figures.resumes} resumes, "
            f"{figures.identifies} identifies",
            f"RSS                    {figures.rss_settled_mb:.1f} MB after {figures.settle_after} answers -> "
            f"{figures.rss_end_mb:.1f} MB at the end ({figures.rss_growth_pct:+.1f}%, limit +{RSS_TOLERANCE:.0%})",
            f"unhandled log lines    {figures.unhandled_log_lines}",
            *[f"    {line}" for line in figures.log_sample],
            "PASS" if figures.ok() else "FAIL",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--questions", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--users", type=int, default=None, help="default: enough to stay under the cooldown")
    parser.add_argument("--channels", type=int, default=4)
    parser.add_argument("--faults-per-minute", type=float, default=40.0)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--log", type=Path, help="keep the bot's log here")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    figures = asyncio.run(
        soak(
            args.questions,
            args.seconds,
            users=args.users,
            channels=args.channels,
            faults_per_minute=args.faults_per_minute,
            seed=args.seed,
            log=args.log,
            verbose=not args.json,
        )
    )
    if args.json:
        print(json.dumps({**asdict(figures), "ok": figures.ok()}, indent=2))
    else:
        print(report(figures))
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    return 0 if figures.ok() else 1


if __name__ == "__main__":
    sys.exit(main())
