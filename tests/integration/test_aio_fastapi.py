"""docs/examples/fastapi_app.py under uvicorn against the real broker, called over HTTP."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kafka_reliable import headers as H
from tests.helpers.kafka import headers_dict, read_to_end
from tests.helpers.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30.0


@pytest.fixture
def service(kafka_bootstrap: str, new_topic, tmp_path: Path) -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
    """The example app on a free port, serving a topic that takes at most 10 kB per record."""
    topic = new_topic(config={"max.message.bytes": "10000"}, prefix="fastapi")
    port = free_port()
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "ORDERS_TOPIC": topic,
           "KAFKA_RELIABLE_SPOOL": str(tmp_path / "spool.db"), "PYTHONPATH": str(ROOT)}
    env.pop("REDIS_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "fastapi_app:app", "--app-dir", str(ROOT / "docs" / "examples"),
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "info", "--no-access-log"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            if httpx.get(f"{base}/orders/none", timeout=1.0).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out = proc.communicate()[0].decode(errors="replace")
            pytest.fail(f"the example app did not start within {START_TIMEOUT_S}s: {out[-2000:]}")
        time.sleep(0.1)
    try:
        yield base, topic, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_fastapi_example_answers_202_with_id_or_503_with_routed_status(service, kafka_bootstrap: str) -> None:
    base, topic, proc = service
    with httpx.Client(base_url=base, timeout=30.0) as client:
        # When: an ordinary order, and one too large for the topic (incompressible)
        ok = client.post("/orders", json={"user_id": 7, "amount": 12.5})
        big = client.post("/orders", json={"user_id": 8, "blob": secrets.token_hex(30_000)})
        status = client.get(f"/orders/{ok.json()['message_id']}")
    # Then: 202 + the id Kafka holds; 503 + where the record went instead, and why
    assert ok.status_code == 202 and ok.json()["status"] == "sent"
    assert status.json()["status"] == "sent"
    assert big.status_code == 503
    body = big.json()
    assert (body["status"], body["error_class"]) == ("dlq", "MessageSizeTooLargeError")
    [rec] = read_to_end(kafka_bootstrap, topic, at_least=1)
    assert headers_dict(rec)[H.MESSAGE_ID].decode() == ok.json()["message_id"]
    [dead] = read_to_end(kafka_bootstrap, topic + ".dlq", at_least=1)
    assert headers_dict(dead)[H.MESSAGE_ID].decode() == body["message_id"]
    # and a SIGTERM closes the producer in the lifespan (uvicorn re-raises the signal after
    # a graceful shutdown, so the exit status is the signal's)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=30)[0].decode(errors="replace")
    assert proc.returncode in (0, -signal.SIGTERM), out
    assert "Application shutdown complete" in out and "Traceback" not in out, out
