"""Avro: bundled schemas, single-object framing, validation messages, evolution, Confluent framing."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from kafka_reliable.avro import (
    SINGLE_OBJECT_MAGIC,
    AvroDecoder,
    AvroSchema,
    AvroSerializer,
    available_schemas,
    decode_single_object,
    load_schema,
    schema_dir,
)
from kafka_reliable.errors import SerializationError

_CRC64_EMPTY = 0xC15D213AA4D7A795


def _crc64_avro(data: bytes) -> int:
    """The specification's reference CRC-64-AVRO, written out independently of fastavro."""
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (_CRC64_EMPTY & -(fp & 1))
        table.append(fp)
    fp = _CRC64_EMPTY
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


def _transaction(**overrides: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "transaction_id": "2f1c6a1e-0000-4000-8000-000000000001", "user_id": "u-1", "session_id": "s-1",
        "timestamp": 1_700_000_000_123,
        "items": [{"product_id": "p-00001", "sku": "ELE-00AA01", "category": "electronics",
                   "quantity": 2, "unit_price_cents": 4999}],
        "subtotal_cents": 9998, "discount_cents": 0, "tax_cents": 700, "shipping_cents": 0,
        "total_cents": 10698, "currency": "USD", "status": "COMPLETED",
        "payment": {"method": "CREDIT_CARD", "card_fingerprint": "card-1", "card_bin": "411111",
                    "card_last4": "1111", "billing_country": "US"},
        "shipping_address": {"country": "US", "city": "Austin", "postal_code": "78701"},
        "ip_address": "23.1.2.3", "device_type": "MOBILE", "is_fraud": False, "fraud_pattern": None,
        "metadata": {"segment": "vip"},
    }
    value.update(overrides)
    return value


def test_bundled_schemas_parse_and_are_packaged():
    # Given / When
    names = available_schemas()
    schemas = [load_schema(n) for n in names]

    # Then
    assert {"transaction", "transaction_v2", "user_event", "product_update"} <= set(names)
    assert all((schema_dir() / f"{n}.avsc").is_file() for n in names)
    assert {s.name for s in schemas} >= {"ecommerce.events.Transaction", "ecommerce.events.UserEvent",
                                         "ecommerce.events.ProductUpdate"}
    assert load_schema("transaction").fingerprint != load_schema("transaction_v2").fingerprint


def test_single_object_header_is_magic_plus_little_endian_crc64_of_canonical_form():
    # Given
    schema = load_schema("transaction")
    ser = AvroSerializer(default_schema=schema)

    # When
    data = ser(_transaction(), "transactions")

    # Then
    expected_fp = _crc64_avro(schema.canonical.encode("utf-8"))
    assert data[:2] == b"\xc3\x01" == SINGLE_OBJECT_MAGIC
    assert data[2:10] == expected_fp.to_bytes(8, "little")
    assert schema.fingerprint_int == expected_fp


def test_fingerprint_of_a_primitive_matches_the_reference_algorithm():
    # Given / When
    schema = AvroSchema.from_json('"long"')

    # Then
    assert schema.canonical == '"long"'
    assert schema.fingerprint_int == _crc64_avro(b'"long"')


def test_round_trip_with_the_writer_schema():
    # Given
    ser = AvroSerializer(schemas={"transactions": "transaction"})
    value = _transaction()

    # When
    decoded = AvroDecoder().decode(ser(value, "transactions"))

    # Then
    assert decoded["timestamp"] == datetime.fromtimestamp(value["timestamp"] / 1000, tz=UTC)
    assert {k: v for k, v in decoded.items() if k != "timestamp"} == {
        k: v for k, v in value.items() if k != "timestamp"
    }


def test_v1_data_read_with_v2_gets_the_defaults():
    # Given
    data = AvroSerializer(default_schema="transaction")(_transaction(), "transactions")

    # When
    decoded = decode_single_object(data, writer="transaction", reader="transaction_v2")

    # Then
    assert decoded["sales_channel"] == "WEB"
    assert decoded["risk_score"] is None
    assert decoded["total_cents"] == 10698


def test_v2_data_read_with_v1_drops_the_new_fields():
    # Given
    v2_value = _transaction(sales_channel="MOBILE_APP", risk_score=0.93)
    data = AvroSerializer(default_schema="transaction_v2")(v2_value, "transactions")

    # When
    decoded = AvroDecoder(reader_schema="transaction").decode(data)

    # Then
    assert "sales_channel" not in decoded and "risk_score" not in decoded
    assert decoded["transaction_id"] == v2_value["transaction_id"]
    assert decoded["items"] == v2_value["items"]


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"total_cents": "10698"}, "total_cents", "expected long"),
        ({"total_cents": 106.98}, "total_cents", "expected long"),
        ({"currency": "BTC"}, "currency", "expected Currency"),
        ({"user_id": None}, "user_id", "missing"),
        ({"items": [{"product_id": "p", "sku": "s", "category": "c", "quantity": "two",
                     "unit_price_cents": 1}]}, "quantity", "expected int"),
    ],
)
def test_a_value_that_does_not_fit_names_the_field(overrides, field, fragment):
    # Given
    ser = AvroSerializer(default_schema="transaction")

    # When
    with pytest.raises(SerializationError) as info:
        ser(_transaction(**overrides), "orders")

    # Then
    message = str(info.value)
    assert field in message and fragment in message
    assert "'orders'" in message and "Transaction" in message


def test_unknown_topic_bytes_and_garbage_are_clear():
    # Given
    ser = AvroSerializer(schemas={"transactions": "transaction"})

    # When / Then
    assert ser(b"\x01\x02", "anything") == b"\x01\x02"
    with pytest.raises(SerializationError, match="no Avro schema for topic 'clicks'"):
        ser({}, "clicks")
    with pytest.raises(SerializationError, match="not an Avro single-object"):
        AvroDecoder().decode(b'{"json": true}')
    with pytest.raises(SerializationError, match="unknown writer schema fingerprint"):
        AvroDecoder(writer_schemas=["user_event"]).decode(ser(_transaction(), "transactions"))
    with pytest.raises(SerializationError, match="not found"):
        load_schema("no_such_schema")


class _Registry(BaseHTTPRequestHandler):
    """A minimal in-process schema registry (register + fetch by id) for the framing test."""

    subjects: dict[str, int] = {}
    schemas: dict[int, str] = {}

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        subject = self.path.split("/")[2]
        schema_id = self.subjects.setdefault(subject, 40 + len(self.subjects))
        self.schemas[schema_id] = body["schema"]
        self._reply({"id": schema_id})

    def do_GET(self) -> None:  # noqa: N802
        self._reply({"schema": self.schemas[int(self.path.rsplit("/", 1)[1])]})

    def _reply(self, obj: dict[str, Any]) -> None:
        data = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def registry_url() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_confluent_wire_format_when_a_registry_is_configured(registry_url):
    # Given
    ser = AvroSerializer(schemas={"orders": "transaction"}, registry_url=registry_url)

    # When
    data = ser(_transaction(), "orders")
    decoded = AvroDecoder(writer_schemas=[], registry_url=registry_url).decode(data)

    # Then
    schema_id = _Registry.subjects["orders-value"]
    assert ser.wire_format == "confluent"
    assert data[:1] == b"\x00" and int.from_bytes(data[1:5], "big") == schema_id
    assert decoded["total_cents"] == 10698


def test_registry_unreachable_is_a_serialization_error():
    # Given
    ser = AvroSerializer(default_schema="transaction", registry_url="http://user:secret@127.0.0.1:9")

    # When
    with pytest.raises(SerializationError) as info:
        ser(_transaction(), "orders")

    # Then
    assert "unreachable" in str(info.value) and "secret" not in str(info.value)
