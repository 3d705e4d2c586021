"""The console in a real browser: Debian's headless Chromium driven by Playwright.

The console runs as its own process (``kafka-reliable console``) against the test broker. The
browser opens the overview, filters a DLQ, opens a record, is refused a redrive before logging
in, then previews and redrives 2 of 10 records with the token; the broker is then read to its
high watermark: exactly those 2 arrived on the original topic, with the audit headers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from kafka_reliable import headers as h
from tests.conftest import _unavailable
from tests.helpers.dlq import dead_letter, make_source
from tests.helpers.kafka import read_to_end
from tests.helpers.ports import free_port
from tests.integration.console_helpers import TOKEN

CHROMIUM = os.environ.get("KAFKA_RELIABLE_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        _unavailable(f"no Chromium at {CHROMIUM} (scripts/install-chromium.sh installs Debian's)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def console_url(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("console") / "console.log"
    env = {**os.environ, "KAFKA_RELIABLE_CONSOLE_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "kafka_reliable", "console", "--port", str(port),
           "--bootstrap-servers", kafka_bootstrap]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc, log)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"console exited: {log.read_text()}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"console did not answer: {log.read_text()}")


def test_filter_inspect_and_redrive_two_of_ten_in_the_browser(
    browser: object, console_url: str, kafka_bootstrap: str, admin: AdminClient
) -> None:
    from playwright.sync_api import Browser, expect

    assert isinstance(browser, Browser)
    # Given 10 dead-lettered records of a source topic (4 of them MessageSizeTooLargeError)
    source = make_source(admin, kafka_bootstrap, partitions=2, prefix="console-browser")
    dlq = source + ".dlq"
    dead_letter(kafka_bootstrap, source, 10, base_ms=int(time.time() * 1000) - 60_000)
    page = browser.new_page()

    # the overview lists the DLQ with its count; its newest records load on their own
    page.goto(f"{console_url}/?q={source}")
    row = page.locator("#dlqs tr", has_text=dlq)
    expect(row.locator("td.num")).to_have_text("10")
    expect(row.locator("td.lazy")).to_contain_text("MessageSizeTooLargeError")

    # filter the DLQ
    row.locator("a.dlq-link").click()
    page.fill("input[name=error]", "MessageSizeTooLargeError")
    page.click("#apply-filter")
    expect(page.locator("#records tbody tr")).to_have_count(4)

    # open a record
    page.locator("a.record-link").first.click()
    expect(page.locator("#context")).to_contain_text("MessageSizeTooLargeError")
    expect(page.locator("#hops")).to_contain_text("message id")
    page.go_back()

    # without the token: the buttons are disabled and a POST is refused
    expect(page.locator("#preview-selected")).to_be_disabled()
    refused = page.request.post(f"{console_url}/dlq/{dlq}/redrive",
                                form={"sel": "0:0", "mode": "selected"})
    assert refused.status in (401, 403)
    assert "log in" in refused.text()

    # log in with the token, come back to the filtered list, pick 2 records
    filtered = page.url
    page.click("#login-link")
    page.fill("#token", TOKEN)
    page.click("#login-button")
    expect(page.locator("#mode")).to_have_text("operator")
    page.goto(filtered)
    boxes = page.locator("input.sel")
    picked = [boxes.nth(i).get_attribute("value") for i in (0, 1)]
    boxes.nth(0).check()
    boxes.nth(1).check()

    # preview: 2 records to the original topic, nothing sent yet
    page.click("#preview-selected")
    expect(page.locator("#count")).to_have_text("2", timeout=30_000)
    expect(page.locator("#summary")).to_contain_text(f"→ {source}")
    assert read_to_end(kafka_bootstrap, source) == []

    # run it
    page.click("#run-redrive")
    expect(page.locator("#job-state")).to_contain_text("done", timeout=60_000)
    expect(page.locator("#count")).to_have_text("2")

    # Then exactly those 2 are on the original topic, with the audit headers
    got = read_to_end(kafka_bootstrap, source)
    assert sorted(dict(m.headers())[h.REDRIVE_FROM].decode() for m in got) == sorted(
        f"{dlq}:{c}" for c in picked)
    for m in got:
        hs = dict(m.headers())
        assert hs[h.REDRIVE_BY].startswith(b"console:") and int(hs[h.REDRIVE_AT]) > 0
    page.close()
