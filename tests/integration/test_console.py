"""The console's routes on the real broker, through Starlette's TestClient (no browser).

Every page and every bad input: a clear message on the page, never a stack trace; mutating
requests refused without the token's session and CSRF token; nothing secret in a response.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient
from fastapi.testclient import TestClient

from kafka_reliable import headers as h
from kafka_reliable.console import ConsoleSettings, create_app
from kafka_reliable.spool import Spool
from tests.helpers.dlq import write_foreign
from tests.helpers.kafka import create_topic, read_to_end, unique_name
from tests.integration.console_helpers import (
    TOKEN,
    ConsoleData,
    csrf_of,
    error_of,
    make_console_data,
)

SECRET = "sasl-secret-never-shown"


@pytest.fixture(scope="module")
def data(kafka_bootstrap: str, admin: AdminClient) -> ConsoleData:
    return make_console_data(admin, kafka_bootstrap)


def _client(bootstrap: str, token: str | None, **kw: object) -> TestClient:
    conf = {"bootstrap.servers": bootstrap}
    settings = ConsoleSettings(conf=conf, token=token, **kw)  # type: ignore[arg-type]
    return TestClient(create_app(settings), raise_server_exceptions=False)


@pytest.fixture
def ro(kafka_bootstrap: str) -> Iterator[TestClient]:
    with _client(kafka_bootstrap, None) as c:
        yield c


@pytest.fixture
def rw(kafka_bootstrap: str) -> Iterator[TestClient]:
    with _client(kafka_bootstrap, TOKEN) as c:
        r = c.post("/login", data={"token": TOKEN}, follow_redirects=False)
        assert r.status_code == 303
        yield c


def _wait_job(c: TestClient, location: str) -> dict[str, object]:
    for _ in range(300):
        state = c.get(location + ".json").json()
        if state["state"] != "running":
            return state
        time.sleep(0.1)
    raise AssertionError(f"job {location} still running")


def _sel(html: str) -> list[str]:
    return re.findall(r'name="sel" value="([^"]+)"', html)


def test_overview_lists_every_dlq_kind_with_counts_retry_backlog_and_spool(
    kafka_bootstrap: str, admin: AdminClient, data: ConsoleData, tmp_path: Path
) -> None:
    # Given our DLQ, a group DLQ, Spring and Connect DLQs, a retry backlog and a spool
    group_dlq = create_topic(admin, f"{data.source}.billing.dlq", 1)
    orders, spring_dlt, payments, connect_dlq = write_foreign(kafka_bootstrap, admin)
    Spool(tmp_path / "spool.db").close()
    with _client(kafka_bootstrap, None, spool_path=tmp_path / "spool.db", dlq_max_size=100) as c:
        # When
        page = c.get("/").text
        retry_cell = c.get(f"/fragments/retry/{data.source}.retry?group=kafka-reliable-retry").text
        sample = c.get(f"/fragments/dlq/{data.dlq}").text
        missing_spool = _client(kafka_bootstrap, None, spool_path=tmp_path / "none.db").get("/")
    # Then
    row = re.search(rf"{re.escape(data.dlq)}</a>.*?</tr>", page, re.S)
    assert row is not None and "ours" in row.group(0) and ">12<" in row.group(0)
    assert "12% of 100" in row.group(0)
    group_row = re.search(rf"{re.escape(group_dlq)}</a>.*?</tr>", page, re.S)
    assert group_row is not None and "group" in group_row.group(0) and "billing" in group_row.group(0)
    for foreign in (spring_dlt, connect_dlq):
        frow = re.search(rf"{re.escape(foreign)}</a>.*?</tr>", page, re.S)
        assert frow is not None and "foreign" in frow.group(0) and ">3<" in frow.group(0)
    retry_row = re.search(rf"{re.escape(data.source)}.retry</td>.*?</tr>", page, re.S)
    assert retry_row is not None and retry_row.group(0).count(">3<") == 2  # records, pending
    assert "due 3, late 3" in retry_cell
    assert "KafkaTimeoutError" in sample and "kafka_reliable" in sample
    assert 'id="spool"' in page and "quarantined" in page
    assert "no spool at" in missing_spool.text


def test_records_page_newest_first_paged_by_offset_covers_every_record_once(
    ro: TestClient, data: ConsoleData
) -> None:
    seen: list[str] = []
    url = f"/dlq/{data.dlq}?size=5"
    for _ in range(5):
        page = ro.get(url)
        assert page.status_code == 200
        seen += _sel(page.text)
        nxt = re.search(r'href="([^"]+)" id="next-page"', page.text)
        if nxt is None:
            break
        url = nxt.group(1).replace("&amp;", "&")
    assert len(seen) == 12 and len(set(seen)) == 12
    oldest = _sel(ro.get(f"/dlq/{data.dlq}?order=oldest&size=50").text)
    assert sorted(oldest) == sorted(seen)


@pytest.mark.parametrize(
    ("query", "count"),
    [
        ("error=KafkaTimeoutError", 6),  # i % 5 in (0, 1): m0 m1 m5 m6, JSON m10, Avro m11
        ("error=TOPIC_AUTHORIZATION_FAILED", 2),  # m4, m9
        ("reason=retries_exhausted", 6),  # the timeouts
        ("key=k3", 1),
        ("message_id=m7", 1),
        ("text=v1", 1),  # v1 (the Avro and JSON values do not contain it)
        ("text=SKU", 1),  # case-insensitive, in the JSON value
    ],
)
def test_records_filters(ro: TestClient, data: ConsoleData, query: str, count: int) -> None:
    page = ro.get(f"/dlq/{data.dlq}?{query}")
    assert page.status_code == 200
    assert len(_sel(page.text)) == count


def test_records_filter_by_original_topic_and_time(ro: TestClient, data: ConsoleData) -> None:
    assert len(_sel(ro.get(f"/dlq/{data.dlq}?original_topic={data.source}").text)) == 12
    assert _sel(ro.get(f"/dlq/{data.dlq}?original_topic=elsewhere").text) == []
    since, until = data.base_ms + 2_000, data.base_ms + 5_000  # failed at base + i s: m2, m3, m4
    page = ro.get(f"/dlq/{data.dlq}?since={since}&until={until}").text
    assert len(_sel(page)) == 3


def test_record_page_decodes_headers_json_avro_and_links_same_key(
    ro: TestClient, data: ConsoleData, kafka_bootstrap: str, admin: AdminClient
) -> None:
    pages = {}
    for key in ("json-key", "avro-key", "k5"):
        listing = ro.get(f"/dlq/{data.dlq}?key={key}").text
        link = re.search(r'href="(/dlq/[^"]+/record/\d+/\d+)"', listing)
        assert link is not None
        pages[key] = html.unescape(ro.get(link.group(1)).text)
    assert '"order": 42' in pages["json-key"] and "json" in pages["json-key"]
    assert "Avro, schema ecommerce.events.UserEvent" in pages["avro-key"]
    assert "red shoes" in pages["avro-key"]
    k5 = pages["k5"]
    for text in ("KafkaTimeoutError", "retries_exhausted", "failure 5", "m5", h.ERROR_CLASS,
                 "other records with this key", "kafka_reliable"):
        assert text in k5, text
    # a Spring record: big-endian numbers noted, the exception from its headers
    _orders, spring_dlt, _payments, _connect = write_foreign(kafka_bootstrap, admin)
    spring = html.unescape(ro.get(f"/dlq/{spring_dlt}/record/0/0").text)
    assert "spring" in spring and "amount must be positive" in spring
    assert "big-endian number 1000" in spring


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/dlq/no-such-topic-xyz", 400, "does not exist"),
        ("/dlq/bad%20name", 400, "illegal topic name"),
        ("/dlq/{dlq}?since=yesterday-ish", 400, "not a time"),
        ("/dlq/{dlq}?order=sideways", 400, "order must be newest or oldest"),
        ("/dlq/{dlq}?size=0", 400, "page size must be in 1..500"),
        ("/dlq/{dlq}?size=ten", 400, "page size must be a whole number"),
        ("/dlq/{dlq}?after=0:99999999", 400, "outside partition 0"),
        ("/dlq/{dlq}?after=zz", 400, "bad page position"),
        ("/dlq/{dlq}?after=7:0", 400, "partition 7"),
        ("/dlq/{dlq}/record/0/99999999", 400, "out of range"),
        ("/dlq/{dlq}/record/9/0", 400, "no partition 9"),
        ("/dlq/{dlq}/record/x/0", 400, "partition must be a whole number"),
        ("/jobs/nope", 400, "no job"),
        ("/nowhere", 404, "no such page"),
    ],
)
def test_bad_input_is_a_clear_message_never_a_trace(
    ro: TestClient, data: ConsoleData, path: str, status: int, words: str
) -> None:
    r = ro.get(path.format(dlq=data.dlq))
    assert r.status_code == status
    assert words in error_of(r.text)
    assert "Traceback" not in r.text and 'File "' not in r.text


def test_read_only_console_refuses_every_change(ro: TestClient, data: ConsoleData) -> None:
    page = ro.get(f"/dlq/{data.dlq}").text
    assert "read-only" in page and "disabled" in page
    for path, form in [
        (f"/dlq/{data.dlq}/redrive", {"sel": "0:0", "mode": "selected"}),
        (f"/dlq/{data.dlq}/purge", {"step": "run", "cuts": "0:1"}),
        ("/jobs/1/stop", {}),
    ]:
        r = ro.post(path, data={**form, "csrf": "x"})
        assert r.status_code == 403 and "read-only console" in error_of(r.text)
    assert ro.post("/login", data={"token": "anything"}).status_code == 403


def test_token_session_and_csrf_are_all_needed(kafka_bootstrap: str, data: ConsoleData) -> None:
    with _client(kafka_bootstrap, TOKEN) as c:
        redrive = f"/dlq/{data.dlq}/redrive"
        assert c.post(redrive, data={"sel": "0:0"}).status_code == 401  # no session
        assert c.post("/login", data={"token": "wrong"}).status_code == 401
        assert c.post("/login", data={"token": TOKEN}, follow_redirects=False).status_code == 303
        assert c.post(redrive, data={"sel": "0:0"}).status_code == 403  # no CSRF
        r = c.post(redrive, data={"sel": "0:0", "csrf": "forged"})
        assert r.status_code == 403 and "CSRF" in error_of(r.text)
        page = c.get(f"/dlq/{data.dlq}").text
        for body in (page, c.get("/").text, c.get("/login").text):
            assert TOKEN not in body
        assert all(TOKEN not in v for v in c.cookies.values())


def test_no_secret_on_any_page(kafka_bootstrap: str, data: ConsoleData) -> None:
    # SASL keys on a plaintext listener: librdkafka ignores them, the console must not show them
    conf = {"bootstrap.servers": kafka_bootstrap, "client.id": "console-test",
            "sasl.username": "u", "sasl.password": SECRET}
    settings = ConsoleSettings(conf=conf, token=TOKEN)
    assert SECRET not in repr(settings) and TOKEN not in repr(settings)
    assert settings.safe_conf()["sasl.password"] == "***"
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        pages = ["/", f"/dlq/{data.dlq}", f"/dlq/{data.dlq}/record/0/0", "/nowhere",
                 f"/fragments/dlq/{data.dlq}", f"/dlq/{data.dlq}/export.jsonl", "/login",
                 f"/dlq/{data.dlq}?since=bad"]
        for path in pages:
            r = c.get(path)
            assert r.status_code in (200, 400, 404), path
            assert SECRET not in r.text and TOKEN not in r.text, path
            assert all(SECRET not in v and TOKEN not in v for v in r.headers.values()), path


def test_redrive_preview_then_run_sends_exactly_the_selected_with_audit_headers(
    rw: TestClient, data: ConsoleData, kafka_bootstrap: str
) -> None:
    # Given two records picked on the page
    page = rw.get(f"/dlq/{data.dlq}?error=MessageSizeTooLargeError").text
    picked = _sel(page)[:2]
    form = {"csrf": csrf_of(page), "mode": "selected", "sel": picked, "step": "preview"}
    # When previewed
    preview = rw.post(f"/dlq/{data.dlq}/redrive", data=form, follow_redirects=False)
    assert preview.status_code == 303
    assert _wait_job(rw, preview.headers["location"])["state"] == "done"
    shown = rw.get(preview.headers["location"]).text
    # Then the preview counts them per target and nothing was sent
    assert re.search(r'id="count">2<', shown) and f"→ {data.source}" in shown
    assert read_to_end(kafka_bootstrap, data.source) == []
    # When run (the form the preview page offers)
    run = {k: v for k, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"',
                                       shown.split('id="run-form"')[1])}
    run["sel"] = picked  # type: ignore[assignment]
    before_ms = int(time.time() * 1000)
    done = rw.post(f"/dlq/{data.dlq}/redrive", data=run, follow_redirects=False)
    assert _wait_job(rw, done.headers["location"])["state"] == "done"
    after_ms = int(time.time() * 1000)
    # Then exactly those two are on the original topic, with the audit headers
    got = read_to_end(kafka_bootstrap, data.source)
    assert len(got) == 2
    froms = sorted(dict(m.headers())[h.REDRIVE_FROM].decode() for m in got)
    assert froms == sorted(f"{data.dlq}:{c}" for c in picked)
    for m in got:
        hs = dict(m.headers())
        assert hs[h.REDRIVE_BY].startswith(b"console:")
        assert before_ms <= int(hs[h.REDRIVE_AT]) <= after_ms
        assert hs[h.REPLAY_COUNT] == b"1"
    # and the DLQ still holds all its records
    assert len(_sel(rw.get(f"/dlq/{data.dlq}?size=50").text)) == 12


def test_redrive_refuses_bad_targets_and_inputs(rw: TestClient, data: ConsoleData) -> None:
    csrf = csrf_of(rw.get(f"/dlq/{data.dlq}").text)
    url = f"/dlq/{data.dlq}/redrive"
    cases = [
        ({"sel": "0:0", "to_topic": "bad topic!"}, "illegal topic name"),
        ({"sel": "0:0", "to_topic": unique_name("missing")}, "does not exist"),
        ({"sel": "0:0", "to_topic": data.dlq}, "the DLQ itself"),
        ({"sel": "zero"}, "bad record selection"),
        ({}, "no record selected"),
        ({"sel": "0:0", "rate": "-5"}, "rate must be > 0"),
        ({"sel": "0:0", "rate": "fast"}, "rate must be a number"),
        ({"sel": "0:0", "max_replays": "0"}, "loop guard"),
        ({"sel": "0:0", "mode": "everything"}, "mode must be"),
        ({"sel": "0:0", "since": "not-a-time"}, "not a time"),
    ]
    for form, words in cases:
        r = rw.post(url, data={"csrf": csrf, "mode": "selected", **form})
        assert r.status_code == 400, (form, r.text[:200])
        assert words in error_of(r.text), (form, error_of(r.text))


def test_redrive_all_matching_preview_counts_loop_guard_skips(
    rw: TestClient, data: ConsoleData, kafka_bootstrap: str, admin: AdminClient
) -> None:
    target = create_topic(admin, unique_name("console-target"), 1)
    csrf = csrf_of(rw.get(f"/dlq/{data.dlq}").text)
    form = {"csrf": csrf, "mode": "filter", "error": "TopicAuthorizationFailedError",
            "to_topic": target, "max_replays": "1", "step": "preview"}
    r = rw.post(f"/dlq/{data.dlq}/redrive", data=form, follow_redirects=False)
    assert _wait_job(rw, r.headers["location"])["state"] == "done"
    page = rw.get(r.headers["location"]).text
    assert re.search(r'id="count">2<', page) and f"→ {target}" in page
    assert read_to_end(kafka_bootstrap, target) == []


def test_purge_preview_then_run_deletes_exactly_the_previewed_prefix(
    rw: TestClient, kafka_bootstrap: str, admin: AdminClient
) -> None:
    from tests.helpers.dlq import dead_letter, make_source

    src = make_source(admin, kafka_bootstrap, partitions=1, prefix="console-purge")
    base = int(time.time() * 1000) - 100_000
    dead_letter(kafka_bootstrap, src, 6, base_ms=base)
    csrf = csrf_of(rw.get(f"/dlq/{src}.dlq").text)
    bad = rw.post(f"/dlq/{src}.dlq/purge", data={"csrf": csrf, "before": "someday"})
    assert bad.status_code == 400 and "not a time" in error_of(bad.text)
    preview = rw.post(f"/dlq/{src}.dlq/purge", data={"csrf": csrf, "before": str(base + 4_000)})
    assert 'id="purge-count">4 records' in preview.text
    dead_letter(kafka_bootstrap, src, 2, base_ms=base, start=6)  # arrives after the preview
    cuts = re.search(r'name="cuts" value="([^"]+)"', preview.text)
    assert cuts is not None
    done = rw.post(f"/dlq/{src}.dlq/purge", data={"csrf": csrf, "step": "run", "cuts": cuts.group(1)})
    assert 'id="purged">4 records deleted' in done.text
    assert len(_sel(rw.get(f"/dlq/{src}.dlq").text)) == 4
    beyond = rw.post(f"/dlq/{src}.dlq/purge", data={"csrf": csrf, "step": "run", "cuts": "0:999"})
    assert beyond.status_code == 400 and "beyond its records" in error_of(beyond.text)


def test_export_writes_matching_records_as_json_lines(ro: TestClient, data: ConsoleData) -> None:
    r = ro.get(f"/dlq/{data.dlq}/export.jsonl?error=KafkaTimeoutError")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in r.text.splitlines()]
    assert sorted(row["message_id"] for row in rows) == ["m0", "m1", "m10", "m11", "m5", "m6"]
    assert all(row["error_class"] == "KafkaTimeoutError" for row in rows)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_RELIABLE_CONSOLE_TOKEN"}
    return subprocess.run([sys.executable, "-m", "kafka_reliable", "console", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_cli_warns_on_a_non_loopback_bind_without_token_and_refuses_bad_options() -> None:
    # a cluster nobody answers on: the warning comes first, then one line and exit 1
    r = _cli("--host", "0.0.0.0", "--bootstrap-servers", "127.0.0.1:1")
    assert "warning: the console listens on 0.0.0.0 without a token" in r.stderr
    assert r.returncode == 1 and "cannot reach Kafka at 127.0.0.1:1" in r.stderr
    assert "Traceback" not in r.stderr
    quiet = _cli("--host", "127.0.0.1", "--bootstrap-servers", "127.0.0.1:1")
    assert "warning" not in quiet.stderr and quiet.returncode == 1
    bad = _cli("--port", "0")
    assert bad.returncode == 2 and "port must be 1..65535" in bad.stderr
    secret = _cli("--kafka-config", "sasl.password=hunter2", "--kafka-config", "nonsense.key=1")
    assert secret.returncode == 2 and "hunter2" not in secret.stderr


def test_a_running_redrive_can_be_stopped_and_is_logged_as_one_line(
    rw: TestClient, data: ConsoleData, admin: AdminClient, kafka_bootstrap: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a redrive of all 12 records at 1 record/s into a fresh topic
    target = create_topic(admin, unique_name("console-slow"), 1)
    csrf = csrf_of(rw.get(f"/dlq/{data.dlq}").text)
    form = {"csrf": csrf, "mode": "filter", "to_topic": target, "rate": "1", "step": "run"}
    with caplog.at_level("INFO", logger="kafka_reliable.console.audit"):
        r = rw.post(f"/dlq/{data.dlq}/redrive", data=form, follow_redirects=False)
        job = r.headers["location"]
        # When stopped while it runs
        assert rw.post(f"{job}/stop", data={"csrf": csrf}, follow_redirects=False).status_code == 303
        state = _wait_job(rw, job)
    # Then it ends early, what it sent is on the target, and one audit line says so
    assert state["state"] == "stopped"
    sent = len(read_to_end(kafka_bootstrap, target))
    assert sent == state["replayed"] and sent < 12
    lines = [r.getMessage() for r in caplog.records if r.name == "kafka_reliable.console.audit"]
    assert len([x for x in lines if "console redrive " in x and target in x]) == 1


def test_an_unexpected_error_is_a_500_page_without_details(
    ro: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kafka_reliable.console import overview

    def boom(*_a: object, **_k: object) -> None:
        raise RuntimeError("internal detail /etc/secret")

    monkeypatch.setattr(overview, "find_dlqs", boom)
    r = ro.get("/")
    assert r.status_code == 500
    assert "internal error (RuntimeError)" in error_of(r.text)
    assert "/etc/secret" not in r.text and "Traceback" not in r.text


def test_an_unreachable_cluster_is_a_clear_page(tmp_path: Path) -> None:
    settings = ConsoleSettings(conf={"bootstrap.servers": "127.0.0.1:1"}, timeout_s=1.0)
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        r = c.get("/")
        assert r.status_code == 502 and "Kafka" in error_of(r.text)
        assert c.get("/healthz").status_code == 200


def test_a_headers_only_record_shows_its_note_and_is_skipped_with_the_reason(
    rw: TestClient, kafka_bootstrap: str, admin: AdminClient
) -> None:
    from confluent_kafka import Producer

    # Given a share-group DLQ record that carries only headers, one of them garbled
    source = create_topic(admin, unique_name("console-share"), 1)
    dlq = create_topic(admin, source + "-dlq", 1)
    p = Producer({"bootstrap.servers": kafka_bootstrap})
    p.produce(dlq, headers=[("__dlq.errors.topic", source.encode()),
                            ("__dlq.errors.offset", b"-3")])
    assert p.flush(30) == 0
    # Then its page shows the note, the raw bytes and why a redrive cannot resend it
    page = html.unescape(rw.get(f"/dlq/{dlq}/record/0/0").text)
    assert "undecodable: __dlq.errors.offset: negative number -3" in page
    assert "2d 33" in page  # b"-3", raw
    assert "headers-only share-group DLQ record" in page
    # and a redrive preview skips it with that reason
    csrf = csrf_of(page)
    r = rw.post(f"/dlq/{dlq}/redrive", data={"csrf": csrf, "sel": "0:0", "mode": "selected"},
                follow_redirects=False)
    assert _wait_job(rw, r.headers["location"])["state"] == "done"
    preview = html.unescape(rw.get(r.headers["location"]).text)
    assert re.search(r'id="count">0<', preview)
    assert "cannot be resent as they are" in preview and "--from-source re-reads it" in preview
    assert read_to_end(kafka_bootstrap, source) == []


def test_shutdown_stops_a_running_redrive_after_committing_what_it_sent(
    kafka_bootstrap: str, data: ConsoleData, admin: AdminClient
) -> None:
    target = create_topic(admin, unique_name("console-shutdown"), 1)
    app = create_app(ConsoleSettings(conf={"bootstrap.servers": kafka_bootstrap}, token=TOKEN))
    with TestClient(app, raise_server_exceptions=False) as c:
        c.post("/login", data={"token": TOKEN}, follow_redirects=False)
        csrf = csrf_of(c.get(f"/dlq/{data.dlq}").text)
        form = {"csrf": csrf, "mode": "filter", "to_topic": target, "rate": "2", "step": "run"}
        job_id = c.post(f"/dlq/{data.dlq}/redrive", data=form,
                        follow_redirects=False).headers["location"].rsplit("/", 1)[1]
    job = app.state.jobs.get(job_id)
    assert job is not None and job.state == "stopped" and job.result is not None
    assert len(read_to_end(kafka_bootstrap, target)) == job.result.replayed < 12


def test_a_confluent_wire_format_value_without_a_registry_is_shown_as_hex_with_the_reason(
    ro: TestClient, kafka_bootstrap: str, admin: AdminClient
) -> None:
    from confluent_kafka import Producer

    dlq = create_topic(admin, unique_name("console-wire") + ".dlq", 1)
    p = Producer({"bootstrap.servers": kafka_bootstrap})
    p.produce(dlq, value=b"\x00\x00\x00\x00\x07\x02ab", headers=[(h.ERROR_CLASS, b"X")])
    assert p.flush(30) == 0
    page = html.unescape(ro.get(f"/dlq/{dlq}/record/0/0").text)
    assert "Confluent wire format, not decoded" in page and "no registry_url" in page
    assert "00 00 00 00 07 02 61 62" in page
