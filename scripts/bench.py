#!/usr/bin/env python3
"""The benchmark suite (issue 13): ``python scripts/bench.py [--quick] [options]``; see ``--help``.

Throughput against raw confluent-kafka and the peers, latency at a fixed rate, the retry
worker and RSS over many records, in one invocation. Writes ``bench/results/suite.json``,
PNG charts under ``docs/img/`` and ``docs/benchmarks.md`` (``--quick``: ``bench/results/quick/``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.suite.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
