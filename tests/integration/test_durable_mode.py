"""Durable send mode (``durability="spool"``): a record is in the spool before the send call
returns, so a producer process SIGKILLed mid-run loses nothing: the next producer on the same
spool sends what it left, with the same message ids."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from kafka_reliable import ReliableKafkaProducer
from kafka_reliable import headers as H
from kafka_reliable.errors import ConfigurationError
from kafka_reliable.spool import Spool
from tests.helpers.kafka import headers_dict, read_to_end
from tests.helpers.waits import wait_until

_CHILD = textwrap.dedent("""
    import sys
    from kafka_reliable import ReliableKafkaProducer
    bootstrap, topic, spool = sys.argv[1:4]
    p = ReliableKafkaProducer(bootstrap_servers=bootstrap, spool_path=spool, durability="spool",
                              enable_metrics=False)
    i = 0
    while True:
        p.send_message(topic, {"i": i}, key=str(i))
        if i % 500 == 0:
            print(i, flush=True)  # every record up to i has returned from send_message
        i += 1
""")


def test_sigkilled_durable_producer_loses_nothing(kafka_bootstrap: str, new_topic, tmp_path: Path) -> None:
    # Given a producer process in durable mode, sending as fast as it can
    topic = new_topic(partitions=3)
    spool = tmp_path / "spool.sqlite3"
    child = subprocess.Popen([sys.executable, "-c", _CHILD, kafka_bootstrap, topic, str(spool)],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    returned = -1
    deadline = time.monotonic() + 60
    while returned < 5_000 and time.monotonic() < deadline:
        line = child.stdout.readline()
        assert line, "the producer process ended early"
        returned = int(line)
    # When it is SIGKILLed mid-run
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)
    assert returned >= 5_000
    left = Spool(spool).summary()["in_flight"]
    # Then a new producer on the same spool sends what the dead one left
    with ReliableKafkaProducer(bootstrap_servers=kafka_bootstrap, spool_path=spool, durability="spool",
                               maintenance_interval_s=0.2, enable_metrics=False) as p:
        def drained() -> bool:
            if p.spool.count() == 0:
                return True
            p.drain_spool()
            return False

        wait_until(drained, 60, lambda: f"spool drained, holds {p.spool.count()}", step_s=0.2)
    got = read_to_end(kafka_bootstrap, topic, timeout_s=90)
    seen = Counter(json.loads(m.value())["i"] for m in got)
    lost = [i for i in range(returned + 1) if i not in seen]
    ids = Counter(headers_dict(m)[H.MESSAGE_ID] for m in got)
    values_by_id: dict[bytes, set[int]] = {}
    for m in got:
        values_by_id.setdefault(headers_dict(m)[H.MESSAGE_ID], set()).add(json.loads(m.value())["i"])
    print(f"durable SIGKILL: returned {returned + 1}, in flight at kill {left}, read {len(got)}, "
          f"lost {len(lost)}, duplicated {sum(n - 1 for n in seen.values() if n > 1)}")
    assert lost == []
    assert all(len(v) == 1 for v in values_by_id.values())  # a duplicate carries its one message id
    assert sum(ids.values()) == len(got)


def test_durable_records_leave_the_spool_once_acknowledged(kafka_bootstrap: str, new_topic, tmp_path: Path) -> None:
    topic = new_topic()
    with ReliableKafkaProducer(bootstrap_servers=kafka_bootstrap, spool_path=tmp_path / "s.db",
                               durability="spool") as p:
        mids = [p.send_message(topic, {"n": i}) for i in range(100)]
        res = p.send_batch(topic, [{"b": i} for i in range(100)])
        assert p.flush(30) == 0
        assert res["sent"] == 100 and all(p.get_message_status(m) == "sent" for m in mids)
        assert p.spool.summary()["in_flight"] == 0
        assert p.get_stats()["durability"] == "spool"


def test_unknown_durability_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="durability"):
        ReliableKafkaProducer(bootstrap_servers="127.0.0.1:1", spool_path=tmp_path / "s.db", durability="disk")
