"""How many calls an HTTP judge keeps in flight: start low, ramp up on success, back off on overload.

Like TCP congestion control: the limit starts at ``start`` and grows by one per answered call (it
doubles every round trip) up to ``maximum``; a sign of overload (timeout, dropped connection, 429,
5xx) halves it, at most once per round of calls in flight, and afterwards it grows by one per round.
A single-slot local server therefore settles near 1-2 calls in flight instead of thrashing, while an
API that copes with ``maximum`` reaches it within a few round trips.
"""
from __future__ import annotations

import asyncio
from collections import deque


class AdaptiveLimit:
    """An asyncio semaphore whose size follows the server's answers (one per event loop)."""

    def __init__(self, maximum: int, start: int) -> None:
        self.maximum = max(1, maximum)
        self.limit = float(min(self.maximum, max(1, start)))
        self.threshold = float(self.maximum)        # slow start below it, linear growth above
        self.active = 0
        self.peak = 0
        self.backoffs = 0
        self._epoch = 0                             # bumped on each back-off
        self._waiters: deque[asyncio.Future] = deque()

    async def acquire(self) -> int:
        """Wait for a free slot; returns the epoch the call started in (pass it to ``release``)."""
        if self.active >= int(self.limit) or self._waiters:
            future = asyncio.get_running_loop().create_future()
            self._waiters.append(future)
            try:
                await future
            except asyncio.CancelledError:
                if future in self._waiters:
                    self._waiters.remove(future)
                elif future.done() and not future.cancelled():
                    self._release_slot()
                raise
        else:
            self.active += 1
        self.peak = max(self.peak, self.active)
        return self._epoch

    def release(self, epoch: int, *, overloaded: bool = False, answered: bool = True) -> None:
        """Free a slot; an answer grows the limit, an overload of this epoch halves it."""
        if overloaded:
            if epoch == self._epoch:
                self._epoch += 1
                self.backoffs += 1
                self.threshold = max(1.0, int(self.limit) / 2)
                self.limit = self.threshold
        elif answered and self.limit < self.maximum:
            step = 1.0 if self.limit < self.threshold else 1.0 / int(self.limit)
            self.limit = min(float(self.maximum), self.limit + step)
        self._release_slot()

    def _release_slot(self) -> None:
        self.active -= 1
        while self._waiters and self.active < int(self.limit):
            future = self._waiters.popleft()
            if not future.done():
                self.active += 1
                future.set_result(None)
