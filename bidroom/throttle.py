"""Token buckets by key, without I/O: how many login attempts a client network may make, and how
many failed answers one certificate may get from one network (BIDROOM_LOGINS_PER_MINUTE,
BIDROOM_CERTIFICATE_LOGINS_PER_MINUTE).

A certificate is public (every signed act of an opening carries one), so a bucket that anyone
holding a copy could empty would let a competitor lock a bidder out of the opening: the
certificate's bucket is charged only by answers whose signature fails, per network, and a valid
answer is never refused by it. A network is a client's IPv4 address, or its IPv6 /64 (one host
commonly holds a whole /64).

A bucket holds up to ``per_minute`` tokens and refills at that rate; an attempt takes one. Each
node keeps its own buckets in memory: the limit protects the node's own event loop and database
writes (a login verifies a certificate path and its signature, then writes a nonce and an audit
entry), so a flood spread by the load balancer over n nodes meets n budgets, each one a node can
afford. Keys are bounded: full buckets carry no information and are forgotten first, and past
``most`` keys the least recently used go.
"""

from __future__ import annotations

import ipaddress
import math
from collections import OrderedDict
from dataclasses import dataclass


@dataclass
class Bucket:
    tokens: float
    stamp: float


class Buckets:
    """Token buckets by key: ``take(key, now)`` is 0 when allowed, else the seconds to wait."""

    def __init__(self, per_minute: float, most: int = 10_000):
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self.most = most
        self._buckets: OrderedDict[str, Bucket] = OrderedDict()

    def take(self, key: str, now: float) -> int:
        """Take a token for ``key`` at ``now`` (monotonic seconds): 0 if there was one, else
        the whole seconds until there is (for Retry-After)."""
        bucket = self._refilled(key, now)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0
        return max(1, math.ceil((1 - bucket.tokens) / self.rate))

    def _refilled(self, key: str, now: float) -> Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            self._make_room(now)
            bucket = self._buckets[key] = Bucket(self.capacity, now)
        else:
            self._buckets.move_to_end(key)
            elapsed = max(0.0, now - bucket.stamp)
            bucket.tokens = min(self.capacity, bucket.tokens + elapsed * self.rate)
            bucket.stamp = now
        return bucket

    def _make_room(self, now: float) -> None:
        """Forget buckets that have refilled; then, if still full, the least recently used
        tenth (one scan per many new keys, not one per key)."""
        if len(self._buckets) < self.most:
            return
        for key, bucket in list(self._buckets.items()):
            if bucket.tokens + (now - bucket.stamp) * self.rate >= self.capacity:
                del self._buckets[key]
        while len(self._buckets) >= self.most * 0.9:
            self._buckets.popitem(last=False)

    def __len__(self) -> int:
        return len(self._buckets)


def network(address: str) -> str:
    """The key a client's address is counted under: IPv4 as it is, IPv6 by its /64."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


@dataclass
class LoginLimits:
    """The login buckets of one node: every answer by client network; failed answers by
    (certificate fingerprint, network)."""

    by_address: Buckets
    by_certificate: Buckets

    @classmethod
    def of(cls, per_address: float, per_certificate: float) -> LoginLimits:
        return cls(Buckets(per_address), Buckets(per_certificate))
