"""The Redis claim core without I/O: the commands it asks for and the verdicts it draws from
the replies (the sync and async drivers only carry bytes)."""

from __future__ import annotations

import pytest
import redis

from kafka_reliable.dedup import ProcessedMessages, make_deduplicator
from kafka_reliable.dedup.claims import ClaimCore
from kafka_reliable.dedup.commands import SLOTS, Command, Reply, drive, slot_of
from kafka_reliable.errors import ConfigurationError, DeduplicationUnavailableError

THREE = ["a"] * 5461 + ["b"] * 5461 + ["c"] * (SLOTS - 2 * 5461)


def _core(policy: str = "fail_open") -> ClaimCore:
    return ClaimCore(
        ttl_s=60, key_prefix="p:", on_unavailable=policy, key_fn=None, where="redis://x"
    )


def _keys(n: int) -> list[bytes]:
    return [b"key-%d" % i for i in range(n)]


class FakeNodes:
    """Answers each claim command like Redis would: OK, nil for keys in ``taken``, or per node
    an error reply / a connection failure after ``cut`` replies."""

    def __init__(
        self,
        taken: frozenset[bytes] | set[bytes] = frozenset(),
        errors: dict[str, str] | None = None,
        cut: dict[str, int] | None = None,
    ) -> None:
        self.taken, self.errors, self.cut = taken, errors or {}, cut or {}
        self.rounds: list[list[Command]] = []

    def __call__(self, cmds: list[Command]) -> list[Reply]:
        self.rounds.append(cmds)
        out = []
        for c in cmds:
            answers = [
                redis.ResponseError(self.errors[c.node])
                if c.node in self.errors
                else (None if b"p:key-%d" % j in self.taken else b"OK")
                for j in (c.index or range(c.replies))
            ]
            if c.node in self.cut:
                out.append(Reply(answers[: self.cut[c.node]], redis.ConnectionError("reset")))
            else:
                out.append(Reply(answers))
        return out


def test_a_batch_becomes_one_pipeline_per_node_and_verdicts_follow_the_replies() -> None:
    # Given 300 keys on a three-node slot map, key-1 already claimed
    core, keys, nodes = _core(), _keys(300), FakeNodes(taken={b"p:key-1"})
    # When
    out = drive(core.claim_flow(keys, lambda: THREE), nodes)
    # Then
    assert sorted(str(c.node) for c in nodes.rounds[0]) == ["a", "b", "c"]
    assert sum(c.replies for c in nodes.rounds[0]) == 300
    for c in nodes.rounds[0]:
        assert all(THREE[slot_of(b"p:" + keys[j])] == c.node for j in c.index)
        assert c.packed.count(b"SET") == c.replies and c.packed.count(b"NX") == c.replies
    assert out == [i != 1 for i in range(300)]
    assert core.stats()["duplicates"] == 1


def test_a_single_redis_gets_one_command() -> None:
    nodes = FakeNodes()
    assert drive(_core().claim_flow(_keys(50), lambda: None), nodes) == [True] * 50
    assert len(nodes.rounds) == 1 and [c.node for c in nodes.rounds[0]] == [None]


def test_moved_keys_are_planned_again_once_on_the_new_slot_map() -> None:
    # Given node c answers MOVED and the slot map then moves c's slots to a
    core, keys = _core(), _keys(300)
    maps = iter([THREE, [n if n != "c" else "a" for n in THREE]])
    nodes = FakeNodes(errors={"c": "MOVED 16000 127.0.0.1:1"})
    # When
    out = drive(core.claim_flow(keys, lambda: next(maps)), nodes)
    # Then the second round asks node a for exactly c's keys, and every verdict is known
    assert len(nodes.rounds) == 2
    moved = next(c for c in nodes.rounds[0] if c.node == "c").index
    assert [(c.node, c.index) for c in nodes.rounds[1]] == [("a", moved)]
    assert out == [True] * 300 and core.available


def test_fail_open_counts_the_unverified_keys_and_sends_them() -> None:
    core, keys = _core(), _keys(300)
    nodes = FakeNodes(taken={b"p:key-0"}, errors={"b": "CLUSTERDOWN The cluster is down"})
    out = drive(core.claim_flow(keys, lambda: THREE), nodes)
    b_keys = {j for c in nodes.rounds[0] if c.node == "b" for j in c.index}
    assert out == [j != 0 or j in b_keys for j in range(300)]
    assert core.stats()["unavailable"] == len(b_keys) and not core.available
    # the next call does not ask Redis at all
    assert drive(core.claim_flow(keys[:3], lambda: THREE), nodes) == [True] * 3
    assert len(nodes.rounds) == 1


def test_fail_closed_undoes_its_own_and_maybe_applied_claims_per_slot_then_raises() -> None:
    # Given node b's connection breaks after 10 replies
    core, keys = _core("fail_closed"), _keys(300)
    nodes = FakeNodes(cut={"b": 10})
    # When / Then
    with pytest.raises(DeduplicationUnavailableError, match="none of the 300 records was sent"):
        drive(core.claim_flow(keys, lambda: THREE), nodes)
    undo = nodes.rounds[1]
    assert sorted(str(c.node) for c in undo) == ["a", "b", "c"]
    scripts = b"".join(c.packed for c in undo)
    assert scripts.count(b"EVAL") == sum(c.replies for c in undo)  # one script call per slot
    assert sum(scripts.count(b"p:key-%d\r\n" % j) for j in range(300)) == 300
    slots = {slot_of(b"p:" + k) for k in keys}
    assert sum(c.replies for c in undo) == len(slots)


def test_release_on_a_cluster_deletes_per_slot() -> None:
    nodes = FakeNodes()
    drive(_core().release_flow(_keys(100), lambda: THREE), nodes)
    dels = b"".join(c.packed for c in nodes.rounds[0])
    assert dels.count(b"DEL") == len({slot_of(b"p:" + k) for k in _keys(100)})


def test_memory_backend_refuses_an_unknown_policy_like_redis() -> None:
    with pytest.raises(ConfigurationError, match="on_unavailable must be one of"):
        make_deduplicator(on_unavailable="fail_sideways")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="on_unavailable must be one of"):
        ProcessedMessages(on_unavailable="fail_sideways")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="on_unavailable must be one of"):
        make_deduplicator(
            redis_url="redis://127.0.0.1:1/0",
            on_unavailable="fail_sideways",  # type: ignore[arg-type]
        )
