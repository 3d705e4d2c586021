"""Screenshots of the console's pages for docs/img/console-*.png, taken from the real pages.

Writes a small shop's failures to the broker (KAFKA_BOOTSTRAP_SERVERS): ``shop-orders.dlq``
(JSON orders, three error classes), a consumer group's ``shop-orders.billing.dlq``, a Spring
``shop-payments-dlt`` and a retry backlog; starts ``kafka-reliable console`` with a token and
photographs the overview, a filtered record list, a record and a redrive preview in Debian's
headless Chromium. The topics are deleted afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from playwright.sync_api import sync_playwright

from kafka_reliable import headers as h
from kafka_reliable.config import RetryConfig, TopicNaming
from kafka_reliable.errors import classify
from kafka_reliable.routing import route_failure

ROOT = Path(__file__).resolve().parent.parent
IMG = ROOT / "docs" / "img"
TOKEN = "screenshot-token"
TOPICS = {"shop-orders": 3, "shop-orders.dlq": 3, "shop-orders.retry": 3,
          "shop-orders.billing.dlq": 1, "shop-payments": 1, "shop-payments-dlt": 1}
CODES = ("_MSG_TIMED_OUT", "MSG_SIZE_TOO_LARGE", "_MSG_TIMED_OUT", "TOPIC_AUTHORIZATION_FAILED")


def recreate(admin: AdminClient) -> None:
    existing = set(admin.list_topics(timeout=10).topics)
    gone = [t for t in TOPICS if t in existing]
    if gone:
        for fut in admin.delete_topics(gone).values():
            fut.result(30)
        time.sleep(2)
    for fut in admin.create_topics([NewTopic(t, n, 1) for t, n in TOPICS.items()]).values():
        fut.result(30)


def write(bootstrap: str) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    now = int(time.time() * 1000)
    for i in range(40):
        at = now - (40 - i) * 90_000
        route = route_failure(
            topic="shop-orders", classification=classify(CODES[i % 4]), attempt=4,
            error_message=f"delivery failed for order {1000 + i}", naming=TopicNaming(),
            retry_config=RetryConfig(max_retries=3), now_ms=at, headers=[("tenant", b"eu-1")],
            message_id=f"ord-{1000 + i}-7c1e", first_failure_at_ms=at - 4_000,
        )
        order = {"order_id": 1000 + i, "customer": f"c-{i % 7}", "currency": "EUR",
                 "items": [{"sku": f"SKU-{i % 5}", "qty": 1 + i % 3, "price_cents": 1299}]}
        p.produce(route.target_topic, key=f"c-{i % 7}".encode(), value=json.dumps(order).encode(),
                  headers=route.headers, timestamp=at)
    for i in range(3):
        hs = [(h.ORIGINAL_TOPIC, b"shop-orders"), (h.ATTEMPT, b"2"),
              (h.NEXT_ATTEMPT_AT, str(now + 60_000 - i * 90_000).encode())]
        p.produce("shop-orders.retry", key=b"c-1", value=b"{}", headers=hs)
    spring = [("kafka_dlt-original-topic", b"shop-payments"),
              ("kafka_dlt-original-partition", (0).to_bytes(4, "big")),
              ("kafka_dlt-original-offset", (77).to_bytes(8, "big")),
              ("kafka_dlt-exception-fqcn", b"org.springframework.kafka.listener.ListenerExecutionFailedException"),
              ("kafka_dlt-exception-message", b"amount must be positive")]
    p.produce("shop-payments-dlt", key=b"pay-77", value=b'{"amount": -5}', headers=spring)
    p.produce("shop-orders.billing.dlq", key=b"c-3", value=b'{"order_id": 1003}', headers=[
        (h.ORIGINAL_TOPIC, b"shop-orders"), (h.ERROR_CLASS, b"InvoiceRejected"),
        (h.CONSUMER_GROUP, b"billing"), (h.DLQ_REASON, b"non_retriable")])
    assert p.flush(30) == 0


def shoot(url: str) -> None:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium")
        page = browser.new_page(viewport={"width": 1280, "height": 760})
        page.goto(f"{url}/login?next=/")
        page.fill("#token", TOKEN)
        page.click("#login-button")
        page.goto(f"{url}/?q=shop-")
        page.wait_for_function("!document.body.innerText.includes('…')")
        page.screenshot(path=str(IMG / "console-overview.png"), full_page=True)
        page.goto(f"{url}/dlq/shop-orders.dlq?error=KafkaTimeoutError&size=12")
        page.locator("input.sel").nth(0).check()
        page.locator("input.sel").nth(1).check()
        page.screenshot(path=str(IMG / "console-records.png"), full_page=True)
        page.locator("a.record-link").first.click()
        page.screenshot(path=str(IMG / "console-record.png"), full_page=True)
        page.go_back()
        page.click("#preview-all")
        page.wait_for_selector("#count", timeout=60_000)
        page.screenshot(path=str(IMG / "console-redrive-preview.png"), full_page=True)
        browser.close()


def main() -> int:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    recreate(admin)
    write(bootstrap)
    port = 18090
    env = {**os.environ, "KAFKA_RELIABLE_CONSOLE_TOKEN": TOKEN}
    proc = subprocess.Popen([sys.executable, "-m", "kafka_reliable", "console", "--port", str(port),
                             "--bootstrap-servers", bootstrap, "--dlq-max-size", "100"], env=env)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        IMG.mkdir(parents=True, exist_ok=True)
        shoot(f"http://127.0.0.1:{port}")
    finally:
        proc.terminate()
        proc.wait(20)
        for fut in admin.delete_topics(list(TOPICS)).values():
            fut.result(30)
    print("wrote", ", ".join(sorted(str(p.relative_to(ROOT)) for p in IMG.glob("console-*.png"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
