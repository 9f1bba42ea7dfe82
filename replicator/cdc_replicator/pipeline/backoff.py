"""Bounded exponential backoff with full jitter (AWS architecture blog's "full jitter")."""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, initial: float, maximum: float, rng: random.Random | None = None) -> None:
        self.initial = initial
        self.maximum = maximum
        self.attempt = 0
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography

    def next(self) -> float:
        """The next delay: uniform in [0, min(max, initial * 2^attempt)], never below initial / 2."""
        ceiling = min(self.maximum, self.initial * (2**self.attempt))
        self.attempt = min(self.attempt + 1, 62)
        return max(self.initial / 2, self.rng.uniform(0, ceiling))

    def reset(self) -> None:
        self.attempt = 0
