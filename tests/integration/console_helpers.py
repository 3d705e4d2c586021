"""DLQ data for the console tests: our records, JSON and Avro values, a retry backlog."""

from __future__ import annotations

import html
import json
import re
import time
from dataclasses import dataclass

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from kafka_reliable import headers as h
from kafka_reliable.avro import encode_single_object, load_schema
from kafka_reliable.config import RetryConfig, TopicNaming
from kafka_reliable.errors import classify
from kafka_reliable.routing import route_failure
from tests.helpers.dlq import code_of, dead_letter, make_source

#: The token of the test consoles.
TOKEN = "console-test-token-7f3a"


@dataclass
class ConsoleData:
    """``source`` with 10 records in ``source.dlq`` (m0..m9, keys k0..k9; see dead_letter), one
    JSON and one Avro record after them, and 3 records waiting in ``source.retry``."""

    source: str
    dlq: str
    base_ms: int


def user_event() -> dict[str, object]:
    return {
        "event_id": "e-1", "event_type": "SEARCH", "user_id": None, "session_id": "s-1",
        "sequence_number": 0, "timestamp": 1_700_000_000_000, "page_url": "/search",
        "referrer": None, "device": {"type": "MOBILE", "os": "Android", "browser": "Chrome"},
        "ip_address": "10.0.0.1", "country": "DE", "product_id": None, "search_query": "red shoes",
        "quantity": None, "cart_value_cents": None, "properties": {},
    }


def _routed(source: str, i: int, at: int) -> list[tuple[str, bytes]]:
    route = route_failure(
        topic=source, classification=classify(code_of(i)), error_message=f"failure {i}", attempt=4,
        retry_config=RetryConfig(max_retries=3), naming=TopicNaming(), now_ms=at,
        headers=[("app", b"shop")], message_id=f"m{i}", first_failure_at_ms=at - 500,
    )
    return route.headers


def make_console_data(admin: AdminClient, bootstrap: str) -> ConsoleData:
    source = make_source(admin, bootstrap, partitions=2, prefix="console")
    base = int(time.time() * 1000) - 600_000
    dead_letter(bootstrap, source, 10, base_ms=base)
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    at = base + 20_000
    p.produce(source + ".dlq", key=b"json-key", timestamp=at, headers=_routed(source, 10, at),
              value=json.dumps({"order": 42, "items": [{"sku": "A-1", "qty": 2}]}).encode())
    avro = encode_single_object(load_schema("user_event"), user_event())
    p.produce(source + ".dlq", key=b"avro-key", value=avro, timestamp=at + 1000,
              headers=_routed(source, 11, at + 1000))
    for i in range(3):  # waiting in .retry, due long ago: due and late
        hs = [(h.ORIGINAL_TOPIC, source.encode()), (h.ATTEMPT, b"1"),
              (h.NEXT_ATTEMPT_AT, str(base).encode())]
        p.produce(source + ".retry", key=f"r{i}".encode(), value=b"r", headers=hs)
    assert p.flush(30) == 0
    return ConsoleData(source=source, dlq=source + ".dlq", base_ms=base)


def csrf_of(page: str) -> str:
    m = re.search(r'name="csrf" value="([^"]*)"', page)
    assert m is not None, "no CSRF field on the page"
    return html.unescape(m.group(1))


def error_of(page: str) -> str:
    m = re.search(r'id="error-message">([^<]*)<', page)
    assert m is not None, f"no error message on the page: {page[:300]}"
    return html.unescape(m.group(1))
