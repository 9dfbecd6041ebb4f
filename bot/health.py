"""`storybot healthcheck`: is the running bot connected to Discord?

The bot touches a heartbeat file while its gateway connection is alive; this
check only reads that file's age, so it needs neither discord nor the token.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

DEFAULT_MAX_AGE_S = 90.0


def touch(path: Path) -> None:
    """Record that the bot is connected right now."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{time.time():.0f}\n", encoding="ascii")


def check_heartbeat(path: Path | None = None, max_age_s: float | None = None) -> tuple[bool, str]:
    """(healthy, a one-line reason) from the heartbeat file's age."""
    if path is None:
        path = Path(os.environ.get("STORYBOT_DATA") or "data") / "heartbeat"
    if max_age_s is None:
        max_age_s = float(os.environ.get("STORYBOT_HEALTH_MAX_AGE") or DEFAULT_MAX_AGE_S)
    try:
        age = time.time() - path.stat().st_mtime
    except OSError:
        return False, f"unhealthy: no heartbeat at {path} (the bot is not connected yet)"
    if age > max_age_s:
        return False, f"unhealthy: last heartbeat {age:.0f}s ago (limit {max_age_s:.0f}s)"
    return True, f"healthy: last heartbeat {age:.0f}s ago"
