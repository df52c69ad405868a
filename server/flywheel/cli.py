"""`annotate-anyone round start|list|rollback` and `eval-set`: the flywheel from a shell.

Rounds run on the workers (or inline with AA_JOBS_EAGER); these commands start them and read
what the database records.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from server.core import runtime
from server.core.errors import DomainError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from server.orm import Project


def _project(session: Session, slug: str) -> Project:
    from server.projects import repository as projects_repository

    project = projects_repository.project_by_slug(session, slug)
    if project is None:
        raise click.ClickException(f"no project {slug!r}")
    return project


@click.group(name="round")
def round_group() -> None:
    """Flywheel rounds: train on verified labels, evaluate, promote or reject."""


@round_group.command(name="start")
@click.option("--project", "slug", required=True, help="project slug")
def start(slug: str) -> None:
    """Start a round (its training runs on the workers)."""
    from server.flywheel import service
    from server.worker import install_job_sender

    install_job_sender()
    try:
        with runtime.database().session_scope() as session:
            round_ = service.start_round(session, _project(session, slug), "cli")
            number, round_id = round_.number, round_.id
    except DomainError as exc:
        raise click.ClickException(exc.detail) from None
    with runtime.database().session_scope() as session:
        from server.orm import Round

        stored = session.get(Round, round_id)
        status = stored.status if stored is not None else "?"
    click.echo(f"round {number} (id {round_id}): {status}")


@round_group.command(name="list")
@click.option("--project", "slug", required=True, help="project slug")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per round")
def list_rounds(slug: str, as_json: bool) -> None:
    """Rounds with their decision, reasons and macro accuracy."""
    from server.flywheel import service

    with runtime.database().session_scope() as session:
        rounds = service.rounds(session, _project(session, slug))
    for r in rounds:
        if as_json:
            click.echo(json.dumps(r.model_dump(mode="json")))
            continue
        macro = r.metrics.get("candidate", {}).get("macro_accuracy")
        reasons = "; ".join(str(x.get("detail", x)) for x in r.reasons) or r.error or ""
        shown = f"{macro:.3f}" if isinstance(macro, float) else "-"
        click.echo(f"round {r.number} [{r.status}] candidate {r.candidate_id} macro {shown}: {reasons}")


@round_group.command(name="rollback")
@click.option("--project", "slug", required=True, help="project slug")
@click.option("--to", "version_id", type=int, required=True, help="model version id to make active")
def rollback(slug: str, version_id: int) -> None:
    """Make an earlier model version active again; undecided subjects are re-labelled."""
    from server.flywheel import service
    from server.worker import install_job_sender

    install_job_sender()
    try:
        with runtime.database().session_scope() as session:
            version = service.rollback(session, _project(session, slug), version_id)
            click.echo(f"active: model version {version.id} ({version.version})")
    except DomainError as exc:
        raise click.ClickException(exc.detail) from None


@click.command(name="eval-set")
@click.option("--project", "slug", required=True, help="project slug")
@click.option("--size", type=int, default=None, help="grow the evaluation set to this many subjects")
def eval_set(slug: str, size: int | None) -> None:
    """Show the evaluation set, or grow it to --size (a stratified sample, queued as eval work)."""
    from server.flywheel import service
    from server.worker import install_job_sender

    install_job_sender()
    try:
        with runtime.database().session_scope() as session:
            project = _project(session, slug)
            out = (
                service.grow_eval_set(session, project, size)
                if size is not None
                else service.eval_set(session, project)
            )
            click.echo(json.dumps(out.model_dump()))
    except DomainError as exc:
        raise click.ClickException(exc.detail) from None
