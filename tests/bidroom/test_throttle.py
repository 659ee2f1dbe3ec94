"""The login buckets, pure: a minute's worth at once, then one per refill interval, a wait to
say in Retry-After, and a bounded number of keys however many an attacker invents."""

from __future__ import annotations

from bidroom.throttle import Buckets, network


def test_a_bucket_gives_a_minute_s_worth_then_refills_at_its_rate() -> None:
    bucket = Buckets(per_minute=6)
    assert [bucket.take("a", 100.0) for _ in range(6)] == [0] * 6
    assert bucket.take("a", 100.0) == 10  # one token every 10 s
    assert bucket.take("b", 100.0) == 0  # another key has its own bucket
    assert bucket.take("a", 105.0) == 5
    assert bucket.take("a", 110.0) == 0
    assert bucket.take("a", 110.0) == 10


def test_a_refused_attempt_takes_nothing_and_a_long_silence_refills_only_to_the_brim() -> None:
    bucket = Buckets(per_minute=2)
    assert [bucket.take("a", 0.0) for _ in range(5)] == [0, 0, 30, 30, 30]
    assert [bucket.take("a", 3600.0) for _ in range(3)] == [0, 0, 30]


def test_keys_are_bounded_and_a_recent_key_keeps_its_empty_bucket() -> None:
    bucket = Buckets(per_minute=1, most=100)
    for n in range(1000):
        bucket.take(f"invented-{n}", 0.0)
        assert len(bucket) <= 100
    bucket.take("flooder", 0.0)  # its one token
    for n in range(50):  # fewer new keys than it takes for the flooder to become the oldest
        bucket.take(f"more-{n}", 0.0)
    assert bucket.take("flooder", 0.0) == 60


def test_a_client_is_counted_by_its_ipv4_address_or_its_ipv6_64() -> None:
    assert network("203.0.113.7") == "203.0.113.7"
    assert network("2001:db8:1:2::1") == network("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert network("2001:db8:1:3::1") != network("2001:db8:1:2::1")
    assert network("::ffff:203.0.113.7") == "203.0.113.7"
    assert network("testclient") == "testclient"
