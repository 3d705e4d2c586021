"""Before the worker consumes: a bounded wait for the cluster, then the topics it needs.

Companion topics are created for a source topic that exists (with its partition count). For a
source topic that does not exist nothing is created unless asked (``create_topics``): its
``.retry`` topic is consumed when it already exists, else the subscription waits for it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException

from kafka_reliable.client_errors import ErrorNotes
from kafka_reliable.errors import KafkaReliableError
from kafka_reliable.topics import CompanionTopics
from kafka_reliable.worker.settings import WorkerConfig

log = logging.getLogger(__name__)

#: Longest single metadata request while waiting for the cluster (a stop request is seen
#: between two).
METADATA_REQUEST_S = 1.0


class WorkerError(KafkaReliableError):
    """The worker could not start or had to stop (the message says why)."""


def wait_for_cluster(
    companions: CompanionTopics, cfg: WorkerConfig, notes: ErrorNotes, stopping: Callable[[], bool]
) -> Any:
    """The cluster's metadata (every topic), within ``cfg.startup_timeout_s``; WorkerError after,
    None when ``stopping()`` says the worker was asked to stop meanwhile."""
    deadline = time.monotonic() + cfg.startup_timeout_s
    while not stopping():
        remaining = deadline - time.monotonic()
        try:
            return companions.admin.list_topics(
                timeout=max(0.1, min(remaining, METADATA_REQUEST_S))
            )
        except KafkaException as exc:
            err = exc.args[0] if exc.args else exc
            last = f"{err.name()}: {err.str()}" if isinstance(err, KafkaError) else str(err)
        companions.admin.poll(0)  # serves the admin client's error_cb
        if notes.fatal is not None:
            raise WorkerError(f"cannot connect to {cfg.bootstrap_servers}: {notes.fatal}")
        if time.monotonic() >= deadline:
            raise WorkerError(
                f"no broker at {cfg.bootstrap_servers} answered within {cfg.startup_timeout_s:g} s "
                f"(--startup-timeout-s); last error: {last}"
            )
        notes.note("waiting for the cluster", last)
        time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
    return None


def prepare_topics(companions: CompanionTopics, cfg: WorkerConfig, metadata: Any) -> None:
    """Companion topics of the source topics (``--topics``): see the module docstring."""
    existing = set(metadata.topics)
    for source in cfg.topics:
        retry = cfg.naming.retry_topic(source)
        if source in existing or cfg.create_topics:
            made = [t for t in (retry, cfg.naming.dlq_topic(source)) if t not in existing]
            companions.ensure(source)
            if made and source not in existing:
                log.info(
                    "source topic %s does not exist; created %s as asked (--create-topics)",
                    source,
                    " and ".join(made),
                )
        elif retry in existing:
            log.info(
                "source topic %s does not exist; consuming its existing %s (nothing created)",
                source,
                retry,
            )
        else:
            log.warning(
                "source topic %s does not exist: %s and %s are not created (pass --create-topics "
                "to create them); consuming %s once it appears",
                source,
                retry,
                cfg.naming.dlq_topic(source),
                retry,
            )
