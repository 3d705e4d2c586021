"""Client settings a part owns for correctness, and the one check that refuses overrides.

The producer, the ReliableConsumer and the retry worker set some librdkafka keys themselves
because their guarantees depend on them (``acks=all`` + idempotence for the producer, manual
commits and ``read_committed`` for the worker, the group id the worker logs and commits
under). A user config that sets such a key to another value would silently break the
guarantee, so it is refused in one line naming the key and what to use instead. Values that
agree with ours are accepted (``acks=all`` given twice is harmless).

Shared by ``producer/``, ``consumer/`` and ``worker/`` (and the CLI); it imports only
contracts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kafka_reliable.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class Owned:
    """One key a part owns: the values that agree with its own (empty: the key may not be set
    at all) and what the user should do instead (``"use --group"``)."""

    key: str
    instead: str
    agrees: frozenset[str] = frozenset()

    def accepts(self, value: Any) -> bool:
        return bool(self.agrees) and _norm(value) in self.agrees


def _norm(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip().lower()


def owned(key: str, instead: str, *agrees: Any) -> Owned:
    """``owned("acks", "acks=all is required", "all", "-1")``."""
    return Owned(key, instead, frozenset(_norm(a) for a in agrees))


def refuse_owned(
    conf: Mapping[str, Any],
    rules: Iterable[Owned],
    *,
    where: str,
    prefix: str = "",
    allow: Iterable[str] = (),
) -> None:
    """Raise ConfigurationError for the first key of ``conf`` that overrides an owned key.

    ``prefix`` is how the user spelled the key's family (``"consumer."`` in the worker's
    ``--kafka-config consumer.group.id=…``) so the message names it as typed; ``allow`` lists
    keys an explicit opt-out lets through. Values are never echoed for keys that look secret
    (owned keys are not secrets, but the value shown is the user's own).
    """
    allowed = set(allow)
    for rule in rules:
        if rule.key in allowed or rule.key not in conf:
            continue
        value = conf[rule.key]
        if rule.accepts(value):
            continue
        raise ConfigurationError(
            f"{where}: {prefix}{rule.key}={value!r} is not allowed: kafka-reliable sets "
            f"{rule.key} itself for correctness; {rule.instead}"
        )


#: What the reliable producer owns (``unsafe_producer_config=True`` is the explicit opt-out).
PRODUCER_OWNED: tuple[Owned, ...] = (
    owned("acks", "it needs acks=all (pass unsafe_producer_config=True to opt out)", "all", "-1"),
    owned(
        "enable.idempotence",
        "it needs the idempotent producer (pass unsafe_producer_config=True to opt out)",
        "true",
    ),
)
