"""One data-generation run: its bookkeeping and failure injection, and the end-of-run table."""

from __future__ import annotations

import base64
import random
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rich.console import Console

from kafka_reliable.datagen.generators import TRANSACTION, GeneratedRecord
from kafka_reliable.datagen.scenarios import DUPLICATE, OVERSIZED, UNWRITABLE

if TYPE_CHECKING:
    from kafka_reliable.datagen.orchestrator import DataGenerationOrchestrator


class Run:
    """Per-run bookkeeping, and the failure injection of ``system_degradation``."""

    def __init__(self, orch: DataGenerationOrchestrator, *, oversize_to: int) -> None:
        self.orch, self.oversize_to = orch, oversize_to
        self.generated = self.attempted = self.fraud = 0
        self.injected: Counter[str] = Counter()
        self.by_topic: Counter[str] = Counter()
        self._padding: str | None = None

    def padding(self) -> str:
        """Incompressible text whose entropy alone exceeds the limit, so compression cannot save
        it."""
        if self._padding is None:
            noise = random.Random(self.orch.seed).randbytes(self.oversize_to)
            self._padding = base64.b64encode(noise).decode("ascii")
        return self._padding

    def send(self, rec: GeneratedRecord) -> None:
        self.generated += 1
        if rec.kind == TRANSACTION and rec.value["is_fraud"]:
            self.fraud += 1
        topic, value = self.orch.topics[rec.kind], rec.value
        if rec.inject == OVERSIZED:
            value = {**value, "metadata": {**value["metadata"], "padding": self.padding()}}
        elif rec.inject == UNWRITABLE:
            topic = self.orch.unprovisioned_topic
        if rec.inject:
            self.injected[rec.inject] += 1
        self._send(topic, value, rec.key)
        if rec.inject == DUPLICATE:
            self._send(topic, value, rec.key)

    def _send(self, topic: str, value: Any, key: str) -> None:
        self.attempted += 1
        self.by_topic[topic] += 1
        self.orch.sender.send(topic, value, key)


def print_summary(summary: Mapping[str, Any], console: Console) -> None:
    """The end-of-run table."""
    from rich.table import Table

    table = Table(
        title=f"scenario {summary['scenario']} "
        f"({summary['producer']} producer, {summary['format']})"
    )
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key in (
        "generated",
        "attempted",
        "sent",
        "retried",
        "dead_lettered",
        "duplicates",
        "spooled",
        "failed",
        "undelivered",
        "fraud_transactions",
        "elapsed_s",
        "throughput_per_s",
    ):
        table.add_row(key, str(summary[key]))
    if summary["injected"]:
        table.add_row(
            "injected", ", ".join(f"{k} {v}" for k, v in sorted(summary["injected"].items()))
        )
    table.add_row("seed", str(summary["seed"]))
    console.print(table)
