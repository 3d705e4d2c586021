"""Pure parts of kafka_reliable.aio: the settle hub (thread → loop) and the consumer's runner
(serials, holds, concurrency). No broker."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Hashable
from types import SimpleNamespace
from typing import Any

from kafka_reliable.aio.consumer import Runner
from kafka_reliable.aio.engine import Work
from kafka_reliable.aio.settle import DELIVER_SLICE, SettleHub
from kafka_reliable.consumer import ConsumerRecord
from kafka_reliable.consumer.invoke import Call, Invoker


def test_settle_hub_resolves_awaited_ids_from_another_thread_in_slices() -> None:
    async def main() -> None:
        # Given 300 awaited ids and 100 nobody awaits
        hub = SettleHub(asyncio.get_running_loop())
        futs = {f"m{i}": hub.expect(f"m{i}") for i in range(300)}
        # When a producer thread settles all of them (the error class comes with the outcome)
        def settle_all() -> None:
            for i in range(400):
                if i == 7:
                    hub.on_watch(f"m{i}", "dlq", "MessageSizeTooLargeError")
                else:
                    hub.on_watch(f"m{i}", "sent", None)

        t = threading.Thread(target=settle_all)
        t.start()
        t.join()
        # Then one turn of the loop resolves at most DELIVER_SLICE, the next turns the rest
        await asyncio.sleep(0)
        assert sum(f.done() for f in futs.values()) <= DELIVER_SLICE
        await asyncio.wait(list(futs.values()), timeout=5)
        assert all(f.done() for f in futs.values())
        assert futs["m7"].result() == ("dlq", "MessageSizeTooLargeError")
        assert futs["m8"].result() == ("sent", None)
        assert hub.waiting == 0

    asyncio.run(main())


def test_settle_hub_resolve_all_uses_the_known_status() -> None:
    async def main() -> None:
        hub = SettleHub(asyncio.get_running_loop())
        a, b = hub.expect("a"), hub.expect("b")
        hub.on_watch("a", "sent", None)
        hub.resolve_all({"b": "spooled"}.get)
        assert (a.result(), b.result()) == (("sent", None), ("spooled", None))

    asyncio.run(main())


class FakeCalls:
    """What the runner asks of the engine's call driver: stale / done / invoker."""

    def __init__(self, local_retries: int) -> None:
        s = SimpleNamespace(local_retries=local_retries, local_retry_delay_ms=0,
                            non_retriable_exceptions=())
        self.invoker = Invoker(s=s, naming=None, stats=None, metrics=None, health=None,  # type: ignore[arg-type]
                               stop=threading.Event())
        self.outcomes: list[Work] = []
        self.stale_tps: set[Any] = set()

    def stale(self, w: Work) -> bool:
        return w.call.tp in self.stale_tps

    def done(self, w: Work) -> None:
        self.outcomes.append(w)


class Outcome:
    """A finished work as the tests read it."""

    def __init__(self, w: Work) -> None:
        c = w.call
        self.offset, self.failed, self.ok_s, self.returned = c.offset, c.failed, c.ok_s, w.returned
        self.skipped, self.failures = c.skipped, c.failures or []


def _work(serial: Hashable | None, offset: int, *, tp: Any = ("t", 0), holds: bool = False) -> Work:
    call = Call("t", tp[1], offset, b"k", {"o": offset}, [], 0, f"id-{offset}", 0, None, "g",
                None, None, tp, offset, 1, None, None, None)
    return Work(call, serial, holds_on_failure=holds)


class _Seen:
    def __init__(self, calls: FakeCalls) -> None:
        self.calls = calls

    @property
    def outcomes(self) -> list[Outcome]:
        return [Outcome(w) for w in self.calls.outcomes]

    @property
    def stale_tps(self) -> set[Any]:
        return self.calls.stale_tps


def _runner(handler: Any, concurrency: int = 10, local_retries: int = 0) -> tuple[Runner, _Seen]:
    r = Runner(handler, concurrency)
    calls = FakeCalls(local_retries)
    r.calls = calls  # type: ignore[assignment]
    return r, _Seen(calls)


def test_runner_one_serial_in_order_different_serials_concurrently_within_the_limit() -> None:
    async def main() -> None:
        running: dict[Hashable, int] = {}
        seen: list[tuple[Hashable, int]] = []
        peak = [0, 0]

        async def handler(rec: ConsumerRecord) -> None:
            key = rec.partition
            assert running.get(key, 0) == 0, "two records of one serial at once"
            running[key] = 1
            peak[0] += 1
            peak[1] = max(peak[1], peak[0])
            seen.append((key, rec.offset))
            await asyncio.sleep(0.001)
            running[key] = 0
            peak[0] -= 1

        r, engine = _runner(handler, concurrency=3)
        # Given 5 partitions x 4 records, submitted in two batches
        works = [_work(("t", p), o, tp=("t", p)) for o in range(4) for p in range(5)]
        r.submit(works[:10])
        r.submit(works[10:])
        await asyncio.wait_for(asyncio.gather(*r.tasks), 5)
        # Then each partition's records ran in offset order, at most 3 at once, more than 1
        for p in range(5):
            assert [o for k, o in seen if k == p] == [0, 1, 2, 3]
        assert peak[1] == 3
        assert len(engine.outcomes) == 20 and all(w.ok_s is not None for w in engine.outcomes)

    asyncio.run(main())


def test_runner_holds_a_serial_after_a_failure_until_released() -> None:
    async def main() -> None:
        gate = asyncio.Event()

        async def handler(rec: ConsumerRecord) -> None:
            if rec.offset == 0:
                await gate.wait()
                raise ValueError("first fails")

        r, engine = _runner(handler)
        serial = ("t", 0, b"k")
        # Given a key's first record in flight and two queued behind it
        r.submit([_work(serial, 0, holds=True), _work(serial, 1, holds=True), _work(serial, 2, holds=True)])
        await asyncio.sleep(0)
        # When the first fails
        gate.set()
        await asyncio.wait_for(asyncio.gather(*r.tasks), 5)
        # Then the failure comes back first, the others handed back unrun, in order
        assert [(w.offset, w.failed is not None, w.returned) for w in engine.outcomes] == [
            (0, True, False), (1, False, True), (2, False, True)]
        # and a record submitted before the engine's release is handed back too; after it, runs
        r.submit([_work(serial, 3, holds=True)])
        assert engine.outcomes[-1].offset == 3 and engine.outcomes[-1].returned
        r.submit([("release", serial), _work(serial, 1, holds=True)])
        await asyncio.wait_for(asyncio.gather(*r.tasks), 5)
        assert engine.outcomes[-1].offset == 1 and engine.outcomes[-1].ok_s is not None

    asyncio.run(main())


def test_runner_skips_works_of_revoked_partitions_and_local_retries() -> None:
    async def main() -> None:
        calls: list[int] = []

        async def handler(rec: ConsumerRecord) -> None:
            calls.append(rec.offset)
            if len([c for c in calls if c == rec.offset]) < 2:
                raise ValueError("once")

        r, engine = _runner(handler, local_retries=1)
        engine.stale_tps.add(("t", 1))
        # When a work of a revoked partition and one failing once (one local retry) are submitted
        r.submit([_work(("t", 1), 0, tp=("t", 1)), _work(("t", 0), 5)])
        await asyncio.wait_for(asyncio.gather(*r.tasks), 5)
        # Then the first is skipped unrun, the second succeeded on its local retry
        by_offset = {w.offset: w for w in engine.outcomes}
        assert by_offset[0].skipped and calls.count(0) == 0
        assert by_offset[5].ok_s is not None and [n for n, _ in by_offset[5].failures] == ["ValueError"]

    asyncio.run(main())


def test_producer_refuses_an_async_redis_client_and_unknown_keywords() -> None:
    import pytest
    import redis.asyncio as aredis

    from kafka_reliable.aio import AsyncReliableProducer
    from kafka_reliable.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="redis_url"):
        AsyncReliableProducer(enable_deduplication=True, redis_client=aredis.Redis())
    with pytest.raises(TypeError, match="bootstrap_server"):
        AsyncReliableProducer(bootstrap_server="localhost:9092")
