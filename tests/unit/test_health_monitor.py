"""HealthMonitor rules, status, alerts, cooldown and recovery, with a controllable clock."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from kafka_reliable.errors import ConfigurationError
from kafka_reliable.health import HealthMonitor
from kafka_reliable.health.alerts import AlertManager, Condition, make_alert
from tests.helpers.clock import FakeClock


def stats(*states: str, internal: str | None = None) -> dict[str, Any]:
    brokers = {f"b{i}:9092/{i}": {"state": s, "source": "learned", "nodeid": i} for i, s in enumerate(states)}
    if internal is not None:
        brokers[":0/internal"] = {"state": internal, "source": "internal", "nodeid": -1}
    return {"brokers": brokers, "msg_cnt": 7}


def make(**kw: Any) -> tuple[HealthMonitor, FakeClock, list[dict[str, Any]]]:
    clock = FakeClock()
    kw.setdefault("memory_probe", lambda: 0.1)
    mon = HealthMonitor(clock=clock, wall_clock=lambda: 1_700_000_000.5, **kw)
    seen: list[dict[str, Any]] = []
    mon.add_alert_callback(seen.append)
    return mon, clock, seen


def deliver(mon: HealthMonitor, ok: int, failed: int, latency_ms: float = 5.0) -> None:
    for _ in range(ok):
        mon.record_delivery(True, latency_ms)
    for _ in range(failed):
        mon.record_delivery(False, None)


def test_idle_monitor_is_healthy_with_the_documented_keys() -> None:
    # Given
    mon, _, _ = make()
    # When
    status = mon.get_status()
    # Then
    assert status["status"] == "healthy"
    assert status["issues"] == []
    for key in ("avg_error_rate", "avg_latency_ms", "dlq_size", "memory_usage", "connected"):
        assert key in status["metrics"]
    assert status["metrics"]["connected"] is True


@pytest.mark.parametrize("bad", [{"error_rate_threshold": 1.5}, {"latency_threshold_ms": 0},
                                 {"dlq_size_threshold": -1}, {"memory_usage_threshold": 0}, {"nope": 1}])
def test_thresholds_are_validated(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        HealthMonitor(thresholds=bad)


def test_error_rate_above_threshold_is_degraded_with_an_alert() -> None:
    # Given
    mon, _, seen = make()
    deliver(mon, ok=90, failed=10)
    # When
    fired = mon.tick()
    # Then
    assert [a["type"] for a in fired] == ["error_rate"]
    alert = fired[0]
    assert alert["value"] == pytest.approx(0.1)
    assert alert["threshold"] == 0.05
    assert alert["severity"] == "warning"
    assert alert["timestamp"] == 1_700_000_000.5
    assert alert["recovered"] is False and alert["status"] == "degraded"
    assert "10.00%" in alert["message"]
    assert seen == fired
    status = mon.get_status()
    assert status["status"] == "degraded"
    assert status["metrics"]["avg_error_rate"] == pytest.approx(0.1)
    assert any("error rate" in i for i in status["issues"])


def test_error_rate_at_or_above_half_is_unhealthy() -> None:
    mon, _, _ = make()
    deliver(mon, ok=10, failed=10)
    fired = mon.tick()
    assert fired[0]["severity"] == "critical"
    assert mon.get_status()["status"] == "unhealthy"


def test_error_rate_is_not_judged_below_min_samples() -> None:
    # Given: 1 failure of 3 deliveries (33%) but min_samples 10
    mon, _, _ = make()
    deliver(mon, ok=2, failed=1)
    # Then
    assert mon.get_status()["status"] == "healthy"
    assert mon.get_status()["metrics"]["avg_error_rate"] == pytest.approx(1 / 3)
    # When more deliveries arrive
    deliver(mon, ok=6, failed=1)
    # Then
    assert mon.get_status()["status"] == "degraded"


def test_error_rate_window_slides_and_recovery_alert_follows() -> None:
    # Given
    mon, clock, seen = make(window_s=60.0)
    deliver(mon, ok=80, failed=20)
    assert mon.tick()[0]["type"] == "error_rate"
    # When the failures are older than the window, and new deliveries are fine
    clock.advance(61)
    deliver(mon, ok=50, failed=0)
    fired = mon.tick()
    # Then
    assert mon.get_status()["metrics"]["deliveries_in_window"] == 50
    assert [(a["type"], a["recovered"], a["severity"]) for a in fired] == [("error_rate", True, "info")]
    assert fired[0]["status"] == "healthy"
    assert len(seen) == 2


def test_window_keeps_recent_slices() -> None:
    mon, clock, _ = make(window_s=60.0)
    deliver(mon, ok=0, failed=10)
    clock.advance(30)
    deliver(mon, ok=10, failed=0)
    clock.advance(29)
    assert mon.get_status()["metrics"]["deliveries_in_window"] == 20
    clock.advance(2)
    assert mon.get_status()["metrics"]["deliveries_in_window"] == 10


def test_latency_above_threshold_is_degraded() -> None:
    mon, _, _ = make(thresholds={"latency_threshold_ms": 100})
    deliver(mon, ok=5, failed=0, latency_ms=150.0)
    deliver(mon, ok=5, failed=0, latency_ms=90.0)
    fired = mon.tick()
    assert [a["type"] for a in fired] == ["latency"]
    assert fired[0]["value"] == pytest.approx(120.0)
    assert mon.get_status()["metrics"]["avg_latency_ms"] == pytest.approx(120.0)
    assert mon.get_status()["status"] == "degraded"


def test_dlq_size_above_threshold_is_degraded() -> None:
    mon, _, _ = make()
    mon.set_dlq_size(100)
    assert mon.tick() == [] and mon.get_status()["status"] == "healthy"
    mon.set_dlq_size(101)
    fired = mon.tick()
    assert [(a["type"], a["value"], a["threshold"]) for a in fired] == [("dlq_size", 101, 100)]
    assert mon.get_status()["status"] == "degraded"


def test_memory_usage_above_threshold_is_degraded() -> None:
    usage = [0.5]
    mon, _, _ = make(memory_probe=lambda: usage[0])
    assert mon.get_status()["status"] == "healthy"
    usage[0] = 0.85
    fired = mon.tick()
    assert [(a["type"], a["value"], a["threshold"]) for a in fired] == [("memory_usage", 0.85, 0.8)]
    assert mon.get_status()["status"] == "degraded"


def test_failing_memory_probe_reports_unknown_and_does_not_break() -> None:
    def broken() -> float:
        raise OSError("no /proc")

    mon, _, _ = make(memory_probe=broken)
    status = mon.get_status()
    assert status["metrics"]["memory_usage"] is None
    assert status["status"] == "healthy"


def test_default_memory_probe_gives_a_fraction() -> None:
    mon = HealthMonitor()
    assert 0.0 < mon.get_status()["metrics"]["memory_usage"] < 1.0


def test_all_brokers_down_is_unhealthy_and_stats_bring_it_back() -> None:
    # Given
    mon, _, seen = make()
    mon.record_stats(stats("UP"))
    # When
    mon.record_connection_error("_ALL_BROKERS_DOWN", "1/1 brokers are down")
    fired = mon.tick()
    # Then
    assert [(a["type"], a["severity"]) for a in fired] == [("connection", "critical")]
    status = mon.get_status()
    assert status["status"] == "unhealthy"
    assert status["metrics"]["connected"] is False
    assert "_ALL_BROKERS_DOWN" in status["issues"][0]
    # When a broker is UP again
    mon.record_stats(stats("UP"))
    fired = mon.tick()
    # Then
    assert [(a["type"], a["recovered"]) for a in fired] == [("connection", True)]
    assert mon.get_status()["status"] == "healthy"
    assert len(seen) == 2


def test_transport_error_with_other_brokers_up_is_not_an_outage() -> None:
    mon, _, _ = make()
    mon.record_stats(stats("UP", "UP", "UP"))
    mon.record_connection_error("_TRANSPORT", "b0: Disconnected")
    assert mon.connected
    single, _, _ = make()
    single.record_stats(stats("UP"))
    single.record_connection_error("_TRANSPORT", "b0: Disconnected")
    assert not single.connected


def test_stats_without_up_broker_mean_down_only_after_one_was_up() -> None:
    mon, _, _ = make()
    mon.record_stats(stats("CONNECT", internal="UP"))
    assert mon.connected  # still starting
    mon.record_stats(stats("UP"))
    mon.record_stats(stats("TRY_CONNECT", internal="UP"))
    assert not mon.connected
    assert mon.get_status()["metrics"]["brokers_up"] == 0
    assert mon.get_status()["metrics"]["queued_messages"] == 7


def test_successful_delivery_proves_connectivity() -> None:
    mon, _, _ = make()
    mon.record_connection_error("_TRANSPORT", "refused")
    assert not mon.connected
    mon.record_delivery(True, 3.0)
    assert mon.connected


def test_other_error_codes_are_noted_but_not_disconnects() -> None:
    mon, _, _ = make()
    mon.record_connection_error("_MSG_TIMED_OUT", "timed out")
    status = mon.get_status()
    assert status["metrics"]["connected"] is True
    assert status["metrics"]["last_connection_error"] == "_MSG_TIMED_OUT: timed out"


def test_circuit_state_open_is_unhealthy_half_open_degraded() -> None:
    mon, _, _ = make()
    mon.set_circuit_state("open")
    assert mon.get_status()["status"] == "unhealthy"
    assert mon.tick()[0]["type"] == "circuit_breaker"
    mon.set_circuit_state("half_open")
    assert mon.get_status()["status"] == "degraded"
    mon.set_circuit_state("closed")
    assert mon.tick()[0]["recovered"] is True
    with pytest.raises(ValueError):
        mon.set_circuit_state("ajar")


def test_dedup_backend_unavailable_is_degraded() -> None:
    mon, _, _ = make()
    mon.set_dedup_available(False)
    assert mon.get_status()["status"] == "degraded"
    assert mon.tick()[0]["type"] == "deduplication"
    mon.set_dedup_available(True)
    assert mon.get_status()["status"] == "healthy"


def test_unhealthy_wins_over_degraded_and_issues_list_each_rule() -> None:
    mon, _, _ = make()
    mon.set_dlq_size(500)
    mon.record_connection_error("_ALL_BROKERS_DOWN", "down")
    status = mon.get_status()
    assert status["status"] == "unhealthy"
    assert len(status["issues"]) == 2


def test_active_condition_alerts_once_not_every_tick() -> None:
    mon, _, seen = make()
    mon.set_dlq_size(200)
    assert len(mon.tick()) == 1
    assert mon.tick() == []
    assert mon.tick() == []
    assert len(seen) == 1


def test_cooldown_suppresses_a_flapping_metric_then_fires_again() -> None:
    # Given
    mon, clock, seen = make(alert_cooldown_s=60.0)
    mon.set_dlq_size(200)
    mon.tick()
    mon.set_dlq_size(0)
    mon.tick()  # recovery
    # When it flaps within the cooldown
    clock.advance(10)
    mon.set_dlq_size(200)
    suppressed = mon.tick()
    mon.set_dlq_size(0)
    no_recovery = mon.tick()
    mon.set_dlq_size(200)
    # Then nothing is sent for the suppressed one, not even a recovery
    assert suppressed == [] and no_recovery == []
    assert [a["recovered"] for a in seen] == [False, True]
    # When the cooldown has passed and it is still active
    clock.advance(51)
    fired = mon.tick()
    # Then it fires again
    assert [(a["type"], a["recovered"]) for a in fired] == [("dlq_size", False)]


def test_raising_callback_is_logged_and_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    # Given
    mon, _, _ = make()
    calls: list[str] = []

    def bad(alert: dict[str, Any]) -> None:
        calls.append("bad")
        raise RuntimeError("handler bug")

    mon.add_alert_callback(bad)
    mon.add_alert_callback(lambda a: calls.append("good"))
    mon.set_dlq_size(1000)
    # When
    with caplog.at_level(logging.ERROR, logger="kafka_reliable.health.alerts"):
        fired = mon.tick()
    # Then
    assert len(fired) == 1
    assert calls == ["bad", "good"]
    assert "handler bug" in caplog.text
    assert mon.get_status()["status"] == "degraded"


def test_callback_must_be_callable() -> None:
    with pytest.raises(TypeError):
        HealthMonitor().add_alert_callback("not callable")  # type: ignore[arg-type]


def test_alert_manager_and_make_alert_contract() -> None:
    with pytest.raises(ValueError):
        make_alert(type="x", value=1, threshold=0, severity="panic", timestamp=0.0, message="m")
    clock = FakeClock()
    mgr = AlertManager(cooldown_s=0.0, clock=clock, wall_clock=lambda: 5.0)
    on = Condition("x", True, 2, 1, "warning", "x is 2")
    off = Condition("x", False, 0, 1, "warning", "x is 0")
    assert [a["message"] for a in mgr.evaluate([on])] == ["x is 2"]
    assert mgr.active_types == frozenset({"x"})
    assert [a["message"] for a in mgr.evaluate([off])] == ["recovered: x is 0"]
    assert [a["recovered"] for a in mgr.evaluate([on])] == [False]  # no cooldown


def test_last_status_is_set_by_tick() -> None:
    mon, _, _ = make()
    assert mon.last_status is None
    mon.tick()
    assert mon.last_status is not None and mon.last_status["status"] == "healthy"


def test_brokers_up_counts_a_broker_once_not_once_per_name() -> None:
    # Given: librdkafka's statistics of a one-broker cluster: the bootstrap entry (node id -1)
    # and the same broker learned from metadata (node id 1), both UP
    mon = HealthMonitor()
    brokers = {"127.0.0.1:9092/bootstrap": {"state": "UP", "source": "configured", "nodeid": -1},
               "127.0.0.1:9092/1": {"state": "UP", "source": "learned", "nodeid": 1},
               ":0/internal": {"state": "UP", "source": "internal", "nodeid": -1}}
    # When
    mon.record_stats({"brokers": brokers})
    # Then
    assert mon.brokers_up == 1
    # and before any metadata, an UP bootstrap entry is one broker up
    mon.record_stats({"brokers": {"127.0.0.1:9092/bootstrap": brokers["127.0.0.1:9092/bootstrap"]}})
    assert mon.brokers_up == 1
