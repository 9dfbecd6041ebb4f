"""`python -m bot run` as a real process: Discord unreachable at start, SIGTERM, and the token
never showing in anything it prints."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from pathlib import Path

from bot.adapter.runner import RedactToken
from bot.config import Secret, Settings
from tests.e2e.fake_discord import FakeDiscord

from .conftest import ASK, PYTHON, ROOT, T, replies_to

SECRET = "StOrYbOt-SeCrEt-ToKeN.Xy7Qz9.wK3mN5pR8tV1"
BAD = "StOrYbOt-ReJeCtEd-ToKeN.Aa1Bb2.Cc3Dd4Ee5Ff6"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_for(tmp: Path, knowledge: Path, api: str, gateway: str, token: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STORYBOT_") and k != "DISCORD_TOKEN"}
    env.update(
        DISCORD_TOKEN=token,
        STORYBOT_KNOWLEDGE=str(knowledge),
        STORYBOT_DATA=str(tmp / "data"),
        STORYBOT_API_BASE=api,
        STORYBOT_GATEWAY_URL=gateway,
        STORYBOT_LOG_LEVEL="DEBUG",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


class Bot:
    """`python -m bot run` in a subprocess, its output collected as it comes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.out = ""
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, env: dict[str, str], cwd: Path) -> Bot:
        proc = await asyncio.create_subprocess_exec(
            PYTHON, "-m", "bot", "run", cwd=cwd, env={**env, "PYTHONPATH": str(ROOT)},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        return cls(proc)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while chunk := await self.proc.stdout.read(4096):
            self.out += chunk.decode(errors="replace")

    async def wait_for_text(self, text: str, timeout: float = T) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.out:
            assert self.proc.returncode is None or text in self.out, f"exited early:\n{self.out}"
            assert time.monotonic() < deadline, f"never printed {text!r}:\n{self.out}"
            await asyncio.sleep(0.05)

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def finish(self, sig: int | None = signal.SIGTERM, timeout: float = T) -> tuple[int, float]:
        started = time.monotonic()
        if sig is not None and self.proc.returncode is None:
            self.proc.send_signal(sig)
        try:
            code = await asyncio.wait_for(self.proc.wait(), timeout)
        finally:
            if self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()
        await asyncio.wait_for(self._reader, T)
        return code, time.monotonic() - started


async def test_unreachable_discord_retries_with_backoff_and_stops_on_sigterm(
    tmp_path: Path, knowledge: Path
) -> None:
    port = closed_port()
    env = env_for(tmp_path, knowledge, f"http://127.0.0.1:{port}/api/v10", f"ws://127.0.0.1:{port}/gateway",
                  SECRET)  # fmt: skip
    bot = await Bot.start(env, tmp_path)
    await bot.wait_for_text("trying again in 2 s", 20)
    cpu = bot.cpu_seconds()
    await bot.wait_for_text("trying again in 5 s", 10)  # a second attempt, after the first wait
    assert bot.cpu_seconds() - cpu < 1.0, "it spins while waiting"
    await asyncio.sleep(0.2)
    code, took = await bot.finish(signal.SIGTERM)
    assert code == 0, bot.out
    assert took < 5, f"SIGTERM took {took:.1f} s"
    assert "can't reach Discord" in bot.out and "stopped" in bot.out
    assert SECRET not in bot.out


async def test_token_never_appears_in_output(fake: FakeDiscord, tmp_path: Path, knowledge: Path) -> None:
    fake.bad_tokens.add(BAD)
    extra = {"STORYBOT_GUILD_ID": str(fake.guild_id), "STORYBOT_CURATOR_ROLE_ID": str(fake.curators_role_id)}
    env = env_for(tmp_path, knowledge, fake.api_base, fake.gateway_url, SECRET, **extra)
    bot = await Bot.start(env, tmp_path)
    await fake.wait_for(lambda: fake.identify_count >= 1, 30)
    await bot.wait_for_text("connected as", 20)
    assert fake.identifies[0]["token"] == SECRET  # it really used the token
    # an answer
    iid = await fake.slash_command("ask", {"question": ASK})
    await fake.wait_for_reply(iid, T)
    # error paths: a reply Discord refuses (403), an interaction that expired, a gateway drop
    fake.fail_next("POST", r"^/channels/\d+/messages$", status=403)
    await fake.message_create(f"{fake.mention_bot} {ASK}", mentions=[fake.bot_user])
    await bot.wait_for_text("Forbidden", T)
    fake.interaction_deadline = 0.2
    fake.fail_next("POST", r"/callback$", status=None, delay=0.4)
    await fake.slash_command("ask", {"question": ASK})
    await bot.wait_for_text("expired", T)
    fake.interaction_deadline = None
    resumes = fake.resume_count
    await fake.drop_gateway(4000)
    await fake.wait_for(lambda: fake.resume_count > resumes, T)
    iid = await fake.slash_command("ask", {"question": ASK})
    await fake.wait_for_reply(iid, T)
    assert len(replies_to(fake, iid)) == 1
    code, _ = await bot.finish(signal.SIGTERM)
    assert code == 0, bot.out
    outputs = {"run": bot.out}

    # a rejected token: says so, no traceback, no token
    env = env_for(tmp_path, knowledge, fake.api_base, fake.gateway_url, BAD, **extra)
    rejected = await Bot.start(env, tmp_path)
    code, _ = await rejected.finish(sig=None, timeout=30)
    assert code == 1 and "rejected the token" in rejected.out, rejected.out
    assert "Traceback" not in rejected.out
    outputs["rejected"] = rejected.out

    # a configuration error
    env = env_for(
        tmp_path, knowledge, fake.api_base, fake.gateway_url, SECRET, STORYBOT_GUILD_ID="not-a-number"
    )
    broken = await Bot.start(env, tmp_path)
    code, _ = await broken.finish(sig=None, timeout=30)
    assert code == 2 and "STORYBOT_GUILD_ID" in broken.out
    outputs["config"] = broken.out

    for name, text in outputs.items():
        assert SECRET not in text and BAD not in text, f"the token leaked in the {name} run:\n{text}"
        for part in (SECRET.split(".")[0], BAD.split(".")[0]):  # not even its first part
            assert part not in text, name


def test_settings_repr_and_log_filter_hide_the_token(caplog: object) -> None:
    settings = Settings(token=Secret(SECRET))
    assert SECRET not in repr(settings) and SECRET not in str(settings)
    assert SECRET not in repr(settings.token) and SECRET not in f"{settings.token}"
    redact = RedactToken(SECRET)
    record = logging.LogRecord("bot", logging.ERROR, __file__, 1, "token is %s", (SECRET,), None)
    assert redact.filter(record) and SECRET not in record.getMessage()
    try:
        raise RuntimeError(f"login failed for {SECRET}")
    except RuntimeError as exc:
        import sys

        record = logging.LogRecord("bot", logging.ERROR, __file__, 1, "boom", (), sys.exc_info())
        assert exc is not None
    redact.filter(record)
    text = logging.Formatter().format(record)
    assert SECRET not in text
