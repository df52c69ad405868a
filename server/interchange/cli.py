"""`annotate-anyone import-labelstudio`: import a Label Studio JSON export into a project.

Images referenced by path are read under the source roots (AA_SOURCE_ROOTS), embedded data URIs
are decoded, remote URLs are refused per task. Prints the report; exits 1 if any task failed.
"""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("import-labelstudio")
@click.option("--project", "slug", required=True, help="project slug")
@click.option(
    "--as", "email", default=None, help="the account the labels are decided by (default: the admin)"
)
@click.option("--image-field", default="image", show_default=True, help="the task data key holding the image")
@click.option(
    "--map",
    "mappings",
    multiple=True,
    help="FROM_NAME=CATEGORY_KEY for a Label Studio control named differently; repeatable",
)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_labelstudio(
    slug: str, email: str | None, image_field: str, mappings: tuple[str, ...], file: Path
) -> None:
    """Import Label Studio tasks (images, predictions, annotations) into a project; idempotent."""
    from server.auth import repository as auth_repository
    from server.core import runtime
    from server.core.config import get_settings
    from server.core.errors import DomainError
    from server.interchange import service
    from server.interchange.schemas import ImportOptions
    from server.projects import repository as projects_repository
    from server.worker import install_job_sender

    category_map = {}
    for mapping in mappings:
        name, sep, key = mapping.partition("=")
        if not sep or not name or not key:
            raise click.BadParameter(f"{mapping!r} is not FROM_NAME=CATEGORY_KEY", param_hint="--map")
        category_map[name] = key
    try:
        payload = json.loads(file.read_bytes())
    except ValueError as exc:
        raise click.ClickException(f"{file} is not valid JSON: {exc}") from None
    settings = get_settings()
    install_job_sender()
    with runtime.database().session_scope() as session:
        project = projects_repository.project_by_slug(session, slug)
        if project is None or project.deleted_at is not None:
            raise click.ClickException(f"no project {slug!r}")
        user = auth_repository.user_by_email(session, email or settings.admin_email)
        if user is None:
            raise click.ClickException(f"no user {email or settings.admin_email!r}")
        try:
            report = service.import_labelstudio(
                session,
                runtime.storage(),
                project,
                user,
                payload,
                ImportOptions(image_field=image_field, category_map=category_map),
                settings.source_roots,
                settings.ingest,
            )
        except DomainError as exc:
            raise click.ClickException(exc.detail) from None
    for problem in report.problems:
        where = f"task {problem.task}" + (f" (id {problem.task_id})" if problem.task_id else "")
        kept = "rest kept" if problem.imported else "not imported"
        name = f" {problem.from_name}:" if problem.from_name else ""
        click.echo(f"{where}: {problem.code}:{name} {problem.detail} [{kept}]", err=True)
    click.echo(
        f"{report.imported}/{report.tasks} tasks imported; images: {report.images_added} added, "
        f"{report.images_existing} already there; predictions: {report.predictions_added} added; "
        f"labels verified: {report.labels_verified} ({report.labels_unchanged} unchanged)"
    )
    if report.failed:
        raise SystemExit(1)
