"""The compact memory store gives exactly the verdicts of the ordered-dict store it replaced:
random operation sequences (hypothesis) against a reference model, eviction and expiry
included."""

from __future__ import annotations

from collections import OrderedDict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kafka_reliable.dedup.compact import CompactStore
from kafka_reliable.errors import ConfigurationError

#: 16-byte keys (used as they are) and keys of other lengths (digested first).
KEYS = [bytes([i]) * 16 for i in range(12)] + [b"short-%d" % i for i in range(6)] + [b""]


class Reference:
    """The previous MemoryDeduplicator's store: an OrderedDict in use order."""

    def __init__(self, bound: int) -> None:
        self.bound, self.d = bound, OrderedDict[bytes, float]()

    def claim(self, k: bytes, now: float, exp: float) -> bool:
        old = self.d.get(k)
        if old is not None:
            self.d.move_to_end(k)
            if old > now:
                return False
        self.d[k] = exp
        self.d.move_to_end(k)
        while len(self.d) > self.bound:
            self.d.popitem(last=False)
        return True

    def add(self, k: bytes, exp: float) -> None:
        self.d[k] = exp
        self.d.move_to_end(k)
        while len(self.d) > self.bound:
            self.d.popitem(last=False)

    def purge(self, now: float) -> None:
        while self.d and next(iter(self.d.values())) <= now:
            self.d.popitem(last=False)


OPS = st.lists(
    st.tuples(
        st.sampled_from(["claim", "many", "add", "discard", "purge", "tick", "expiry"]),
        st.sampled_from(KEYS),
        st.integers(min_value=1, max_value=5),
    ),
    max_size=200,
)


@settings(max_examples=120, deadline=None)
@given(ops=OPS, bound=st.integers(min_value=1, max_value=10))
def test_verdicts_match_the_reference(ops: list[tuple[str, bytes, int]], bound: int) -> None:
    store, ref, now, ttl = CompactStore(bound=bound), Reference(bound), 0.0, 3.0
    for op, key, n in ops:
        if op == "claim":
            assert store.claim(key, now, now + ttl) == ref.claim(key, now, now + ttl)
        elif op == "many":
            batch = [key, *KEYS[n : n + 3], key]
            want = [ref.claim(k, now, now + ttl) for k in batch]
            assert store.claim_many(batch, now, now + ttl) == want
        elif op == "add":
            store.add(key, now + ttl)
            ref.add(key, now + ttl)
        elif op == "discard":
            store.discard(key)
            ref.d.pop(key, None)
        elif op == "purge":
            store.purge(now)
            ref.purge(now)
        elif op == "tick":
            now += n
        else:
            assert store.expiry(key) == ref.d.get(key)
        assert store.size == len(ref.d)
    assert [k for k in ref.d if store.expiry(k) is None] == []


def test_a_full_store_keeps_its_arrays_and_holds_the_bound() -> None:
    # Given a store filled to its bound
    store = CompactStore(bound=5000)
    for i in range(5000):
        assert store.claim(i.to_bytes(16, "big"), 0.0, 10.0)
    arrays = (id(store._lo), id(store._table), store.capacity)
    # When 20,000 more distinct keys arrive
    for i in range(5000, 25_000):
        assert store.claim(i.to_bytes(16, "big"), 0.0, 10.0)
    # Then nothing was reallocated, the bound holds, the newest are kept and the oldest evicted
    assert (id(store._lo), id(store._table), store.capacity) == arrays
    assert store.size == 5000
    assert store.expiry((24_999).to_bytes(16, "big")) == 10.0
    assert store.expiry((19_999).to_bytes(16, "big")) is None


def test_a_bound_the_store_cannot_hold_is_refused_in_one_line() -> None:
    with pytest.raises(ConfigurationError, match="max_entries must be 1..2147483646"):
        CompactStore(bound=2**31)
    with pytest.raises(ConfigurationError, match="max_entries must be"):
        CompactStore(bound=0)
