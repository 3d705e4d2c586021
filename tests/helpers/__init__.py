"""Helpers shared by the test modules; a test module imports from here, never from another test module.

- ``clock``: ``FakeClock``, a controllable monotonic clock (and sleep) for pure units.
- ``ports``: ``free_port``.
- ``waits``: ``wait_until``, polling a condition until a deadline (no fixed sleeps before asserts).
- ``cli``: the ``kafka-reliable`` CLI run in-process or as its own process.
- ``kafka``: topics, reading records back, headers, watermark counts on the real broker.
- ``consumer``: producing test records and running a ``ReliableConsumer`` on a thread.
- ``dlq``: dead-lettered records written the way the producer writes them.
- ``metrics``: the series the consumer exports (dashboard tests).
- ``fake_producer``: ``FakeProducer``, librdkafka's producer without a broker, for pure units.

Shared fixtures live in ``tests/conftest.py``.
"""
