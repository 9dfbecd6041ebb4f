"""A per-user question budget, so one person cannot flood a channel through the bot."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from enum import Enum


class Verdict(Enum):
    """What to do with one question."""

    ALLOW = "allow"
    WARN = "warn"  # first refusal in a window: say so politely, once
    DROP = "drop"  # further refusals in the same window: stay quiet


class Cooldown:
    """At most `rate` questions per user in any `per_s` seconds (a sliding window)."""

    MAX_USERS = 10_000
    """Forget the oldest users past this many, so memory stays bounded."""

    def __init__(self, rate: int, per_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.per_s = per_s
        self._clock = clock
        self._asked: dict[int, deque[float]] = {}
        self._warned: dict[int, float] = {}

    def check(self, user_id: int) -> Verdict:
        """Count one question from `user_id` and say whether to answer it."""
        if self.rate <= 0 or self.per_s <= 0:
            return Verdict.ALLOW
        now = self._clock()
        times = self._asked.pop(user_id, None) or deque()
        self._asked[user_id] = times  # re-insert: the dict is kept in least-recent order
        while times and now - times[0] >= self.per_s:
            times.popleft()
        if len(self._asked) > self.MAX_USERS:
            oldest = next(iter(self._asked))
            self._asked.pop(oldest)
            self._warned.pop(oldest, None)
        if len(times) < self.rate:
            times.append(now)
            self._warned.pop(user_id, None)
            return Verdict.ALLOW
        if user_id in self._warned and now - self._warned[user_id] < self.per_s:
            return Verdict.DROP
        self._warned[user_id] = now
        return Verdict.WARN

    def retry_after(self, user_id: int) -> float:
        """Seconds until `user_id` may ask again."""
        times = self._asked.get(user_id)
        if not times or len(times) < self.rate:
            return 0.0
        return max(0.0, self.per_s - (self._clock() - times[0]))
