"""E-commerce data generator: catalogue, seeded generators, scenarios and the orchestrator."""

from __future__ import annotations

from kafka_reliable.datagen.generators import EventGenerator, GeneratedRecord
from kafka_reliable.datagen.orchestrator import DataGenerationOrchestrator
from kafka_reliable.datagen.scenarios import SCENARIOS, Scenario, get_scenario, iter_records

__all__ = [
    "SCENARIOS",
    "DataGenerationOrchestrator",
    "EventGenerator",
    "GeneratedRecord",
    "Scenario",
    "get_scenario",
    "iter_records",
]
