"""The retry worker: republishes ``<topic>.retry`` records when due — never early, never lost."""

from __future__ import annotations

from kafka_reliable.worker.settings import WorkerConfig
from kafka_reliable.worker.worker import RetryWorker, WorkerError

__all__ = ["RetryWorker", "WorkerConfig", "WorkerError"]
