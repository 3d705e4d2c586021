"""Pure units of the retry worker: due-time heap, offset tracker, record decoding, settings."""

from __future__ import annotations

import random

import pytest

from kafka_reliable import headers as h
from kafka_reliable.config import RetryConfig, TopicNaming
from kafka_reliable.errors import ConfigurationError, classify
from kafka_reliable.routing import route_failure
from kafka_reliable.scheduling import DueHeap, OffsetTracker
from kafka_reliable.worker import records
from kafka_reliable.worker.settings import WorkerConfig, from_values

TP0 = ("orders.retry", 0)
TP1 = ("orders.retry", 1)
NAMING = TopicNaming()


# ---- DueHeap ---------------------------------------------------------------------------

def test_heap_pops_only_due_items_in_due_order() -> None:
    # Given
    heap: DueHeap[str] = DueHeap(max_pending=10)
    heap.push(10_000, TP0, "late")
    heap.push(200, TP0, "soon")
    heap.push(500, TP1, "mid")
    # When
    first = heap.pop_due(now_ms=499)
    second = heap.pop_due(now_ms=9_999)
    third = heap.pop_due(now_ms=10_000)
    # Then
    assert first == [(200, "soon")]
    assert second == [(500, "mid")]
    assert third == [(10_000, "late")]
    assert len(heap) == 0 and heap.next_due_ms() is None


def test_heap_never_returns_an_item_before_its_due_time() -> None:
    # Given
    rnd = random.Random(7)
    heap: DueHeap[int] = DueHeap(max_pending=5_000)
    for i in range(2_000):
        heap.push(rnd.randrange(0, 5_000), TP0, i)
    # When
    popped: list[tuple[int, int, int]] = []
    for now in range(0, 5_001, 37):
        popped.extend((now, due, i) for due, i in heap.pop_due(now))
    popped.extend((10**9, due, i) for due, i in heap.pop_due(10**9))
    # Then
    assert len(popped) == 2_000
    assert all(due <= now for now, due, _ in popped)
    assert [due for _, due, _ in popped] == sorted(due for _, due, _ in popped)


def test_heap_keeps_arrival_order_for_equal_due_times_and_honours_limit() -> None:
    heap: DueHeap[int] = DueHeap(max_pending=10)
    for i in range(5):
        heap.push(100, TP0, i)
    assert [i for _, i in heap.pop_due(100, limit=3)] == [0, 1, 2]
    assert [i for _, i in heap.pop_due(100)] == [3, 4]


def test_heap_full_and_room_follow_the_bound() -> None:
    heap: DueHeap[int] = DueHeap(max_pending=3)
    assert heap.room == 3 and not heap.full
    for i in range(3):
        heap.push(i, TP0, i)
    assert heap.full and heap.room == 0
    heap.push(99, TP0, 99)  # a fetch in hand is never refused
    assert len(heap) == 4 and heap.room == 0
    with pytest.raises(ValueError):
        DueHeap(max_pending=0)


def test_heap_drops_revoked_partitions_only() -> None:
    # Given
    heap: DueHeap[str] = DueHeap(max_pending=10)
    heap.push(3, TP0, "a")
    heap.push(1, TP1, "b")
    heap.push(2, TP0, "c")
    heap.push(4, TP1, "d")
    # When
    dropped = heap.drop_partitions({TP1})
    # Then
    assert dropped == 2
    assert heap.pop_due(100) == [(2, "c"), (3, "a")]


# ---- OffsetTracker ---------------------------------------------------------------------

def test_commit_position_is_the_contiguous_prefix_of_finished_offsets() -> None:
    # Given
    t = OffsetTracker()
    for off in range(5):
        assert t.track(TP0, off)
    # When: 1, 2 and 4 finish, 0 and 3 are still out
    for off in (1, 2, 4):
        t.finish(TP0, off)
    # Then
    assert t.position(TP0) == 0
    t.finish(TP0, 0)
    assert t.position(TP0) == 3
    t.finish(TP0, 3)
    assert t.position(TP0) == 5
    assert t.pending(TP0) == 0


def test_commit_position_respects_offset_gaps() -> None:
    # Given: offsets with gaps (compaction, transaction markers)
    t = OffsetTracker()
    for off in (10, 12, 13, 20):
        t.track(TP0, off)
    # When
    t.finish(TP0, 12)
    t.finish(TP0, 10)
    # Then
    assert t.position(TP0) == 13
    t.finish(TP0, 20)
    t.finish(TP0, 13)
    assert t.position(TP0) == 21


def test_random_finish_order_never_commits_past_an_unfinished_offset() -> None:
    rnd = random.Random(3)
    t = OffsetTracker()
    offsets = list(range(500))
    for off in offsets:
        t.track(TP0, off)
    order = offsets[:]
    rnd.shuffle(order)
    finished: set[int] = set()
    for off in order:
        t.finish(TP0, off)
        finished.add(off)
        pos = t.position(TP0)
        assert pos is not None
        assert all(o in finished for o in range(pos))
        assert pos == 500 or pos not in finished
    assert t.position(TP0) == 500


def test_committable_reports_only_moved_partitions() -> None:
    # Given
    t = OffsetTracker()
    t.track(TP0, 0)
    t.track(TP1, 7)
    t.finish(TP0, 0)
    # When
    first = t.committable()
    t.mark_committed(first)
    second = t.committable()
    t.finish(TP1, 7)
    third = t.committable()
    # Then
    assert first == {TP0: 1, TP1: 7}
    assert second == {}
    assert third == {TP1: 8}


def test_redelivered_offsets_are_refused_and_dropped_partitions_forgotten() -> None:
    t = OffsetTracker()
    assert t.track(TP0, 5)
    assert not t.track(TP0, 5)
    assert not t.track(TP0, 3)
    t.drop_partitions([TP0])
    assert t.position(TP0) is None
    t.finish(TP0, 5)  # a late acknowledgement of a revoked partition is ignored
    assert t.committable() == {}
    assert t.track(TP0, 3)


# ---- record decoding -------------------------------------------------------------------

def _retry_headers(topic: str = "orders", attempt: int = 1, now_ms: int = 1_000) -> h.Headers:
    route = route_failure(
        topic=topic, classification=classify("_MSG_TIMED_OUT"), error_message="timed out",
        attempt=attempt, retry_config=RetryConfig(jitter=False), naming=NAMING, now_ms=now_ms,
        headers=[("trace", b"\x00\x01")], message_id="m-1",
    )
    return route.headers


def test_decode_reads_due_time_and_original_topic() -> None:
    rec = records.decode(tp=TP0, offset=3, gen=1, key=b"k", value=b"v", timestamp_ms=5,
                         headers=_retry_headers(), naming=NAMING, now_ms=2_000)
    assert rec.poison_reason is None
    assert rec.due_ms == 1_100  # now + initial_delay_ms, no jitter
    assert rec.source_topic == "orders"
    assert records.republish_headers(rec) == [
        ("trace", b"\x00\x01"), (h.MESSAGE_ID, b"m-1"), (h.ATTEMPT, b"1")]


@pytest.mark.parametrize("mangle", ["drop_topic", "garble_attempt", "drop_next_at", "bad_utf8"])
def test_decode_marks_unreadable_headers_as_poison(mangle: str) -> None:
    # Given
    hdrs = _retry_headers()
    if mangle == "drop_topic":
        hdrs = [(k, v) for k, v in hdrs if k != h.ORIGINAL_TOPIC]
    elif mangle == "garble_attempt":
        hdrs = [(k, b"x1" if k == h.ATTEMPT else v) for k, v in hdrs]
    elif mangle == "drop_next_at":
        hdrs = [(k, v) for k, v in hdrs if k != h.NEXT_ATTEMPT_AT]
    else:
        hdrs = [(k, b"\xff\xfe" if k == h.NEXT_ATTEMPT_AT else v) for k, v in hdrs]
    # When
    rec = records.decode(tp=("shop.retry", 0), offset=0, gen=1, key=None, value=b"v", timestamp_ms=0,
                         headers=hdrs, naming=NAMING, now_ms=42)
    route = records.poison_route(rec, retry_config=RetryConfig(), naming=NAMING, now_ms=42)
    # Then
    assert rec.poison_reason and rec.due_ms == 42
    expected_source = "shop" if mangle == "drop_topic" else "orders"
    assert route.target_topic == f"{expected_source}.dlq"
    assert h.get(route.headers, h.DLQ_REASON) == b"poison"
    assert h.get(route.headers, h.MESSAGE_ID) == b"m-1"


def test_failure_route_counts_the_attempt_and_exhausts_to_dlq() -> None:
    cfg = RetryConfig(max_retries=2, jitter=False)
    for attempt, target, reason in ((1, "orders.retry", None), (2, "orders.dlq", b"retries_exhausted")):
        rec = records.decode(tp=TP0, offset=0, gen=1, key=None, value=b"v", timestamp_ms=0,
                             headers=_retry_headers(attempt=attempt), naming=NAMING, now_ms=0)
        route = records.failure_route(rec, error_name="NOT_ENOUGH_REPLICAS", error_message="nope",
                                      fatal=False, retry_config=cfg, naming=NAMING, now_ms=5_000)
        assert route.target_topic == target
        assert h.get_int(route.headers, h.ATTEMPT) == attempt + 1
        assert h.get_int(route.headers, h.FIRST_FAILURE_AT) == 1_000
        assert h.get(route.headers, h.DLQ_REASON) == reason
    rec = records.decode(tp=TP0, offset=0, gen=1, key=None, value=b"v", timestamp_ms=0,
                         headers=_retry_headers(), naming=NAMING, now_ms=0)
    route = records.failure_route(rec, error_name="MSG_SIZE_TOO_LARGE", error_message="big",
                                  fatal=False, retry_config=cfg, naming=NAMING, now_ms=5_000)
    assert route.target_topic == "orders.dlq"
    assert h.get(route.headers, h.DLQ_REASON) == b"non_retriable"


# ---- settings --------------------------------------------------------------------------

def test_settings_cli_wins_over_env_and_env_over_defaults() -> None:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "env:9092",
        "KAFKA_RELIABLE_TOPICS": "a,b",
        "KAFKA_RELIABLE_MAX_RETRIES": "7",
        "KAFKA_RELIABLE_JITTER": "false",
        "KAFKA_RELIABLE_KAFKA_SASL_PASSWORD": "s3cret",
        "KAFKA_RELIABLE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    }
    cfg = from_values({"bootstrap_servers": "cli:9092", "max_pending": 5,
                       "kafka_config": ["producer.linger.ms=20"]}, env)
    assert cfg.bootstrap_servers == "cli:9092"
    assert cfg.subscription() == ["a.retry", "b.retry"]
    assert cfg.retry_config.max_retries == 7 and cfg.retry_config.jitter is False
    assert cfg.max_pending == 5 and cfg.group_id == "kafka-reliable-retry"
    assert cfg.client_keys("producer") == {"sasl.password": "s3cret", "security.protocol": "SASL_SSL",
                                           "linger.ms": "20"}
    assert "linger.ms" not in cfg.client_keys("consumer")
    assert "s3cret" not in repr(cfg.describe())


def test_settings_pattern_subscribes_to_matching_retry_topics() -> None:
    cfg = WorkerConfig(pattern="orders|pay.*")
    assert cfg.subscription() == [r"^(orders|pay.*)\.retry$"]


@pytest.mark.parametrize("values", [
    {}, {"topics": "a", "pattern": "b"}, {"pattern": "("}, {"topics": "a", "max_pending": 0},
    {"topics": "a", "kafka_config": ["novalue"]},
])
def test_settings_reject_bad_input(values: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        from_values(values, {})


def test_settings_reject_bad_env_values() -> None:
    with pytest.raises(ConfigurationError, match="KAFKA_RELIABLE_MAX_PENDING"):
        from_values({"topics": "a"}, {"KAFKA_RELIABLE_MAX_PENDING": "lots"})


def test_cli_verb_options_build_the_worker_config() -> None:
    # Given
    from kafka_reliable.cli.main import build_parser

    argv = ["retry-worker", "--bootstrap-servers", "b:9092", "--pattern", "orders.*", "--group", "g1",
            "--max-pending", "50", "--metrics-port", "9108", "--transactional", "--max-retries", "5",
            "--initial-delay-ms", "10", "--max-delay-ms", "1000", "--backoff-multiplier", "3",
            "--no-jitter", "--kafka-config", "security.protocol=SSL"]
    # When
    args = build_parser().parse_args(argv)
    cfg = from_values(vars(args), {})
    # Then
    from kafka_reliable.worker import launch

    assert args.func is launch.run
    assert (cfg.bootstrap_servers, cfg.group_id, cfg.max_pending, cfg.metrics_port) == ("b:9092", "g1", 50, 9108)
    assert cfg.transactional and cfg.pattern == "orders.*"
    assert cfg.retry_config == RetryConfig(max_retries=5, initial_delay_ms=10, max_delay_ms=1000,
                                           backoff_multiplier=3.0, jitter=False)
    assert cfg.client_keys("admin") == {"security.protocol": "SSL"}
    with pytest.raises(SystemExit):
        build_parser().parse_args(["retry-worker", "--topics", "a", "--pattern", "b"])


def test_a_failed_asynchronous_commit_is_offered_again() -> None:
    # Given: offsets 0-2 finished and their position (3) handed to an asynchronous commit
    tracker = OffsetTracker()
    for off in range(3):
        tracker.track(TP0, off)
        tracker.finish(TP0, off)
    tracker.mark_committed(tracker.committable())
    assert tracker.committable() == {}
    # When the commit's callback says it failed
    tracker.forget_committed([TP0, ("unknown", 9)])
    # Then the next interval commits the same position again
    assert tracker.committable() == {TP0: 3}
