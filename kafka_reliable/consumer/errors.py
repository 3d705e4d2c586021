"""Errors of the ReliableConsumer (under the library's error root)."""

from __future__ import annotations

from kafka_reliable.errors import KafkaReliableError


class ConsumerError(KafkaReliableError):
    """The consumer could not start or had to stop (the message says why)."""
