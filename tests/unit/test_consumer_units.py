"""ReliableConsumer pure parts: group topic names, routes and headers, key lanes, settings, metrics."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from kafka_reliable import headers as h
from kafka_reliable.config import RetryConfig, TopicNaming
from kafka_reliable.consumer import GroupTopicNaming, ReliableConsumer, Retry
from kafka_reliable.consumer.keyorder import KeyLane
from kafka_reliable.consumer.metrics import ConsumerMetrics
from kafka_reliable.consumer.pending import decode_retry
from kafka_reliable.consumer.record import (
    as_deserializer,
    exception_name,
    json_deserializer,
    message_id,
)
from kafka_reliable.consumer.routes import Origin, classify_exception, failure_route, park_route
from kafka_reliable.consumer.settings import translate_consumer_config
from kafka_reliable.errors import ConfigurationError, ErrorKind

NAMING = GroupTopicNaming(group="billing")


# ---- topic names --------------------------------------------------------------------------

def test_group_topics_are_scoped_to_the_group() -> None:
    n = TopicNaming()
    assert n.group_retry_topic("orders", "billing") == "orders.billing.retry"
    assert n.group_dlq_topic("orders", "billing") == "orders.billing.dlq"
    assert TopicNaming(retry_suffix="-r", dlq_suffix="-d").group_dlq_topic("o", "g") == "o.g-d"


def test_illegal_group_characters_map_to_underscore() -> None:
    assert TopicNaming().group_retry_topic("orders", "billing v2/eu:1") == "orders.billing_v2_eu_1.retry"


def test_long_group_ids_are_cut_with_a_hash_and_stay_apart() -> None:
    n = TopicNaming()
    a, b = n.group_dlq_topic("orders", "g" * 300), n.group_dlq_topic("orders", "g" * 299 + "h")
    assert len(a) == len(b) == 249 and a != b
    assert a.startswith("orders.ggg") and a.endswith(".dlq")
    with pytest.raises(ConfigurationError, match="too long"):
        n.group_retry_topic("t" * 245, "g")
    with pytest.raises(ConfigurationError):
        n.group_retry_topic("orders", "")


def test_group_naming_finds_the_source_of_its_companions() -> None:
    n = GroupTopicNaming(group="team.billing")
    assert n.retry_topic("a.b") == "a.b.team.billing.retry"
    assert n.source_of("a.b.team.billing.retry") == "a.b"
    assert n.source_of("a.b.team.billing.dlq") == "a.b"
    assert n.source_of("a.b.other.dlq") is None


# ---- routes -------------------------------------------------------------------------------

def origin(**kw: object) -> Origin:
    base: dict[str, object] = dict(topic="orders", partition=2, offset=41, timestamp_ms=1_000, message_id="m-1",
                                   headers=[("app", b"\x00x"), (h.ERROR_CODE, b"old")])
    base.update(kw)
    return Origin(**base)  # type: ignore[arg-type]


def test_a_handler_failure_goes_to_the_group_retry_topic_with_the_header_contract() -> None:
    cls = classify_exception(TimeoutError("slow"), "TimeoutError", ())
    r = failure_route(origin(), classification=cls, error_message="slow", retry_config=RetryConfig(jitter=False),
                      naming=NAMING, now_ms=10_000)
    assert r.to_retry and r.target_topic == "orders.billing.retry"
    hd = dict(r.headers)
    assert hd[h.NEXT_ATTEMPT_AT] == b"10100" and hd[h.ATTEMPT] == b"1"
    assert hd[h.ORIGINAL_PARTITION] == b"2" and hd[h.ORIGINAL_OFFSET] == b"41" and hd[h.ORIGINAL_TIMESTAMP] == b"1000"
    assert hd[h.CONSUMER_GROUP] == b"billing" and hd[h.MESSAGE_ID] == b"m-1" and hd["app"] == b"\x00x"
    assert hd[h.ERROR_CLASS] == b"TimeoutError" and hd[h.ERROR_CODE] == b"HANDLER_ERROR"
    assert [k for k, _ in r.headers].count(h.ERROR_CODE) == 1


def test_non_retriable_and_exhausted_failures_go_to_the_group_dlq() -> None:
    cls = classify_exception(ValueError("bad"), "ValueError", (ValueError,))
    assert cls.kind is ErrorKind.NON_RETRIABLE
    r = failure_route(origin(), classification=cls, error_message="bad", retry_config=RetryConfig(),
                      naming=NAMING, now_ms=1)
    assert r.target_topic == "orders.billing.dlq" and r.failure.dlq_reason == "non_retriable"
    cls = classify_exception(OSError("x"), "OSError", (ValueError,))
    r = failure_route(origin(attempt=3), classification=cls, error_message="x", retry_config=RetryConfig(max_retries=3),
                      naming=NAMING, now_ms=1)
    assert not r.to_retry and r.failure.dlq_reason == "retries_exhausted" and r.failure.attempt == 4


def test_retry_with_a_delay_overrides_the_backoff_and_ignores_producer_error_names() -> None:
    exc = Retry("later", delay_ms=20_000)
    cls = classify_exception(exc, exception_name(exc), (Retry,))
    cfg = RetryConfig(retriable_errors=("KafkaTimeoutError",))
    r = failure_route(origin(), classification=cls, error_message="later", retry_config=cfg, naming=NAMING,
                      now_ms=5, delay_ms=exc.delay_ms)
    assert r.to_retry and dict(r.headers)[h.NEXT_ATTEMPT_AT] == b"20005"
    with pytest.raises(ValueError):
        Retry(delay_ms=-1)


def test_a_parked_record_is_due_now_with_its_attempt_unchanged() -> None:
    r = park_route(origin(attempt=0), behind_offset=40, naming=NAMING, now_ms=7)
    hd = dict(r.headers)
    assert r.target_topic == "orders.billing.retry"
    assert hd[h.ATTEMPT] == b"0" and hd[h.NEXT_ATTEMPT_AT] == b"7" and hd[h.ERROR_CODE] == b"PARKED"
    p = decode_retry(tp=("orders.billing.retry", 2), offset=0, gen=1, key=b"k", value=b"{}", timestamp_ms=1,
                     headers=r.headers, source_topic="orders")
    assert p.parked and p.ident == (2, 41) and p.due_ms == 7 and p.message_id == "m-1"


def test_retry_records_from_another_topic_or_without_due_time_are_poison() -> None:
    r = park_route(origin(), behind_offset=1, naming=NAMING, now_ms=7)
    with pytest.raises(ValueError, match="original.topic"):
        decode_retry(tp=("x", 0), offset=0, gen=1, key=None, value=None, timestamp_ms=0, headers=r.headers,
                     source_topic="payments")
    no_due = [(k, v) for k, v in r.headers if k != h.NEXT_ATTEMPT_AT]
    with pytest.raises(ValueError, match="next.attempt.at"):
        decode_retry(tp=("x", 0), offset=0, gen=1, key=None, value=None, timestamp_ms=0, headers=no_due,
                     source_topic="orders")


# ---- key lanes ----------------------------------------------------------------------------

def test_a_key_waits_behind_its_failed_record_and_other_keys_flow() -> None:
    lane: KeyLane[str] = KeyLane(caught_up=True)
    assert not lane.blocked(b"k")
    lane.expect(b"k", (0, 5))                          # #5 failed, on its way to the retry topic
    assert lane.blocked(b"k") and not lane.blocked(b"other")
    lane.expect(b"k", (0, 6))                          # #6 parked behind it
    assert lane.arrived(b"k", (0, 6), (0, 11), "r6") == (None, None)  # read first? must wait for #5
    assert lane.arrived(b"k", (0, 5), (1, 10), "r5") == (None, "r5")
    lane.requeue(b"k", (0, 5))                         # #5 fails again
    assert lane.next_head(b"k") is None
    assert lane.arrived(b"k", (0, 5), (2, 12), "r5b") == (None, "r5b")
    assert lane.done(b"k", (0, 5)) == "r6"
    assert lane.done(b"k", (0, 6)) is None and not lane.blocked(b"k")


def test_two_copies_of_a_record_collapse_to_the_later_attempt() -> None:
    lane: KeyLane[str] = KeyLane(caught_up=False)
    assert lane.arrived(b"k", (0, 5), (1, 10), "old") == (None, None)
    assert lane.arrived(b"k", (0, 6), (0, 11), "r6") == (None, None)
    assert lane.arrived(b"k", (0, 5), (2, 12), "new") == ("old", None)
    lane.caught_up = True
    assert lane.heads() == ["new"]
    assert lane.known(b"k", (0, 6)) and not lane.known(b"k", (0, 7))
    assert lane.arrived(b"k", (0, 5), (1, 13), "stale") == ("stale", None)  # lower attempt loses
    assert lane.pending() == 2 and lane.blocker(b"k") == (0, 5)


# ---- settings, records, metrics -----------------------------------------------------------

def test_consumer_config_translates_kafka_python_keys_and_refuses_auto_commit() -> None:
    c, p, py = translate_consumer_config({"session_timeout_ms": 6000, "max_poll_records": 50,
                                         "producer.linger.ms": 1, "fetch.wait.max.ms": 10,
                                         "enable_auto_commit": False})
    assert c == {"session.timeout.ms": 6000, "fetch.wait.max.ms": 10} and p == {"linger.ms": 1}
    assert py == {"max_poll_records": 50}
    with pytest.raises(ConfigurationError, match="commits offsets itself"):
        translate_consumer_config({"enable.auto.commit": True})
    with pytest.raises(ConfigurationError, match="did you mean 'session_timeout_ms'"):
        translate_consumer_config({"session_timeout": 1})


def test_constructor_errors_name_what_is_wrong() -> None:
    reg = CollectorRegistry()
    with pytest.raises(ConfigurationError, match="ordering"):
        ReliableConsumer(group_id="g", topics=["t"], ordering="fifo", metrics_registry=reg)
    with pytest.raises(ConfigurationError, match="range"):
        ReliableConsumer(group_id="g", topics=["t"], ordering="key", metrics_registry=reg,
                         consumer_config={"partition.assignment.strategy": "cooperative-sticky"})
    with pytest.raises(ConfigurationError, match="eager"):
        ReliableConsumer(group_id="g", topics=["t"], metrics_registry=reg,
                         consumer_config={"partition_assignment_strategy": "cooperative-sticky"})
    ReliableConsumer(group_id="g", topics=["t"], metrics_registry=reg,
                     consumer_config={"partition.assignment.strategy": "roundrobin"})
    with pytest.raises(ConfigurationError, match="group_id"):
        ReliableConsumer(group_id="", topics=["t"], metrics_registry=reg)
    with pytest.raises(ConfigurationError, match="exception classes"):
        ReliableConsumer(group_id="g", topics=["t"], non_retriable_exceptions=["ValueError"],  # type: ignore[list-item]
                         metrics_registry=reg)
    c = ReliableConsumer(group_id="billing v2", topics="orders", metrics_registry=reg)
    assert c.retry_topic("orders") == "orders.billing_v2.retry" and c.settings.topics == ("orders",)


def test_records_helpers() -> None:
    assert json_deserializer(None, "t") is None and json_deserializer(b'{"a":1}', "t") == {"a": 1}
    assert message_id([(h.MESSAGE_ID, b"abc")], "t", 0, 1) == "abc"
    assert message_id([], "t", 3, 9) == "t-3-9"
    assert exception_name(KeyError()) == "KeyError"
    assert exception_name(ConfigurationError()) == "kafka_reliable.errors.ConfigurationError"

    class Decoder:
        def decode(self, data: bytes) -> str:
            return data.decode()[::-1]

    assert as_deserializer(Decoder())(b"abc", "t") == "cba"
    with pytest.raises(TypeError):
        as_deserializer(42)


def test_metrics_share_one_registry_and_use_the_consumer_prefix() -> None:
    reg = CollectorRegistry()
    a, b = ConsumerMetrics(group="a", registry=reg), ConsumerMetrics(group="b", registry=reg)
    a.handled("t", 0.001)
    b.failed("t", "ValueError", 0.002)
    a.retried("t"), a.parked("t"), b.dead_lettered("t", "poison"), a.lateness(0.01), a.set_pending(3)
    a.set_lag("t", 0, 5)
    a.forget_lag("t", 0)
    a.forget_lag("t", 0)
    names = {s.name for fam in reg.collect() for s in fam.samples}
    assert {"kafka_reliable_consumer_handled_total", "kafka_reliable_consumer_failed_total",
            "kafka_reliable_consumer_dead_lettered_total", "kafka_reliable_consumer_handler_seconds_bucket",
            "kafka_reliable_consumer_retry_lateness_seconds_count", "kafka_reliable_consumer_pending"} <= names
    assert reg.get_sample_value("kafka_reliable_consumer_failed_total",
                                {"topic": "t", "group": "b", "error_class": "ValueError"}) == 1.0


def test_an_unread_retry_record_falling_due_asks_to_hurry() -> None:
    from kafka_reliable.consumer.expected import ExpectedRetries

    e = ExpectedRetries()
    tp = ("t.g.retry", 0)
    e.written(tp, 10, due_ms=1_000)
    assert not e.hurry(900, {tp})            # not due yet
    assert e.hurry(998, {tp})                # due within the lead time, unread
    assert not e.hurry(998, set())           # not ours any more
    e.written(tp, 11, due_ms=1_000)
    e.read(tp, 11)
    assert not e.hurry(1_000, {tp}) and len(e) == 0
    e.written(tp, 5, due_ms=1)               # already read past it: ignored
    e.written(("x", 1), 3, due_ms=1)
    assert not e.hurry(20_000, {("x", 1)})   # long overdue: given up
    e.written(("x", 1), 4, due_ms=20_000)
    e.drop({("x", 1)})
    assert len(e) == 0


def test_avro_records_decode_and_garbage_raises() -> None:
    from kafka_reliable.avro import AvroSerializer
    from kafka_reliable.consumer import AvroDeserializer
    from kafka_reliable.errors import SerializationError

    schema = {"type": "record", "name": "Payment", "fields": [{"name": "cents", "type": "int"}]}
    data = AvroSerializer(default_schema=schema)({"cents": 1999}, "payments")
    deser = as_deserializer(AvroDeserializer(writer_schemas=[schema]))
    assert deser(data, "payments") == {"cents": 1999}
    assert deser(None, "payments") is None
    with pytest.raises(SerializationError):
        deser(b"\xff\x00garbage", "payments")  # the consumer sends such a record to the DLQ as poison


def test_json_deserializer_reads_utf8_and_what_json_loads_reads() -> None:
    import json

    import pytest

    from kafka_reliable.consumer import json_deserializer

    value = {"a": "ü", "n": [1, 2]}
    for data in (json.dumps(value).encode(), json.dumps(value, ensure_ascii=False).encode(),
                 b"\xef\xbb\xbf" + json.dumps(value).encode(), json.dumps(value).encode("utf-16")):
        assert json_deserializer(data, "t") == value
    assert json_deserializer(None, "t") is None
    with pytest.raises(ValueError):  # not JSON: a poison record, as before
        json_deserializer(b"{not json", "t")


def test_consumer_record_headers_and_message_id_are_worked_out_when_read() -> None:
    from kafka_reliable import headers as h
    from kafka_reliable.consumer import ConsumerRecord

    raw = [(h.MESSAGE_ID, b"m-1"), ("trace", b"t"), (h.ATTEMPT, b"2"), ("empty", None)]
    rec = ConsumerRecord("orders", 3, 7, b"k", {"v": 1}, raw, 5, None, 0)
    # our namespace left out, None values as b"", the id from our header
    assert rec.headers == [("trace", b"t"), ("empty", b"")]
    assert rec.message_id == "m-1"
    # without headers: the id from the position; records compare by their fields
    bare = ConsumerRecord("orders", 3, 7, b"k", {"v": 1}, [], 5, None, 0)
    assert bare.headers == [] and bare.message_id == "orders-3-7"
    assert bare == ConsumerRecord("orders", 3, 7, b"k", {"v": 1}, [], 5, "orders-3-7", 0)
    assert bare != rec and "message_id='orders-3-7'" in repr(bare)
    bare.headers = [("x", b"1")]
    assert bare.headers == [("x", b"1")]


def test_json_deserializer_takes_white_space_around_and_refuses_trailing_data() -> None:
    import pytest

    from kafka_reliable.consumer import json_deserializer

    assert json_deserializer(b' \n{"a": 1}\t ', "t") == {"a": 1}
    assert json_deserializer(b"3", "t") == 3
    with pytest.raises(ValueError, match="Extra data"):
        json_deserializer(b'{"a": 1} {"b": 2}', "t")
