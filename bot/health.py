"""`storybot healthcheck`: is the running bot connected to Discord, on every shard it runs?

The bot writes a heartbeat file while its gateway connections are alive: the last time each of
its shards was seen connected. This check only reads that file, so it needs neither discord nor
the token.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path

DEFAULT_MAX_AGE_S = 90.0


def touch(path: Path, shards: Mapping[int, bool] | None = None) -> None:
    """Record that the bot is connected right now (per shard: those that are, when given)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    now = time.time()
    try:
        seen = {int(k): float(v) for k, v in json.loads(path.read_text(encoding="ascii"))["shards"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        seen = {}
    if shards is None:
        seen = {0: now}
    else:
        seen = {sid: now if up else seen.get(sid, 0.0) for sid, up in shards.items()}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(
        json.dumps({"shards": {str(k): round(v, 3) for k, v in sorted(seen.items())}}), encoding="ascii"
    )
    os.replace(tmp, path)


def check_heartbeat(path: Path | None = None, max_age_s: float | None = None) -> tuple[bool, str]:
    """(healthy, a line per shard) from the heartbeat file."""
    if path is None:
        path = Path(os.environ.get("STORYBOT_DATA") or "data") / "heartbeat"
    if max_age_s is None:
        max_age_s = float(os.environ.get("STORYBOT_HEALTH_MAX_AGE") or DEFAULT_MAX_AGE_S)
    try:
        text = path.read_text(encoding="ascii")
        modified = path.stat().st_mtime
    except OSError:
        return False, f"unhealthy: no heartbeat at {path} (the bot is not connected yet)"
    try:
        seen = {int(k): float(v) for k, v in json.loads(text)["shards"].items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        seen = {0: modified}  # a file written before heartbeats were per shard
    now = time.time()
    ages = {sid: max(0.0, now - at) for sid, at in sorted(seen.items())}  # (times are rounded to 1 ms)
    stale = [sid for sid, age in ages.items() if age > max_age_s]
    if len(ages) == 1 and 0 in ages:
        age = ages[0]
        if stale:
            return False, f"unhealthy: last heartbeat {age:.0f}s ago (limit {max_age_s:.0f}s)"
        return True, f"healthy: last heartbeat {age:.0f}s ago"
    lines = [
        f"shard {sid}: {'unhealthy' if sid in stale else 'healthy'}, last heartbeat "
        + (f"{age:.0f}s ago" if seen[sid] else "never")
        for sid, age in ages.items()
    ]
    verdict = (
        f"unhealthy: {len(stale)} of {len(ages)} shards" if stale else f"healthy: all {len(ages)} shards"
    )
    return not stale, "\n".join([f"{verdict} (limit {max_age_s:.0f}s)", *lines])
