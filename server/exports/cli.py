"""`annotate-anyone export`: start (or resume) an export and show its progress.

Heavy modules load inside the command, so the rest of the CLI starts fast.
"""

from __future__ import annotations

import time
from typing import Any

import click

FORMATS = ("webdataset", "cosmicman", "jsonl", "labelstudio")


@click.command()
@click.option("--project", "slug", required=True, help="project slug")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="webdataset", show_default=True)
@click.option("--out", default=None, help="a folder or an s3:// URL (required unless --resume)")
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice(["verified", "auto_accepted"]),
    default=("verified",),
    show_default=True,
    help="label states to export (gold comes with verified); repeatable",
)
@click.option("--subject", "subject_ids", multiple=True, type=int, help="only these subject ids")
@click.option("--source", "source_ids", multiple=True, type=int, help="only images of these source ids")
@click.option(
    "--since-export", type=int, default=None, help="only subjects whose labels changed since export ID"
)
@click.option("--min-quality", multiple=True, help="METRIC=MIN, e.g. sharpness=0.2; repeatable")
@click.option("--shard-size", type=int, default=1000, show_default=True, help="samples per shard at most")
@click.option("--shard-bytes", type=int, default=None, help="image bytes per shard at most")
@click.option("--endpoint-url", default=None, help="S3-compatible endpoint; credentials from AWS_* variables")
@click.option("--image-url-prefix", default=None, help="Label Studio data.image prefix (default images/)")
@click.option(
    "--workers", is_flag=True, help="run on the Celery workers and follow (default: in this process)"
)
@click.option(
    "--resume", "resume_id", type=int, default=None, help="resume export ID; complete parts are kept"
)
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="write parts in this many processes, without --workers (e.g. the CPU count)",
)
def export(
    slug: str,
    fmt: str,
    out: str | None,
    states: tuple[str, ...],
    subject_ids: tuple[int, ...],
    source_ids: tuple[int, ...],
    since_export: int | None,
    min_quality: tuple[str, ...],
    shard_size: int,
    shard_bytes: int | None,
    endpoint_url: str | None,
    image_url_prefix: str | None,
    workers: bool,
    resume_id: int | None,
    processes: int,
) -> None:
    """Export a snapshot of a project's labels (WebDataset, CosmicMan parquet, JSONL, Label Studio)."""
    from pathlib import Path

    from pydantic import ValidationError

    from server.core import runtime
    from server.core.errors import DomainError
    from server.exports import service
    from server.exports.schemas import ExportFilters, ExportOptions
    from server.projects import repository as projects_repository
    from server.worker import install_job_sender

    if workers:
        if processes > 1:
            raise click.ClickException("--processes is for exports run here; workers have their own pool")
        install_job_sender()
    try:
        thresholds = {k: float(v) for k, _, v in (item.partition("=") for item in min_quality)}
        filters = ExportFilters(
            states=list(states),
            subject_ids=list(subject_ids) or None,
            source_ids=list(source_ids) or None,
            since_export_id=since_export,
            min_quality=thresholds,
        )
        options = ExportOptions(
            shard_size=shard_size, shard_bytes=shard_bytes, image_url_prefix=image_url_prefix
        )
    except (ValueError, ValidationError) as exc:
        raise click.ClickException(str(exc)) from None
    db = runtime.database()
    try:
        with db.session_scope() as session:
            project = projects_repository.project_by_slug(session, slug)
            if project is None:
                raise click.ClickException(f"no project {slug!r}")
            if resume_id is not None:
                started = service.resume(
                    session, service.get(session, project.id, resume_id), send_jobs=workers
                )
            else:
                if out is None:
                    raise click.ClickException("--out is required")
                destination = out if "://" in out else str(Path(out).resolve())
                started = service.start_export(
                    session,
                    project,
                    fmt=fmt,
                    destination=destination,
                    default_root=Path(destination),
                    filters=filters,
                    options=options,
                    user_id=None,
                    endpoint_url=endpoint_url,
                    send_jobs=workers,
                )
            export_id, destination = started.id, started.destination
    except DomainError as exc:
        raise click.ClickException(exc.detail) from None
    click.echo(f"export {export_id} -> {destination}")
    with click.progressbar(length=1000, label="parts", show_percent=True) as bar:
        if workers:
            _follow(db, export_id, bar)
        else:
            service.run_here(
                db,
                runtime.storage().get,
                export_id,
                lambda done, total: bar.update(int(1000 * done / total) - bar.pos),
                processes=processes,
            )
    with db.session_scope() as session:
        final = service.get_by_id(session, export_id)
        status, counts, error = final.status, dict(final.counts), final.error
        note = service.empty_note(final, service.snapshot_of(session, final))
    if status != "done":
        raise click.ClickException(f"export {export_id} is {status}: {error or ''}")
    click.echo(f"done: {counts}")
    if note is not None:
        click.echo(note)


def _follow(db: Any, export_id: int, bar: Any) -> None:
    from server.exports import service

    while True:
        with db.session_scope() as session:
            current = service.get_by_id(session, export_id)
            status, progress = current.status, current.progress
        bar.update(int(1000 * progress) - bar.pos)
        if status not in service.ACTIVE:
            return
        time.sleep(0.5)


@click.command("export-documents")
@click.option("--project", "slug", required=True, help="project slug")
@click.option(
    "--limit", type=click.IntRange(min=1), default=None, help="encode at most this many (default: all)"
)
@click.option(
    "--full",
    is_flag=True,
    help="look at every subject, not only those with label changes since the last complete refresh",
)
def export_documents(slug: str, limit: int | None, full: bool) -> None:
    """Encode now the kept export documents that label changes made stale (the beat does it every
    five minutes), so that the next export reads them instead of encoding them."""
    from server.core import runtime
    from server.exports import service
    from server.projects import repository as projects_repository

    db = runtime.database()
    with db.session_scope() as session:
        project = projects_repository.project_by_slug(session, slug)
        if project is None:
            raise click.ClickException(f"no project {slug!r}")
        project_id = project.id
    started = time.perf_counter()
    done = service.refresh_documents(db, project_id, limit=limit if limit is not None else 2**62, full=full)
    seconds = time.perf_counter() - started
    if not done.settled:
        raise click.ClickException(
            f"kept {done.documents} documents, then stopped: a transaction older than the labels "
            "read is still open; run again when it has ended"
        )
    click.echo(f"kept {done.documents} documents for {done.variants} label-state sets in {seconds:.1f}s")
