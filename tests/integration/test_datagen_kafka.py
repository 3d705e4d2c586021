"""The orchestrator on the real broker: records arrive decodable; degradation shows in .retry / .dlq."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import redis

from kafka_reliable import headers as H
from kafka_reliable.avro import AvroDecoder
from kafka_reliable.cli.main import main
from kafka_reliable.datagen.orchestrator import DataGenerationOrchestrator
from tests.helpers.kafka import create_topic, headers_dict, read_to_end, topic_count, unique_name

START_MS = 1_700_049_600_000  # 2023-11-15 12:00 UTC, busy hours
FAST = {"delivery_timeout_ms": 3000, "request_timeout_ms": 1000}
#: librdkafka does not split a batch the broker refuses as too large: with a topic limit below
#: batch.size, records batched with an oversized one would fail with it. Keep batches below it.
SMALL_BATCHES = {**FAST, "batch_size": 32_000}


def _orchestrator(kafka_bootstrap: str, prefix: str, tmp_path: Path, **kw) -> DataGenerationOrchestrator:
    return DataGenerationOrchestrator(
        bootstrap_servers=kafka_bootstrap, topic_prefix=prefix, seed=42, start_ms=START_MS,
        show_progress=False, spool_path=tmp_path / "spool.db", partitions=2, **kw,
    )


def test_normal_traffic_arrives_and_decodes_with_the_schemas(kafka_bootstrap, tmp_path):
    # Given
    prefix = unique_name("dg") + "-"
    orch = _orchestrator(kafka_bootstrap, prefix, tmp_path)

    # When
    try:
        summary = orch.run_scenario("normal_traffic", duration_hours=0.1, speed=0)
    finally:
        orch.close()

    # Then
    assert summary["generated"] > 300
    assert summary["sent"] == summary["generated"] == summary["attempted"]
    assert summary["retried"] == summary["dead_lettered"] == summary["undelivered"] == 0
    decoder = AvroDecoder()
    kinds = {"transactions": "ecommerce.events.Transaction", "user-events": "ecommerce.events.UserEvent",
             "product-updates": "ecommerce.events.ProductUpdate"}
    for name, schema_name in kinds.items():
        topic = prefix + name
        records = read_to_end(kafka_bootstrap, topic, at_least=summary["by_topic"][topic])
        assert len(records) == summary["by_topic"][topic] > 0
        for r in records:
            assert decoder.writer_schema_of(r.value()).name == schema_name
            value = decoder.decode(r.value())
            assert r.key().decode() in (value.get("user_id"), value.get("session_id"), value.get("product_id"))
            assert H.MESSAGE_ID in headers_dict(r)


@pytest.mark.slow
def test_system_degradation_routes_oversized_to_dlq_and_unprovisioned_to_retry(
    kafka_bootstrap, admin, redis_url, tmp_path
):
    # Given: transactions accept at most 64 kB, so an oversized record is cheap to make
    prefix = unique_name("dgx") + "-"
    create_topic(admin, prefix + "transactions", 2, {"max.message.bytes": "64000"})
    client = redis.Redis.from_url(redis_url)
    orch = _orchestrator(kafka_bootstrap, prefix, tmp_path, redis_client=client, producer_config=SMALL_BATCHES)

    # When
    try:
        summary = orch.run_scenario("system_degradation", duration_hours=0.15, speed=0)
    finally:
        orch.close()

    # Then: every injected failure shows where the design says
    injected = summary["injected"]
    assert injected["oversized"] > 0 and injected["unwritable"] > 0 and injected["duplicate"] > 0
    assert summary["dead_lettered"] == injected["oversized"]
    assert summary["retried"] == injected["unwritable"]
    assert summary["duplicates"] == injected["duplicate"]
    assert summary["sent"] == summary["generated"] - injected["oversized"] - injected["unwritable"]
    dlq = read_to_end(kafka_bootstrap, prefix + "transactions.dlq", at_least=injected["oversized"])
    assert len(dlq) == injected["oversized"]
    assert {headers_dict(r)[H.ERROR_CODE] for r in dlq} <= {b"MSG_SIZE_TOO_LARGE", b"_MSG_SIZE_TOO_LARGE"}
    assert all(len(r.value()) > 64000 for r in dlq)
    retry = read_to_end(kafka_bootstrap, prefix + "user-events-archive.retry", at_least=injected["unwritable"])
    assert len(retry) == injected["unwritable"]
    assert {headers_dict(r)[H.ERROR_RETRIABLE] for r in retry} == {b"true"}
    events = AvroDecoder(reader_schema="user_event")
    assert all(events.decode(r.value())["event_id"] for r in retry)
    conf = {"bootstrap.servers": kafka_bootstrap}
    on_topics = sum(topic_count(conf, prefix + t) for t in ("transactions", "user-events", "product-updates"))
    assert on_topics == summary["sent"]  # the second copy of each duplicate never reached a topic


def test_raw_producer_json_records_and_lost_failures(kafka_bootstrap, tmp_path):
    # Given
    prefix = unique_name("dgr") + "-"
    orch = DataGenerationOrchestrator(
        use_reliable_producer=False, bootstrap_servers=kafka_bootstrap, topic_prefix=prefix, seed=3,
        start_ms=START_MS, serialization="json", show_progress=False, producer_config=FAST,
    )

    # When
    try:
        summary = orch.run_scenario("normal_traffic", duration_hours=0.05, speed=0)
    finally:
        orch.close()

    # Then
    topic = prefix + "user-events"
    records = read_to_end(kafka_bootstrap, topic, at_least=summary["by_topic"][topic])
    assert summary["producer"] == "raw" and summary["sent"] == summary["generated"] > 100
    assert len(records) == summary["by_topic"][topic]
    assert Counter(json.loads(r.value())["event_type"] for r in records)["PAGE_VIEW"] > 10


def test_generate_cli_prints_a_json_summary(kafka_bootstrap, capsys):
    # Given
    prefix = unique_name("dgc") + "-"

    # When
    code = main(["generate", "--scenario", "flash_sale", "--duration", "2m", "--speed", "0", "--seed", "9",
                 "--start-ms", str(START_MS), "--topic-prefix", prefix, "--bootstrap-servers", kafka_bootstrap,
                 "--partitions", "1", "--json"])

    # Then
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0
    assert summary["scenario"] == "flash_sale" and summary["seed"] == 9
    assert summary["sent"] == summary["generated"] > 50
    assert summary["by_topic"][prefix + "product-updates"] >= 10  # the flash-sale price cuts


def test_unknown_scenario_is_a_usage_error(kafka_bootstrap):
    with pytest.raises(SystemExit) as info:
        main(["generate", "--scenario", "black_friday"])
    assert info.value.code == 2
