"""Generators and scenarios: reproducible, schema-valid, realistic in shape."""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict

import pytest

from kafka_reliable.avro import AvroSerializer
from kafka_reliable.datagen.generators import (
    PRODUCT_UPDATE,
    TRANSACTION,
    USER_EVENT,
    GeneratedRecord,
    daily_traffic_factor,
)
from kafka_reliable.datagen.scenarios import (
    DUPLICATE,
    OVERSIZED,
    SCENARIOS,
    UNWRITABLE,
    Scenario,
    get_scenario,
    iter_records,
    make_generator,
)

START_MS = 1_700_006_400_000  # 2023-11-15 00:00 UTC
HOUR_MS = 3_600_000


def _run(name: str | Scenario, *, seed: int = 11, hours: float = 0.5, version: int = 1) -> list[GeneratedRecord]:
    scenario = name if isinstance(name, Scenario) else get_scenario(name)
    gen = make_generator(scenario, seed=seed, start_ms=START_MS, transaction_schema_version=version)
    return list(iter_records(scenario, gen, start_ms=START_MS + 12 * HOUR_MS, duration_ms=int(hours * HOUR_MS)))


def _serializer(transaction_schema: str = "transaction") -> AvroSerializer:
    return AvroSerializer(schemas={TRANSACTION: transaction_schema, USER_EVENT: "user_event",
                                   PRODUCT_UPDATE: "product_update"})


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_same_seed_gives_the_same_records(name):
    # Given / When
    first, second = _run(name, seed=5), _run(name, seed=5)

    # Then
    assert len(first) > 50
    assert first == second
    assert _run(name, seed=6) != first


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_generated_record_fits_its_schema(name):
    # Given
    records = _run(name)
    ser = _serializer()

    # When
    encoded = [ser(r.value, r.kind) for r in records]

    # Then
    assert len(encoded) == len(records)
    assert {r.kind for r in records} == {TRANSACTION, USER_EVENT, PRODUCT_UPDATE}


def test_v2_transactions_fit_the_v2_schema():
    # Given
    records = [r for r in _run("normal_traffic", version=2) if r.kind == TRANSACTION]
    ser = _serializer("transaction_v2")

    # When
    for r in records:
        ser(r.value, r.kind)

    # Then
    assert records and all(r.value["sales_channel"] in {"WEB", "MOBILE_APP"} for r in records)
    assert all(0.0 <= r.value["risk_score"] <= 1.0 for r in records)


def test_records_come_in_time_order_and_sessions_follow_the_funnel():
    # Given
    records = _run("peak_traffic")
    sessions: dict[str, list[dict]] = defaultdict(list)

    # When
    for r in records:
        if r.kind == USER_EVENT:
            sessions[r.value["session_id"]].append(r.value)

    # Then
    assert [r.timestamp_ms for r in records] == sorted(r.timestamp_ms for r in records)
    purchases = 0
    for events in sessions.values():
        assert [e["sequence_number"] for e in events] == list(range(len(events)))
        types = [e["event_type"] for e in events]
        if "PURCHASE" in types and types[0] != "LOGIN":
            purchases += 1
            assert types[0] == "PAGE_VIEW"
            assert types.index("ADD_TO_CART") < types.index("BEGIN_CHECKOUT") < types.index("PURCHASE")
            assert events[0]["user_id"] is not None
    paid_sessions = {r.value["session_id"] for r in records if r.kind == TRANSACTION}
    assert purchases > 10 and purchases <= len(paid_sessions)
    funnel = Counter(t for events in sessions.values() for t in {e["event_type"] for e in events})
    assert funnel["PAGE_VIEW"] > funnel["ADD_TO_CART"] > funnel["BEGIN_CHECKOUT"] > funnel["PURCHASE"]


def test_transaction_amounts_add_up_and_order_values_are_log_normal():
    # Given
    txns = [r.value for r in _run("peak_traffic", hours=2) if r.kind == TRANSACTION and not r.value["is_fraud"]]

    # When
    totals = [v["total_cents"] for v in txns]
    logs = [math.log(t) for t in totals]

    # Then
    for v in txns:
        assert v["subtotal_cents"] == sum(i["unit_price_cents"] * i["quantity"] for i in v["items"])
        assert v["total_cents"] == v["subtotal_cents"] - v["discount_cents"] + v["tax_cents"] + v["shipping_cents"]
    assert len(totals) > 100
    assert statistics.mean(totals) > 1.3 * statistics.median(totals)  # right-skewed in cents
    assert abs(statistics.mean(logs) - statistics.median(logs)) < 0.2 * statistics.stdev(logs)  # symmetric in log


def test_daily_curve_has_a_night_trough_and_an_evening_peak():
    # Given
    hourly = [daily_traffic_factor(START_MS + h * HOUR_MS) for h in range(24)]
    small = Scenario(name="t", description="t", sessions_per_minute=4.0, fraud_rate=0.0)

    # When
    records = _run(small, hours=24)
    per_hour = Counter((r.timestamp_ms - START_MS) // HOUR_MS % 24 for r in records if r.kind == USER_EVENT)

    # Then
    assert abs(statistics.mean(hourly) - 1.0) < 0.01
    assert hourly[3] < 0.3 < 1.5 < hourly[20]
    assert per_hour[20] > 3 * per_hour[3]


def test_fraud_attack_has_recognisable_patterns():
    # Given
    records = _run("fraud_attack", hours=3)
    txns = [r.value for r in records if r.kind == TRANSACTION]
    fraud = [v for v in txns if v["is_fraud"]]

    # When
    by_card = defaultdict(list)
    for v in fraud:
        if v["fraud_pattern"] == "CARD_TESTING":
            by_card[v["payment"]["card_fingerprint"]].append(v)
    takeovers = [v for v in fraud if v["fraud_pattern"] == "ACCOUNT_TAKEOVER"]

    # Then
    assert 0.05 < len(fraud) / len(txns) < 0.35
    assert by_card and takeovers
    for tries in by_card.values():
        assert len(tries) >= 5
        assert len({t["user_id"] for t in tries}) == len(tries)
        assert len({t["ip_address"] for t in tries}) == 1
        assert all(t["subtotal_cents"] < 500 for t in tries)
        assert sum(t["status"] == "DECLINED" for t in tries) >= 4
    for v in takeovers:
        assert v["shipping_address"]["country"] != v["payment"]["billing_country"]
    logins = [r.value for r in records if r.kind == USER_EVENT and r.value["event_type"] == "LOGIN"]
    assert len(logins) == len(takeovers) and all(e["properties"]["new_device"] == "true" for e in logins)


def test_normal_traffic_fraud_is_a_small_fraction():
    # Given / When
    txns = [r.value for r in _run("normal_traffic", seed=3, hours=24) if r.kind == TRANSACTION]

    # Then
    share = sum(v["is_fraud"] for v in txns) / len(txns)
    assert 0.001 < share < 0.04


def test_flash_sale_cuts_prices_and_concentrates_traffic():
    # Given
    records = _run("flash_sale", hours=1)

    # When
    cuts = [r.value for r in records[:10]]
    sale_ids = {v["product_id"] for v in cuts}
    views = Counter(r.value["product_id"] for r in records
                    if r.kind == USER_EVENT and r.value["event_type"] == "PRODUCT_VIEW")

    # Then
    assert all(v["update_type"] == "PRICE_CHANGE" and v["reason"] == "flash_sale" for v in cuts)
    assert all(v["price_cents"] < 0.7 * v["previous_price_cents"] for v in cuts)
    assert sum(views[p] for p in sale_ids) > 0.5 * sum(views.values())
    assert any(r.value["update_type"] == "OUT_OF_STOCK" for r in records if r.kind == PRODUCT_UPDATE)


def test_system_degradation_marks_failures_to_inject():
    # Given
    scenario = get_scenario("system_degradation")

    # When
    records = _run(scenario, hours=1)
    marks = Counter((r.kind, r.inject) for r in records)
    n = Counter(r.kind for r in records)

    # Then
    assert marks[(TRANSACTION, OVERSIZED)] == n[TRANSACTION] // scenario.oversized_every
    assert marks[(USER_EVENT, UNWRITABLE)] == n[USER_EVENT] // scenario.unwritable_every
    assert sum(c for (_, inj), c in marks.items() if inj == DUPLICATE) > 10
    assert all(r.inject is None for r in _run("normal_traffic"))


def test_unknown_scenario_lists_the_known_ones():
    with pytest.raises(ValueError, match="normal_traffic"):
        get_scenario("black_friday")


@pytest.mark.parametrize(("text", "hours"), [("1.5", 1.5), ("90m", 1.5), ("30s", 30 / 3600), ("2h", 2.0), ("1d", 24.0)])
def test_generate_duration_accepts_hours_and_units(text, hours):
    from kafka_reliable.cli.generate import parse_duration_hours

    assert parse_duration_hours(text) == pytest.approx(hours)


@pytest.mark.parametrize("text", ["", "0", "-1h", "10 minutes", "1w"])
def test_generate_duration_rejects_nonsense(text):
    import argparse

    from kafka_reliable.cli.generate import parse_duration_hours

    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration_hours(text)
