"""Exponential backoff with jitter for deliveries that failed in a way worth retrying.

>>> import random
>>> policy = Backoff(initial_s=30, factor=2, max_s=3600)
>>> [round(policy.delay(n, random.Random(1)).total_seconds()) for n in (1, 2, 3, 10)]
[17, 34, 68, 2042]
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class Backoff:
    """Delay before attempt ``n + 1`` after ``n`` failed attempts: ``initial * factor**(n-1)``,
    capped at ``max_s``, times a random factor in [0.5, 1) ("equal jitter"), so that many
    deliveries failing together do not retry in lockstep. ``max_attempts`` attempts in all, then
    the delivery is failed."""

    initial_s: float = 30.0
    factor: float = 2.0
    max_s: float = 3600.0
    max_attempts: int = 8

    def delay(self, attempts: int, rng: random.Random | None = None, *, at_least_s: float = 0.0) -> timedelta:
        base = min(self.max_s, self.initial_s * self.factor ** max(0, attempts - 1))
        jittered = base * (0.5 + 0.5 * (rng or random).random())
        return timedelta(seconds=max(jittered, min(at_least_s, self.max_s)))

    def exhausted(self, attempts: int) -> bool:
        return attempts >= self.max_attempts
