"""Request rate limits per principal: one token bucket per caller, checked after authentication.

AWS throttles its APIs with token buckets (EC2 documents its own: a bucket of N tokens refilled at R
per second, one token per request; https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html),
and answers each service's throttling error when a bucket is empty. lamina keeps one bucket per
authenticated principal ARN, so that one tenant's flood of requests cannot take the API from the
others; unauthenticated requests never reach a bucket (they are refused before).

Cost per request: one dict look-up and a few float operations under a lock held for just that.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

#: Buckets kept before idle (full) ones are dropped: principals are authenticated, but a tenant
#: can mint many (role sessions), and memory must stay bounded.
MAX_BUCKETS = 10_000


@dataclass(frozen=True)
class RateLimit:
    """``rate`` requests per second sustained, bursts of up to ``burst``; ``rate == 0`` is off."""

    rate: float
    burst: int

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    @classmethod
    def parse(cls, text: str) -> RateLimit:
        """``RATE`` or ``RATE/BURST`` (burst defaults to twice the rate), or ``off`` / ``0``."""
        text = text.strip()
        if text.lower() in ("off", "0"):
            return OFF
        why = f"expected RATE[/BURST] (requests per second > 0, burst >= 1) or off, got {text!r}"
        rate_text, _, burst_text = text.partition("/")
        try:
            rate = float(rate_text)
            burst = int(burst_text) if burst_text else max(1, int(min(rate, 1e9) * 2))
        except ValueError:
            raise ValueError(why) from None
        if not 0 < rate < float("inf") or burst < 1:
            raise ValueError(why)
        return cls(rate, burst)

    def __str__(self) -> str:
        if not self.enabled:
            return "off"
        rate = int(self.rate) if self.rate.is_integer() else self.rate
        return f"{rate}/{self.burst}"


OFF = RateLimit(0.0, 0)


class RateLimiter:
    """Token buckets keyed by principal. Thread-safe: API stages run on the I/O executor's threads."""

    __slots__ = ("_buckets", "_burst", "_clock", "_lock", "_rate")

    def __init__(self, limit: RateLimit, clock: Callable[[], float]) -> None:
        self._rate = limit.rate
        self._burst = float(limit.burst)
        self._clock = clock
        self._lock = threading.Lock()
        # key -> [tokens, time of the last refill]
        self._buckets: dict[str, list[float]] = {}

    def admit(self, key: str) -> bool:
        """Take one token from ``key``'s bucket; False when it is empty (the request is throttled)."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= MAX_BUCKETS:
                    self._drop_idle(now)
                self._buckets[key] = [self._burst - 1.0, now]
                return True
            tokens = min(self._burst, bucket[0] + (now - bucket[1]) * self._rate)
            bucket[1] = now
            if tokens < 1.0:
                bucket[0] = tokens
                return False
            bucket[0] = tokens - 1.0
            return True

    def _drop_idle(self, now: float) -> None:
        """Forget the buckets that have refilled (a new one starts full: nothing is lost). When every
        bucket is busy, forget the oldest half: better a burst let through than unbounded memory."""
        full = [
            k for k, (tokens, at) in self._buckets.items() if tokens + (now - at) * self._rate >= self._burst
        ]
        for k in full:
            del self._buckets[k]
        if len(self._buckets) >= MAX_BUCKETS:
            for k in list(self._buckets)[: MAX_BUCKETS // 2]:
                del self._buckets[k]
