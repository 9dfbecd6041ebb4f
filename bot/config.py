"""Settings for `storybot run`, read once from the environment (and a local `.env`).

Every variable has the `STORYBOT_` prefix except `DISCORD_TOKEN`, the name every
Discord tutorial uses. The token is held in a `Secret`, which never shows itself
in a repr, a log line or a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

ENV_PREFIX = "STORYBOT_"
TOKEN_VARIABLE = "DISCORD_TOKEN"


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""


class Secret:
    """A string that prints as asterisks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        """The secret itself, for the one place that needs it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret cannot be pickled")


@dataclass(frozen=True)
class Settings:
    """The bot's configuration. See `.env.example` for what each one means."""

    token: Secret = field(default_factory=lambda: Secret(""))
    knowledge: str | None = None
    data_dir: Path = Path("data")
    guild_id: int | None = None
    curator_role_ids: frozenset[int] = frozenset()
    """Roles whose members may curate: one per server when the bot serves several (role ids are
    unique across Discord). Empty: anyone with Manage Server."""
    curator_channel_id: int | None = None
    log_level: str = "INFO"
    shard_count: int | None = None
    auto_shard: bool = False
    shard_ids: tuple[int, ...] | None = None
    """The shards this process runs (None: all of them); other processes run the rest."""
    database_url: Secret = field(default_factory=lambda: Secret(""))
    """Empty: the SQLite file in the data folder. postgresql://...: shared state in PostgreSQL."""
    api_base: str | None = None
    gateway_url: str | None = None
    cooldown_questions: int = 5
    cooldown_seconds: float = 30.0
    answer_channels: frozenset[int] = frozenset()
    reload_interval_s: float = 2.0
    health_max_age_s: float = 90.0
    same_question_window_s: float = 60.0
    """The same answer asked for again in one channel within this time gets a pointer to it."""

    @property
    def heartbeat_file(self) -> Path:
        """The file the bot touches while connected (read by `storybot healthcheck`)."""
        return self.data_dir / "heartbeat"

    @property
    def database(self) -> Path:
        """The SQLite file for unanswered questions and votes."""
        return self.data_dir / "storybot.sqlite3"

    @property
    def registers_commands(self) -> bool:
        """Whether this process registers the slash commands: exactly one of the processes that
        share a bot token does, the one running shard 0."""
        return self.shard_ids is None or 0 in self.shard_ids

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read settings from `env` (default: os.environ); raise ConfigError on bad values."""
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(ENV_PREFIX + name, "").strip()
            return value or None

        def number(name: str, kind: type[int] | type[float], default: float | None = None) -> float | None:
            raw = get(name)
            if raw is None:
                return default
            try:
                value = kind(raw)
            except ValueError:
                raise ConfigError(f"{ENV_PREFIX}{name} must be a number, not {raw!r}") from None
            if value < 0:
                raise ConfigError(f"{ENV_PREFIX}{name} must not be negative")
            return value

        def snowflake(name: str) -> int | None:
            raw = get(name)
            if raw is None:
                return None
            if not raw.isdigit():
                raise ConfigError(
                    f"{ENV_PREFIX}{name} must be a Discord id (digits only; enable Developer Mode, then right-click → Copy ID), not {raw!r}"
                )
            return int(raw)

        def snowflakes(name: str) -> frozenset[int]:
            raw = get(name) or ""
            parts = raw.replace(",", " ").split()
            if not all(part.isdigit() for part in parts):
                raise ConfigError(
                    f"{ENV_PREFIX}{name} must be Discord ids separated by commas (digits only; enable Developer Mode, then right-click → Copy ID), not {raw!r}"
                )
            return frozenset(int(part) for part in parts)

        shards = get("SHARD_COUNT")
        auto_shard = shards is not None and shards.lower() == "auto"
        shard_count = None if shards is None or auto_shard else int(number("SHARD_COUNT", int) or 0) or None
        shard_ids = parse_shard_ids(get("SHARD_IDS"), shard_count)
        database_url = get("DATABASE_URL") or ""
        if database_url and not database_url.startswith(("postgresql://", "postgres://")):
            raise ConfigError(
                f"{ENV_PREFIX}DATABASE_URL must be a postgresql://user:password@host:port/database URL "
                "(leave it empty for the SQLite file in the data folder)"
            )
        channels = get("ANSWER_CHANNELS") or ""
        try:
            answer_channels = frozenset(int(c) for c in channels.replace(",", " ").split())
        except ValueError:
            raise ConfigError(
                f"{ENV_PREFIX}ANSWER_CHANNELS must be channel ids separated by commas, not {channels!r}"
            ) from None
        level = (get("LOG_LEVEL") or "INFO").upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ConfigError(f"{ENV_PREFIX}LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {level!r}")
        return cls(
            token=Secret(env.get(TOKEN_VARIABLE, "").strip()),
            knowledge=get("KNOWLEDGE"),
            data_dir=Path(get("DATA") or "data"),
            guild_id=snowflake("GUILD_ID"),
            curator_role_ids=snowflakes("CURATOR_ROLE_ID"),
            curator_channel_id=snowflake("CURATOR_CHANNEL_ID"),
            log_level=level,
            shard_count=shard_count,
            auto_shard=auto_shard,
            shard_ids=shard_ids,
            database_url=Secret(database_url),
            api_base=(get("API_BASE") or "").rstrip("/") or None,
            gateway_url=get("GATEWAY_URL"),
            cooldown_questions=int(number("COOLDOWN_QUESTIONS", int, 5) or 0),
            cooldown_seconds=float(number("COOLDOWN_SECONDS", float, 30.0) or 0.0),
            answer_channels=answer_channels,
            reload_interval_s=float(number("RELOAD_INTERVAL", float, 2.0) or 2.0),
            health_max_age_s=float(number("HEALTH_MAX_AGE", float, 90.0) or 90.0),
            same_question_window_s=float(number("SAME_QUESTION_WINDOW", float, 60.0) or 0.0),
        )

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self))
        return f"Settings({shown})"


def parse_shard_ids(raw: str | None, count: int | None) -> tuple[int, ...] | None:
    """`0-3`, `4,5` or `0-1, 6` as shard ids, checked against the shard count."""
    if raw is None:
        return None
    name = f"{ENV_PREFIX}SHARD_IDS"
    if not count:
        raise ConfigError(f"{name} needs {ENV_PREFIX}SHARD_COUNT, the total number of shards (a number)")
    ids: list[int] = []
    for part in raw.replace(" ", "").split(","):
        first, dash, last = part.partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            raise ConfigError(f"{name} must be shard numbers and ranges such as 0-3 or 4,5, not {raw!r}")
        low, high = int(first), int(last) if dash else int(first)
        if high < low:
            raise ConfigError(f"{name}: the range {part} runs backwards")
        ids.extend(range(low, high + 1))
    if max(ids) >= count:
        raise ConfigError(
            f"{name}: shard {max(ids)} does not exist; with {count} shards they are 0-{count - 1}"
        )
    return tuple(sorted(set(ids)))


def load_dotenv_file(path: Path = Path(".env")) -> None:
    """Read a local `.env` into the environment (real environment variables win)."""
    if path.is_file():
        from dotenv import load_dotenv

        load_dotenv(path, override=False)
