"""Optional services a row needs, and why a row cannot run when one is missing."""

from __future__ import annotations

import importlib
import os
from typing import Any


def redis_cluster_url() -> str | None:
    """The Redis Cluster of the Redis-Cluster dedup row: ``REDIS_CLUSTER_URL``, else the dev
    cluster of ``kafka-reliable dev-redis start --cluster 3`` when that module says one runs."""
    url = os.environ.get("REDIS_CLUSTER_URL")
    if url:
        return url
    try:
        dev = importlib.import_module("kafka_reliable.dev.redis_cluster")
    except ImportError:
        return None
    for name in ("running_url", "cluster_url", "url"):
        fn = getattr(dev, name, None)
        if callable(fn):
            try:
                found = fn()
            except Exception:  # noqa: BLE001 - no cluster running: the row says so
                return None
            return str(found) if found else None
    return None


def redis_cluster_problem() -> str | None:
    """None when a Redis Cluster answers, else why the row is not measured."""
    url = redis_cluster_url()
    if url is None:
        return (
            "not available (no Redis Cluster: start one with `kafka-reliable dev-redis start "
            "--cluster 3` or set REDIS_CLUSTER_URL)"
        )
    try:
        from redis.cluster import RedisCluster

        client: Any = RedisCluster.from_url(url, socket_timeout=3)
        client.ping()
        client.close()
    except Exception as exc:  # noqa: BLE001 - any failure means the row cannot run
        return f"not available (Redis Cluster at {_redact(url)} does not answer: {exc})"
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
