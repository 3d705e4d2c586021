"""``import kafka_reliable`` loads neither the data generator nor rich/fastavro (issue 12)."""

from __future__ import annotations

import subprocess
import sys


def test_import_loads_no_generator_rich_or_fastavro() -> None:
    code = ("import sys, kafka_reliable; "
            "print(sorted(m for m in ('rich', 'fastavro', 'kafka_reliable.datagen', 'kafka_reliable.consumer')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_lazy_names_resolve() -> None:
    import kafka_reliable

    assert kafka_reliable.DataGenerationOrchestrator.__name__ == "DataGenerationOrchestrator"
    assert kafka_reliable.ReliableConsumer.__name__ == "ReliableConsumer"
    assert set(kafka_reliable.__all__) >= {"ReliableConsumer", "ReliableKafkaProducer", "CircuitBreaker",
                                           "RateLimiter", "AvroSerializer", "SpoolFullError"}
    for name in kafka_reliable.__all__:  # every exported name resolves
        assert getattr(kafka_reliable, name) is not None
