"""Moved to ``tests.helpers.kafka``; this name stays for the modules not yet updated."""

from __future__ import annotations

from tests.helpers.kafka import (
    consume_all,
    create_topic,
    headers_dict,
    topic_count,
    unique_name,
    wait_for_topic,
)

__all__ = ["consume_all", "create_topic", "headers_dict", "topic_count", "unique_name", "wait_for_topic"]
