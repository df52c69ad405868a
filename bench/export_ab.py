"""Export throughput of two checkouts, taking turns on copies of one bench database: on a noisy
machine single runs of bench/export.py land too far apart to tell two codes apart.

    python bench/export_ab.py --base c2cbc51 [--samples 20000] [--rounds 3] [--exports 4]

Seeds one project with bench/export.py (this checkout's seeding and migrations; its own first
export keeps the documents), adds the --base commit as a git worktree, then each round runs the
base and this checkout in turn, each in a fresh process on a fresh copy of the seeded database
(the image files are shared): a pool of --processes part processes kept for the run, as a worker
keeps its pool; one untimed export (the copy comes into memory); then --exports times: 1% of the
subjects corrected (the same seeds for both codes), `tar -cf` of the image files, and the export,
timed as bench/export.py times it. The base must have bench/export.py's `correct_labels`,
`tar_baseline` and `export`, and run on the schema this checkout migrates to (columns added with
defaults are fine).

Figures go to stderr as they come; the last line is one JSON object: {"base", "samples",
"rounds" (per round and code: export and tar seconds), "base_export_seconds",
"head_export_seconds" (medians of the rounds' medians), "base_ratio", "head_ratio" (tar's median
over the export's), "speedup" (base seconds over head seconds)}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _run(tree: Path, data_dir: Path, exports: int, shard_size: int, processes: int) -> None:
    """In a child process: `exports` timed exports of `tree`'s code on `data_dir`; prints JSON."""
    sys.path[:0] = [str(tree), str(tree / "bench")]  # the tree's code, not this checkout's
    import export as bench  # the tree's bench/export.py

    bench._environment(data_dir)
    from server.core import runtime
    from server.core.config import get_settings
    from server.exports import service

    blob_dir = get_settings().blob_dir
    keys = sorted(str(p.relative_to(blob_dir)) for p in (blob_dir / "images").rglob("*.jpg"))
    out = data_dir.parent / "work"
    out.mkdir(exist_ok=True)
    bench.tar_baseline(blob_dir, keys, out)  # an archive for the first timed tar to remove
    export_seconds, tar_seconds = [], []
    with service.part_pool(runtime.database(), runtime.storage().get, processes) as pool:
        for n in range(exports + 1):  # the first, untimed: the database copy comes into memory
            bench.correct_labels(1, 0.01, seed_=100 + n)
            tar = bench.tar_baseline(blob_dir, keys, out)
            shutil.rmtree(out / "wds", ignore_errors=True)
            os.sync()
            seconds, counts = bench.export(1, out / "wds", shard_size, processes, pool)
            assert counts["samples"] == len(keys), counts
            if n:
                export_seconds.append(round(seconds, 3))
                tar_seconds.append(round(tar, 3))
    print(json.dumps({"export_seconds": export_seconds, "tar_seconds": tar_seconds}))


def _copy_database(seeded: Path, run_dir: Path) -> Path:
    """A fresh copy of the seeded database, the image files shared (read only)."""
    shutil.rmtree(run_dir, ignore_errors=True)
    data_dir = run_dir / "data"
    data_dir.mkdir(parents=True)
    for path in seeded.iterdir():
        if path.name.startswith("bench.db"):
            shutil.copy2(path, data_dir / path.name)
    (data_dir / "blobs").symlink_to(seeded / "blobs")
    (data_dir / "sources").mkdir()
    return data_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the commit (or ref) to compare this checkout with")
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--exports", type=int, default=4, help="timed exports per code and round")
    parser.add_argument("--shard-size", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=Path("/tmp/aa-export-ab"))
    parser.add_argument("--run", nargs=2, metavar=("TREE", "DATA"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        _run(Path(args.run[0]), Path(args.run[1]), args.exports, args.shard_size, args.processes)
        return
    out: Path = args.out.resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    seed = out / "seed"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "export.py"), "--samples", str(args.samples)]
        + ["--repeat", "1", "--out", str(seed)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    base_tree = out / "base"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base_tree), args.base],
        check=True,
        capture_output=True,
    )
    rounds: list[dict[str, Any]] = []
    try:
        for n in range(args.rounds):
            runs: dict[str, Any] = {}
            for name, tree in (("base", base_tree), ("head", ROOT)):
                data_dir = _copy_database(seed / "data", out / "run")
                child = subprocess.run(
                    [sys.executable, str(Path(__file__).resolve()), "--base", args.base]
                    + ["--exports", str(args.exports), "--shard-size", str(args.shard_size)]
                    + ["--processes", str(args.processes), "--run", str(tree), str(data_dir)],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                runs[name] = json.loads(child.stdout.strip().splitlines()[-1])
                print(f"round {n + 1} {name}: {runs[name]}", file=sys.stderr, flush=True)
            rounds.append(runs)
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base_tree)], check=False)
        shutil.rmtree(out / "run", ignore_errors=True)

    def median_of_medians(name: str, key: str) -> float:
        return statistics.median(statistics.median(r[name][key]) for r in rounds)

    base, head = median_of_medians("base", "export_seconds"), median_of_medians("head", "export_seconds")
    print(
        json.dumps(
            {
                "base": args.base,
                "samples": args.samples,
                "rounds": rounds,
                "base_export_seconds": round(base, 3),
                "head_export_seconds": round(head, 3),
                "base_ratio": round(median_of_medians("base", "tar_seconds") / base, 3),
                "head_ratio": round(median_of_medians("head", "tar_seconds") / head, 3),
                "speedup": round(base / head, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
