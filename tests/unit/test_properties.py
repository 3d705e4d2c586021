"""Property-based tests (hypothesis): header codecs, config translation, backoff, spool."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kafka_reliable import headers as H
from kafka_reliable.backoff import backoff_ms
from kafka_reliable.config import (
    KAFKA_PYTHON_KEYS,
    RetryConfig,
    build_producer_config,
    redact,
    translate_producer_config,
)
from kafka_reliable.errors import ConfigurationError

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300)
topic_names = st.from_regex(r"\A[a-zA-Z0-9._-]{1,60}\Z")
epoch_ms = st.integers(min_value=0, max_value=2**53)
opt_int = st.none() | st.integers(min_value=0, max_value=2**62)
user_headers = st.lists(
    st.tuples(st.from_regex(r"\A[a-z][a-z0-9._-]{0,20}\Z").filter(lambda k: not k.startswith(H.PREFIX)),
              st.binary(max_size=50)),
    max_size=5,
)


# ---- header codecs ------------------------------------------------------------------------------

@st.composite
def failures(draw: Any) -> H.Failure:
    return H.Failure(
        original_topic=draw(topic_names), attempt=draw(st.integers(0, 10_000)),
        error_code=draw(st.from_regex(r"\A_?[A-Z_]{1,30}\Z")), error_class=draw(st.from_regex(r"\A[A-Za-z]{1,30}\Z")),
        error_message=draw(text), retriable=draw(st.booleans()),
        first_failure_at_ms=draw(epoch_ms), last_failure_at_ms=draw(epoch_ms),
        next_attempt_at_ms=draw(st.none() | epoch_ms),
        dlq_reason=draw(st.none() | st.sampled_from(sorted(H.DLQ_REASONS))),
        original_partition=draw(opt_int), original_offset=draw(opt_int), original_timestamp_ms=draw(opt_int),
        replay_count=draw(st.integers(0, 1000)),
    )


@given(failures(), user_headers, st.none() | st.from_regex(r"\A[0-9a-f-]{1,40}\Z"))
def test_failure_headers_round_trip(f: H.Failure, user: list[tuple[str, bytes]], mid: str | None) -> None:
    hdrs = H.failure_headers(user, f, message_id=mid)
    back = H.read_failure(hdrs)
    msg = H.truncate_utf8(f.error_message).decode()
    for name in ("original_topic", "attempt", "error_code", "error_class", "retriable", "first_failure_at_ms",
                 "last_failure_at_ms", "next_attempt_at_ms", "dlq_reason", "original_partition",
                 "original_offset", "original_timestamp_ms", "replay_count"):
        assert getattr(back, name) == getattr(f, name), name
    assert back.error_message == msg
    # user headers carried byte for byte, in order; at most one message id
    assert [h for h in hdrs if not h[0].startswith(H.PREFIX)] == user
    assert sum(1 for k, _ in hdrs if k == H.MESSAGE_ID) == (1 if mid is not None else 0)


@given(failures(), failures(), user_headers)
def test_error_headers_are_replaced_never_appended(f1: H.Failure, f2: H.Failure, user: list[tuple[str, bytes]]) -> None:
    once = H.failure_headers(user, f1, message_id="m-1")
    twice = H.failure_headers(once, f2)
    names = [k for k, _ in twice]
    assert len(names) == len(set(names)) + len([k for k, _ in user]) - len({k for k, _ in user})
    assert H.get(twice, H.MESSAGE_ID) == b"m-1"
    assert H.read_failure(twice).attempt == f2.attempt


@given(user_headers, st.integers(0, 100), st.none() | st.integers(0, 100))
def test_republish_headers_keep_user_headers_and_one_id(user: list[tuple[str, bytes]], attempt: int,
                                                        replays: int | None) -> None:
    f = H.Failure(original_topic="t", attempt=1, error_code="X", error_class="Y", error_message="z",
                  retriable=True, first_failure_at_ms=1, last_failure_at_ms=2, next_attempt_at_ms=3)
    out = H.republish_headers(H.failure_headers(user, f, message_id="id-7"), attempt=attempt, replay_count=replays)
    assert [h for h in out if not h[0].startswith(H.PREFIX)] == user
    assert [v for k, v in out if k == H.MESSAGE_ID] == [b"id-7"]
    assert H.get(out, H.NEXT_ATTEMPT_AT) is None and H.get(out, H.ERROR_CODE) is None


@given(st.integers(min_value=-(10**30), max_value=10**30))
def test_parse_decimal_reads_every_int(n: int) -> None:
    assert H.parse_decimal(str(n).encode()) == n


@given(st.binary(max_size=30))
def test_parse_decimal_never_guesses(raw: bytes) -> None:
    n = H.parse_decimal(raw)
    if n is not None:
        assert raw.lstrip(b"-").isdigit() and int(raw) == n


@given(text, st.integers(min_value=3, max_value=2000))
def test_truncate_utf8_is_bounded_and_valid(s: str, limit: int) -> None:
    out = H.truncate_utf8(s, limit)
    assert len(out) <= limit
    out.decode("utf-8")  # never splits a character
    if len(s.encode()) <= limit:
        assert out == s.encode()


# ---- config translation -------------------------------------------------------------------------

scalar = st.one_of(st.integers(0, 10**6), st.booleans(), st.from_regex(r"\A[a-zA-Z0-9_.:-]{0,20}\Z"))


@given(st.dictionaries(st.sampled_from(sorted(set(KAFKA_PYTHON_KEYS) - {"bootstrap_servers", "buffer_memory",
                                                                       "acks", "retries"})), scalar, max_size=8))
def test_kafka_python_keys_map_to_librdkafka_names(cfg: dict[str, Any]) -> None:
    out = translate_producer_config(cfg)
    assert out == {KAFKA_PYTHON_KEYS[k]: v for k, v in cfg.items()}


_DOTTED = {
    "linger.ms": st.integers(0, 900_000), "batch.size": st.integers(1, 2**31 - 1),
    "compression.type": st.sampled_from(["none", "gzip", "snappy", "lz4", "zstd"]),
    "client.id": st.from_regex(r"\A[a-z0-9-]{1,20}\Z"), "message.timeout.ms": st.integers(0, 2**31 - 1),
    "queue.buffering.max.messages": st.integers(1, 2**31 - 1), "request.timeout.ms": st.integers(1, 900_000),
    "statistics.interval.ms": st.integers(0, 86_400_000),
}


@settings(max_examples=50)
@given(st.fixed_dictionaries({}, optional=_DOTTED))
def test_known_dotted_keys_pass_through(cfg: dict[str, Any]) -> None:
    assert translate_producer_config(cfg) == cfg


@settings(max_examples=50)
@given(st.from_regex(r"\Azz[a-z]{1,8}(\.[a-z]{1,8}){1,3}\Z"))
def test_unknown_dotted_key_is_refused_by_name(key: str) -> None:
    with pytest.raises(ConfigurationError, match=key.replace(".", r"\.")):
        translate_producer_config({key: "1"})


@given(st.from_regex(r"\A[a-z]{2,10}(_[a-z]{2,10}){1,3}\Z").filter(lambda k: k not in KAFKA_PYTHON_KEYS))
def test_unknown_underscore_key_is_refused_by_name(key: str) -> None:
    try:
        translate_producer_config({key: 1})
    except ConfigurationError as exc:
        assert key in str(exc)
    else:  # a key the project documents as unsupported-but-known would raise too; none may pass
        pytest.fail(f"{key!r} was accepted")


@given(st.integers(min_value=1, max_value=2**40))
def test_buffer_memory_bytes_become_kbytes(n: int) -> None:
    assert translate_producer_config({"buffer_memory": n})["queue.buffering.max.kbytes"] == max(1, n // 1024)


@settings(max_examples=50)
@given(st.dictionaries(st.sampled_from(["sasl.password", "ssl.key.password", "sasl_plain_password", "ssl_password"]),
                       st.from_regex(r"\A[A-Za-z0-9]{8,40}\Z"), min_size=1))
def test_redact_hides_every_secret_value(secrets: dict[str, str]) -> None:
    conf = build_producer_config("h:1", dict(secrets))
    shown = repr(redact(conf))
    for v in secrets.values():
        assert v not in shown


@given(st.dictionaries(st.sampled_from(["linger_ms", "compression_type", "client_id"]), scalar))
def test_reliability_defaults_hold_unless_overridden(cfg: dict[str, Any]) -> None:
    conf = build_producer_config("h:1", cfg)
    assert conf["acks"] == "all" and conf["enable.idempotence"] is True
    assert conf["bootstrap.servers"] == "h:1"


# ---- backoff -------------------------------------------------------------------------------------

@st.composite
def retry_configs(draw: Any) -> RetryConfig:
    initial = draw(st.integers(0, 100_000))
    return RetryConfig(initial_delay_ms=initial, max_delay_ms=draw(st.integers(initial, 10_000_000)),
                       backoff_multiplier=draw(st.floats(1.0, 10.0)), jitter=draw(st.booleans()))


@given(retry_configs(), st.integers(1, 10_000), st.floats(0.0, 0.999999))
def test_backoff_is_capped_and_never_early(cfg: RetryConfig, attempt: int, r: float) -> None:
    d = backoff_ms(attempt, cfg, rand=lambda: r)
    nominal = min(float(cfg.max_delay_ms), cfg.initial_delay_ms * cfg.backoff_multiplier ** min(attempt - 1, 64))
    assert 0 <= d <= cfg.max_delay_ms
    low = nominal / 2 if cfg.jitter else nominal
    assert d >= int(low) - 1  # never earlier than the schedule's lower bound (int rounding only)


@given(retry_configs(), st.integers(1, 200))
def test_backoff_without_jitter_never_shrinks(cfg: RetryConfig, attempt: int) -> None:
    cfg = RetryConfig(initial_delay_ms=cfg.initial_delay_ms, max_delay_ms=cfg.max_delay_ms,
                      backoff_multiplier=cfg.backoff_multiplier, jitter=False)
    assert backoff_ms(attempt + 1, cfg) >= backoff_ms(attempt, cfg)


# ---- spool ---------------------------------------------------------------------------------------

records = st.lists(
    st.tuples(st.none() | st.from_regex(r"\A[0-9a-f]{4,12}-[0-9]{1,6}\Z"), topic_names, st.none() | st.binary(max_size=40),
              st.none() | st.binary(max_size=200), st.lists(st.tuples(st.text(max_size=10), st.none() | st.binary(max_size=20)),
                                                            max_size=3),
              st.none() | epoch_ms),
    max_size=40,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(records, min_size=1, max_size=4), st.integers(1, 25))
def test_spool_gives_back_each_record_once_byte_for_byte(batches: list[list[tuple[Any, ...]]], page: int) -> None:
    from kafka_reliable.record import OutgoingRecord
    from kafka_reliable.spool import Spool

    with tempfile.TemporaryDirectory() as d:
        spool = Spool(Path(d) / "spool.sqlite3")
        try:
            put = []
            for batch in batches:
                recs = [OutgoingRecord(message_id=m, topic=t, key=k, value=v, headers=list(h), timestamp_ms=ts)
                        for m, t, k, v, h, ts in batch]
                assert spool.add(recs, "test") == len(recs)
                put += [(m, t, k, v, list(h), ts) for m, t, k, v, h, ts in batch]
            got = []
            while True:
                rows = spool.oldest(page)
                if not rows:
                    break
                got += [(r.message_id, r.topic, r.key, r.value, list(r.headers), r.timestamp_ms) for r in rows]
                spool.delete([r.row_id for r in rows if r.row_id is not None])
            assert got == put  # each once, in order, unchanged
            assert spool.count() == 0
        finally:
            spool.close()
