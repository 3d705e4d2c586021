"""Errors of the asyncio front end."""

from __future__ import annotations

from kafka_reliable.errors import KafkaReliableError


class DeliveryRoutedError(KafkaReliableError):
    """An awaited record was not acknowledged by its topic: it was routed instead.

    ``status`` is ``retrying`` (in ``<topic>.retry``, the retry worker will send it again),
    ``dlq`` (in ``<topic>.dlq``) or ``spooled`` (in the local spool, sent again when the cluster
    answers). Nothing is lost in any case. ``error_class`` is the feature document's class name
    of the failure (``KafkaTimeoutError``, ``MessageSizeTooLargeError``, …; ``KafkaTimeoutError``
    for a record still in flight at ``close()``), or None when the record was spooled without a
    delivery error (by an open circuit breaker in ``spool`` mode).
    """

    def __init__(self, status: str, error_class: str | None, message_id: str) -> None:
        self.status = status
        self.error_class = error_class
        self.message_id = message_id
        cause = f" ({error_class})" if error_class else ""
        super().__init__(f"record {message_id} was not delivered: {status}{cause}")


class AsyncUsageError(KafkaReliableError, RuntimeError):
    """The asyncio producer was used where it cannot work: before ``start()``, or from an event
    loop other than the one that started it (the message says which)."""
