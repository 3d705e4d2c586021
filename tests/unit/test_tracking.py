"""MessageTracker: statuses, bounded memory, batch countdown, listeners, fast-path folds, snapshot."""

from __future__ import annotations

import pytest

from kafka_reliable.producer import tracking as T
from kafka_reliable.producer.tracking import MessageTracker


def test_a_new_id_is_pending_until_it_settles() -> None:
    # Given
    tr = MessageTracker()
    tr.add("a")
    tr.add("b")
    # When
    tr.settle("a", T.SENT)
    tr.settle(None, T.SENT)  # a record without an id: nothing to track
    # Then
    assert (tr.status("a"), tr.status("b"), tr.status("unknown")) == ("sent", "pending", None)
    assert tr.pending() == ["b"]


@pytest.mark.parametrize("status", [T.SENT, T.RETRYING, T.DLQ, T.SPOOLED, T.DUPLICATE])
def test_every_final_status_is_kept(status: str) -> None:
    tr = MessageTracker()
    tr.add("m")
    tr.settle("m", status)
    assert tr.status("m") == status and tr.pending() == []


def test_capacity_keeps_the_newest_ids_only() -> None:
    # Given room for 3 ids
    tr = MessageTracker(capacity=3)
    # When 5 are tracked and one more settles
    for i in range(5):
        tr.add(f"m{i}")
    tr.settle("m5", T.SENT)
    # Then the oldest went first
    assert [m for m in (f"m{i}" for i in range(6)) if tr.status(m)] == ["m3", "m4", "m5"]
    assert tr.status("m0") is None and tr.status("m5") == "sent"


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity must be >= 1, got 0"):
        MessageTracker(capacity=0)


def test_a_batch_is_done_when_its_last_record_reaches_a_final_status() -> None:
    # Given a batch of three
    tr = MessageTracker()
    batch = tr.add_batch(["a", "b", "c"])
    for mid in "abc":
        tr.add(mid)
    # When two settle (one of them twice) and one only changes to pending again
    tr.settle("a", T.SENT)
    tr.settle("a", T.SENT)
    tr.settle("b", T.DLQ)
    tr.settle("c", T.PENDING)
    # Then the batch still waits for c
    assert not batch.done.is_set() and batch.remaining == 1
    # When c is delivered
    tr.delivered("c", 3.0, retried=False)
    # Then
    assert batch.done.is_set() and batch.remaining == 0


def test_an_empty_batch_is_done_at_once() -> None:
    assert MessageTracker().add_batch([]).done.is_set()


def test_the_final_hook_and_watchers_hear_each_final_status_once() -> None:
    # Given a final hook (the durable ledger's) and a watcher on "a"
    heard: list[str] = []
    watched: list[tuple[str, str, str | None]] = []
    tr = MessageTracker(final_hook=heard.append)
    tr.watch("a", lambda m, s, e: watched.append((m, s, e)))
    # When records settle, one passing through pending first
    tr.add("a")
    tr.settle("a", T.PENDING)
    tr.settle("a", T.RETRYING, "KafkaTimeoutError")
    tr.delivered("b", None, retried=True)
    tr.settle("c", T.SPOOLED)
    # Then each final status was heard once, in order; the watcher once, with the error class
    assert heard == ["a", "b", "c"]
    assert watched == [("a", "retrying", "KafkaTimeoutError")]
    # and a watch on a record already final is answered at once
    tr.watch("b", lambda m, s, e: watched.append((m, s, e)))
    assert watched[-1] == ("b", "sent", None)


def test_fold_counts_fast_path_acks_and_feeds_the_sink_per_topic() -> None:
    # Given three acknowledgements queued on the fast path (one without a latency)
    sunk: list[dict[str, list[float | None]]] = []
    tr = MessageTracker(ack_sink=sunk.append)
    for ack in [("orders", 0.002), ("orders", None), ("payments", 0.010)]:
        tr.ack(ack)
    # When
    folded = tr.fold()
    # Then counters, the latency window and the sink saw them once
    assert folded == 3 and tr.counter("sent") == 3
    lat = tr.snapshot()["latency_stats"]
    assert lat["samples"] == 2 and lat["max_ms"] == pytest.approx(10.0) and lat["avg_ms"] == pytest.approx(6.0)
    assert sunk == [{"orders": [0.002, None], "payments": [0.010]}]
    # and a second fold has nothing to do
    assert tr.fold() == 0 and len(sunk) == 1 and tr.counter("sent") == 3


def test_fold_evicts_what_the_fast_path_stored_over_capacity() -> None:
    # Given the fast path storing statuses directly (no eviction on its own)
    tr = MessageTracker(capacity=2)
    for i in range(4):
        tr.store(f"m{i}", T.SENT)
    # When
    tr.fold()
    # Then
    assert [m for m in ("m0", "m1", "m2", "m3") if tr.status(m)] == ["m2", "m3"]


def test_delivery_deltas_are_since_the_last_call() -> None:
    tr = MessageTracker()
    tr.delivered("a", 4.0, retried=False)
    tr.count("failed")
    tr.ack(("t", 0.006))
    assert tr.take_delivery_deltas() == (2, 1, pytest.approx(10.0), 2)
    tr.delivered("b", 2.0, retried=False)
    assert tr.take_delivery_deltas() == (1, 0, pytest.approx(2.0), 1)


def test_snapshot_has_the_documented_shape() -> None:
    # Given 3 sent (one fast-path, one after a retry), 1 failed, 1 pending and some routing
    tr = MessageTracker()
    tr.add("p")
    tr.delivered("a", 10.0, retried=False)
    tr.delivered("b", 30.0, retried=True)
    tr.ack(("t", 0.020))
    tr.count("failed")
    tr.count("retried", 2)
    tr.count("dead_lettered")
    tr.count("spooled")
    tr.count("drained")
    tr.count("duplicates")
    # When
    snap = tr.snapshot()
    # Then
    assert set(snap) == {
        "messages_sent", "messages_failed", "error_rate", "messages_pending", "messages_retried",
        "messages_dead_lettered", "messages_spooled", "messages_drained_from_spool", "duplicates",
        "latency_stats", "retry_stats",
    }
    assert (snap["messages_sent"], snap["messages_failed"], snap["messages_pending"]) == (3, 1, 1)
    assert snap["error_rate"] == pytest.approx(0.25)
    assert (snap["messages_retried"], snap["messages_dead_lettered"], snap["messages_spooled"]) == (2, 1, 1)
    assert (snap["messages_drained_from_spool"], snap["duplicates"]) == (1, 1)
    assert snap["retry_stats"] == {"total_retries": 2, "successful_retries": 1}
    assert set(snap["latency_stats"]) == {"avg_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms", "samples"}
    assert snap["latency_stats"]["samples"] == 3
    assert snap["latency_stats"]["avg_ms"] == pytest.approx(20.0)


def test_an_empty_snapshot_divides_by_nothing() -> None:
    snap = MessageTracker().snapshot()
    assert snap["error_rate"] == 0.0 and snap["latency_stats"]["samples"] == 0
