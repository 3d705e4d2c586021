"""The ``kafka-reliable`` CLI for tests: in-process (fast, capsys) or as its own process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

#: The repository root (the CLI process runs there).
ROOT = Path(__file__).resolve().parents[2]


def run_cli(*argv: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m kafka_reliable <argv>`` as its own process, stdin not a terminal; output captured."""
    return subprocess.run([sys.executable, "-m", "kafka_reliable", *argv], cwd=ROOT, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout_s)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    from kafka_reliable.cli.main import main

    capsys.readouterr()
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse: --help and usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def json_lines(out: str) -> list[dict[str, object]]:
    """One JSON object per non-empty line."""
    return [json.loads(line) for line in out.splitlines() if line.strip()]
