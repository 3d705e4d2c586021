"""Real services for tests: one Kafka broker and one Redis per run, unique topics per test.

Kafka: KAFKA_BOOTSTRAP_SERVERS when set; else testcontainers when a Docker engine answers;
else the project's dev broker (started by one xdist worker, the others wait for it). Redis:
REDIS_URL when set; else a local redis-server. With CI=true a missing service fails the run;
elsewhere those tests skip with the reason. How tests share workers: tests/helpers/groups.py,
CONTRIBUTING.md.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka.admin import AdminClient

from tests.containers import docker_answers, start_kafka_container
from tests.helpers.dlq import Dlq500, dead_letter, make_source
from tests.helpers.groups import group_of, join_group, order_for_workers
from tests.helpers.kafka import create_topic, unique_name
from tests.helpers.ports import reserve_ports

CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _unavailable(reason: str) -> None:
    if CI:
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


class _Kafka:
    def __init__(self) -> None:
        self.bootstrap: str | None = None
        self.dev_broker: object | None = None
        self.container: object | None = None
        self.error: str | None = None

    def start(self) -> None:
        env = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if env:
            self.bootstrap = env
            return
        if docker_answers():
            try:
                self.container, self.bootstrap = start_kafka_container()
            except Exception as exc:  # noqa: BLE001 - reported as the reason
                self.error = f"Kafka container did not start: {exc}"
            return
        from kafka_reliable.dev.broker import DevBroker

        broker = DevBroker()
        try:
            with _one_starter("dev-broker"):
                broker.start()
        except Exception as exc:  # noqa: BLE001 - reported as the reason
            self.error = f"no Kafka broker: {exc}"
            return
        self.dev_broker = broker
        self.bootstrap = broker.bootstrap_servers


_kafka = _Kafka()


@contextlib.contextmanager
def _one_starter(service: str) -> Iterator[None]:
    """Only one process at a time starts a shared dev service (xdist workers, parallel runs);
    the others wait, then find it running (``start()`` is a no-op then)."""
    from kafka_reliable.dev.broker import default_home

    lock = default_home() / f"{service}.start.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    if _kafka.bootstrap is None and _kafka.error is None:
        _kafka.start()
    if _kafka.bootstrap is None:
        _unavailable(_kafka.error or "no Kafka broker")
    assert _kafka.bootstrap is not None
    yield _kafka.bootstrap


@pytest.fixture(scope="session")
def outage_broker(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A second, private dev broker (reserved ports) that outage tests may stop and start.

    The shared broker is never stopped, so other tests (and other test runs) are not disturbed.
    Call ``.stop()`` / ``.start()`` on it; it is started on entry and stopped at session end.
    Every test using it is in one xdist group, so it starts once per run.
    """
    from kafka_reliable.dev.broker import DevBroker

    block = reserve_ports(2)
    broker = DevBroker(port=block.base, controller_port=block.base + 1,
                       data_dir=tmp_path_factory.mktemp("outage-broker"), heap_mb=512)
    try:
        try:
            broker.start()
        except Exception as exc:  # noqa: BLE001
            _unavailable(f"outage tests need a second dev broker (Java + Maven): {exc}")
        yield broker
    finally:
        broker.stop()
        block.release()


@pytest.fixture(scope="session")
def admin(kafka_bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": kafka_bootstrap})


@pytest.fixture
def new_topic(admin: AdminClient) -> Callable[..., str]:
    """Create a topic with a unique name: ``new_topic(partitions=1, config=None, prefix="t")``."""

    def make(partitions: int = 1, config: dict[str, str] | None = None, prefix: str = "t") -> str:
        return create_topic(admin, unique_name(prefix), partitions, config)

    return make


@pytest.fixture(scope="session")
def redis_url() -> str:
    env = os.environ.get("REDIS_URL")
    if env:
        return env
    from kafka_reliable.dev.redis_server import DevRedis

    r = DevRedis()
    try:
        with _one_starter("dev-redis"):
            r.start()
    except Exception as exc:  # noqa: BLE001
        _unavailable(f"no Redis: {exc}")
    return r.url


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _kafka.container is not None:
        _kafka.container.stop()  # type: ignore[attr-defined]


#: Fixtures that reach a real service: never in the unit tier.
SERVICE_FIXTURES = frozenset({"kafka_bootstrap", "redis_url"})


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tier markers, the unit tier kept broker-free, xdist groups (tests/helpers/groups.py)."""
    on_worker = bool(os.environ.get("PYTEST_XDIST_WORKER")) and bool(config.getvalue("loadgroup"))
    for item in items:
        path = str(item.fspath).replace(os.sep, "/")
        if "tests/integration/" in path:
            item.add_marker(pytest.mark.integration)
        if "tests/unit/" in path and SERVICE_FIXTURES & set(item.fixturenames):
            raise pytest.UsageError(f"{item.nodeid} uses a real service: it belongs in tests/integration "
                                    "(tests/unit is the broker-free tier: make test-fast)")
        group = group_of(item)
        if group is None:
            continue
        name, private = group
        if private:
            item.add_marker(pytest.mark.slow)
        if on_worker:
            join_group(item, name, private=private)
    if on_worker:
        order_for_workers(items)


@pytest.fixture(scope="session")
def otel_exporter() -> object:
    """An in-memory OpenTelemetry exporter on the process-wide tracer provider (set once)."""
    try:
        import opentelemetry.sdk  # noqa: F401 - in the test extra; missing means a broken install
    except ImportError as exc:
        _unavailable(f"the OpenTelemetry SDK is missing (pip install -e '.[test]'): {exc}")
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return exporter


@pytest.fixture(scope="module")
def dlq500(kafka_bootstrap: str, admin: AdminClient) -> Iterator[Dlq500]:
    """A source topic (3 partitions) whose DLQ holds 500 records in three error classes (one per module)."""
    source = make_source(admin, kafka_bootstrap)
    base = int(time.time() * 1000) - 3_600_000
    dead_letter(kafka_bootstrap, source, 500, base_ms=base)
    yield Dlq500(source, base)


@pytest.fixture
def wide_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Wide terminal for the CLI's tables (no truncated columns); ``usefixtures("wide_tables")``."""
    monkeypatch.setenv("COLUMNS", "220")
