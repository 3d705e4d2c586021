"""The retry-worker section: runs ``scripts/bench_retry_worker.py`` (owned apart) and reads its JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.suite.common import ROOT

SCRIPT = ROOT / "scripts" / "bench_retry_worker.py"
DEFAULT_OUT = ROOT / "bench" / "results" / "retry_worker.json"
#: The issue's conditions for the full run, passed when the script takes these options.
FULL_ARGS = {"--records": "100000", "--partitions": "6"}
#: Small sizes for --quick when the script has no --quick of its own.
QUICK_ARGS = {"--records": "5000", "--lateness-records": "1000", "--lateness-spread-s": "3"}


def _options() -> str:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    return proc.stdout


def command(quick: bool, out: Path) -> list[str]:
    """The command line for this mode, using only the options the script offers."""
    offered = _options()
    cmd = [sys.executable, str(SCRIPT)]
    if quick and "--quick" in offered:
        cmd.append("--quick")
    else:
        for opt, val in (QUICK_ARGS if quick else FULL_ARGS).items():
            if opt in offered:
                cmd += [opt, val]
    if "--out" in offered:
        cmd += ["--out", str(out)]
    return cmd


def _shown(cmd: list[str]) -> str:
    return " ".join(["python", *[str(Path(c).relative_to(ROOT)) if c.startswith(str(ROOT)) else c
                                 for c in cmd[1:]]])


def run(quick: bool, out: Path, timeout_s: float, log: Any) -> dict[str, Any]:
    """Run the retry-worker bench; its committed JSON is restored when it cannot write elsewhere."""
    if not SCRIPT.exists():
        return {"error": f"{SCRIPT.relative_to(ROOT)} not found"}
    cmd = command(quick, out)
    src = out if "--out" in cmd else DEFAULT_OUT
    saved = DEFAULT_OUT.read_bytes() if src != out and DEFAULT_OUT.exists() else None
    log("  " + _shown(cmd))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(x for x in (os.environ.get("PYTHONPATH"), str(ROOT)) if x)}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, cwd=ROOT, env=env)
        if proc.returncode != 0:
            tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
            return {"error": f"retry-worker bench exited {proc.returncode}: {tail}", "command": _shown(cmd)}
        result: dict[str, Any] = json.loads(src.read_text())
    except subprocess.TimeoutExpired:
        return {"error": f"retry-worker bench did not finish in {timeout_s:.0f} s", "command": _shown(cmd)}
    finally:
        if saved is not None:
            DEFAULT_OUT.write_bytes(saved)
    if src != out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
    result["command"] = _shown(cmd)
    return result
