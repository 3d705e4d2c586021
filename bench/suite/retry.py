"""The retry-worker section: ``scripts/bench_retry_worker.py`` (drain vs a raw pipe, lateness,
crash), then its lateness part again while ``bench.suite.load`` sends at full speed in another
process (issue 25: "lateness p99 under the throughput run").

The script writes its JSON to a temporary file; the section folds it into the suite's JSON
(``retry_worker``, with ``lateness_under_load`` and the load's own rate beside it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.suite.common import ROOT, delete_topics, new_topics

SCRIPTS = ROOT / "scripts"


def _env() -> dict[str, str]:
    path = os.pathsep.join(x for x in (os.environ.get("PYTHONPATH"), str(ROOT)) if x)
    return {**os.environ, "PYTHONPATH": path, "KAFKA_RELIABLE_LOG_LEVEL": "WARNING"}


def run_script(
    script: str, args: list[str], timeout_s: float, log: Callable[[str], None]
) -> dict[str, Any]:
    """Run ``scripts/<script> args --out TMP`` and return its JSON (or ``{"error": ...}``)."""
    with tempfile.TemporaryDirectory(prefix="bench-script-") as d:
        out = Path(d) / "result.json"
        cmd = [sys.executable, str(SCRIPTS / script), *args, "--out", str(out)]
        shown = f"python scripts/{script} " + " ".join(args)
        log("  " + shown)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                                  cwd=ROOT, env=_env())  # fmt: skip
        except subprocess.TimeoutExpired:
            return {"error": f"{shown} did not finish within {timeout_s:.0f} s"}
        if proc.returncode != 0 or not out.exists():
            tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
            return {"error": f"{shown} exited {proc.returncode}: {tail}"}
        result: dict[str, Any] = json.loads(out.read_text())
    result["command"] = shown
    return result


def _sizes(quick: bool) -> list[str]:
    """The script's own sizes for a full run; smaller than its ``--quick`` for a smoke run."""
    if not quick:
        return []
    return ["--quick", "--records", "3000", "--lateness-records", "2000",
            "--lateness-spread-s", "2", "--crash-records", "2000"]  # fmt: skip


def under_load(admin: Any, quick: bool, timeout_s: float, log: Callable[[str], None]) -> dict:
    """The lateness part while a ``send_message`` loop runs flat out in another process."""
    (topic,) = new_topics(admin, 1, prefix="bench-load")
    cmd = [sys.executable, "-m", "bench.suite.load", "--topic", topic, "--seconds", "900"]
    load = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=tempfile.gettempdir(),
                            env=_env())  # fmt: skip
    try:
        time.sleep(2.0)  # the load is connected and sending before the worker starts
        args = ["--sections", "lateness", *_sizes(quick)]
        result = run_script("bench_retry_worker.py", args, timeout_s, log)
    finally:
        load.terminate()
        try:
            out, _ = load.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            load.kill()
            out, _ = load.communicate()
        delete_topics(admin, [topic])
    lines = [x for x in (out or "").splitlines() if x.startswith("{")]
    result["load"] = json.loads(lines[-1]) if lines else {"error": f"load exited {load.returncode}"}
    return result


def run(admin: Any, quick: bool, log: Callable[[str], None]) -> dict[str, Any]:
    """Drain, lateness and crash alone, then lateness under load."""
    timeout_s = 300 if quick else 1200
    result = run_script("bench_retry_worker.py", _sizes(quick), timeout_s, log)
    loaded = under_load(admin, quick, timeout_s, log)
    if "error" in loaded:
        result["lateness_under_load"] = {"error": loaded["error"]}
    else:
        result["lateness_under_load"] = {**loaded.get("lateness", {}), "load": loaded["load"]}
    return result
