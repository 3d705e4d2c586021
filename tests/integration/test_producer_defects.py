"""Regression tests for records that were lost or stuck (issue 11, defects 1 and 2).

Each test feeds the path the record that can never succeed (a refused send, a record too big
for every limit) and checks that nothing else is held up and nothing is lost or copied.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import pytest

from kafka_reliable import ReliableKafkaProducer
from kafka_reliable import headers as H
from kafka_reliable.health import CircuitBreaker, CircuitOpenError, RateLimiter
from kafka_reliable.health.ratelimit import RateLimitExceededError as RateLimitedError
from kafka_reliable.record import OutgoingRecord
from kafka_reliable.spool import Spool
from tests.helpers.kafka import headers_dict, read_to_end
from tests.helpers.waits import wait_until


def _ids(bootstrap: str, topic: str, expected: int) -> Counter[str]:
    return Counter(headers_dict(m)[H.MESSAGE_ID].decode() for m in read_to_end(bootstrap, topic, at_least=expected))


def _values(bootstrap: str, topic: str, expected: int) -> Counter[bytes]:
    return Counter(m.value() for m in read_to_end(bootstrap, topic, at_least=expected))


def test_rate_limited_send_releases_its_dedup_claim(kafka_bootstrap: str, new_topic, tmp_path: Path) -> None:
    # Given dedup on and a limiter that refuses all but the first record of a second
    topic = new_topic()
    limiter = RateLimiter(records_per_s=1, mode="raise")
    with ReliableKafkaProducer(bootstrap_servers=kafka_bootstrap, spool_path=tmp_path / "s.db",
                               enable_deduplication=True, rate_limiter=limiter) as p:
        refused = 0
        for i in range(3):
            try:
                p.send_message(topic, {"order": i})
            except RateLimitedError:
                refused += 1
        assert refused == 2
        # When the caller, told "not sent", sends the refused ones again later
        again: list[str] = []
        for i in range(3):
            deadline = time.monotonic() + 10
            while True:
                try:
                    again.append(p.send_message(topic, {"order": i}))
                    break
                except RateLimitedError:
                    assert time.monotonic() < deadline
                    time.sleep(0.2)
        assert p.flush(30) == 0
        # Then the one that was sent is a duplicate, the two refused ones are sent now
        assert [p.get_message_status(m) for m in again] == ["duplicate", "sent", "sent"]
    assert _values(kafka_bootstrap, topic, 3) == Counter(b'{"order":%d}' % i for i in range(3))


def test_fail_fast_breaker_and_bad_header_release_the_claim(kafka_bootstrap: str, new_topic, tmp_path: Path) -> None:
    # Given dedup on and a fail-fast breaker that is open
    topic = new_topic()
    breaker = CircuitBreaker(mode="fail_fast", min_calls=1, open_duration_s=0.5)
    with ReliableKafkaProducer(bootstrap_servers=kafka_bootstrap, spool_path=tmp_path / "s.db",
                               enable_deduplication=True, circuit_breaker=breaker) as p:
        breaker.record(False)
        assert breaker.state == "open"
        with pytest.raises(CircuitOpenError):
            p.send_message(topic, {"order": 1})
        # and a header value of a wrong type, refused
        with pytest.raises(ValueError, match="header"):
            p.send_message(topic, {"order": 2}, headers={"trace": 42})  # type: ignore[dict-item]
        assert p.get_pending_messages() == []
        # When both are sent again once the breaker lets records through
        wait_until(breaker.allow, 10, "the breaker lets records through", step_s=0.1)
        a = p.send_message(topic, {"order": 1})
        b = p.send_message(topic, {"order": 2}, headers={"trace": "42"})
        assert p.flush(30) == 0
        # Then both are sent, once
        assert (p.get_message_status(a), p.get_message_status(b)) == ("sent", "sent")
        assert p.get_pending_messages() == []
    assert _values(kafka_bootstrap, topic, 2) == Counter([b'{"order":1}', b'{"order":2}'])


def test_redis_claim_released_when_send_refused(kafka_bootstrap: str, redis_url: str, new_topic, tmp_path: Path) -> None:
    topic = new_topic()
    limiter = RateLimiter(records_per_s=1, mode="raise")
    with ReliableKafkaProducer(bootstrap_servers=kafka_bootstrap, spool_path=tmp_path / "s.db",
                               enable_deduplication=True, redis_url=redis_url, rate_limiter=limiter) as p:
        p.send_message(topic, {"r": 0})
        with pytest.raises(RateLimitedError):
            p.send_message(topic, {"r": 1})
        deadline = time.monotonic() + 10
        while True:
            try:
                mid = p.send_message(topic, {"r": 1})
                break
            except RateLimitedError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert p.flush(30) == 0
        assert p.get_message_status(mid) == "sent"
    assert _values(kafka_bootstrap, topic, 2) == Counter([b'{"r":0}', b'{"r":1}'])


def test_record_too_big_for_every_limit_is_quarantined_not_blocking(
    kafka_bootstrap: str, new_topic, tmp_path: Path
) -> None:
    # Given a spool holding good records around one that Kafka can never take (2 MiB > the
    # client's message.max.bytes and the DLQ's max.message.bytes)
    topic = new_topic()
    path = tmp_path / "s.db"
    spool = Spool(path)
    spool.add([OutgoingRecord("good-1", topic, b"k", b"v1", [(H.MESSAGE_ID, b"good-1")]),
               OutgoingRecord("huge", topic, b"k", os.urandom(2 * 1024 * 1024), [(H.MESSAGE_ID, b"huge")]),
               OutgoingRecord("good-2", topic, b"k", b"v2", [(H.MESSAGE_ID, b"good-2")])], "cluster_unreachable")
    spool.close()
    alerts: list[dict] = []
    with ReliableKafkaProducer(bootstrap_servers=kafka_bootstrap, spool_path=path,
                               maintenance_interval_s=0.2) as p:
        p.add_health_alert_callback(alerts.append)
        # When the spool is drained (the maintenance thread and an explicit drain both run)
        def drained() -> bool:
            if p.spool.count(include_quarantined=False) == 0:
                return True
            p.drain_spool()
            return False

        wait_until(drained, 30, lambda: f"spool drained, holds {p.spool.count(include_quarantined=False)}",
                   step_s=0.2)
        # Then the good ones are delivered once, the huge one is quarantined with its reason
        [q] = p.spool.quarantined()
        assert q.message_id == "huge" and "MSG_SIZE_TOO_LARGE" in (q.quarantine_reason or "")
        for _ in range(3):
            p.drain_spool()  # more passes change nothing
        assert any(a.get("type") == "spool_quarantine" for a in alerts)
    assert _ids(kafka_bootstrap, topic, 2) == Counter({"good-1": 1, "good-2": 1})
    s = Spool(path)
    assert s.count() == 1 and s.summary()["quarantined"] == 1
    s.close()


def test_send_message_of_2mib_ends_in_quarantine_and_others_flow(
    kafka_bootstrap: str, new_topic, tmp_path: Path
) -> None:
    topic = new_topic()
    with ReliableKafkaProducer(bootstrap_servers=kafka_bootstrap, spool_path=tmp_path / "s.db",
                               maintenance_interval_s=0.2) as p:
        before = p.send_message(topic, {"n": "before"})
        huge = p.send_message(topic, os.urandom(2 * 1024 * 1024))
        after = p.send_message(topic, {"n": "after"})
        assert p.flush(30) == 0
        deadline = time.monotonic() + 20
        while p.spool.count(include_quarantined=False) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert p.get_message_status(before) == p.get_message_status(after) == "sent"
        assert p.get_message_status(huge) == "spooled"
        assert [q.message_id for q in p.spool.quarantined()] == [huge]
    assert _ids(kafka_bootstrap, topic, 2) == Counter({before: 1, after: 1})
