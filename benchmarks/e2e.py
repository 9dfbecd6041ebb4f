"""End to end through the local fake Discord: /ask and mentions at a steady rate.

    python benchmarks/e2e.py [--questions 1000] [--rate 50]

Runs the deployed command (`python -m bot run`) as its own process against the fake
Discord (tests/e2e/fake_discord.py, in this process, on 127.0.0.1), sends QUESTIONS /ask
interactions and then QUESTIONS mentions at RATE per second, and prints throughput, the
time from the event being sent on the gateway to the bot's reply arriving at the fake
(p50, p99), and the bot process's resident memory (RSS) before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.fake_discord import FakeDiscord  # noqa: E402

QUESTIONS = [
    "How far did they push the trolley?",
    "who was the youngest",
    "how long was the train ride",
    "why did north korea close its borders",
    "what is the weather like in paris",
    "trolley",
]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(n: int, rate: float) -> None:
    work = Path(tempfile.mkdtemp(prefix="storybot-e2e-bench-"))
    shutil.copytree(ROOT / "knowledge", work / "knowledge")
    async with FakeDiscord() as fake:
        env = {
            **os.environ, "PYTHONPATH": str(ROOT), "DISCORD_TOKEN": "bench-token",
            "STORYBOT_API_BASE": fake.api_base, "STORYBOT_GATEWAY_URL": fake.gateway_url,
            "STORYBOT_KNOWLEDGE": str(work / "knowledge"), "STORYBOT_DATA": str(work / "data"),
            "STORYBOT_GUILD_ID": str(fake.guild_id), "STORYBOT_COOLDOWN_QUESTIONS": "0",
            "STORYBOT_LOG_LEVEL": "WARNING",
        }  # fmt: skip
        bot = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=work, env=env)
        try:
            await fake.wait_until_identified(timeout=30)
            await fake.wait_for_request(r"PUT /applications/\d+/guilds/\d+/commands", 30)
            await asyncio.sleep(2.5)  # let on_ready and the first heartbeat settle
            rss_start = rss_mb(bot.pid)
            results = {}
            for kind in ("/ask", "mention"):
                latencies: list[float] = []
                pending = []
                start = time.monotonic()
                for i in range(n):
                    due = start + i / rate
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
                    question = QUESTIONS[i % len(QUESTIONS)]
                    user = fake.make_user(800000000000000000 + i % 200, f"user{i % 200}")
                    sent = time.monotonic()
                    if kind == "/ask":
                        ref = await fake.slash_command("ask", {"question": question}, user=user)
                    else:
                        ref = await fake.message_create(
                            f"{fake.mention_bot} {question}", user, mentions=[fake.bot_user]
                        )
                    pending.append((sent, asyncio.create_task(fake.wait_for_reply(ref, 30))))
                for sent, task in pending:
                    reply = await task
                    latencies.append((reply.received_at - sent) * 1000)
                elapsed = time.monotonic() - start
                results[kind] = (
                    n / elapsed,
                    statistics.median(latencies),
                    pct(latencies, 0.99),
                    max(latencies),
                )
            rss_end = rss_mb(bot.pid)
        finally:
            bot.terminate()
            bot.wait(timeout=15)
    shutil.rmtree(work, ignore_errors=True)
    print(f"End to end through the fake Discord: {n} of each at {rate:g}/s, bot as `python -m bot run`")
    print(f"{'kind':<10}{'answered/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for kind, (throughput, p50, p99, worst) in results.items():
        print(f"{kind:<10}{throughput:>12.1f}{p50:>10.1f}{p99:>10.1f}{worst:>10.1f}")
    print(f"bot RSS: {rss_start:.1f} MB after start, {rss_end:.1f} MB after {2 * n} questions")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50.0)
    args = parser.parse_args()
    asyncio.run(run(args.questions, args.rate))


if __name__ == "__main__":
    main()
