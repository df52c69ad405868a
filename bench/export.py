"""Export throughput: WebDataset shards from a snapshot against GNU tar packing the same image
files (the I/O floor), on one machine.

    python bench/export.py --samples 20000 --out /tmp/aa-export-bench [--processes N]

Seeds a SQLite project under OUT/data by a fast path: 120 distinct synthetic people
(server/demo/synthetic.py), reused with a per-image JPEG comment so every file is a distinct,
valid JPEG; subjects, predictions, labels and their events (a model's, then a person's) bulk
inserted. Then, timed as a whole (snapshot plan, every part, manifest), in order:

1. the first export of the project (`cold`): every subject's labels are read as of the snapshot
   and encoded, and the documents are kept (`export_documents`);
2. `--repeat` times: `--changed` of the subjects (default 1%) get a person's correction of one
   label, as a day of review would (a label event each); with `--refresh`,
   `service.refresh_documents` (what the beat runs every five minutes) then encodes their
   documents, timed apart (`refresh_seconds`: the median); then `tar -cf` of the same image
   files, and an export of the project as it now is (`export_sps`: the exports' median). Without
   `--refresh` each export reads and encodes the corrected subjects again; the others come from
   their kept documents.

Exports run their parts, after the plan, in one pool of `--processes` processes (default: the
CPU count) forked once and kept for every run, as one worker's pool serves every export
(`--fork-per-export`: each export and floor run forks its own); `tar_sps` is from tar's median.
Every timed run first removes its own previous output, then starts after `os.sync()`, so that
no run pays for writing out the dirty pages of the one before (or of the seeding), and all
write into memory the kernel has just freed (see `main`). With `--floor`, `--repeat` runs of
tar then the mandatory work alone follow: the same images read, written as the same three
members per sample (a sample's `.txt` and `.json` bytes reused) through the exporter's tar
builder and destination (sha256 of every byte), in the same processes, with no database
(`floor_ratio`: tar's median over its median). The last line printed is one JSON object:
{"samples", "export_sps", "tar_sps", "ratio", "out", "cold_export_sps", "cold_ratio",
"changed", "processes", "pool", "export_seconds", "tar_seconds", "refresh_seconds",
"floor_seconds", "floor_tar_seconds", "floor_ratio"}; `out` (the last export) is kept for
inspection.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DISTINCT_IMAGES = 120
PROFILES = 64


def _environment(data_dir: Path) -> None:
    os.environ["AA_DATA_DIR"] = str(data_dir)
    os.environ["AA_SOURCE_ROOTS"] = json.dumps([str(data_dir / "sources")])
    os.environ["AA_LOG_LEVEL"] = "WARNING"
    os.environ["AA_DATABASE_URL"] = f"sqlite:///{data_dir / 'bench.db'}"
    os.environ["AA_ADMIN_PASSWORD"] = ""


def _jpeg_variant(jpeg: bytes, n: int) -> bytes:
    """The same picture with a COM segment naming `n`: a distinct, valid JPEG."""
    comment = f"annotate-anyone bench {n}".encode()
    segment = b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment
    return jpeg[:2] + segment + jpeg[2:]


def _profiles(spec: Any, rng: random.Random) -> list[dict[str, Any]]:
    """Label value sets that respect the taxonomy's conditions."""
    out = []
    for _ in range(PROFILES):
        values: dict[str, Any] = {}
        for _round in range(3):  # conditions settle after a few passes
            for category in spec.applicable_categories(values):
                if category.full_key in values:
                    continue
                if category.kind == "text":
                    values[category.full_key] = "a note"
                elif category.kind == "boolean":
                    values[category.full_key] = rng.random() < 0.5
                elif category.kind == "multi":
                    values[category.full_key] = [v.key for v in rng.sample(category.values, 2)]
                else:
                    values[category.full_key] = rng.choice(category.values).key
        keep = {c.full_key for c in spec.applicable_categories(values)}
        out.append({k: v for k, v in values.items() if k in keep})
    return out


def seed(samples: int) -> tuple[int, list[str]]:
    """Returns (project id, the image files' storage keys)."""
    from sqlalchemy import insert, select

    from server.auth import service as auth_service
    from server.cli import _migrate
    from server.core import runtime
    from server.core.config import get_settings
    from server.core.time import utcnow
    from server.demo.synthetic import render_person
    from server.orm import Category, Image, Label, LabelEvent, ModelVersion, Prediction, Subject
    from server.projects import service as projects
    from server.taxonomy import service as taxonomy

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    _migrate(settings)
    db, storage = runtime.database(), runtime.storage()
    rng = random.Random(0)
    with db.session_scope() as session:
        user = auth_service.create_user(session, "bench@example.com", "bench password 1", is_admin=True)
        project = projects.create_project(session, user, "Export bench")
        model = ModelVersion(
            project_id=project.id, family="stats", version="bench@1", spec={}, status="active"
        )
        session.add(model)
        session.flush()
        project_id, user_id, model_id = project.id, user.id, model.id
        version = taxonomy.current_version(session, project)
        spec = taxonomy.spec_of(version)
        version_id = version.id
        category_ids = {
            c.key: c.id
            for c in session.scalars(select(Category).where(Category.taxonomy_version_id == version_id))
        }
    distinct = []
    for i in range(min(DISTINCT_IMAGES, samples)):
        picture, _ = render_person(i)
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=90)
        distinct.append(buffer.getvalue())
    profiles = _profiles(spec, rng)
    now = utcnow()
    keys = []
    with db.session_scope() as session:
        images, subjects = [], []
        for n in range(samples):
            data = _jpeg_variant(distinct[n % len(distinct)], n)
            key = f"images/bench/{n:07d}.jpg"
            storage.put(key, data)
            keys.append(key)
            images.append(
                {
                    "id": n + 1,
                    "project_id": project_id,
                    "sha256": f"{n:064x}",
                    "storage_key": key,
                    "mime": "image/jpeg",
                    "width": 384,
                    "height": 512,
                    "bytes": len(data),
                    "stage": "prelabeled",
                    "stage_changed_at": now,
                    "quality": {"sharpness": 0.5},
                    "created_at": now,
                    "original_name": f"{n}.jpg",
                    "licence": "generated",
                    "consent": "",
                }
            )
            subjects.append(
                {
                    "id": n + 1,
                    "image_id": n + 1,
                    "project_id": project_id,
                    "index": 0,
                    "bbox": [0, 0, 384, 512],
                    "shot_type": "full_body",
                    "created_at": now,
                }
            )
        # Through the connection: one executemany each (the ORM's bulk path ran a statement per
        # row here).
        session.connection().execute(insert(Image), images)
        session.connection().execute(insert(Subject), subjects)
    label_id = event_id = prediction_id = 0
    with db.session_scope() as session:
        for start in range(0, samples, 2000):
            labels, events, predictions = [], [], []
            for subject_id in range(start + 1, min(samples, start + 2000) + 1):
                for key, value in profiles[subject_id % PROFILES].items():
                    label_id += 1
                    category_id = category_ids[key]
                    common = {"subject_id": subject_id, "category_id": category_id}
                    prediction_id += 1
                    predictions.append(
                        {
                            **common,
                            "id": prediction_id,
                            "model_version_id": model_id,
                            "value": value,
                            "confidence": 0.9,
                            "distribution": {},
                            "created_at": now,
                        }
                    )
                    labels.append(
                        {
                            **common,
                            "id": label_id,
                            "taxonomy_version_id": version_id,
                            "value": value,
                            "state": "verified",
                            "confidence": 0.9,
                            "version": 2,
                            "model_version_id": model_id,
                            "decided_by_id": user_id,
                            "updated_at": now,
                        }
                    )
                    for actor, from_state, to_state in (
                        (None, None, "predicted"),
                        (user_id, "predicted", "verified"),
                    ):
                        event_id += 1
                        events.append(
                            {
                                **common,
                                "id": event_id,
                                "label_id": label_id,
                                "actor_user_id": actor,
                                "actor_model_version_id": None if actor else model_id,
                                "from_value": value if from_state else None,
                                "to_value": value,
                                "from_state": from_state,
                                "to_state": to_state,
                                "reason": "review" if actor else "prelabel",
                                "created_at": now,
                            }
                        )
            session.connection().execute(insert(Prediction), predictions)
            session.connection().execute(insert(Label), labels)
            session.connection().execute(insert(LabelEvent), events)
    return project_id, keys


def correct_labels(project_id: int, fraction: float, seed_: int = 1) -> int:
    """A person corrects the shot type of `fraction` of the subjects: the label's new value and
    version, and its event. Returns how many subjects changed."""
    from sqlalchemy import func, insert, select, update

    from server.core import runtime
    from server.core.time import utcnow
    from server.orm import Category, Label, LabelEvent, Subject, User

    rng = random.Random(seed_)
    db = runtime.database()
    now = utcnow()
    with db.session_scope() as session:
        user_id = session.scalar(select(func.min(User.id)))
        subject_ids = list(session.scalars(select(Subject.id).where(Subject.project_id == project_id)))
        chosen = sorted(rng.sample(subject_ids, max(1, int(len(subject_ids) * fraction))))
        category = session.scalars(select(Category).where(Category.key == "shot.type")).first()
        assert category is not None
        values = [v.key for v in category.values]
        labels = session.execute(
            select(Label.id, Label.subject_id, Label.value, Label.version).where(
                Label.category_id == category.id, Label.subject_id.in_(chosen)
            )
        ).all()
        events = []
        for label_id, subject_id, value, version in labels:
            new = rng.choice([v for v in values if v != value])
            session.execute(
                update(Label)
                .where(Label.id == label_id)
                .values(value=new, version=version + 1, updated_at=now)
            )
            events.append(
                {
                    "subject_id": subject_id,
                    "category_id": category.id,
                    "label_id": label_id,
                    "actor_user_id": user_id,
                    "from_value": value,
                    "to_value": new,
                    "from_state": "verified",
                    "to_state": "verified",
                    "reason": "review",
                    "created_at": now,
                }
            )
        session.connection().execute(insert(LabelEvent), events)
    return len(labels)


def export(
    project_id: int, out: Path, shard_size: int, processes: int = 1, pool: Any = None
) -> tuple[float, dict[str, Any]]:
    from server.core import runtime
    from server.exports import service
    from server.exports.schemas import ExportFilters, ExportOptions
    from server.orm import Project
    from server.orm.exports import Export

    db, storage = runtime.database(), runtime.storage()
    started = time.perf_counter()
    with db.session_scope() as session:
        project = session.get(Project, project_id)
        assert project is not None
        created = service.start_export(
            session,
            project,
            fmt="webdataset",
            destination=str(out),
            default_root=out,
            filters=ExportFilters(),
            options=ExportOptions(shard_size=shard_size),
            user_id=None,
            send_jobs=False,
        )
        export_id = created.id
    service.run_here(db, storage.get, export_id, processes=processes, pool=pool)
    seconds = time.perf_counter() - started
    with db.session_scope() as session:
        done = session.get(Export, export_id)
        assert done is not None and done.status == "done", (
            done.status if done else None,
            done and done.error,
        )
        return seconds, dict(done.counts)


def tar_baseline(blob_root: Path, keys: list[str], out: Path) -> float:
    """Seconds for `tar -cf` of the image files. Like every timed run here, it first removes its
    previous output and syncs; the archive is kept until the next run (the last is removed at the
    end of `main`)."""
    listing = out / "tar-files.txt"
    listing.write_text("\n".join(keys) + "\n")
    target = out / "tar-baseline.tar"
    target.unlink(missing_ok=True)
    os.sync()
    started = time.perf_counter()
    subprocess.run(["tar", "-cf", str(target), "-C", str(blob_root), "-T", str(listing)], check=True)
    seconds = time.perf_counter() - started
    listing.unlink()
    return seconds


def _floor_shard(
    blob_root: Path, members: tuple[bytes, bytes], out: Path, job: tuple[int, list[str]]
) -> None:
    """One shard of the mandatory work: each image read and written with a `.txt` and a `.json`
    member of the export's (the first sample's bytes, for every sample), through the exporter's
    blob reader, tar builder and destination (streamed, writev, sha256 of every byte)."""
    from server.core.storage import LocalStorage
    from server.exports.destinations import Destination
    from server.exports.writers import TarBuilder, shard_name

    index, keys = job
    tar = TarBuilder(0)
    caption, document = members
    read = LocalStorage(blob_root).get  # as the export reads its images

    def archive() -> Iterator[bytes]:  # streamed sample by sample, as the export's
        for key in keys:
            name = Path(key).stem
            tar.add(f"{name}.jpg", read(key))
            tar.add(f"{name}.txt", caption)
            tar.add(f"{name}.json", document)
            yield from tar.take()
        yield from tar.close()

    Destination(str(out)).write(f"{shard_name(index)}.tar", archive())


def floor(
    blob_root: Path,
    keys: list[str],
    shards: Path,
    out: Path,
    shard_size: int,
    processes: int,
    pool: Any = None,
) -> float:
    """Seconds for the work no exporter of these shards can skip, in `processes` forked
    processes, with no database: what an export costs beyond it is reading and encoding labels."""
    import functools
    import multiprocessing

    with tarfile.open(shards / "00000.tar") as tar:
        tar.next()  # the first sample's image, then its .txt and .json
        handles = [tar.extractfile(member) for member in (tar.next(), tar.next()) if member]
        caption, document = (handle.read() if handle else b"" for handle in handles)
    jobs = list(enumerate(keys[i : i + shard_size] for i in range(0, len(keys), shard_size)))
    target = out / "floor"
    shutil.rmtree(target, ignore_errors=True)  # the previous run's, as before every timed run
    os.sync()
    started = time.perf_counter()
    shard = functools.partial(_floor_shard, blob_root, (caption, document), target)
    if pool is not None:  # the exports' own processes
        list(pool.imap_unordered(shard, jobs))
    else:
        with multiprocessing.get_context("fork").Pool(processes) as forked:
            list(forked.imap_unordered(shard, jobs))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--out", type=Path, default=Path("/tmp/aa-export-bench"))
    parser.add_argument("--shard-size", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--changed", type=float, default=0.01, help="share of subjects corrected")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--fork-per-export",
        action="store_true",
        help="fork the part processes for each export (and floor run) instead of keeping one pool",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="then time the mandatory work alone (read, tar, sha256, write; no database), against tar",
    )
    parser.add_argument(
        "--refresh",
        action="store_true",
        help="after each day's corrections, encode the stale documents as the beat would (timed apart)",
    )
    args = parser.parse_args()
    out: Path = args.out.resolve()
    if out.exists():
        shutil.rmtree(out)
    data_dir = out / "data"
    _environment(data_dir)
    started = time.perf_counter()
    project_id, keys = seed(args.samples)
    print(f"seeded {args.samples} samples in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    from server.core import runtime
    from server.core.config import get_settings
    from server.exports import service

    shards = out / "webdataset"
    # The part processes are forked once and serve every run, as a worker's pool serves every
    # export. With --fork-per-export each export (and floor run) forks its own from this
    # process, which holds the seeding's heap (about 500 MB): each then pays the fork and the
    # copy-on-write faults of its children, which no worker pays per export.
    stack = ExitStack()
    pool = None
    if args.processes > 1 and not args.fork_per_export:
        pool = stack.enter_context(
            service.part_pool(runtime.database(), runtime.storage().get, args.processes)
        )
    os.sync()
    cold_seconds, counts = export(project_id, shards, args.shard_size, args.processes, pool)
    assert counts["samples"] == args.samples, counts
    # Every timed run removes its own previous output right before it starts (the export its
    # folder, tar its archive, the floor its folder), so that each writes into memory the
    # kernel has just freed: on a VM that hands freed memory back to its host, writing into
    # memory the host took back costs several times more, and more for large writes than for
    # tar's 10 KB ones. An untimed tar gives the first timed one an archive to remove.
    blob_dir = get_settings().blob_dir
    tar_baseline(blob_dir, keys, out)
    times, tar_times, refresh_times = [], [], []
    changed = 0
    for run in range(args.repeat):
        # Before every export, a day of review: `--changed` of the subjects corrected anew.
        changed = correct_labels(project_id, args.changed, seed_=run + 1)
        if args.refresh:
            os.sync()
            started = time.perf_counter()
            refreshed = service.refresh_documents(runtime.database(), project_id, limit=args.samples)
            refresh_times.append(time.perf_counter() - started)
            assert refreshed.documents == changed, (refreshed, changed)
        # Each run starts with the kernel's dirty pages written out (seeding and the run before
        # leave hundreds of MB), and tar and the export take turns: both see the same machine.
        tar_times.append(tar_baseline(blob_dir, keys, out))
        shutil.rmtree(shards)  # its previous output, as before every timed run
        os.sync()
        seconds, counts = export(project_id, shards, args.shard_size, args.processes, pool)
        assert counts["samples"] == args.samples, counts
        times.append(seconds)
    floor_times, floor_tar_times = [], []
    if args.floor:  # after the exports: their shards give the members' sizes; tar alternates
        floor(blob_dir, keys, shards, out, args.shard_size, args.processes, pool)  # an output to remove
        for _ in range(args.repeat):
            floor_tar_times.append(tar_baseline(blob_dir, keys, out))
            floor_times.append(floor(blob_dir, keys, shards, out, args.shard_size, args.processes, pool))
        shutil.rmtree(out / "floor")
    stack.close()
    (out / "tar-baseline.tar").unlink()
    refresh_seconds = statistics.median(refresh_times) if refresh_times else None
    export_seconds, tar_seconds = statistics.median(times), statistics.median(tar_times)
    export_sps, tar_sps = args.samples / export_seconds, args.samples / tar_seconds
    cold_sps = args.samples / cold_seconds
    print(
        f"cold export {cold_seconds:.2f}s; exports, each after {changed} corrections "
        f"{', '.join(f'{t:.2f}' for t in times)}s; tar {', '.join(f'{t:.2f}' for t in tar_times)}s; "
        f"refreshes {', '.join(f'{t:.2f}' for t in refresh_times) or 'none'}; "
        f"counts {counts}",
        file=sys.stderr,
    )
    print(
        json.dumps(
            {
                "samples": args.samples,
                "export_sps": round(export_sps, 1),
                "tar_sps": round(tar_sps, 1),
                "ratio": round(export_sps / tar_sps, 3),
                "out": str(shards),
                "cold_export_sps": round(cold_sps, 1),
                "cold_ratio": round(cold_sps / tar_sps, 3),
                "changed": changed,
                "processes": args.processes,
                "pool": "per export" if args.fork_per_export else "kept",
                "export_seconds": [round(t, 3) for t in times],
                "tar_seconds": [round(t, 3) for t in tar_times],
                "refresh_seconds": None if refresh_seconds is None else round(refresh_seconds, 3),
                "floor_seconds": [round(t, 3) for t in floor_times] or None,
                "floor_tar_seconds": [round(t, 3) for t in floor_tar_times] or None,
                "floor_ratio": (
                    round(statistics.median(floor_tar_times) / statistics.median(floor_times), 3)
                    if floor_times
                    else None
                ),
            }
        )
    )


if __name__ == "__main__":
    main()
