"""kafka-reliable: reliable producing to Apache Kafka."""

from __future__ import annotations

__version__ = "0.1.0"
