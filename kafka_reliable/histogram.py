"""One histogram for every part: plain numbers under one lock, metric families at scrape time.

prometheus-client's ``Histogram`` costs a lock and a bucket search per observation, and a
``Counter`` beside it as much again; the per-record paths (a delivery report, a handler call,
a republished batch) instead add to a row here and fold batches (``observe_many``,
``observe_due``). A row may carry a counter of its own (``messages_sent_total``,
``consumer_handled_total``) exported with the histogram.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections import Counter as Tally
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

Labels = tuple[str, ...]

#: Buckets (seconds) of a lateness (handed over minus due time): the worker's and the consumer's.
LATENESS_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class BucketHistogram(Collector):
    """A histogram per label values, with an optional counter per label values.

    ``name``/``doc``: the histogram; ``counter``: ``(name, doc)`` of the counter (its name
    without ``_total``), or None.
    """

    def __init__(
        self,
        name: str,
        doc: str,
        *,
        buckets: Sequence[float],
        labels: Sequence[str] = (),
        counter: tuple[str, str] | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self._name, self._doc, self._labels, self._counter = name, doc, list(labels), counter
        self._bounds = [*buckets, math.inf]
        self._names = [*map(floatToGoString, buckets), "+Inf"]
        self._lock = threading.Lock()
        #: label values -> [count, sum, bucket counts (non-cumulative, last is +Inf)]
        self._rows: dict[Labels, list[Any]] = {}
        if registry is not None:
            registry.register(self)

    def _row(self, labels: Labels) -> list[Any]:
        row = self._rows.get(labels)
        if row is None:
            row = self._rows[labels] = [0, 0.0, [0] * len(self._bounds)]
        return row

    def observe(self, value: float | None, labels: Labels = (), counted: bool = True) -> None:
        """One observation (``None``: counted, not observed); ``counted`` adds to the counter."""
        with self._lock:
            row = self._row(labels)
            row[0] += counted
            if value is not None:
                row[1] += value
                row[2][bisect.bisect_left(self._bounds, value)] += 1

    def observe_all(self, values: Iterable[float | None], labels: Labels = ()) -> None:
        """Many observations of one label set, each counted, under one lock."""
        bounds = self._bounds
        with self._lock:
            row = self._row(labels)
            buckets = row[2]
            for v in values:
                row[0] += 1
                if v is not None:
                    row[1] += v
                    buckets[bisect.bisect_left(bounds, v)] += 1

    def observe_many(self, value: float, n: int, labels: Labels = ()) -> None:
        """``n`` observations of one value (records sharing a due time)."""
        i = bisect.bisect_left(self._bounds, value)
        with self._lock:
            row = self._row(labels)
            row[0] += n
            row[1] += value * n
            row[2][i] += n

    def observe_due(self, dues_ms: Sequence[int], now_s: float, labels: Labels = ()) -> None:
        """One observation per due time (epoch ms): ``now_s`` minus it, never below 0."""
        for due_ms, n in Tally(dues_ms).items():
            self.observe_many(max(0.0, now_s - due_ms / 1000), n, labels)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            rows = {k: (r[0], r[1], list(r[2])) for k, r in self._rows.items()}
        hist = HistogramMetricFamily(self._name, self._doc, labels=self._labels)
        count = (
            CounterMetricFamily(self._counter[0], self._counter[1], labels=self._labels)
            if self._counter
            else None
        )
        for labels, (n, total, counts) in sorted(rows.items()):
            if count is not None:
                count.add_metric(list(labels), n)
            cumulative, buckets = 0, []
            for bound, c in zip(self._names, counts, strict=True):
                cumulative += c
                buckets.append((bound, cumulative))
            hist.add_metric(list(labels), buckets, total)
        if count is not None:
            yield count
        yield hist

    def describe(self) -> Iterator[Metric]:
        if self._counter:
            yield CounterMetricFamily(self._counter[0], self._counter[1], labels=self._labels)
        yield HistogramMetricFamily(self._name, self._doc, labels=self._labels)
