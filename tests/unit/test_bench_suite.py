"""The benchmark suite's pure parts: pairing by round, summaries, the report from JSON, CLI errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.suite.common import cdf_points, dumps, percentile, summarize, value_pool
from bench.suite.memory import slope_mb_per_million
from bench.suite.report import headline, markdown, targets
from bench.suite.throughput import summarize_trials

ROOT = Path(__file__).resolve().parents[2]


def _trial(name: str, rnd: int, rate: float, cpu: float, size: int = 100) -> dict[str, object]:
    return {"contender": name, "round": rnd, "size_bytes": size, "records_per_s": rate, "mb_per_s": rate / 1e4,
            "cpu_s_per_100k": cpu, "peak_rss_mb": 50.0}


def test_value_pool_has_the_requested_json_size_and_distinct_dicts() -> None:
    # Given / When
    small, large = value_pool(100), value_pool(1024)

    # Then
    assert len(dumps(small[0])) == 100 and len(dumps(large[0])) == 1024
    assert small[0] is not small[1] and large[0]["note"] != large[1]["note"]


def test_ratios_pair_each_contender_with_raw_of_the_same_round() -> None:
    # Given: raw is 2x faster in round 1 than in round 0; the contender keeps half of raw each round
    trials = [_trial("raw", 0, 100.0, 1.0), _trial("raw", 1, 200.0, 1.0),
              _trial("reliable-send", 0, 50.0, 2.0), _trial("reliable-send", 1, 100.0, 4.0)]

    # When
    s = summarize_trials(trials, ["raw", "reliable-send"], [100])["100"]["reliable-send"]

    # Then: pairing by round gives exactly 0.5 both times (unpaired medians would not)
    assert s["ratio_to_raw"] == {"median": 0.5, "min": 0.5, "max": 0.5, "n": 2}
    assert s["cpu_ratio_to_raw"]["min"] == 0.25 and s["cpu_ratio_to_raw"]["max"] == 0.5


def test_raw_opening_and_closing_a_round_are_averaged_geometrically() -> None:
    # Given: load drifted during the round: raw ran at 100/s first and 400/s last
    trials = [_trial("raw", 0, 100.0, 2.0), _trial("reliable-send", 0, 100.0, 2.0), _trial("raw", 0, 400.0, 0.5)]

    # When
    s = summarize_trials(trials, ["raw", "reliable-send"], [100])["100"]

    # Then: the contender is compared with sqrt(100 * 400) = 200, raw's row shows its drift
    assert s["reliable-send"]["ratio_to_raw"]["median"] == pytest.approx(0.5)
    assert s["reliable-send"]["cpu_ratio_to_raw"]["median"] == pytest.approx(0.5)
    assert s["raw"]["ratio_to_raw"]["min"] == pytest.approx(0.5) and s["raw"]["ratio_to_raw"]["max"] == pytest.approx(2.0)


def test_failed_trials_are_reported_not_averaged() -> None:
    # Given
    trials = [_trial("raw", 0, 100.0, 1.0), {"contender": "kcat", "round": 0, "size_bytes": 100, "error": "boom"}]

    # When
    s = summarize_trials(trials, ["raw", "kcat"], [100])["100"]

    # Then
    assert s["kcat"] == {"error": "boom"}


def test_slope_percentile_and_cdf() -> None:
    assert slope_mb_per_million([(0, 10.0), (1_000_000, 12.0), (2_000_000, 14.0)]) == pytest.approx(2.0)
    assert slope_mb_per_million([(0, 10.0), (1_000_000, 10.0)]) == 0.0
    data = [float(i) for i in range(1, 101)]
    assert percentile(data, 0.5) == 51.0 and percentile(data, 0.99) == 100.0
    pts = cdf_points(data, points=11)
    assert pts[0] == 1.0 and pts[-1] == 100.0 and pts == sorted(pts)
    assert summarize([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0, "n": 3}


def test_markdown_and_targets_come_from_the_json_only(tmp_path: Path) -> None:
    # Given: a document shaped like suite.json
    trials = [_trial("raw", 0, 100.0, 1.0), _trial("reliable-send", 0, 80.0, 1.25)]
    doc = {
        "quick": True, "command": "python scripts/bench.py --quick",
        "machine": {"date_utc": "2026-01-01 00:00:00", "cores": 2, "cpu_model": "x", "load_avg_1m": 1.0,
                    "platform": "p", "python": "3.11", "confluent_kafka": "2.16.1", "librdkafka": "2.16.0",
                    "kafka_reliable": "0.1.0", "kafka_python": None, "aiokafka": None, "kcat": None,
                    "kafka_broker": "b", "redis": None},
        "conditions": {"partitions": 3},
        "throughput": {"unavailable": {"kcat": "not available (no kcat)"}, "trials": trials,
                       "summary": summarize_trials(trials, ["raw", "reliable-send"], [100])},
    }
    doc["headline"] = headline(doc)

    # When
    md = markdown(doc, ROOT / "bench" / "results" / "quick" / "suite.json", [], tmp_path)

    # Then
    assert doc["headline"]["ratio_send_message_100B"] == 0.8
    assert "| send_message loop ≥ 0.75× raw | 0.80 | >= 0.75 | yes |" in "\n".join(targets(doc["headline"]))
    assert "not available (no kcat)" in md and "Quick smoke run" in md and "0.80" in md


@pytest.mark.parametrize("args", [["--sizes", "big"], ["--contenders", "nope"], ["--sections", "x"]])
def test_cli_usage_errors_exit_2(args: list[str]) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench.py"), *args],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "error:" in proc.stderr.splitlines()[-1]
