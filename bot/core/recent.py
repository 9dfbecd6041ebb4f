"""Recently given answers, so the same question asked by several people in one place within a
minute gets one full answer and a pointer to it, not a wall of copies."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Given:
    """Where an answer was given: its message, and a link to show later askers."""

    message_id: int
    link: str
    at: float


class RecentAnswers:
    """Answers by (place, entry) for `window_s` seconds; bounded, and a deleted answer is forgotten."""

    MAX_KEPT = 5_000

    def __init__(self, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        self._given: OrderedDict[tuple[int, str], Given] = OrderedDict()

    def find(self, place: int, entry_id: str) -> Given | None:
        """The answer to this entry given here within the window, if any."""
        given = self._given.get((place, entry_id))
        if given is None or self.window_s <= 0:
            return None
        if self._clock() - given.at > self.window_s:
            del self._given[(place, entry_id)]
            return None
        return given

    def remember(self, place: int, entry_id: str, message_id: int, link: str) -> None:
        """Note a full answer just given."""
        key = (place, entry_id)
        self._given.pop(key, None)
        self._given[key] = Given(message_id, link, self._clock())
        while len(self._given) > self.MAX_KEPT:
            self._given.popitem(last=False)

    def forget_message(self, message_id: int) -> None:
        """An answer was deleted: the next asker gets a full answer again."""
        for key in [k for k, g in self._given.items() if g.message_id == message_id]:
            del self._given[key]
