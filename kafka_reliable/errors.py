"""One error root for the library."""

from __future__ import annotations


class KafkaReliableError(Exception):
    """Root of every error this library raises."""
