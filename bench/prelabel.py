"""Pre-label throughput: the whole pipeline against the model's forward pass alone.

For each batch size, two rates in images/s on the same images and model:
- forward_ips: the image tower's forward pass on tensors already on the device;
- pipeline_ips: what the deployment does: the CPU side reads a task's images from the database
  and builds the payload (PAYLOAD_MICRO_BATCHES forward batches per task); the GPU side reads
  the files, checks their sha256, decodes and preprocesses them in its decode threads one
  forward batch ahead, runs the forward pass and scores every category of the human-v1
  taxonomy; the CPU side persists the predictions and labels. As in production, where the CPU
  worker is a separate process, persisting task k overlaps the GPU side's work on task k+1
  (a thread here).

    python bench/prelabel.py --device cpu --batch-sizes 1,8,32,64 --images 256

Speed does not depend on the weights: the default model is open_clip ViT-B-32, randomly
initialised. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PAYLOAD_MICRO_BATCHES = 4
sys.path.insert(0, str(ROOT))


def _environment(data_dir: Path, database_url: str | None) -> None:
    os.environ["AA_DATA_DIR"] = str(data_dir)
    os.environ["AA_SOURCE_ROOTS"] = json.dumps([str(data_dir / "sources")])
    os.environ["AA_LOG_LEVEL"] = "WARNING"
    if database_url:
        os.environ["AA_DATABASE_URL"] = database_url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: CUDA when present)")
    parser.add_argument("--model", default="ViT-B-32", help="an open_clip architecture name")
    parser.add_argument("--batch-sizes", default="1,8,32,64")
    parser.add_argument("--images", type=int, default=256, help="images per measurement")
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite database")
    args = parser.parse_args()
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]

    with tempfile.TemporaryDirectory(prefix="aa-bench-") as tmp:
        data_dir = Path(tmp)
        _environment(data_dir, args.database_url)
        results = run(args.model, args.device, batch_sizes, args.images, data_dir)
    from workers.inference.device import pick_device

    device = str(pick_device(args.device))
    for row in results:
        print(
            f"batch {row['batch_size']:>3}: pipeline {row['pipeline_ips']:8.1f} img/s  "
            f"forward {row['forward_ips']:8.1f} img/s  ratio {row['ratio']:.3f}",
            file=sys.stderr,
        )
    print(
        json.dumps({"model": f"open_clip/{args.model} (random init)", "device": device, "results": results})
    )


def run(
    model: str, device: str | None, batch_sizes: list[int], n_images: int, data_dir: Path
) -> list[dict[str, Any]]:
    from server.cli import _prepare
    from server.core import jobs, runtime
    from server.core.config import get_settings
    from workers.contracts import ModelSpec
    from workers.inference.benchmark import forward_only_rate, write_synthetic_images
    from workers.inference.device import pick_device
    from workers.inference.registry import ModelRegistry

    settings = get_settings()
    _prepare(settings)
    resolved = pick_device(device)
    registry = ModelRegistry(resolved)
    warmup = max(batch_sizes) * 2
    paths = write_synthetic_images(data_dir / "sources" / "bench", n_images + warmup)
    project_id, image_ids = _ingest(paths)
    sent: list[jobs.Job] = []
    jobs.configure(sent.append)

    results = []
    for batch_size in batch_sizes:
        spec = ModelSpec(
            family="open_clip",
            source=model,
            name=model,
            version=f"random-init-b{batch_size}",
            options={"random_init": True, "batch_size": batch_size},
        )
        _activate(project_id, spec)
        registry.get(spec)  # load outside the clock
        _pipeline(registry, image_ids[:warmup], batch_size, sent)
        start = time.perf_counter()
        _pipeline(registry, image_ids[warmup:], batch_size, sent)
        pipeline_ips = n_images / (time.perf_counter() - start)
        forward_spec = spec.model_copy(update={"version": "forward"})
        forward_ips = forward_only_rate(forward_spec, batch_size, n_images, resolved)
        registry.clear()
        results.append(
            {
                "batch_size": batch_size,
                "pipeline_ips": round(pipeline_ips, 2),
                "forward_ips": round(forward_ips, 2),
                "ratio": round(pipeline_ips / forward_ips, 3),
            }
        )
    _check(project_id, image_ids, len(batch_sizes))
    runtime.reset()
    return results


def _ingest(paths: list[Path]) -> tuple[int, list[int]]:
    """Images stored through the real ingestion service, marked analysed and embedded (the
    benchmark measures pre-labelling)."""
    from server.auth import repository as auth_repository
    from server.core import runtime
    from server.core.config import get_settings
    from server.images import service as images
    from server.images.decoding import decode_image
    from server.orm import Image, Subject
    from server.projects import service as projects
    from server.sources import service as sources

    settings = get_settings()
    with runtime.database().session_scope() as session:
        admin = auth_repository.user_by_email(session, settings.admin_email)
        assert admin is not None
        project = projects.create_project(session, admin, "bench")
        source = sources.upload_source(session, project)
        ids = []
        for path in paths:
            decoded = decode_image(path.read_bytes(), max_bytes=1 << 26, max_pixels=1 << 26)
            added = images.add_image(
                session, runtime.storage(), project.id, source, path.name, decoded, settings.ingest, 1
            )
            assert added.image_id is not None
            ids.append(added.image_id)
        session.flush()
        for image in session.query(Image).filter(Image.id.in_(ids)):
            image.stage = "embedded"
            session.add(
                Subject(
                    image_id=image.id, project_id=project.id, index=0, bbox=[0, 0, image.width, image.height]
                )
            )
        return project.id, ids


def _activate(project_id: int, spec: Any) -> None:
    from server.core import runtime
    from server.labelers import service as labelers
    from server.orm import ModelVersion
    from server.orm.enums import ModelStatus

    with runtime.database().session_scope() as session:
        session.query(ModelVersion).filter(ModelVersion.project_id == project_id).update(
            {"status": "retired"}
        )
        labelers.register(session, project_id, spec, status=ModelStatus.active)


def _pipeline(registry: Any, image_ids: list[int], batch_size: int, sent: list[Any]) -> None:
    """Dispatch (CPU) -> run_prelabel (GPU) -> persist (CPU, overlapped with the next batch)."""
    from server.core import runtime
    from server.orm.enums import ImageStage
    from server.prelabel import service
    from workers import contracts
    from workers.inference.pipeline import run_prelabel

    storage = runtime.storage()
    results: queue.Queue[contracts.PrelabelResult | None] = queue.Queue(maxsize=2)
    failures: list[BaseException] = []

    def persist() -> None:
        try:
            while (result := results.get()) is not None:
                with runtime.database().session_scope() as session:
                    service.persist_predictions(session, result)
        except BaseException as exc:  # surfaced by the main thread below
            failures.append(exc)

    writer = threading.Thread(target=persist, name="persist")
    writer.start()
    try:
        payload = batch_size * PAYLOAD_MICRO_BATCHES
        for start in range(0, len(image_ids), payload):
            chunk = image_ids[start : start + payload]
            with runtime.database().session_scope() as session:
                service.dispatch_prelabel(
                    session, storage, chunk, stages=(ImageStage.embedded, ImageStage.prelabeled)
                )
            (job,) = [j for j in sent if j.name == contracts.PRELABEL]
            sent.clear()
            batch = contracts.PrelabelBatch.model_validate(job.kwargs["payload"])
            results.put(run_prelabel(batch, registry=registry, micro_batch=batch_size))
    finally:
        results.put(None)
        writer.join()
    if failures:
        raise failures[0]


def _check(project_id: int, image_ids: list[int], runs: int) -> None:
    """Every image was pre-labelled by every run: one prediction set per model version."""
    from sqlalchemy import func, select

    from server.core import runtime
    from server.orm import Prediction, Subject

    with runtime.database().session_scope() as session:
        per_version = session.execute(
            select(Prediction.model_version_id, func.count(func.distinct(Prediction.subject_id)))
            .join(Subject, Subject.id == Prediction.subject_id)
            .where(Subject.project_id == project_id)
            .group_by(Prediction.model_version_id)
        ).all()
    assert len(per_version) == runs and all(n == len(image_ids) for _, n in per_version), per_version


if __name__ == "__main__":
    main()
