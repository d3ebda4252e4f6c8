"""``fresh_until`` agrees with ``freshness``: the fast path may cache the FRESH verdict until then."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cache.memory import AccessTokenEntry, Freshness, fresh_until, freshness

EPOCH = 1_800_000_000

entries = st.builds(
    AccessTokenEntry,
    token=st.just("t"),
    token_type=st.just("Bearer"),
    expires_on=st.integers(EPOCH - 10_000, EPOCH + 100_000),
    refresh_on=st.one_of(st.none(), st.integers(EPOCH - 10_000, EPOCH + 100_000)),
    refresh_deferred_until=st.one_of(st.just(0.0), st.floats(EPOCH - 10_000, EPOCH + 100_000)),
)


@settings(max_examples=500, deadline=None)
@given(entry=entries, now=st.floats(EPOCH - 20_000, EPOCH + 200_000))
def test_fresh_exactly_before_fresh_until(entry: AccessTokenEntry, now: float) -> None:
    assert (freshness(entry, now) is Freshness.FRESH) == (now < fresh_until(entry))


def test_examples() -> None:
    plain = AccessTokenEntry("t", "Bearer", expires_on=EPOCH + 3600)
    assert fresh_until(plain) == EPOCH + 3600 - 300
    long_lived = AccessTokenEntry("t", "Bearer", expires_on=EPOCH + 7200, refresh_on=EPOCH + 3600)
    assert fresh_until(long_lived) == EPOCH + 3600
    deferred = long_lived.deferred(EPOCH + 4000)
    assert fresh_until(deferred) == EPOCH + 4030
