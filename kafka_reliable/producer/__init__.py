"""The producer: ``ReliableKafkaProducer`` and the small parts it composes.

``producer.py`` (the facade) · ``send_path.py`` (admission: dedup, limits, breaker; produce)
· ``reports.py`` (delivery reports) · ``companion_writer.py`` (.retry / .dlq / spool)
· ``spool_drainer.py`` · ``durable.py`` (durable send mode) · ``dlq_watch.py`` (DLQ counts,
trimming) · ``outcomes.py`` (what follows a routed record) · ``connection.py`` · ``tracking.py``
(status, counters) · ``maintenance.py``
(background threads) · ``retry_manager.py`` · ``metrics.py``.
"""

from kafka_reliable.producer.producer import ReliableKafkaProducer

__all__ = ["ReliableKafkaProducer"]
