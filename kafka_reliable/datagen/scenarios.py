"""Traffic scenarios and the time-ordered record stream each one produces.

A scenario fixes the arrival rate of sessions (shaped by the daily traffic curve), the share
of fraud, catalogue activity and, for ``system_degradation``, which records carry an injected
failure (``oversized``, ``unwritable``, ``duplicate``) for the orchestrator to act out.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

from kafka_reliable.datagen.generators import (
    FRAUD_PATTERN_WEIGHTS,
    FRAUD_PATTERNS,
    TRANSACTION,
    USER_EVENT,
    EventGenerator,
    GeneratedRecord,
    daily_traffic_factor,
    exp_gap_ms,
)

#: Mean transactions of one fraud episode per pattern, and of an ordinary visit (measured).
_EPISODE_TRANSACTIONS = {"CARD_TESTING": 8.5, "ACCOUNT_TAKEOVER": 1.0, "VELOCITY_ABUSE": 6.0}
_DEFAULT_PATTERN_WEIGHTS = dict(zip(FRAUD_PATTERNS, FRAUD_PATTERN_WEIGHTS, strict=True))
_TRANSACTIONS_PER_VISIT = 0.095
#: Failure kinds the orchestrator injects for records marked with them.
OVERSIZED, UNWRITABLE, DUPLICATE = "oversized", "unwritable", "duplicate"


@dataclass(frozen=True, slots=True)
class Scenario:
    """Shape of the traffic. Rates are per simulated minute at the daily mean."""

    name: str
    description: str
    sessions_per_minute: float = 30.0
    fraud_rate: float = 0.01
    fraud_patterns: tuple[str, ...] | None = None
    conversion_boost: float = 1.0
    catalogue_updates_per_minute: float = 1.0
    spike_factor: float = 1.0
    spike_decay_fraction: float = 0.25
    flash_sale_products: int = 0
    flash_sale_discount: float = 0.0
    #: Every n-th transaction is sent oversized, every n-th user event to the unwritable
    #: topic, every n-th record twice (0: never).
    oversized_every: int = 0
    unwritable_every: int = 0
    duplicate_every: int = 0

    def sessions_rate(self, ts_ms: int, elapsed_fraction: float) -> float:
        """Sessions per minute at ``ts_ms``: base × daily curve × (decaying) spike."""
        spike = 1.0 + (self.spike_factor - 1.0) * math.exp(
            -elapsed_fraction / self.spike_decay_fraction
        )
        return self.sessions_per_minute * daily_traffic_factor(ts_ms) * spike

    def fraud_visit_probability(self) -> float:
        """Chance that a visit is a fraud episode, so that ``fraud_rate`` of transactions are
        fraud."""
        patterns = self.fraud_patterns or FRAUD_PATTERNS
        weights = [
            _DEFAULT_PATTERN_WEIGHTS[p] if self.fraud_patterns is None else 1.0 for p in patterns
        ]
        per_episode = sum(
            w * _EPISODE_TRANSACTIONS[p] for p, w in zip(patterns, weights, strict=True)
        )
        per_episode /= sum(weights)
        per_visit = _TRANSACTIONS_PER_VISIT * self.conversion_boost
        return min(1.0, self.fraud_rate / (1.0 - self.fraud_rate) * per_visit / per_episode)

    @property
    def injects_failures(self) -> bool:
        return bool(self.oversized_every or self.unwritable_every or self.duplicate_every)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            name="normal_traffic",
            description="an ordinary day: steady sessions, 1% of orders fraudulent",
        ),
        Scenario(
            name="peak_traffic",
            description="holiday peak: 3x sessions, shoppers buy more readily",
            sessions_per_minute=90.0,
            conversion_boost=1.4,
            catalogue_updates_per_minute=3.0,
        ),
        Scenario(
            name="flash_sale",
            description="10 top products at 40% off: a traffic spike at the start, stock runs out",
            sessions_per_minute=45.0,
            spike_factor=5.0,
            conversion_boost=2.0,
            flash_sale_products=10,
            flash_sale_discount=0.4,
            catalogue_updates_per_minute=2.0,
        ),
        Scenario(
            name="fraud_attack",
            description="a fraud ring: card testing and account takeovers, ~15%",
            fraud_rate=0.15,
            fraud_patterns=("CARD_TESTING", "ACCOUNT_TAKEOVER"),
        ),
        Scenario(
            name="system_degradation",
            description="normal traffic with injected failures: oversized records (→ .dlq), "
            "records for an unwritable topic (→ .retry) and duplicates (dedup)",
            oversized_every=5,
            unwritable_every=40,
            duplicate_every=20,
        ),
    )
}


def get_scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r} (known: {', '.join(SCENARIOS)})") from None


def make_generator(
    scenario: Scenario,
    *,
    seed: int,
    start_ms: int,
    n_users: int = 500,
    n_products: int = 200,
    transaction_schema_version: int = 1,
) -> EventGenerator:
    """A generator with the scenario's conversion behaviour."""
    return EventGenerator(
        seed=seed,
        start_ms=start_ms,
        n_users=n_users,
        n_products=n_products,
        conversion_boost=scenario.conversion_boost,
        transaction_schema_version=transaction_schema_version,
    )


def iter_records(
    scenario: Scenario, gen: EventGenerator, *, start_ms: int, duration_ms: int
) -> Iterator[GeneratedRecord]:
    """Records in timestamp order for ``duration_ms`` of simulated time from ``start_ms``.

    Visits that start before the end are completed, so the last records may be a little later.
    """
    heap: list[tuple[int, int, GeneratedRecord]] = []
    order = itertools.count()
    marks = _Marker(scenario)

    def push(records: list[GeneratedRecord]) -> None:
        for r in records:
            heapq.heappush(heap, (r.timestamp_ms, next(order), r))

    if scenario.flash_sale_products:
        push(
            gen.start_flash_sale(
                start_ms,
                n_products=scenario.flash_sale_products,
                discount=scenario.flash_sale_discount,
            )
        )
    end_ms = start_ms + duration_ms
    p_fraud = scenario.fraud_visit_probability()
    next_visit = start_ms + exp_gap_ms(gen.rng, scenario.sessions_rate(start_ms, 0.0))
    next_upkeep = start_ms + exp_gap_ms(gen.rng, scenario.catalogue_updates_per_minute)
    while True:
        due = min(next_visit, next_upkeep)
        while heap and heap[0][0] <= due:
            yield marks.mark(heapq.heappop(heap)[2])
        if due >= end_ms:
            break
        if due == next_visit:
            if gen.rng.random() < p_fraud:
                pattern = (
                    gen.rng.choice(scenario.fraud_patterns) if scenario.fraud_patterns else None
                )
                push(gen.fraud_episode(due, pattern))
            else:
                push(gen.session(due))
            rate = scenario.sessions_rate(due, (due - start_ms) / duration_ms)
            next_visit = due + exp_gap_ms(gen.rng, rate)
        else:
            push([gen.maintenance(due)])
            next_upkeep = due + exp_gap_ms(gen.rng, scenario.catalogue_updates_per_minute)
    while heap:
        yield marks.mark(heapq.heappop(heap)[2])


class _Marker:
    """Applies the scenario's ``*_every`` counts to the stream."""

    def __init__(self, scenario: Scenario) -> None:
        self.s = scenario
        self.counts = {TRANSACTION: 0, USER_EVENT: 0, "all": 0}

    def _nth(self, counter: str, every: int) -> bool:
        return every > 0 and self.counts[counter] % every == 0

    def mark(self, r: GeneratedRecord) -> GeneratedRecord:
        if not self.s.injects_failures:
            return r
        self.counts["all"] += 1
        inject = None
        if r.kind in self.counts:
            self.counts[r.kind] += 1
        if r.kind == TRANSACTION and self._nth(TRANSACTION, self.s.oversized_every):
            inject = OVERSIZED
        elif r.kind == USER_EVENT and self._nth(USER_EVENT, self.s.unwritable_every):
            inject = UNWRITABLE
        elif self._nth("all", self.s.duplicate_every):
            inject = DUPLICATE
        return dataclasses.replace(r, inject=inject) if inject else r
