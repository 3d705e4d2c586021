"""A secret planted in ``--kafka-config`` is never printed, by any verb, whatever the separator.

Table-driven over every leaf verb of the parser (a new verb without an entry in ``ARGS`` fails
``test_every_verb_is_in_the_table``) and every separator a user types by mistake (``=``, ``:``,
blanks, ...). Each case runs the verb against a dead bootstrap address (nothing listens, every
connection is refused at once) and greps stdout, stderr and every log record for the secret.
The retry worker runs as its own process (it installs signal handlers); the rest in-process.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kafka_reliable.cli.main import build_parser
from tests.helpers.cli import cli, run_cli

SECRET = "SeCrEt123"
DEAD = "127.0.0.1:1"
#: How a user may (wrongly or rightly) separate the key from the value.
SEPARATORS = ("=", ":", " ", "\t", ": ", " = ", "==", ":=")
#: Secret-looking keys (each with every separator).
KEYS = ("sasl.password", "sasl.oauthbearer.client.secret", "ssl.key.password", "sasl.jaas.config")

#: Leaf verb -> the arguments it needs besides --kafka-config ("{spool}": a fresh spool path).
ARGS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("dev-broker",): ("status",),
    ("dev-redis",): ("status",),
    ("dlq", "stats"): ("orders", "--bootstrap-servers", DEAD),
    ("dlq", "list"): ("orders", "--bootstrap-servers", DEAD),
    ("dlq", "show"): ("orders", "--offset", "0:0", "--bootstrap-servers", DEAD),
    ("dlq", "replay"): ("orders", "--dry-run", "--bootstrap-servers", DEAD),
    ("dlq", "purge"): ("orders", "--all", "--bootstrap-servers", DEAD),
    ("generate",): ("--bootstrap-servers", DEAD, "--max-records", "1"),
    ("health",): ("--bootstrap-servers", DEAD, "--timeout-s", "3"),
    ("spool", "status"): ("--spool-path", "{spool}"),
    ("spool", "drain"): ("--spool-path", "{spool}", "--bootstrap-servers", DEAD),
    ("spool", "export"): ("--spool-path", "{spool}"),
    ("spool", "purge"): ("--spool-path", "{spool}"),
    ("topics", "ensure"): ("orders", "--bootstrap-servers", DEAD),
    ("topics", "status"): ("orders", "--bootstrap-servers", DEAD),
    ("topics", "doctor"): ("orders", "--bootstrap-servers", DEAD),
    ("retry-worker",): (
        "--topics",
        "orders",
        "--bootstrap-servers",
        DEAD,
        "--startup-timeout-s",
        "1",
    ),
    ("console",): ("--bootstrap-servers", DEAD, "--port", "1", "--check"),
}
#: Verbs run as their own process.
OWN_PROCESS = {("retry-worker",)}


def leaf_verbs() -> Iterator[tuple[str, ...]]:
    def walk(p: argparse.ArgumentParser, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            yield path
        for a in subs:
            for name, sp in a.choices.items():
                yield from walk(sp, (*path, name))

    yield from walk(build_parser(), ())


VERBS = sorted(leaf_verbs())


def test_every_verb_is_in_the_table() -> None:
    # Given / When: the verbs the parser has  Then: each has its arguments here
    assert [v for v in VERBS if v not in ARGS] == []


def _argv(verb: tuple[str, ...], planted: str, spool: Path) -> list[str]:
    rest = [str(spool) if a == "{spool}" else a for a in ARGS[verb]]
    return [*verb, *rest, "--kafka-config", planted]


@pytest.mark.parametrize("verb", [v for v in VERBS if v not in OWN_PROCESS], ids=" ".join)
def test_no_verb_echoes_a_planted_secret(
    verb: tuple[str, ...],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    leaks = []
    for key in KEYS:
        # a well-formed setting runs the verb (a connection attempt): once, with the first key
        for sep in SEPARATORS if key == KEYS[0] else [s for s in SEPARATORS if "=" not in s]:
            # When
            code, out, err = cli(
                capsys, "-vv", *_argv(verb, f"{key}{sep}{SECRET}", tmp_path / "spool.db")
            )
            # Then: whatever happened (usage error, unreachable cluster), the secret is not shown
            if SECRET in out + err + caplog.text:
                leaks.append((key, sep, code, (out + err + caplog.text).count(SECRET)))
            caplog.clear()
    assert leaks == []


@pytest.mark.parametrize("verb", sorted(OWN_PROCESS), ids=" ".join)
def test_own_process_verbs_never_echo_a_planted_secret(
    verb: tuple[str, ...], tmp_path: Path
) -> None:
    planted = [f"sasl.password{sep}{SECRET}" for sep in SEPARATORS]
    with ThreadPoolExecutor(4) as pool:
        runs = list(
            pool.map(lambda p: run_cli("-vv", *_argv(verb, p, tmp_path / "spool.db")), planted)
        )
    leaks = [
        (p, r.returncode)
        for p, r in zip(planted, runs, strict=True)
        if SECRET in r.stdout + r.stderr
    ]
    assert leaks == []
    # and the planted setting never started anything: a usage error or an unreachable cluster
    assert {r.returncode for r in runs} <= {1, 2}


def test_python_m_worker_never_echoes_a_planted_secret() -> None:
    import subprocess
    import sys

    from tests.helpers.cli import ROOT

    # Given / When: the worker's own entry point; a secret in --kafka-config and as a stray arg
    runs = [
        subprocess.run(
            [sys.executable, "-m", "kafka_reliable.worker", "--topics", "orders", *extra],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        for extra in (
            ["--kafka-config", f"sasl.password:{SECRET}"],
            ["--bogus", f"sasl.password {SECRET}"],
        )
    ]
    # Then: usage errors, the secret never shown
    assert [r.returncode for r in runs] == [2, 2]
    assert not any(SECRET in r.stdout + r.stderr for r in runs)
