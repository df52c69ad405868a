"""Run every fault drill with small defaults, one after another, each in its own process and on
its own throwaway stack (never the machine's shared Postgres or Redis).

    .venv/bin/python bench/faults/run_all.py
    .venv/bin/python bench/faults/run_all.py --only worker_kill,export_resume

Each drill's figures go to stderr as it runs; then one line per drill (its command and its last
JSON line), and the last stdout line is one JSON object: {"passed", "drills": {name: result}}.
Exit status 1 unless every drill passed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

# Small defaults: each drill a few minutes at most on two shared cores.
DRILLS: dict[str, list[str]] = {
    "worker_kill": ["--kills", "3", "--images", "120", "--batch-size", "10"],
    "broker_restart": ["--restarts", "2", "--images", "120", "--batch-size", "10", "--down-seconds", "5"],
    "postgres_restart": ["--restarts", "2", "--mode", "immediate", "--annotators", "8", "--seconds", "45"],
    "annotators": ["--annotators", "8", "--minutes", "1"],
    "export_resume": ["--samples", "400", "--shard-size", "40", "--format", "cosmicman"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="comma-separated drill names")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per drill")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n] or list(DRILLS)
    unknown = set(names) - set(DRILLS)
    if unknown:
        raise SystemExit(f"unknown drills: {sorted(unknown)}; known: {list(DRILLS)}")
    results: dict[str, object] = {}
    lines = []
    for name in names:
        command = [sys.executable, str(HERE / f"{name}.py"), *DRILLS[name]]
        shown = " ".join([".venv/bin/python", f"bench/faults/{name}.py", *DRILLS[name]])
        print(f"== {shown}", file=sys.stderr, flush=True)
        started = time.monotonic()
        # A drill tears its stack down on SIGTERM; SIGKILL (subprocess.run's timeout) would orphan
        # its Postgres, Redis and workers.
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        try:
            stdout, _ = process.communicate(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                stdout, _ = process.communicate(timeout=90)
            except subprocess.TimeoutExpired:
                process.kill()
                stdout, _ = process.communicate()
        last = stdout.strip().splitlines()[-1] if stdout.strip() else ""
        try:
            result = json.loads(last)
        except ValueError:
            result = {"passed": False, "error": f"exit {process.returncode}, no JSON line: {last[:200]}"}
        if time.monotonic() - started >= args.timeout:
            result = {**result, "passed": False, "error": f"timed out after {args.timeout:.0f} s"}
        result["wall_s"] = round(time.monotonic() - started, 1)
        results[name] = result
        lines.append(f"{'PASS' if result.get('passed') else 'FAIL'} {shown}\n  {json.dumps(result)}")
    print("\n".join(lines))
    passed = all(bool(r.get("passed")) for r in results.values())  # type: ignore[attr-defined]
    print(json.dumps({"passed": passed, "drills": results}))
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
