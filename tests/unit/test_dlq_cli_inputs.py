"""Bad inputs of ``kafka-reliable dlq`` verbs: refused before anything connects, exit 2, one line."""

from __future__ import annotations

import pytest

from kafka_reliable.cli.main import main

#: Nothing listens here: a verb that tried to connect would fail differently (exit 1) or hang.
DEAD = ("--bootstrap-servers", "127.0.0.1:1")


@pytest.mark.parametrize(("argv", "says"), [
    (("list", "orders", "--limit", "-5"), "--limit must be >= 1, got -5"),
    (("list", "orders", "--limit", "0"), "--limit must be >= 1, got 0"),
    (("stats", "orders", "--scan-limit", "-1"), "--scan-limit must be >= 0, got -1"),
    (("replay", "orders", "--max-messages", "-3"), "--max-messages must be >= 1, got -3"),
    (("replay", "orders", "--max-replays", "-1"), "--max-replays must be >= 0, got -1"),
    (("replay", "orders", "--rate", "0"), "--rate must be a number of records per second > 0, got 0.0"),
    (("replay", "orders", "--rate", "-5"), "--rate must be a number of records per second > 0, got -5.0"),
    (("replay", "orders", "--rate", "nan"), "--rate must be a number of records per second > 0, got nan"),
    (("list", "orders", "--group", ""), "--group must not be empty"),
    (("stats", "--group", "billing"), "--group needs TOPIC"),
    (("list", "orders", "--since", "last tuesday"), "--since: not a time: 'last tuesday'"),
    (("purge", "orders", "--before", "soon", "--yes"), "--before: not a time: 'soon'"),
])
def test_bad_input_is_refused_with_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], says: str
) -> None:
    code = main(["dlq", *argv, *DEAD])
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert code == 2 and out == "" and len(lines) == 1
    assert lines[0].startswith("kafka-reliable dlq: error: ") and says in lines[0]
