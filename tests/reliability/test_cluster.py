"""Two bot processes splitting the shards of one bot, sharing a real PostgreSQL server, against
the fake Discord (which routes each guild to its shard, as Discord does). The scenario lives in
tests/reliability/cluster.py; `python scripts/cluster_check.py` runs it and prints its figures."""

from __future__ import annotations

from pathlib import Path

from tests.pgserver import PostgresServer

from .cluster import run_scenario


async def test_two_processes_split_the_shards_and_share_one_database(
    database_url: str, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    figures = await run_scenario(database_url, postgres_server, tmp_path)
    assert figures["processes"] == 2 and figures["command registrations"] == 1
    # Heard through LISTEN/NOTIFY: the processes poll only every RELOAD_INTERVAL_S (60 s).
    assert figures["seconds for a /kb add on one process to be answered by the other"] < 2.0
    assert figures["confirmed saves lost"] == 0 and figures["writes lost"] == 0
