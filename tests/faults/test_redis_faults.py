"""Redis (the dedup backend) stopped mid-run and restarted, with both outage policies.

``fail_open`` keeps sending without dedup while Redis is away; ``fail_closed`` refuses sends
with ``DeduplicationUnavailableError`` (the caller is told, so a refused record is not "sent").
Either way every record whose send returned must arrive; none may be lost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.faults.harness import Tally
from tests.faults.scenario import later, run_producer_scenario, sized

pytestmark = pytest.mark.faults


def _redis_outage(healthy: Any, redis: Any, tmp: Path, policy: str) -> Tally:
    down_s = sized(5, 2)

    def fault(topic: str) -> None:
        redis.stop()
        later(down_s, redis.start)

    t = run_producer_scenario(
        f"redis_down_dedup_{policy}", healthy, tmp, records=int(sized(30_000, 6_000)), duration_s=sized(15, 5),
        faults={0.3: fault},
        producer_kwargs={"enable_deduplication": True, "redis_url": redis.url, "dedup_on_unavailable": policy},
    )
    t.notes = f"private redis-server stopped {down_s:.0f} s mid-run, restarted"
    print("\n" + t.row())
    assert t.lost == 0, f"{t.lost} LOST (e.g. {t.lost_sample}): {t}"
    assert t.unknown == 0 and t.id_mismatch == 0 and t.dup == 0, t
    return t


def test_redis_stopped_fail_open(healthy: Any, private_redis: Any, tmp_path: Path, report: list[Tally]) -> None:
    t = _redis_outage(healthy, private_redis, tmp_path, "fail_open")
    report.append(t)
    assert t.refused == 0, "fail_open must not refuse sends"


@pytest.mark.full_only
def test_redis_stopped_fail_closed(healthy: Any, private_redis: Any, tmp_path: Path, report: list[Tally]) -> None:
    t = _redis_outage(healthy, private_redis, tmp_path, "fail_closed")
    report.append(t)
    assert t.refused > 0, "fail_closed should have refused sends while Redis was away"
