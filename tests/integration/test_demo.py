"""The demo script, run as a user would (a subprocess, --short) against the real broker and Redis."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "demo_reliability_features.py"


@pytest.mark.slow
def test_every_demo_runs_and_sees_what_it_expects(kafka_bootstrap, redis_url):
    # Given
    env = {**os.environ, "COLUMNS": "200", "PYTHONPATH": str(SCRIPT.parents[1])}

    # When
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--demo", "all", "--short", "--kafka-servers", kafka_bootstrap,
         "--redis-url", redis_url],
        capture_output=True, text=True, timeout=300, env=env,
    )

    # Then
    out = proc.stdout
    assert proc.returncode == 0, out[-4000:] + proc.stderr[-2000:]
    for name in ("dlq", "retry", "deduplication", "health", "batch", "scenario"):
        assert re.search(rf"^{name} demo: OK", out, re.M), f"{name} demo did not report OK:\n{out[-3000:]}"
    assert "MSG_SIZE_TOO_LARGE is not retriable" in out
    assert re.search(r"retry demo: OK — (\d+) → \.retry, \1 republished by the worker", out)
    assert "caught by the Redis backend" in out
    assert "alert callback: error_rate" in out
    assert "does not fit Avro schema" in out
    assert re.search(r"status healthy, .*\n.*status (degraded|unhealthy)", out)
    assert not re.search(r"demo-[0-9a-f]{6}-", _topics(kafka_bootstrap, out))  # cleaned up


def _topics(bootstrap: str, out: str) -> str:
    """Names of the run's topics still on the broker (the run id is printed first)."""
    from confluent_kafka.admin import AdminClient

    run = re.search(r"topics (demo-[0-9a-f]{6})-\*", out)
    assert run, out[:500]
    names = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics
    return " ".join(t for t in names if t.startswith(run.group(1)))
