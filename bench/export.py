"""Export throughput: WebDataset shards from a snapshot against GNU tar packing the same image
files (the I/O floor), both on one process.

    python bench/export.py --samples 20000 --out /tmp/aa-export-bench

Seeds a SQLite project under OUT/data by a fast path: 120 distinct synthetic people
(server/demo/synthetic.py), reused with a per-image JPEG comment so every file is a distinct,
valid JPEG; subjects, predictions, labels and their events (a model's, then a person's) bulk
inserted. Then times the whole export (snapshot plan, every part, manifest) in this process,
and `tar -cf` of the same image files. The last line printed is one JSON object:
{"samples", "export_sps", "tar_sps", "ratio", "out"}; `out` is kept for inspection.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import subprocess
import sys
import time
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


def export(project_id: int, out: Path, shard_size: int) -> tuple[float, dict[str, Any]]:
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
    service.run_here(db, storage.get, export_id)
    seconds = time.perf_counter() - started
    with db.session_scope() as session:
        done = session.get(Export, export_id)
        assert done is not None and done.status == "done", (
            done.status if done else None,
            done and done.error,
        )
        return seconds, dict(done.counts)


def tar_baseline(blob_root: Path, keys: list[str], out: Path) -> float:
    listing = out / "tar-files.txt"
    listing.write_text("\n".join(keys) + "\n")
    target = out / "tar-baseline.tar"
    started = time.perf_counter()
    subprocess.run(["tar", "-cf", str(target), "-C", str(blob_root), "-T", str(listing)], check=True)
    seconds = time.perf_counter() - started
    target.unlink()
    listing.unlink()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--out", type=Path, default=Path("/tmp/aa-export-bench"))
    parser.add_argument("--shard-size", type=int, default=1000)
    args = parser.parse_args()
    out: Path = args.out.resolve()
    if out.exists():
        shutil.rmtree(out)
    data_dir = out / "data"
    _environment(data_dir)
    started = time.perf_counter()
    project_id, keys = seed(args.samples)
    print(f"seeded {args.samples} samples in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    from server.core.config import get_settings

    shards = out / "webdataset"
    tar_seconds = tar_baseline(get_settings().blob_dir, keys, out)
    export_seconds, counts = export(project_id, shards, args.shard_size)
    assert counts["samples"] == args.samples, counts
    export_sps = args.samples / export_seconds
    tar_sps = args.samples / tar_seconds
    print(f"export {export_seconds:.2f}s, tar {tar_seconds:.2f}s, counts {counts}", file=sys.stderr)
    print(
        json.dumps(
            {
                "samples": args.samples,
                "export_sps": round(export_sps, 1),
                "tar_sps": round(tar_sps, 1),
                "ratio": round(export_sps / tar_sps, 3),
                "out": str(shards),
            }
        )
    )


if __name__ == "__main__":
    main()
