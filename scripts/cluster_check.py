"""Several processes, one bot: two `storybot run` processes splitting the shards of one bot and
sharing a throw-away PostgreSQL server, driven through the local fake Discord. Prints the figures
the README's Reliability section quotes (the same scenario as tests/reliability/test_cluster.py).

    pip install -e '.[test]'          # the fake Discord and psycopg
    python scripts/cluster_check.py   # needs PostgreSQL's server binaries (installed with apt-get as root)
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.pgserver import PostgresServer  # noqa: E402
from tests.reliability.cluster import run_scenario  # noqa: E402


def main() -> int:
    server = PostgresServer().start()
    folder = Path(tempfile.mkdtemp(prefix="storybot-cluster-"))
    try:
        url = server.create_database("cluster_check")
        figures = asyncio.run(run_scenario(url, server, folder))
    except BaseException:
        print(f"failed; the bots' logs are in {folder}", file=sys.stderr)
        raise
    else:
        shutil.rmtree(folder, ignore_errors=True)
    finally:
        server.close()
    width = max(map(len, figures))
    for name, value in figures.items():
        print(f"{name:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
