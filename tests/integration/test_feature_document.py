"""The feature document's snippets run unchanged against the real broker."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from confluent_kafka.admin import AdminClient

from tests.helpers.kafka import create_topic

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "feature_document.py"


def test_feature_document_snippets_run(kafka_bootstrap: str, admin: AdminClient, tmp_path: Path) -> None:
    # Given the document's topic on the broker the snippets name (localhost:9092 unless overridden)
    if "transactions" not in admin.list_topics(timeout=10).topics:
        create_topic(admin, "transactions", partitions=3)
    src = EXAMPLE.read_text()
    if kafka_bootstrap not in ("127.0.0.1:9092", "localhost:9092"):
        src = src.replace("'localhost:9092'", repr(kafka_bootstrap))
    script = tmp_path / "snippets.py"
    script.write_text(src)
    env = {**os.environ, "KAFKA_RELIABLE_SPOOL": str(tmp_path / "spool.db")}
    # When
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env)
    # Then
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    print(text)
    assert re.search(r"Message status: (pending|sent)", text)
    # dedup is on: the batch's first record has the same topic, key and value as the single send
    assert "Sent: 2/3 messages" in text
    assert "Duplicate rate: 25.00%" in text
    assert re.search(r"Messages sent: [1-9]", text)
    assert re.search(r"P99 latency: \d+\.\d\dms", text)
    # health: healthy with no issue; on a loaded machine latency alone may degrade it
    assert re.search(r"Current error rate: 0\.0000", text)
    status = re.search(r"Overall status: (\w+)", text)
    issues = re.findall(r"^Issue: (.*)$", text, re.M)
    assert status is not None
    if status.group(1) == "healthy":
        assert issues == []
    else:
        assert status.group(1) == "degraded" and issues and all("latency" in i.lower() for i in issues), issues
    assert "Pending retries: " in text
