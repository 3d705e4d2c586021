"""W3C trace context passes unchanged through retry, DLQ and replay; spans for each hop."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from kafka_reliable import DeadLetterQueue, ReliableKafkaProducer
from kafka_reliable.dlq.replay import ReplayOptions
from kafka_reliable.worker import RetryWorker, WorkerConfig
from tests.helpers.kafka import (
    create_topic,
    headers_dict,
    read_to_end,
    unique_name,
    wait_for_config,
)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TP = f"00-{TRACE_ID}-00f067aa0ba902b7-01".encode()
TS = b"vendor=abc"


def _spans(exporter, name: str) -> list:  # type: ignore[no-untyped-def]
    return [s for s in exporter.get_finished_spans()
            if s.name == name and format(s.context.trace_id, "032x") == TRACE_ID]


@pytest.mark.slow
def test_trace_headers_survive_retry_and_worker(kafka_bootstrap: str, admin: AdminClient, tmp_path: Path,
                                                otel_exporter) -> None:  # type: ignore[no-untyped-def]
    # Given a record with trace context for a topic that does not exist yet (-> .retry)
    otel_exporter.clear()
    topic = unique_name("trace")
    with ReliableKafkaProducer(bootstrap_servers=kafka_bootstrap, spool_path=tmp_path / "s.db",
                               producer_config={"delivery_timeout_ms": 3000}) as p:
        mid = p.send_message(topic, {"order": 1}, key="k", headers={"traceparent": TP, "tracestate": TS})
        p.flush(30)
        assert p.get_message_status(mid) == "retrying"
    [retry_rec] = read_to_end(kafka_bootstrap, topic + ".retry", at_least=1)
    assert headers_dict(retry_rec)["traceparent"] == TP and headers_dict(retry_rec)["tracestate"] == TS
    # When the topic appears and the worker republishes
    create_topic(admin, topic)
    worker = RetryWorker(config=WorkerConfig(bootstrap_servers=kafka_bootstrap, topics=(topic,),
                                             group_id=unique_name("g")))
    t = threading.Thread(target=worker.run, daemon=True)
    t.start()
    try:
        [final] = read_to_end(kafka_bootstrap, topic, at_least=1, timeout_s=30)
    finally:
        worker.stop()
        t.join(20)
    # Then the headers are unchanged and the send and retry spans belong to the record's trace
    assert headers_dict(final)["traceparent"] == TP and headers_dict(final)["tracestate"] == TS
    assert _spans(otel_exporter, "kafka_reliable.send") and _spans(otel_exporter, "kafka_reliable.retry")


def test_trace_headers_survive_dlq_and_replay(kafka_bootstrap: str, admin: AdminClient, new_topic, tmp_path: Path,
                                              otel_exporter) -> None:  # type: ignore[no-untyped-def]
    # Given a record with trace context dead-lettered for its size
    otel_exporter.clear()
    topic = new_topic(config={"max.message.bytes": "10000"})
    with ReliableKafkaProducer(bootstrap_servers=kafka_bootstrap, spool_path=tmp_path / "s.db",
                               producer_config={"compression_type": "none"}) as p:
        p.send_message(topic, b"z" * 20_000, key="k", headers={"traceparent": TP, "tracestate": TS})
        p.flush(30)
    [dead] = read_to_end(kafka_bootstrap, topic + ".dlq", at_least=1)
    assert headers_dict(dead)["traceparent"] == TP
    # When the limit is raised and the DLQ replayed
    res = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry("max.message.bytes", "100000", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([res])[res].result(timeout=10)
    wait_for_config(admin, topic, "max.message.bytes", "100000")
    result = DeadLetterQueue(bootstrap_servers=kafka_bootstrap).replay(topic, ReplayOptions(group_id=unique_name("r")))
    assert result.replayed == 1, result
    # Then the replayed record carries the same trace context, and the replay span is in the trace
    [back] = read_to_end(kafka_bootstrap, topic, at_least=1)
    assert headers_dict(back)["traceparent"] == TP and headers_dict(back)["tracestate"] == TS
    assert _spans(otel_exporter, "kafka_reliable.replay")
