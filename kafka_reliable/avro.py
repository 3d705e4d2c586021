"""Avro with fastavro: bundled schemas, single-object encoding, Confluent wire format, evolution.

Default framing is the Avro specification's *single-object encoding*: ``C3 01``, the writer
schema's 8-byte little-endian CRC-64-AVRO fingerprint, then the binary body. A reader that
knows the writer schema by fingerprint decodes it with its own (reader) schema, so v1 and v2
of a schema read each other. When a schema registry URL is configured the Confluent wire
format is written instead: ``00``, the 4-byte big-endian schema id, then the body; the schema
is registered (subject ``<topic>-value``) on first use.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import logging
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint as _fingerprint
from fastavro.schema import to_parsing_canonical_form
from fastavro.validation import ValidationError, validate

from kafka_reliable.config import redact_url
from kafka_reliable.errors import SerializationError

log = logging.getLogger(__name__)

#: First two bytes of an Avro single-object encoded record (specification, "Single object
#: encoding").
SINGLE_OBJECT_MAGIC = b"\xc3\x01"
#: Length of the single-object header: magic + 8-byte fingerprint.
SINGLE_OBJECT_HEADER_LEN = 10
#: First byte of a Confluent wire-format record, followed by a 4-byte big-endian schema id.
CONFLUENT_MAGIC = b"\x00"
#: Content type the schema registry REST API expects.
REGISTRY_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


@dataclass(frozen=True)
class AvroSchema:
    """A parsed schema with its Parsing Canonical Form and CRC-64-AVRO fingerprint."""

    name: str
    source: dict[str, Any] = field(repr=False)
    parsed: Any = field(repr=False, compare=False)
    canonical: str = field(repr=False)
    fingerprint: bytes

    @classmethod
    def from_json(cls, schema: Mapping[str, Any] | str) -> AvroSchema:
        raw = json.loads(schema) if isinstance(schema, str) else copy.deepcopy(dict(schema))
        try:
            parsed = fastavro.parse_schema(raw, named_schemas={})
        except Exception as exc:  # fastavro raises several kinds for a bad schema
            raise SerializationError(f"invalid Avro schema: {exc}") from exc
        canonical = to_parsing_canonical_form(parsed)
        fp = bytes.fromhex(_fingerprint(canonical, "CRC-64-AVRO"))
        name = parsed.get("name", canonical) if isinstance(parsed, dict) else canonical
        return cls(name=name, source=raw, parsed=parsed, canonical=canonical, fingerprint=fp)

    @property
    def fingerprint_int(self) -> int:
        """The fingerprint as the unsigned 64-bit number the specification defines."""
        return int.from_bytes(self.fingerprint, "little")

    @property
    def namespace(self) -> str:
        return self.name.rpartition(".")[0]


def schema_dir() -> Path:
    """Folder of the bundled ``.avsc`` files (``schemas/`` at the repository top)."""
    return Path(str(resources.files("kafka_reliable") / "schemas"))


def available_schemas() -> list[str]:
    """Names of the bundled schemas (file names without ``.avsc``)."""
    return sorted(p.stem for p in schema_dir().glob("*.avsc"))


@lru_cache(maxsize=64)
def _load_cached(path: str) -> AvroSchema:
    with open(path, encoding="utf-8") as fh:
        return AvroSchema.from_json(json.load(fh))


def load_schema(name_or_path: str | Path) -> AvroSchema:
    """Load a bundled schema by name (``"transaction"``, ``"transaction_v2"``) or any ``.avsc``
    path."""
    p = Path(name_or_path)
    if p.suffix != ".avsc":
        p = schema_dir() / f"{name_or_path}.avsc"
    if not p.is_file():
        raise SerializationError(
            f"Avro schema {str(name_or_path)!r} not found "
            f"(bundled: {', '.join(available_schemas())})"
        )
    return _load_cached(str(p.resolve()))


def _as_schema(s: AvroSchema | str | Path | Mapping[str, Any]) -> AvroSchema:
    if isinstance(s, AvroSchema):
        return s
    if isinstance(s, Mapping):
        return AvroSchema.from_json(s)
    return load_schema(s)


def encode_body(schema: AvroSchema, record: Any, *, context: str = "value") -> bytes:
    """Validate ``record`` against ``schema`` and return the Avro binary body (no header)."""
    try:
        validate(record, schema.parsed, raise_errors=True)
    except ValidationError as exc:
        raise SerializationError(_validation_message(schema, exc, context)) from exc
    buf = io.BytesIO()
    try:
        fastavro.schemaless_writer(buf, schema.parsed, record)
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise SerializationError(
            f"{context} does not fit Avro schema {schema.name}: {exc}"
        ) from exc
    return buf.getvalue()


def _validation_message(schema: AvroSchema, exc: ValidationError, context: str) -> str:
    problems = []
    for err in exc.errors[:3]:
        fld = str(err.field)
        if schema.namespace:
            fld = fld.replace(schema.namespace + ".", "")
        expected = err.schema
        if isinstance(expected, dict):
            expected = expected.get("name") or expected.get("type")
            expected = str(expected).rpartition(".")[2]
        elif isinstance(expected, list):
            expected = " | ".join(
                str(x.get("type") if isinstance(x, dict) else x) for x in expected
            )
        got = (
            "missing or None"
            if err.datum is None
            else f"{err.datum!r:.60} ({type(err.datum).__name__})"
        )
        problems.append(f"field {fld!r} is {got}, expected {expected}")
    return f"{context} does not fit Avro schema {schema.name}: " + "; ".join(problems)


def encode_single_object(schema: AvroSchema, record: Any, *, context: str = "value") -> bytes:
    """Avro single-object encoding: ``C3 01`` + fingerprint (8 bytes, little-endian) + body."""
    return SINGLE_OBJECT_MAGIC + schema.fingerprint + encode_body(schema, record, context=context)


class SchemaRegistryClient:
    """The two calls of the Confluent schema registry REST API we need, over urllib."""

    def __init__(self, *, url: str, timeout_s: float = 10.0) -> None:
        parts = urllib.parse.urlsplit(url)
        self._auth: str | None = None
        if parts.username is not None:
            user = urllib.parse.unquote(parts.username)
            token = f"{user}:{urllib.parse.unquote(parts.password or '')}"
            self._auth = "Basic " + base64.b64encode(token.encode()).decode()
            netloc = parts.hostname or ""
            if parts.port:
                netloc += f":{parts.port}"
            parts = parts._replace(netloc=netloc)
        self.url = urllib.parse.urlunsplit(parts).rstrip("/")
        self.timeout_s = timeout_s
        self._ids: dict[tuple[str, bytes], int] = {}
        self._by_id: dict[int, AvroSchema] = {}
        self._lock = threading.Lock()

    def register(self, subject: str, schema: AvroSchema) -> int:
        """Register ``schema`` under ``subject`` (idempotent on the registry) and return its id."""
        key = (subject, schema.fingerprint)
        with self._lock:
            if key in self._ids:
                return self._ids[key]
        path = f"/subjects/{urllib.parse.quote(subject, safe='')}/versions"
        reply = self._call("POST", path, {"schema": json.dumps(schema.source)})
        schema_id = int(reply["id"])
        with self._lock:
            self._ids[key] = schema_id
            self._by_id[schema_id] = schema
        return schema_id

    def get_schema(self, schema_id: int) -> AvroSchema:
        with self._lock:
            if schema_id in self._by_id:
                return self._by_id[schema_id]
        reply = self._call("GET", f"/schemas/ids/{schema_id}", None)
        schema = AvroSchema.from_json(reply["schema"])
        with self._lock:
            self._by_id[schema_id] = schema
        return schema

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Accept", REGISTRY_CONTENT_TYPE)
        if data is not None:
            req.add_header("Content-Type", REGISTRY_CONTENT_TYPE)
        if self._auth:
            req.add_header("Authorization", self._auth)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return dict(json.loads(resp.read()))
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", "replace")
            raise SerializationError(
                f"schema registry {redact_url(self.url)} {method} {path}: HTTP {exc.code} {detail}"
            ) from exc
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise SerializationError(
                f"schema registry {redact_url(self.url)} unreachable: {exc}"
            ) from exc


SchemaSpec = AvroSchema | str | Path | Mapping[str, Any]


class AvroSerializer:
    """``serializer(value, topic) -> bytes`` for ``ReliableKafkaProducer(serializer=...)``.

    ``schemas`` maps topic names to schemas (objects, bundled names or paths); ``default_schema``
    serves any other topic. Bytes pass through unchanged (already encoded). A value that does
    not fit raises :class:`~kafka_reliable.errors.SerializationError` naming the field.
    """

    def __init__(
        self,
        *,
        schemas: Mapping[str, SchemaSpec] | None = None,
        default_schema: SchemaSpec | None = None,
        registry_url: str | None = None,
        registry_timeout_s: float = 10.0,
    ) -> None:
        self._schemas = {topic: _as_schema(s) for topic, s in (schemas or {}).items()}
        self._default = _as_schema(default_schema) if default_schema is not None else None
        self._registry = (
            SchemaRegistryClient(url=registry_url, timeout_s=registry_timeout_s)
            if registry_url
            else None
        )
        if not self._schemas and self._default is None:
            raise SerializationError("AvroSerializer needs schemas per topic or a default_schema")

    @property
    def wire_format(self) -> str:
        return "confluent" if self._registry is not None else "single-object"

    def schema_for(self, topic: str) -> AvroSchema:
        schema = self._schemas.get(topic, self._default)
        if schema is None:
            raise SerializationError(
                f"no Avro schema for topic {topic!r} (known: {', '.join(sorted(self._schemas))})"
            )
        return schema

    def __call__(self, value: Any, topic: str) -> bytes:
        if isinstance(value, bytes):
            return value
        schema = self.schema_for(topic)
        context = f"value for topic {topic!r}"
        if self._registry is None:
            return encode_single_object(schema, value, context=context)
        schema_id = self._registry.register(f"{topic}-value", schema)
        return (
            CONFLUENT_MAGIC
            + schema_id.to_bytes(4, "big")
            + encode_body(schema, value, context=context)
        )


class AvroDecoder:
    """Reads single-object (and, with a registry, Confluent) records, optionally with a reader
    schema.

    Writer schemas are found by fingerprint among ``writer_schemas`` (default: every bundled
    schema). With ``reader_schema`` set, Avro schema resolution applies: fields the writer did
    not have take their defaults, fields the reader does not know are dropped.
    """

    def __init__(
        self,
        *,
        reader_schema: SchemaSpec | None = None,
        writer_schemas: Iterable[SchemaSpec] | None = None,
        registry_url: str | None = None,
    ) -> None:
        self.reader = _as_schema(reader_schema) if reader_schema is not None else None
        specs = list(writer_schemas) if writer_schemas is not None else available_schemas()
        self._writers: dict[bytes, AvroSchema] = {}
        for spec in specs:
            self.add_writer_schema(_as_schema(spec))
        if self.reader is not None:
            self.add_writer_schema(self.reader)
        self._registry = SchemaRegistryClient(url=registry_url) if registry_url else None

    def add_writer_schema(self, schema: AvroSchema) -> None:
        self._writers[schema.fingerprint] = schema

    def writer_schema_of(self, data: bytes) -> AvroSchema:
        """The schema ``data`` was written with, from its header."""
        if data[:2] == SINGLE_OBJECT_MAGIC and len(data) >= SINGLE_OBJECT_HEADER_LEN:
            fp = bytes(data[2:SINGLE_OBJECT_HEADER_LEN])
            schema = self._writers.get(fp)
            if schema is None:
                raise SerializationError(
                    f"unknown writer schema fingerprint {int.from_bytes(fp, 'little'):#018x}; "
                    "pass it in writer_schemas"
                )
            return schema
        if data[:1] == CONFLUENT_MAGIC and len(data) >= 5:
            if self._registry is None:
                raise SerializationError(
                    "Confluent wire-format record but no registry_url configured"
                )
            return self._registry.get_schema(int.from_bytes(data[1:5], "big"))
        raise SerializationError(
            f"not an Avro single-object or Confluent record (first bytes {bytes(data[:2]).hex()})"
        )

    def decode(self, data: bytes) -> Any:
        writer = self.writer_schema_of(data)
        offset = SINGLE_OBJECT_HEADER_LEN if data[:1] == SINGLE_OBJECT_MAGIC[:1] else 5
        reader = self.reader.parsed if self.reader is not None else None
        try:
            return fastavro.schemaless_reader(io.BytesIO(data[offset:]), writer.parsed, reader)
        except (
            Exception
        ) as exc:  # fastavro raises several kinds for bad data or incompatible schemas
            target = self.reader.name if self.reader is not None else writer.name
            raise SerializationError(
                f"cannot decode {writer.name} record as {target}: {exc}"
            ) from exc


def decode_single_object(
    data: bytes, *, writer: SchemaSpec, reader: SchemaSpec | None = None
) -> Any:
    """Decode one single-object record whose writer schema is known."""
    return AvroDecoder(reader_schema=reader, writer_schemas=[writer]).decode(data)
