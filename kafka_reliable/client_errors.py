"""librdkafka client callbacks for every part: errors logged once per kind and window, and the
client configuration that routes librdkafka's own log lines through Python logging.

A client that cannot reach its cluster hears ``_TRANSPORT`` and ``_ALL_BROKERS_DOWN`` in turn,
many times a second; each kind of error is logged when first seen, then at most once per
``window_s`` with the number of repeats in between. ``with_logger(conf)`` adds the
``logger`` key (``logs.client_logger``) so librdkafka does not print to stderr itself.
Used by the retry worker and the ReliableConsumer (and the CLI's clients).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError

from kafka_reliable.logs import client_logger

log = logging.getLogger("kafka_reliable.client")

#: Seconds during which a repeated error is counted instead of logged.
DEFAULT_WINDOW_S = 30.0


def with_logger(conf: dict[str, Any]) -> dict[str, Any]:
    """``conf`` with librdkafka's log lines going to Python logging
    (``kafka_reliable.librdkafka``)."""
    conf.setdefault("logger", client_logger())
    return conf


class ErrorNotes:
    """The last client error (for the recovery line) and rate-limited warnings.

    ``logger``: where the lines go (each part passes its own, so ``-v`` filters stay per part).
    """

    def __init__(
        self,
        *,
        window_s: float = DEFAULT_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger | None = None,
    ) -> None:
        self.log = logger or log
        self.window_s = window_s
        self._clock = clock
        #: kind -> (time last logged, repeats since)
        self._seen: dict[str, tuple[float, int]] = {}
        self.last: str | None = None
        #: An error no retry will cure (wrong credentials): startup gives up at once with it.
        self.fatal: str | None = None

    def on_client_error(self, err: Any) -> None:
        """``error_cb`` of a client: an authentication failure is remembered as fatal."""
        if isinstance(err, KafkaError) and err.code() == KafkaError._AUTHENTICATION:
            self.fatal = f"authentication failed: {err.str()}"

    def note(self, where: str, err: Any) -> bool:
        """Remember an error; log it unless the same kind was logged within the window.
        Returns whether a line was logged."""
        kind = f"{where}: {err.name() if isinstance(err, KafkaError) else err}"
        self.last = kind
        now = self._clock()
        seen = self._seen.get(kind)
        if seen is not None and now - seen[0] < self.window_s:
            self._seen[kind] = (seen[0], seen[1] + 1)
            return False
        self._seen[kind] = (now, 0)
        detail = f" ({err.str()})" if isinstance(err, KafkaError) else ""
        repeats = (
            f" [repeated {seen[1]} times in the last {now - seen[0]:.0f} s]"
            if seen and seen[1]
            else ""
        )
        self.log.warning("%s%s%s", kind, detail, repeats)
        return True

    def recovered(self, what: str, after: str = "") -> None:
        """Log one line when work succeeds again after an error (one whose kind starts with
        ``after``, when given); forget the errors."""
        if self.last is not None and self.last.startswith(after):
            self.log.info("%s again after %s", what, self.last)
            self.last = None
            self._seen.clear()


def read_stats(raw: str) -> dict[str, Any] | None:
    """librdkafka's ``stats_cb`` JSON, or None when it does not parse."""
    try:
        stats = json.loads(raw)
    except ValueError:
        return None
    return stats if isinstance(stats, dict) else None
