"""librdkafka's log lines through Python logging: deduplicated and rate-limited.

Without a ``logger`` in its config, librdkafka prints every line to stderr itself: a client
that cannot reach its brokers repeats the same ``Connect to … failed`` line many times a
second. ``client_logger()`` gives a Python logger to pass as confluent-kafka's ``logger``
config key; its :class:`RepeatFilter` lets the first line of a kind through, counts the
repeats, and reports the count when the same line comes back after the window (or at
``flush_repeats()``). Levels are Python's, so ``-v`` / ``-q`` (or the application's own
logging setup) decide what is shown.

confluent-kafka hands log lines over on ``poll()`` / ``flush()`` / ``consume()``: a client that is
never polled (an AdminClient used only for ``list_topics``) holds them until it is.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

#: Name of the logger librdkafka's lines go to.
LIBRDKAFKA_LOGGER = "kafka_reliable.librdkafka"
#: Seconds during which a repeated line is counted instead of shown.
DEFAULT_WINDOW_S = 30.0
#: Lines let through per window, all kinds together; more are counted as dropped.
DEFAULT_MAX_LINES = 20
#: Distinct kinds of line remembered (oldest forgotten first).
MAX_KINDS = 512

# Parts of a librdkafka line that change between repeats of the same event.
_VARYING = re.compile(
    r"rdkafka#(?:producer|consumer)-\d+"  # client instance
    r"|after \d+ms"  # "(after 0ms in state CONNECT)"
    r"|\d+/\d+ brokers"  # "1/1 brokers are down"
    r"|\d+ identical error\(s\) suppressed"
    r"|\d+ request\(s\)"
)


def line_kind(message: str) -> str:
    """The message with its per-repeat parts blanked: equal kinds are the same event."""
    return _VARYING.sub("#", message)


@dataclass
class _Kind:
    level: int
    message: str
    window_start: float
    repeats: int = 0


class RepeatFilter(logging.Filter):
    """Lets the first line of a kind through per window; counts the rest.

    A line of a kind already shown within ``window_s`` is dropped and counted; the next line
    of that kind after the window carries ``[repeated N times in the last S s]``. At most
    ``max_lines`` lines pass per window in total; the next one to pass says how many were
    dropped over that cap.
    """

    def __init__(
        self,
        window_s: float = DEFAULT_WINDOW_S,
        max_lines: int = DEFAULT_MAX_LINES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.window_s = window_s
        self.max_lines = max_lines
        self._clock = clock
        self._kinds: OrderedDict[str, _Kind] = OrderedDict()
        self._lock = threading.Lock()
        self._budget_start = self._clock()
        self._budget_used = 0
        self._over_cap = 0

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        now = self._clock()
        with self._lock:
            kind = line_kind(message)
            seen = self._kinds.get(kind)
            if seen is not None and now - seen.window_start < self.window_s:
                seen.repeats += 1
                return False
            if not self._take_budget(now):
                return False
            notes = []
            if seen is not None and seen.repeats:
                notes.append(
                    f"repeated {seen.repeats} times in the last {now - seen.window_start:.0f} s"
                )
            if self._over_cap:
                notes.append(f"{self._over_cap} other librdkafka lines dropped over the rate limit")
                self._over_cap = 0
            self._remember(kind, _Kind(record.levelno, message, now))
        if notes:
            record.msg, record.args = f"{message} [{'; '.join(notes)}]", None
        return True

    def _take_budget(self, now: float) -> bool:
        if now - self._budget_start >= self.window_s:
            self._budget_start, self._budget_used = now, 0
        if self._budget_used >= self.max_lines:
            self._over_cap += 1
            return False
        self._budget_used += 1
        return True

    def _remember(self, kind: str, entry: _Kind) -> None:
        self._kinds[kind] = entry
        self._kinds.move_to_end(kind)
        while len(self._kinds) > MAX_KINDS:
            self._kinds.popitem(last=False)

    def take_repeats(self) -> list[tuple[int, str, int]]:
        """``(level, message, repeats)`` of every kind with uncounted repeats; resets them."""
        with self._lock:
            out = [(k.level, k.message, k.repeats) for k in self._kinds.values() if k.repeats]
            for k in self._kinds.values():
                k.repeats = 0
            over, self._over_cap = self._over_cap, 0
        if over:
            out.append((logging.WARNING, "librdkafka lines dropped over the rate limit", over))
        return out


_setup_lock = threading.Lock()


def client_logger(
    name: str = LIBRDKAFKA_LOGGER,
    *,
    window_s: float = DEFAULT_WINDOW_S,
    max_lines: int = DEFAULT_MAX_LINES,
) -> logging.Logger:
    """The logger to pass as ``conf["logger"]`` to any confluent-kafka client.

    The same logger (and one :class:`RepeatFilter`) is returned for the same name, so every
    client of the process shares one dedup state and one rate limit.
    """
    logger = logging.getLogger(name)
    with _setup_lock:
        if not any(isinstance(f, RepeatFilter) for f in logger.filters):
            logger.addFilter(RepeatFilter(window_s=window_s, max_lines=max_lines))
    return logger


def flush_repeats(name: str = LIBRDKAFKA_LOGGER) -> int:
    """Log the pending repeat counts (one line per kind); return how many lines were counted.

    Call it before a short-lived process exits, so a count is never lost.
    """
    logger = logging.getLogger(name)
    total = 0
    for f in logger.filters:
        if isinstance(f, RepeatFilter):
            for level, message, repeats in f.take_repeats():
                total += repeats
                if logger.isEnabledFor(level):
                    # straight to the handlers: the filter would take this line for a new kind
                    logger.callHandlers(
                        logger.makeRecord(
                            logger.name,
                            level,
                            __file__,
                            0,
                            "%s [repeated %d more times]",
                            (message, repeats),
                            None,
                        )
                    )
    return total
