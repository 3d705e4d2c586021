"""Python contenders of the throughput race; each runs in its own child process (trial.py).

Every contender: ``warm(topic)`` sends one record and waits for its ack; ``run(topic, n, pool)``
sends ``n`` records (record i = ``pool[i % POOL]`` with ``seq = i``, key ``str(i)``) and returns
only when every one is acknowledged, returning the count acknowledged; ``close()``.
"""

from __future__ import annotations

import inspect
import tempfile
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from bench.suite.common import POOL, RDKAFKA_CONF, bootstrap, dumps, redis_url

BATCH = 1000


class RawConfluent:
    """confluent-kafka ``produce()`` + a per-record delivery callback + the same ``json.dumps``."""

    def __init__(self) -> None:
        self.p = Producer({"bootstrap.servers": bootstrap(), **RDKAFKA_CONF})
        self.acked = 0

    def _cb(self, err: Any, msg: Any) -> None:
        if err is None:
            self.acked += 1

    def warm(self, topic: str) -> None:
        self.p.produce(topic, b"warm", b"warm", on_delivery=self._cb)
        self.p.flush(30)
        self.acked = 0

    def run(self, topic: str, n: int, pool: list[dict[str, Any]]) -> int:
        produce, poll, cb = self.p.produce, self.p.poll, self._cb
        for i in range(n):
            d = pool[i % POOL]
            d["seq"] = i
            v = dumps(d)
            while True:
                try:
                    produce(topic, v, str(i).encode(), on_delivery=cb)
                    break
                except BufferError:
                    poll(0.005)
            if i % 512 == 0:
                poll(0)
        self.p.flush(120)
        return self.acked

    def close(self) -> None:
        self.p.flush(10)


def producer_parameters() -> dict[str, Any]:
    """``ReliableKafkaProducer``'s keyword arguments and their defaults in this version."""
    from kafka_reliable import ReliableKafkaProducer

    params = inspect.signature(ReliableKafkaProducer.__init__).parameters
    return {name: p.default for name, p in params.items() if name != "self"}


def missing_options(options: dict[str, Any]) -> list[str]:
    """The options of a variant this version of ``ReliableKafkaProducer`` does not take."""
    known = producer_parameters()
    return [k for k in options if k not in known]


class Reliable:
    """``ReliableKafkaProducer`` with defaults plus the options of the variant. The spool (or
    write-ahead log) lives in a fresh temporary folder per trial; the row code passes only
    public keywords (``durability``, ``fsync``, ``spool_path``), never the log's internals."""

    def __init__(self, *, batch: bool = False, **options: Any) -> None:
        from kafka_reliable import ReliableKafkaProducer

        self._dir = tempfile.TemporaryDirectory(prefix="bench-spool-")
        self.batch = batch
        self.p = ReliableKafkaProducer(
            bootstrap_servers=bootstrap(),
            producer_config=dict(RDKAFKA_CONF),
            spool_path=Path(self._dir.name) / "spool",
            **options,
        )

    def warm(self, topic: str) -> None:
        self.p.send_message(topic, {"warm": True}, key="warm")
        self.p.flush(30)
        self.base = self.p.get_stats()["messages_sent"]

    def run(self, topic: str, n: int, pool: list[dict[str, Any]]) -> int:
        return self._run_batch(topic, n, pool) if self.batch else self._run_loop(topic, n, pool)

    def _run_loop(self, topic: str, n: int, pool: list[dict[str, Any]]) -> int:
        send = self.p.send_message
        for i in range(n):
            d = pool[i % POOL]
            d["seq"] = i
            send(topic, d, key=str(i))
        self.p.flush(120)
        return int(self.p.get_stats()["messages_sent"]) - self.base

    def _run_batch(self, topic: str, n: int, pool: list[dict[str, Any]]) -> int:
        for start in range(0, n, BATCH):
            chunk = pool[: min(BATCH, n - start)]
            for j, d in enumerate(chunk):
                d["seq"] = start + j
            self.p.send_batch(topic, chunk, key_extractor=_seq_key)
        self.p.flush(120)
        return int(self.p.get_stats()["messages_sent"]) - self.base

    def close(self) -> None:
        self.p.close(30)
        self._dir.cleanup()


def _seq_key(d: dict[str, Any]) -> str:
    return str(d["seq"])


class KafkaPython:
    """kafka-python ``KafkaProducer.send`` (a future per record), flush, every future checked."""

    def __init__(self) -> None:
        from kafka import KafkaProducer

        self.p = KafkaProducer(
            bootstrap_servers=bootstrap(),
            acks="all",
            enable_idempotence=True,
            compression_type="lz4",
            linger_ms=5,
        )

    def warm(self, topic: str) -> None:
        self.p.send(topic, b"warm", key=b"warm").get(30)

    def run(self, topic: str, n: int, pool: list[dict[str, Any]]) -> int:
        send = self.p.send
        futures = []
        for i in range(n):
            d = pool[i % POOL]
            d["seq"] = i
            futures.append(send(topic, dumps(d), key=str(i).encode()))
        self.p.flush(120)
        return sum(1 for f in futures if f.is_done and f.succeeded())

    def close(self) -> None:
        self.p.close(10)


class AioKafka:
    """aiokafka: ``send`` + ``gather`` of the delivery futures per 1,000, or 1,000 concurrent
    ``send_and_wait`` tasks at a time (issue 16's yardstick for awaited sends)."""

    def __init__(self, *, send_and_wait: bool = False) -> None:
        import asyncio

        from aiokafka import AIOKafkaProducer

        self.send_and_wait = send_and_wait
        self.loop = asyncio.new_event_loop()

        async def make() -> Any:
            p = AIOKafkaProducer(
                bootstrap_servers=bootstrap(),
                acks="all",
                enable_idempotence=True,
                compression_type="lz4",
                linger_ms=5,
            )
            await p.start()
            return p

        self.p = self.loop.run_until_complete(make())

    def warm(self, topic: str) -> None:
        self.loop.run_until_complete(self.p.send_and_wait(topic, b"warm", key=b"warm"))

    def run(self, topic: str, n: int, pool: list[dict[str, Any]]) -> int:
        return int(self.loop.run_until_complete(self._run(topic, n, pool)))

    async def _run(self, topic: str, n: int, pool: list[dict[str, Any]]) -> int:
        import asyncio

        acked = 0
        for start in range(0, n, BATCH):
            if self.send_and_wait:
                chunk = pool[: min(BATCH, n - start)]
                for j, d in enumerate(chunk):
                    d["seq"] = start + j
                acked += len(
                    await asyncio.gather(
                        *(
                            self.p.send_and_wait(topic, dumps(d), key=str(d["seq"]).encode())
                            for d in chunk
                        )
                    )
                )
                continue
            futures = []
            for i in range(start, min(n, start + BATCH)):
                d = pool[i % POOL]
                d["seq"] = i
                futures.append(await self.p.send(topic, dumps(d), key=str(i).encode()))
            acked += len(await asyncio.gather(*futures))
        return acked

    def close(self) -> None:
        self.loop.run_until_complete(self.p.stop())
        self.loop.close()


def async_reliable_available() -> str | None:
    """None when ``kafka_reliable.aio.AsyncReliableProducer`` imports, else why not."""
    try:
        from kafka_reliable.aio import AsyncReliableProducer  # noqa: F401
    except ImportError as exc:
        return f"not available ({exc})"
    return None


def make(name: str) -> Any:
    """The contender called ``name`` (see ``PYTHON_CONTENDERS``)."""
    if name.startswith("async-reliable"):
        from bench.suite.contenders_async import AsyncReliable

        return AsyncReliable(concurrent=name.endswith("gather"))
    factory = PYTHON_CONTENDERS.get(name)
    if factory is not None:
        return factory()
    base, _, mode = name.partition("@")
    batch, options = RELIABLE_VARIANTS[base]
    options = {**options, **DURABILITY[mode or "memory"]}
    if options.pop("redis_cluster", False):
        from bench.suite.services import redis_cluster_url

        options["redis_url"] = redis_cluster_url()
    return Reliable(batch=batch, **options)


_REDIS = {"enable_deduplication": True, "dedup_ttl_s": 300}
#: The producer rows: name → (send_batch?, options). Each runs once per durability mode.
RELIABLE_VARIANTS: dict[str, tuple[bool, dict[str, Any]]] = {
    "reliable-send": (False, {}),
    "reliable-send-noid": (False, {"message_id_header": False}),
    "reliable-batch": (True, {}),
    "reliable-send-memdedup": (False, {"enable_deduplication": True}),
    "reliable-batch-redisdedup": (True, {**_REDIS, "redis_url": redis_url()}),
    "reliable-batch-rcdedup": (True, {**_REDIS, "redis_cluster": True}),
}
#: Durability modes of a producer row: ``name`` = memory, ``name@durable`` = the durable log
#: (``durability="spool"``, its fsync default), ``name@fsync-interval`` = fsync every 100 ms.
DURABILITY: dict[str, dict[str, Any]] = {
    "memory": {"durability": "memory"},
    "durable": {"durability": "spool"},
    "fsync-interval": {"durability": "spool", "fsync": "interval", "fsync_interval_ms": 100},
}

PYTHON_CONTENDERS: dict[str, Any] = {
    "raw": RawConfluent,
    "kafka-python": KafkaPython,
    "aiokafka": AioKafka,
    "aiokafka-send-and-wait": lambda: AioKafka(send_and_wait=True),
}
