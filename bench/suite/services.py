"""Optional services a row needs, and why a row cannot run when one is missing."""

from __future__ import annotations

import os


def redis_cluster_url() -> str | None:
    """The Redis Cluster of the Redis-Cluster dedup row: ``REDIS_CLUSTER_URL``
    (``redis+cluster://host:port,…``), else the dev cluster of ``kafka-reliable dev-redis start
    --cluster 3`` when it runs."""
    url = os.environ.get("REDIS_CLUSTER_URL")
    if url:
        return url
    from kafka_reliable.dev.redis_cluster import DevRedisCluster

    dev = DevRedisCluster()
    return dev.url if dev.running() else None


def redis_cluster_problem() -> str | None:
    """None when there is a Redis Cluster to measure, else why the row is not measured."""
    if redis_cluster_url() is None:
        return (
            "not available (no Redis Cluster: start one with `kafka-reliable dev-redis start "
            "--cluster 3` or set REDIS_CLUSTER_URL)"
        )
    return None


def redis_problem(url: str) -> str | None:
    """None when the Redis at ``url`` answers, else why the Redis rows are not measured."""
    try:
        import redis

        client = redis.Redis.from_url(url, socket_timeout=3)
        client.ping()
        client.close()
    except Exception as exc:  # noqa: BLE001
        return f"not available (Redis at {_redact(url)} does not answer: {exc})"
    return None


def _redact(url: str) -> str:
    from kafka_reliable.config import redact_url

    return str(redact_url(url))
