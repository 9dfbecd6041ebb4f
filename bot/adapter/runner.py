"""`storybot run`: settings, logging that never shows the token, and a clean shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

import aiohttp
import discord
import yarl

from bot.adapter.client import make_bot
from bot.config import TOKEN_VARIABLE, ConfigError, Settings, load_dotenv_file
from bot.core.errors import KnowledgeError, StorageError
from bot.core.knowledge import resolve_knowledge_dir
from bot.core.state import open_state

log = logging.getLogger("bot")

NO_TOKEN = f"""No Discord token: set {TOKEN_VARIABLE} in the environment or in a .env file.
Get one at https://discord.com/developers/applications → your app → Bot → Reset Token
(README: "Deploying"). To try StoryBot without Discord: storybot ask "What happened?"."""
BAD_TOKEN = f"Discord rejected the token in {TOKEN_VARIABLE}. Check it (no quotes or spaces), or reset it in the developer portal."
START_BACKOFF_S = (2, 5, 10, 30, 60)
"""Waits between attempts when Discord can't be reached at start (then every minute)."""


class RedactToken(logging.Filter):
    """Replace the token wherever it would appear in a log record."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        if self.token:
            message = record.getMessage()
            if self.token in message:
                record.msg, record.args = message.replace(self.token, "[token]"), None
            if record.exc_info and record.exc_info[1] is not None and self.token in str(record.exc_info[1]):
                record.exc_info, record.exc_text = None, None
                record.msg = f"{record.msg} (traceback hidden: it contained the token)"
        return True


def setup_logging(settings: Settings) -> None:
    """discord.py's log format on stdout, with the token filtered out of every record."""
    # A plain format: discord.py's default colours show as escape codes in `docker logs`.
    plain = logging.Formatter(
        "[{asctime}] [{levelname:<8}] {name}: {message}", "%Y-%m-%d %H:%M:%S", style="{"
    )
    discord.utils.setup_logging(level=getattr(logging, settings.log_level), formatter=plain, root=True)
    redact = RedactToken(settings.token.get())
    for handler in logging.getLogger().handlers:
        handler.addFilter(redact)
        handler.setStream(sys.stdout) if isinstance(handler, logging.StreamHandler) else None


def point_at(settings: Settings) -> None:
    """Use a REST proxy / gateway other than Discord's (large deployments, and the tests)."""
    if settings.api_base:
        discord.http.Route.BASE = settings.api_base
        log.info("REST API base: %s", settings.api_base)
    if settings.gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.gateway_url)
        log.info("gateway: %s", settings.gateway_url)


async def serve(settings: Settings) -> int:
    """Run until stopped; retry with backoff while Discord can't be reached."""
    knowledge = resolve_knowledge_dir(settings.knowledge, seed=True)
    service, feedback = open_state(knowledge, settings.database_url.get(), settings.database)
    where = "PostgreSQL" if settings.database_url else knowledge
    log.info("loaded %d entries from %s (version %s)", len(service.kb), where, service.kb.story.version)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    attempt = 0
    while not stop.is_set():
        bot = make_bot(settings, service, feedback)
        runner = asyncio.create_task(bot.start(settings.token.get()))
        stopper = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not bot.is_closed():
                log.info("shutting down")
                await asyncio.wait_for(bot.close(), timeout=10)
            stopper.cancel()
        if stop.is_set():
            runner.cancel()
            break
        error = runner.exception()
        if isinstance(error, discord.LoginFailure):
            print(BAD_TOKEN, file=sys.stderr)
            return 1
        if isinstance(error, discord.PrivilegedIntentsRequired):
            print(
                "Discord refused the Message Content intent: enable it in the developer portal (Bot → Privileged Gateway Intents), or leave STORYBOT_ANSWER_CHANNELS empty.",
                file=sys.stderr,
            )
            return 1
        if error is None or isinstance(
            error,
            (
                OSError,
                aiohttp.ClientError,
                discord.GatewayNotFound,
                discord.ConnectionClosed,
                discord.HTTPException,
                asyncio.TimeoutError,
            ),
        ):
            wait = START_BACKOFF_S[min(attempt, len(START_BACKOFF_S) - 1)]
            attempt += 1
            log.warning(
                "can't reach Discord (%s); trying again in %d s",
                type(error).__name__ if error else "disconnected",
                wait,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait)
            continue
        raise error
    log.info("stopped")
    return 0


def run_bot(knowledge: str | None = None) -> int:
    """Entry point of `storybot run`."""
    load_dotenv_file()
    try:
        settings = Settings.from_env()
    except ConfigError as error:
        print(f"Configuration problem: {error}", file=sys.stderr)
        return 2
    if knowledge:
        settings = Settings(**{**settings.__dict__, "knowledge": knowledge})
    if not settings.token:
        print(NO_TOKEN, file=sys.stderr)
        return 2
    setup_logging(settings)
    point_at(settings)
    try:
        return asyncio.run(serve(settings))
    except StorageError as error:
        print(f"Can't use the database (STORYBOT_DATABASE_URL): {error}", file=sys.stderr)
        return 1
    except KnowledgeError as error:
        print("The knowledge base has problems; fix them and start again:", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
