"""AsyncReliableProducer on the real broker: awaited ids, routed records raise with their status,
cancellation never loses a record, closing with records in flight spools them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kafka_reliable import RetryConfig
from kafka_reliable import headers as H
from kafka_reliable.aio import AsyncReliableProducer, DeliveryRoutedError
from kafka_reliable.errors import ProducerClosedError, SerializationError
from tests.helpers.kafka import headers_dict, read_to_end, unique_name


def _ids(bootstrap: str, topic: str, expected: int) -> list[str]:
    return [headers_dict(m)[H.MESSAGE_ID].decode() for m in read_to_end(bootstrap, topic, at_least=expected)]


def test_awaited_sends_resolve_to_delivered_ids(kafka_bootstrap: str, new_topic, tmp_path: Path) -> None:
    # Given
    topic = new_topic(partitions=3)

    async def main() -> tuple[list[str], list[str], dict, list[str | None]]:
        async with AsyncReliableProducer(bootstrap_servers=kafka_bootstrap, spool_path=tmp_path / "s.db") as p:
            # When: 300 concurrent awaited sends, 200 queued ones and a batch of 500
            awaited = await asyncio.gather(*(p.send_message(topic, {"i": i}, key=str(i)) for i in range(300)))
            queued = [await p.send_message(topic, {"q": i}, key=str(i), wait=False) for i in range(200)]
            batch = await p.send_batch(topic, [{"b": i} for i in range(500)], key_extractor=lambda m: str(m["b"]))
            assert await p.flush(30) == 0
            statuses = [p.get_message_status(m) for m in awaited + queued]
            stats = await p.get_stats()
            assert stats["messages_sent"] == 1000 and stats["messages_failed"] == 0
            return awaited, queued, batch, statuses

    awaited, queued, batch, statuses = asyncio.run(main())
    # Then: every awaited id was acknowledged when it resolved, and Kafka holds each id once
    assert set(statuses) == {"sent"}
    assert batch["total"] == batch["sent"] == 500 and batch["failed"] == batch["pending"] == 0
    ids = _ids(kafka_bootstrap, topic, 1000)
    assert sorted(ids) == sorted(awaited + queued + batch["message_ids"])


def test_routed_records_raise_with_status_and_error_class(kafka_bootstrap: str, new_topic, tmp_path: Path) -> None:
    # Given a topic that takes at most 10 kB per record, and a topic that does not exist
    # (auto-creation is off): a record that can never fit, and one that times out
    small = new_topic(config={"max.message.bytes": "10000"})
    good = new_topic()
    missing = unique_name("aio-missing")

    async def main() -> list[object]:
        async with AsyncReliableProducer(
            bootstrap_servers=kafka_bootstrap, spool_path=tmp_path / "s.db",
            retry_config=RetryConfig(max_retries=3, initial_delay_ms=60_000, max_delay_ms=60_000, jitter=False),
            producer_config={"compression_type": "none", "delivery_timeout_ms": 2000, "request_timeout_ms": 1000},
        ) as p:
            # When: the impossible records are awaited together with ordinary ones
            results = await asyncio.gather(
                p.send_message(small, b"x" * 50_000, key="big"),
                p.send_message(missing, {"n": 1}, key="m"),
                *(p.send_message(good, {"i": i}) for i in range(50)),
                return_exceptions=True,
            )
            results.append(await p.send_message(small, {"fits": True}))
            with pytest.raises(SerializationError):  # bad input: raised at once, nothing sent
                await p.send_message(good, object())
            return results

    big, late, *rest = asyncio.run(main())
    # Then: each impossible record raised with where it went and why; nothing else was held up
    assert isinstance(big, DeliveryRoutedError)
    assert (big.status, big.error_class) == ("dlq", "MessageSizeTooLargeError")
    assert isinstance(late, DeliveryRoutedError) and late.status == "retrying"
    assert late.error_class in ("KafkaTimeoutError", "UnknownTopicOrPartitionError")
    assert all(isinstance(r, str) for r in rest), [r for r in rest if not isinstance(r, str)]
    assert _ids(kafka_bootstrap, small + ".dlq", 1) == [big.message_id]
    assert _ids(kafka_bootstrap, missing + ".retry", 1) == [late.message_id]
    assert len(_ids(kafka_bootstrap, good, 50)) == 50


def test_cancelled_awaiting_task_still_delivers(kafka_bootstrap: str, new_topic, tmp_path: Path) -> None:
    # Given
    topic = new_topic()

    async def main() -> tuple[int, list[str]]:
        async with AsyncReliableProducer(bootstrap_servers=kafka_bootstrap, spool_path=tmp_path / "s.db") as p:
            # When: each awaiting task is cancelled before Kafka could answer
            tasks = [asyncio.ensure_future(p.send_message(topic, {"i": i}, key=str(i))) for i in range(20)]
            # and a batch whose task is cancelled half-way through handing its records over
            batch = asyncio.ensure_future(p.send_batch(topic, [{"i": i} for i in range(20, 1000)],
                                                       key_extractor=lambda m: str(m["i"])))
            await asyncio.sleep(0)  # the calls have been made
            for t in [*tasks, batch]:
                t.cancel()
            for t in [*tasks, batch]:
                with pytest.raises(asyncio.CancelledError):
                    await t
            assert await p.flush(30) == 0  # flush waits for what calls already made hand over
            stats = await p.get_stats()
            return stats["messages_sent"], p.get_pending_messages()

    sent, pending = asyncio.run(main())
    # Then: all 1,000 were delivered anyway, once each
    assert (sent, pending) == (1000, [])
    got = read_to_end(kafka_bootstrap, topic, at_least=1000)
    assert sorted(int(m.key()) for m in got) == list(range(1000))


def test_close_with_records_in_flight_spools_them(kafka_bootstrap: str, tmp_path: Path) -> None:
    # Given records in flight that Kafka cannot take before the producer closes
    # (a topic that does not exist, with a long delivery timeout)
    missing = unique_name("aio-inflight")
    spool = tmp_path / "s.db"

    async def main() -> list[object]:
        p = AsyncReliableProducer(bootstrap_servers=kafka_bootstrap, spool_path=spool,
                                  producer_config={"delivery_timeout_ms": 120_000})
        await p.start()
        tasks = [asyncio.ensure_future(p.send_message(missing, {"i": i}, key=str(i))) for i in range(30)]
        while len(p.get_pending_messages()) < 30:
            await asyncio.sleep(0.01)
        # When the producer closes with a short timeout
        await p.close(timeout=1.0)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        with pytest.raises(ProducerClosedError):
            await p.send_message(missing, {"late": 1})
        return results

    results = asyncio.run(main())
    # Then: every awaiting caller was told "spooled", and the spool holds every record
    assert all(isinstance(r, DeliveryRoutedError) and (r.status, r.error_class) == ("spooled", "KafkaTimeoutError")
               for r in results), results
    from kafka_reliable.spool import Spool

    s = Spool(spool)
    try:
        assert s.summary()["records"] == 30
    finally:
        s.close()


def test_blocking_admission_and_a_full_queue_never_block_the_loop(kafka_bootstrap: str, new_topic,
                                                                  tmp_path: Path) -> None:
    # Given a rate limiter that makes a send wait 0.5 s (mode="block") in durable mode, and a
    # producer whose librdkafka queue holds 500 records
    from kafka_reliable.health import RateLimiter

    topic = new_topic()

    async def main() -> tuple[int, list[str | None], int, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        async with AsyncReliableProducer(
            bootstrap_servers=kafka_bootstrap, spool_path=tmp_path / "d.db", durability="spool",
            rate_limiter=RateLimiter(records_per_s=2, burst_s=0.5, mode="block"),
        ) as limited:
            first = await limited.send_message(topic, {"n": 1})
            t = asyncio.ensure_future(ticker())
            await asyncio.sleep(0)
            # When the second send waits for the limiter
            second = await limited.send_message(topic, {"n": 2})
            during_wait = ticks
            statuses = [limited.get_message_status(m) for m in (first, second)]
        async with AsyncReliableProducer(bootstrap_servers=kafka_bootstrap, spool_path=tmp_path / "q.db",
                                         producer_config={"queue.buffering.max.messages": 500}) as small:
            # and 5,000 records are queued through a 500-record librdkafka queue
            for i in range(5000):
                await small.send_message(topic, {"i": i}, wait=False)
            assert await small.flush(30) == 0
            sent = (await small.get_stats())["messages_sent"]
        t.cancel()
        return during_wait, statuses, sent, ticks

    during_wait, statuses, sent, _ = asyncio.run(main())
    # Then the loop kept running while the limiter held the send (a sleep on the loop would
    # have let the ticker run 0 times), and the full queue was waited for, not failed
    assert during_wait >= 5
    assert statuses == ["sent", "sent"]
    assert sent == 5000
    assert len(read_to_end(kafka_bootstrap, topic, at_least=5002)) == 5002


def test_open_circuit_breaker_spools_or_refuses(kafka_bootstrap: str, new_topic, tmp_path: Path) -> None:
    # Given circuit breakers tripped by failures (they stay open for a minute)
    from kafka_reliable.health import CircuitBreaker, CircuitOpenError

    topic = new_topic()
    spooling = CircuitBreaker(mode="spool", min_calls=1, open_duration_s=60)
    refusing = CircuitBreaker(mode="fail_fast", min_calls=1, open_duration_s=60)
    for b in (spooling, refusing):
        b.record(False)
        assert b.state == "open"

    async def main() -> tuple[list[object], int]:
        async with AsyncReliableProducer(bootstrap_servers=kafka_bootstrap, spool_path=tmp_path / "s.db",
                                         circuit_breaker=spooling) as p:
            # When records are awaited while the breaker is open (spool mode)
            routed = await asyncio.gather(*(p.send_message(topic, {"i": i}) for i in range(5)),
                                          return_exceptions=True)
            in_spool = (await p.get_stats())["spool_size"]
        async with AsyncReliableProducer(bootstrap_servers=kafka_bootstrap, spool_path=tmp_path / "f.db",
                                         circuit_breaker=refusing, enable_deduplication=True) as f:
            # and in fail_fast mode: refused at once, nothing sent, the dedup claim given back
            with pytest.raises(CircuitOpenError):
                await f.send_message(topic, {"x": 1})
            refusing._set("closed")
            assert await f.send_message(topic, {"x": 1}) != ""
        return routed, in_spool

    routed, in_spool = asyncio.run(main())
    # Then the callers were told "spooled" (no delivery error: the breaker kept them) and the
    # spool holds them
    assert all(isinstance(r, DeliveryRoutedError) and (r.status, r.error_class) == ("spooled", None)
               for r in routed), routed
    assert in_spool == 5
    assert [m.value() for m in read_to_end(kafka_bootstrap, topic, at_least=1)] == [b'{"x":1}']


def test_a_producer_belongs_to_the_loop_that_started_it(kafka_bootstrap: str, tmp_path: Path) -> None:
    # Given a producer started in one event loop
    p = AsyncReliableProducer(bootstrap_servers=kafka_bootstrap, spool_path=tmp_path / "s.db")
    asyncio.run(p.start())

    async def other_loop() -> None:
        # When another loop awaits a send: refused in one line, nothing sent
        with pytest.raises(RuntimeError, match="event loop that started it"):
            await p.send_message("aio-other-loop", {"n": 1})
        stats = await p.get_stats()
        assert stats["messages_sent"] == 0 and stats["messages_pending"] == 0
        await p.close()

    asyncio.run(other_loop())
