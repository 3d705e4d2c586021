"""RetryConfig validation and producer_config translation."""

from __future__ import annotations

import pytest

from kafka_reliable.config import (
    HealthThresholds,
    RetryConfig,
    TopicNaming,
    build_producer_config,
    check_bootstrap_servers,
    check_client_keys,
    client_config,
    redact,
    redact_url,
    translate_producer_config,
)
from kafka_reliable.errors import ConfigurationError, InputError, KafkaReliableError, classify


def test_feature_document_producer_config_translates() -> None:
    # Given the document's producer_config
    doc = {
        "bootstrap_servers": ["localhost:9092"], "acks": "all", "retries": 0,
        "enable_idempotence": True, "max_in_flight_requests_per_connection": 1,
        "compression_type": "lz4", "batch_size": 16384, "linger_ms": 10,
        "buffer_memory": 67108864, "request_timeout_ms": 30000, "delivery_timeout_ms": 120000,
    }
    # When
    out = translate_producer_config(doc)
    # Then: librdkafka keys; retries=0 dropped because idempotence needs librdkafka's retries
    assert out == {
        "bootstrap.servers": "localhost:9092", "acks": "all", "enable.idempotence": True,
        "max.in.flight.requests.per.connection": 1, "compression.type": "lz4",
        "batch.size": 16384, "linger.ms": 10, "queue.buffering.max.kbytes": 65536,
        "request.timeout.ms": 30000, "delivery.timeout.ms": 120000,
    }


def test_retries_zero_kept_without_idempotence() -> None:
    assert translate_producer_config({"enable_idempotence": False, "retries": 0})["retries"] == 0


def test_dotted_keys_pass_through_and_unknown_keys_are_named() -> None:
    assert translate_producer_config({"queue.buffering.max.ms": 7}) == {"queue.buffering.max.ms": 7}
    with pytest.raises(ConfigurationError, match="'linger_msec'.*linger_ms"):
        translate_producer_config({"linger_msec": 5})
    with pytest.raises(ConfigurationError, match="value_serializer"):
        translate_producer_config({"value_serializer": str})


def test_build_config_defaults_and_override() -> None:
    conf = build_producer_config(["a:1", "b:2"], {"linger_ms": 50})
    assert conf["bootstrap.servers"] == "a:1,b:2"
    assert conf["acks"] == "all" and conf["enable.idempotence"] is True
    assert conf["linger.ms"] == 50


def test_redaction() -> None:
    assert redact({"sasl.password": "s3cret", "sasl.username": "u"}) == {"sasl.password": "***", "sasl.username": "u"}
    assert redact_url("redis://:pw@host:6379/0") == "redis://:***@host:6379/0"
    assert redact_url("rediss://user:pw@h/1") == "rediss://user:***@h/1"
    assert redact_url("redis://host:6379") == "redis://host:6379"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 1.5}, "max_retries"),
        ({"initial_delay_ms": -5}, "initial_delay_ms"),
        ({"initial_delay_ms": 500, "max_delay_ms": 100}, "max_delay_ms"),
        ({"backoff_multiplier": 0.5}, "backoff_multiplier"),
        ({"retriable_errors": ["NoSuchError"]}, "NoSuchError"),
        ({"retriable_errors": "KafkaTimeoutError"}, "list of names"),
    ],
)
def test_retry_config_rejects_nonsense(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RetryConfig(**kwargs)


def test_retriable_errors_accept_both_naming_styles() -> None:
    rc = RetryConfig(retriable_errors=["KafkaTimeoutError", "NOT_ENOUGH_REPLICAS"])
    assert rc.is_retriable(classify("_MSG_TIMED_OUT"))
    assert rc.is_retriable(classify("NOT_ENOUGH_REPLICAS"))
    assert not rc.is_retriable(classify("NOT_LEADER_FOR_PARTITION"))
    assert not rc.is_retriable(classify("MSG_SIZE_TOO_LARGE"))


def test_default_retriable_set_follows_the_table() -> None:
    rc = RetryConfig()
    for code in ("_MSG_TIMED_OUT", "REQUEST_TIMED_OUT", "NOT_LEADER_FOR_PARTITION", "LEADER_NOT_AVAILABLE",
                 "NOT_ENOUGH_REPLICAS", "NOT_ENOUGH_REPLICAS_AFTER_APPEND", "BROKER_NOT_AVAILABLE",
                 "_TRANSPORT", "_ALL_BROKERS_DOWN"):
        assert rc.is_retriable(classify(code)), code
    for code in ("MSG_SIZE_TOO_LARGE", "INVALID_RECORD", "CORRUPT_MESSAGE", "TOPIC_AUTHORIZATION_FAILED",
                 "_VALUE_SERIALIZATION", "SOMETHING_NEW"):
        assert not rc.is_retriable(classify(code)), code


def test_fatal_errors_are_routed_as_retriable() -> None:
    c = classify("OUT_OF_ORDER_SEQUENCE_NUMBER")
    assert c.kind.value == "fatal" and RetryConfig().is_retriable(c)
    assert classify("_MSG_TIMED_OUT", fatal=True).kind.value == "fatal"


def test_classification_names_document_classes() -> None:
    assert classify("_MSG_TIMED_OUT").error_class == "KafkaTimeoutError"
    assert classify("NOT_LEADER_OR_FOLLOWER").error_class == "NotLeaderForPartitionError"
    assert classify("TOPIC_AUTHORIZATION_FAILED").error_class == "TopicAuthorizationFailedError"
    assert classify("KafkaTimeoutError").code == "_MSG_TIMED_OUT"
    assert classify("WHATEVER").error_class == "KafkaError"


def test_health_thresholds_validation() -> None:
    assert HealthThresholds.from_mapping({"error_rate_threshold": 0.1}).error_rate_threshold == 0.1
    with pytest.raises(ConfigurationError, match="unknown health thresholds"):
        HealthThresholds.from_mapping({"error_rate": 0.1})
    with pytest.raises(ConfigurationError, match="latency_threshold_ms"):
        HealthThresholds(latency_threshold_ms=0)


def test_topic_naming() -> None:
    n = TopicNaming()
    assert n.retry_topic("orders") == "orders.retry" and n.dlq_topic("orders") == "orders.dlq"
    assert n.source_of("orders.retry") == "orders" and n.source_of("orders.dlq") == "orders"
    assert n.source_of("orders") is None and n.source_of(".dlq") is None


def test_configuration_errors_are_input_errors() -> None:
    # the CLI exits 2 for an InputError; the class keeps its old bases
    assert issubclass(ConfigurationError, InputError) and issubclass(InputError, KafkaReliableError)
    assert issubclass(ConfigurationError, ValueError)


@pytest.mark.parametrize("value", ["", "  ", ",", "a:1,", [], ["", "b:2"]])
def test_empty_bootstrap_servers_are_refused(value: object) -> None:
    with pytest.raises(ConfigurationError, match="bootstrap_servers is empty"):
        check_bootstrap_servers(value)
    with pytest.raises(ConfigurationError, match="bootstrap_servers"):
        build_producer_config(value, None)  # type: ignore[arg-type]


def test_bootstrap_servers_are_joined_and_trimmed() -> None:
    assert check_bootstrap_servers(["a:1", "b:2"]) == "a:1,b:2"
    assert check_bootstrap_servers(" a:1 , b:2 ") == "a:1,b:2"
    with pytest.raises(ConfigurationError, match="bootstrap_servers"):
        build_producer_config(None, {"bootstrap_servers": ""})


def test_misspelt_librdkafka_key_is_refused_with_a_suggestion() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown --kafka-config key 'securty.protocol' "
                       r"\(did you mean security.protocol\?\)"):
        check_client_keys({"securty.protocol": "SASL_SSL"}, where="--kafka-config")
    with pytest.raises(ConfigurationError, match=r"unknown producer_config key 'ssl.ca.locaton' "
                       r"\(did you mean ssl.ca.location\?\)"):
        translate_producer_config({"ssl.ca.locaton": "/tmp/ca.pem"})


def test_known_keys_and_values_pass_and_bad_values_are_named_without_secrets() -> None:
    check_client_keys({"security.protocol": "SASL_SSL", "group.id": "g", "socket.timeout.ms": "5000"})
    with pytest.raises(ConfigurationError, match='Invalid value "FOO".*security.protocol'):
        check_client_keys({"security.protocol": "FOO"})
    with pytest.raises(ConfigurationError, match="socket.timeout.ms.*outside allowed range"):
        check_client_keys({"socket.timeout.ms": "5"})
    # producer_config checks names only: values stay librdkafka's to judge at client creation
    assert translate_producer_config({"security.protocol": "FOO"}) == {"security.protocol": "FOO"}


def test_a_logger_passes_through_to_every_client_config() -> None:
    import logging

    logger = logging.getLogger("x")
    conf = build_producer_config("h:1", {"logger": logger})
    assert conf["logger"] is logger and client_config(conf)["logger"] is logger


@pytest.mark.parametrize("kwargs, match", [
    ({"dlq_suffix": ""}, "dlq_suffix must be non-empty"),
    ({"retry_suffix": ""}, "retry_suffix must be non-empty"),
    ({"dlq_suffix": " x"}, "dlq_suffix must be non-empty"),
    ({"dlq_suffix": ".retry"}, "both '.retry'"),
    ({"dlq_retention_ms": 0}, "dlq_retention_ms must be > 0"),
])
def test_topic_naming_refuses_a_topic_being_its_own_companion(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        TopicNaming(**kwargs)  # type: ignore[arg-type]
