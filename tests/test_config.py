"""Settings for several processes (shard ranges, the database URL) and per-shard health."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from bot.config import ConfigError, Settings
from bot.health import check_heartbeat, touch


@pytest.mark.parametrize(
    "raw, ids",
    [("0-3", (0, 1, 2, 3)), ("4,5", (4, 5)), ("0-1, 6", (0, 1, 6)), ("7", (7,)), ("3,1,1", (1, 3))],
)
def test_shard_ranges(raw: str, ids: tuple[int, ...]) -> None:
    settings = Settings.from_env({"STORYBOT_SHARD_COUNT": "8", "STORYBOT_SHARD_IDS": raw})
    assert settings.shard_ids == ids and settings.shard_count == 8
    assert settings.registers_commands is (0 in ids)


@pytest.mark.parametrize(
    "env, says",
    [
        ({"STORYBOT_SHARD_IDS": "0-1"}, "needs STORYBOT_SHARD_COUNT"),
        ({"STORYBOT_SHARD_COUNT": "2", "STORYBOT_SHARD_IDS": "2"}, "shard 2 does not exist"),
        ({"STORYBOT_SHARD_COUNT": "4", "STORYBOT_SHARD_IDS": "3-1"}, "runs backwards"),
        ({"STORYBOT_SHARD_COUNT": "4", "STORYBOT_SHARD_IDS": "one"}, "such as 0-3 or 4,5"),
        ({"STORYBOT_DATABASE_URL": "mysql://x"}, "postgresql://"),
        ({"STORYBOT_CURATOR_ROLE_ID": "123, Curators"}, "Discord ids separated by commas"),
    ],
)
def test_bad_settings_name_the_variable_and_the_fix(env: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert says in str(caught.value)


def test_the_database_url_is_a_secret() -> None:
    settings = Settings.from_env({"STORYBOT_DATABASE_URL": "postgresql://bot:hunter2@db:5432/storybot"})
    assert settings.database_url.get().endswith("/storybot")
    assert "hunter2" not in repr(settings)
    assert Settings.from_env({}).registers_commands and not Settings.from_env({}).database_url


def test_health_is_reported_per_shard(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat"
    touch(path, {2: True, 3: True})
    ok, text = check_heartbeat(path, 30)
    assert ok and text.splitlines()[0].startswith("healthy: all 2 shards")
    touch(path, {2: True, 3: False})  # shard 3 lost its connection: its time stays where it was
    data = json.loads(path.read_text())["shards"]
    data["3"] = time.time() - 120
    path.write_text(json.dumps({"shards": data}))
    ok, text = check_heartbeat(path, 30)
    assert not ok and "unhealthy: 1 of 2 shards" in text
    assert "shard 2: healthy" in text and "shard 3: unhealthy, last heartbeat 120s ago" in text


def test_an_unsharded_heartbeat_reads_as_before(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat"
    touch(path)
    assert check_heartbeat(path, 30) == (True, "healthy: last heartbeat 0s ago")
    path.write_text("1700000000\n")  # a file from an older version: its age is its mtime's
    assert check_heartbeat(path, 30)[0]


def test_a_heartbeat_a_moment_ahead_of_the_clock_reads_as_now(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat"  # times are stored to the millisecond, so may round up
    path.write_text(json.dumps({"shards": {"0": time.time() + 0.0004}}))
    assert check_heartbeat(path, 30) == (True, "healthy: last heartbeat 0s ago")


@pytest.mark.parametrize(
    "raw, ids",
    [
        ("", frozenset()),
        ("111", frozenset({111})),
        ("111,222", frozenset({111, 222})),
        (" 111 , 222 333 ", frozenset({111, 222, 333})),
    ],
)
def test_curator_roles_are_one_or_more_ids(raw: str, ids: frozenset[int]) -> None:
    """One curator role per server the bot serves: role ids are unique across Discord, so a member
    holding any of them curates (tests/e2e/test_curation.py checks it on two servers)."""
    assert Settings.from_env({"STORYBOT_CURATOR_ROLE_ID": raw}).curator_role_ids == ids
