"""The benchmark suite's pure parts: pairing by round, summaries, the quiet-machine gate, the
headline and targets, the report from JSON, a failing section, CLI errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.suite import cli
from bench.suite.common import cdf_points, dumps, percentile, summarize, value_pool
from bench.suite.dedup_store import _fill_point
from bench.suite.headline import headline
from bench.suite.memory import rss_figures, slope_mb_per_million
from bench.suite.report import markdown
from bench.suite.sections import guarded
from bench.suite.target import QUIET_LOAD, load_refusal, wait_for_quiet
from bench.suite.targets import TARGETS, met, table
from bench.suite.throughput import summarize_trials

ROOT = Path(__file__).resolve().parents[2]


def _trial(name: str, rnd: int, rate: float, cpu: float, size: int = 100) -> dict[str, object]:
    return {
        "contender": name,
        "round": rnd,
        "size_bytes": size,
        "records_per_s": rate,
        "mb_per_s": rate / 1e4,
        "cpu_s_per_100k": cpu,
        "peak_rss_mb": 50.0,
    }


def test_value_pool_has_the_requested_json_size_and_distinct_dicts() -> None:
    # Given / When
    small, large = value_pool(100), value_pool(1024)

    # Then
    assert len(dumps(small[0])) == 100 and len(dumps(large[0])) == 1024
    assert small[0] is not small[1] and large[0]["note"] != large[1]["note"]


def test_ratios_pair_each_contender_with_raw_of_the_same_round() -> None:
    # Given: raw is 2x faster in round 1 than in round 0; the contender keeps half of raw each round
    trials = [
        _trial("raw", 0, 100.0, 1.0),
        _trial("raw", 1, 200.0, 1.0),
        _trial("reliable-send", 0, 50.0, 2.0),
        _trial("reliable-send", 1, 100.0, 4.0),
    ]

    # When
    s = summarize_trials(trials, ["raw", "reliable-send"], [100])["100"]["reliable-send"]

    # Then: pairing by round gives exactly 0.5 both times (unpaired medians would not)
    assert s["ratio_to_raw"] == {"median": 0.5, "min": 0.5, "max": 0.5, "n": 2}
    assert s["cpu_ratio_to_raw"]["min"] == 0.25 and s["cpu_ratio_to_raw"]["max"] == 0.5


def test_raw_opening_and_closing_a_round_are_averaged_geometrically() -> None:
    # Given: load drifted during the round: raw ran at 100/s first and 400/s last
    trials = [
        _trial("raw", 0, 100.0, 2.0),
        _trial("reliable-send", 0, 100.0, 2.0),
        _trial("raw", 0, 400.0, 0.5),
    ]

    # When
    s = summarize_trials(trials, ["raw", "reliable-send"], [100])["100"]

    # Then: the contender is compared with sqrt(100 * 400) = 200, raw's row shows its drift
    assert s["reliable-send"]["ratio_to_raw"]["median"] == pytest.approx(0.5)
    assert s["reliable-send"]["cpu_ratio_to_raw"]["median"] == pytest.approx(0.5)
    assert s["raw"]["ratio_to_raw"]["min"] == pytest.approx(0.5) and s["raw"]["ratio_to_raw"][
        "max"
    ] == pytest.approx(2.0)


def test_failed_trials_are_reported_not_averaged() -> None:
    # Given
    trials = [
        _trial("raw", 0, 100.0, 1.0),
        {"contender": "kcat", "round": 0, "size_bytes": 100, "error": "boom"},
    ]

    # When
    s = summarize_trials(trials, ["raw", "kcat"], [100])["100"]

    # Then
    assert s["kcat"] == {"error": "boom"}


def test_slope_percentile_and_cdf() -> None:
    assert slope_mb_per_million([(0, 10.0), (1_000_000, 12.0), (2_000_000, 14.0)]) == pytest.approx(
        2.0
    )
    assert slope_mb_per_million([(0, 10.0), (1_000_000, 10.0)]) == 0.0
    data = [float(i) for i in range(1, 101)]
    assert percentile(data, 0.5) == 51.0 and percentile(data, 0.99) == 100.0
    pts = cdf_points(data, points=11)
    assert pts[0] == 1.0 and pts[-1] == 100.0 and pts == sorted(pts)
    assert summarize([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0, "n": 3}


def _doc(trials: list[dict[str, object]], **parts: object) -> dict[str, object]:
    """A document shaped like suite.json."""
    names = list(dict.fromkeys(str(t["contender"]) for t in trials))
    doc: dict[str, object] = {
        "quick": True,
        "command": "python scripts/bench.py --quick",
        "load": {"start_1m": 0.2, "end_1m": 0.4, "forced": False},
        "machine": {"date_utc": "2026-01-01 00:00:00", "cores": 2, "cpu_model": "x",
                    "platform": "p", "python": "3.11", "confluent_kafka": "2.16.1",
                    "librdkafka": "2.16.0", "kafka_reliable": "0.1.0", "kafka_python": None,
                    "aiokafka": None, "kcat": None, "kafka_broker": "b", "redis": None},
        "conditions": {"partitions": 3},
        "throughput": {"unavailable": {"kcat": "not available (no kcat)"}, "trials": trials,
                       "summary": summarize_trials(trials, names, [100])},
        **parts,
    }  # fmt: skip
    doc["headline"] = headline(doc)
    return doc


def test_markdown_and_targets_come_from_the_json_only(tmp_path: Path) -> None:
    # Given
    doc = _doc([_trial("raw", 0, 100.0, 1.0), _trial("reliable-send", 0, 80.0, 1.25)])
    path = ROOT / "bench" / "results" / "quick" / "suite.json"

    # When
    md = markdown({"single": (doc, path), "cluster": None}, [], tmp_path)

    # Then: the target row carries this run's figure and verdict; the cluster is "not run"
    assert doc["headline"]["ratio_send_message_100B"] == 0.8
    row = "| send_message, id header + status, 100 B ≥ 0.75× raw | >= 0.75 | 0.80 (yes) | not run |"
    assert row in md
    assert "not available (no kcat)" in md and "Quick smoke run" in md
    assert "## 3-broker cluster\n\nNot run yet." in md


def test_a_failed_section_is_reported_with_its_reason_and_the_rest_still_renders(
    tmp_path: Path,
) -> None:
    # Given: the consumer section raised; guarded() turned it into its error
    def boom() -> dict[str, object]:
        raise RuntimeError("broker went away")

    failed = guarded("consumer", boom, log=lambda _m: None)
    doc = _doc([_trial("raw", 0, 100.0, 1.0)], consumer=failed)

    # When
    md = markdown({"single": (doc, ROOT / "bench" / "results" / "suite.json")}, [], tmp_path)

    # Then
    assert failed["error"].startswith("RuntimeError: broker went away (at test_bench_suite.py:")
    assert "### 2. Consumer\n\nFailed: RuntimeError: broker went away" in md
    assert "### 1. Producer throughput" in md


def test_durable_rows_and_the_async_to_sync_ratio_are_taken_round_by_round() -> None:
    # Given: wait=False keeps 0.9 of the sync loop in round 0 and 0.8 in round 1
    trials = [
        _trial("raw", 0, 100.0, 1.0), _trial("raw", 1, 100.0, 1.0),
        _trial("reliable-send", 0, 80.0, 1.0), _trial("reliable-send", 1, 50.0, 1.0),
        _trial("reliable-send@durable", 0, 64.0, 1.0),
        _trial("reliable-send@durable", 1, 40.0, 1.0),
        _trial("async-reliable-nowait", 0, 72.0, 1.0),
        _trial("async-reliable-nowait", 1, 40.0, 1.0),
    ]  # fmt: skip

    # When
    head = _doc(trials)["headline"]

    # Then
    assert head["async_nowait_vs_sync_min_100B"] == 0.8
    assert head["ratio_send_message_durable_100B"] == pytest.approx(0.52)
    assert head["durable_vs_memory_send_message_100B"] == pytest.approx(0.8)
    assert head["ratio_send_message_durable_spool_100B"] == head["ratio_send_message_durable_100B"]


def test_targets_verdicts_and_a_missing_figure() -> None:
    assert met(0.8, ">=", 0.75) == "yes" and met(0.7, ">=", 0.75) == "**no**"
    assert met(-6.0, "abs<=", 5.0) == "**no**" and met(-4.0, "abs<=", 5.0) == "yes"
    assert met(None, "<=", 1.0) == "–" and met(1.0, "<=", None) == "–"
    rows = table(TARGETS[:1], {}, None)
    assert rows[-1].endswith("| – | not run |")


def test_the_gate_refuses_a_busy_machine_unless_forced() -> None:
    assert load_refusal(0.49, force=False) is None
    why = load_refusal(QUIET_LOAD, force=False)
    assert why is not None and "0.50" in why and "--force" in why
    assert load_refusal(7.0, force=True) is None


def test_waiting_for_a_quiet_machine_stops_when_the_load_falls_or_time_is_up() -> None:
    # Given: the load falls below the bound on the third look
    loads = iter([2.0, 0.9, 0.3, 0.1])
    slept: list[float] = []

    # When
    got = wait_for_quiet(600, load=lambda: next(loads), sleep=slept.append, log=lambda _m: None)

    # Then
    assert got == 0.3 and slept == [10.0, 10.0]
    assert wait_for_quiet(15, load=lambda: 3.0, sleep=lambda _s: None, log=lambda _m: None) == 3.0


def test_cli_refuses_to_start_on_a_busy_machine(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given: a load average of 3.0
    monkeypatch.setattr(os, "getloadavg", lambda: (3.0, 2.0, 1.0))

    # When
    code = cli.main(["--sections", "dedup"])

    # Then: nothing ran, the reason is on stderr
    assert code == 3
    err = capsys.readouterr().err
    assert "refusing to start" in err and "3.00" in err and "--force" in err


def test_dedup_bytes_per_key_is_read_where_the_store_became_full() -> None:
    # Given: RSS samples and the keys held at each (a store bounded at 2,000 keys)
    points = [(0, 40.0), (1000, 40.1), (2000, 40.2), (3000, 40.2)]
    held = [0, 1000, 2000, 2000]

    # When / Then: the first sample holding the bound; the last when it never filled
    assert _fill_point(points, held, 2000) == (2000, 40.2)
    assert _fill_point(points, held, 5000) == (3000, 40.2)


def test_rss_figures_give_the_rss_at_each_million_and_the_slopes() -> None:
    # Given: flat at 100 MB after the first million of 2,000,000 records
    points = [
        (0, 40.0),
        (500_000, 70.0),
        (1_000_000, 100.0),
        (1_500_000, 100.0),
        (2_000_000, 100.0),
    ]

    # When
    r = rss_figures(points, 2_000_000)

    # Then
    assert r["rss_at_mb"] == {"0": 40.0, "1000000": 100.0, "2000000": 100.0}
    assert r["slope_after_warmup_mb_per_million"] == 0.0 and r["rss_end_mb"] == 100.0


def test_a_section_the_report_cannot_read_is_said_and_the_page_still_written(
    tmp_path: Path,
) -> None:
    # Given: a dedup result missing its fields (e.g. written by another version)
    doc = _doc([_trial("raw", 0, 100.0, 1.0)], dedup={"every_key": {"keys": 5}})

    # When
    md = markdown({"single": (doc, ROOT / "bench" / "results" / "suite.json")}, [], tmp_path)

    # Then
    assert "could not be shown (KeyError" in md and "### Headline figures" in md


@pytest.mark.parametrize(
    "args", [["--sizes", "big"], ["--contenders", "nope"], ["--sections", "x"]]
)
def test_cli_usage_errors_exit_2(args: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench.py"), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "error:" in proc.stderr.splitlines()[-1]
