"""Shared by the dedup tests on one Redis and on a Redis Cluster: two producer processes
sending the same records at once."""

from __future__ import annotations

import json
import multiprocessing as mp
import random
from pathlib import Path
from typing import Any

import redis

from kafka_reliable.producer import ReliableKafkaProducer
from tests.helpers.kafka import read_to_end


def order_values(n: int) -> list[dict[str, Any]]:
    return [{"order": i, "amount": i * 3 + 1} for i in range(n)]


def _send_in_process(
    bootstrap: str, url: str, topic: str, n: int, order_seed: int,
    barrier: Any, out: Any, spool: str, batch: int, as_client: bool,
) -> None:  # fmt: skip
    """One producer process: the same n records, in its own order, in batches of ``batch``;
    Redis given as a client (``as_client``) or as a URL."""
    values = order_values(n)
    random.Random(order_seed).shuffle(values)
    redis_args = {"redis_client": redis.Redis.from_url(url)} if as_client else {"redis_url": url}
    producer = ReliableKafkaProducer(
        bootstrap_servers=bootstrap, enable_deduplication=True, spool_path=spool, **redis_args
    )
    sent = duplicates = 0
    try:
        barrier.wait(timeout=60)
        for i in range(0, n, batch):
            chunk = values[i : i + batch]
            result = producer.send_batch(topic, chunk, key_extractor=lambda v: str(v["order"]))
            sent += result["sent"]
            duplicates += result["duplicates"]
    finally:
        producer.close()
    out.put((sent, duplicates))


def two_producers_send_once(
    bootstrap: str, url: str, topic: str, n: int, spool_dir: Path, *, batch: int, as_client: bool
) -> None:
    """Two producer processes send the same ``n`` records at once through dedup on ``url``:
    together they send each exactly once, and the topic (read to its watermarks) holds ``n``."""
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    procs = []
    for seed in (1, 2):
        spool = str(spool_dir / f"spool-{seed}.db")
        args = (bootstrap, url, topic, n, seed, barrier, out, spool, batch, as_client)
        procs.append(ctx.Process(target=_send_in_process, args=args))
    for p in procs:
        p.start()
    results = [out.get(timeout=180) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert [p.exitcode for p in procs] == [0, 0]
    assert sum(s for s, _ in results) == n
    assert sum(d for _, d in results) == n
    records = read_to_end(bootstrap, topic, at_least=n)
    assert sorted(json.loads(m.value() or b"null")["order"] for m in records) == list(range(n))
